"""What the decided deals teach the forecast, kept at write time.

``pipectl calibrate`` and ``pipectl forecast --range`` learn from every decided deal: how the
deals that were in each open stage ended, how long they took, how far the won ones landed
from the close dates promised for them, and what was won when (``reports.learning``). Read
from the events, as of a moment, that is a pass over every decided deal's moves: 7 s at
369,000 deals. As of now (a moment after every event) these tables hold the same, kept in
step by ``readmodel.settle`` with the deals' states, in the write transaction:

- ``deal_outcomes``: per decided deal, its rows (``domain.states.outcomes``): one per open
  stage it was in (``stage``), per close date promised before its win (``slip``), and its win
  (``won``: when, since when it existed, its value).
- ``outcome_figures``: the ``stage`` and ``slip`` rows counted per combination (``DIMENSIONS``):
  a few thousand rows at a million deals. A few deals recomputed change their old
  combinations' counts by minus and their new ones' by plus (``apply``); many (an import, a
  migration) rebuild it (``rebuild``), as does a table found empty beside outcomes (``db check
  --repair`` empties it).

``reports.learning`` reads them under the read models' condition (``readmodel.usable``: the
definitions in force say of each stage what they said when the rows were computed) and only
as of a moment after every event; ``tests/store/test_read_models.py`` proves they give exactly
what the events give, and ``db check`` recomputes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

# The first schema that has the tables (migration 0010).
SINCE_VERSION = 10

DIMENSIONS = ("kind", "pipeline_id", "stage", "won", "valued", "days", "p_own")

SCHEMA = """
CREATE TABLE deal_outcomes (
    deal_id INTEGER NOT NULL,
    kind TEXT NOT NULL,  -- 'stage', 'slip' or 'won' (domain.states.outcomes)
    pipeline_id INTEGER NOT NULL,
    stage TEXT,
    won INTEGER,
    valued INTEGER,
    days INTEGER,
    p_own INTEGER,
    decided_at TEXT,
    created_at TEXT,
    value_minor INTEGER,
    currency TEXT
) STRICT;
CREATE INDEX deal_outcomes_deal ON deal_outcomes (deal_id);
-- the wins in a window (the range's new business)
CREATE INDEX deal_outcomes_won ON deal_outcomes (kind, decided_at, created_at)
WHERE kind = 'won';

CREATE TABLE outcome_figures (
    kind TEXT NOT NULL,
    pipeline_id INTEGER NOT NULL,
    stage TEXT,
    won INTEGER,
    valued INTEGER,
    days INTEGER,
    p_own INTEGER,
    n INTEGER NOT NULL
) STRICT;
"""

# The same in PostgreSQL's words (``store.postgres.schema``'s migration 10).
PG_SCHEMA = """
CREATE TABLE deal_outcomes (
    deal_id BIGINT NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    pipeline_id BIGINT NOT NULL,
    stage TEXT COLLATE "C",
    won INTEGER,
    valued INTEGER,
    days INTEGER,
    p_own INTEGER,
    decided_at TEXT COLLATE "C",
    created_at TEXT COLLATE "C",
    value_minor BIGINT,
    currency TEXT COLLATE "C"
);
CREATE INDEX deal_outcomes_deal ON deal_outcomes (deal_id);
CREATE INDEX deal_outcomes_won ON deal_outcomes (kind, decided_at, created_at)
WHERE kind = 'won';
CREATE TABLE outcome_figures (
    kind TEXT COLLATE "C" NOT NULL,
    pipeline_id BIGINT NOT NULL,
    stage TEXT COLLATE "C",
    won INTEGER,
    valued INTEGER,
    days INTEGER,
    p_own INTEGER,
    n BIGINT NOT NULL
);
"""

_COUNTED = f"""
SELECT {', '.join(DIMENSIONS)}, count(*) FROM {{table}}
WHERE kind <> 'won'{{where}}
GROUP BY {', '.join(DIMENSIONS)}
"""


def present(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= SINCE_VERSION)


def counted(conn: sqlite3.Connection, where: str = "", table: str = "deal_outcomes"
            ) -> list[tuple]:
    """The figures' rows of the outcomes in ``table`` (``where``: more conditions)."""
    return conn.execute(_COUNTED.format(table=table, where=f" AND {where}" if where else "")
                        ).fetchall()


def rebuild(conn: sqlite3.Connection) -> None:
    """Every row again, from every deal's outcomes."""
    conn.execute("DELETE FROM outcome_figures")
    conn.execute(f"INSERT INTO outcome_figures ({', '.join(DIMENSIONS)}, n) "
                 + _COUNTED.format(table="deal_outcomes", where=""))


def empty(conn: sqlite3.Connection) -> bool:
    """Whether ``outcome_figures`` holds no row."""
    return conn.execute("SELECT 1 FROM outcome_figures LIMIT 1").fetchone() is None


def needs_rebuild(conn: sqlite3.Connection) -> bool:
    """An empty table beside outcomes (``db check --repair`` empties it to have it rebuilt)."""
    return (conn.execute("SELECT 1 FROM outcome_figures LIMIT 1").fetchone() is None
            and conn.execute("SELECT 1 FROM deal_outcomes WHERE kind <> 'won' LIMIT 1"
                             ).fetchone() is not None)


def apply(conn: sqlite3.Connection, before: Iterable[tuple], after: Iterable[tuple]) -> None:
    """Take the rows ``before`` (some deals' old outcomes, counted) out and put ``after``
    (their new ones) in; a combination no deal has left goes."""
    n = len(DIMENSIONS)
    change: dict[tuple, int] = {}
    for sign, rows in ((-1, before), (1, after)):
        for row in rows:
            key = tuple(row[:n])
            change[key] = change.get(key, 0) + sign * row[n]
    match = " AND ".join(f"{d} IS ?" for d in DIMENSIONS)
    for key, delta in change.items():
        if not delta:
            continue
        done = conn.execute(f"UPDATE outcome_figures SET n = n + ? WHERE {match}", (delta, *key))
        if not done.rowcount:
            conn.execute(f"INSERT INTO outcome_figures ({', '.join(DIMENSIONS)}, n) "
                         f"VALUES ({', '.join('?' * (n + 1))})", (*key, delta))
    conn.execute("DELETE FROM outcome_figures WHERE n = 0")


def differ(conn: sqlite3.Connection, table: str = "deal_outcomes") -> bool:
    """Whether ``outcome_figures`` is not what the outcomes in ``table`` make of it."""
    right = sorted(map(tuple, counted(conn, table=table)), key=repr)
    stored = sorted(map(tuple, conn.execute(
        f"SELECT {', '.join(DIMENSIONS)}, n FROM outcome_figures").fetchall()), key=repr)
    return right != stored
