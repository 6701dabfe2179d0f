"""What every command needs: the database connection, the clock, shared option parsing."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import typer

from pipectl.errors import UsageError

JSON_HELP = "Print JSON (stable keys, ISO 8601 UTC times, money as exact decimal strings)."
AT_HELP = "When it happened: YYYY-MM-DD or an ISO datetime (UTC unless an offset is given)."


def default_db_path() -> Path:
    """pipeline.db in the user data directory, whose folder is created with mode 0700."""
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("pipectl", appauthor=False))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / "pipeline.db"


def db_path(ctx: typer.Context) -> Path:
    given = (ctx.find_root().obj or {}).get("db")
    return Path(given).expanduser() if given else default_db_path()


def connect(ctx: typer.Context) -> sqlite3.Connection:
    from pipectl.store.db import connect as _connect

    path = db_path(ctx)
    ctx.find_root().obj["db"] = str(path)
    conn = _connect(path)
    ctx.call_on_close(conn.close)
    return conn


def now() -> datetime:
    """The current moment (PIPECTL_NOW overrides it, for demos and tests)."""
    fixed = os.environ.get("PIPECTL_NOW")
    if fixed:
        from pipectl.values import parse_moment

        return parse_moment(fixed, "PIPECTL_NOW")
    return datetime.now(UTC).replace(microsecond=0)


def moment(at: str | None) -> datetime:
    if at is None:
        return now()
    from pipectl.values import parse_moment

    return parse_moment(at)


def stage_arg(text: str | None):  # -> Stage | None
    if text is None:
        return None
    from pipectl.stages import parse_stage

    return parse_stage(text)


def positive_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise UsageError("--limit may not be negative")
    return limit
