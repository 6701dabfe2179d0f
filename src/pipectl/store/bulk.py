"""The SQL of a bulk import: stage the file's cells, then turn the usual rows into deals and
events in SQL, in the caller's one transaction.

``pipectl import`` row by row spends ~90 us a row in Python (parse, validate, build the
history, bind ~50 values). A bulk import loads the cells as they are into a TEMP table, with
each row's search text when the caller found the row already in pipectl's own form (see
transfer/bulk.py's RowCheck), and converts those rows by INSERT ... SELECT. The cells whose
meaning needs pipectl's Python rules (stage names, statuses, currencies) are few distinct
values: the caller maps each once and hands the results in as small tables (with what each
stage means in the target pipeline: no stage name is written here). The other rows stay in the
TEMP table for the caller's row-by-row path (``leftover_rows``).
tests/store/test_bulk_import.py proves the two paths write the same, and
tests/store/test_projection_property.py that this SQL writes what ``domain.projection`` makes
of the events it writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipectl.domain.pipeline import LOST
from pipectl.store.sql import flag, literal, on_sqlite
from pipectl.store.transfer import actor, taken

RAW = "temp.import_raw"

def stage_rows(conn: sqlite3.Connection, width: int, rows: Iterable[Sequence[Any]]) -> int:
    """Load (n, line, search, cell 0 .. cell width-1) rows into the TEMP table.

    ``search`` is the deal's search text when the caller found every text, time, date, amount
    and percentage cell of the row in pipectl's own form, else NULL (the row is left to the
    row-by-row path). Returns how many rows.
    """
    conn.execute(f"DROP TABLE IF EXISTS {RAW}")
    cells = "".join(f", c{i} TEXT NOT NULL" for i in range(width))
    conn.execute(
        f"CREATE TABLE {RAW} (n INTEGER PRIMARY KEY, line INTEGER NOT NULL, search TEXT{cells})"
    )
    if not on_sqlite(conn):  # a server takes the rows by COPY, streamed
        return conn.copy_in(RAW, rows)
    before = conn.total_changes
    conn.executemany(f"INSERT INTO {RAW} VALUES (?, ?, ?{', ?' * width})", rows)
    return conn.total_changes - before


Columns = Sequence[int]  # a field's staged columns: its own, then those it falls back on


def distinct(conn: sqlite3.Connection, fields: Sequence[Columns]) -> list[tuple[str, ...]]:
    """The distinct combinations of these fields' cells over the staged rows."""
    exprs = ", ".join(cell_expr(c) for c in fields) or "''"
    return [tuple(x) for x in conn.execute(f"SELECT DISTINCT {exprs} FROM {RAW} r")]


@dataclass(frozen=True)
class Combo:
    """What one combination of stage-related cells means in the target pipeline (computed by
    the caller from the pipeline's definition)."""

    cells: tuple[str, ...]  # the cells, in the order of Plan.combo_cells
    final: str  # the stage the deal is in (a key of the pipeline, or lost)
    opening: str  # the open stage the deal is created in
    auto_reason: str | None  # created event's reason when the file gives none
    lost_reason: str  # a lost deal's reason when the file gives none
    closed: bool  # final is not open: won, after won, or lost
    won: bool  # final is the won stage or an after-won one
    after_won: bool  # final is an after-won stage (reached through the won stage)
    qualified: bool  # the opening stage is past the qualification gate
    # lost where the file does not say and no preset knows: its qualification is unknown
    # (unless the row gives a pre-qualification reason); see transfer.history.mark_unknown
    unknown_qualification: bool = False


@dataclass(frozen=True)
class Plan:
    """How to read the staged cells, and where the deals go."""

    columns: dict[str, Columns]  # field -> its staged columns (a field absent: no column)
    combo_cells: tuple[str, ...]  # fields whose cells together make a Combo
    combos: list[Combo]
    currencies: dict[str, tuple[str, int]]  # currency cell -> (code, exponent)
    base_id: int  # deal id = base_id + n (renumbered: from temp.import_ids)
    renumbered: bool  # some rows update deals already there (see number_rows)
    now: str  # ISO moment of "no time known"
    zero_value_lost_is_unknown: bool
    pipeline_id: int  # the pipeline every deal goes into
    won_key: str  # its won stage

    def cells(self) -> dict[str, str]:
        """field -> SQL expression of its cell ('' when the file has no such column)."""
        return {f: cell_expr(self.columns.get(f, ())) for f in CELL_FIELDS}


CELL_FIELDS = ("ref", "name", "company", "contact", "email", "phone", "owner", "source",
               "prequalified", "lost_reason", "note", "currency", "value", "probability",
               "created_at", "closed_at", "updated_at", "close_date", "stage", "status", "won",
               "closed", "lost_at_stage")


def number_rows(conn: sqlite3.Connection, ref_columns: Columns, base: int) -> bool:
    """Into a database that already holds deals: a staged row whose ref cell names one of
    them updates it (row by row, in file order); the other rows are new deals, numbered
    base + 1, base + 2, ... in file order, as the row-by-row path numbers them. The numbers go
    to temp.import_ids (n -> deal id, NULL for a row that updates). Returns False, writing
    nothing, when no row names a deal already there: then deal id = base + n."""
    conn.execute("DROP TABLE IF EXISTS temp.import_ids")
    ref = cell_expr(ref_columns)
    if ref == "''" or conn.execute("SELECT 1 FROM deals LIMIT 1").fetchone() is None:
        return False
    known = f"EXISTS (SELECT 1 FROM deals d WHERE d.ref = {ref})"
    if conn.execute(f"SELECT 1 FROM {RAW} r WHERE {known} LIMIT 1").fetchone() is None:
        return False
    conn.execute("CREATE TABLE temp.import_ids (n INTEGER PRIMARY KEY, id INTEGER)")
    conn.execute(
        f"""INSERT INTO temp.import_ids (n, id)
        SELECT n, CASE WHEN known THEN NULL
                       ELSE {int(base)} + sum(NOT known) OVER (ORDER BY n) END
        FROM (SELECT r.n, {known} AS known FROM {RAW} r) AS staged"""
    )
    return True


def _deal_id(plan: Plan) -> str:
    """The deal id of staged row r (NULL: the row updates a deal already there)."""
    if plan.renumbered:
        return "(SELECT i.id FROM temp.import_ids i WHERE i.n = r.n)"
    return f"r.n + {int(plan.base_id)}"


def cell_expr(columns: Sequence[int]) -> str:
    """A field's cell: its column, else (when empty) its fallback columns, in order."""
    if not columns:
        return "''"
    if len(columns) == 1:
        return f"r.c{columns[0]}"
    return "coalesce(" + ", ".join(f"nullif(r.c{i}, '')" for i in columns) + ", '')"


def _minor(x: str) -> str:
    decimals = f"(CASE instr({x}, '.') WHEN 0 THEN 0 ELSE length({x}) - instr({x}, '.') END)"
    scale = f"(CASE k.exp - {decimals} WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 " \
            "WHEN 3 THEN 1000 WHEN 4 THEN 10000 END)"
    return f"CASE {x} WHEN '' THEN NULL ELSE CAST(replace({x}, '.', '') AS INTEGER) * {scale} END"


def convert(conn: sqlite3.Connection, plan: Plan) -> tuple[int, int, dict[str, int]]:
    """Write the deals and events of every staged row in pipectl's own form.

    Returns (deals written, events written, warning counts). Raises ``Taken`` ("deals.ref")
    when two rows share a ref (the caller then takes the row-by-row path for the file).
    """
    try:
        return _convert(conn, plan)
    except Exception as exc:
        found = taken(exc)  # either engine's
        if found is None:
            raise
        raise found from exc


def _convert(conn: sqlite3.Connection, plan: Plan) -> tuple[int, int, dict[str, int]]:
    c = plan.cells()
    conn.execute("DROP TABLE IF EXISTS temp.import_combo")
    conn.execute("DROP TABLE IF EXISTS temp.import_currency")
    conn.execute("DROP TABLE IF EXISTS temp.import_fast")
    n_keys = len(plan.combo_cells)
    keys = ", ".join(f"k{i} TEXT NOT NULL" for i in range(n_keys))
    conn.execute(
        f"CREATE TABLE temp.import_combo ({keys}{', ' if keys else ''}final TEXT NOT NULL, "
        "opening TEXT NOT NULL, auto_reason TEXT, lost_reason TEXT NOT NULL, "
        "closed INTEGER NOT NULL, won INTEGER NOT NULL, after_won INTEGER NOT NULL, "
        "qualified INTEGER NOT NULL, unknown_q INTEGER NOT NULL, "
        f"PRIMARY KEY ({', '.join(f'k{i}' for i in range(n_keys)) or 'final'}))"
    )
    conn.executemany(
        f"INSERT INTO temp.import_combo VALUES ({', '.join('?' * (n_keys + 9))})",
        [(*m.cells, m.final, m.opening, m.auto_reason, m.lost_reason, m.closed, m.won,
          m.after_won, m.qualified, m.unknown_qualification) for m in plan.combos],
    )
    conn.execute("CREATE TABLE temp.import_currency (cell TEXT PRIMARY KEY, code TEXT NOT NULL, "
                 "exp INTEGER NOT NULL)")
    conn.executemany("INSERT INTO temp.import_currency VALUES (?, ?, ?)",
                     [(cell, code, exp) for cell, (code, exp) in plan.currencies.items()])
    combo_on = " AND ".join(
        f"m.k{i} = {c[f]}" for i, f in enumerate(plan.combo_cells)
    ) or "1 = 1"
    ok = ["r.search IS NOT NULL"]
    deal_id = _deal_id(plan)
    if plan.renumbered:  # a row that updates a deal already there goes row by row
        ok.append(f"{deal_id} IS NOT NULL")
    if c["value"] != "''":  # no more decimals than the currency has
        x = c["value"]
        ok.append(f"(instr({x}, '.') = 0 OR length({x}) - instr({x}, '.') <= k.exp)")
    closed_at = (
        f"coalesce(nullif({c['closed_at']}, ''), CASE WHEN {c['close_date']} <> '' "
        f"THEN {c['close_date']} || 'T00:00:00Z' END)"
    )
    # a time after now (a bad cell, or one within the few minutes allowed), and a closed deal
    # whose close time would be a close date still to come (closed at now, with a warning) go
    # row by row; the cells are in pipectl's own form, so they compare as text
    now = literal(plan.now)
    lost = literal(LOST)
    for fld in ("created_at", "closed_at", "updated_at"):
        if c[fld] != "''":
            ok.append(f"{c[fld]} <= {now}")
    ok.append(f"(m.closed = 0 OR coalesce({closed_at}, '') <= {now})")
    value = _minor(c["value"]) if c["value"] != "''" else "NULL"
    if plan.zero_value_lost_is_unknown:
        value = f"CASE WHEN m.final = {lost} THEN nullif({value}, 0) ELSE {value} END"
    conn.execute(
        """CREATE TABLE temp.import_fast (
            n INTEGER PRIMARY KEY, id INTEGER NOT NULL, ref TEXT, name TEXT, company TEXT,
            contact TEXT, email TEXT, phone TEXT, owner TEXT, source TEXT, note TEXT,
            reason TEXT, lost_reason TEXT,
            final TEXT, opening TEXT, closed INTEGER, won INTEGER, after_won INTEGER,
            qualified INTEGER, value_minor INTEGER, currency TEXT, probability INTEGER,
            close_date TEXT, created TEXT, closed_at TEXT, no_created INTEGER, search TEXT,
            unknown_q INTEGER, updated TEXT)"""
    )
    conn.execute(
        f"""INSERT INTO temp.import_fast
        SELECT r.n, {deal_id}, nullif({c['ref']}, ''),
            coalesce(nullif({c['name']}, ''), nullif({c['company']}, ''), {c['ref']}),
            nullif({c['company']}, ''), nullif({c['contact']}, ''), nullif({c['email']}, ''),
            nullif({c['phone']}, ''), nullif({c['owner']}, ''), nullif({c['source']}, ''),
            nullif({c['note']}, ''),
            coalesce(nullif({c['prequalified']}, ''), m.auto_reason),
            CASE WHEN m.final = {lost}
                THEN coalesce(nullif({c['lost_reason']}, ''), m.lost_reason) END,
            m.final, m.opening, m.closed, m.won, m.after_won, m.qualified, {value}, k.code,
            CAST(nullif({c['probability']}, '') AS INTEGER),
            nullif({c['close_date']}, ''),
            coalesce(nullif({c['created_at']}, ''),
                     CASE WHEN m.closed = 1 THEN {closed_at} END,
                     nullif({c['updated_at']}, ''), ?),
            CASE WHEN m.closed = 1 THEN {closed_at} END,
            {flag(f"{c['created_at']} = ''")}, r.search,
            {flag(f"m.unknown_q = 1 AND nullif({c['prequalified']}, '') IS NULL "
                  "AND m.auto_reason IS NULL")},
            nullif({c['updated_at']}, '')
        FROM {RAW} r
        JOIN temp.import_combo m ON {combo_on}
        JOIN temp.import_currency k ON k.cell = {c['currency']}
        WHERE {' AND '.join(ok)}
        ORDER BY r.n""",
        (plan.now,),
    )
    # a closed deal closes at its close time, else at the last time the file knows for it (its
    # update, else its creation); it is created no later than it closes. What the file left
    # unknown goes on the created event (transfer.history.mark_unknown: field 'unknown', new
    # the facts in this order).
    x = "coalesce(closed_at, max(created, coalesce(updated, created)))"
    unknown = """nullif(rtrim(
        CASE WHEN no_created = 1 OR (closed = 1 AND closed_at < created) THEN 'created_at '
             ELSE '' END
        || CASE WHEN closed = 1 AND closed_at IS NULL THEN 'closed_at ' ELSE '' END
        || CASE WHEN unknown_q = 1 THEN 'qualified_at' ELSE '' END), '')"""
    at0 = f"CASE WHEN closed = 1 THEN min(created, {x}) ELSE created END"
    pid, won = int(plan.pipeline_id), literal(plan.won_key)
    # rowcount: the rows the statement itself wrote (total_changes would count the read
    # models' marks a trigger writes too)
    deals = conn.execute(
        f"""INSERT INTO deals (id, ref, name, company, contact, email, phone, owner, source,
            pipeline_id, stage, lost_at_stage, lost_reason, value_minor, currency, probability,
            close_date, qualified_at, prequalified_reason, created_at, updated_at, closed_at,
            search)
        SELECT id, ref, name, company, contact, email, phone, owner, source,
            {pid}, final, CASE WHEN final = {lost} THEN opening END, lost_reason, value_minor,
            currency, probability, close_date,
            CASE WHEN reason IS NOT NULL OR qualified = 1 THEN {at0}
                 WHEN won = 1 THEN {x} END,
            reason, {at0}, CASE WHEN closed = 1 THEN {x} ELSE created END,
            CASE WHEN closed = 1 THEN {x} END, search
        FROM temp.import_fast ORDER BY n"""
    ).rowcount
    events = 0
    who = actor(conn)  # every event of the import is recorded as its user's
    # one kind at a time, in the order a deal's events happen: ids keep each deal's order
    for sql in (
        f"""INSERT INTO events (deal_id, at, kind, pipeline_id, to_stage, value_minor, currency,
            close_date, probability, reason, field, new, actor)
        SELECT id, {at0}, 'created', {pid}, opening, value_minor, currency, close_date,
            probability, reason, CASE WHEN {unknown} IS NOT NULL THEN 'unknown' END, {unknown},
            :actor
        FROM temp.import_fast ORDER BY n""",
        f"""INSERT INTO events (deal_id, at, kind, text, actor)
        SELECT id, {at0}, 'note', note, :actor FROM temp.import_fast
        WHERE note IS NOT NULL ORDER BY n""",
        f"""INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage, actor)
        SELECT id, {x}, 'stage', {pid}, opening, {won}, :actor FROM temp.import_fast
        WHERE won = 1 ORDER BY n""",
        f"""INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage, actor)
        SELECT id, {x}, 'stage', {pid}, {won}, final, :actor FROM temp.import_fast
        WHERE after_won = 1 ORDER BY n""",
        f"""INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage, reason,
            actor)
        SELECT id, {x}, 'lost', {pid}, opening, {lost}, lost_reason, :actor FROM temp.import_fast
        WHERE final = {lost} ORDER BY n""",
    ):
        events += conn.execute(sql, {"actor": who}).rowcount
    (no_created, no_closed, closed_before, unknown_q) = conn.execute(
        """SELECT coalesce(sum(no_created), 0),
            coalesce(sum(closed = 1 AND closed_at IS NULL), 0),
            coalesce(sum(closed = 1 AND closed_at < created), 0),
            coalesce(sum(unknown_q), 0)
        FROM temp.import_fast"""
    ).fetchone()
    warnings = {k: v for k, v in (("no_created", no_created), ("no_closed", no_closed),
                                   ("closed_before_created", closed_before),
                                   ("unknown_qualification", unknown_q)) if v}
    return deals, events, warnings





def shows_decimal_point(conn: sqlite3.Connection, plan: Plan) -> bool:
    """Does an amount of the rows converted in SQL show the point to be a decimal point: a
    '.' other than between one to three digits (not a lone 0) and exactly three ('100000.0',
    '12.5', '0.500'; not '1.500', which reads two ways, or is a KWD amount)? (transfer.parsing
    .separators says the same of the rows read in Python.)"""
    x = plan.cells()["value"]
    if x == "''":
        return False
    if on_sqlite(conn):
        two_ways = " OR ".join(f"{x} GLOB '{p}'" for p in (
            "[1-9].[0-9][0-9][0-9]", "[1-9][0-9].[0-9][0-9][0-9]",
            "[1-9][0-9][0-9].[0-9][0-9][0-9]"))
    else:  # a server has no GLOB: the same three shapes as one regular expression
        two_ways = f"{x} ~ '^[1-9][0-9]{{0,2}}[.][0-9]{{3}}$'"
    found = conn.execute(
        f"""SELECT EXISTS (SELECT 1 FROM {RAW} r WHERE r.n IN (SELECT n FROM temp.import_fast)
            AND instr({x}, '.') > 0 AND NOT ({two_ways}))"""
    ).fetchone()
    return bool(found[0])


def leftover_rows(conn: sqlite3.Connection, width: int, plan: Plan,
                  every: bool = False) -> Iterator[tuple[int | None, int, list[str]]]:
    """(deal id, line, cells) of the staged rows not converted (``every``: all of them), in
    order; the deal id is None for a row that updates a deal already there."""
    cols = ", ".join(f"c{i}" for i in range(width))
    # NOT EXISTS, not NOT IN: a server whose work_mem cannot hold the list scans it again for
    # every staged row (a 1M-row import that never ends); a probe of the key is the same
    where = "" if every else (
        "WHERE NOT EXISTS (SELECT 1 FROM temp.import_fast f WHERE f.n = r.n)")
    for row in conn.execute(
        f"SELECT {_deal_id(plan)}, line, {cols} FROM {RAW} r {where} ORDER BY n"
    ):
        yield row[0], row[1], list(row[2:])


def drop(conn: sqlite3.Connection) -> None:
    for name in ("import_fast", "import_combo", "import_currency", "import_ids", "import_raw"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
