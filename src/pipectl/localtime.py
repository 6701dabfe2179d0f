"""The user's time zone: how stored moments are shown, and how a time typed without an offset
is read. Storage stays UTC (``values.iso``); only people see local time.

The zone is the one the ``TZ`` variable names (``Europe/Warsaw``), else the system's local zone;
``--utc`` (or ``PIPECTL_UTC=1``) makes it UTC, both ways. JSON and CSV keep UTC (``...Z``)
whatever the zone. Light: ``zoneinfo`` is imported when a zone is first asked for.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, tzinfo

_utc = False  # --utc / PIPECTL_UTC: the CLI's root sets it for each command


def use_utc(on: bool) -> None:
    """Show (and read) times in UTC instead of the local zone (``--utc``)."""
    global _utc
    _utc = bool(on)


def zone() -> tzinfo | None:
    """UTC under ``--utc``; the zone ``TZ`` names; else None, the system's local zone (as
    ``datetime.astimezone()`` takes it, DST rules included)."""
    if _utc:
        return UTC
    name = os.environ.get("TZ")
    if name is None:
        return None
    name = name.removeprefix(":")
    if name in ("", "UTC", "Etc/UTC"):  # POSIX: a TZ set but empty is UTC (zoneinfo: ~3 ms)
        return UTC
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # a POSIX rule ('CET-1CEST,M3.5.0,M10.5.0/3'), a
        return None  # path, a name zoneinfo lacks: the C library reads those, as for others


def zone_name(where: tzinfo | None = None) -> str:
    """The zone as messages name it: 'Europe/Warsaw', 'UTC', or 'your local time zone'."""
    where = zone() if where is None else where
    key = getattr(where, "key", None)
    if key:
        return str(key)
    return "UTC" if where is UTC else "your local time zone"


def local(moment: datetime | str) -> datetime:
    """A moment (aware, or stored text ``...Z``) in the user's zone."""
    if isinstance(moment, str):
        moment = _parse_stored(moment)
    return moment.astimezone(zone())


def label(moment: datetime) -> str:
    """An aware moment's zone as a label: its abbreviation ('CET', 'EDT', 'UTC'), or its
    offset ('+07', '+05:30') where the zone has no abbreviation."""
    name = moment.tzname() or ""
    if name and not name.startswith(("+", "-")) and name.isascii():
        return name
    offset = moment.utcoffset()
    if offset is None:
        return ""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def shown(moment: datetime | str | None) -> str:
    """A moment as people read it: local, to the minute, labelled ('2026-12-03 10:00 CET');
    under --utc '2026-12-03 09:00 UTC'. Seconds are left out (JSON and CSV keep them).
    Empty for None or ''; text that is not a stored moment is shown as it is (never an
    error in a view)."""
    if moment is None or moment == "":
        return ""
    try:
        here = local(moment)
    except (ValueError, OverflowError):
        return str(moment)
    return f"{here:%Y-%m-%d %H:%M} {label(here)}"


def shown_date(moment: datetime | str | None) -> str:
    """The local calendar date of a moment ('2026-12-03'); '' for None or ''."""
    if moment is None or moment == "":
        return ""
    try:
        return local(moment).date().isoformat()
    except (ValueError, OverflowError):
        return str(moment)[:10]


def shown_day_or_moment(moment: str) -> str:
    """A moment that is often a day's start (a rate in force from a date): the local date
    alone when it is local midnight, else ``shown``."""
    try:
        here = local(moment)
    except (ValueError, OverflowError):
        return moment
    if (here.hour, here.minute, here.second) == (0, 0, 0):
        return here.date().isoformat()
    return shown(here)


def today(moment: datetime | str) -> date:
    """The user's calendar date at ``moment`` (what "today" and "overdue" go by)."""
    return local(moment).date()


def _parse_stored(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
