"""Tables, indexes, triggers and migrations (sqlite-utils' Migrations).

``VERSION`` is the number of migrations this pipectl knows (``store.db.upgrade`` applies
them); it is stored in ``PRAGMA user_version`` so that an older pipectl can refuse a newer file
before touching it.
Migrations run once, under the write lock (BEGIN IMMEDIATE), after a backup copy of a database
that already held data.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

# The checklist columns of schemas 1-3 (the default pipeline's criteria); from schema 4 on a
# deal's checklist is one JSON object (``domain.checklist``), whatever its pipeline's criteria.
_V1_CRITERIA = ("location", "budget", "authority", "need")
# The stage keys of schemas 1-3, whose CHECK constraints listed them; from schema 4 on a stage
# is valid when its pipeline has it (a foreign key to stage_keys).
_V1_STAGES = ("prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
              "post_purchase", "lost")
_V1_OPEN = _V1_STAGES[:5]

EVENT_KINDS = (
    "created",  # the deal was logged (carries stage, value, currency, close date, probability)
    "stage",  # moved forward, skipped ahead or moved back
    "lost",  # closed lost at from_stage, with a reason
    "reopened",  # back from lost to the stage it was lost at
    "checklist",  # qualification criteria changed
    "value",  # value and/or currency changed
    "close_date",  # expected close date changed
    "probability",  # the deal's own probability set or cleared
    "edit",  # a descriptive field changed (field, old, new)
    "note",  # an activity, optionally with the next action and its due date
    "pipeline",  # moved into another pipeline (pipeline_id, to_stage: where it landed)
)
MOVE_KINDS = ("created", "stage", "lost", "reopened", "pipeline")  # events that carry to_stage

_stages = ", ".join(f"'{s}'" for s in _V1_STAGES)
_open = ", ".join(f"'{s}'" for s in _V1_OPEN)
_kinds = ", ".join(f"'{k}'" for k in EVENT_KINDS[:-1])
_flags = "\n".join(f"    {c} INTEGER CHECK ({c} IN (0, 1))," for c in _V1_CRITERIA)
_ISO = "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'"
_DATE = "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"

SCHEMA_V1 = f"""
CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    ref TEXT UNIQUE,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    company TEXT,
    contact TEXT,
    email TEXT,
    phone TEXT,
    owner TEXT,
    source TEXT,
    stage TEXT NOT NULL CHECK (stage IN ({_stages})),
    lost_at_stage TEXT CHECK (lost_at_stage IN ({_open})),
    lost_reason TEXT,
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency = upper(currency)),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
    close_date TEXT CHECK (close_date {_DATE}),
    qualified_at TEXT CHECK (qualified_at {_ISO}),
    prequalified_reason TEXT,
{_flags}
    next_action TEXT,
    next_due TEXT CHECK (next_due {_DATE}),
    created_at TEXT NOT NULL CHECK (created_at {_ISO}),
    updated_at TEXT NOT NULL CHECK (updated_at {_ISO}),
    closed_at TEXT CHECK (closed_at {_ISO}),
    search TEXT NOT NULL DEFAULT '',
    CHECK ((stage = 'lost') = (lost_at_stage IS NOT NULL))
) STRICT;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    deal_id INTEGER NOT NULL REFERENCES deals(id) ON DELETE CASCADE,
    at TEXT NOT NULL CHECK (at {_ISO}),
    kind TEXT NOT NULL CHECK (kind IN ({_kinds})),
    from_stage TEXT CHECK (from_stage IN ({_stages})),
    to_stage TEXT CHECK (to_stage IN ({_stages})),
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT CHECK (length(currency) = 3),
    close_date TEXT CHECK (close_date {_DATE}),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
{_flags}
    reason TEXT,
    text TEXT,
    next_action TEXT,
    due TEXT CHECK (due {_DATE}),
    field TEXT,
    old TEXT,
    new TEXT,
    CHECK ((kind IN ('created', 'stage', 'lost', 'reopened')) = (to_stage IS NOT NULL))
) STRICT;

CREATE INDEX events_deal ON events (deal_id, at, id);
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX deals_stage_owner ON deals (stage, owner);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_close ON deals (close_date);
CREATE INDEX deals_updated ON deals (updated_at);

-- History is append-only: an event is never changed, and disappears only with its deal (rm).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM deals WHERE id = OLD.deal_id)
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
"""


_CHECKS = "\n".join(f"    {c} INTEGER," for c in _V1_CRITERIA)

# Schema 4: pipelines are data. A deal belongs to a pipeline; its stage is valid when that
# pipeline has it (stage_keys), not when a list of names written here says so. Definitions are
# versioned (pipeline_versions), never overwritten. The checklist is one JSON object.
SCHEMA_V4 = f"""
CREATE TABLE pipelines (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at TEXT NOT NULL CHECK (created_at {_ISO}),
    removed_at TEXT CHECK (removed_at {_ISO})
) STRICT;
CREATE UNIQUE INDEX pipelines_one_default ON pipelines (is_default) WHERE is_default = 1;

CREATE TABLE pipeline_versions (
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    version INTEGER NOT NULL CHECK (version >= 1),
    at TEXT NOT NULL CHECK (at {_ISO}),
    definition TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, version)
) STRICT;

-- Every stage key a pipeline has ever had, and 'lost', the state every pipeline has: rows are
-- never deleted (events keep naming a stage a later version removed).
CREATE TABLE stage_keys (
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    key TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, key)
) STRICT, WITHOUT ROWID;

-- A stage map given to an import, remembered per pipeline and source (a preset or a file's
-- columns), so that the next export of the same CRM imports with no flags.
CREATE TABLE stage_maps (
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, source, name),
    FOREIGN KEY (pipeline_id, key) REFERENCES stage_keys (pipeline_id, key)
) STRICT;

CREATE TABLE deals_v4 (
    id INTEGER PRIMARY KEY,
    ref TEXT UNIQUE,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    company TEXT,
    contact TEXT,
    email TEXT,
    phone TEXT,
    owner TEXT,
    source TEXT,
    pipeline_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    lost_at_stage TEXT,
    lost_reason TEXT,
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency = upper(currency)),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
    close_date TEXT CHECK (close_date {_DATE}),
    qualified_at TEXT CHECK (qualified_at {_ISO}),
    prequalified_reason TEXT,
    checklist TEXT,
    next_action TEXT,
    next_due TEXT CHECK (next_due {_DATE}),
    created_at TEXT NOT NULL CHECK (created_at {_ISO}),
    updated_at TEXT NOT NULL CHECK (updated_at {_ISO}),
    closed_at TEXT CHECK (closed_at {_ISO}),
    search TEXT NOT NULL DEFAULT '',
    CHECK ((stage = 'lost') = (lost_at_stage IS NOT NULL)),
    FOREIGN KEY (pipeline_id, stage) REFERENCES stage_keys (pipeline_id, key),
    FOREIGN KEY (pipeline_id, lost_at_stage) REFERENCES stage_keys (pipeline_id, key)
) STRICT;

CREATE TABLE events_v4 (
    id INTEGER PRIMARY KEY,
    deal_id INTEGER NOT NULL REFERENCES deals_v4(id) ON DELETE CASCADE,
    at TEXT NOT NULL CHECK (at {_ISO}),
    kind TEXT NOT NULL CHECK ({" OR ".join(f"kind = '{k}'" for k in EVENT_KINDS)}),
    pipeline_id INTEGER,
    from_stage TEXT,
    to_stage TEXT,
    value_minor INTEGER CHECK (value_minor >= 0),
    currency TEXT CHECK (length(currency) = 3),
    close_date TEXT CHECK (close_date {_DATE}),
    probability INTEGER CHECK (probability BETWEEN 0 AND 100),
    checks TEXT,
    reason TEXT,
    text TEXT,
    next_action TEXT,
    due TEXT CHECK (due {_DATE}),
    field TEXT,
    old TEXT,
    new TEXT,
    CHECK (({" OR ".join(f"kind = '{k}'" for k in MOVE_KINDS)}) = (to_stage IS NOT NULL)),
    CHECK ((to_stage IS NULL) = (pipeline_id IS NULL)),
    FOREIGN KEY (pipeline_id, to_stage) REFERENCES stage_keys (pipeline_id, key)
) STRICT;
"""

INDEXES_V4 = """
CREATE INDEX events_deal ON events (deal_id, at, id);
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX events_moves ON events (deal_id, at, to_stage, pipeline_id)
    WHERE to_stage IS NOT NULL;
CREATE INDEX deals_stage_owner ON deals (pipeline_id, stage, owner);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_close ON deals (close_date);
CREATE INDEX deals_updated ON deals (updated_at);

-- History is append-only: an event is never changed, and disappears only with its deal (rm).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM deals WHERE id = OLD.deal_id)
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
"""


def _json_marks(prefix: str = "") -> str:
    """SQL: the four checklist columns of schema 1-3 as the JSON object domain.checklist
    writes (criteria in order, NULL when none is assessed)."""
    parts = " || ".join(
        f"coalesce('\"{c}\":' || CASE {prefix}{c} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"
        " || ',', '')"
        for c in _V1_CRITERIA
    )
    return f"nullif('{{' || rtrim({parts}, ',') || '}}', '{{}}')"


# The moment the command opening the file runs at (services.clock, PIPECTL_NOW included), set
# by store.db.connect for the migrations it applies: the default pipeline of a new file is
# created then (the same moment a server's is). None: SQLite's clock.
MOMENT: list[str | None] = [None]


def _to_v4(conn: sqlite3.Connection) -> None:
    """Rebuild deals and events in the schema-4 shape, every row kept: all deals into the
    default pipeline (id 1), the four checklist columns into one JSON object. Runs inside the
    migration's transaction, with foreign keys off and checked before the commit
    (``store.db.upgrade``): the new tables are filled, the old ones dropped, and the new ones
    renamed into place."""
    from pipectl.domain.pipeline import DEFAULT, LOST
    from pipectl.domain.pipeline import to_json as pipeline_json

    run_script(conn, SCHEMA_V4)
    now = MOMENT[0] or conn.execute("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')").fetchone()[0]
    first = conn.execute("SELECT min(at) FROM events").fetchone()[0] or now
    since = min(first, now)
    conn.execute(
        "INSERT INTO pipelines (id, name, is_default, created_at) VALUES (1, ?, 1, ?)",
        (DEFAULT.name, since),
    )
    conn.execute(
        "INSERT INTO pipeline_versions (pipeline_id, version, at, definition) VALUES (1, 1, ?, ?)",
        (since, pipeline_json(DEFAULT)),
    )
    conn.executemany(
        "INSERT INTO stage_keys (pipeline_id, key) VALUES (1, ?)",
        [(k,) for k in (*DEFAULT.keys, LOST)],
    )
    deal_cols = ("id, ref, name, company, contact, email, phone, owner, source, {p}stage, "
                 "lost_at_stage, lost_reason, value_minor, currency, probability, close_date, "
                 "qualified_at, prequalified_reason, {c}next_action, next_due, created_at, "
                 "updated_at, closed_at, search")
    conn.execute(
        f"INSERT INTO deals_v4 ({deal_cols.format(p='pipeline_id, ', c='checklist, ')}) "
        f"SELECT {deal_cols.format(p='1, ', c=_json_marks() + ', ')} FROM deals ORDER BY id"
    )
    event_cols = ("id, deal_id, at, kind, {p}from_stage, to_stage, value_minor, currency, "
                  "close_date, probability, {c}reason, text, next_action, due, field, old, new")
    conn.execute(
        f"INSERT INTO events_v4 ({event_cols.format(p='pipeline_id, ', c='checks, ')}) "
        "SELECT "
        + event_cols.format(
            p="CASE WHEN to_stage IS NOT NULL THEN 1 END, ", c=_json_marks() + ", "
        )
        + " FROM events ORDER BY id"
    )
    conn.execute("DROP TABLE events")
    conn.execute("DROP TABLE deals")
    conn.execute("ALTER TABLE deals_v4 RENAME TO deals")
    conn.execute("ALTER TABLE events_v4 RENAME TO events")
    run_script(conn, INDEXES_V4)


# Schema 5: the files imports took deals without a ref from, by the SHA-256 of their bytes,
# so that importing the same file again is refused instead of doubling those deals (a deal
# with a ref is found again by it). One row per such import; nothing else reads it.
SCHEMA_V5 = f"""
CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    at TEXT NOT NULL CHECK (at {_ISO}),
    file TEXT NOT NULL,
    added INTEGER NOT NULL CHECK (added > 0)
) STRICT;
CREATE INDEX imports_sha256 ON imports (sha256);
"""


# Schema 6: exchange rates the user recorded (``pipectl rate set``), for converting figures
# only when asked (``--in``). A rate says 1 unit of ``source`` is ``rate`` units of ``target``
# from the moment ``at`` on; it is exact decimal text (never a float). Rows are never changed
# nor deleted: the latest recorded row for a pair and moment is the one in force there, and a
# row with no rate withdraws that moment's rate (``pipectl rate rm``).
SCHEMA_V6 = f"""
CREATE TABLE rates (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL CHECK (length(source) = 3 AND source = upper(source)),
    target TEXT NOT NULL CHECK (length(target) = 3 AND target = upper(target)),
    at TEXT NOT NULL CHECK (at {_ISO}),
    -- exact decimal text in its one form (domain.rates.parse_rate): more than zero, no
    -- leading zeros, no trailing zeros after the point; NULL: a withdrawal
    rate TEXT CHECK (rate GLOB '[0-9]*' AND rate NOT GLOB '*[^0-9.]*'
                     AND rate NOT GLOB '*.*.*' AND rate NOT GLOB '*.' AND rate NOT GLOB '*.*0'
                     AND (rate NOT GLOB '0*' OR rate GLOB '0.[0-9]*') AND length(rate) <= 26),
    recorded_at TEXT NOT NULL CHECK (recorded_at {_ISO}),
    CHECK (source <> target)
) STRICT;
CREATE INDEX rates_pair ON rates (source, target, at, id);

-- Rates are append-only too: a correction is a new row.
CREATE TRIGGER rates_no_update BEFORE UPDATE ON rates
BEGIN SELECT RAISE(ABORT, 'pipectl rates are append-only'); END;
CREATE TRIGGER rates_no_delete BEFORE DELETE ON rates
BEGIN SELECT RAISE(ABORT, 'pipectl rates are append-only'); END;
"""


# Schema 11: undo (issue 16). A mistaken change is voided, never rewritten: ``undos`` records
# each undo (when, who, which deal, what it voided, in one line) and ``events.voided_by`` marks
# the events it voided; nothing else of a voided event ever changes, and every report, read
# model and projection reads the events whose voided_by is NULL. The report indexes become
# partial (voided_by IS NULL): a query that forgets the filter cannot use them (an INDEXED BY
# hint on one is then an error), and one that has it reads them alone, as before (the moves'
# index holds voided_by too, always NULL there: SQLite 3.40 reads a column a query names
# from the table unless the index holds it, partial or not).
_EVENT_COLUMNS_V11 = ("id, deal_id, at, kind, pipeline_id, from_stage, to_stage, value_minor, "
                      "currency, close_date, probability, checks, reason, text, next_action, "
                      "due, field, old, new, actor")
SCHEMA_V11 = f"""
CREATE TABLE undos (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL CHECK (at {_ISO}),
    actor TEXT,
    deal_id INTEGER NOT NULL REFERENCES deals(id) ON DELETE CASCADE,
    summary TEXT NOT NULL
) STRICT;
CREATE INDEX undos_deal ON undos (deal_id);
ALTER TABLE events ADD COLUMN voided_by INTEGER REFERENCES undos(id);
CREATE INDEX events_voided ON events (voided_by) WHERE voided_by IS NOT NULL;

DROP INDEX events_moves;
CREATE INDEX events_moves ON events (deal_id, at, to_stage, pipeline_id, voided_by)
    WHERE to_stage IS NOT NULL AND voided_by IS NULL;
DROP INDEX events_kind_at;
CREATE INDEX events_kind_at ON events (kind, at) WHERE voided_by IS NULL;

-- An event never changes, but for being voided once (its voided_by set, never cleared).
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE OF {_EVENT_COLUMNS_V11} ON events
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only'); END;
CREATE TRIGGER events_void_once BEFORE UPDATE OF voided_by ON events
WHEN OLD.voided_by IS NOT NULL OR NEW.voided_by IS NULL
BEGIN SELECT RAISE(ABORT, 'pipectl events are append-only: a voided event stays voided'); END;
CREATE TRIGGER undos_no_update BEFORE UPDATE ON undos
BEGIN SELECT RAISE(ABORT, 'pipectl undos are append-only'); END;
CREATE TRIGGER undos_no_delete BEFORE DELETE ON undos
WHEN EXISTS (SELECT 1 FROM deals WHERE id = OLD.deal_id)
BEGIN SELECT RAISE(ABORT, 'pipectl undos are append-only'); END;
-- a voided event changes what its deal's read models hold (store/readmodel.py)
CREATE TRIGGER read_dirty_void AFTER UPDATE OF voided_by ON events
BEGIN INSERT OR IGNORE INTO read_dirty (deal_id) VALUES (NEW.deal_id); END;
"""


# Schema 12 (with the search texts recomputed): the start of each deal's search text (its
# name, folded: store.deals.open_same_name), and the lost reasons (store.deals.lost_reasons).
SCHEMA_V12 = """
CREATE INDEX deals_search_start ON deals (substr(search, 1, 24));
CREATE INDEX deals_lost_reason ON deals (lost_reason) WHERE lost_reason IS NOT NULL;
"""


def _migrations():  # -> sqlite_utils.Migrations, imported lazily (start-up cost)
    from sqlite_utils import Migrations

    migrations = Migrations("pipectl")

    @migrations(name="0001_initial")
    def initial(db) -> None:
        run_script(db.conn, SCHEMA_V1)

    @migrations(name="0002_report_indexes")
    def report_indexes(db) -> None:
        # Reports (issue 3) rebuild each deal's history from its moves only: a partial
        # covering index over the stage-carrying events (created, stage, lost, reopened)
        # lets that pass read the index alone, in (deal, time) order.
        run_script(
            db.conn,
            "CREATE INDEX events_moves ON events (deal_id, at, to_stage)"
            " WHERE to_stage IS NOT NULL;",
        )

    @migrations(name="0003_checks_without_in_lists")
    def checks_without_in_lists(db) -> None:
        # Same constraints, written so that SQLite checks them ~10x faster (see or_checks).
        rewrite_table_sql(db.conn, {name: or_checks for name in ("deals", "events")})

    @migrations(name="0004_pipelines")
    def pipelines(db) -> None:
        _to_v4(db.conn)

    @migrations(name="0005_imports")
    def imports(db) -> None:
        run_script(db.conn, SCHEMA_V5)

    @migrations(name="0006_rates")
    def rates(db) -> None:
        run_script(db.conn, SCHEMA_V6)

    @migrations(name="0007_read_models")
    def read_models(db) -> None:
        # Each deal's states over time and its completed stays (store/readmodel.py), computed
        # from the events by the COMMIT of this same transaction (readmodel.settle).
        from pipectl.store import readmodel

        run_script(db.conn, readmodel.SCHEMA)
        readmodel.mark_all(db.conn)
        # The board's largest deals of a stage, currency by currency, read along an index
        # instead of sorting every deal of the stage (at 1M deals: 1.7 s -> a few ms).
        run_script(db.conn, "CREATE INDEX deals_board ON deals "
                            "(pipeline_id, stage, currency, value_minor DESC);")

    @migrations(name="0008_board_index_and_figures")
    def board_index_and_figures(db) -> None:
        # The board's totals per stage and currency read the open deals along deals_board,
        # and each one's row for its probability: at 1M deals (271k open), 0.8 s of random
        # reads. With the probability (and the id, the largest deals' tie-break) in the
        # index, they read the index alone.
        run_script(db.conn, "DROP INDEX IF EXISTS deals_board;")
        run_script(db.conn, BOARD_INDEX)
        # The report's figures over every deal's state now, kept at write time
        # (store/figures.py); the states open now in each stage, for their ages.
        from pipectl.store import figures

        run_script(db.conn, figures.SCHEMA)
        figures.rebuild(db.conn)

    @migrations(name="0009_event_actor")
    def event_actor(db) -> None:
        # Who recorded each event (issue 14): the login name or PIPECTL_USER here, the
        # database role on a server. Events recorded before are NULL: not known.
        run_script(db.conn, "ALTER TABLE events ADD COLUMN actor TEXT;")

    @migrations(name="0010_deal_outcomes")
    def deal_outcomes(db) -> None:
        # What each decided deal teaches the forecast (store/outcomes.py), computed with the
        # other read models from the events by the COMMIT of this same transaction.
        from pipectl.store import outcomes, readmodel

        run_script(db.conn, outcomes.SCHEMA)
        readmodel.mark_all(db.conn)

    @migrations(name="0011_undo")
    def undo(db) -> None:
        # Undo (issue 16): the table undos, events.voided_by, the report indexes partial.
        run_script(db.conn, SCHEMA_V11)

    @migrations(name="0012_search_folding")
    def search_folding(db) -> None:
        # Search as a person types (issue 16): every deal's search text anew, its fields and
        # its notes folded without accents and case (values.fold), in one UPDATE; the
        # indexes that find an open deal of the same name (add) and the lost reasons there
        # are (lose, completion) without reading every deal.
        from pipectl.store import deals

        deals.recompute_search(db.conn)
        run_script(db.conn, SCHEMA_V12)

    return migrations


# The board's index (migration 0008): each open stage's deals by currency, largest first.
BOARD_INDEX = ("CREATE INDEX deals_board ON deals "
               "(pipeline_id, stage, currency, value_minor DESC, id, probability);")


_IN_LIST = re.compile(r"\b(\w+) IN \(('[^'()]*'(?:, '[^'()]*')*)\)")


def or_checks(sql: str) -> str:
    """``x IN ('a', 'b')`` -> ``(x = 'a' OR x = 'b')`` in a table's SQL.

    The two accept exactly the same values (NULL included: both are NULL, which a CHECK lets
    pass). But SQLite builds an ephemeral index for a constant IN list at every execution of
    an INSERT, ~2.7 us per list per row: the five lists of schema 1 cost ~13 us of a ~17 us
    event-plus-deal insert, most of a bulk import. Integer lists (``IN (0, 1)``) stay.
    """

    def ors(m: re.Match[str]) -> str:
        column, values = m.group(1), m.group(2).split(", ")
        return "(" + " OR ".join(f"{column} = {v}" for v in values) + ")"

    return _IN_LIST.sub(ors, sql)


def rewrite_table_sql(conn: sqlite3.Connection, edits: dict[str, Callable[[str], str]]) -> bool:
    """Change tables' constraints in place, as SQLite documents for changes that leave every
    stored row valid (lang_altertable.html, "other kinds of table schema changes"): edit the
    CREATE TABLE text in sqlite_schema and bump the schema version, inside the caller's
    transaction. Only for rewrites into EQUIVALENT constraints. Returns False, changing
    nothing, where the SQLite library forbids writing the schema (defensive mode): the old
    text is just as correct, only slower.
    """
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    try:
        changed = False
        for name, edit in edits.items():
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            new = edit(sql)
            if new != sql:
                conn.execute(
                    "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
                    (new, name),
                )
                changed = True
        if changed:
            conn.execute(f"PRAGMA schema_version = {version + 1}")
        return changed
    except sqlite3.DatabaseError:
        if conn.execute("PRAGMA schema_version").fetchone()[0] != version:
            raise
        return False
    finally:
        conn.execute("PRAGMA writable_schema = OFF")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute a script statement by statement, inside the caller's transaction.

    (``executescript`` would COMMIT first and break the migration's atomicity.)
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending[:60]!r}")


# Number of migrations above; a test checks it matches.
VERSION = 12

# The migrations that rebuild tables (foreign keys off while they run): after them, and only
# after them, an upgrade checks every reference before it commits.
REBUILDS = frozenset({"0001_initial", "0003_checks_without_in_lists", "0004_pipelines"})

# The oldest schema the commands that only read can use as it is, on a file pipectl may not
# write (which cannot be upgraded): 0005 only added the imports table, which no read touches;
# 0006 only added the rates table, which a read of a file without it finds empty
# (``store.rates``: no rates, nothing converted); 0007 only added the read models, which a
# report on a file without them does without (it replays the events: ``readmodel.usable``);
# 0008 only widened an index and added the report's figures, which a report on a file
# without them does without (it reads the states or replays the events); 0009 only added
# events.actor, which a read of a file without it shows as not known; 0010 only added the
# forecast's read model, which a forecast on a file without it does without (it reads the
# events). 0011 added events.voided_by, which every report reads (voided events are ignored):
# a file before it must be upgraded, by someone who may write it, before it can be read.
# 0012 recomputed the search texts (folded without accents), which list --search compares
# with the text searched for folded the same way: read as it was, an older file's would
# miss "nguyen" in "Nguyễn".
READABLE_FROM = 12
# The oldest schema that holds every table ``db copy`` moves (0011 added undos).
READ_MODELS_FROM = 11
