"""The day parsers of --due, --since and --until (domain/days.py): a fixed today, every form."""

from __future__ import annotations

from datetime import date

import pytest

from pipectl.domain.days import add_months, parse_due, parse_since
from pipectl.errors import UsageError

MON = date(2026, 12, 7)  # a Monday
SUN = date(2026, 12, 13)
NYE = date(2026, 12, 31)  # a Thursday, the year's last day
JAN31 = date(2027, 1, 31)  # a Sunday
FEB28 = date(2028, 2, 28)  # a Monday of a leap year


@pytest.mark.parametrize(("text", "today", "expected"), [
    ("2026-12-11", MON, date(2026, 12, 11)),
    ("2026-12-01", MON, date(2026, 12, 1)),  # the past: the caller refuses it
    ("today", MON, MON),
    ("TODAY", MON, MON),
    ("  Tomorrow ", MON, date(2026, 12, 8)),
    ("tomorrow", NYE, date(2027, 1, 1)),
    ("tomorrow", FEB28, date(2028, 2, 29)),
    # each weekday from a Monday: the next one after today
    ("monday", MON, date(2026, 12, 14)),  # its own weekday: a week on
    ("tuesday", MON, date(2026, 12, 8)),
    ("wed", MON, date(2026, 12, 9)),
    ("thu", MON, date(2026, 12, 10)),
    ("thurs", MON, date(2026, 12, 10)),
    ("Friday", MON, date(2026, 12, 11)),
    ("FRI", MON, date(2026, 12, 11)),
    ("sat", MON, date(2026, 12, 12)),
    ("sunday", MON, date(2026, 12, 13)),
    ("mon", SUN, date(2026, 12, 14)),
    ("sun", SUN, date(2026, 12, 20)),
    ("fri", NYE, date(2027, 1, 1)),  # over the year's end
    ("thursday", NYE, date(2027, 1, 7)),
    ("+3d", MON, date(2026, 12, 10)),
    ("3d", MON, date(2026, 12, 10)),
    ("0d", MON, MON),
    ("3 days", MON, date(2026, 12, 10)),
    ("1 day", NYE, date(2027, 1, 1)),
    ("2w", MON, date(2026, 12, 21)),
    ("+2 weeks", NYE, date(2027, 1, 14)),
    ("1m", MON, date(2027, 1, 7)),
    ("+1m", date(2027, 1, 31), date(2027, 2, 28)),  # the month's last day
    ("1 month", date(2028, 1, 31), date(2028, 2, 29)),
    ("12m", FEB28, date(2029, 2, 28)),
])
def test_due(text: str, today: date, expected: date) -> None:
    assert parse_due(text, today) == expected


@pytest.mark.parametrize("text", [
    "", "next week", "fr", "friday!", "3x", "-3d", "+d", "2026-13-01", "2026-02-30", "12/11",
    "3.5d", "yesterday",
])
def test_due_refuses(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_due(text, MON)
    assert err.value.exit_code == 2
    assert err.value.message.startswith("--due ")


def test_due_error_names_the_forms() -> None:
    with pytest.raises(UsageError) as err:
        parse_due("someday", MON, "--due")
    assert err.value.message == ("--due 'someday' is not a day: use YYYY-MM-DD, today, tomorrow, "
                                 "a weekday (friday, fri), +3d, 2w or 1m")


def test_due_off_the_calendar() -> None:
    with pytest.raises(UsageError, match="between 1900-01-01 and 2999-12-31"):
        parse_due("tomorrow", date(2999, 12, 31))
    with pytest.raises(UsageError, match="between"):
        parse_due("9999m", date(2900, 1, 1))
    with pytest.raises(UsageError, match="between"):
        parse_due("9999w", date(2999, 1, 1))


@pytest.mark.parametrize(("text", "today", "expected"), [
    ("2026-11-30", MON, date(2026, 11, 30)),
    ("today", MON, MON),
    ("yesterday", MON, date(2026, 12, 6)),
    ("yesterday", date(2027, 1, 1), NYE),
    ("yesterday", date(2028, 3, 1), date(2028, 2, 29)),
    # each weekday from a Monday: the latest one, today included
    ("monday", MON, MON),
    ("tue", MON, date(2026, 12, 1)),
    ("wednesday", MON, date(2026, 12, 2)),
    ("thu", MON, date(2026, 12, 3)),
    ("friday", MON, date(2026, 12, 4)),
    ("SAT", MON, date(2026, 12, 5)),
    ("sunday", MON, date(2026, 12, 6)),
    ("monday", SUN, MON),  # this week's Monday, seen from its Sunday
    ("sunday", SUN, SUN),
    ("mon", date(2027, 1, 1), date(2026, 12, 28)),  # over the year's end
    ("7d", MON, date(2026, 12, 1)),  # the last seven days, today included
    ("-7d", MON, date(2026, 12, 1)),
    ("7 days ago", MON, date(2026, 12, 1)),
    ("1d", MON, MON),
    ("2w", MON, date(2026, 11, 24)),
    ("1w", date(2027, 1, 3), date(2026, 12, 28)),
    ("1m", MON, date(2026, 11, 8)),
    ("1m", date(2027, 3, 31), date(2027, 3, 1)),  # 28 February + 1
    ("1 month", date(2028, 3, 31), date(2028, 3, 1)),  # 29 February + 1
])
def test_since(text: str, today: date, expected: date) -> None:
    assert parse_since(text, today) == expected


@pytest.mark.parametrize("text", ["", "0d", "tomorrow", "last week", "+3d", "mo", "2026-02-29"])
def test_since_refuses(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_since(text, MON, "--since")
    assert err.value.exit_code == 2
    assert err.value.message.startswith("--since ")


def test_since_off_the_calendar() -> None:
    with pytest.raises(UsageError, match="between"):
        parse_since("yesterday", date(1900, 1, 1))


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2026, 12, 15), 1, date(2027, 1, 15)),
    (date(2027, 1, 15), -1, date(2026, 12, 15)),
    (date(2026, 3, 31), -1, date(2026, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
])
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected
