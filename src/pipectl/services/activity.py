"""`pipectl log`: the activity across all deals between two days, in one read transaction."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline


def day_start(day: date) -> datetime:
    """The moment a local day begins (its midnight, or where the clocks jump past it), UTC."""
    from pipectl.localtime import zone
    from pipectl.values import parse_moment

    return parse_moment(day.isoformat(), "--since", zone())


def iso(moment: datetime) -> str:
    from pipectl.values import iso as _iso

    return _iso(moment)


class Log:
    """The events of ``since`` to ``until`` (days, both included), newest first, and the
    pipelines (as defined now) that say what their moves were."""

    __slots__ = ("limited", "pipelines", "rows", "since", "until")

    def __init__(self, rows: list[dict[str, Any]], pipelines: dict[int, Pipeline],
                 since: date, until: date, limited: bool) -> None:
        self.rows, self.pipelines = rows, pipelines
        self.since, self.until, self.limited = since, until, limited


def log(conn: sqlite3.Connection, since: date, until: date, owner: str | None = None,
        pipeline: str | None = None, limit: int | None = None) -> Log:
    """What happened from the start of ``since`` to the end of ``until`` (local days) to the
    deals of ``owner`` now in ``pipeline`` (a name; None: all), at most ``limit`` events."""
    from pipectl.errors import UsageError
    from pipectl.reports import activity
    from pipectl.store import pipelines as pipeline_store
    from pipectl.store.db import snapshot

    if until < since:
        raise UsageError(f"--until {until} is before --since {since}")
    from pipectl.values import LAST_DAY, from_iso

    start = day_start(since)
    end = (day_start(until + timedelta(days=1)) - timedelta(seconds=1) if until < LAST_DAY
           else from_iso(f"{LAST_DAY}T23:59:59Z"))
    with snapshot(conn):
        pid = None if pipeline is None else pipeline_store.by_name(conn, pipeline).id
        rows = activity.entries(conn, iso(start), iso(end), owner, pid,
                                None if limit is None else limit + 1)
        pipelines = pipeline_store.all_in_force(conn)
    limited = limit is not None and len(rows) > limit
    return Log(rows[:limit] if limited else rows, pipelines, since, until, limited)
