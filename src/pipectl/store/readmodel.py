"""Read models: each deal's states over time and its completed stays, kept beside the events.

A report as of a moment needs every deal as it stood then. Replaying the history for that
(``reports.snapshot``'s replay) reads every move of every deal: several times one full scan of
``events``. These tables hold the replay's result instead, so that a deal's state at a moment
is a range query:

- ``deal_states``: one row per state a deal has been in, from ``since_at`` (the moment of the
  event that began it) until ``until_at`` (the moment of the next one; ``STILL``, later than
  any moment pipectl takes, for the deal's state now). The table is kept in ``until_at``
  order, so the states in force at a moment T (``since_at <= T < until_at``) are one range
  of it; at a moment after every event, exactly the states now. A state is what
  the snapshot gives for a deal: its pipeline and stage, since when, its loss (stage,
  reason, moment), its first win, when it became qualified, the furthest stage reached,
  its value, currency, close date and own probability, and when it was created and what
  its import could not tell. The deal's current state also carries its
  latest event's moment (``last_at``) and its latest note with a next action (``next_id``).
  A state that the next one replaced at the same moment is not kept (no moment sees it).
- ``deal_stays``: one row per completed stay in a stage: from a move into it to the deal's
  next move, with its length in seconds.
- ``deal_outcomes`` (and its counts, ``outcome_figures``): what each decided deal teaches the
  forecast now (``store.outcomes``).

They are one function of the events: ``domain.states`` computes a deal's rows from its events
alone (its latest move, latest value / close-date / probability event, first win, first
qualifying move, furthest stage of its pipeline), and ``fill`` writes them; nothing updates
them in place. Every insert into ``events`` (and every deleted
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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipectl.domain.states import ROW
from pipectl.store import sql

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

Pipelines = Mapping[int, "Pipeline"]

# The first schema that has the read models (migration 0007).
SINCE_VERSION = 7


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
    seconds REAL,  -- NULL where a moment is no date (written around pipectl)
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

# Each marked deal's events, by deal then id (``domain.states.EVENT_COLUMNS``, led by deal_id).
EVENTS_SQL = """
SELECT deal_id, {columns} FROM events {hint}
WHERE deal_id IN (SELECT deal_id FROM {dirty}) AND voided_by IS NULL
ORDER BY deal_id, id
"""
# The same for a large share of the deals: every deal's events, sorted once, read in one pass;
# the marked ones are picked out in Python (``_marked``), by deal, from the marks in the same
# order (a probe of the marks per event cost ~1.8 us each: 9 s of 5M events).
EVERY_EVENT_SQL = """
SELECT deal_id, {columns} FROM events NOT INDEXED
WHERE voided_by IS NULL
ORDER BY deal_id, id
"""

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


def _many(conn: sqlite3.Connection, dirty: str) -> bool:
    """Whether the deals listed in ``dirty`` are a large share of all (over 1 in 4): then one
    sorted pass over every event costs less than reading theirs through the index. Measured
    (``fill`` of every n-th deal): at 100k deals the index was faster up to half of them
    (10 %: 1.4 s against 2.4 s), at 1M up to about 30 % (2 %: 6 s against 18.5 s; 10 %: 21 s
    against 39 s; 30 %: 73 s against 79 s), its random reads of events costing more there."""
    (marked,) = conn.execute(f"SELECT count(*) FROM {dirty}").fetchone()
    (deals,) = conn.execute("SELECT count(*) FROM deals").fetchone()
    return bool(marked * 4 > deals)


def fill(conn: sqlite3.Connection, pipelines: Pipelines, dirty: str, states_table: str,
         stays_table: str, past_table: str | None = None, many: bool | None = None,
         outcomes_table: str | None = None) -> None:
    """Insert the rows of the deals listed in table ``dirty`` (deal_id), computed from their
    events (``domain.states``), into ``states_table`` and ``stays_table`` (their columns as
    ``deal_states`` and ``deal_stays``; with ``past_table``, the states a later one replaced
    go there; with ``outcomes_table``, what each teaches the forecast, as ``deal_outcomes``:
    ``store.outcomes``). A few deals' events are read through their index; a large share (an
    import, the migration) in one pass over the table, sorted once."""
    from pipectl.domain import states as domain

    if many is None:
        many = _many(conn, dirty)
    facts_by_pipeline = domain.facts_of(pipelines)
    columns = ", ".join(domain.EVENT_COLUMNS)
    # read as the pass goes (on a server, a server-side cursor: never every event at once)
    if many:
        _, cur = sql.streamed(conn, EVERY_EVENT_SQL.format(columns=columns))
    else:
        _, cur = sql.streamed(conn, EVENTS_SQL.format(columns=columns, dirty=dirty,
                                                      hint=sql.indexed_by("events_deal")))
    slots = f"({', '.join(ROW)}) VALUES ({', '.join('?' * len(ROW))})"
    now_sql = f"INSERT INTO {states_table} {slots}"
    past_sql = f"INSERT INTO {past_table or states_table} {slots}"
    stay_sql = (f"INSERT INTO {stays_table} ({', '.join(domain.STAY)}, seconds) "
                f"VALUES (?, ?, ?, ?, ?, ?, ({sql.day('?6')} - {sql.day('?5')}) * 86400)")
    outcome_sql = (f"INSERT INTO {outcomes_table} ({', '.join(domain.OUTCOME_ROW)}) "
                   f"VALUES ({', '.join('?' * len(domain.OUTCOME_ROW))})")
    now_rows: list[tuple] = []
    past_rows: list[tuple] = []
    stay_rows: list[tuple] = []
    outcome_rows: list[tuple] = []
    writer = conn.cursor()
    # a server takes many rows by COPY (an INSERT a row costs a round of the protocol each);
    # the stays through a scratch table, their seconds computed by the server as on a file
    copying = many and not sql.on_sqlite(conn)
    if copying:
        conn.execute("DROP TABLE IF EXISTS temp.read_stays")
        conn.execute(f"CREATE TEMP TABLE read_stays AS SELECT {', '.join(domain.STAY)} "
                     f"FROM {stays_table} WHERE 1 = 0")

    def flush() -> None:
        if copying:
            put = conn.copy_in  # type: ignore[attr-defined]
            put(states_table, now_rows, ROW)
            put(past_table or states_table, past_rows, ROW)
            put("temp.read_stays", stay_rows, domain.STAY)
            if outcome_rows:
                put(outcomes_table, outcome_rows, domain.OUTCOME_ROW)
        else:
            writer.executemany(now_sql, now_rows)
            writer.executemany(past_sql, past_rows)
            writer.executemany(stay_sql, stay_rows)
            if outcome_rows:
                writer.executemany(outcome_sql, outcome_rows)
        now_rows.clear()
        past_rows.clear()
        stay_rows.clear()
        outcome_rows.clear()

    deals = domain.by_deal(cur)
    if many:
        deals = _marked(deals, sql.streamed(conn, f"SELECT deal_id FROM {dirty} "
                                                  "ORDER BY deal_id")[1])
    for deal_id, events in deals:
        rows, stays = domain.states(deal_id, events, facts_by_pipeline)
        if rows:
            now_rows.append(rows[-1])
            past_rows.extend(rows[:-1])
        stay_rows.extend(stays)
        if outcomes_table is not None:
            outcome_rows.extend(domain.outcomes(deal_id, events, facts_by_pipeline))
        if len(past_rows) + len(now_rows) >= 20_000:
            flush()
    flush()
    if copying:
        names = ", ".join(domain.STAY)
        conn.execute(f"INSERT INTO {stays_table} ({names}, seconds) SELECT {names}, "
                     f"({sql.day('left_at')} - {sql.day('entered_at')}) * 86400 "
                     "FROM temp.read_stays")
        conn.execute("DROP TABLE temp.read_stays")


def _marked(deals: Iterable[tuple[int, list]], marks: Iterable[tuple[int]]
            ) -> Iterator[tuple[int, list]]:
    """The ``(deal_id, events)`` of ``deals`` whose id is in ``marks``; both by deal id."""
    marked = iter(marks)
    mark = next(marked, None)
    for deal_id, events in deals:
        while mark is not None and mark[0] < deal_id:
            mark = next(marked, None)
        if mark is None:
            return
        if mark[0] == deal_id:
            yield deal_id, events


def _fill_many(conn: sqlite3.Connection, pipelines: Pipelines) -> None:
    """``fill`` for a large share of the deals (an import, the migration), written in the
    order the tables keep their rows, their other indexes dropped meanwhile and built again
    after in one sorted pass each (a row written out of order costs a search of the b-tree,
    and the file's pages in cache no longer hold the place it goes). Each deal's state now
    and its stays come in that order already (by deal); the states a later one replaced go
    to a scratch table first and in sorted by when they ended."""
    # a server's indexes stay (its planner, its memory)
    from pipectl.store import outcomes

    kept = outcomes.present(conn)
    tables = ("deal_states", "deal_stays", "deal_outcomes") if kept else (
        "deal_states", "deal_stays")
    indexes = [] if not sql.on_sqlite(conn) else conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({', '.join(repr(t) for t in tables)}) ORDER BY name").fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for table in tables:  # one pass each, no index to keep
        conn.execute(f"DELETE FROM {table} WHERE deal_id IN (SELECT deal_id FROM read_dirty)")
    conn.execute("DROP TABLE IF EXISTS temp.read_past")
    conn.execute("CREATE TEMP TABLE read_past AS SELECT * FROM deal_states WHERE 1 = 0")
    try:
        fill(conn, pipelines, "read_dirty", "deal_states", "deal_stays", "temp.read_past",
             many=True, outcomes_table="deal_outcomes" if kept else None)
        conn.execute("INSERT INTO deal_states SELECT * FROM temp.read_past "
                     "ORDER BY until_at, deal_id, since_id")
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.read_past")
    for _, index_sql in indexes:
        conn.execute(index_sql)
    if kept:
        outcomes.rebuild(conn)


def settle(conn: sqlite3.Connection) -> None:
    """Recompute the rows of every marked deal (and of every deal of a pipeline whose facts
    changed) and clear the marks. Inside the caller's write transaction.

    A server's team member who may not write them (a rep: ``store.postgres.team``) leaves
    the marks: until a manager's or the owner's next write settles them, the reports replay
    the events (``usable`` says no), so no figure depends on rows a rep could have written."""
    if not present(conn) or not sql.may_write(conn, "deal_states"):
        return
    pipelines = None
    if conn.execute("SELECT 1 FROM read_dirty_pipelines LIMIT 1").fetchone():
        pipelines = definitions(conn)
        stored = dict(conn.execute("SELECT pipeline_id, facts FROM read_facts"))
        for (pid,) in conn.execute("SELECT pipeline_id FROM read_dirty_pipelines").fetchall():
            if pid not in pipelines:  # removed, or no definition pipectl can read: no facts
                conn.execute("DELETE FROM read_facts WHERE pipeline_id = ?", (pid,))
                continue
            now = facts(pipelines[pid])
            if stored.get(pid) == now:
                continue
            conn.execute("INSERT INTO read_facts (pipeline_id, facts) VALUES (?, ?) "
                         "ON CONFLICT (pipeline_id) DO UPDATE SET facts = excluded.facts",
                         (pid, now))
            if pid in stored:  # its deals were computed with other facts
                conn.execute(
                    "INSERT OR IGNORE INTO read_dirty (deal_id) SELECT DISTINCT deal_id "
                    f"FROM events {sql.indexed_by('events_moves')} "
                    "WHERE to_stage IS NOT NULL AND voided_by IS NULL AND pipeline_id = ?",
                    (pid,))
        conn.execute("DELETE FROM read_dirty_pipelines")
    from pipectl.store import figures, outcomes

    counted = figures.present(conn)
    kept = outcomes.present(conn)
    if not conn.execute("SELECT 1 FROM read_dirty LIMIT 1").fetchone():
        if counted and figures.needs_rebuild(conn):
            figures.rebuild(conn)
        if kept and outcomes.needs_rebuild(conn):
            outcomes.rebuild(conn)
        return
    if pipelines is None:
        pipelines = definitions(conn)
    marked = "deal_id IN (SELECT deal_id FROM read_dirty)"
    if not _many(conn, "read_dirty"):
        before = figures.counted(conn, marked) if counted else []
        taught = outcomes.counted(conn, marked) if kept else []
        # no counts to change (``db check --repair`` emptied them, or none yet): counted
        # anew after (told after the refill, a repair whose deals held the only rows left
        # the table empty and took their old rows from it: negative counts)
        recount = kept and outcomes.empty(conn)
        for table in ("deal_states", "deal_stays", "deal_outcomes") if kept else (
                "deal_states", "deal_stays"):
            conn.execute(f"DELETE FROM {table} WHERE {marked}")
        fill(conn, pipelines, "read_dirty", "deal_states", "deal_stays", many=False,
             outcomes_table="deal_outcomes" if kept else None)
        if counted:
            if figures.needs_rebuild(conn):
                figures.rebuild(conn)
            else:
                figures.apply(conn, before, figures.counted(conn, marked))
        if kept:
            if recount:
                outcomes.rebuild(conn)
            else:
                outcomes.apply(conn, taught, outcomes.counted(conn, marked))
    else:
        _fill_many(conn, pipelines)
        if counted:
            figures.rebuild(conn)
    conn.execute("DELETE FROM read_dirty")


_replaying = [0]  # > 0: inside ``replaying()`` (a plain counter: a report's threads see it)


@contextmanager
def replaying() -> Iterator[None]:
    """Within it, ``usable`` says no: the reports replay the events (tests compare the two)."""
    _replaying[0] += 1
    try:
        yield
    finally:
        _replaying[0] -= 1


def usable(conn: sqlite3.Connection, pipelines: Pipelines) -> bool:
    """Whether the rows give the snapshot under ``pipelines`` (the definitions in force at the
    moment asked): the database has them, none is waiting to be recomputed, and they were
    computed with the same facts. ``PIPECTL_REPLAY=1`` (benchmarks) or ``replaying()`` (tests)
    make the reports replay the events instead."""
    if _replaying[0] or os.environ.get("PIPECTL_REPLAY") == "1":
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
