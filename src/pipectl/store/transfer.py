"""All SQL of import and export: bulk inserts inside the caller's one transaction, reads by
ref in batches (never one SELECT per row), streaming reads for export, the stage maps an import
remembers, database checks.

A write that meets a value already taken (a deal's ref or id, an event's id) raises ``Taken``,
which names what was taken: the callers decide by it, never by SQLite's message.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from pipectl.store.deals import NOTE_KINDS, search_text, status_condition
from pipectl.store.sql import (
    has_temp_table,
    ids_from_largest,
    indexed_by,
    on_sqlite,
    streamed,
)

Row = dict[str, Any]

DEAL_COLUMNS = (
    "id", "ref", "name", "company", "contact", "email", "phone", "owner", "source",
    "pipeline_id", "stage", "lost_at_stage", "lost_reason", "value_minor", "currency",
    "probability", "close_date", "qualified_at", "prequalified_reason", "checklist",
    "next_action", "next_due", "created_at", "updated_at", "closed_at",
)
EVENT_COLUMNS = (
    "id", "deal_id", "at", "kind", "pipeline_id", "from_stage", "to_stage", "value_minor",
    "currency", "close_date", "probability", "checks", "reason", "text", "next_action", "due",
    "field", "old", "new",
)
_CHUNK = 500  # refs per SELECT ... IN (...), well under SQLite's parameter limit

# Bulk writes bind "" for NULL and let SQL turn it back (NULLIF(?, '')): Python's sqlite3 binds
# None through its adapter lookup (two failed attribute lookups per value, ~0.4 us), which made
# None the most expensive value of a row: a 21-column event of 15 NULLs cost ~7 us to bind,
# 1.5 us this way. pipectl stores no empty text (an empty text is NULL), so "" is free to mean
# NULL here; ``search`` (NOT NULL, '' for nothing) is bound as it is.


class Taken(Exception):
    """A value a row needs unique is in its table already: ``what`` is "deals.ref", "deals.id"
    or "events.id"."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is taken")
        self.what = what


# a server's unique constraints (store/postgres/schema.py) -> what SQLite's message names
_SERVER_UNIQUE = {"deals_ref_key": "deals.ref", "deals_pkey": "deals.id",
                  "events_pkey": "events.id"}


def taken(exc: Exception) -> Taken | None:
    """The Taken a UNIQUE or PRIMARY KEY failure means, else None (another constraint, or
    another error): SQLite's IntegrityError by its message, a server's unique_violation
    (SQLSTATE 23505) by its constraint's name."""
    if isinstance(exc, sqlite3.IntegrityError):
        text = str(exc)
        for what in ("deals.ref", "deals.id", "events.id"):
            if text == f"UNIQUE constraint failed: {what}":
                return Taken(what)
        return None
    if getattr(exc, "sqlstate", None) != "23505":
        return None
    what = _SERVER_UNIQUE.get(getattr(getattr(exc, "diag", None), "constraint_name", None))
    return Taken(what) if what else None


def _unique(run):  # decorator: an IntegrityError of a taken value -> Taken
    from functools import wraps

    @wraps(run)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return run(*args, **kwargs)
        except Exception as exc:
            found = taken(exc)
            if found is None:
                raise
            raise found from exc

    return call


def _slot(column: str) -> str:
    return "?"


def _none(value: Any) -> Any:
    """An empty cell is no value: NULL (done here, not by NULLIF(?, '') in SQL, where a
    typed server compares an integer with '')."""
    return None if value == "" else value


_INSERT_DEAL = (
    f"INSERT INTO deals ({', '.join(DEAL_COLUMNS)}, search) "
    f"VALUES ({', '.join(_slot(c) for c in (*DEAL_COLUMNS, 'search'))})"
)
_UPDATE_DEAL = (
    "UPDATE deals SET "
    + ", ".join(f"{c} = {_slot(c)}" for c in DEAL_COLUMNS[1:])
    + ", search = ? WHERE id = ?"
)


def _insert_events_sql(with_id: bool) -> str:
    cols = EVENT_COLUMNS if with_id else EVENT_COLUMNS[1:]
    return (f"INSERT INTO events ({', '.join(cols)}, actor) "
            f"VALUES ({', '.join(map(_slot, cols))}, ?)")


def actor(conn: sqlite3.Connection) -> str | None:
    """Who this connection records events as (``store.db.act_as``)."""
    from pipectl.store.db import actor_of

    return actor_of(conn)


def next_deal_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM deals").fetchone()[0])


def is_empty(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM deals LIMIT 1").fetchone() is None and (
        conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None
    )


def currencies_by_ref(conn: sqlite3.Connection, refs: Iterable[str],
                      other_than: str) -> dict[str, str]:
    """ref -> currency of the deals with these refs whose currency is not ``other_than``
    (one query per 500 refs)."""
    found = _deals_where_in(conn, "ref", refs, ("ref", "currency"), "currency != ?",
                            (other_than,))
    return {ref: row["currency"] for ref, row in found.items()}


def deals_by_ref(conn: sqlite3.Connection, refs: Iterable[str]) -> dict[str, Row]:
    """Current rows of the deals with these refs (one query per 500 refs)."""
    return _deals_where_in(conn, "ref", refs)


def deals_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, Row]:
    """Current rows of the deals with these ids (one query per 500 ids)."""
    return _deals_where_in(conn, "id", ids)


def _deals_where_in(conn: sqlite3.Connection, column: str, values: Iterable[Any],
                    columns: Iterable[str] = DEAL_COLUMNS, also: str = "1 = 1",
                    params: tuple = ()) -> dict:
    """``column`` value -> the row (``columns``) of each deal whose ``column`` is one of
    ``values`` and that meets ``also`` (with ``params``); one query per 500 values."""
    wanted = list(dict.fromkeys(values))
    out: dict = {}
    for i in range(0, len(wanted), _CHUNK):
        part = wanted[i: i + _CHUNK]
        sql = (
            f"SELECT {', '.join(columns)} FROM deals "
            f"WHERE {column} IN ({', '.join('?' * len(part))}) AND {also}"
        )
        for row in conn.execute(sql, (*part, *params)):
            out[row[column]] = dict(row)
    return out


def note_texts(conn: sqlite3.Connection, deal_ids: Iterable[int]) -> dict[int, set[str]]:
    """The note texts of these deals. Read deal by deal along ``events_deal``: SQLite's
    planner took ``events_kind_at`` (every note of the database, for each chunk of ids): at
    100k deals 37 ms a chunk of 500, 1.8 ms along the deals."""
    ids = list(deal_ids)
    out: dict[int, set[str]] = {}
    # a bulk import into an empty file drops the indexes until its end: no hint meanwhile
    hint = indexed_by("events_deal") if on_sqlite(conn) and conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_deal'"
    ).fetchone() else ""
    for i in range(0, len(ids), _CHUNK):
        part = ids[i: i + _CHUNK]
        sql = (
            f"SELECT deal_id, text FROM events {hint} "
            "WHERE kind = 'note' AND text IS NOT NULL "
            f"AND deal_id IN ({', '.join('?' * len(part))})"
        )
        for deal_id, text in conn.execute(sql, part):
            out.setdefault(deal_id, set()).add(text)
    return out


_DEAL_BLANK = dict.fromkeys(DEAL_COLUMNS, "")
_EVENT_BLANK = dict.fromkeys(EVENT_COLUMNS, "")
_deal_values = itemgetter(*DEAL_COLUMNS)
_event_values = itemgetter(*EVENT_COLUMNS)
_event_values_no_id = itemgetter(*EVENT_COLUMNS[1:])


def _by_deal(events: Iterable[Row]) -> dict[int, list[Row]]:
    """The events that carry a searched text, by deal (for the deals' search texts)."""
    out: dict[int, list[Row]] = {}
    for e in events:
        if e.get("next_action") or (e.get("text") and e.get("kind") in NOTE_KINDS):
            out.setdefault(e["deal_id"], []).append(e)
    return out


@_unique
def insert_deals(conn: sqlite3.Connection, deals: list[Row], events: Iterable[Row] = ()
                 ) -> None:
    """New deals; ``events``: theirs (each with its deal_id), whose notes they are searched
    by (``store.deals.search_text``)."""
    if deals:
        notes = _by_deal(events)
        conn.executemany(
            _INSERT_DEAL,
            [(*map(_none, _deal_values({**_DEAL_BLANK, **d})),
              search_text(d, notes.get(d["id"], ()))) for d in deals],
        )


def update_deals(conn: sqlite3.Connection, deals: list[Row], events: Iterable[Row] = ()
                 ) -> None:
    """Deals' new states; ``events``: the new events (each with its deal_id), whose notes
    join those their search texts hold already."""
    if deals:
        notes = _by_deal(events)
        before = _deals_where_in(conn, "id", [d["id"] for d in deals], ("id", "search"))
        conn.executemany(
            _UPDATE_DEAL,
            [(*(_none(d.get(c)) for c in DEAL_COLUMNS[1:]),
              search_text(d, notes.get(d["id"], ()), before.get(d["id"], {}).get("search")),
              d["id"]) for d in deals],
        )


@_unique
def insert_events(conn: sqlite3.Connection, events: list[Row], *, with_id: bool = False) -> None:
    """Events in the order given (each carries its deal_id)."""
    if events:
        values = _event_values if with_id else _event_values_no_id
        who = actor(conn)
        conn.executemany(
            _insert_events_sql(with_id),
            [(*map(_none, values({**_EVENT_BLANK, **e})), who) for e in events],
        )


def drop_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Drop the secondary indexes of deals and events (inside the caller's transaction).

    A bulk load into an (almost) empty database is faster without them; ``create_indexes``
    rebuilds them, in one sorted pass each, before the same transaction commits. Indexes that
    enforce a constraint (UNIQUE ref) have no SQL and are kept.
    """
    if not on_sqlite(conn):
        return []  # a server keeps its indexes (other users read meanwhile)
    found = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('deals', 'events') ORDER BY name"
    ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    return [(name, sql) for name, sql in found]


def create_indexes(conn: sqlite3.Connection, indexes: list[tuple[str, str]]) -> None:
    for _, sql in indexes:
        conn.execute(sql)


# ---------------------------------------------------------------- imports told apart


def imported_before(conn: sqlite3.Connection, digest: str) -> tuple[str, str, int] | None:
    """(when, the file's name then, deals without a ref it added) of the latest import that
    added deals without a ref from the bytes of this SHA-256; None if none did."""
    row = conn.execute(
        "SELECT at, file, added FROM imports WHERE sha256 = ? ORDER BY at DESC, id DESC "
        "LIMIT 1", (digest,)
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def record_import(conn: sqlite3.Connection, digest: str, at: str, file: str,
                  first_new: int) -> int:
    """Record an import of these bytes if it added deals without a ref (the deals from id
    ``first_new`` on are the ones it added); returns how many it added."""
    (added,) = conn.execute(
        "SELECT count(*) FROM deals WHERE id >= ? AND ref IS NULL", (first_new,)
    ).fetchone()
    if added:
        conn.execute("INSERT INTO imports (sha256, at, file, added) VALUES (?, ?, ?, ?)",
                     (digest, at, file, added))
    return added


# ---------------------------------------------------------------- pipelines and stage maps


def pipeline_names(conn: sqlite3.Connection) -> dict[int, str]:
    """Every pipeline's name by id (removed ones too: their deals' history names them)."""
    return {int(i): n for i, n in conn.execute("SELECT id, name FROM pipelines ORDER BY id")}


def removed_pipeline_id(conn: sqlite3.Connection, name: str) -> int | None:
    """The removed pipeline stored under exactly this name ("X (removed ...)"), if any."""
    row = conn.execute("SELECT id FROM pipelines WHERE name = ? AND removed_at IS NOT NULL",
                       (name,)).fetchone()
    return None if row is None else int(row[0])


def saved_stage_map(conn: sqlite3.Connection, pipeline_id: int, source: str) -> dict[str, str]:
    """The stage map remembered for this pipeline and source: their name -> stage key."""
    return dict(conn.execute(
        "SELECT name, key FROM stage_maps WHERE pipeline_id = ? AND source = ? ORDER BY name",
        (pipeline_id, source),
    ).fetchall())


def save_stage_map(conn: sqlite3.Connection, pipeline_id: int, source: str,
                   pairs: dict[str, str]) -> None:
    """Remember (or change) these names' stages for this pipeline and source."""
    conn.executemany(
        "INSERT INTO stage_maps (pipeline_id, source, name, key) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (pipeline_id, source, name) DO UPDATE SET key = excluded.key",
        [(pipeline_id, source, name, key) for name, key in pairs.items()],
    )


# ---------------------------------------------------------------- export reads


def deals_where(status: str = "all", pipeline_id: int | None = None) -> str:
    """SQL: the deals of an export (of that status; of that pipeline when given)."""
    cond = status_condition(status)
    return cond if pipeline_id is None else f"({cond}) AND pipeline_id = {int(pipeline_id)}"


def export_pipelines(conn: sqlite3.Connection, status: str = "all",
                     events: bool = False, pipeline_id: int | None = None) -> list[Row]:
    """The pipelines an export names (id, name, is_default), by id: those of its deals (the
    deals of ``status``) and, with ``events``, those their events name; every pipeline not
    removed when it has no deals."""
    cond = deals_where(status, pipeline_id)
    found = [dict(r) for r in conn.execute(
        "SELECT id, name, is_default FROM pipelines p WHERE EXISTS "
        f"(SELECT 1 FROM deals WHERE pipeline_id = p.id AND {cond}) ORDER BY id"
    )]
    if events:  # a deal moved on keeps the pipelines it left in its history (one pass)
        others = [dict(r) for r in conn.execute(
            "SELECT id, name, is_default FROM pipelines WHERE id NOT IN "
            f"({', '.join(str(int(r['id'])) for r in found) or '0'})")]
        if others:
            named = {int(r[0]) for r in conn.execute(
                "SELECT DISTINCT pipeline_id FROM events WHERE pipeline_id IN "
                f"({', '.join(str(int(r['id'])) for r in others)}) "
                f"AND deal_id IN (SELECT id FROM deals WHERE {cond})")}
            found = sorted(found + [r for r in others if r["id"] in named],
                           key=lambda r: r["id"])
    if found or conn.execute(f"SELECT 1 FROM deals WHERE {cond} LIMIT 1").fetchone():
        return found
    return [dict(r) for r in conn.execute(
        "SELECT id, name, is_default FROM pipelines WHERE removed_at IS NULL ORDER BY id")]


def iter_deals(conn: sqlite3.Connection, status: str = "all", pipeline_id: int | None = None
               ) -> Iterator[Row]:
    sql = (
        f"SELECT {', '.join(DEAL_COLUMNS)} FROM deals WHERE {deals_where(status, pipeline_id)} "
        "ORDER BY id"
    )
    names, rows = streamed(conn, sql)
    for row in rows:
        yield dict(zip(names, row, strict=True))


def iter_events(conn: sqlite3.Connection, status: str = "all", pipeline_id: int | None = None
                ) -> Iterator[Row]:
    """Every event of the deals of that status, by deal then time (one streaming query);
    not the voided ones (undo): an export holds the history in effect."""
    where = "WHERE voided_by IS NULL" + ("" if status == "all" and pipeline_id is None else (
        f" AND deal_id IN (SELECT id FROM deals WHERE {deals_where(status, pipeline_id)})"
    ))
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events {where} ORDER BY deal_id, at, id"
    names, rows = streamed(conn, sql)
    for row in rows:
        yield dict(zip(names, row, strict=True))


# ---------------------------------------------------------------- JSON import (streamed)
# pipectl's JSON export is imported in batches inside one transaction. Keeping the file's ids
# (an empty database, every id present and unique) is tried first: the primary keys catch a
# repeated id (a ref can repeat none: each is once in a file). Events that carry no id in
# that mode are numbered after all the file's events, so they wait in a TEMP table.

_JSON_SCRATCH = ("import_json_later",)


def savepoint(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f'SAVEPOINT "{name}"')


def rollback_to_savepoint(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f'ROLLBACK TO "{name}"')
    conn.execute(f'RELEASE "{name}"')
    ids_from_largest(conn)  # the ids the rolled-back rows took are free again


def release_savepoint(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f'RELEASE "{name}"')


# the stashed events' columns on a server, typed as in ``events`` (INTEGER is the adapter's
# BIGINT), after the order they were stashed in (SQLite's rowid)
_STASH_TYPES = {"deal_id": "INTEGER", "pipeline_id": "INTEGER", "value_minor": "INTEGER",
                "probability": "INTEGER"}
_SERVER_STASH = (
    "CREATE TEMP TABLE IF NOT EXISTS import_json_later (seq INTEGER GENERATED ALWAYS AS "
    "IDENTITY, " + ", ".join(f"{c} {_STASH_TYPES.get(c, 'TEXT')}" for c in EVENT_COLUMNS[1:])
    + ")"
)


def stash_events(conn: sqlite3.Connection, events: list[Row]) -> None:
    """Events without an id, kept in order for ``insert_stashed_events``."""
    if events:
        cols = EVENT_COLUMNS[1:]
        if on_sqlite(conn):
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS import_json_later ({', '.join(cols)})")
            into = "temp.import_json_later"
        else:
            conn.execute(_SERVER_STASH)
            into = f"temp.import_json_later ({', '.join(cols)})"
        conn.executemany(
            f"INSERT INTO {into} VALUES ({', '.join('?' * len(cols))})",
            [tuple(map(_none, _event_values_no_id({**_EVENT_BLANK, **e}))) for e in events],
        )


@_unique
def insert_stashed_events(conn: sqlite3.Connection) -> None:
    """The stashed events into ``events``, in the order stashed (ids after the largest)."""
    if has_temp_table(conn, "import_json_later"):
        cols = EVENT_COLUMNS[1:]
        if on_sqlite(conn):
            picks = ", ".join(f"NULLIF({c}, '')" for c in cols)
            order = "rowid"
        else:  # stashed as NULL already (_none); a typed column takes no ''
            picks, order = ", ".join(cols), "seq"
            ids_from_largest(conn)  # after the file's ids, written as they are
        conn.execute(
            f"INSERT INTO events ({', '.join(cols)}, actor) "
            f"SELECT {picks}, ? FROM temp.import_json_later ORDER BY {order}", (actor(conn),)
        )


def drop_json_scratch(conn: sqlite3.Connection) -> None:
    for name in _JSON_SCRATCH:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


# ---------------------------------------------------------------- CSV pair import (streamed)
# pipectl's CSV export of deals and its event log (--history) are two files. The events wait in
# a TEMP table keyed by their deal's id as the file spells it, in file order, and are read back
# for a batch of deals at a time. The key is an integer for a plain number (the export writes
# events in deal order, so its rows then go in at the end of the table's b-tree) and the text
# otherwise; the two never compare equal, so it matches exactly what the text matches.

_CSV_EVENTS = "import_csv_events"


def stash_csv_events(conn: sqlite3.Connection, columns: tuple[str, ...],
                     rows: Iterable[tuple[Any, ...]]) -> int:
    """Rows (key, one text per column, '' for none) into a TEMP table; returns how many."""
    number = itertools.count(1)
    if not on_sqlite(conn):  # a server's column has one type: the key as text (_server_key)
        conn.execute(
            f"CREATE TEMP TABLE {_CSV_EVENTS} (deal_key TEXT NOT NULL, seq INTEGER NOT NULL, "
            + "".join(f'"{c}" TEXT NOT NULL, ' for c in columns)
            + "PRIMARY KEY (deal_key, seq))"
        )
        return conn.copy_in(f"temp.{_CSV_EVENTS}", (
            (_server_key(row[0]), next(number), *row[1:]) for row in rows))
    conn.execute(
        f"CREATE TEMP TABLE {_CSV_EVENTS} (deal_key NOT NULL, seq INTEGER NOT NULL, "
        + "".join(f'"{c}" TEXT NOT NULL, ' for c in columns)
        + "PRIMARY KEY (deal_key, seq)) WITHOUT ROWID"
    )
    slots = ", ".join("?" * (len(columns) + 2))
    conn.executemany(f"INSERT INTO temp.{_CSV_EVENTS} VALUES ({slots})",
                     ((row[0], next(number), *row[1:]) for row in rows))
    return next(number) - 1


def stashed_csv_events(conn: sqlite3.Connection, keys: Iterable[Any]) -> Iterator[tuple]:
    """(key, number, texts...) of the stashed events of these keys: by key, then file order."""
    wanted = list(dict.fromkeys(keys))
    cur = conn.cursor()
    cur.row_factory = None
    server = not on_sqlite(conn)
    for i in range(0, len(wanted), _CHUNK):
        part = wanted[i: i + _CHUNK]
        if server:  # keyed by text there: each row is given back with the caller's key
            texts = {_server_key(k): k for k in part}
            yield from ((texts[row[0]], *row[1:]) for row in cur.execute(
                f"SELECT * FROM temp.{_CSV_EVENTS} WHERE deal_key IN "
                f"({', '.join('?' * len(texts))}) ORDER BY deal_key, seq", list(texts)))
            continue
        yield from cur.execute(
            f"SELECT * FROM temp.{_CSV_EVENTS} WHERE deal_key IN ({', '.join('?' * len(part))}) "
            "ORDER BY deal_key, seq",
            part,
        )


def _server_key(key: Any) -> str:
    """A key as a server's text column holds it: an integer key (a plain number without a
    leading zero, as the caller makes it) as its digits, a text key with a mark, so the two
    kinds never compare equal there either (a text such as '007' is no integer key)."""
    return str(key) if isinstance(key, int) else f"t{key}"


def drop_csv_events(conn: sqlite3.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS temp.{_CSV_EVENTS}")
