"""``pipectl db copy``: a whole pipeline from one store to another (a file to a PostgreSQL
server, a server to a new file), every row with its id, verified after the copy.

What moves: every table pipectl keeps (pipelines and their versions, stage keys, remembered
stage maps, deals, events, imports, rates) and the read models as they are (a copy is the
same database, not a recomputation). Rows stream: memory stays flat whatever the size. The
target must be new (a file) or hold no pipeline yet (a server database: at most the default
pipeline its first use created); the whole copy is one transaction of the target, so a
failure, a signal or a lost connection leaves it as it was.

Verification: per table, the number of rows and an order-free digest of their values (the
sum of a SHA-256 of each row) must be equal on both sides, read back from the target inside
the copy's transaction: a difference rolls it back.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from pipectl.errors import DatabaseError

# Parents first; every table a pipectl database holds but its migrations' own.
TABLES = ("pipelines", "pipeline_versions", "stage_keys", "stage_maps", "deals", "undos",
          "events", "imports", "rates", "deal_states", "deal_stays", "read_facts", "read_dirty",
          "read_dirty_pipelines", "deal_figures", "deal_outcomes", "outcome_figures")
# Tables with an id that the server hands out: its counter moves past the copied ids.
IDENTITY = ("pipelines", "deals", "events", "imports", "rates", "undos")
BATCH = 5000


@dataclass
class Copied:
    tables: dict[str, int]  # table -> rows copied (and found equal)

    @property
    def deals(self) -> int:
        return self.tables.get("deals", 0)

    @property
    def events(self) -> int:
        return self.tables.get("events", 0)


class Side:
    """One end of a copy: a SQLite connection or a psycopg one, read and written alike."""

    def __init__(self, conn: Any, url: str | None = None) -> None:
        self.conn = conn
        self.url = url  # a server's, for its errors' messages
        self.sqlite = isinstance(conn, sqlite3.Connection)

    def errors_told(self) -> AbstractContextManager[Any]:
        """A server's errors while it is read or written, as pipectl's one-line errors."""
        if self.sqlite:
            from contextlib import nullcontext

            return nullcontext()
        from pipectl.store.postgres.connection import errors_told

        return errors_told(self.url or "the server")

    def columns(self, table: str) -> list[str]:
        if self.sqlite:
            return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]
        with self.conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                        "%s AND table_schema = current_schema() ORDER BY ordinal_position",
                        (table,))
            return [r[0] for r in cur.fetchall()]

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple]:
        """Every row of ``table`` (in no particular order), streamed."""
        cols = ", ".join(columns)
        if self.sqlite:
            cur = self.conn.execute(f"SELECT {cols} FROM {table}")
            while batch := cur.fetchmany(BATCH):
                yield from (tuple(r) for r in batch)
            return
        # a server-side cursor: the client holds one batch at a time
        with self.conn.cursor(name=f"pipectl_copy_{table}") as cur:
            cur.itersize = BATCH
            cur.execute(f"SELECT {cols} FROM {table}")
            yield from cur

    def count(self, table: str) -> int:
        if self.sqlite:
            return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            return cur.fetchone()[0]

    def write(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        cols = ", ".join(columns)
        n = 0
        if self.sqlite:
            sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) == BATCH:
                    self.conn.executemany(sql, batch)
                    n += len(batch)
                    batch.clear()
            self.conn.executemany(sql, batch)
            return n + len(batch)
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def reading(self) -> AbstractContextManager[Any]:
        """One read transaction of the source: the copy is of one moment, even while others
        write to it."""
        if self.sqlite:
            from pipectl.store.db import snapshot

            return snapshot(self.conn)
        return _repeatable_read(self.conn)

    def lock(self) -> None:
        """Inside the target's transaction: keep other writers out until it commits (SQLite's
        BEGIN IMMEDIATE already does)."""
        if not self.sqlite:
            self.run("LOCK TABLE pipelines, deals, events, rates IN EXCLUSIVE MODE")
            # each copied event keeps its actor (the server's trigger lets the table's owner)
            self.run("SET LOCAL pipectl.copy = 'on'")

    def run(self, sql: str) -> None:
        if self.sqlite:
            self.conn.execute(sql)
        else:
            with self.conn.cursor() as cur:
                cur.execute(sql)


@contextmanager
def _repeatable_read(conn: Any) -> Iterator[Any]:
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield conn
    finally:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")


def digest(rows: Iterable[tuple]) -> tuple[int, int]:
    """(rows, the sum of each row's SHA-256 modulo 2**128): equal for equal multisets of rows,
    whatever order each engine returns them in."""
    n = total = 0
    for row in rows:
        h = hashlib.sha256(repr(tuple(row)).encode("utf-8", "surrogatepass")).digest()
        total = (total + int.from_bytes(h[:16], "big")) % (1 << 128)
        n += 1
    return n, total


def held(side: Side) -> str | None:
    """Why the target cannot take a copy (it holds a pipeline already), or None."""
    for table in ("deals", "rates", "imports", "stage_maps"):
        if side.count(table):
            return f"it holds {table} already"
    if side.count("pipelines") > 1 or side.count("pipeline_versions") > 1:
        return "it holds pipelines of its own already"
    return None


def clear_default(side: Side) -> None:
    """Remove the default pipeline a new target's first use created (the copy brings the
    source's)."""
    for table in ("stage_keys", "pipeline_versions", "pipelines", "read_facts",
                  "read_dirty_pipelines", "read_dirty", "deal_figures", "deal_outcomes",
                  "outcome_figures"):
        side.run(f"DELETE FROM {table}")


def copy_all(source: Side, target: Side, progress: Any = None) -> Copied:
    """Every table from ``source`` into ``target``, inside the caller's transaction of the
    target; then each table verified. Raises DatabaseError on a difference (the caller rolls
    back)."""
    clear_default(target)
    copied: dict[str, int] = {}
    for table in TABLES:
        columns = source.columns(table)
        missing = set(columns) - set(target.columns(table))
        if missing:
            raise DatabaseError(f"the target's table {table} lacks {sorted(missing)}: "
                                "it is not the same pipectl schema version")
        if table in ("read_dirty", "read_dirty_pipelines"):
            target.run(f"DELETE FROM {table}")  # the triggers marked every copied deal
        copied[table] = target.write(table, columns, source.rows(table, columns))
        if progress is not None:
            progress(table, copied[table])
    if not target.sqlite:
        for table in IDENTITY:
            target.run(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    for table in TABLES:
        columns = source.columns(table)
        mine, theirs = digest(source.rows(table, columns)), digest(target.rows(table, columns))
        if mine != theirs:
            raise DatabaseError(
                f"the copy of {table} differs from the source ({mine[0]} rows against "
                f"{theirs[0]}); nothing was written")
    return Copied(copied)
