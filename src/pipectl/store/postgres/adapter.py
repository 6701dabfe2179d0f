"""A psycopg connection that the store's code can use as it uses a ``sqlite3.Connection``.

The store writes portable SQL with sqlite3's placeholders (``?``, ``?NNN``, ``:name``); this
translates them to psycopg's (``%s``, ``%(name)s``), and the few words SQLite spells its own
way (``INDEXED BY`` hints, ``INSERT OR IGNORE``, ``temp.`` tables, ``BEGIN IMMEDIATE``).
Rows come back as ``Row``s, read by position or by name as ``sqlite3.Row``s are.

What SQLite and PostgreSQL compute differently is not translated here: it is written once
in portable SQL in the store, or given by ``store.sql`` per engine, or defined on the server
with SQLite's meaning (``julianday``, ``sum(boolean)``: ``store/postgres/schema.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

# The lock every write transaction takes first: writers to one pipeline take turns, as on
# SQLite (BEGIN IMMEDIATE), so a command's reads and its writes see one state. A table's lock,
# which only a role that may write can take (schema.py: pipectl_write_turn).
WRITE_TURN = "LOCK TABLE pipectl_write_turn IN EXCLUSIVE MODE"


class Row:
    """A row read by position (``row[0]``), by name (``row["id"]``), as a mapping
    (``dict(row)``, ``row.keys()``) or as a tuple, as ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return tuple(self._values) == tuple(other._values)
        return tuple(self._values) == other

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


_TOKEN = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(\?\d*)|(:[A-Za-z_]\w*)|(%)|(--[^\n]*)""")
_HINT = re.compile(r"\b(?:INDEXED\s+BY\s+\w+|NOT\s+INDEXED)\b", re.IGNORECASE)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)
_TEMP = re.compile(r"\btemp\.(?=\w)", re.IGNORECASE)
# SQLite's "a IS b" compares values, NULL equal to NULL; PostgreSQL spells it so
_IS_VALUE = re.compile(r"\bIS\s+(%s|%\(\w+\)s|[a-z_]+\.\w+)", re.IGNORECASE)
_IS_NOT_VALUE = re.compile(r"\bIS\s+NOT\s+(%s|%\(\w+\)s|[a-z_]+\.\w+)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def translate(sql: str, nulls: frozenset[int | str] = frozenset()
              ) -> tuple[str, tuple[int, ...] | None]:
    """(psycopg's SQL, the 0-based positions of the parameters its placeholders take in order,
    or None when that is all of them in order).

    ``nulls``: the parameters (positions, names) whose value is None, written as ``NULL``
    (the server cannot tell the type of a parameter sent as NULL in ``? IS NULL``)."""
    sql = _HINT.sub("", sql)
    ignore = bool(_OR_IGNORE.match(sql))
    if ignore:
        sql = _OR_IGNORE.sub("INSERT INTO", sql, count=1)
    sql = _TEMP.sub("pg_temp.", sql)
    order: list[int] = []
    numbered = False
    seen = 0

    def one(m: re.Match[str]) -> str:
        nonlocal numbered
        literal, ident, qmark, name, percent, comment = m.groups()
        if literal or ident:
            return m.group(0)
        if comment:
            return ""
        if percent:
            return "%%"
        if qmark:
            nonlocal seen
            at = int(qmark[1:]) - 1 if len(qmark) > 1 else seen
            seen += 1
            if at in nulls:
                numbered = True  # a parameter left out
                return "NULL"
            numbered = numbered or len(qmark) > 1
            order.append(at)
            return "%s"
        if name[1:] in nulls:
            return "NULL"
        return f"%({name[1:]})s"

    out = _IS_NOT_VALUE.sub(r"IS DISTINCT FROM \1", _TOKEN.sub(one, sql))
    out = _INTEGER.sub("BIGINT", out)  # SQLite's integers are 64-bit, PostgreSQL's 32
    out = _IS_VALUE.sub(r"IS NOT DISTINCT FROM \1", out)
    if ignore:
        out = out.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return out, (tuple(order) if numbered else None)


def _nulls(params: Any) -> frozenset[int | str]:
    if not params:
        return frozenset()
    if isinstance(params, Mapping):
        return frozenset(k for k, v in params.items() if v is None)
    return frozenset(i for i, v in enumerate(params) if v is None)


def _params(order: tuple[int, ...] | None, params: Any) -> Any:
    if isinstance(params, Row):  # a row read back, written again (sqlite3 takes it as is)
        params = tuple(params)
    if order is None or params is None:
        return params
    return [params[i] for i in order]


class Cursor:
    """The part of ``sqlite3.Cursor`` the store uses."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cur = conn.raw.cursor()
        self.row_factory: Any = conn.row_factory
        self.lastrowid: int | None = None

    # -- running
    def execute(self, sql: str, params: Any = ()) -> Cursor:
        special = self._conn._special(self, sql, params)
        if special is not None:
            return special
        text, order = translate(sql, _nulls(params))
        returning = _returning_id(text)
        if returning:
            text += " RETURNING id"
        # always parameters (an empty list at least): psycopg then reads %% as %
        self._cur.execute(text, _params(order, params) if params else [])
        self._conn._changed(self._cur)
        if returning:
            row = self._cur.fetchone()
            self.lastrowid = row[0] if row else None
        return self

    def executemany(self, sql: str, seq: Iterable[Any]) -> Cursor:
        text, order = translate(sql)
        self._cur.executemany(text, [_params(order, p) for p in seq])
        self._conn._changed(self._cur)
        return self

    # -- reading
    def _wrap(self, row: Any) -> Any:
        if row is None or self.row_factory is None:
            return row
        desc = self._cur.description or []
        return Row({d.name: i for i, d in enumerate(desc)}, row)

    def fetchone(self) -> Any:
        if self._cur.description is None:
            return None
        return self._wrap(self._cur.fetchone())

    def fetchall(self) -> list[Any]:
        if self._cur.description is None:
            return []
        rows = self._cur.fetchall()
        if self.row_factory is None:
            return rows
        index = {d.name: i for i, d in enumerate(self._cur.description)}
        return [Row(index, r) for r in rows]

    def fetchmany(self, size: int = 1000) -> list[Any]:
        if self._cur.description is None:
            return []
        rows = self._cur.fetchmany(size)
        if self.row_factory is None:
            return rows
        index = {d.name: i for i, d in enumerate(self._cur.description)}
        return [Row(index, r) for r in rows]

    def __iter__(self) -> Iterator[Any]:
        while batch := self.fetchmany(1000):
            yield from batch

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self) -> Any:
        return self._cur.description

    def close(self) -> None:
        self._cur.close()


_IDS = frozenset({"deals", "events", "pipelines", "rates", "imports", "undos"})


_VALUES_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*VALUES\s*\(",
                            re.IGNORECASE)


def _returning_id(text: str) -> bool:
    """An INSERT of one row into a table whose id the server hands out: its id is read back
    (sqlite3's ``lastrowid``)."""
    m = _VALUES_INSERT.match(text)
    return bool(m and m.group(1).lower() in _IDS and "RETURNING" not in text.upper())


class Connection:
    """The part of ``sqlite3.Connection`` the store uses, over an autocommit psycopg
    connection whose transactions pipectl opens itself."""

    def __init__(self, raw: Any, url: str) -> None:
        self.raw = raw
        self.url = url
        self.row_factory: Any = Row
        self.total_changes = 0
        self._streams = 0

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def cursor(self) -> Cursor:
        return Cursor(self)

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, seq: Iterable[Any]) -> Cursor:
        return self.cursor().executemany(sql, seq)

    def stream(self, sql: str, params: Any = ()) -> tuple[list[str], Iterator[tuple]]:
        """(column names, rows as tuples) of a query run now on a server-side cursor: the
        client holds one batch at a time, however many rows (an export of 1M deals)."""
        text, order = translate(sql, _nulls(params))
        self._streams += 1
        cur = self.raw.cursor(name=f"pipectl_stream_{self._streams}",
                              withhold=not self.in_transaction)
        cur.itersize = 2000
        cur.execute(text, _params(order, params) if params else [])
        names = [d.name for d in cur.description or []]

        def rows() -> Iterator[tuple]:
            try:
                yield from cur
            finally:
                cur.close()

        return names, rows()

    def copy_in(self, table: str, rows: Iterable[Sequence[Any]],
                columns: Sequence[str] = ()) -> int:
        """Rows into ``table`` (its ``columns``, default all in order) by COPY, streamed (the
        server's bulk load); how many."""
        n = 0
        named = f" ({', '.join(columns)})" if columns else ""
        with self.raw.cursor() as cur, cur.copy(f"COPY {_TEMP.sub('pg_temp.', table)}{named} "
                                                "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """The server defines pipectl's SQL functions itself (``pipectl_actor``: the role)."""

    def close(self) -> None:
        self.raw.close()

    def _changed(self, cur: Any) -> None:
        if cur.rowcount and cur.rowcount > 0 and cur.description is None:
            self.total_changes += cur.rowcount

    def _special(self, cur: Cursor, sql: str, params: Any) -> Cursor | None:
        """Statements that are SQLite's own words: their PostgreSQL meaning, or nothing."""
        word = sql.lstrip()[:16].upper()
        if word.startswith("BEGIN IMMEDIATE"):
            cur._cur.execute("BEGIN")
            cur._cur.execute(WRITE_TURN)
            # new rows numbered from the largest id + 1, as SQLite does (a sequence alone
            # would keep the gaps of rolled-back transactions): store.sql.ids_from_largest
            cur._cur.execute("SELECT pipectl_number_ids()")
            return cur
        if word.startswith("BEGIN"):
            # one read transaction: every query sees the same state (SQLite's snapshot)
            cur._cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            return cur
        if word.startswith("PRAGMA"):
            return _pragma(cur, sql)
        return None


def _pragma(cur: Cursor, sql: str) -> Cursor:
    """SQLite's PRAGMAs: tuning ones mean nothing on a server; a question is answered."""
    m = re.match(r"\s*PRAGMA\s+(?:\w+\.)?(\w+)\s*(?:\((\w+)\))?", sql, re.IGNORECASE)
    name = (m.group(1) if m else "").lower()
    if name == "table_info" and m and m.group(2):
        cur._cur.execute(
            "SELECT ordinal_position - 1 AS cid, column_name AS name, data_type AS type, "
            "(is_nullable = 'NO')::int AS notnull, column_default AS dflt_value, 0 AS pk "
            "FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = current_schema() ORDER BY ordinal_position", (m.group(2),))
        return cur
    if name == "user_version":  # the schema's version
        cur._cur.execute("SELECT coalesce(max(version), 0) FROM pipectl_migrations")
        return cur
    cur._cur.execute("SELECT 1 WHERE false")  # nothing to read
    return cur
