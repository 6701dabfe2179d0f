"""Days as people type them: ``--due friday``, ``--due +3d``, ``--since monday``, ``--since 2w``.

Pure functions: the day it is (``today``, the user's local date) is passed in; nothing here
reads a clock. Every form is case-insensitive and surrounding spaces are ignored.

``parse_due`` (a day ahead: when a next step is due):

- ``YYYY-MM-DD``; ``today``; ``tomorrow``;
- a weekday, ``friday`` or ``fri``: the next such day after today (on a Friday, ``friday`` is
  a week from today: say ``today`` for today);
- ``+3d``, ``3d``, ``2w``, ``1m`` (also ``3 days``, ``2 weeks``, ``1 month``): that many days,
  weeks or months from today (a month ahead of 31 January is the last day of February).

``parse_since`` (a day behind: where a look back starts; ``--until`` takes the same forms):

- ``YYYY-MM-DD``; ``today``; ``yesterday``;
- a weekday, ``monday`` or ``mon``: the latest such day, today included (``monday`` is this
  week's Monday);
- ``7d``, ``2w``, ``1m`` (also ``-7d``, ``7 days``): the last seven days, two weeks or month,
  today included (``7d`` on a Sunday starts on Monday; ``1d`` is today).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from pipectl.errors import UsageError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ABBREVIATIONS = {"tues": 1, "wednes": 2, "thur": 3, "thurs": 3}
_DAY_WORDS = {name: i for i, name in enumerate(WEEKDAYS)} | {
    name[:3]: i for i, name in enumerate(WEEKDAYS)} | _ABBREVIATIONS
_SPAN = re.compile(r"(\d{1,4})\s*(d|days?|w|weeks?|m|months?)")

DUE_FORMS = "YYYY-MM-DD, today, tomorrow, a weekday (friday, fri), +3d, 2w or 1m"
SINCE_FORMS = "YYYY-MM-DD, today, yesterday, a weekday (monday, mon), 7d, 2w or 1m"


def weekday(text: str) -> int | None:
    """0 (Monday) to 6 (Sunday) for a weekday's name or its abbreviation, else None."""
    return _DAY_WORDS.get(text.strip().lower())


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier, when negative), the month's last day when
    the month is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _span(text: str) -> tuple[int, str] | None:
    match = _SPAN.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)[0]


def _iso(text: str, option: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    from pipectl.values import parse_date

    return parse_date(text, option)


def _checked(day: date | None, text: str, option: str) -> date:
    from pipectl.values import FIRST_DAY, LAST_DAY

    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(f"{option} {text!r}: days must lie between {FIRST_DAY} and {LAST_DAY}")
    return day


def _safe(compute, text: str, option: str) -> date:  # type: ignore[no-untyped-def]
    """A computed day, or the range's refusal when it falls off the calendar."""
    try:
        day = compute()
    except (OverflowError, ValueError):
        day = None
    return _checked(day, text, option)


def parse_due(text: str, today: date, option: str = "--due") -> date:
    """A day ahead, as ``--due`` takes it (see the module's docstring); UsageError (exit 2)
    naming the accepted forms otherwise. A day before ``today`` (a date typed so) is
    returned as it is: the caller decides whether the past is allowed."""
    said = text.strip().lower()
    day = _iso(said, option)
    if day is not None:
        return day
    if said == "today":
        return today
    if said == "tomorrow":
        return _safe(lambda: today + timedelta(days=1), text, option)
    wd = weekday(said)
    if wd is not None:
        ahead = (wd - today.weekday()) % 7 or 7
        return _safe(lambda: today + timedelta(days=ahead), text, option)
    span = _span(said.removeprefix("+").strip())
    if span is not None:
        n, unit = span
        if unit == "m":
            return _safe(lambda: add_months(today, n), text, option)
        return _safe(lambda: today + timedelta(days=n * (7 if unit == "w" else 1)), text, option)
    raise UsageError(f"{option} {text!r} is not a day: use {DUE_FORMS}",
                     hint=f"e.g. {option} friday, {option} +3d or {option} {today + timedelta(7)}")


def parse_since(text: str, today: date, option: str = "--since") -> date:
    """A day behind (today included), as ``--since`` and ``--until`` take it (see the module's
    docstring); UsageError (exit 2) naming the accepted forms otherwise."""
    said = text.strip().lower()
    day = _iso(said, option)
    if day is not None:
        return day
    if said == "today":
        return today
    if said == "yesterday":
        return _safe(lambda: today - timedelta(days=1), text, option)
    wd = weekday(said)
    if wd is not None:
        return _safe(lambda: today - timedelta(days=(today.weekday() - wd) % 7), text, option)
    rest = said.removeprefix("-").strip()
    rest = rest.removesuffix("ago").strip()
    span = _span(rest)
    if span is not None and span[0] > 0:
        n, unit = span
        if unit == "m":
            return _safe(lambda: add_months(today, -n) + timedelta(days=1), text, option)
        days = n * (7 if unit == "w" else 1)
        return _safe(lambda: today - timedelta(days=days - 1), text, option)
    raise UsageError(f"{option} {text!r} is not a day: use {SINCE_FORMS}",
                     hint=f"e.g. {option} monday, {option} 7d or {option} {today - timedelta(6)}")
