"""Property (issue 16): a random history with random undos gives every report figure, the
deals and the read models exactly as the same history without the commands it voided.

The histories of tests/store/test_forecast_property.py (two pipelines, moves between them,
wins, losses, reopens, values, close dates, probabilities), each command possibly followed by
some undos (``pipectl undo``: the newest command of any deal, refused on a creation). The
same commands minus the voided ones, at the same moments, are played on a second database.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.domain.pipeline import DEFAULT
from pipectl.errors import PipectlError
from pipectl.models import DealEdit, NewDeal
from pipectl.reports import forecast, learning, summary
from pipectl.reports.periods import Window
from pipectl.services import deals as svc
from pipectl.services import undo as undo_svc
from pipectl.services.reports import forecast_periods
from pipectl.store import pipelines as pipeline_store
from pipectl.store import readmodel
from pipectl.store.db import transaction
from pipectl.values import iso
from tests import engines
from tests.store.test_forecast_property import ADD, OPS, T0, partners
from tests.store.test_read_models import recomputed, stored

_DEAL_COLUMNS = ("id, name, owner, pipeline_id, stage, lost_at_stage, lost_reason, value_minor, "
                 "currency, probability, close_date, qualified_at, prequalified_reason, "
                 "checklist, next_action, next_due, created_at, updated_at, closed_at")


def _apply(conn, when, op) -> bool:
    """One command at ``when``; whether it wrote (a refused one writes nothing, nor an edit
    that changes nothing)."""
    (before,) = conn.execute("SELECT count(*) FROM events").fetchone()
    kind, *args = op
    try:
        if kind == "add":
            in_partners, currency, value, close, probability, owner, stage = args
            svc.add(conn, NewDeal(
                f"D{when:%m%d%H}", stage=stage, prequalified="known" if stage else None,
                pipeline="Partners" if in_partners else None, currency=currency,
                value_minor=value, close_date=close, probability=probability, owner=owner),
                at=when)
        elif kind == "advance":
            deal, to, known = args
            svc.advance(conn, deal, to=to, prequalified="known" if known else None, at=when)
        elif kind == "lose":
            svc.lose(conn, args[0], "price", at=when)
        elif kind == "reopen":
            svc.reopen(conn, args[0], at=when)
        elif kind == "value":
            deal, value, currency = args
            svc.edit(conn, deal, DealEdit(clear_value=True) if value is None
                     else DealEdit(value_minor=value, currency=currency), at=when)
        elif kind == "close":
            deal, close = args
            svc.edit(conn, deal, DealEdit(clear_close=True) if close is None
                     else DealEdit(close_date=close), at=when)
        elif kind == "probability":
            deal, probability = args
            svc.edit(conn, deal, DealEdit(clear_probability=True) if probability is None
                     else DealEdit(probability=probability), at=when)
        elif kind == "move":
            svc.move_to(conn, args[0], "Partners" if args[1] else DEFAULT.name, at=when)
        else:
            return False
    except PipectlError:
        return False
    return bool(conn.execute("SELECT count(*) FROM events").fetchone()[0] > before)


def _figures(conn, moments: list[str]) -> list:
    out = []
    for moment in moments:
        defs = pipeline_store.all_in_force(conn, moment)
        for pipeline in (None, "Partners"):
            out.append(summary.build(conn, moment, Window(), pipeline=pipeline))
        out.append(forecast.build_all(conn, moment, forecast_periods("month", moment), None,
                                      None))
        windows = [("a", iso(T0), iso(T0 + timedelta(days=40)), iso(T0))]
        out.append(learning.learn(conn, moment, defs, fresh=windows))
        out.append([tuple(r) for r in learning.open_deals(conn, moment, defs)])
    return out


def _undo_equals_without(engine: str, first: list, ops: list, undos: list[int],
                         hours: list[int]) -> None:
    ops = [(h, op) for h, op in ops if op[0] != "version"]  # (no event: nothing to undo)
    with engines.scratch(engine, "a.db") as a_db, engines.scratch(engine, "b.db") as b_db:
        a, b = engines.connect(a_db), engines.connect(b_db)
        try:
            for conn in (a, b):
                with transaction(conn):
                    pipeline_store.create(conn, partners((20, 50, 75)), "2025-01-01T00:00:00Z")
            kept: list[tuple] = []  # (moment, op, is a creation) of the commands in effect
            when = T0
            for i, (h, op) in enumerate([(24, add) for add in first] + ops):
                when += timedelta(hours=h)
                if _apply(a, when, op):
                    kept.append((when, op, op[0] == "add"))
                for _ in range(undos[i % len(undos)] if i >= len(first) else 0):
                    try:
                        undo_svc.undo(a)
                    except PipectlError:
                        # refused only with nothing in effect, or a creation last
                        assert not kept or kept[-1][2], "only a creation is refused"
                        break
                    assert not kept[-1][2]
                    kept.pop()
            for moment, op, _ in kept:
                assert _apply(b, moment, op), op
            last = when
            assert a.execute("SELECT count(*) FROM read_dirty").fetchone()[0] == 0
            assert stored(a) == recomputed(a)
            deals = [a.execute(f"SELECT {_DEAL_COLUMNS} FROM deals ORDER BY id").fetchall(),
                     b.execute(f"SELECT {_DEAL_COLUMNS} FROM deals ORDER BY id").fetchall()]
            assert [tuple(r) for r in deals[0]] == [tuple(r) for r in deals[1]]
            moments = sorted({iso(max(T0, last + timedelta(hours=x))) for x in hours})
            assert _figures(a, moments) == _figures(b, moments)
            with readmodel.replaying():  # the events replayed, not the read models
                assert _figures(a, moments) == _figures(b, moments)
        finally:
            a.close()
            b.close()


def test_undo_equals_the_history_without_the_voided_commands(engine: str) -> None:
    @settings(**engines.settings_for(engine, 25), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(first=st.lists(ADD, min_size=2, max_size=4), ops=OPS,
           undos=st.lists(st.sampled_from([0, 0, 0, 1, 1, 2]), min_size=1, max_size=8),
           hours=st.lists(st.integers(-600, 2400), min_size=1, max_size=3))
    def run(first: list, ops: list, undos: list[int], hours: list[int]) -> None:
        _undo_equals_without(engine, first, ops, undos, hours)

    run()
