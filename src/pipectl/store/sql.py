"""What differs between SQL engines, in one place: the reports write portable SQL and take
these pieces from here.

The reports (``pipectl.reports``) compute every figure in SQL over the event history. The
little that SQLite spells its own way lives here: the day number of an ISO moment (for
differences in days or seconds), index hints, exact sums of money (SQLite's integer ``sum()``
stops at 2**63), scratch tables for a report's intermediate rows, per-connection tuning, and a
second read-only connection for a pass run in parallel. The
PostgreSQL store provides the same functions (``EXTRACT(EPOCH FROM ...)``, no hints, ``CREATE
TEMP TABLE ... ON COMMIT DROP`` ...); nothing in ``reports/`` needs to change for it.

Placeholders: the reports write ``?`` and ``:name`` (sqlite3's styles); a store whose driver
uses another style translates them in its ``execute``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline, StageDef

Pipelines = Mapping[int, "Pipeline"]


def streamed(conn: Any, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
             ) -> tuple[list[str], Iterator[tuple]]:
    """(column names, rows as plain tuples) of ``query``, run now and read as the caller
    goes: a SQLite cursor; on a server, a server-side cursor (the client never holds every
    row)."""
    if on_sqlite(conn):
        cur = conn.cursor()
        cur.row_factory = None
        cur.execute(query, params)
        return [d[0] for d in cur.description], iter(cur)
    return conn.stream(query, params)


def has_table(conn: Any, name: str) -> bool:
    """Does the database hold the table ``name`` (an older file may not)?"""
    if on_sqlite(conn):
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (name,)).fetchone() is not None
    return conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0]


def ids_from_largest(conn: Any) -> None:
    """On a server, set the id sequences to the largest id + 1, as SQLite numbers a new row
    (the schema's ``pipectl_number_ids()``, in the writer's turn). A write transaction does it
    as it begins (store/postgres/adapter.py); a sequence keeps its place through a rollback
    and does not see rows written with their own ids, so after either it is done again. On
    a file, nothing to do."""
    if not on_sqlite(conn):
        conn.execute("SELECT pipectl_number_ids()")


def has_temp_table(conn: Any, name: str) -> bool:
    """Does this connection hold the TEMP table ``name``?"""
    if on_sqlite(conn):
        return conn.execute("SELECT 1 FROM sqlite_temp_master WHERE type = 'table' "
                            "AND name = ?", (name,)).fetchone() is not None
    return bool(conn.execute("SELECT to_regclass(?) IS NOT NULL",
                             (f"pg_temp.{name}",)).fetchone()[0])


def on_sqlite(conn: Any) -> bool:
    """Is ``conn`` a SQLite file's (else a PostgreSQL server's, ``store.postgres.adapter``)?"""
    return isinstance(conn, sqlite3.Connection)


def may_write(conn: Any, table: str) -> bool:
    """Whether this connection may insert into ``table``: always on a file (whoever may open
    it for writing); on a server, what its role was granted (a team's rep or viewer may not
    write the read models: ``store.postgres.team``)."""
    if on_sqlite(conn):
        return True
    return bool(conn.execute("SELECT has_table_privilege(?, 'INSERT')",
                             (table,)).fetchone()[0])


def flag(condition: str) -> str:
    """SQL: 1 where ``condition`` holds, else 0 (a condition is a boolean on PostgreSQL, where
    an integer column takes no boolean)."""
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def day(expr: str) -> str:
    """SQL: the moment ``expr`` (ISO 8601 UTC text) as a number of days; differences of two
    are days, times 86400 seconds."""
    return f"julianday({expr})"


def days_between(later: str, earlier: str) -> str:
    return f"({day(later)} - {day(earlier)})"


def seconds_between(later: str, earlier: str) -> str:
    return f"({day(later)} - {day(earlier)}) * 86400"


# ---------------------------------------------------------------- exact sums of money
# SQLite's sum() of integers stops with "integer overflow" past 2**63 - 1, and total() is a
# float: neither will do for money. A value is below values.MAX_MINOR (10**15 < 2**50), a
# weighted value (value x percent) below 2**57; 100 deals at the largest value, weighted at
# 100%, already pass 2**63. So each term is summed in two halves, its high bits (>> 32) and its
# low 32 bits, each sum well inside int64 (below 2**63 for up to 2**31 rows of terms below
# 2**63), and the two are joined in Python, whose integers have no limit: exact for any number
# of deals pipectl can hold. (PostgreSQL's sum(bigint) is numeric, exact already: its store
# gives ``sum(x), 0``.)

_HALF = 32
_LOW_BITS = (1 << _HALF) - 1


def exact_sum(expr: str, zero: bool = False) -> str:
    """SQL: two columns that hold ``sum(expr)`` exactly between them (NULL, NULL when every
    term is NULL; 0, 0 with ``zero``); ``joined`` makes the number of them. ``expr`` is an
    integer expression."""
    if zero:
        return (f"coalesce(sum(({expr}) >> {_HALF}), 0), "
                f"coalesce(sum(({expr}) & {_LOW_BITS}), 0)")
    return f"sum(({expr}) >> {_HALF}), sum(({expr}) & {_LOW_BITS})"


def joined(high: int | None, low: int | None) -> int | None:
    """The sum that ``exact_sum``'s two columns hold, as a Python integer (None for NULL)."""
    if high is None or low is None:
        return None
    return (high << _HALF) + low


def indexed_by(index: str) -> str:
    """SQL: a hint that a table is read through ``index`` (SQLite's query planner otherwise
    picks a worse one for these passes; docs/performance.md)."""
    return f"INDEXED BY {index}"


def tune_for_reports(conn: sqlite3.Connection) -> None:
    """Scratch tables to a temp file the OS caches (as fast as memory, the process stays small:
    1M deals, 92 MB against 560 MB), and a 16 MiB page cache."""
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute("PRAGMA cache_size = -16384")
    # Scratch tables need no rollback journal (a failed report drops them, and the temp
    # file goes with the connection): without it, dropping a million-row snapshot takes
    # 0.15 s instead of 0.96 s. Left as it is where SQLite will not change it now.
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA temp.journal_mode = OFF")


def prepare_for_reports(conn: sqlite3.Connection) -> bool:
    """``tune_for_reports`` before a report's read transaction; False when the caller's own
    open transaction forbids it (SQLite will not change temp storage inside a transaction once
    the temp schema is in use)."""
    try:
        tune_for_reports(conn)
    except sqlite3.OperationalError:
        if not conn.in_transaction:
            raise
        return False
    return True


def scratch(conn: sqlite3.Connection, name: str, select: str,
            params: Mapping[str, Any] | Sequence[Any] = (),
            index: Sequence[str] = (), unique: bool = False) -> str:
    """A table of this connection only (never in the database file) holding ``select``'s rows,
    with an index on ``index`` when given. Returns the name to query it by."""
    conn.execute(f"CREATE TEMP TABLE {name} AS {select}", params)
    if index:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        # (SQLite names the index's schema; PostgreSQL puts it beside its table)
        where = "temp." if on_sqlite(conn) else ""
        conn.execute(f"CREATE {kind} {where}{name}_ix ON {name} ({', '.join(index)})")
    return name


def add_columns(conn: sqlite3.Connection, name: str, columns: Mapping[str, str]) -> None:
    """Add columns (name -> 'TEXT' or 'INTEGER') to a scratch table."""
    for column, kind in columns.items():
        conn.execute(f"ALTER TABLE {name} ADD COLUMN {column} {kind}")


def drop_scratch(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


def second_reader(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    """A second, read-only connection to the same database, for a pass run in another thread
    (sqlite3 releases the GIL while a statement runs); None for a database without a file."""
    path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
    if not path:
        return None
    from pipectl.store.db import _read_only_mount, read_only_uri, wal_pending

    # on a read-only mount no -shm may be made: read as the main connection does (as it is,
    # unless a -wal holds commits, which the main connection then reads too)
    fixed = _read_only_mount(Path(path)) and not wal_pending(path)
    other = sqlite3.connect(read_only_uri(path, immutable=fixed), uri=True, timeout=5,
                            check_same_thread=False)
    tune_for_reports(other)
    return other


# ---------------------------------------------------------------- SQL from the definitions
# Stage facts reach SQL only through these: built from the pipelines' data, never from stage
# names written in code; pipeline_id is switched on only when there are several pipelines, so
# a one-pipeline database runs the SQL a hand-written query would.


def literal(text: str) -> str:
    """A text as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def per_stage(pipelines: Pipelines, value: Callable[[Pipeline, StageDef], str | None],
              column: str, pipeline_column: str = "pipeline_id", default: str = "NULL") -> str:
    """SQL: ``value(pipeline, stage)`` (an SQL literal, or None for ``default``) of the stage
    named in ``column``, over every stage of the pipelines (the lost state included)."""

    def one(p: Pipeline) -> str:
        whens = " ".join(f"WHEN {literal(s.key)} THEN {v}" for s in p.stages
                         if (v := value(p, s)) is not None)
        return f"CASE {column} {whens} ELSE {default} END" if whens else default

    if len(pipelines) == 1:
        return f"({one(next(iter(pipelines.values())))})"
    whens = " ".join(f"WHEN {pid} THEN {one(p)}" for pid, p in sorted(pipelines.items()))
    return f"(CASE {pipeline_column} {whens} ELSE {default} END)"


_FACTS: dict[str, Callable[[Pipeline, StageDef], str]] = {
    "order": lambda p, s: str(s.order),
    "probability": lambda p, s: str(s.probability),
    "qualified": lambda p, s: "1" if p.is_qualified_stage(s.key) else "0",
    "status": lambda p, s: literal(s.status.value),
}


def stage_case(pipelines: Pipelines, what: str, column: str = "stage",
               pipeline_column: str = "pipeline_id", default: str = "NULL") -> str:
    """SQL: a fact of the stage named in ``column``: "order", "probability", "status" or
    "qualified"."""
    return per_stage(pipelines, _FACTS[what], column, pipeline_column, default)


def member(pipelines: Pipelines, keys: Callable[[Pipeline], Iterable[str]], column: str,
           pipeline_column: str = "pipeline_id") -> str:
    """SQL: whether the stage in ``column`` is one of ``keys(its pipeline)``, a condition (an
    IN list for one pipeline: what a hand-written query would say; 1 or 0 on SQLite, a
    boolean on PostgreSQL)."""

    def one(p: Pipeline) -> str:
        wanted = list(keys(p))
        return f"{column} IN ({', '.join(map(literal, wanted))})" if wanted else "1 = 0"

    if len(pipelines) == 1:
        return f"({one(next(iter(pipelines.values())))})"
    whens = " ".join(f"WHEN {pid} THEN {one(p)}" for pid, p in sorted(pipelines.items()))
    return f"(CASE {pipeline_column} {whens} ELSE 1 = 0 END)"
