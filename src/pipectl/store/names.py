"""The small reads shell completion makes beyond owners, reasons and pipelines
(``store.deals``, ``store.pipelines``): deal ids by their first digits, the currencies in use,
a deal's pipeline. Each reads a handful of rows along an index, whatever the number of deals.
"""

from __future__ import annotations

import sqlite3

# Which deals a command can act on (None: every deal).
OPEN = "closed_at IS NULL"
LOST = "stage = 'lost'"
NOT_LOST = "stage <> 'lost'"

_LARGEST = 2**63 - 1


def ids_from(conn: sqlite3.Connection, digits: str, most: int = 100,
             where: str | None = None) -> list[tuple[int, str]]:
    """(id, name) of the deals whose id starts with ``digits`` ("" for any), smallest id
    first, at most ``most``; ``where`` (``OPEN``, ``LOST``, ``NOT_LOST``) narrows them. Read
    range by range along the primary key (the id itself, then ten times it and up, ...), so a
    million deals cost what a hundred do."""
    if digits and (not digits.isdigit() or not digits.isascii() or digits.startswith("0")):
        return []
    also = f" AND {where}" if where else ""
    if not digits:
        return [(int(i), n) for i, n in conn.execute(
            f"SELECT id, name FROM deals WHERE 1 = 1{also} ORDER BY id LIMIT ?", [most])]
    top = conn.execute("SELECT max(id) FROM deals").fetchone()[0] or 0
    found: list[tuple[int, str]] = []
    first, width = int(digits), 1
    while len(found) < most and first * width <= min(top, _LARGEST):
        low, high = first * width, min((first + 1) * width - 1, _LARGEST)
        found += [(int(i), n) for i, n in conn.execute(
            f"SELECT id, name FROM deals WHERE id BETWEEN ? AND ?{also} ORDER BY id LIMIT ?",
            [low, high, most - len(found)])]
        width *= 10
    return found


def currencies(conn: sqlite3.Connection) -> list[str]:
    """The currencies in use: of the deals (the report's figures hold each once per stage)
    and of the exchange rates recorded, in text order."""
    return [r[0] for r in conn.execute(
        "SELECT currency FROM deal_figures WHERE currency IS NOT NULL "
        "UNION SELECT source FROM rates UNION SELECT target FROM rates ORDER BY 1")]


def pipeline_of(conn: sqlite3.Connection, deal_id: int) -> int | None:
    """The id of the pipeline deal ``deal_id`` is in, or None when there is no such deal."""
    row = conn.execute("SELECT pipeline_id FROM deals WHERE id = ?", [deal_id]).fetchone()
    return None if row is None else int(row[0])
