"""The report's figures kept at write time: every deal's state now, counted.

``report`` over all time, as of now, adds up every deal: how many are open, won and lost, how
many reached each stage, were qualified, won with a value in each currency, lost for each
reason ... A pass over a million deals' states costs about a second per group of figures.
``deal_figures`` holds the same sums ahead of time: one row per combination of what those
figures ask of a deal's state now (``store.readmodel``'s ``deal_states`` rows with
``until_at = STILL``): its pipeline, stage and currency, whether it has a value and its own
probability, the furthest stage it reached, whether it was qualified, won or lost (and why
and where), what its import could not tell; with how many deals share it and the exact sums
of their values and of value x own probability (two columns each, ``sql.exact_sum``). At 1M
deals it is some ten thousand rows.

They are kept in step by ``readmodel.settle``, in the write transaction: a few deals
recomputed change their old rows' counts by minus and their new ones' by plus (``apply``);
many (an import, a migration) rebuild the table (``rebuild``), as does a table found empty
beside states (``db check --repair`` empties it). The stages' meaning (open, won) is not in
it: the report applies the definitions in force, under the read models' own condition
(``readmodel.usable``). ``reports.summary`` reads it for the report over all time as of a
moment after every event; ``tests/store/test_read_models.py`` proves it gives exactly what
the replay gives, and ``db check`` recomputes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pipectl.domain.pipeline import LOST
from pipectl.domain.states import STILL
from pipectl.store import sql

# The first schema that has the table (migration 0008).
SINCE_VERSION = 8

DIMENSIONS = ("pipeline_id", "stage", "currency", "valued", "own_probability", "reached",
              "qualified", "won", "lost", "unknown", "lost_reason", "lost_stage")
MEASURES = ("deals", "value_hi", "value_lo", "weighted_hi", "weighted_lo")

SCHEMA = """
-- every deal's state now by stage, for the won deals' cycles and the open deals' ages
CREATE INDEX deal_states_now
ON deal_states (stage, pipeline_id, entered_at, won_at, created_at, unknown)
WHERE until_at = '9999-12-31T23:59:59Z';

CREATE TABLE deal_figures (
    pipeline_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    currency TEXT,
    valued INTEGER NOT NULL,
    own_probability INTEGER NOT NULL,
    reached INTEGER,
    qualified INTEGER NOT NULL,
    won INTEGER NOT NULL,
    lost INTEGER NOT NULL,
    unknown TEXT,
    lost_reason TEXT,
    lost_stage TEXT,
    deals INTEGER NOT NULL,
    value_hi INTEGER,
    value_lo INTEGER,
    weighted_hi INTEGER,
    weighted_lo INTEGER
) STRICT;
"""

# A state's combination (``DIMENSIONS``), from a row of ``deal_states``.
COMBINATION = f"""pipeline_id, stage, currency, {sql.flag('value_minor IS NOT NULL')},
       {sql.flag('probability IS NOT NULL')}, reached, {sql.flag('qualified_at IS NOT NULL')},
       {sql.flag('won_at IS NOT NULL')}, {sql.flag(f"stage = '{LOST}' AND lost_at IS NOT NULL")},
       unknown,
       CASE WHEN stage = '{LOST}' THEN lost_reason END,
       CASE WHEN stage = '{LOST}' THEN lost_stage END"""

# The states now of the deals ``{where}`` selects, counted per combination.
_COUNTED = f"""
SELECT {COMBINATION},
       count(*), {sql.exact_sum('value_minor', zero=True)},
       {sql.exact_sum('value_minor * probability', zero=True)}
FROM deal_states
WHERE until_at = '{STILL}'{{where}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
"""


def present(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= SINCE_VERSION)


def event_after(conn: sqlite3.Connection, moment: str) -> bool:
    """Whether any event is later than ``moment`` (then a deal's state at that moment may not
    be its state now): the latest of each kind, read from ``events_kind_at``."""
    from pipectl.store.schema import EVENT_KINDS

    hint = sql.indexed_by("events_kind_at")
    for kind in EVENT_KINDS:
        (last,) = conn.execute(
            f"SELECT max(at) FROM events {hint} WHERE kind = ? AND voided_by IS NULL",
            (kind,)).fetchone()
        if last is not None and last > moment:
            return True
    return False


def counted(conn: sqlite3.Connection, where: str = "", states: str = "deal_states"
            ) -> list[tuple]:
    """The figures' rows of the states now in ``states`` (``where``: more conditions)."""
    query = _COUNTED.format(where=f" AND {where}" if where else "")
    return conn.execute(query.replace("FROM deal_states", f"FROM {states}")).fetchall()


def rebuild(conn: sqlite3.Connection) -> None:
    """Every row again, from every deal's state now."""
    conn.execute("DELETE FROM deal_figures")
    conn.execute(f"INSERT INTO deal_figures ({', '.join(DIMENSIONS + MEASURES)}) "
                 + _COUNTED.format(where=""))


def needs_rebuild(conn: sqlite3.Connection) -> bool:
    """An empty table beside states (``db check --repair`` empties it to have it rebuilt)."""
    return (conn.execute("SELECT 1 FROM deal_figures LIMIT 1").fetchone() is None
            and conn.execute("SELECT 1 FROM deal_states LIMIT 1").fetchone() is not None)


def apply(conn: sqlite3.Connection, before: Iterable[tuple], after: Iterable[tuple]) -> None:
    """Take the rows ``before`` (of some deals' old states) out and put ``after`` (their new
    ones) in: counts and sums change by the difference; a combination no deal has left goes."""
    n = len(DIMENSIONS)
    change: dict[tuple, list[int]] = {}
    for sign, rows in ((-1, before), (1, after)):
        for row in rows:
            into = change.setdefault(tuple(row[:n]), [0] * len(MEASURES))
            for i, v in enumerate(row[n:]):
                into[i] += sign * (v or 0)
    match = " AND ".join(f"{d} IS ?" for d in DIMENSIONS)
    adds = ", ".join(f"{m} = coalesce({m}, 0) + ?" for m in MEASURES)
    for key, delta in change.items():
        if not any(delta):
            continue
        done = conn.execute(f"UPDATE deal_figures SET {adds} WHERE {match}", (*delta, *key))
        if not done.rowcount:
            conn.execute(f"INSERT INTO deal_figures ({', '.join(DIMENSIONS + MEASURES)}) "
                         f"VALUES ({', '.join('?' * (len(DIMENSIONS) + len(MEASURES)))})",
                         (*key, *delta))
    conn.execute("DELETE FROM deal_figures WHERE deals = 0")


def differ(conn: sqlite3.Connection, states: str = "deal_states") -> bool:
    """Whether the table is not what the states now in ``states`` make of it."""
    table = "check_figures"
    conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    conn.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM deal_figures WHERE 1 = 0")
    try:
        conn.executemany(f"INSERT INTO temp.{table} VALUES "
                         f"({', '.join('?' * (len(DIMENSIONS) + len(MEASURES)))})",
                         counted(conn, states=states))
        found = conn.execute(
            f"SELECT 1 FROM (SELECT * FROM deal_figures EXCEPT SELECT * FROM temp.{table}) "
            f"AS gone UNION ALL SELECT 1 FROM (SELECT * FROM temp.{table} EXCEPT "
            "SELECT * FROM deal_figures) AS new LIMIT 1").fetchone()
        return found is not None
    finally:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
