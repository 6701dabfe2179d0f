"""`pipectl log`: what happened across all deals between two moments, newest first.

One query over ``events`` by moment: through ``events_kind_at`` (kind, at), one range of
moments per kind, so a week of a database of millions of events reads that week's events
only; each joined to its deal (its name, owner and pipeline now). Voided events (schema 11,
``pipectl undo``) are read too, marked, through their own partial index, and the undos made
in the range are listed beside them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pipectl.store.schema import EVENT_KINDS

Row = dict[str, Any]

_KINDS = ", ".join(f"'{k}'" for k in EVENT_KINDS)
_SELECT = """
SELECT e.*, d.name AS deal_name, d.owner AS deal_owner, d.pipeline_id AS deal_pipeline
FROM events e JOIN deals d ON d.id = e.deal_id
WHERE {where} AND e.at >= :since AND e.at <= :until{filters}
ORDER BY e.at DESC, e.id DESC
LIMIT :limit
"""
_UNDOS = """
SELECT u.id, u.at, u.actor, u.deal_id, u.summary, d.name AS deal_name, d.owner AS deal_owner,
       d.pipeline_id AS deal_pipeline
FROM undos u JOIN deals d ON d.id = u.deal_id
WHERE u.at >= :since AND u.at <= :until{filters}
ORDER BY u.at DESC, u.id DESC
LIMIT :limit
"""
NO_LIMIT = 1 << 62


def _columns(conn: sqlite3.Connection) -> set[str]:
    cur = conn.execute("SELECT * FROM events LIMIT 0")
    return {c[0] for c in cur.description or ()}


def _rows(conn: sqlite3.Connection, query: str, params: Row) -> list[Row]:
    cur = conn.execute(query, params)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def entries(conn: sqlite3.Connection, since: str, until: str, owner: str | None = None,
            pipeline_id: int | None = None, limit: int | None = None) -> list[Row]:
    """The events (and undos) from ``since`` to ``until`` (ISO moments, both included) of the
    deals owned by ``owner`` and now in ``pipeline_id`` (None: all), newest first, at most
    ``limit``. Each is an event's columns (None where not said) with ``deal_name``,
    ``deal_owner``, ``deal_pipeline``, and ``undone`` (voided by an undo); an undo has kind
    ``undo`` and its ``summary``."""
    filters = ""
    params: Row = {"since": since, "until": until,
                   "limit": NO_LIMIT if limit is None else limit}
    if owner is not None:
        filters += " AND d.owner = :owner"
        params["owner"] = owner
    if pipeline_id is not None:
        filters += " AND d.pipeline_id = :pipeline_id"
        params["pipeline_id"] = pipeline_id
    voids = "voided_by" in _columns(conn)
    # the kinds named, so that the (kind, at) index is read as one range per kind; on
    # schema 11 that index holds the events not voided only
    where = f"e.kind IN ({_KINDS})" + (" AND e.voided_by IS NULL" if voids else "")
    rows = _rows(conn, _SELECT.format(where=where, filters=filters), params)
    for r in rows:
        r["undone"] = False
    if voids:
        voided = _rows(conn, _SELECT.format(where="e.voided_by IS NOT NULL", filters=filters),
                       params)
        undos = _rows(conn, _UNDOS.format(filters=filters), params)
        for r in voided:
            r["undone"] = True
        for u in undos:
            u.update(kind="undo", undone=False, text=None)
        if voided or undos:
            rows = sorted([*rows, *voided, *undos], key=_order, reverse=True)[:params["limit"]]
    return rows


def _order(r: Row) -> tuple[str, int, int]:
    # an undo after the events of its moment (it voided some of them)
    return (r["at"], 1 if r["kind"] == "undo" else 0, int(r["id"]))
