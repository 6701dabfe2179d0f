"""Periods and windows of the reports: half-open [start, end) UTC dates."""

from __future__ import annotations

from datetime import date

import pytest

from pipectl.errors import UsageError
from pipectl.reports import periods
from pipectl.reports.summary import Ratio, _velocity


@pytest.mark.parametrize(
    ("unit", "day", "start", "end", "label"),
    [
        ("week", date(2026, 11, 27), date(2026, 11, 23), date(2026, 11, 30), "2026-W48"),
        ("week", date(2026, 1, 1), date(2025, 12, 29), date(2026, 1, 5), "2026-W01"),
        ("month", date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1), "2026-12"),
        ("month", date(2028, 2, 29), date(2028, 2, 1), date(2028, 3, 1), "2028-02"),
        ("quarter", date(2026, 11, 5), date(2026, 10, 1), date(2027, 1, 1), "2026-Q4"),
        ("quarter", date(2026, 4, 1), date(2026, 4, 1), date(2026, 7, 1), "2026-Q2"),
        ("year", date(2026, 6, 15), date(2026, 1, 1), date(2027, 1, 1), "2026"),
    ],
)
def test_period_containing_a_day(unit, day, start, end, label):
    w = periods.period(unit, day)
    assert (w.start, w.end, w.label) == (start, end, label)
    assert w.contains(f"{start}T00:00:00Z") and not w.contains(f"{end}T00:00:00Z")


def test_consecutive_periods_cover_the_range():
    got = [p.label for p in periods.periods("quarter", date(2025, 11, 1), date(2026, 4, 1))]
    assert got == ["2025-Q4", "2026-Q1", "2026-Q2"]


def test_windows():
    assert periods.window(None, None).label == "all time"
    assert periods.window(None, None).contains("2001-01-01T00:00:00Z")
    w = periods.window(date(2026, 1, 1), None)
    assert (w.label, w.contains("2025-12-31T23:59:59Z")) == ("from 2026-01-01", False)
    with pytest.raises(UsageError, match="is not after --from"):
        periods.window(date(2026, 1, 1), date(2026, 1, 1))


def test_ratio_is_null_never_a_division_by_zero():
    assert Ratio(0, 0).value is None
    assert Ratio(0, 3).value == 0.0
    assert Ratio(2, 3).value == 0.6667
    assert Ratio(3, 3).value == 1.0


def test_velocity_is_exact_and_null_when_a_factor_is_missing():
    day = 86_400
    # 3 open x 1/2 x (10,000.00 / 1) / 4 days = 3,750.00 a day
    v = _velocity("USD", 3, Ratio(1, 2), 1, 1_000_000, 2, 8 * day)
    assert (v.per_day, v.cycle_days, v.average_won) == (375_000, 4.0, 1_000_000)
    assert _velocity("USD", 0, Ratio(1, 2), 1, 1_000_000, 2, 8 * day).per_day is None
    assert _velocity("USD", 3, Ratio(0, 0), 1, 1_000_000, 2, 8 * day).per_day is None
    assert _velocity("USD", 3, Ratio(1, 2), 0, 0, 2, 8 * day).per_day is None
    assert _velocity("USD", 3, Ratio(1, 2), 1, 1_000_000, 2, 0).per_day is None
    # a real 0: the deal won in this currency was worth 0.00
    assert _velocity("USD", 3, Ratio(1, 2), 1, 0, 2, 8 * day).per_day == 0
