"""Issue 13: the plain-SQL import baseline, and pipectl's import measured against it.

The baseline imports a CSV in pipectl's own form (``benchmarks/generate.py --csv``, or
``pipectl export -o``) into a fresh pipectl database (made by ``pipectl --db NEW stages``:
every table, constraint, trigger and index is pipectl's), in the ``sqlite3`` shell alone, in
one transaction, with the PRAGMAs of pipectl's writes (WAL, synchronous=FULL,
foreign_keys=ON): ``.import --csv`` into a TEMP table, then ``INSERT ... SELECT`` into
``deals`` and ``events`` writing the rows pipectl's import writes for that file (what each
stage cell means is read, in SQL, from the default pipeline's stored definition; no Python
runs per row). A deals row per CSV row, then its events one kind at a time, as the bulk road
of ``store/bulk.py`` writes them. The ``read_dirty_event`` trigger marks every deal for the
read models; ``--read-models`` also writes ``deal_states`` and ``deal_stays`` in SQL (the
rows ``domain.states`` makes of these events) and clears the marks, as pipectl's commit does.
The plain baseline writes through every index; ``--indexes-after`` drops the secondary
indexes of the tables written first and makes them again, from their own SQL, before the
COMMIT (what pipectl's import into an empty database does). Every variant ends with
pipectl's schema exactly (``verify`` compares ``sqlite_master`` too).

From the repository root, with the project's venv active::

    python benchmarks/import_sql.py sql FILE.csv                  # print the baseline's SQL
    python benchmarks/import_sql.py run FILE.csv NEW.db [--read-models]
    python benchmarks/import_sql.py export SOURCE.db OUT.csv      # pipectl export of a copy
    python benchmarks/import_sql.py verify FILE.csv [FILE.csv ...] --work DIR
    python benchmarks/import_sql.py bench FILE.csv [FILE.csv ...] --runs 3 --work DIR
    python benchmarks/import_sql.py rowwise --db 100k.db --rows 10000 --runs 3 --work DIR

``verify`` imports each file both ways and compares every table they write with SQL EXCEPT,
both ways (event ids replaced by each event's place among its deal's events), then shows that
the check catches a deliberate difference in each table. ``bench`` times the baseline, the
baseline with read models, ``pipectl import`` and a bare ``sqlite3 .import``, interleaved,
each into a fresh file, and prints Markdown tables of medians (peak RSS from ``os.wait4``).
``rowwise`` times the row-by-row road: 10k rows that each update a deal of a copy of a
100k-deal database, minus the same command's start-up (a header-only file), with a cProfile
summary. Every pipectl run has ``PIPECTL_NOW`` set (default 2026-12-01T09:00:00Z).
``--pipectl-src DIR`` runs pipectl from a snapshot (``git archive HEAD src | tar -x -C
SNAP``; DIR = SNAP/src) instead of the editable install, whose tree may change mid-series.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
SQLITE3 = "/usr/bin/sqlite3" if Path("/usr/bin/sqlite3").exists() else "sqlite3"
NOW = os.environ.get("PIPECTL_NOW", "2026-12-01T09:00:00Z")
STILL = "9999-12-31T23:59:59Z"  # domain.states.STILL: until_at of a deal's state now

# The fields the baseline reads: a column named like one (pipectl's own form); the others
# (an export's id, pipeline, qualified_at, checklist, next_action, next_due) are not
# imported, by pipectl either.
TEXTS = ("ref", "name", "company", "contact", "email", "phone", "owner", "source",
         "prequalified", "lost_reason", "note")
OTHERS = ("stage", "lost_at_stage", "value", "currency", "probability", "close_date",
          "created_at", "closed_at", "updated_at")
COLUMN_NAMES = {"prequalified_reason": "prequalified"}  # column -> field, where they differ
NOT_SUPPORTED = ("status", "won", "closed")  # other combinations of stage cells


def fields_of(header: list[str]) -> dict[str, str]:
    """field -> the CSV column (its name) that feeds it; the first column of a name counts."""
    out: dict[str, str] = {}
    for name in header:
        fld = COLUMN_NAMES.get(name, name)
        if fld in NOT_SUPPORTED:
            raise SystemExit(f"column {name!r}: the baseline reads stage and lost_at_stage only")
        if fld in (*TEXTS, *OTHERS):
            out.setdefault(fld, name)
    if not ({"name", "company", "ref"} & out.keys()):
        raise SystemExit("no column gives the deals a name, company or ref")
    return out


def read_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        head = fh.readline()
    if head.startswith("\ufeff"):
        raise SystemExit(f"{path}: a byte-order mark; the baseline reads plain UTF-8")
    return next(csv.reader([head]))


def folded_chars(path: Path) -> dict[str, str]:
    """The characters of the file that ``values.fold`` (NFC, casefold) changes and SQLite's
    ``lower`` (ASCII only) does not: each becomes one ``replace`` of the search text's SQL.
    Read from the file when the SQL is written, not per row."""
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        while chunk := fh.read(1 << 22):
            seen.update(chunk)
    return {c: c.casefold() for c in sorted(seen) if ord(c) > 127 and c.casefold() != c}


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def restored(x: str) -> str:
    """SQL of ``transfer.parsing.restore``: an export's apostrophe before a cell a spreadsheet
    would run (= + - @ TAB CR after any apostrophes) taken off."""
    return (f"CASE WHEN {x} GLOB '''*' AND substr(ltrim({x}, ''''), 1, 1) IN "
            f"('=', '+', '-', '@', char(9), char(13)) THEN substr({x}, 2) ELSE {x} END")


def exponents_sql() -> str:
    """The currencies whose minor unit is not 1/100 (``values._EXPONENTS``), as VALUES."""
    from pipectl.values import _EXPONENTS

    return ", ".join(f"({lit(c)}, {e})" for c, e in sorted(_EXPONENTS.items()))


def baseline_sql(path: Path, read_models: bool = False, now: str = NOW,
                 currency: str = "USD", indexes_after: Path | None = None) -> str:
    """The sqlite3 shell script of the baseline import of ``path`` (run in the target
    database). ``indexes_after``: a scratch folder; the secondary indexes of the tables
    written are dropped first and made again before the COMMIT, from their own SQL (as
    pipectl's import into an empty database does), by the shell itself (``.output`` then
    ``.read``)."""
    header = read_header(path)
    fields = fields_of(header)
    folds = folded_chars(path)

    def cell(fld: str) -> str:
        if fld not in fields:
            return "''"
        col = 'r."' + fields[fld].replace('"', '""') + '"'
        return restored(col) if fld in TEXTS else col

    c = {f: cell(f) for f in (*TEXTS, *OTHERS)}
    searched = [c[f] for f in ("company", "contact", "email", "owner", "source", "ref")]
    first = f"coalesce(nullif({c['name']}, ''), nullif({c['company']}, ''), {c['ref']})"
    words = first + "".join(f" || coalesce(' ' || nullif({x}, ''), '')" for x in searched)
    search = f"lower({words})"
    for ch, folded in folds.items():
        search = f"replace({search}, {lit(ch)}, {lit(folded)})"
    x_val = c["value"]
    decimals = (f"(CASE instr({x_val}, '.') WHEN 0 THEN 0 "
                f"ELSE length({x_val}) - instr({x_val}, '.') END)")
    value = (f"CASE {x_val} WHEN '' THEN NULL ELSE CAST(replace({x_val}, '.', '') AS INTEGER) * "
             f"(CASE k.exp - {decimals} WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 "
             "WHEN 3 THEN 1000 WHEN 4 THEN 10000 END) END")
    closed_at = (f"coalesce(nullif({c['closed_at']}, ''), CASE WHEN {c['close_date']} <> '' "
                 f"THEN {c['close_date']} || 'T00:00:00Z' END)")
    now_sql = lit(now)
    # a closed deal closes at its close time, else at the last time the file knows (its
    # update, else its creation), and is created no later than it closes
    x = "coalesce(closed_at, max(created, coalesce(updated, created)))"
    at0 = f"CASE WHEN closed THEN min(created, {x}) ELSE created END"
    unknown = """nullif(rtrim(
        CASE WHEN no_created OR (closed AND closed_at < created) THEN 'created_at ' ELSE '' END
        || CASE WHEN closed AND closed_at IS NULL THEN 'closed_at ' ELSE '' END
        || CASE WHEN unknown_q THEN 'qualified_at' ELSE '' END), '')"""
    won_key = "(SELECT key FROM temp.stages WHERE kind = 'won' ORDER BY ord LIMIT 1)"
    script = f"""\
.bail on
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
BEGIN IMMEDIATE;
.import --csv --schema temp {path} raw

-- The default pipeline's stages (its latest stored definition): kind, order on the line,
-- beyond the gate (domain.pipeline.is_qualified_stage); 'lost' is every pipeline's.
CREATE TEMP TABLE stages (pid INTEGER, key TEXT PRIMARY KEY, kind TEXT, ord INTEGER,
                          qualified INTEGER);
INSERT INTO temp.stages
WITH d AS (SELECT v.pipeline_id AS pid, v.definition AS def
           FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id
           WHERE p.is_default = 1 ORDER BY v.version DESC LIMIT 1),
s AS (SELECT d.pid, j.value ->> 'key' AS key, j.value ->> 'kind' AS kind, j.key + 1 AS ord,
             j.value ->> 'gate' AS gate
      FROM d, json_each(d.def, '$.stages') j)
SELECT pid, key, kind, ord,
       ord >= coalesce((SELECT min(ord) FROM s WHERE gate) + 1, 1) FROM s
UNION ALL SELECT pid, 'lost', 'lost', 0, 0 FROM d;

-- What each (stage, lost_at_stage) pair of cells means (transfer.rows.stage_facts, and the
-- opening stage of transfer.history): a key of the pipeline, or lost (from an open stage,
-- else the first); a won deal was in the last open stage. Pairs that are none of these
-- convert no row (the row count check below then fails).
CREATE TEMP TABLE combo (sc TEXT, lc TEXT, final TEXT, opening TEXT, auto_reason TEXT,
    lost_reason TEXT, closed INTEGER, won INTEGER, after_won INTEGER, qualified INTEGER,
    unknown_q INTEGER, PRIMARY KEY (sc, lc));
INSERT INTO temp.combo
WITH cells AS (SELECT DISTINCT {c['stage']} AS sc, {c['lost_at_stage']} AS lc FROM temp.raw r),
f AS (SELECT sc, lc,
             CASE WHEN sc = '' THEN (SELECT key FROM temp.stages WHERE kind <> 'lost'
                                     ORDER BY ord LIMIT 1) ELSE sc END AS final,
             CASE WHEN sc = 'lost' THEN nullif(lc, '') END AS before
      FROM cells
      WHERE lc = '' OR lc IN (SELECT key FROM temp.stages WHERE kind = 'open')),
g AS (SELECT f.*, fs.kind AS fkind,
             CASE WHEN final = 'lost' THEN coalesce(before, (SELECT key FROM temp.stages
                                                    WHERE kind = 'open' ORDER BY ord LIMIT 1))
                  WHEN fs.kind <> 'open' THEN (SELECT key FROM temp.stages WHERE kind = 'open'
                                               ORDER BY ord DESC LIMIT 1)
                  ELSE final END AS opening
      FROM f JOIN temp.stages fs ON fs.key = f.final)
SELECT sc, lc, final, opening,
       CASE WHEN o.qualified THEN 'imported (file stage: ' || coalesce(nullif(sc, ''), opening)
                                  || ')' END,
       'no reason recorded', fkind <> 'open', fkind IN ('won', 'after_won'),
       fkind IN ('won', 'after_won') AND final <> {won_key}, o.qualified,
       final = 'lost' AND before IS NULL AND NOT o.qualified
FROM g JOIN temp.stages o ON o.key = g.opening;

-- Each currency cell: its code (empty: {currency}) and its minor unit.
CREATE TEMP TABLE cur (cell TEXT PRIMARY KEY, code TEXT, exp INTEGER);
INSERT INTO temp.cur
WITH e (code, exp) AS (VALUES {exponents_sql()}),
cells AS (SELECT DISTINCT {c['currency']} AS cell FROM temp.raw r),
coded AS (SELECT cell, CASE WHEN trim(cell) = '' THEN {lit(currency)} ELSE upper(trim(cell))
                       END AS code FROM cells)
SELECT cell, code, coalesce((SELECT exp FROM e WHERE e.code = coded.code), 2) FROM coded
WHERE code GLOB '[A-Z][A-Z][A-Z]';

-- Every row's deal, as pipectl stores it, numbered in file order after the deals there.
CREATE TEMP TABLE t (n INTEGER PRIMARY KEY, id INTEGER NOT NULL, ref TEXT, name TEXT,
    company TEXT, contact TEXT, email TEXT, phone TEXT, owner TEXT, source TEXT, note TEXT,
    reason TEXT, lost_reason TEXT, final TEXT, opening TEXT, closed INTEGER, won INTEGER,
    after_won INTEGER, qualified INTEGER, value_minor INTEGER, currency TEXT,
    probability INTEGER, close_date TEXT, created TEXT, closed_at TEXT, no_created INTEGER,
    search TEXT, unknown_q INTEGER, updated TEXT);
INSERT INTO temp.t
SELECT r.rowid, r.rowid + (SELECT coalesce(max(id), 0) FROM main.deals),
    nullif({c['ref']}, ''), {first},
    nullif({c['company']}, ''), nullif({c['contact']}, ''), nullif({c['email']}, ''),
    nullif({c['phone']}, ''), nullif({c['owner']}, ''), nullif({c['source']}, ''),
    nullif({c['note']}, ''),
    coalesce(nullif({c['prequalified']}, ''), m.auto_reason),
    CASE WHEN m.final = 'lost' THEN coalesce(nullif({c['lost_reason']}, ''), m.lost_reason) END,
    m.final, m.opening, m.closed, m.won, m.after_won, m.qualified, {value}, k.code,
    CAST(nullif({c['probability']}, '') AS INTEGER), nullif({c['close_date']}, ''),
    coalesce(nullif({c['created_at']}, ''), CASE WHEN m.closed THEN {closed_at} END,
             nullif({c['updated_at']}, ''), {now_sql}),
    CASE WHEN m.closed THEN {closed_at} END,
    {c['created_at']} = '', {search},
    m.unknown_q AND nullif({c['prequalified']}, '') IS NULL AND m.auto_reason IS NULL,
    nullif({c['updated_at']}, '')
FROM temp.raw r
JOIN temp.combo m ON m.sc = {c['stage']} AND m.lc = {c['lost_at_stage']}
JOIN temp.cur k ON k.cell = {c['currency']}
ORDER BY r.rowid;

-- Every row converted, or nothing is written (a CHECK that fails ends the script: .bail).
CREATE TEMP TABLE all_rows (ok INTEGER CHECK (ok));
INSERT INTO temp.all_rows SELECT (SELECT count(*) FROM temp.raw) = (SELECT count(*) FROM temp.t);
{drop_indexes(indexes_after, ("deals", "events"), path.stem)}
INSERT INTO deals (id, ref, name, company, contact, email, phone, owner, source, pipeline_id,
    stage, lost_at_stage, lost_reason, value_minor, currency, probability, close_date,
    qualified_at, prequalified_reason, created_at, updated_at, closed_at, search)
SELECT id, ref, name, company, contact, email, phone, owner, source,
    (SELECT pid FROM temp.stages LIMIT 1), final,
    CASE WHEN final = 'lost' THEN opening END, lost_reason, value_minor, currency, probability,
    close_date,
    CASE WHEN reason IS NOT NULL OR qualified THEN {at0} WHEN won THEN {x} END,
    reason, {at0}, CASE WHEN closed THEN {x} ELSE created END, CASE WHEN closed THEN {x} END,
    search
FROM temp.t ORDER BY n;

-- The events, one kind at a time, in the order a deal's events happen.
INSERT INTO events (deal_id, at, kind, pipeline_id, to_stage, value_minor, currency,
    close_date, probability, reason, field, new)
SELECT id, {at0}, 'created', (SELECT pid FROM temp.stages LIMIT 1), opening, value_minor,
    currency, close_date, probability, reason,
    CASE WHEN {unknown} IS NOT NULL THEN 'unknown' END, {unknown}
FROM temp.t ORDER BY n;
INSERT INTO events (deal_id, at, kind, text)
SELECT id, {at0}, 'note', note FROM temp.t WHERE note IS NOT NULL ORDER BY n;
INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage)
SELECT id, {x}, 'stage', (SELECT pid FROM temp.stages LIMIT 1), opening, {won_key}
FROM temp.t WHERE won ORDER BY n;
INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage)
SELECT id, {x}, 'stage', (SELECT pid FROM temp.stages LIMIT 1), {won_key}, final
FROM temp.t WHERE after_won ORDER BY n;
INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage, reason)
SELECT id, {x}, 'lost', (SELECT pid FROM temp.stages LIMIT 1), opening, 'lost', lost_reason
FROM temp.t WHERE final = 'lost' ORDER BY n;
"""
    script += create_indexes(indexes_after, ("deals", "events"), path.stem)
    if read_models:
        script += drop_indexes(indexes_after, ("deal_states", "deal_stays"), path.stem)
        script += read_models_sql(x, at0, unknown, won_key)
        script += create_indexes(indexes_after, ("deal_states", "deal_stays"), path.stem)
    script += """
DROP TABLE temp.raw;
COMMIT;
"""
    return script


def drop_indexes(scratch: Path | None, tables: tuple[str, ...], stem: str) -> str:
    """Shell lines that save the CREATE INDEX of every secondary index of ``tables`` (those
    with SQL: not the ones behind a UNIQUE or PRIMARY KEY) and drop them; '' without a
    scratch folder. ``create_indexes`` makes them again."""
    if scratch is None:
        return ""
    names = ", ".join(lit(t) for t in tables)
    which = (f"FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
             f"AND tbl_name IN ({names}) ORDER BY name")
    scripts = scratch / f"{stem}_{tables[0]}"
    return f"""
-- The secondary indexes of {', '.join(tables)}, dropped now, made again once they are written
.output {scripts}_create_indexes.sql
SELECT sql || ';' {which};
.output {scripts}_drop_indexes.sql
SELECT 'DROP INDEX "' || name || '";' {which};
.output stdout
.read {scripts}_drop_indexes.sql
"""


def create_indexes(scratch: Path | None, tables: tuple[str, ...], stem: str) -> str:
    if scratch is None:
        return ""
    return f".read {scratch / f'{stem}_{tables[0]}'}_create_indexes.sql\n"


def read_models_sql(x: str, at0: str, unknown: str, won_key: str) -> str:
    """The read models of the imported deals in SQL: what ``domain.states`` makes of the
    events above (a created event, then for a closed deal its close: a stage event to won
    (and one more to an after-won stage), or a lost event, at the close time), and the marks
    the trigger made cleared, as ``readmodel.settle`` leaves them."""
    pid = "(SELECT pid FROM temp.stages LIMIT 1)"
    won_q = f"(SELECT qualified FROM temp.stages WHERE key = {won_key})"
    return f"""
-- Each imported deal's moves: its created event, its last move, its move to won.
CREATE TEMP TABLE mv (deal_id INTEGER PRIMARY KEY, first_id INTEGER, last_id INTEGER,
                      won_id INTEGER);
INSERT INTO temp.mv
SELECT deal_id, min(id), max(id), max(CASE WHEN to_stage = {won_key} THEN id END)
FROM events INDEXED BY events_moves
WHERE to_stage IS NOT NULL AND deal_id BETWEEN (SELECT min(id) FROM temp.t)
                                           AND (SELECT max(id) FROM temp.t)
GROUP BY deal_id;

INSERT INTO deal_states (deal_id, since_id, since_at, until_at, created_at, unknown,
    pipeline_id, stage, entered_at, lost_stage, lost_reason, lost_at, won_at, qualified_at,
    reached, value_minor, currency, close_date, probability, last_at, next_id)
SELECT * FROM (
    -- the state its created event began: the state now of an open deal; until the close
    -- of a closed one (none when it closed at the same moment)
    SELECT t.id, mv.first_id, {at0}, CASE WHEN closed THEN {x} ELSE '{STILL}' END, {at0},
        {unknown}, {pid}, opening, {at0}, NULL, NULL, NULL, NULL,
        CASE WHEN reason IS NOT NULL OR t.qualified THEN {at0} END, o.ord, value_minor,
        currency, close_date, probability, CASE WHEN NOT closed THEN {at0} END, NULL
    FROM temp.t JOIN temp.mv ON mv.deal_id = t.id JOIN temp.stages o ON o.key = t.opening
    WHERE NOT closed OR {x} > {at0}
    UNION ALL
    -- a closed deal's state now, from its last move
    SELECT t.id, mv.last_id, {x}, '{STILL}', {at0}, {unknown}, {pid}, final, {x},
        CASE WHEN final = 'lost' THEN opening END, CASE WHEN final = 'lost' THEN lost_reason END,
        CASE WHEN final = 'lost' THEN {x} END, CASE WHEN won THEN {x} END,
        CASE WHEN reason IS NOT NULL OR t.qualified THEN {at0} WHEN won AND {won_q} THEN {x} END,
        max(o.ord, f.ord), value_minor, currency, close_date, probability, {x}, NULL
    FROM temp.t JOIN temp.mv ON mv.deal_id = t.id JOIN temp.stages o ON o.key = t.opening
    JOIN temp.stages f ON f.key = t.final
    WHERE closed
) ORDER BY 4, 1, 2;

INSERT INTO deal_stays (deal_id, entered_id, pipeline_id, stage, entered_at, left_at, seconds)
SELECT * FROM (
    SELECT t.id, mv.first_id, {pid}, opening, {at0}, {x},
           (julianday({x}) - julianday({at0})) * 86400
    FROM temp.t JOIN temp.mv ON mv.deal_id = t.id WHERE closed
    UNION ALL
    SELECT t.id, mv.won_id, {pid}, {won_key}, {x}, {x}, (julianday({x}) - julianday({x})) * 86400
    FROM temp.t JOIN temp.mv ON mv.deal_id = t.id WHERE after_won
) ORDER BY 1, 2;

DELETE FROM read_dirty WHERE deal_id IN (SELECT id FROM temp.t);
"""


# ---------------------------------------------------------------- running things


PIPECTL_SRC: list[Path] = []  # --pipectl-src: the pipectl every command runs, else the venv's


def env() -> dict[str, str]:
    out = {**os.environ, "PIPECTL_NOW": NOW}
    if PIPECTL_SRC:  # before the venv's editable install on sys.path
        out["PYTHONPATH"] = os.pathsep.join([str(PIPECTL_SRC[0]), *filter(None, [
            os.environ.get("PYTHONPATH")])])
    return out


def make_template(path: Path) -> int:
    """A new, empty pipectl database at ``path``, made by ``pipectl --db PATH stages`` (the
    code as it is now: pipectl's schema, every migration applied); returns its schema
    version. Each benchmark copies it for each run."""
    remove_db(path)
    timed([PIPECTL, "--db", str(path), "stages"])
    return user_version(path)


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def fresh_db(path: Path, template: Path) -> Path:
    """A copy of ``template`` at ``path``: a fresh database for one run."""
    remove_db(path)
    shutil.copyfile(template, path)
    return path


def same_schema(db: Path, version: int) -> None:
    """Stop when pipectl upgraded ``db`` during a run (its code changed under the
    benchmark): that run timed a migration, and the two imports had different schemas."""
    found = user_version(db)
    if found != version:
        raise SystemExit(f"{db}: schema {found} after the run, {version} before: pipectl's "
                         "code changed during the series; run it again")


def remove_db(path: Path) -> None:
    for side in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    remove_backups(path)


def remove_backups(path: Path) -> None:
    """The copies an upgrade of ``path`` made of it first (NAME.schemaN.bak)."""
    for backup in path.parent.glob(f"{path.name}.schema*.bak*"):
        backup.unlink()


# Runs one command and writes "wall maxrss_kb" to argv[1]: a small process (python -S, ~5 MB)
# forks it, so that its ru_maxrss (os.wait4) is its own. A child forked straight from this
# script would report at least this script's RSS: Linux keeps the high-water mark of the
# memory a process had before exec.
LAUNCHER = """\
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as fh:
    fh.write(f"{wall} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], stdin: Path | None = None, out: Path | None = None
          ) -> tuple[float, float, str]:
    """Run ``cmd``; (wall seconds, peak RSS in MB of that process alone, its stdout+stderr).
    Exits on failure."""
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as res:
        fin = stdin.open("rb") if stdin is not None else subprocess.DEVNULL
        try:
            proc = subprocess.run([sys.executable, "-S", "-E", "-c", LAUNCHER, res.name, *cmd],
                                  stdin=fin, stdout=log, stderr=subprocess.STDOUT, env=env())
        finally:
            if stdin is not None:
                fin.close()
        log.seek(0)
        text = log.read().decode(errors="replace")
        wall, rss_kb = res.read().split()
    if out is not None:
        out.write_text(text)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{text[-3000:]}")
    return float(wall), int(rss_kb) / 1024, text


def run_baseline(csv_path: Path, db: Path, script: Path) -> tuple[float, float, str]:
    return timed([SQLITE3, str(db)], stdin=script)


def run_pipectl_import(csv_path: Path, db: Path) -> tuple[float, float, str]:
    return timed([PIPECTL, "--db", str(db), "import", str(csv_path)])


def run_bare(csv_path: Path, db: Path, work: Path) -> tuple[float, float, str]:
    script = work / "bare.sql"
    script.write_text(f".import --csv {csv_path} deals\n")
    remove_db(db)
    return timed([SQLITE3, str(db)], stdin=script)


VARIANTS = {  # name -> (read models, indexes built after)
    "baseline": (False, False),
    "baseline + read models": (True, False),
    "baseline (indexes after)": (False, True),
    "baseline + read models (indexes after)": (True, True),
}


def write_script(csv_path: Path, work: Path, variant: str) -> Path:
    read_models, after = VARIANTS[variant]
    name = f"{csv_path.stem}{'_rm' if read_models else ''}{'_ia' if after else ''}"
    scratch = work / f"{name}_scratch" if after else None
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    script = work / f"{name}.sql"
    script.write_text(baseline_sql(csv_path.resolve(), read_models, indexes_after=scratch))
    return script


def source_state() -> str:
    """The commit of the tree pipectl runs from, and whether src/ differs from it (another
    engineer may be changing it: the editable install runs what is there)."""
    if PIPECTL_SRC:
        return f"{PIPECTL_SRC[0]} (--pipectl-src)"
    root = HERE.parent
    head = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--short", "--", "src"],
                           capture_output=True, text=True).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head}" + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------------------------------------------------------------- equality


def _seq(schema: str) -> str:
    """SQL: each event's id -> its place among its deal's events (1, 2, ...)."""
    return (f"SELECT id, row_number() OVER (PARTITION BY deal_id ORDER BY id) AS seq "
            f"FROM {schema}.events")


def comparisons(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """table -> the SELECT of its rows as compared, in schema p (pipectl's import) and b (the
    baseline)."""
    deal_cols = [r[1] for r in conn.execute("PRAGMA p.table_info(deals)")]
    event_cols = [r[1] for r in conn.execute("PRAGMA p.table_info(events)") if r[1] != "id"]
    state_cols = [r[1] for r in conn.execute("PRAGMA p.table_info(deal_states)")]
    stay_cols = [r[1] for r in conn.execute("PRAGMA p.table_info(deal_stays)")]

    def states(s: str) -> str:
        cols = ", ".join(
            {"since_id": "a.seq AS since_seq", "next_id": "n.seq AS next_seq"}.get(c, f"x.{c}")
            for c in state_cols)
        return (f"SELECT {cols} FROM {s}.deal_states x JOIN temp.{s}_seq a ON a.id = x.since_id "
                f"LEFT JOIN temp.{s}_seq n ON n.id = x.next_id")

    def stays(s: str) -> str:
        cols = ", ".join("a.seq AS entered_seq" if c == "entered_id" else f"x.{c}"
                         for c in stay_cols)
        return f"SELECT {cols} FROM {s}.deal_stays x JOIN temp.{s}_seq a ON a.id = x.entered_id"

    return {
        "deals": (f"SELECT {', '.join(deal_cols)} FROM p.deals",
                  f"SELECT {', '.join(deal_cols)} FROM b.deals"),
        "events": tuple(
            f"SELECT e.{', e.'.join(event_cols)}, q.seq FROM {s}.events e "
            f"JOIN temp.{s}_seq q ON q.id = e.id" for s in ("p", "b")),  # type: ignore[misc]
        "deal_states": (states("p"), states("b")),
        "deal_stays": (stays("p"), stays("b")),
    }


def compare(pipectl_db: Path, baseline_db: Path, read_models: bool) -> dict[str, tuple]:
    """table -> (rows in p, rows in b, rows only in p, rows only in b)."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f"ATTACH {lit(str(pipectl_db))} AS p")
    conn.execute(f"ATTACH {lit(str(baseline_db))} AS b")
    for s in ("p", "b"):
        conn.execute(f"CREATE TEMP TABLE {s}_seq (id INTEGER PRIMARY KEY, seq INTEGER)")
        conn.execute(f"INSERT INTO temp.{s}_seq {_seq(s)}")
    out = {}
    for table, (p, b) in comparisons(conn).items():
        if table.startswith("deal_s") and not read_models:
            continue
        n_p = conn.execute(f"SELECT count(*) FROM ({p})").fetchone()[0]
        n_b = conn.execute(f"SELECT count(*) FROM ({b})").fetchone()[0]
        only_p = conn.execute(f"SELECT count(*) FROM ({p} EXCEPT {b})").fetchone()[0]
        only_b = conn.execute(f"SELECT count(*) FROM ({b} EXCEPT {p})").fetchone()[0]
        out[table] = (n_p, n_b, only_p, only_b)
    same_ids = conn.execute(
        "SELECT count(*) FROM p.events x JOIN b.events y ON x.id = y.id "
        "WHERE x.deal_id = y.deal_id AND x.kind = y.kind AND x.at = y.at").fetchone()[0]
    out["events with the same id"] = (same_ids,)
    for table in ("read_dirty", "imports"):
        out[table] = tuple(conn.execute(f"SELECT count(*) FROM {s}.{table}").fetchone()[0]
                           for s in ("p", "b"))
    # the schema: every table, index and trigger, with its SQL (an index made again after
    # the load included)
    schema = "SELECT type, name, tbl_name, sql FROM {}.sqlite_master"
    p_s, b_s = schema.format("p"), schema.format("b")
    out["sqlite_master"] = tuple(
        conn.execute(f"SELECT count(*) FROM ({q})").fetchone()[0]
        for q in (p_s, b_s, f"{p_s} EXCEPT {b_s}", f"{b_s} EXCEPT {p_s}"))
    conn.close()
    return out


def tamper(db: Path) -> list[str]:
    """Deliberate differences, one per table compared; returns what was changed."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")  # this copy only: events are append-only
    mid = conn.execute("SELECT max(id) / 2 FROM deals").fetchone()[0]
    done = ["trigger events_no_update dropped", f"deals {mid}: value_minor + 1"]
    conn.execute("UPDATE deals SET value_minor = value_minor + 1 WHERE id = ?", (mid,))
    (eid,) = conn.execute("SELECT min(id) FROM events WHERE kind = 'lost'").fetchone()
    conn.execute("UPDATE events SET reason = reason || '.' WHERE id = ?", (eid,))
    done.append(f"event {eid} (lost): reason + '.'")
    if conn.execute("SELECT 1 FROM deal_states LIMIT 1").fetchone():
        conn.execute("UPDATE deal_states SET reached = reached + 1 WHERE deal_id = ?", (mid,))
        conn.execute("UPDATE deal_stays SET left_at = '2000-01-01T00:00:00Z' "
                     "WHERE deal_id = (SELECT min(deal_id) FROM deal_stays)")
        done += [f"deal_states of deal {mid}: reached + 1", "deal_stays: one left_at changed"]
    conn.execute("DROP INDEX deals_close")
    conn.execute("CREATE INDEX deals_close ON deals (close_date, id)")
    done.append("index deals_close: one more column")
    conn.commit()
    conn.close()
    return done


def verify(files: list[Path], work: Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template.db"
    version = make_template(template)
    failed = 0
    for csv_path in files:
        p_db = fresh_db(work / f"{csv_path.stem}_pipectl.db", template)
        wall, _, out = run_pipectl_import(csv_path, p_db)
        same_schema(p_db, version)
        print(f"## {csv_path}\n\npipectl import: {wall:.2f} s: "
              + " ".join(line.strip() for line in out.splitlines()[:4]))
        for variant, (read_models, _) in VARIANTS.items():
            b_db = fresh_db(work / f"{csv_path.stem}_baseline.db", template)
            wall, _, _ = run_baseline(csv_path, b_db, write_script(csv_path, work, variant))
            result = compare(p_db, b_db, read_models)
            ok = all(r[2] == r[3] == 0 and r[0] == r[1] for t, r in result.items()
                     if len(r) == 4)
            failed += not ok
            print(f"\n{variant} ({wall:.2f} s): {'EQUAL' if ok else 'DIFFERENT'}\n")
            _print_comparison(result)
            if variant == "baseline + read models":
                copy = work / f"{csv_path.stem}_tampered.db"
                remove_db(copy)
                shutil.copyfile(b_db, copy)
                changes = tamper(copy)
                result = compare(p_db, copy, True)
                caught = all(r[2] > 0 and r[3] > 0 for r in result.values() if len(r) == 4)
                failed += not caught
                print(f"\nself-test, a copy of it changed ({'; '.join(changes)}): "
                      f"{'CAUGHT' if caught else 'NOT CAUGHT'}\n")
                _print_comparison(result)
                remove_db(copy)
            remove_db(b_db)
        remove_db(p_db)
        print()
    remove_db(template)
    return 1 if failed else 0


def _print_comparison(result: dict[str, tuple]) -> None:
    print("| table | rows pipectl | rows baseline | only in pipectl | only in baseline |")
    print("|---|---|---|---|---|")
    for table, r in result.items():
        if len(r) == 4:
            print(f"| {table} | {r[0]:,} | {r[1]:,} | {r[2]:,} | {r[3]:,} |")
    same = result["events with the same id"][0]
    print(f"\nevents with the same id (deal, kind, at) in both: {same:,}; "
          f"read_dirty marks left: pipectl {result['read_dirty'][0]:,}, baseline "
          f"{result['read_dirty'][1]:,}; imports rows: pipectl {result['imports'][0]}, "
          f"baseline {result['imports'][1]}")


# ---------------------------------------------------------------- timing


def bench(files: list[Path], runs: int, work: Path, variants: list[str]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template.db"
    rows: list[tuple[str, dict[str, list[tuple[float, float]]], int, str, str]] = []
    for csv_path in files:
        version = make_template(template)  # the code as it is at the start of each series
        state = source_state()
        n_rows = sum(1 for _ in csv_rows(csv_path))
        scripts = {v: write_script(csv_path, work, v) for v in ["baseline", *variants]}
        bare = "sqlite3 .import (bare table)"
        # each run: the baseline, pipectl, the other variants, the bare .import
        order = ["baseline", "pipectl import", *variants, bare]
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in order}
        before = loadavg()
        for i in range(runs):
            written = set()
            for name in order:
                db = work / "run.db"
                if name == bare:
                    wall, rss, _ = run_bare(csv_path, db, work)
                else:
                    fresh_db(db, template)
                    if name == "pipectl import":
                        wall, rss, _ = run_pipectl_import(csv_path, db)
                        same_schema(db, version)
                    else:
                        wall, rss, _ = run_baseline(csv_path, db, scripts[name])
                    written.add(counts(db))
                remove_db(db)
                results[name].append((wall, rss))
            if len(written) != 1:
                raise SystemExit(f"{csv_path}: (deals, events) written differ: {written}")
            print(f"{csv_path.name} run {i + 1}: " + ", ".join(
                f"{k} {v[-1][0]:.2f} s" for k, v in results.items()), file=sys.stderr)
        after = loadavg()
        if source_state() != state:
            print(f"note: pipectl's source changed during the series of {csv_path}: "
                  f"{state} -> {source_state()} (schema {version} throughout)", file=sys.stderr)
        rows.append((str(csv_path), results, n_rows, before, after + f"; schema {version}, "
                     f"pipectl at {state}"))
    remove_db(template)
    shell = subprocess.run([SQLITE3, "--version"], capture_output=True, text=True).stdout
    print(f"\n{runs} runs each, interleaved, each into a fresh file; medians; "
          f"PIPECTL_NOW={NOW}; SQLite {sqlite3.sqlite_version} (Python), "
          f"{shell.split()[0]} (shell)\n")
    for path, results, n_rows, before, after in rows:
        base = statistics.median(w for w, _ in results["baseline"])
        print(f"### {path}: {n_rows:,} rows, {Path(path).stat().st_size / 1e6:.0f} MB "
              f"(load average before {before}, after {after})\n")
        print("| command | wall (median) | runs | peak RSS | µs/row | pipectl / this |")
        print("|---|---|---|---|---|---|")
        pip = statistics.median(w for w, _ in results["pipectl import"])
        for name, res in results.items():
            wall = statistics.median(w for w, _ in res)
            rss = statistics.median(r for _, r in res)
            each = " / ".join(f"{w:.2f}" for w, _ in res)
            print(f"| {name} | {wall:.2f} s | {each} | {rss:.0f} MB | "
                  f"{wall / n_rows * 1e6:.1f} | {pip / wall:.2f}x |")
        print(f"\n**pipectl / baseline: {pip / base:.2f}x**\n")


def counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return tuple(conn.execute(  # type: ignore[return-value]
            "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM events)").fetchone())
    finally:
        conn.close()


def csv_rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        yield from reader


def copy_db(source: Path, copy: Path) -> None:
    """A copy of a database that nobody writes meanwhile (with its -wal, if it holds any)."""
    remove_db(copy)
    shutil.copyfile(source, copy)
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, f"{copy}-wal")


def export(source: Path, out: Path, work: Path) -> None:
    """``pipectl export -o OUT`` of a copy of ``source`` (never written to)."""
    work.mkdir(parents=True, exist_ok=True)
    copy = work / f"export_{source.stem}.db"
    copy_db(source, copy)
    # read-only: pipectl reads it as it is (an older schema is not upgraded, nor copied first)
    copy.chmod(0o400)
    try:
        wall, _, text = timed([PIPECTL, "--db", str(copy), "export", "-o", str(out)])
        print(f"{text.strip()} in {wall:.1f} s", file=sys.stderr)
    finally:
        remove_db(copy)


# ---------------------------------------------------------------- the row-by-row road


def rowwise_files(db: Path, rows: int, work: Path) -> dict[str, Path]:
    """Files of ``rows`` rows whose every row names, by its ref, a deal of ``db``: such a
    row updates that deal, and an update is always written row by row (importer._bulk: the
    SQL side converts only rows that make new deals). 'unchanged': the rows of pipectl's
    own export of that database (a re-import); 'changed': other generated deals (seed 7)
    under those refs, so most rows change a stage, value or date and add events. For
    contrast, the same rows under refs no deal has (new deals: the bulk road, even into a
    database that holds deals). And a header-only file: the same command's start-up."""
    exported = work / f"rowwise_export_{db.stem}.csv"
    if not exported.exists():
        export(db, exported, work)
    with exported.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        ref = header.index("ref")
        picked = []
        for row in reader:
            if row[ref]:
                picked.append(row)
                if len(picked) == rows:
                    break
    files = {}
    same = work / f"rowwise_unchanged_{rows}.csv"
    _write_csv(same, header, picked)
    files["re-import of its own export (unchanged rows)"] = same
    other = work / f"rowwise_gen_{rows}_seed7.csv"
    if not other.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--deals", str(rows),
                        "--seed", "7", "--csv", str(other)], check=True,
                       stdout=subprocess.DEVNULL, env=env())
    with other.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        gen_header = next(reader)
        gen = list(reader)
    gref = gen_header.index("ref")
    for row, old in zip(gen, picked, strict=True):
        row[gref] = old[ref]
    changed = work / f"rowwise_changed_{rows}.csv"
    _write_csv(changed, gen_header, gen)
    files["other deals' rows under its refs (changed rows)"] = changed
    for i, row in enumerate(gen, 1):  # refs no deal has: new deals, the SQL road
        row[gref] = f"NEW-{i:07d}"
    new = work / f"rowwise_new_{rows}.csv"
    _write_csv(new, gen_header, gen)
    files["the same rows as new deals (bulk road, for contrast)"] = new
    empty = work / "rowwise_header_only.csv"
    _write_csv(empty, gen_header, [])
    files["start-up"] = empty
    return files


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def rowwise(db: Path, rows: int, runs: int, work: Path, profile: bool) -> None:
    work.mkdir(parents=True, exist_ok=True)
    files = rowwise_files(db, rows, work)
    base = work / "rowwise_base.db"
    copy = work / "rowwise.db"
    copy_db(db, base)  # the source is never opened
    # brought to the current schema now, not in a timed run (an upgrade copies the file first)
    timed([PIPECTL, "--db", str(base), "stages"])
    remove_backups(base)
    version = user_version(base)
    state = source_state()
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in files}
    summaries: dict[str, str] = {}
    before = loadavg()
    for i in range(runs):
        for name, path in files.items():
            remove_db(copy)
            shutil.copyfile(base, copy)
            wall, rss, out = run_pipectl_import(path, copy)
            same_schema(copy, version)
            results[name].append((wall, rss))
            summaries[name] = " ".join(line.strip() for line in out.splitlines()[2:4])
        print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in results.items()),
              file=sys.stderr)
    after = loadavg()
    start = statistics.median(w for w, _ in results["start-up"])
    print(f"\n### the row-by-row road: {rows:,} rows into a copy of {db} (schema {version}; "
          f"load average before {before}, after {after}; pipectl at {state}, after "
          f"{source_state()}); {runs} runs, medians\n")
    print("| file | wall (median) | runs | peak RSS | µs/row (wall - start-up) / rows | "
          "pipectl's summary |")
    print("|---|---|---|---|---|---|")
    for name, res in results.items():
        wall = statistics.median(w for w, _ in res)
        rss = statistics.median(r for _, r in res)
        each = " / ".join(f"{w:.2f}" for w, _ in res)
        per = "-" if name == "start-up" else f"{(wall - start) / rows * 1e6:.1f}"
        print(f"| {name} | {wall:.2f} s | {each} | {rss:.0f} MB | {per} | {summaries[name]} |")
    if profile:
        for name, path in files.items():
            if name == "start-up":
                continue
            remove_db(copy)
            shutil.copyfile(base, copy)
            prof = work / f"rowwise_{path.stem}.prof"
            timed([sys.executable, "-m", "cProfile", "-o", str(prof), PIPECTL, "--db",
                   str(copy), "import", str(path)])
            # by cumulative time, pipectl's own functions and SQLite's calls (the CLI's
            # wrappers above the import command say nothing); then by own time, everything
            for title, order, only in (
                    ("cumulative time, pipectl's functions and SQLite calls", "cumulative",
                     r"src/pipectl/(?!cli/|entry)|sqlite3\.(Connection|Cursor)"),
                    ("own time", "tottime", None)):
                buf = io.StringIO()
                stats = pstats.Stats(str(prof), stream=buf).sort_stats(order)
                stats.print_stats(*([only] if only else []), 15)
                text = buf.getvalue()
                text = text[text.find("   ncalls"):].rstrip()
                if PIPECTL_SRC:
                    text = text.replace(str(PIPECTL_SRC[0]) + "/", "")
                print(f"\n#### cProfile, {name}: top 15 by {title}\n\n```\n{text}\n```")
    remove_db(copy)
    remove_db(base)


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sql", help="print the baseline's sqlite3 script for a CSV")
    s.add_argument("csv", type=Path)
    s.add_argument("--read-models", action="store_true")
    s.add_argument("--indexes-after", type=Path, metavar="SCRATCH",
                   help="drop the secondary indexes first and make them again at the end "
                   "(their SQL saved in folder SCRATCH)")
    s = sub.add_parser("run", help="the baseline import of a CSV into a new database")
    s.add_argument("csv", type=Path)
    s.add_argument("db", type=Path)
    s.add_argument("--read-models", action="store_true")
    s.add_argument("--indexes-after", action="store_true",
                   help="drop the secondary indexes first and make them again at the end")
    s = sub.add_parser("export", help="pipectl export of a copy of a database")
    s.add_argument("source", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--work", type=Path, default=HERE / "out" / "import_sql")
    s = sub.add_parser("verify", help="the baseline's tables equal pipectl's import's")
    s.add_argument("csv", type=Path, nargs="+")
    s.add_argument("--work", type=Path, default=HERE / "out" / "import_sql")
    s = sub.add_parser("bench", help="time the baseline against pipectl import")
    s.add_argument("csv", type=Path, nargs="+")
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--work", type=Path, default=HERE / "out" / "import_sql")
    s.add_argument("--variants", default=",".join(list(VARIANTS)[1:]),
                   help="the variants timed beside the baseline, comma-separated (default: "
                   "all: %(default)s)")
    s = sub.add_parser("rowwise", help="time the row-by-row road")
    s.add_argument("--db", type=Path, required=True, help="a database of deals (copied)")
    s.add_argument("--rows", type=int, default=10_000)
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--work", type=Path, default=HERE / "out" / "import_sql")
    s.add_argument("--no-profile", action="store_true")
    for s in sub.choices.values():
        s.add_argument("--pipectl-src", type=Path, metavar="DIR",
                       help="run pipectl from DIR (a src/ folder, e.g. of `git archive "
                       "HEAD src | tar -x -C SNAP`), not from the venv's editable install: "
                       "a tree someone edits meanwhile changes between runs")
    args = p.parse_args(argv)
    if args.pipectl_src is not None:
        if not (args.pipectl_src / "pipectl" / "__init__.py").exists():
            raise SystemExit(f"--pipectl-src {args.pipectl_src}: no pipectl package in it")
        PIPECTL_SRC.append(args.pipectl_src.resolve())
    if args.cmd == "sql":
        print(baseline_sql(args.csv.resolve(), args.read_models,
                           indexes_after=args.indexes_after))
    elif args.cmd == "run":
        if args.db.exists():
            raise SystemExit(f"{args.db} exists")
        make_template(args.db)
        with tempfile.TemporaryDirectory() as work:
            variant = next(v for v, k in VARIANTS.items()
                           if k == (args.read_models, args.indexes_after))
            script = write_script(args.csv, Path(work), variant)
            wall, rss, _ = run_baseline(args.csv, args.db, script)
        print(f"{counts(args.db)} deals, events in {wall:.2f} s, peak RSS {rss:.0f} MB")
    elif args.cmd == "export":
        export(args.source, args.out, args.work)
    elif args.cmd == "verify":
        return verify(args.csv, args.work)
    elif args.cmd == "bench":
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in variants if v not in VARIANTS or v == "baseline"]
        if unknown:
            raise SystemExit(f"--variants: {unknown}; choose among {list(VARIANTS)[1:]}")
        bench(args.csv, args.runs, args.work, variants)
    elif args.cmd == "rowwise":
        rowwise(args.db, args.rows, args.runs, args.work, not args.no_profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
