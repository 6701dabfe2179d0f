"""Reads and writes of deals and their events.

``events`` is the append-only history; ``deals`` holds each deal's current state, kept in step
with its events inside the same transaction (so list and board need no replay): the state is
what ``domain.projection`` makes of the events. The services (``pipectl.services``) hold the
transaction and decide; this module only records and queries.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pipectl.domain.pipeline import LOST
from pipectl.errors import NotFound
from pipectl.store.db import actor_of
from pipectl.store.sql import exact_sum, joined, literal, on_sqlite, stage_case
from pipectl.values import fold

if TYPE_CHECKING:
    from fractions import Fraction  # (fractions loads decimal: only the commands that convert)

    from pipectl.domain.pipeline import Pipeline

Row = dict[str, Any]

SEARCHED = ("name", "company", "contact", "email", "owner", "source", "ref")
# The events whose ``text`` a person wrote (a note, or the note of a move or a checklist
# change): searched with each event's ``next_action``. (``created`` and ``value`` carry an
# import's note on a rounded amount, not a person's.)
NOTE_KINDS = ("note", "stage", "lost", "reopened", "checklist", "pipeline")


def searched_texts(events: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The texts of ``events`` that a deal's search text holds (a voided event's none)."""
    for e in events:
        if e.get("voided_by") is not None:
            continue
        if e.get("text") and e.get("kind") in NOTE_KINDS:
            yield e["text"]
        if e.get("next_action"):
            yield e["next_action"]


def search_text(values: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = (),
                before: str | None = None) -> str:
    """A deal's search text: its fields (``SEARCHED``) folded (``values.fold``: no accents,
    no case) on the first line, then every distinct folded line of its notes
    (``searched_texts`` of its events), in text order. ``before``: the deal's search text
    before ``events`` (its notes' lines are kept: events are only ever added)."""
    head = fold(" ".join(str(values[k]) for k in SEARCHED if values.get(k))).replace("\n", " ")
    lines = set(before.split("\n")[1:]) if before else set()
    for text in searched_texts(events):
        lines.update(line for raw in fold(text).split("\n") if (line := raw.strip()))
    return "\n".join([head, *sorted(lines)]) if lines else head


def search_of_row(*columns: Any) -> str:
    """``search_text`` of a deal's columns ``SEARCHED`` (in order) and its searched texts
    joined by line ends (or NULL), as SQL hands them (``recompute_search``). The same text,
    made faster: the texts folded at once (a line end parts what ``fold`` changes)."""
    *fields, texts = columns
    head = fold(" ".join([str(v) for v in fields if v])).replace("\n", " ")
    if not texts:
        return head
    lines = {line for raw in fold(texts).split("\n") if (line := raw.strip())}
    return "\n".join([head, *sorted(lines)]) if lines else head


def refresh_search(conn: sqlite3.Connection, deal_ids: Iterable[int]) -> None:
    """Compute these deals' search texts anew from their rows and events, in the caller's
    transaction: after a change that takes a note's text away (an event voided), which the
    writes' own update (``record``: fields and new notes) does not."""
    for deal_id in deal_ids:
        row = conn.execute(f"SELECT {', '.join(SEARCHED)}, search FROM deals WHERE id = ?",
                           (deal_id,)).fetchone()
        if row is None:
            continue
        made = search_text(dict(zip(SEARCHED, row, strict=False)), events(conn, deal_id))
        if made != row[len(SEARCHED)]:
            conn.execute("UPDATE deals SET search = ? WHERE id = ?", (made, deal_id))


def texts_sql(deal: str, voided: bool, server: bool = False) -> str:
    """SQL: the searched texts of the deal ``deal`` (an SQL expression), one per line (NULL
    for none); ``voided``: leave out voided events (schema 11 on)."""
    live = " AND e.voided_by IS NULL" if voided else ""
    kinds = ", ".join(f"'{k}'" for k in NOTE_KINDS)
    nl = "chr(10)" if server else "char(10)"
    t = (f"coalesce(CASE WHEN e.kind IN ({kinds}) THEN e.text END, '') || {nl} || "
         "coalesce(e.next_action, '')")
    joined = f"string_agg({t}, {nl})" if server else f"group_concat({t}, {nl})"
    return (f"SELECT {joined} FROM events e WHERE e.deal_id = {deal}{live} "
            "AND (e.text IS NOT NULL OR e.next_action IS NOT NULL)")


def recompute_search(conn: sqlite3.Connection) -> None:
    """Every deal's search text anew, in one UPDATE inside the caller's transaction (SQLite's
    migration 0012): the fields and the texts of each deal's events, folded by a Python
    function registered on the connection."""
    voided = any(r[1] == "voided_by" for r in conn.execute("PRAGMA table_info(events)"))
    conn.create_function("pipectl_search", 8, search_of_row, deterministic=True)
    conn.execute(f"UPDATE deals SET search = pipectl_search({', '.join(SEARCHED)}, "
                 f"({texts_sql('deals.id', voided)}))")


def recompute_search_on_server(cur: Any) -> None:
    """``recompute_search`` on a PostgreSQL server (migration 12; ``cur``: a psycopg cursor
    inside the migration's transaction): each deal's fields and texts read in one query,
    their search texts computed here, written back by COPY into a scratch table and one
    UPDATE of the deals whose text changed."""
    cur.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = 'events' AND column_name = 'voided_by'")
    voided = cur.fetchone() is not None
    cur.execute(f"SELECT id, {', '.join(SEARCHED)}, "
                f"({texts_sql('d.id', voided, server=True)}) FROM deals d")
    made = [(r[0], search_of_row(*r[1:])) for r in cur.fetchall()]
    # pipectl_search_new: the migration's scratch table (store/postgres/schema.py)
    with cur.copy("COPY pipectl_search_new (id, search) FROM STDIN") as copy:
        for row in made:
            copy.write_row(row)
    cur.execute("UPDATE deals d SET search = n.search FROM pipectl_search_new n "
                "WHERE n.id = d.id AND d.search IS DISTINCT FROM n.search")


# ---------------------------------------------------------------- reads


def get(conn: sqlite3.Connection, deal_id: int) -> Row:
    row = None
    if 0 < deal_id < 2**63:
        row = conn.execute("SELECT * FROM deals WHERE id = ?", (deal_id,)).fetchone()
    if row is None:
        raise NotFound(f"no deal with id {deal_id}", hint="pipectl list --status all shows them")
    return dict(row)


def last_event_at(conn: sqlite3.Connection, deal_id: int) -> str:
    row = conn.execute(
        "SELECT max(at) FROM events WHERE deal_id = ? AND voided_by IS NULL", (deal_id,)
    ).fetchone()
    return row[0] or "0000-00-00T00:00:00Z"


def events(conn: sqlite3.Connection, deal_id: int) -> list[Row]:
    """The deal's events, oldest first; a voided one (undo) with ``voided_by`` and the undo's
    moment and actor (``undone_at``, ``undone_by``)."""
    cur = conn.execute("SELECT e.*, u.at AS undone_at, u.actor AS undone_by FROM events e "
                       "LEFT JOIN undos u ON u.id = e.voided_by "
                       "WHERE e.deal_id = ? ORDER BY e.at, e.id", (deal_id,))
    return [{k: v for k, v in dict(r).items() if v is not None} for r in cur]


# A deal's status from its row, whatever its pipeline: the projection keeps closed_at set
# exactly while a deal is won or lost.
STATUS_SQL = {
    "open": "closed_at IS NULL",
    "won": f"closed_at IS NOT NULL AND stage <> '{LOST}'",
    "lost": f"stage = '{LOST}'",
    "closed": "closed_at IS NOT NULL",  # won or lost
    "all": "1 = 1",
}


def status_condition(status: str, pipelines: dict[int, Pipeline] | None = None) -> str:
    """SQL: the deals of this status. With the pipelines' definitions, by their stages (an
    index range of deals_stage_owner: open deals are a fraction of all); else by closed_at."""
    if status == "all" or not pipelines:
        return STATUS_SQL[status]
    terms = []
    wanted = ("won", "lost") if status == "closed" else (status,)
    for pid, p in sorted(pipelines.items()):
        keys = [s.key for s in p.stages if s.status.value in wanted]
        if keys:
            terms.append(f"(pipeline_id = {int(pid)} AND stage IN "
                         f"({', '.join(literal(k) for k in keys)}))")
    return "(" + " OR ".join(terms) + ")" if terms else "0"


# By value, amounts are compared within a currency only (350,000,000 VND is not "more" than
# 32,500 EUR): grouped by currency, largest first in each; by the converted value instead where
# the command converts (--in: ``value_order``).
SORTS = {
    "stage": "{order}, {value}, id",
    "value": "{value}, id",
    # the date the list's Close column shows: when a won or lost deal closed, else the
    # expected close date
    "close": "coalesce(closed_at, close_date) IS NULL, coalesce(closed_at, close_date), id",
    "age": "created_at, id",
    "updated": "updated_at DESC, id DESC",
}


def list_deals(conn: sqlite3.Connection, **filters: Any) -> list[Row]:
    """The deals matching ``filters`` (see ``iter_deals``), as a list."""
    return list(iter_deals(conn, **filters))


Span = tuple[str | None, str | None]  # [from, to) as ISO UTC moments; None: open on that side


def _where(
    conn: sqlite3.Connection,
    *,
    stage: str | None = None,
    status: str = "open",
    owner: str | None = None,
    search: str | None = None,
    pipeline_id: int | None = None,
    pipelines: dict[int, Pipeline] | None = None,
    closed: Span | None = None,
    created: Span | None = None,
) -> tuple[str, list[Any], dict[int, Pipeline]]:
    """The WHERE clause of ``iter_deals`` and ``totals``, its parameters, and the pipelines
    it read the stages from."""
    from pipectl.store import pipelines as pipeline_store

    where: list[str] = []
    params: list[Any] = []
    known = pipelines if pipelines is not None else pipeline_store.all_in_force(conn)
    if pipeline_id is not None:
        known = {pipeline_id: known[pipeline_id]}
        where.append("pipeline_id = ?")
        params.append(pipeline_id)
    if stage is not None:
        where.append("stage = ?")
        params.append(stage)
    else:
        where.append(status_condition(status, known))
    if owner is not None:
        where.append("owner = ?")
        params.append(owner)
    if search:
        where.append("instr(search, ?) > 0")
        params.append(fold(search))
    for column, span in (("closed_at", closed), ("created_at", created)):
        if span is None:
            continue
        if column == "closed_at":
            where.append("closed_at IS NOT NULL")
        start, end = span
        if start is not None:
            where.append(f"{column} >= ?")
            params.append(start)
        if end is not None:
            where.append(f"{column} < ?")
            params.append(end)
    return " AND ".join(where), params, known


# Columns computed for a listing, by name. ``step_in_force``: the deal's logged next step
# (next_action) is still the one to take: logged at or after the deal's latest move, as
# ``next``, ``show`` and ``done`` read it (domain/next_step.py); a step logged before a move
# counts as done, though ``deals.next_action`` keeps it (it is what the notes said).
COMPUTED = {
    "step_in_force": """(next_action IS NOT NULL AND coalesce((
        SELECT max(n.at) FROM events n WHERE n.deal_id = deals.id AND n.kind = 'note'
        AND n.voided_by IS NULL
        AND (n.next_action IS NOT NULL OR n.due IS NOT NULL OR n.field = 'next_action')), '')
      >= coalesce((SELECT max(m.at) FROM events m WHERE m.deal_id = deals.id
                   AND m.to_stage IS NOT NULL AND m.voided_by IS NULL), '')) AS step_in_force""",
}


def iter_deals(
    conn: sqlite3.Connection,
    *,
    stage: str | None = None,
    status: str = "open",
    owner: str | None = None,
    search: str | None = None,
    sort: str = "stage",
    limit: int | None = None,
    columns: tuple[str, ...] | None = None,
    pipeline_id: int | None = None,
    pipelines: dict[int, Pipeline] | None = None,
    closed: Span | None = None,
    created: Span | None = None,
    factors: Mapping[str, Fraction] | None = None,
) -> Iterator[Row]:
    """Deals one at a time (memory stays flat for any number of them).

    ``factors``: a sort by value (``value``, and ``stage`` within a stage) compares the values
    converted with them (minor units of one currency per minor unit of each currency that has
    a rate), those of other currencies after, grouped by currency (``value_order``).

    ``stage`` is a key of the pipeline ``pipeline_id`` (given with it). ``columns``: only these
    columns of ``deals`` (names from the code, never from the user); all by default. The list
    table reads 10 of 30 (1,000 deals: ~3 ms instead of ~6 ms). ``closed`` and ``created``:
    only the deals that closed (won or lost) / were created in ``[from, to)``.
    """
    where, params, known = _where(
        conn, stage=stage, status=status, owner=owner, search=search, pipeline_id=pipeline_id,
        pipelines=pipelines, closed=closed, created=created)
    selected = ", ".join(COMPUTED.get(c, c) for c in columns) if columns else "*"
    order = SORTS[sort]
    if "{order}" in order:
        order = order.replace("{order}",
                              "pipeline_id, " + stage_case(known, "order", default="99"))
    order = order.replace("{value}", value_order(factors))
    sql = f"SELECT {selected} FROM deals WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return _dicts(conn, sql, params)


def value_order(factors: Mapping[str, Fraction] | None = None, interleave: bool = False
                ) -> str:
    """SQL ORDER BY terms, largest value first, that never compare amounts of two currencies
    as written: deals without a value last; with ``factors`` (see ``iter_deals``), the deals
    of those currencies first, by their converted value compared exactly (an integer key:
    each factor times the least common denominator of them all); the others grouped by
    currency, largest first in each, or with ``interleave`` by rank within their currency
    (the largest of each currency, then the second of each, ...: the board's top deals)."""
    terms = ["value_minor IS NULL"]
    if factors:
        common = math.lcm(*(f.denominator for f in factors.values()))
        whens = " ".join(f"WHEN {literal(c)} THEN value_minor * {int(f * common)}"
                         for c, f in sorted(factors.items()))
        key = f"CASE currency {whens} END"
        terms += [f"{key} IS NULL", f"{key} DESC"]
    if interleave:
        # NULLS LAST: SQLite's order for DESC, written out for PostgreSQL (NULLS FIRST there)
        terms.append("row_number() OVER (PARTITION BY currency "
                     "ORDER BY value_minor DESC NULLS LAST, id)")
    terms += ["currency", "value_minor DESC"]
    return ", ".join(terms)


def totals(conn: sqlite3.Connection, **filters: Any) -> list[Row]:
    """Per currency, of every deal matching ``filters`` (those of ``iter_deals`` but sort,
    limit and columns): ``count``, ``value`` (the exact sum of the known values; None when no
    deal of that currency has one) and ``without_value``, by currency."""
    where, params, _ = _where(conn, **filters)
    return [
        {"currency": cur, "count": n, "value": joined(hi, lo), "without_value": none}
        for cur, n, hi, lo, none in conn.execute(
            f"SELECT currency, count(*), {exact_sum('value_minor')}, sum(value_minor IS NULL) "
            f"FROM deals WHERE {where} GROUP BY currency ORDER BY currency",
            params,
        )
    ]


def _dicts(conn: sqlite3.Connection, sql: str, params: list) -> Iterator[Row]:
    """The rows as dicts, made from plain tuples: half the time of dict(sqlite3.Row) per row
    (1,000 deals: ~8 ms against ~15 ms). The query runs now, as conn.execute would."""
    from pipectl.store.sql import streamed

    names, rows = streamed(conn, sql, params)
    return (dict(zip(names, r, strict=True)) for r in rows)


def has_owner(conn: sqlite3.Connection, owner: str, other_than: int | None = None) -> bool:
    """Does any deal (open or closed; but deal ``other_than``) have this owner? One seek of
    the deals_owner index."""
    if other_than is not None:
        return conn.execute("SELECT 1 FROM deals WHERE owner = ? AND id <> ? LIMIT 1",
                            [owner, other_than]).fetchone() is not None
    found = conn.execute("SELECT 1 FROM deals WHERE owner = ? LIMIT 1", [owner]).fetchone()
    return found is not None


def owners(conn: sqlite3.Connection, most: int = 500) -> list[str]:
    """The distinct owners in order (at most ``most``): one seek of the deals_owner index
    each, so a million deals cost no more than a handful of owners do."""
    out: list[str] = []
    found = conn.execute("SELECT min(owner) FROM deals").fetchone()[0]
    while found is not None and len(out) < most:
        out.append(found)
        found = conn.execute("SELECT min(owner) FROM deals WHERE owner > ?", [found]).fetchone()[0]
    return out


def lost_reasons(conn: sqlite3.Connection, most: int = 200) -> list[tuple[str, int]]:
    """The reasons lost deals carry, most used first (then by name), with their counts: the
    index deals_lost_reason alone (schema 12)."""
    return [(r[0], int(r[1])) for r in conn.execute(
        "SELECT lost_reason, count(*) FROM deals WHERE lost_reason IS NOT NULL "
        f"GROUP BY lost_reason ORDER BY count(*) DESC, lost_reason LIMIT {int(most)}")]


_START = 24  # the characters of a search text the index deals_search_start holds
_LAST = "\U0010ffff"  # after every text that starts with a given one


def open_same_name(conn: sqlite3.Connection, name: str, company: str | None,
                   other_than: int | None = None) -> list[Row]:
    """The open deals whose name and company fold (``values.fold``) to those given: id, name,
    company. A search text starts with the folded name and company (``search_text``): the
    deals whose text starts so are a range of the index deals_search_start."""
    want = (fold(name), fold(company or ""))
    start = (want[0] + (" " + want[1] if company else ""))[:_START]
    rows = conn.execute(
        f"SELECT id, name, company, closed_at FROM deals WHERE substr(search, 1, {_START}) >= ? "
        f"AND substr(search, 1, {_START}) < ? ORDER BY id", [start, start + _LAST])
    return [{"id": i, "name": n, "company": c} for i, n, c, closed in rows
            if closed is None and i != other_than and (fold(n), fold(c or "")) == want]


def board(
    conn: sqlite3.Connection, pipeline: Pipeline, owner: str | None = None,
    per_stage: int | None = 8, factors: Mapping[str, Fraction] | None = None,
) -> tuple[dict[str, list[Row]], list[Row]]:
    """The open deals of one pipeline for the board, aggregated in SQL.

    Returns the largest deals of each open stage (at most ``per_stage``; None for all: by
    converted value with ``factors``, else the largest of each currency in turn, see
    ``value_order``) and one
    row per (stage, currency) with ``count``, ``value`` (sum of known values) and
    ``value_x_percent`` (sum of value x probability in percent: the deal's own, else its
    stage's), so memory stays flat however large the pipeline. The sums are exact however
    large (``sql.exact_sum``).
    """
    assert pipeline.id is not None
    mine = " AND owner = ?" if owner is not None else ""
    params: list[Any] = [owner] if owner is not None else []
    probability = stage_case({pipeline.id: pipeline}, "probability")
    weighted = f"value_minor * coalesce(probability, {probability})"
    totals = [
        {"stage": stage, "currency": cur, "count": n, "value": joined(v_hi, v_lo),
         "value_x_percent": joined(w_hi, w_lo)}
        for stage, cur, n, v_hi, v_lo, w_hi, w_lo in conn.execute(
            f"SELECT stage, currency, count(*), {exact_sum('value_minor')}, "
            f"{exact_sum(weighted)} "
            f"FROM deals WHERE {status_condition('open', {pipeline.id: pipeline})}{mine} "
            "GROUP BY stage, currency",
            params,
        )
    ]
    if per_stage and not factors:
        # the largest of each currency in turn: each currency's first ``per_stage`` along the
        # index deals_board (no sort of the stage's deals), then ranked as value_order does
        held: dict[str, list[str]] = {}
        for t in totals:
            held.setdefault(t["stage"], []).append(t["currency"])
        top = {key: _largest_in_turn(conn, pipeline.id, key, held.get(key, []), mine, params,
                                     int(per_stage))
               for key in pipeline.open_keys}
        return top, totals
    limit = f" LIMIT {int(per_stage)}" if per_stage else ""
    top = {
        key: [dict(r) for r in conn.execute(
            f"SELECT * FROM deals WHERE pipeline_id = ? AND stage = ?{mine} "
            f"ORDER BY {value_order(factors, interleave=True)}, id{limit}",
            [pipeline.id, key, *params],
        )]
        for key in pipeline.open_keys
    }
    return top, totals


# a deal without a value comes after the others, as SQLite orders a DESC by itself (the
# server's index deals_board is so ordered: schema.py)
_NULLS_LAST = {True: "", False: " NULLS LAST"}


def _largest_in_turn(conn: sqlite3.Connection, pipeline_id: int, stage: str,
                     currencies: list[str], mine: str, params: list[Any], n: int
                     ) -> list[Row]:
    """The first ``n`` deals of a stage in ``value_order(interleave=True), id`` order: the
    largest of each currency, then the second of each, ..., deals without a value last."""
    ranked: list[tuple[tuple, Row]] = []
    for cur in currencies:
        rows = conn.execute(
            f"SELECT * FROM deals INDEXED BY deals_board WHERE pipeline_id = ? AND stage = ? "
            f"AND currency = ?{mine} ORDER BY value_minor DESC{_NULLS_LAST[on_sqlite(conn)]}, "
            f"id LIMIT {n}",
            [pipeline_id, stage, cur, *params],
        )
        for rank, r in enumerate(rows, start=1):
            d = dict(r)
            value = d["value_minor"]
            ranked.append(((value is None, rank, cur, -(value or 0), d["id"]), d))
    ranked.sort(key=lambda x: x[0])
    return [d for _, d in ranked[:n]]


def count_outside_ref_prefix(conn: sqlite3.Connection, prefix: str) -> int:
    """How many deals have no ref, or a ref that does not start with ``prefix``."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return conn.execute(
        "SELECT count(*) FROM deals WHERE ref IS NULL OR ref NOT LIKE ? ESCAPE '\\'", (pattern,)
    ).fetchone()[0]


def checkpoint(conn: sqlite3.Connection) -> None:
    """Fold the write-ahead log into the database file (before it is moved or copied)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def counts_by_status(conn: sqlite3.Connection) -> dict[str, int]:
    row = conn.execute(
        f"SELECT sum({STATUS_SQL['open']}), sum({STATUS_SQL['won']}), sum({STATUS_SQL['lost']})"
        " FROM deals"
    ).fetchone()
    return {"open": row[0] or 0, "won": row[1] or 0, "lost": row[2] or 0}


# ---------------------------------------------------------------- writes
# The caller (a service) holds the transaction and has decided what happens; these only record.


def insert_event(conn: sqlite3.Connection, deal_id: int, event: Row) -> int:
    cols = {k: v for k, v in event.items()
            if v is not None and k not in ("id", "deal_id", "actor")}
    names = ", ".join(["deal_id", *cols, "actor"])
    marks = ", ".join("?" * (2 + len(cols)))
    cur = conn.execute(
        f"INSERT INTO events ({names}) VALUES ({marks})",
        (deal_id, *cols.values(), actor_of(conn)),
    )
    return int(cur.lastrowid or 0)


def ref_exists(conn: sqlite3.Connection, ref: str) -> bool:
    return conn.execute("SELECT 1 FROM deals WHERE ref = ?", (ref,)).fetchone() is not None


def insert_deal(conn: sqlite3.Connection, deal: Row, events: list[Row]) -> int:
    """A new deal (``deal``: its projected state, without id) and its first events."""
    values = {k: v for k, v in deal.items() if k != "id"}
    values["search"] = search_text(values, events)
    names = ", ".join(values)
    cur = conn.execute(
        f"INSERT INTO deals ({names}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    deal_id = int(cur.lastrowid or 0)
    for event in events:
        insert_event(conn, deal_id, event)
    return deal_id


def record(conn: sqlite3.Connection, before: Row, after: Row, events: list[Row]) -> list[int]:
    """Append a deal's new events and store its new state (the columns that changed)."""
    ids = [insert_event(conn, before["id"], e) for e in events]
    changes = {k: v for k, v in after.items() if k in before and before[k] != v}
    if any(k in SEARCHED for k in changes) or any(True for _ in searched_texts(events)):
        # the search text: the fields, and the lines of the notes before and of these
        search = search_text(after, events, before.get("search"))
        if search != before.get("search"):
            changes["search"] = search
    if changes:
        sets = ", ".join(f"{k} = ?" for k in changes)
        cur = conn.execute(f"UPDATE deals SET {sets} WHERE id = ?",
                           (*changes.values(), before["id"]))
        _changed_or_refused(conn, cur, before["id"])
    return ids


def remove(conn: sqlite3.Connection, deal_id: int) -> None:
    """Delete a deal and its history for good (the only way an event disappears)."""
    cur = conn.execute("DELETE FROM deals WHERE id = ?", (deal_id,))
    _changed_or_refused(conn, cur, deal_id)


def _changed_or_refused(conn: sqlite3.Connection, cur: sqlite3.Cursor, deal_id: int) -> None:
    """On a server, a deal the role may not change is not there to change (row-level
    security filters it out): the server's refusal is raised rather than a silent nothing."""
    if cur.rowcount == 0 and not on_sqlite(conn):
        from pipectl.store.postgres.team import explain_unchanged

        explain_unchanged(conn, deal_id)
