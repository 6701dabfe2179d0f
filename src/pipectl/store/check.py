"""The SQL of ``pipectl db check``: the schema as the file holds it against the schema pipectl
makes, every deal with its events in one pass, and the repairs (``--repair``).

The schema pipectl makes is read from a fresh database in memory brought up to date by the same
migrations (``store.schema``) a real file goes through, so there is no second copy of it to
keep in step. Objects are compared by type and name, and their SQL once normalised (quoting and
spacing: SQLite rewrites a table's text when another is renamed, and not every version spells
that the same).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipectl.domain.projection import DEAL_FIELDS
from pipectl.store.db import translate
from pipectl.store.sql import on_sqlite, streamed

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

Row = dict[str, Any]

# The kinds of schema object, in the order they are created (a repair recreates in that order).
KINDS = ("table", "index", "view", "trigger")


@dataclass(frozen=True)
class SchemaObject:
    type: str  # table, index, view, trigger
    name: str
    table: str  # the table it belongs to (its own name for a table)
    sql: str


@dataclass(frozen=True)
class SchemaFinding:
    type: str
    name: str
    table: str
    problem: str  # "missing", "extra" or "altered"
    sql: str | None  # the SQL pipectl creates it with (None for an extra object)


def normalised(sql: str) -> str:
    """The SQL of a schema object with its quoting and spacing left out."""
    text = re.sub(r"\s+", " ", sql.replace('"', "").replace("`", "")).strip()
    return re.sub(r"\s*([(),;])\s*", r"\1", text)


def objects(conn: sqlite3.Connection) -> dict[tuple[str, str], SchemaObject]:
    """The file's tables, indexes, views and triggers, by (type, name); SQLite's own objects
    (its automatic indexes, statistics tables) left out. On a server: those of pipectl's
    objects it holds (presence only: the server keeps their definitions; its other objects
    are its own)."""
    if not on_sqlite(conn):
        from pipectl.store.postgres import schema as server

        mine = server.made()
        return {key: SchemaObject(key[0], key[1], "", "") for key in server.found(conn)
                if key in mine}
    return {
        (t, n): SchemaObject(t, n, tbl, sql)
        for t, n, tbl, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql IS NOT NULL"
        )
    }


def made_by_pipectl(version: int | None = None) -> dict[tuple[str, str], SchemaObject]:
    """The objects of a database pipectl makes today: a fresh one in memory, through the same
    migrations as a file on disk; with ``version``, only its first ``version`` migrations (a
    read-only file one schema back, which the commands that only read use as it is)."""
    from sqlite_utils import Database

    from pipectl.store.schema import _migrations

    mem = sqlite3.connect(":memory:", isolation_level=None)
    try:
        mem.execute("BEGIN")
        migrations = _migrations()
        names = [m.name for m in migrations.pending(Database(mem))]
        later = names[version:] if version is not None else []
        migrations.apply(Database(mem), stop_before=later[0] if later else None)
        return objects(mem)
    finally:
        mem.close()


def expected(conn: sqlite3.Connection) -> dict[tuple[str, str], SchemaObject]:
    """The objects pipectl makes for the schema version ``conn``'s file says it has."""
    if not on_sqlite(conn):
        from pipectl.store.postgres import schema as server

        return {(k, n): SchemaObject(k, n, "", "") for k, n in server.made()}
    return made_by_pipectl(conn.execute("PRAGMA user_version").fetchone()[0])


def compare(found: dict[tuple[str, str], SchemaObject],
            made: dict[tuple[str, str], SchemaObject]) -> list[SchemaFinding]:
    """What differs between the file's objects and pipectl's, in creation order."""
    out: list[SchemaFinding] = []
    for key in sorted(made.keys() | found.keys(), key=lambda k: (KINDS.index(k[0])
                                                                 if k[0] in KINDS else 9, k[1])):
        ours, theirs = made.get(key), found.get(key)
        if theirs is None:
            assert ours is not None
            out.append(SchemaFinding(ours.type, ours.name, ours.table, "missing", ours.sql))
        elif ours is None:
            out.append(SchemaFinding(theirs.type, theirs.name, theirs.table, "extra", None))
        elif normalised(ours.sql) != normalised(theirs.sql) or ours.table != theirs.table:
            out.append(SchemaFinding(ours.type, ours.name, ours.table, "altered", ours.sql))
    return out


def drop(conn: sqlite3.Connection, kind: str, name: str) -> None:
    """Drop an index, view or trigger (never a table: a repair does not touch data)."""
    assert kind in ("index", "view", "trigger")
    conn.execute(f'DROP {kind.upper()} IF EXISTS "{name.replace(chr(34), chr(34) * 2)}"')


def create(conn: sqlite3.Connection, sql: str) -> None:
    conn.execute(sql)


# ---------------------------------------------------------------- the file's structure


Findings = tuple[list[str], list[tuple[str, int | None, str]]]


def structure_beside(conn: sqlite3.Connection) -> Callable[[], Findings]:
    if not on_sqlite(conn):  # a server keeps its pages whole: its references are read
        found: Findings = ([], server_foreign_key_problems(conn))
        return lambda: found
    return _structure_beside(conn)


def server_foreign_key_problems(conn: Any) -> list[tuple[str, int | None, str]]:
    """``foreign_key_problems`` on a server: the server enforces each reference, but a row
    written with its checks off (``session_replication_role = replica``, a restore with
    triggers disabled) is not checked again; every foreign key of the schema is read here,
    as SQLite's ``PRAGMA foreign_key_check`` reads each (a row with a NULL in its key refers
    to nothing, as there)."""
    keys = conn.execute(
        # CAST, not ::, which the adapter would read as a named parameter
        "SELECT CAST(CAST(c.conrelid AS regclass) AS text), "
        "CAST(CAST(c.confrelid AS regclass) AS text), "
        "array_to_string(array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY "
        "k(n, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
        "ORDER BY k.i), ','), "
        "array_to_string(array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY "
        "k(n, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n "
        "ORDER BY k.i), ',') "
        "FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace s "
        "ON s.oid = c.connamespace WHERE c.contype = 'f' AND s.nspname = current_schema() "
        "ORDER BY 1, c.conname").fetchall()
    with_id = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
        "AND table_schema = current_schema()")}
    found: list[tuple[str, int | None, str]] = []
    for table, target, cols, target_cols in keys:
        mine, theirs = cols.split(","), target_cols.split(",")
        rowid = "t.id" if table in with_id else "NULL"  # SQLite's rowid, where there is one
        present = " AND ".join(f"t.{c} IS NOT NULL" for c in mine)
        match = " AND ".join(f"r.{b} = t.{a}" for a, b in zip(mine, theirs, strict=True))
        for (row,) in conn.execute(
                f"SELECT {rowid} FROM {table} t WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {target} r WHERE {match}) ORDER BY 1"):
            found.append((table, row, target))
    return found


def _structure_beside(conn: sqlite3.Connection) -> Callable[[], Findings]:
    """Start ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` on a second, read-only
    connection in another thread (sqlite3 releases the GIL while a statement runs: at 100,000
    deals they take about as long as the replay of every deal, which runs meanwhile); returns
    the function that waits for their findings: the damage (empty: the structure is intact)
    and the rows pointing at a row that does not exist (table, rowid, referenced table).
    Without a file (a database in memory), or when a second connection cannot read it (a
    read-only mount, opened immutable), both run at once on ``conn``."""
    from pipectl.store import sql

    other = sql.second_reader(conn)
    if other is not None:
        try:  # opened as the first was? (a read-only mount needs it immutable: run here then)
            other.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            other.close()
            other = None
    if other is None:
        found = _structure(conn)
        return lambda: found
    out: list[Findings] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(_structure(other))
        except BaseException as exc:  # told to the caller, in its thread
            failed.append(exc)
        finally:
            other.close()

    worker = threading.Thread(target=run, name="pipectl-structure-check", daemon=True)
    worker.start()

    def wait() -> Findings:
        worker.join()
        if failed:
            raise failed[0]
        return out[0]

    return wait


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def foreign_key_problems(conn: sqlite3.Connection) -> list[tuple[str, int, str]]:
    """(table, rowid, referenced table) of every row pointing at a row that does not exist."""
    return [(r[0], r[1], r[2]) for r in conn.execute("PRAGMA foreign_key_check")]


def _structure(conn: sqlite3.Connection) -> Findings:
    try:
        damage = integrity_problems(conn)
    except sqlite3.DatabaseError as exc:  # a file SQLite cannot even check: damage
        return [str(exc)], []
    try:
        return damage, [*foreign_key_problems(conn)]
    except sqlite3.DatabaseError:
        if damage:  # the damage is told
            return damage, []
        raise


@contextmanager
def readable() -> Iterator[None]:
    """SQLite's errors while reading (a damaged file) as pipectl's ``DatabaseError``."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise translate(exc) from exc


# ---------------------------------------------------------------- deals and their events

# the columns of a deal that its events make (and id, ref, which they do not), and search
DEAL_COLUMNS = (*DEAL_FIELDS, "search")


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    deals = conn.execute("SELECT count(*) FROM deals").fetchone()[0]
    events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return int(deals), int(events)


# the columns of an event the projection reads (not its id), and a note's text (the deal's
# search text holds it: store.deals.search_text)
EVENT_COLUMNS = ("deal_id", "at", "kind", "pipeline_id", "from_stage", "to_stage", "value_minor",
                 "currency", "close_date", "probability", "checks", "reason", "next_action",
                 "due", "field", "old", "new", "voided_by",  # (voided: undo, not projected)
                 "text")


def histories(conn: sqlite3.Connection, ids: list[int] | None = None
              ) -> Iterator[tuple[Row, list[Row]]]:
    """Every deal (its stored columns) with its events, oldest first (time, then id, as
    ``store.deals.events``), in one pass over each table: deals by id, events through the
    events_deal index; no query per deal, memory for one deal's history at a time. Events
    whose deal does not exist are skipped (``PRAGMA foreign_key_check`` tells of them).

    With ``ids`` (ascending), only those deals, read a few hundred at a time."""
    if ids is None:
        yield from _merged(conn, "", [])
        return
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        yield from _merged(conn, f" WHERE {{}} IN ({', '.join('?' * len(chunk))})", chunk)


def _merged(conn: sqlite3.Connection, where: str, params: list[int]
            ) -> Iterator[tuple[Row, list[Row]]]:
    _, deals = streamed(conn, f"SELECT {', '.join(DEAL_COLUMNS)} FROM deals"
                        f"{where.format('id')} ORDER BY id", params)
    _, events = streamed(conn, f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
                         f"{where.format('deal_id')} ORDER BY deal_id, at, id", params)
    names = EVENT_COLUMNS
    nxt = next(events, None)
    for row in deals:
        deal = dict(zip(DEAL_COLUMNS, row, strict=True))
        deal_id = row[0]
        while nxt is not None and nxt[0] < deal_id:  # history without its deal
            nxt = next(events, None)
        history: list[Row] = []
        while nxt is not None and nxt[0] == deal_id:
            history.append(dict(zip(names, nxt)))  # noqa: B905 (as many)
            nxt = next(events, None)
        yield deal, history


def event_deals(conn: sqlite3.Connection, event_ids: list[int]) -> set[int]:
    """The deals the events ``event_ids`` belong to."""
    out: set[int] = set()
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start:start + 500]
        out.update(r[0] for r in conn.execute(
            f"SELECT deal_id FROM events WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    return out


def pipeline_history(conn: sqlite3.Connection) -> dict[int, list[tuple[str, Pipeline]]]:
    """Every version of every pipeline (removed ones too), oldest first, with the moment it came
    into force; a version whose stored definition cannot be read is left out."""
    from pipectl.store import pipelines

    out: dict[int, list[tuple[str, Pipeline]]] = {}
    for (pid,) in conn.execute("SELECT DISTINCT pipeline_id FROM pipeline_versions"):
        for v, at in pipelines.versions(conn, int(pid)):
            try:
                version = pipelines.load_version(conn, int(pid), v)
            except ValueError:  # not a definition: the deals that need it cannot be replayed
                continue
            out.setdefault(int(pid), []).append((at, version))
    return out


def rewrite_deal(conn: sqlite3.Connection, deal_id: int, values: Row) -> str | None:
    """Store ``values`` (columns of ``deals``) as deal ``deal_id``'s. Returns why the database
    refused them (a stage its pipeline lacks, say), else None; a refusal changes nothing."""
    assert all(k in DEAL_COLUMNS and k != "id" for k in values)
    sets = ", ".join(f"{k} = ?" for k in values)
    try:
        conn.execute(f"UPDATE deals SET {sets} WHERE id = ?", (*values.values(), deal_id))
    except sqlite3.IntegrityError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- read models


def read_model_differences(conn: sqlite3.Connection) -> list[int]:
    """The deals whose read models (``store.readmodel``: states over time, completed stays)
    are not what their events make of them now, recomputed here from scratch (into scratch
    tables, compared in SQL), and those still waiting to be recomputed (marked by a write
    made around pipectl). Sorted ids."""
    from pipectl.store import readmodel

    if not readmodel.present(conn):
        return []
    from pipectl.store import figures, outcomes

    kept = outcomes.present(conn)
    every, states, stays, taught = ("check_every_deal", "check_states", "check_stays",
                                    "check_outcomes")
    try:
        conn.execute(f"CREATE TEMP TABLE {every} (deal_id INTEGER PRIMARY KEY)")
        conn.execute(f"INSERT INTO temp.{every} SELECT id FROM deals UNION "
                     "SELECT deal_id FROM deal_states UNION SELECT deal_id FROM deal_stays"
                     + (" UNION SELECT deal_id FROM deal_outcomes" if kept else ""))
        conn.execute(f"CREATE TEMP TABLE {states} AS SELECT * FROM deal_states WHERE 1 = 0")
        conn.execute(f"CREATE TEMP TABLE {stays} AS SELECT * FROM deal_stays WHERE 1 = 0")
        if kept:
            conn.execute(f"CREATE TEMP TABLE {taught} AS SELECT * FROM deal_outcomes "
                         "WHERE 1 = 0")
        readmodel.fill(conn, readmodel.definitions(conn), f"temp.{every}", f"temp.{states}",
                       f"temp.{stays}", outcomes_table=f"temp.{taught}" if kept else None)
        counted_wrong: list[int] = []
        if figures.present(conn) and figures.differ(conn, f"temp.{states}"):
            # the counts kept for the report are not those of the deals' states: every deal
            # counted in a combination that differs (or, for one no deal has, every deal)
            counted_wrong = every_deal_counted_wrong(conn, f"temp.{states}")
        taught_wrong: set[int] = set()
        if kept:
            # a deal's rows may repeat (two promises of one slip): compared with their counts
            columns = ", ".join(("deal_id", *outcomes.DIMENSIONS, "decided_at", "created_at",
                                 "value_minor", "currency"))
            grouped = "SELECT {c}, count(*) AS n FROM {t} GROUP BY {c}"
            right = grouped.format(c=columns, t=f"temp.{taught}")
            held = grouped.format(c=columns, t="deal_outcomes")
            taught_wrong = {r[0] for r in conn.execute(
                f"SELECT deal_id FROM ({held} EXCEPT {right}) AS a "
                f"UNION SELECT deal_id FROM ({right} EXCEPT {held}) AS b")}
            if not taught_wrong and outcomes.differ(conn):
                # the counts are wrong, not the deals' rows: every deal that has any
                taught_wrong = {r[0] for r in conn.execute(
                    "SELECT DISTINCT deal_id FROM deal_outcomes WHERE kind <> 'won'")} or {
                    r[0] for r in conn.execute("SELECT id FROM deals")}
        return sorted(set(counted_wrong) | taught_wrong | {r[0] for r in conn.execute(f"""
            SELECT deal_id FROM (SELECT * FROM deal_states EXCEPT SELECT * FROM temp.{states})
                AS a
            UNION SELECT deal_id FROM (SELECT * FROM temp.{states} EXCEPT
                                       SELECT * FROM deal_states) AS b
            UNION SELECT deal_id FROM (SELECT * FROM deal_stays EXCEPT SELECT * FROM temp.{stays})
                AS c
            UNION SELECT deal_id FROM (SELECT * FROM temp.{stays} EXCEPT
                                       SELECT * FROM deal_stays) AS d
            UNION SELECT deal_id FROM read_dirty""")})
    finally:
        for table in (every, states, stays, taught):
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def every_deal_counted_wrong(conn: sqlite3.Connection, states: str) -> list[int]:
    """The deals whose states now (recomputed, in ``states``) fall in a combination of
    ``deal_figures`` that is not what they make of it; every deal when the wrong rows are
    of combinations no deal has. Sorted ids."""
    from pipectl.domain.states import STILL
    from pipectl.store import figures

    dims = figures.DIMENSIONS
    right = figures.counted(conn, states=states)
    stored = conn.execute(f"SELECT {', '.join(dims + figures.MEASURES)} FROM deal_figures"
                          ).fetchall()
    wrong = {tuple(r[:len(dims)]) for r in set(map(tuple, right)) ^ set(map(tuple, stored))}
    ids = []
    for (deal_id, *key) in conn.execute(
            f"SELECT deal_id, {figures.COMBINATION} FROM {states} "
            f"WHERE until_at = '{STILL}' ORDER BY deal_id"):
        if tuple(key) in wrong:
            ids.append(deal_id)
    if not ids:
        ids = [r[0] for r in conn.execute("SELECT id FROM deals ORDER BY id")]
    return ids


def recompute_read_models(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Mark these deals, and every pipeline's facts, to be recomputed at the COMMIT of the
    caller's write transaction (``readmodel.settle``)."""
    from pipectl.store import readmodel

    if not readmodel.present(conn):
        return
    from pipectl.store import figures

    conn.executemany("INSERT OR IGNORE INTO read_dirty (deal_id) VALUES (?)",
                     [(i,) for i in ids])
    if figures.present(conn):
        conn.execute("DELETE FROM deal_figures")  # counted again, from every deal (settle)
    from pipectl.store import outcomes

    if outcomes.present(conn):
        conn.execute("DELETE FROM outcome_figures")  # the same
    conn.execute("DELETE FROM read_facts")
    conn.execute("INSERT OR IGNORE INTO read_dirty_pipelines (pipeline_id) "
                 "SELECT id FROM pipelines")

