"""Reports: every number of domain.md, computed in SQL from the event history.

``snapshot`` reconstructs each deal as it stood at an as-of moment (stage, value, close date,
probability, ...) from ``events`` alone; ``summary``, ``forecast`` and ``actions`` aggregate
those snapshots in SQL and return plain dataclasses holding integers (money in minor units per
currency), which ``pipectl.views.reports`` renders. Nothing here prints.
"""
