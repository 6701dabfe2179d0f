"""Tables, indexes, triggers and migrations (sqlite-utils' Migrations).

``VERSION`` is the number of migrations this pipectl knows; it is stored in
``PRAGMA user_version`` so that an older pipectl can refuse a newer file before touching it.
Migrations run once, under the write lock (BEGIN IMMEDIATE), after a backup copy of a database
that already held data.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipectl.qualification import CRITERIA
from pipectl.stages import OPEN_STAGES, Stage

EVENT_KINDS = (
    "created",  # the deal was logged (carries stage, value, currency, close date, probability)
    "stage",  # moved forward, skipped ahead or moved back
    "lost",  # closed lost at from_stage, with a reason
    "reopened",  # back from lost to the stage it was lost at
    "checklist",  # qualification criteria changed
    "value",  # value and/or currency changed
    "close_date",  # expected close date changed
    "probability",  # the deal's own probability set or cleared
    "edit",  # a descriptive field changed (field, old, new)
    "note",  # an activity, optionally with the next action and its due date
)

_stages = ", ".join(f"'{s}'" for s in Stage)
_open = ", ".join(f"'{s}'" for s in OPEN_STAGES)
_kinds = ", ".join(f"'{k}'" for k in EVENT_KINDS)
_flags = "\n".join(f"    {c} INTEGER CHECK ({c} IN (0, 1))," for c in CRITERIA)
_ISO = "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'"
_DATE = "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"

SCHEMA_V1 = f"""
CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    ref TEXT UNIQUE,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    company TEXT,
    contact TEXT,
    email TEXT,
    phone TEXT,
    owner TEXT,
    source TEXT,
    stage TEXT NOT NULL CHECK (stage IN ({_stages})),
    lost_at_stage TEXT CHECK (lost_at_stage IN ({_open})),
    lost_reason TEXT,
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency = upper(currency)),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
    close_date TEXT CHECK (close_date {_DATE}),
    qualified_at TEXT CHECK (qualified_at {_ISO}),
    prequalified_reason TEXT,
{_flags}
    next_action TEXT,
    next_due TEXT CHECK (next_due {_DATE}),
    created_at TEXT NOT NULL CHECK (created_at {_ISO}),
    updated_at TEXT NOT NULL CHECK (updated_at {_ISO}),
    closed_at TEXT CHECK (closed_at {_ISO}),
    search TEXT NOT NULL DEFAULT '',
    CHECK ((stage = 'lost') = (lost_at_stage IS NOT NULL))
) STRICT;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    deal_id INTEGER NOT NULL REFERENCES deals(id) ON DELETE CASCADE,
    at TEXT NOT NULL CHECK (at {_ISO}),
    kind TEXT NOT NULL CHECK (kind IN ({_kinds})),
    from_stage TEXT CHECK (from_stage IN ({_stages})),
    to_stage TEXT CHECK (to_stage IN ({_stages})),
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT CHECK (length(currency) = 3),
    close_date TEXT CHECK (close_date {_DATE}),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
{_flags}
    reason TEXT,
    text TEXT,
    next_action TEXT,
    due TEXT CHECK (due {_DATE}),
    field TEXT,
    old TEXT,
    new TEXT,
    CHECK ((kind IN ('created', 'stage', 'lost', 'reopened')) = (to_stage IS NOT NULL))
) STRICT;

CREATE INDEX events_deal ON events (deal_id, at, id);
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX deals_stage_owner ON deals (stage, owner);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_close ON deals (close_date);
CREATE INDEX deals_updated ON deals (updated_at);

-- History is append-only: an event is never changed, and disappears only with its deal (rm).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM deals WHERE id = OLD.deal_id)
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
"""


def _migrations():  # -> sqlite_utils.Migrations, imported lazily (start-up cost)
    from sqlite_utils import Migrations

    migrations = Migrations("pipectl")

    @migrations(name="0001_initial")
    def initial(db) -> None:
        run_script(db.conn, SCHEMA_V1)

    @migrations(name="0002_report_indexes")
    def report_indexes(db) -> None:
        # Reports (issue 3) rebuild each deal's history from its moves only: a partial
        # covering index over the stage-carrying events (created, stage, lost, reopened)
        # lets that pass read the index alone, in (deal, time) order.
        run_script(
            db.conn,
            "CREATE INDEX events_moves ON events (deal_id, at, to_stage)"
            " WHERE to_stage IS NOT NULL;",
        )

    return migrations


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute a script statement by statement, inside the caller's transaction.

    (``executescript`` would COMMIT first and break the migration's atomicity.)
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending[:60]!r}")


# Number of migrations above; a test checks it matches.
VERSION = 2


def migrate(conn: sqlite3.Connection, path: Path | None = None) -> list[str]:
    """Apply pending migrations once, under the write lock. Returns the names applied."""
    from pipectl.store.db import APPLICATION_ID, transaction

    if conn.execute("PRAGMA user_version").fetchone()[0] >= VERSION:
        return []
    from sqlite_utils import Database

    with transaction(conn):
        # Re-read under the lock: another process may have migrated meanwhile.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current >= VERSION:
            return []
        if current > 0 and path is not None:
            _backup_before_upgrade(conn, path, current)
        db = Database(conn)
        migrations = _migrations()
        names = [m.name for m in migrations.pending(db)]
        migrations.apply(db)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {VERSION}")
    return names


def _backup_before_upgrade(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the database as it is before upgrading it (file mode 0600, like the database).

    The copy is read through a second, read-only connection: ``conn`` holds the write lock
    (BEGIN IMMEDIATE), so nobody can commit meanwhile, and SQLite's backup API will not copy
    from a connection inside a write transaction (SQLITE_LOCKED, which Python's
    ``Connection.backup`` retries forever: it hung every upgrade).
    """
    from pipectl.store.db import copy_into

    target = path.with_name(f"{path.name}.schema{version}.bak")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.schema{version}.{n}.bak")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return copy_into(source, target)
    finally:
        source.close()
