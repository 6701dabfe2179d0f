"""Reads and writes of exchange rates (table ``rates``, schema 6): rows are only ever added.

A file one schema back (read-only, which cannot be upgraded) has no ``rates`` table: it reads
as having no rates.
"""

from __future__ import annotations

import sqlite3

from pipectl.domain.rates import Rate

_COLUMNS = "id, source, target, at, rate, recorded_at"


def _has_table(conn: sqlite3.Connection) -> bool:
    from pipectl.store.sql import has_table

    return has_table(conn, "rates")


def all_rates(conn: sqlite3.Connection) -> list[Rate]:
    """Every row recorded (withdrawals and superseded ones too), oldest recorded first."""
    if not _has_table(conn):
        return []
    return [
        Rate(id=int(i), source=s, target=t, at=at, rate=r, recorded_at=rec)
        for i, s, t, at, r, rec in conn.execute(
            f"SELECT {_COLUMNS} FROM rates ORDER BY recorded_at, id")
    ]


def latest(conn: sqlite3.Connection, source: str, target: str, at: str) -> Rate | None:
    """The latest row recorded for this pair and moment (a withdrawal too), if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM rates WHERE source = ? AND target = ? AND at = ? "
        "ORDER BY recorded_at DESC, id DESC LIMIT 1", (source, target, at)).fetchone()
    if row is None:
        return None
    i, s, t, when, r, rec = tuple(row)
    return Rate(id=int(i), source=s, target=t, at=when, rate=r, recorded_at=rec)


def record(conn: sqlite3.Connection, rate: Rate) -> int:
    """Add one row (the caller holds the transaction); returns its id."""
    cur = conn.execute(
        "INSERT INTO rates (source, target, at, rate, recorded_at) VALUES (?, ?, ?, ?, ?)",
        (rate.source, rate.target, rate.at, rate.rate, rate.recorded_at))
    return int(cur.lastrowid or 0)


def add_missing(conn: sqlite3.Connection, rows: list[Rate]) -> int:
    """Add the rows (from an export, oldest recorded first) this database lacks: the n-th row
    of a given pair, moment, rate and recording moment is there when the database holds at
    least n such rows. Returns how many were added; the caller holds the transaction."""
    added = 0
    seen: dict[tuple[str, str, str, str | None, str], int] = {}
    for r in rows:
        key = (r.source, r.target, r.at, r.rate, r.recorded_at)
        seen[key] = seen.get(key, 0) + 1
        (there,) = conn.execute(
            "SELECT count(*) FROM rates WHERE source = ? AND target = ? AND at = ? AND rate IS ? "
            "AND recorded_at = ?", key).fetchone()
        if there < seen[key]:
            record(conn, r)
            added += 1
    return added
