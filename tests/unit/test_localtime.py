"""Time zones: a time typed without an offset is local (values.parse_moment with the user's zone),
a stored UTC moment is shown local and labelled (pipectl.localtime), --utc makes both UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipectl import localtime
from pipectl.errors import UsageError
from pipectl.values import iso, parse_moment

WARSAW, SAIGON, NEW_YORK = (ZoneInfo(z) for z in
                            ("Europe/Warsaw", "Asia/Ho_Chi_Minh", "America/New_York"))


@pytest.mark.parametrize(("text", "zone", "stored"), [
    # a time without an offset is the zone's wall-clock time
    ("2026-12-03T09:00", WARSAW, "2026-12-03T08:00:00Z"),  # CET, +01:00
    ("2026-07-03T09:00", WARSAW, "2026-07-03T07:00:00Z"),  # CEST, +02:00
    ("2026-12-03T09:00", SAIGON, "2026-12-03T02:00:00Z"),  # +07:00, no DST
    ("2026-12-03 09:00:30", NEW_YORK, "2026-12-03T14:00:30Z"),  # EST
    ("2026-07-03T09:00", NEW_YORK, "2026-07-03T13:00:00Z"),  # EDT
    # a date alone is the start of that local day
    ("2026-12-03", WARSAW, "2026-12-02T23:00:00Z"),
    ("2026-12-03", SAIGON, "2026-12-02T17:00:00Z"),
    ("2026-12-03", NEW_YORK, "2026-12-03T05:00:00Z"),
    ("2026-03-29", WARSAW, "2026-03-28T23:00:00Z"),  # the day the clocks go forward
    ("2026-10-25", WARSAW, "2026-10-24T22:00:00Z"),  # the day they go back: first pass
    # an explicit offset or Z is what it says, whatever the zone
    ("2026-12-03T09:00Z", WARSAW, "2026-12-03T09:00:00Z"),
    ("2026-12-03T09:00+07:00", NEW_YORK, "2026-12-03T02:00:00Z"),
    ("2026-03-29T02:30+01:00", WARSAW, "2026-03-29T01:30:00Z"),  # in the gap, made explicit
    ("2026-10-25T02:30+01:00", WARSAW, "2026-10-25T01:30:00Z"),  # the overlap's 2nd pass
    ("2026-10-25T02:30+02:00", WARSAW, "2026-10-25T00:30:00Z"),  # the overlap's 1st pass
    # just around the changes: the last minute before, the first after
    ("2026-03-29T01:59", WARSAW, "2026-03-29T00:59:00Z"),
    ("2026-03-29T03:00", WARSAW, "2026-03-29T01:00:00Z"),
    ("2026-03-08T01:59", NEW_YORK, "2026-03-08T06:59:00Z"),
    ("2026-03-08T03:00", NEW_YORK, "2026-03-08T07:00:00Z"),
    ("2026-11-01T00:59", NEW_YORK, "2026-11-01T04:59:00Z"),
    ("2026-11-01T02:00", NEW_YORK, "2026-11-01T07:00:00Z"),
    # UTC (the default, and --utc): as before
    ("2026-12-03T09:00", UTC, "2026-12-03T09:00:00Z"),
    ("2026-12-03", UTC, "2026-12-03T00:00:00Z"),
])
def test_a_time_without_an_offset_is_local(text: str, zone, stored: str) -> None:
    assert iso(parse_moment(text, "--at", zone)) == stored


def test_parse_moment_defaults_to_utc() -> None:  # PIPECTL_NOW and files keep UTC
    assert iso(parse_moment("2026-12-03T09:00")) == "2026-12-03T09:00:00Z"


@pytest.mark.parametrize(("text", "zone", "said", "hint"), [
    # spring forward: the wall clock skips these
    ("2026-03-29T02:30", WARSAW, "does not exist in Europe/Warsaw",
     "2026-03-29T02:30:00+01:00 or 2026-03-29T02:30:00+02:00"),
    ("2026-03-08T02:00", NEW_YORK, "does not exist in America/New_York",
     "2026-03-08T02:00:00-05:00 or 2026-03-08T02:00:00-04:00"),
    # fall back: the wall clock shows these twice
    ("2026-10-25T02:30", WARSAW, "happens twice in Europe/Warsaw",
     "2026-10-25T02:30:00+02:00 (the first) or 2026-10-25T02:30:00+01:00 (the second)"),
    ("2026-11-01T01:30", NEW_YORK, "happens twice in America/New_York",
     "2026-11-01T01:30:00-04:00 (the first) or 2026-11-01T01:30:00-05:00 (the second)"),
])
def test_a_local_time_the_clocks_skip_or_repeat_is_refused(text, zone, said, hint) -> None:
    with pytest.raises(UsageError) as caught:
        parse_moment(text, "--at", zone)
    assert said in caught.value.message and text in caught.value.message
    assert hint in (caught.value.hint or "")


def test_a_local_day_that_leaves_the_calendar_is_out_of_range() -> None:
    with pytest.raises(UsageError, match="out of range"):
        parse_moment("1900-01-01", "--at", WARSAW)  # 1899-12-31T23:00 UTC


@pytest.mark.parametrize(("tz", "stored", "shown", "day"), [
    ("Europe/Warsaw", "2026-12-03T08:00:00Z", "2026-12-03 09:00 CET", "2026-12-03"),
    ("Europe/Warsaw", "2026-07-03T22:30:00Z", "2026-07-04 00:30 CEST", "2026-07-04"),
    ("Asia/Ho_Chi_Minh", "2026-12-03T20:00:00Z", "2026-12-04 03:00 +07:00", "2026-12-04"),
    ("America/New_York", "2026-12-03T03:00:00Z", "2026-12-02 22:00 EST", "2026-12-02"),
    ("America/New_York", "2026-11-01T05:30:00Z", "2026-11-01 01:30 EDT", "2026-11-01"),
    ("America/New_York", "2026-11-01T06:30:00Z", "2026-11-01 01:30 EST", "2026-11-01"),
    ("Asia/Kolkata", "2026-12-03T00:00:00Z", "2026-12-03 05:30 IST", "2026-12-03"),
    ("UTC", "2026-12-03T08:00:00Z", "2026-12-03 08:00 UTC", "2026-12-03"),
    (":Europe/Warsaw", "2026-12-03T08:00:00Z", "2026-12-03 09:00 CET", "2026-12-03"),
    ("", "2026-12-03T08:00:00Z", "2026-12-03 08:00 UTC", "2026-12-03"),  # POSIX: empty
])
def test_a_stored_moment_is_shown_local_and_labelled(monkeypatch, tz, stored, shown, day) -> None:
    monkeypatch.setenv("TZ", tz)
    assert localtime.shown(stored) == shown
    assert localtime.shown_date(stored) == day
    assert localtime.today(stored).isoformat() == day


def test_utc_shows_and_reads_utc(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    localtime.use_utc(True)
    try:
        assert localtime.shown("2026-12-03T20:00:00Z") == "2026-12-03 20:00 UTC"
        assert localtime.shown_date("2026-12-03T20:00:00Z") == "2026-12-03"
        assert iso(parse_moment("2026-12-03T09:00", "--at", localtime.zone())) == \
            "2026-12-03T09:00:00Z"
    finally:
        localtime.use_utc(False)
    assert localtime.shown("2026-12-03T20:00:00Z") == "2026-12-04 03:00 +07:00"


def test_a_day_or_a_moment(monkeypatch) -> None:  # rates: in force from a day, or a moment
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    assert localtime.shown_day_or_moment("2026-11-29T23:00:00Z") == "2026-11-30"
    assert localtime.shown_day_or_moment("2026-11-30T00:00:00Z") == "2026-11-30 01:00 CET"


def test_an_unknown_zone_name_falls_back_to_the_system_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Not/A_Zone")
    assert localtime.zone() is None  # datetime.astimezone() then: what the C library says
    when = datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert localtime.shown(when).startswith(when.astimezone().strftime("%Y-%m-%d %H:%M "))


def test_view_text_that_is_no_moment_is_shown_as_it_is() -> None:
    assert localtime.shown(None) == "" and localtime.shown("") == ""
    assert localtime.shown("not a time") == "not a time"
