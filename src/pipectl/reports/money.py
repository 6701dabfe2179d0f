"""Count, value and weighted value of a set of deals, per currency: what report and forecast
both hold. Its own module so that `pipectl forecast` does not load the report's code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Money:
    """Count, value and weighted value of some deals, per currency (minor units)."""

    count: int = 0
    without_value: int = 0
    value: dict[str, int] = field(default_factory=dict)
    weighted: dict[str, int] = field(default_factory=dict)
    # value x probability percent, before rounding (weighted is it / 100, rounded half-even):
    # what a conversion (--in, reports.convert) starts from, so that it rounds once
    exact: dict[str, int] = field(default_factory=dict)
