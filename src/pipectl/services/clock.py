"""The clock of every use case: now, or a moment the user gave (never in the future)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

from pipectl.errors import UsageError


def now() -> datetime:
    """The current moment (PIPECTL_NOW overrides it, for demos and tests)."""
    fixed = os.environ.get("PIPECTL_NOW")
    if fixed:
        from pipectl.values import parse_moment

        return parse_moment(fixed, "PIPECTL_NOW")
    return datetime.now(UTC).replace(microsecond=0)


def moment(at: str | datetime | None) -> datetime:
    """When a write happened: now, or ``at`` (text as --at takes it: without an offset, the
    user's local time, ``localtime.zone``; or a datetime), which may not lie in the future."""
    current = now()
    if at is None:
        return current
    from pipectl.localtime import zone
    from pipectl.values import FUTURE_SLACK, iso, parse_moment, utc_moment

    # a datetime from a script keeps to the same calendar as --at (a year-1 moment has no
    # four-digit stored form)
    when = parse_moment(at, zone=zone()) if isinstance(at, str) else utc_moment(at)
    if when > current + FUTURE_SLACK:
        shown = at if isinstance(at, str) else iso(at)
        raise UsageError(
            f"--at {shown!r} ({iso(when)}) is in the future",
            hint="record things when they happen; plan the future with --close or --next/--due",
        )
    return when


def day(at: datetime | None = None) -> date:
    """The user's date at a moment (now by default): the day `--due tomorrow` and `log --since
    monday` count from: the date in the user's time zone (``localtime``; UTC under --utc)."""
    from pipectl.localtime import today

    return today(now() if at is None else at)
