"""The SQL of undo (issue 16): find a deal's newest change, void its events, record the undo.

A voided event stays in ``events`` as it was written; only its ``voided_by`` is set, once, to
the ``undos`` row that voided it (the triggers of migration 0011 allow nothing else). Every
report, read model and projection reads the events whose ``voided_by`` is NULL. The service
(``services.undo``) holds the transaction and decides; this module only reads and records.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pipectl.store.db import actor_of

Row = dict[str, Any]

# The events one ``pipectl edit`` writes, in the order it writes them: each changed text
# field ("edit"), then the value, the close date and the probability. Every other command
# writes one event per deal (a move carries its note; ``add --note`` writes its creation and
# a note, and a creation is not undone).
_EDIT_RANK = {"edit": 0, "value": 1, "close_date": 2, "probability": 3}


def _row(cur: sqlite3.Cursor, row: Any) -> Row:
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def newest_deal(conn: sqlite3.Connection) -> int | None:
    """The deal of the newest event not voided (the highest id), None when there is none."""
    row = conn.execute("SELECT deal_id FROM events WHERE voided_by IS NULL "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else int(row[0])


def newest_change(conn: sqlite3.Connection, deal_id: int) -> list[Row]:
    """The events of the deal's newest change not voided, oldest first: its newest event (the
    highest id) and, before it, the events the same command wrote (same moment, consecutive
    ids, as one ``edit`` writes them; a creation's note with its creation). Empty when the
    deal has no event left to void."""
    cur = conn.execute("SELECT * FROM events WHERE deal_id = ? AND voided_by IS NULL "
                       "ORDER BY id DESC LIMIT 1", (deal_id,))
    first = cur.fetchone()
    if first is None:
        return []
    newest = _row(cur, first)
    group = [newest]
    cur = conn.execute("SELECT * FROM events WHERE deal_id = ? AND at = ? AND id < ? "
                       "AND voided_by IS NULL ORDER BY id DESC LIMIT 8",
                       (deal_id, newest["at"], newest["id"]))
    for r in cur.fetchall():
        e = _row(cur, r)
        last = group[-1]
        if e["id"] != last["id"] - 1:
            break
        if e["kind"] == "created" and last["kind"] == "note" and len(group) == 1:
            group.append(e)  # add --note: the creation and its note
            break
        rank, last_rank = _EDIT_RANK.get(e["kind"]), _EDIT_RANK.get(last["kind"])
        if rank is None or last_rank is None or rank > last_rank:
            break
        if rank == last_rank and (rank != 0 or any(g.get("field") == e["field"]
                                                   for g in group)):
            break  # one edit changes each field once
        group.append(e)
    return group[::-1]


def void(conn: sqlite3.Connection, deal_id: int, event_ids: list[int], at: str,
         summary: str) -> int:
    """Record an undo of ``event_ids`` (events of ``deal_id`` not voided yet) and mark them
    voided by it. Returns the undo's id. Inside the caller's transaction; the deal's read
    models are marked to be recomputed (trigger ``read_dirty_void``)."""
    cur = conn.execute(
        "INSERT INTO undos (at, actor, deal_id, summary) VALUES (?, ?, ?, ?)",
        (at, actor_of(conn), deal_id, summary))
    undo_id = int(cur.lastrowid or 0)
    if not undo_id:  # (a server's adapter numbers rows itself; read it back)
        undo_id = int(conn.execute("SELECT max(id) FROM undos WHERE deal_id = ?",
                                   (deal_id,)).fetchone()[0])
    marks = ", ".join("?" * len(event_ids))
    cur = conn.execute(
        f"UPDATE events SET voided_by = ? WHERE id IN ({marks}) AND deal_id = ? "
        "AND voided_by IS NULL", (undo_id, *event_ids, deal_id))
    if cur.rowcount != len(event_ids):
        from pipectl.errors import MoveRefused

        raise MoveRefused(f"deal {deal_id} changed while it was being undone; nothing undone",
                          hint="run pipectl undo again")
    return undo_id


def history(conn: sqlite3.Connection, deal_id: int) -> list[Row]:
    """Every event of the deal, voided ones too (with ``voided_by``), oldest first (time,
    then id), as ``db check`` and the undo replay read them."""
    cur = conn.execute("SELECT * FROM events WHERE deal_id = ? ORDER BY at, id", (deal_id,))
    return [_row(cur, r) for r in cur.fetchall()]


def undos(conn: sqlite3.Connection, deal_id: int) -> list[Row]:
    """The deal's undos, oldest first: id, at, actor, summary."""
    cur = conn.execute("SELECT id, at, actor, summary FROM undos WHERE deal_id = ? "
                       "ORDER BY id", (deal_id,))
    return [_row(cur, r) for r in cur.fetchall()]


def restate(conn: sqlite3.Connection, deal_id: int, changes: Row) -> None:
    """Store what the one projection makes of the deal without its voided events: the columns
    in ``changes`` (those that differ from the stored row)."""
    if not changes:
        return
    from pipectl.store.deals import _changed_or_refused

    sets = ", ".join(f"{k} = ?" for k in changes)
    cur = conn.execute(f"UPDATE deals SET {sets} WHERE id = ?", (*changes.values(), deal_id))
    _changed_or_refused(conn, cur, deal_id)
