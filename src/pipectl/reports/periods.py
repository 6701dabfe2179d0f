"""Windows and periods: half-open intervals of UTC dates, ``[start, end)``. Pure.

Every day given here lies in the accepted calendar (``values.FIRST_DAY`` to ``values.LAST_DAY``,
UsageError otherwise): a period's end, the day after the last one, is then always a date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pipectl.errors import UsageError
from pipectl.values import DATE_RANGE, in_range

UNITS = ("week", "month", "quarter", "year")


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)``; None on a side means unbounded (all time before / up to as-of)."""

    start: date | None = None
    end: date | None = None
    label: str = "all time"

    def start_iso(self) -> str:
        """The stored-moment form of the start (its midnight), or the earliest possible text."""
        return moment_iso(self.start) if self.start else "0000-00-00T00:00:00Z"

    def end_iso(self) -> str:
        return moment_iso(self.end) if self.end else "9999-99-99T99:99:99Z"

    def contains(self, when: str) -> bool:
        return self.start_iso() <= when < self.end_iso()


def moment_iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _accepted(day: date, what: str = "date") -> date:
    if not in_range(day):
        raise UsageError(f"{what} {day} is out of range: {DATE_RANGE}")
    return day


def period_start(unit: str, day: date) -> date:
    if unit == "week":  # ISO weeks start on Monday
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if unit == "year":
        return date(day.year, 1, 1)
    raise UsageError(f"unknown period {unit!r}", hint=f"use one of: {', '.join(UNITS)}")


def next_start(unit: str, start: date) -> date:
    if unit == "week":
        return start + timedelta(days=7)
    if unit == "year":
        return date(start.year + 1, 1, 1)
    months = 1 if unit == "month" else 3
    m = start.month - 1 + months
    return date(start.year + m // 12, m % 12 + 1, 1)


def period_label(unit: str, start: date) -> str:
    if unit == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return f"{start.year}-{start.month:02d}"
    if unit == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def period(unit: str, day: date) -> Window:
    """The week (Monday-based), month, quarter or year containing ``day``."""
    start = period_start(unit, _accepted(day))
    return Window(start, next_start(unit, start), period_label(unit, start))


def periods(unit: str, first: date, last: date) -> list[Window]:
    """Consecutive periods from the one containing ``first`` to the one containing ``last``."""
    out: list[Window] = []
    start = period_start(unit, _accepted(first, "--from"))
    _accepted(last, "--to")
    while start <= last:
        end = next_start(unit, start)
        out.append(Window(start, end, period_label(unit, start)))
        start = end
    return out


def window(start: date | None, end: date | None) -> Window:
    """A --from/--to window; either side may be open."""
    for day, what in ((start, "--from"), (end, "--to")):
        if day is not None:
            _accepted(day, what)
    if start and end and end <= start:
        raise UsageError(
            f"--to {end} is not after --from {start}",
            hint="the window is [from, to): to is excluded",
        )
    if start and end:
        label = f"{start} to {end} (excluded)"
    elif start:
        label = f"from {start}"
    elif end:
        label = f"before {end}"
    else:
        label = "all time"
    return Window(start, end, label)
