"""pipectl next to crm.cli (issue 6's TypeScript peer), measured in one run on this machine.

crm.cli is not part of this repository: rebuild it by hand outside the work tree (see
benchmarks/PEERS.md), then, from the repository root with the project's venv active::

    # once per size: give crm.cli the deals of benchmarks/out/deals_N_seed1.db
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_1000.db --seed-only
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_100000.db --deals 100000 --seed-only
    # the comparison (15 interleaved runs per command; Markdown on stdout)
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_1000.db
    # the fast seeding path against crm.cli's own CLI, at 1,000 deals
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_1000.db --check-fast-seed

Each command is a fresh process, timed round-robin with all the others (so a busy machine slows
both tools alike); medians are reported. Both tools read a database of the same N deals; ``add``
writes to a copy of it, one copy per tool, so each add lands in a database of N+ deals. crm.cli
runs with the project folder that holds its node_modules as working directory: a binary made by
``bun build --compile`` loads libsql's native module from there (oven-sh/bun#18909).

crm.cli is seeded one of two ways. Through its own CLI (``--seed-mode cli``, the default up to
1,000 deals): one ``crm import deals`` and one ``crm deal move`` process per stage change, as a
user would; about 3 minutes at 1,000 deals, hours at 100,000 (every deal and every move also
scans crm.cli's whole FTS table). Or directly (``--seed-mode fast``, the default above 1,000):
crm.cli creates its empty database itself, then Python's sqlite3 writes, in one transaction, the
rows that import and moves write (src/commands/importexport.ts and deal.ts at 12bfe41), in the
same order, ids and timestamps in the same ULID and ISO formats; only the ids' random part and
the clock readings differ. ``--check-fast-seed`` seeds both ways and compares tables and
outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # benchmarks/run.py: timing, tables, generated databases

# pipectl's eight stages on crm.cli's default pipeline (lead, qualified, proposal, negotiation,
# closed-won, closed-lost): crm.cli has no meeting or post-purchase stage.
STAGE_MAP = {
    "prospecting": "lead",
    "qualification": "qualified",
    "meeting": "qualified",
    "proposal": "proposal",
    "negotiation": "negotiation",
    "won": "closed-won",
    "post_purchase": "closed-won",
    "lost": "closed-lost",
}

# (label, pipectl arguments after --db, crm.cli arguments after --db, which database); "{n}" in a
# label is the number of deals.
ROWS = [
    ("add one deal", ["add", "Peer deal", "--value", "100", "--owner", "Bob"],
     ["deal", "add", "--title", "Peer deal", "--value", "100", "--set", "owner=Bob"], "write"),
    ("list every deal ({n} rows)", ["list", "--status", "all"], ["deal", "list"], "read"),
    ("conversion report", ["report"], ["report", "conversion"], "read"),
    ("forecast", ["forecast"], ["report", "forecast"], "read"),
    ("pipeline by stage", ["board"], ["pipeline"], "read"),
    ("start-up only", ["--version"], ["--version"], None),
]

# The floor under every pipectl command, run by the Python that runs the timed pipectl.
FLOOR = [
    ("python -c pass", "`python -c pass`", ["-c", "pass"]),
    ("import typer", "`python -c 'import typer'`", ["-c", "import typer"]),
    ("hello", "bare Typer app (`python hello.py`)", None),  # None: run.HELLO
]


# ------------------------------------------------------------------ crm.cli


def crm_workdir(binary: Path) -> Path:
    """The nearest folder at or above the binary that holds node_modules (its project root)."""
    for folder in [binary.parent, *binary.parent.parents]:
        if (folder / "node_modules").is_dir():
            return folder
    return binary.parent


def crm(binary: Path, db: Path, *args: str) -> list[str]:
    return [str(binary), "--db", str(db), *args]


def crm_env_clean() -> None:
    """crm.cli reads CRM_DB, CRM_FORMAT and CRM_CONFIG; none may steer the measured runs."""
    for name in ("CRM_DB", "CRM_FORMAT", "CRM_CONFIG", "CRM_PHONE_DEFAULT_COUNTRY",
                 "CRM_PHONE_DISPLAY"):
        os.environ.pop(name, None)


def stray_configs(workdir: Path) -> list[Path]:
    """crm.toml files crm.cli would pick up (it walks up from its working directory)."""
    found = [d / "crm.toml" for d in [workdir, *workdir.parents] if (d / "crm.toml").exists()]
    home = Path.home() / ".crm" / "config.toml"
    return found + ([home] if home.exists() else [])


def checkpoint(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def unlink_db(db: Path) -> None:
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy through SQLite's online backup (crm.cli keeps its file in WAL mode)."""
    unlink_db(dst)
    a, b = sqlite3.connect(f"file:{src}?mode=ro", uri=True), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    return dst


def read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


# ------------------------------------------------------------------ seeding crm.cli


@dataclass
class Plan:
    """What crm.cli is given: the records of one ``crm import deals`` and the moves after it."""

    records: list[dict[str, object]]  # the import's JSON records, in pipectl id order
    moves: list[tuple[int, str, str | None]]  # (pipectl id, crm.cli stage, reason), in order
    final: dict[int, str]  # pipectl id -> the crm.cli stage the deal ends at


def plan(source: Path) -> Plan:
    """Each deal at the stage it was created in, then its recorded history, in time order.

    Values are in major units (crm.cli has no currency); owner, currency and pipectl's id are
    custom fields. Moves that stay in the same crm.cli stage (qualification -> meeting, won ->
    post_purchase) are dropped: crm.cli refuses them.
    """
    from pipectl.values import exponent

    src = read_only(source)
    src.row_factory = sqlite3.Row
    try:
        deals = src.execute("SELECT * FROM deals ORDER BY id").fetchall()
        events = src.execute(
            "SELECT deal_id, kind, to_stage, reason FROM events WHERE to_stage IS NOT NULL "
            "ORDER BY at, id").fetchall()
    finally:
        src.close()
    first: dict[int, str] = {}
    for m in events:
        if m["kind"] == "created":
            first[m["deal_id"]] = m["to_stage"]
    records = []
    for d in deals:
        rec: dict[str, object] = {
            "title": d["name"],
            "stage": STAGE_MAP[first[d["id"]]],
            "owner": d["owner"] or "",
            "currency": d["currency"],
            "pipectl_id": str(d["id"]),
        }
        if d["value_minor"] is not None:
            rec["value"] = round(d["value_minor"] / 10 ** exponent(d["currency"]))
        if d["close_date"]:
            rec["expected_close"] = d["close_date"]
        if d["probability"] is not None:
            rec["probability"] = d["probability"]
        records.append(rec)
    now = {d["id"]: STAGE_MAP[first[d["id"]]] for d in deals}
    moves = []
    for m in events:
        if m["kind"] == "created":
            continue
        target = STAGE_MAP[m["to_stage"]]
        if target != now[m["deal_id"]]:
            moves.append((m["deal_id"], target, m["reason"] if m["kind"] == "lost" else None))
            now[m["deal_id"]] = target
    return Plan(records, moves, {d["id"]: STAGE_MAP[d["stage"]] for d in deals})


def seed_cli(binary: Path, crm_db: Path, p: Plan) -> None:
    """Seed through crm.cli's own CLI: one import, then one ``crm deal move`` process per move,
    as a user would."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(p.records, f, ensure_ascii=False)
    try:
        out = subprocess.run(crm(binary, crm_db, "import", "deals", f.name),
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    print(f"  crm.cli import: {out.stdout.strip()}", file=sys.stderr, flush=True)
    ids = crm_ids(crm_db)
    started = time.time()
    for k, (deal, target, reason) in enumerate(p.moves, 1):
        argv = crm(binary, crm_db, "deal", "move", ids[deal], "--stage", target)
        if reason:
            argv.append(f"--reason={reason}")  # a reason may start with "-"
        subprocess.run(argv, capture_output=True, text=True, check=True)
        if k % 200 == 0 or k == len(p.moves):
            print(f"  crm.cli deal move: {k}/{len(p.moves)} ({time.time() - started:.0f} s)",
                  file=sys.stderr, flush=True)


# crm.cli 12bfe41, src/commands/importexport.ts: the columns `import deals` fills itself;
# every other key of a record with a truthy value becomes a custom field.
DEAL_FIELDS = frozenset({"title", "value", "stage", "contacts", "company", "expected_close",
                         "probability", "tags"})
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # the ulid package's alphabet


def ulid(ms: int) -> str:
    """A ULID as the ``ulid`` package makes it: 48-bit milliseconds, then 80 random bits."""
    r = int.from_bytes(os.urandom(10), "big")
    return ("".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
            + "".join(CROCKFORD[(r >> (5 * i)) & 31] for i in range(15, -1, -1)))


def js_iso(ms: int) -> str:
    """JavaScript's ``new Date(ms).toISOString()``."""
    s, frac = divmod(ms, 1000)
    return f"{datetime.fromtimestamp(s, UTC):%Y-%m-%dT%H:%M:%S}.{frac:03d}Z"


def js_json(obj: object) -> str:
    """JavaScript's ``JSON.stringify`` of plain strings and numbers (no spaces, no \\u escapes
    for non-ASCII)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def import_row(rec: dict[str, object]) -> tuple[str, object, str, object, object, str]:
    """(title, value, stage, expected_close, probability, custom_fields) as ``crm import deals``
    writes a JSON record: ``rec.value ? Number(rec.value) : null`` (so 0 is stored as NULL),
    the same for probability, ``rec.expected_close || null``, and the custom fields in the
    record's key order."""
    custom = {k: v for k, v in rec.items() if k not in DEAL_FIELDS and v}
    return (str(rec["title"]), rec.get("value") or None, str(rec.get("stage") or "lead"),
            rec.get("expected_close") or None, rec.get("probability") or None, js_json(custom))


def seed_fast(binary: Path, crm_db: Path, p: Plan) -> None:
    """Write what ``crm import deals`` and the ``crm deal move`` runs of seed_cli write, directly.

    crm.cli creates the empty database itself (schema, FTS5 table, WAL mode). Then, in one
    transaction, in seed_cli's order (so the rowids and the order of the activities are the
    same):
    - per record, a deals row (contacts and tags '[]', company NULL, created_at = updated_at)
      and a search_index row ('deal', id, "title stage custom_fields []"), as import does;
    - per move, an activities row (type 'stage-change', body "from A to B" plus " | reason",
      contact and company NULL, custom_fields '{}'), its search_index row ('activity', id,
      "stage-change " + body), and the deal's stage and updated_at, as ``deal move`` does (the
      deal's own search row keeps its first stage there too).
    Ids are ``dl_``/``ac_`` + a ULID of the row's creation time; the clock starts at the
    seeding time and advances one millisecond per row written.
    """
    out = subprocess.run(crm(binary, crm_db, "deal", "list"), capture_output=True, text=True)
    if out.returncode != 0 or out.stdout.strip():
        raise SystemExit(f"crm.cli did not create an empty database: {out.stderr.strip()}")
    clock = int(time.time() * 1000)
    ids: dict[int, str] = {}
    deal_rows, search_rows = [], []
    for rec in p.records:
        title, value, stage, close, prob, custom = import_row(rec)
        did, at = f"dl_{ulid(clock)}", js_iso(clock)
        clock += 1
        ids[int(str(rec["pipectl_id"]))] = did
        deal_rows.append((did, title, value, stage, "[]", None, close, prob, "[]", custom, at,
                          at))
        search_rows.append(("deal", did, " ".join(filter(None, [title, stage, custom, "[]"]))))
    stage_now = {ids[int(str(rec["pipectl_id"]))]: str(rec["stage"]) for rec in p.records}
    touched: dict[str, tuple[str, str]] = {}
    activity_rows = []
    for deal, target, reason in p.moves:
        did = ids[deal]
        aid, at = f"ac_{ulid(clock)}", js_iso(clock)
        clock += 1
        body = f"from {stage_now[did]} to {target}" + (f" | {reason}" if reason else "")
        activity_rows.append((aid, "stage-change", body, None, None, did, "{}", at))
        search_rows.append(("activity", aid, f"stage-change {body}"))
        stage_now[did] = target
        touched[did] = (target, at)
    con = sqlite3.connect(crm_db, isolation_level=None)
    try:
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO deals (id, title, value, stage, contacts, company, expected_close, "
            "probability, tags, custom_fields, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", deal_rows)
        con.executemany(
            "INSERT INTO activities (id, type, body, contact, company, deal, custom_fields, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", activity_rows)
        con.executemany(
            "INSERT INTO search_index (entity_type, entity_id, content) VALUES (?, ?, ?)",
            search_rows)
        con.executemany("UPDATE deals SET stage = ?, updated_at = ? WHERE id = ?",
                        [(stage, at, did) for did, (stage, at) in touched.items()])
        con.execute("COMMIT")
    finally:
        con.close()
    print(f"  fast seed: {len(deal_rows):,} deals, {len(activity_rows):,} stage changes",
          file=sys.stderr, flush=True)


def crm_ids(crm_db: Path) -> dict[int, str]:
    """pipectl id -> crm.cli id, through the pipectl_id custom field."""
    con = read_only(crm_db)
    try:
        return {int(pid): cid for cid, pid in con.execute(
            "SELECT id, json_extract(custom_fields, '$.pipectl_id') FROM deals")}
    finally:
        con.close()


def seed(binary: Path, crm_db: Path, source: Path, mode: str) -> str:
    """(Re)create crm_db from pipectl's generated database; returns the mode used."""
    p = plan(source)
    if mode == "auto":
        mode = "cli" if len(p.records) <= 1000 else "fast"
    unlink_db(crm_db)
    crm_db.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    (seed_cli if mode == "cli" else seed_fast)(binary, crm_db, p)
    ids = crm_ids(crm_db)
    con = read_only(crm_db)
    try:
        got = dict(con.execute("SELECT id, stage FROM deals"))
    finally:
        con.close()
    wrong = sum(1 for pid, stage in p.final.items() if got.get(ids.get(pid)) != stage)
    if wrong or len(got) != len(p.records):
        raise SystemExit(f"seeding went wrong: {wrong} crm.cli deals not at their stage")
    checkpoint(crm_db)
    Path(f"{crm_db}.seed.json").write_text(json.dumps({
        "mode": mode, "source": source.name, "deals": len(p.records), "moves": len(p.moves),
        "seconds": round(time.time() - started, 1),
        "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"}) + "\n")
    return mode


def seed_note(crm_db: Path) -> str:
    try:
        info = json.loads(Path(f"{crm_db}.seed.json").read_text())
    except (OSError, ValueError):
        return "seeded by an unknown path"
    how = ("through crm.cli's CLI" if info["mode"] == "cli"
           else "by the fast path (direct SQLite writes)")
    return f"seeded {how} from `{info['source']}` in {info['seconds']} s, {info['at']}"


def describe_crm_db(db: Path) -> str:
    con = read_only(db)
    try:
        n = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        acts = con.execute("SELECT count(*) FROM activities").fetchone()[0]
        stages = ", ".join(f"{s} {c}" for s, c in con.execute(
            "SELECT stage, count(*) FROM deals GROUP BY stage ORDER BY count(*) DESC"))
    finally:
        con.close()
    return f"{n:,} deals ({stages}), {acts:,} stage-change activities"


def crm_deal_count(db: Path) -> int:
    con = read_only(db)
    try:
        return con.execute("SELECT count(*) FROM deals").fetchone()[0]
    finally:
        con.close()


# ------------------------------------------------------------------ checking the fast path

ID_RE = re.compile(r"\b(?:dl|ac)_[0-9A-HJKMNP-TV-Z]{26}\b")
TIME_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\b")
CHECKED = [["report", "conversion"], ["report", "forecast"], ["pipeline"], ["deal", "list"]]


def id_names(db: Path) -> dict[str, str]:
    """crm.cli id -> a name that is the same in both seedings: the deal's pipectl id, or the
    activity's position (rowid)."""
    con = read_only(db)
    try:
        names = {cid: f"deal#{pid}" for cid, pid in con.execute(
            "SELECT id, json_extract(custom_fields, '$.pipectl_id') FROM deals")}
        names.update({aid: f"activity#{rowid}" for rowid, aid in con.execute(
            "SELECT rowid, id FROM activities")})
    finally:
        con.close()
    return names


def normalized(text: str, names: dict[str, str]) -> str:
    """Ids replaced by their names, timestamps by <time>; every name is padded to an id's 29
    characters so table columns keep their widths."""
    text = ID_RE.sub(lambda m: names.get(m.group(0), "UNKNOWN-ID").ljust(29), text)
    return TIME_RE.sub("<time>".ljust(24), text)


def table_dump(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows in rowid order, ids named, times dropped, with SQLite's types."""
    names = id_names(db)
    con = read_only(db)
    try:
        def rows(sql: str) -> list[tuple]:
            return [tuple(names.get(v, v) if isinstance(v, str) else v for v in r)
                    for r in con.execute(sql)]

        return {
            "schema": rows("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"),
            "deals": rows(
                "SELECT rowid, id, title, typeof(value), value, stage, contacts, company, "
                "expected_close, typeof(probability), probability, tags, custom_fields "
                "FROM deals ORDER BY rowid"),
            "activities": rows(
                "SELECT rowid, id, type, body, contact, company, deal, custom_fields "
                "FROM activities ORDER BY rowid"),
            "search_index": rows(
                "SELECT rowid, entity_type, entity_id, content FROM search_index "
                "ORDER BY rowid"),
            "contacts+companies": rows(
                "SELECT 'contact', id FROM contacts UNION ALL SELECT 'company', id "
                "FROM companies"),
            # crm.cli's own invariants: a deal's updated_at is its last move's time (or its
            # creation's), ids are ULIDs of their row's creation millisecond
            "updated_at = last move": rows(
                "SELECT d.id FROM deals d WHERE d.updated_at IS NOT coalesce((SELECT "
                "max(a.created_at) FROM activities a WHERE a.deal = d.id), d.created_at)"),
            "times well-formed": rows(
                "SELECT id FROM deals WHERE created_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]"
                "-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' "
                "OR updated_at < created_at"),
        }
    finally:
        con.close()


def check_fast_seed(binary: Path, source: Path, folder: Path) -> int:
    """Seed crm.cli both ways from one generated database and compare the results."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(plan(source).records)
    dbs = {mode: folder / f"crm_{n}_{mode}.db" for mode in ("cli", "fast")}
    for mode, db in dbs.items():
        print(f"seeding {db} ({mode}) ...", file=sys.stderr, flush=True)
        seed(binary, db, source, mode)
    failures = 0
    dumps = {mode: table_dump(db) for mode, db in dbs.items()}
    print(f"Fast seeding against crm.cli's CLI, {n:,} deals of `{source.name}`:\n")
    for part in dumps["cli"]:
        a, b = dumps["cli"][part], dumps["fast"][part]
        same = a == b
        failures += not same
        print(f"- table {part}: {len(a):,} rows, {'identical' if same else 'DIFFERENT'}"
              " (ids named by pipectl id / rowid; created_at and updated_at left out)")
    for args in CHECKED:
        for fmt in ([], ["--format", "json"]):
            outs = {}
            for mode, db in dbs.items():
                got = subprocess.run(crm(binary, db, *fmt, *args), capture_output=True,
                                     text=True, check=True).stdout
                outs[mode] = normalized(got, id_names(db))
            same = outs["cli"] == outs["fast"]
            failures += not same
            digest = hashlib.sha256(outs["cli"].encode()).hexdigest()[:12]
            print(f"- `crm {shlex.join([*fmt, *args])}`: {len(outs['cli'].splitlines()):,} "
                  f"lines, {'identical' if same else 'DIFFERENT'} after naming ids and "
                  f"masking timestamps (sha256 {digest})")
            if not same:
                for la, lb in zip(outs["cli"].splitlines(), outs["fast"].splitlines(),
                                  strict=False):
                    if la != lb:
                        print(f"    cli:  {la[:160]}\n    fast: {lb[:160]}")
                        break
    print(f"\n{'OK: the fast path writes what the CLI writes' if not failures else 'FAILED'}")
    return 1 if failures else 0


# ------------------------------------------------------------------ measuring


GNU_TIME = shutil.which("time") or "/usr/bin/time"


def capture_once(cmd: run.Cmd) -> tuple[float, bytes, int, str, int | None]:
    """(seconds, stdout, exit code, stderr, peak RSS in KiB) of one fresh process, environment
    as run.run_once.

    The peak RSS comes from GNU time (``-f %M``), not from wait4 as in run.run_once: Linux
    records the old address space's high-water mark when a process calls exec, and a child
    spawned by Python (vfork) execs from the parent's address space, so run.run_once's figure
    is at least the benchmark script's own RSS (~25 MB), whatever the child uses. GNU time
    forks from its own small process. The timed runs stay unwrapped.
    """
    env = {**os.environ, **(cmd.env or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = list(cmd.argv() if callable(cmd.argv) else cmd.argv)
    with (tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err,
          tempfile.NamedTemporaryFile("r", suffix=".rss") as rss):
        wrap = [GNU_TIME, "-f", "%M", "-o", rss.name] if os.access(GNU_TIME, os.X_OK) else []
        started = time.perf_counter()
        proc = subprocess.Popen([*wrap, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, env=env)
        proc.wait()
        took = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        lines = rss.read().split()
        peak = int(lines[-1]) if wrap and lines and lines[-1].isdigit() else None
        return took, out.read(), proc.returncode, err.read().decode(errors="replace"), peak


def failed(rc: int, err: str) -> str | None:
    """run.measure's rule: a non-zero exit or "error" on stderr."""
    if rc != 0 or (err.strip() and "error" in err.lower()):
        return (err.strip().splitlines() or [f"exit code {rc}"])[-1][:120]
    return None


@dataclass
class Measured:
    samples: dict[str, run.Sample]  # the timed runs
    printed: dict[str, bytes]  # what each command printed in the warm-up
    peak_kb: dict[str, int | None]  # each command's peak RSS in the warm-up (GNU time)
    slow: dict[str, float]  # warm-up seconds of the commands timed --slow-reps times only


def measure(cmds: dict[str, run.Cmd], reps: int, slow_after: float, slow_reps: int
            ) -> Measured:
    """run.measure's round-robin after one untimed warm-up round, which also records what each
    command prints and its peak RSS; commands whose warm-up took longer than ``slow_after``
    seconds are timed ``slow_reps`` times only (in the first rounds)."""
    samples = {name: run.Sample() for name in cmds}
    printed: dict[str, bytes] = {}
    peak_kb: dict[str, int | None] = {}
    slow: dict[str, float] = {}
    for name, cmd in cmds.items():
        took, out, rc, err, peak = capture_once(cmd)
        samples[name].error = failed(rc, err)
        printed[name] = out
        peak_kb[name] = peak
        if took > slow_after:
            slow[name] = took
        if took > 10:
            print(f"  warm-up: {name} took {took:.1f} s", file=sys.stderr, flush=True)
    for rnd in range(reps):
        started = time.time()
        for name, cmd in cmds.items():
            s = samples[name]
            if s.error or (name in slow and rnd >= slow_reps):
                continue
            took, rss, rc, err = run.run_once(cmd)
            s.error = failed(rc, err)
            if not s.error:
                s.times.append(took)
                s.rss_kb.append(rss)
        if time.time() - started > 10:
            print(f"  round {rnd + 1}/{reps}: {time.time() - started:.0f} s", file=sys.stderr,
                  flush=True)
    return Measured(samples, printed, peak_kb, slow)


def output_size(out: bytes) -> str:
    n = len(out.decode(errors="replace").splitlines())
    return f"{n:,} line{'s' if n != 1 else ''}, {len(out):,} B"


def verdict(r: float) -> str:
    if r != r:  # nan
        return "n/a"
    if r < 0.95:
        return "pipectl faster"
    if r > 1.05:
        return "crm.cli faster"
    return "even (within 5%)"


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def git_commit() -> str:
    here = str(run.HERE.parent)
    out = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.splitlines()
    files = [line[3:] for line in dirty]
    return out.stdout.strip() + (f" (work tree with uncommitted changes in {', '.join(files)})"
                                 if files else " (clean work tree)")


def pipectl_python() -> str:
    """The Python that runs the timed pipectl (its venv's), for the floor rows."""
    py = Path(run.PIPECTL).with_name("python")
    return str(py) if py.exists() else run.PY


def install_kind() -> str:
    """How the timed pipectl is installed: editable (imports this work tree) or a normal
    install (a copy in site-packages, with .pyc files made at install time), as users have it."""
    out = subprocess.run(
        [pipectl_python(), "-c",
         "import json, pipectl, sys, typer\n"
         "from importlib.metadata import distribution\n"
         "url = json.loads(distribution('pipectl').read_text('direct_url.json') or '{}')\n"
         "print(pipectl.__file__, typer.__version__, url.get('url', '-'))"],
        capture_output=True, text=True)
    if out.returncode != 0:
        return "installation unknown"
    file, typer_version, url = out.stdout.rsplit(" ", 2)
    where = Path(file)
    if run.HERE.parent / "src" in where.parents:
        return f"editable install of this work tree, Typer {typer_version}"
    return (f"normal install in {where.parent.parent}, from {url.strip()}, "
            f"Typer {typer_version}")


def compare(binary: Path, crm_db: Path, reps: int, deals: int, slow_after: float,
            slow_reps: int) -> str:
    pip_src = run.generated_db(deals)
    timed = subprocess.run([pipectl_python(), "-c", "from pipectl.store.schema import VERSION; "
                            "print(VERSION)"], capture_output=True, text=True).stdout.strip()
    if timed != str(run.schema_version(pip_src)):
        raise SystemExit(f"the timed pipectl has schema {timed or '?'}, {pip_src.name} has "
                         f"{run.schema_version(pip_src)} (made by this work tree): reinstall "
                         "the timed pipectl from this tree (see PEERS.md)")
    if crm_deal_count(crm_db) != deals:
        raise SystemExit(f"{crm_db} holds {crm_deal_count(crm_db):,} deals, not {deals:,}: "
                         "seed it with --seed --deals N")
    work = run.OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    pip_read = run.fresh_copy(pip_src, "peers_read.db")
    pip_write = run.fresh_copy(pip_src, "peers_write.db")
    crm_read = copy_db(crm_db, work / "crm_read.db")
    crm_write = copy_db(crm_db, work / "crm_write.db")
    hello = run.OUT / "baselines" / "hello.py"
    hello.parent.mkdir(parents=True, exist_ok=True)
    hello.write_text(run.HELLO)
    py = pipectl_python()
    rows = [(label.format(n=f"{deals:,}"), p, c, w) for label, p, c, w in ROWS]

    def dbs(which: str | None) -> tuple[Path | None, Path | None]:
        if which == "write":
            return pip_write, crm_write
        if which == "read":
            return pip_read, crm_read
        return None, None

    cmds: dict[str, run.Cmd] = {}
    for key, _, args in FLOOR:
        cmds[key] = run.Cmd([py, *(args or [str(hello)])])
    for label, pip_args, crm_args, which in rows:
        p_db, c_db = dbs(which)
        p = run.pipectl(p_db, *pip_args) if p_db else [run.PIPECTL, *pip_args]
        c = crm(binary, c_db, *crm_args) if c_db else [str(binary), *crm_args]
        cmds[f"pipectl {label}"] = run.Cmd(p)
        cmds[f"crm {label}"] = run.Cmd(c)
    commit = git_commit()  # before the run: the tree may change while it runs
    started = datetime.now(UTC)
    load_before = load_average()
    m = measure(cmds, reps, slow_after, slow_reps)
    res, printed, slow = m.samples, m.printed, m.slow
    load_after = load_average()
    finished = datetime.now(UTC)

    def median(s: run.Sample, key: str) -> str:
        text = run.ms(s) if s.error or s.median < 10 else f"{s.median:.1f} s"
        return f"{text} ({len(s.times)} runs)" if key in slow and not s.error else text

    def peak(key: str) -> str:
        kb = m.peak_kb.get(key)
        return f"{kb / 1024:.0f}" if kb else "?"

    hello_s = res["hello"]
    t = run.Table(
        f"pipectl and crm.cli, {deals:,} deals, same machine, same run ({reps} interleaved "
        "runs each unless noted, medians)",
        ["command", "pipectl", "pipectl median", "crm.cli", "crm.cli median",
         "ratio (pipectl / crm.cli)", "verdict", "peak RSS pipectl / crm.cli (warm-up)",
         "pipectl above the bare Typer app"])
    for label, pip_args, crm_args, _ in rows:
        a, b = res[f"pipectl {label}"], res[f"crm {label}"]
        r = run.ratio(a, b)
        above = a.median - hello_s.median
        t.add(label, f"`pipectl {shlex.join(pip_args)}`", median(a, f"pipectl {label}"),
              f"`crm {shlex.join(crm_args)}`", median(b, f"crm {label}"),
              f"{r:.2g}" if r < 0.1 else r, verdict(r),
              f"{peak(f'pipectl {label}')} / {peak(f'crm {label}')} MB",
              f"{above * 1000:+.0f} ms" if above == above else "-")
    for key, text, _ in FLOOR:
        s = res[key]
        t.add(f"floor: {text}", "-", run.ms(s), "-", "-", "-", "-",
              f"{peak(key)} MB", "-")
    o = run.Table("What each command printed (warm-up run; stdout is a file, not a terminal)",
                  ["command", "pipectl", "crm.cli"])
    for label, _, _, which in rows:
        if which != "write":
            o.add(label, output_size(printed[f"pipectl {label}"]),
                  output_size(printed[f"crm {label}"]))
    notes = [f"`{k}` took {v:.0f} s in the warm-up, so it was timed "
             f"{len(res[k].times)} time(s) only" for k, v in slow.items()]
    lines = [
        f"Machine: {run.machine()}",
        f"pipectl work tree at the start: {commit}; timed: `{run.PIPECTL}` "
        f"({install_kind()}); "
        f"floor rows run by `{py}`; crm.cli: `{binary}` (working directory `{os.getcwd()}`)",
        f"pipectl database: `{pip_src.name}` ({deals:,} generated deals); crm.cli database: "
        f"{describe_crm_db(crm_read)}, {seed_note(crm_db)}",
        f"Run: {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC; load average (1/5/15 min) "
        f"{load_before} before, {load_after} after",
        *(f"Slow: {n}" for n in notes),
        "",
        t.render(),
        o.render(),
    ]
    run.remover(pip_read, pip_write, crm_read, crm_write)()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--crm-cli", required=True, type=Path,
                   help="crm.cli's binary (bun build --compile) or a launcher script")
    p.add_argument("--crm-db", required=True, type=Path,
                   help="crm.cli's database of --deals deals (made by --seed)")
    p.add_argument("--crm-cwd", type=Path, default=None,
                   help="working directory for crm.cli (default: the nearest folder above "
                        "the binary that holds node_modules)")
    p.add_argument("--seed", action="store_true",
                   help="(re)create --crm-db from pipectl's generated database, then measure")
    p.add_argument("--seed-only", action="store_true", help="seed, do not measure")
    p.add_argument("--seed-mode", choices=("auto", "cli", "fast"), default="auto",
                   help="cli: crm.cli's own import and one `deal move` process per move; fast: "
                        "the same rows written directly; auto (default): cli up to 1,000 "
                        "deals, fast above")
    p.add_argument("--check-fast-seed", action="store_true",
                   help="seed crm.cli both ways next to --crm-db (in a check/ folder) and "
                        "compare tables and outputs; do not measure")
    p.add_argument("--reps", type=int, default=15, help="runs per command (default 15)")
    p.add_argument("--slow-after", type=float, default=120,
                   help="a command whose warm-up run takes longer (seconds, default 120) is "
                        "timed --slow-reps times only")
    p.add_argument("--slow-reps", type=int, default=2,
                   help="timed runs of a slow command (default 2)")
    p.add_argument("--pipectl", type=Path, default=None,
                   help="pipectl's console script to time (default: this environment's). "
                        "Users install pipectl with pip or pipx, not editable: see PEERS.md")
    p.add_argument("--deals", type=int, default=1000,
                   help="size of pipectl's generated database to copy and compare (default 1000)")
    args = p.parse_args(argv)
    if args.pipectl is not None:
        run.PIPECTL = str(args.pipectl.resolve())
    if not run.PIPECTL:
        print("pipectl is not installed in this environment", file=sys.stderr)
        return 2
    binary = args.crm_cli.resolve()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"not an executable file: {binary}", file=sys.stderr)
        return 2
    crm_db = args.crm_db.resolve()
    workdir = (args.crm_cwd or crm_workdir(binary)).resolve()
    crm_env_clean()
    stray = stray_configs(workdir)
    if stray:
        print(f"crm.cli would read these config files: {', '.join(map(str, stray))}; "
              "move them away first", file=sys.stderr)
        return 2
    # Every path handed to either tool is absolute, so the working directory only matters to
    # crm.cli (its native module).
    os.chdir(workdir)
    run.OUT.mkdir(parents=True, exist_ok=True)  # run.generated_db writes there
    if args.check_fast_seed:
        return check_fast_seed(binary, run.generated_db(args.deals), crm_db.parent / "check")
    if args.seed or args.seed_only:
        seed(binary, crm_db, run.generated_db(args.deals), args.seed_mode)
        if args.seed_only:
            print(f"{describe_crm_db(crm_db)}; {seed_note(crm_db)}")
            return 0
    if not crm_db.exists():
        print(f"{crm_db} does not exist: run once with --seed", file=sys.stderr)
        return 2
    if shutil.which("git") is None:
        print("git is needed to name the commit measured", file=sys.stderr)
        return 2
    print(compare(binary, crm_db, args.reps, args.deals, args.slow_after, args.slow_reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
