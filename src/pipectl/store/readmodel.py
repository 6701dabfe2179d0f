"""Read models: each deal's states over time and its completed stays, kept beside the events.

A report as of a moment needs every deal as it stood then. Replaying the history for that
(``reports.snapshot``'s replay) reads every move of every deal: several times one full scan of
``events``. These tables hold the replay's result instead, so that a deal's state at a moment
is a range query:

- ``deal_states``: one row per state a deal has been in, from ``since_at`` (the moment of the
  event that began it) until ``until_at`` (the moment of the next one; NULL: the deal's state
  now). A state is what the snapshot gives for a deal: its pipeline and stage, since when,
  its loss (stage, reason, moment), its first win, when it became qualified, the furthest
  stage reached, its value, currency, close date and own probability, and when it was
  created and what its import could not tell. The deal's current state also carries its
  latest event's moment (``last_at``) and its latest note with a next action (``next_id``).
  A state that the next one replaced at the same moment is not kept (no moment sees it).
- ``deal_stays``: one row per completed stay in a stage: from a move into it to the deal's
  next move, with its length in seconds.

They are one function of the events: ``REFRESH_SQL`` recomputes a deal's rows from its events
alone, with the same window over its moves that the replay reads (latest move, latest value /
close-date / probability event, first win, first qualifying move, furthest stage of its
pipeline). Nothing updates them in place. Every insert into ``events`` (and every deleted
deal) marks the deal in ``read_dirty`` (a trigger, so no write path can forget it); every new
pipeline version marks the pipeline in ``read_dirty_pipelines``. ``settle``, run by
``store.db.transaction`` just before every COMMIT, recomputes the marked deals and empties the
marks: in the same transaction as the events, so a crash leaves both as they were.

What a stage means (won, its place on the line, beyond the gate) comes from the definitions:
the rows are computed with the definitions in force now, recorded per pipeline in
``read_facts``. A new version that changes those facts recomputes every deal that was ever in
that pipeline. A report as of a moment may use the rows only when the definitions in force
at that moment say the same (``usable``); before a change of definition it replays the
events, as before (``--as-of`` stays exact). ``tests/store/test_read_models.py`` proves, on
random histories, that the rows give exactly what the replay gives; ``pipectl db check``
recomputes them and compares.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from pipectl.domain.pipeline import LOST
from pipectl.store import sql

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

Pipelines = Mapping[int, "Pipeline"]

# The first schema that has the read models (migration 0007).
SINCE_VERSION = 7

# ``until_at`` of a deal's state now: after any moment pipectl takes (dates end in 2999).
STILL = "9999-12-31T23:59:59Z"

STATE_COLUMNS = (
    "created_at", "unknown", "pipeline_id", "stage", "entered_at", "lost_stage",
    "lost_reason", "lost_at", "won_at", "qualified_at", "reached", "value_minor", "currency",
    "close_date", "probability",
)
ALL_COLUMNS = ("deal_id", "since_id", "since_at", "until_at", *STATE_COLUMNS, "last_at",
               "next_id")

SCHEMA = """
CREATE TABLE deal_states (
    deal_id INTEGER NOT NULL,
    since_id INTEGER NOT NULL,
    since_at TEXT NOT NULL,
    until_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    unknown TEXT,
    pipeline_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    lost_stage TEXT,
    lost_reason TEXT,
    lost_at TEXT,
    won_at TEXT,
    qualified_at TEXT,
    reached INTEGER,
    value_minor INTEGER,
    currency TEXT,
    close_date TEXT,
    probability INTEGER,
    last_at TEXT,
    next_id INTEGER,
    PRIMARY KEY (until_at, deal_id, since_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deal_states_deal ON deal_states (deal_id);

CREATE TABLE deal_stays (
    deal_id INTEGER NOT NULL,
    entered_id INTEGER NOT NULL,
    pipeline_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    left_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (deal_id, entered_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deal_stays_left ON deal_stays (left_at, pipeline_id, stage, seconds);
-- every stay of a stage in order of length: its median is read by offset
CREATE INDEX deal_stays_stage ON deal_stays (pipeline_id, stage, seconds);

-- The definitions' facts the rows were computed with, per pipeline (``facts``).
CREATE TABLE read_facts (
    pipeline_id INTEGER PRIMARY KEY,
    facts TEXT NOT NULL
) STRICT;

CREATE TABLE read_dirty (deal_id INTEGER PRIMARY KEY) STRICT;
CREATE TABLE read_dirty_pipelines (pipeline_id INTEGER PRIMARY KEY) STRICT;

CREATE TRIGGER read_dirty_event AFTER INSERT ON events
BEGIN INSERT OR IGNORE INTO read_dirty (deal_id) VALUES (NEW.deal_id); END;
CREATE TRIGGER read_dirty_deal AFTER DELETE ON deals
BEGIN INSERT OR IGNORE INTO read_dirty (deal_id) VALUES (OLD.id); END;
CREATE TRIGGER read_dirty_version AFTER INSERT ON pipeline_versions
BEGIN INSERT OR IGNORE INTO read_dirty_pipelines (pipeline_id) VALUES (NEW.pipeline_id); END;
"""

# A lost deal moved into another pipeline: still lost, at the stage the move names.
_MOVED = f"(s.kind = 'pipeline' AND s.from_stage = '{LOST}')"

REFRESH_SQL = """
WITH ev AS (
    SELECT id, deal_id, at, kind, pipeline_id, from_stage, to_stage,
           -- a move: the furthest stage of its pipeline the deal has reached by then
           CASE WHEN to_stage IS NOT NULL THEN max({order}) OVER (
               PARTITION BY deal_id, pipeline_id ORDER BY id ROWS UNBOUNDED PRECEDING) END
               AS reached
    FROM events {hint}
    WHERE deal_id IN (SELECT deal_id FROM {dirty})
      AND (to_stage IS NOT NULL OR kind = 'value' OR kind = 'close_date'
           OR kind = 'probability')
),
w AS (
    SELECT id, deal_id, at,
        lead(at) OVER (PARTITION BY deal_id ORDER BY id) AS until_at,
        min(CASE WHEN to_stage IS NOT NULL THEN id END) OVER d AS k_created,
        -- the latest move's id and, in the low bits, the furthest stage reached then
        max(CASE WHEN to_stage IS NOT NULL THEN id * {bits} + reached END) OVER d AS ks,
        max(CASE WHEN kind = 'value' THEN id END) OVER d AS k_value,
        max(CASE WHEN kind = 'close_date' THEN id END) OVER d AS k_close,
        max(CASE WHEN kind = 'probability' THEN id END) OVER d AS k_prob,
        max(CASE WHEN to_stage = '{lost}' THEN id END) OVER d AS k_lost,
        min(CASE WHEN to_stage IS NOT NULL AND {won} THEN at END) OVER d AS won_at,
        min(CASE WHEN to_stage IS NOT NULL AND {qualified}
                  AND NOT (kind = 'pipeline' AND from_stage = '{lost}') THEN at END)
            OVER d AS qualified_at
    FROM ev
    WINDOW d AS (PARTITION BY deal_id ORDER BY id ROWS UNBOUNDED PRECEDING)
)
SELECT
    w.deal_id, w.id AS since_id, w.at AS since_at,
    coalesce(w.until_at, '{still}') AS until_at,
    cr.at AS created_at,
    CASE WHEN cr.field = 'unknown' THEN cr.new END AS unknown,
    s.pipeline_id,
    CASE WHEN {moved} THEN '{lost}' ELSE s.to_stage END AS stage,
    s.at AS entered_at,
    CASE WHEN s.to_stage = '{lost}' THEN s.from_stage WHEN {moved} THEN s.to_stage END
        AS lost_stage,
    CASE WHEN s.to_stage = '{lost}' THEN s.reason WHEN {moved} THEN l.reason END
        AS lost_reason,
    CASE WHEN s.to_stage = '{lost}' THEN s.at WHEN {moved} THEN l.at END AS lost_at,
    w.won_at,
    CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE w.qualified_at END AS qualified_at,
    w.ks % {bits} AS reached,
    CASE WHEN w.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
    CASE WHEN w.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
    CASE WHEN w.k_close IS NULL THEN cr.close_date ELSE c.close_date END AS close_date,
    CASE WHEN w.k_prob IS NULL THEN cr.probability ELSE p.probability END AS probability,
    -- the deal's latest event and its latest note with a next action (stale, next)
    CASE WHEN w.until_at IS NULL THEN (
        SELECT max(x.at) FROM events x {hint} WHERE x.deal_id = w.deal_id) END AS last_at,
    CASE WHEN w.until_at IS NULL THEN (
        SELECT max(x.id) FROM events x {hint} WHERE x.deal_id = w.deal_id AND x.kind = 'note'
           AND (x.next_action IS NOT NULL OR x.due IS NOT NULL)) END AS next_id
FROM w
JOIN events cr ON cr.id = w.k_created
JOIN events s ON s.id = w.ks / {bits}
LEFT JOIN events v ON v.id = w.k_value
LEFT JOIN events c ON c.id = w.k_close
LEFT JOIN events p ON p.id = w.k_prob
LEFT JOIN events l ON l.id = w.k_lost
WHERE w.until_at IS NULL OR w.until_at > w.at
"""

STAYS_SQL = """
SELECT deal_id, entered_id, pipeline_id, stage, entered_at, left_at,
       (left_j - j) * 86400 AS seconds
FROM (
    SELECT deal_id, id AS entered_id, pipeline_id, to_stage AS stage, at AS entered_at,
           {day} AS j, lead(at) OVER win AS left_at, lead({day}) OVER win AS left_j
    FROM events {hint}
    WHERE deal_id IN (SELECT deal_id FROM {dirty}) AND to_stage IS NOT NULL
    WINDOW win AS (PARTITION BY deal_id ORDER BY id)
)
WHERE left_at IS NOT NULL
"""


# A stage's order fits in these low bits of ``ks`` (a pipeline has far fewer stages).
_BITS = 1 << 16


def facts(p: Pipeline) -> str:
    """What the rows depend on in a pipeline's definition, as one text: each stage's key,
    status, order and whether it lies beyond the gate."""
    return json.dumps([[s.key, s.status.value, s.order, p.is_qualified_stage(s.key)]
                       for s in p.stages], separators=(",", ":"))


def definitions(conn: sqlite3.Connection) -> dict[int, Pipeline]:
    """Each pipeline's latest definition, the one the rows are computed with. A pipeline
    whose stored definition cannot be read (written around pipectl: ``db check`` tells it)
    is left out: its stages then count as neither won nor beyond a gate, here as in the
    check's recomputation, and a report replays the events."""
    from pipectl.errors import PipectlError
    from pipectl.store.pipelines import load

    out = {}
    for (pid,) in conn.execute("SELECT id FROM pipelines ORDER BY id").fetchall():
        try:
            out[int(pid)] = load(conn, int(pid))
        except (ValueError, PipectlError):
            continue
    return out


def present(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= SINCE_VERSION)


def _refresh_sql(pipelines: Pipelines, dirty: str) -> dict[str, str]:
    won = sql.member(pipelines, lambda p: p.won_keys, "to_stage", "pipeline_id")
    qualified = sql.member(
        pipelines, lambda p: tuple(s.key for s in p.line if p.is_qualified_stage(s.key)),
        "to_stage", "pipeline_id")
    order = sql.stage_case(pipelines, "order", "to_stage", "pipeline_id", default="0")
    hint = sql.indexed_by("events_deal")
    return {
        "states": REFRESH_SQL.format(hint=hint, dirty=dirty, order=order, won=won,
                                     qualified=qualified, lost=LOST, moved=_MOVED,
                                     still=STILL, bits=_BITS),
        "stays": STAYS_SQL.format(hint=sql.indexed_by("events_moves"), dirty=dirty,
                                  day=sql.day("at")),
    }


def computed(pipelines: Pipelines, dirty: str) -> tuple[str, str]:
    """The SELECTs of the rows of the deals listed in table ``dirty`` (deal_id), recomputed
    from their events: (states, stays)."""
    parts = _refresh_sql(pipelines, dirty)
    return parts["states"], parts["stays"]


def settle(conn: sqlite3.Connection) -> None:
    """Recompute the rows of every marked deal (and of every deal of a pipeline whose facts
    changed) and clear the marks. Inside the caller's write transaction."""
    if not present(conn):
        return
    pipelines = None
    if conn.execute("SELECT 1 FROM read_dirty_pipelines LIMIT 1").fetchone():
        pipelines = definitions(conn)
        stored = dict(conn.execute("SELECT pipeline_id, facts FROM read_facts"))
        for (pid,) in conn.execute("SELECT pipeline_id FROM read_dirty_pipelines").fetchall():
            if pid not in pipelines:
                continue
            now = facts(pipelines[pid])
            if stored.get(pid) == now:
                continue
            conn.execute("INSERT OR REPLACE INTO read_facts (pipeline_id, facts) VALUES (?, ?)",
                         (pid, now))
            if pid in stored:  # its deals were computed with other facts
                conn.execute(
                    "INSERT OR IGNORE INTO read_dirty (deal_id) SELECT DISTINCT deal_id "
                    f"FROM events {sql.indexed_by('events_moves')} "
                    "WHERE to_stage IS NOT NULL AND pipeline_id = ?", (pid,))
        conn.execute("DELETE FROM read_dirty_pipelines")
    if not conn.execute("SELECT 1 FROM read_dirty LIMIT 1").fetchone():
        return
    if pipelines is None:
        pipelines = definitions(conn)
    states, stays = computed(pipelines, "read_dirty")
    conn.execute("DELETE FROM deal_states WHERE deal_id IN (SELECT deal_id FROM read_dirty)")
    conn.execute("DELETE FROM deal_stays WHERE deal_id IN (SELECT deal_id FROM read_dirty)")
    conn.execute(f"INSERT INTO deal_states ({', '.join(ALL_COLUMNS)}) {states}")
    conn.execute(f"INSERT INTO deal_stays {stays}")
    conn.execute("DELETE FROM read_dirty")


_replaying: ContextVar[bool] = ContextVar("replaying", default=False)


@contextmanager
def replaying() -> Iterator[None]:
    """Within it, ``usable`` says no: the reports replay the events (tests compare the two)."""
    token = _replaying.set(True)
    try:
        yield
    finally:
        _replaying.reset(token)


def usable(conn: sqlite3.Connection, pipelines: Pipelines) -> bool:
    """Whether the rows give the snapshot under ``pipelines`` (the definitions in force at the
    moment asked): the database has them, none is waiting to be recomputed, and they were
    computed with the same facts. ``PIPECTL_REPLAY=1`` (benchmarks) or ``replaying()`` (tests)
    make the reports replay the events instead."""
    if _replaying.get() or os.environ.get("PIPECTL_REPLAY") == "1":
        return False
    try:
        if not present(conn):
            return False
        if conn.execute("SELECT 1 FROM read_dirty LIMIT 1").fetchone() or conn.execute(
                "SELECT 1 FROM read_dirty_pipelines LIMIT 1").fetchone():
            return False
        stored = dict(conn.execute("SELECT pipeline_id, facts FROM read_facts"))
    except sqlite3.OperationalError:
        return False
    return all(stored.get(pid) == facts(p) for pid, p in pipelines.items())


def mark_all(conn: sqlite3.Connection) -> None:
    """Mark every deal and pipeline for ``settle`` (the migration that adds the tables)."""
    conn.execute("INSERT OR IGNORE INTO read_dirty (deal_id) SELECT id FROM deals")
    conn.execute("INSERT OR IGNORE INTO read_dirty_pipelines (pipeline_id) "
                 "SELECT id FROM pipelines")
