"""pipectl next to crm.cli (issue 6's TypeScript peer), measured in one run on this machine.

crm.cli is not part of this repository: rebuild it by hand outside the work tree (see
benchmarks/PEERS.md), then, from the repository root with the project's venv active::

    # once: give crm.cli 1,000 deals copied from benchmarks/out/deals_1000_seed1.db
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_1000.db --seed
    # the comparison (15 interleaved runs per command; Markdown on stdout)
    python benchmarks/peers.py --crm-cli /work/peers/crm.cli/dist/crm \\
        --crm-db /work/peers/data/crm_1000.db

Each command is a fresh process, timed round-robin with all the others (so a busy machine slows
both tools alike) by benchmarks/run.py's ``measure``; medians are reported. Both tools read a
1,000-deal database; ``add`` writes to a copy of it, one copy per tool, so each add lands in a
database of 1,000+ deals. crm.cli runs with the project folder that holds its node_modules as
working directory: a binary made by ``bun build --compile`` loads libsql's native module from
there (oven-sh/bun#18909).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
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

# (label, pipectl arguments after --db, crm.cli arguments after --db, which database)
ROWS = [
    ("add one deal", ["add", "Peer deal", "--value", "100", "--owner", "Bob"],
     ["deal", "add", "--title", "Peer deal", "--value", "100", "--set", "owner=Bob"], "write"),
    ("list every deal (1,000 rows)", ["list", "--status", "all"], ["deal", "list"], "read"),
    ("conversion report", ["report"], ["report", "conversion"], "read"),
    ("forecast", ["forecast"], ["report", "forecast"], "read"),
    ("pipeline by stage", ["board"], ["pipeline"], "read"),
    ("start-up only", ["--version"], ["--version"], None),
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


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy through SQLite's online backup (crm.cli keeps its file in WAL mode)."""
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm")):
        p.unlink(missing_ok=True)
    a, b = sqlite3.connect(f"file:{src}?mode=ro", uri=True), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    return dst


def seed(binary: Path, crm_db: Path, source: Path) -> None:
    """Give crm.cli the deals of pipectl's generated database through its own CLI.

    Each deal is imported (``crm import deals``, JSON) at the stage it was created in, then
    moved along its recorded history with ``crm deal move`` (one process per move, as a user
    would), so crm.cli's conversion report has stage-change activities to read, like pipectl's
    events. Values are in major units (crm.cli has no currency); owner, currency and pipectl's
    id are custom fields.
    """
    from pipectl.values import exponent

    for p in (crm_db, Path(f"{crm_db}-wal"), Path(f"{crm_db}-shm")):
        p.unlink(missing_ok=True)
    crm_db.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    src.row_factory = sqlite3.Row
    try:
        deals = src.execute("SELECT * FROM deals ORDER BY id").fetchall()
        moves = src.execute(
            "SELECT deal_id, kind, to_stage, reason FROM events WHERE to_stage IS NOT NULL "
            "ORDER BY at, id").fetchall()
    finally:
        src.close()
    first: dict[int, str] = {}
    for m in moves:
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
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(records, f, ensure_ascii=False)
    try:
        out = subprocess.run(crm(binary, crm_db, "import", "deals", f.name),
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    print(f"  crm.cli import: {out.stdout.strip()}", file=sys.stderr, flush=True)
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        ids = {int(pid): cid for cid, pid in con.execute(
            "SELECT id, json_extract(custom_fields, '$.pipectl_id') FROM deals")}
    finally:
        con.close()
    now = {d["id"]: STAGE_MAP[first[d["id"]]] for d in deals}
    todo = []
    for m in moves:
        if m["kind"] == "created":
            continue
        target = STAGE_MAP[m["to_stage"]]
        if target != now[m["deal_id"]]:
            todo.append((m["deal_id"], target, m["reason"] if m["kind"] == "lost" else None))
            now[m["deal_id"]] = target
    started = time.time()
    for k, (deal, target, reason) in enumerate(todo, 1):
        argv = crm(binary, crm_db, "deal", "move", ids[deal], "--stage", target)
        if reason:
            argv.append(f"--reason={reason}")  # a reason may start with "-"
        subprocess.run(argv, capture_output=True, text=True, check=True)
        if k % 200 == 0 or k == len(todo):
            print(f"  crm.cli deal move: {k}/{len(todo)} ({time.time() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    want = {ids[d["id"]]: STAGE_MAP[d["stage"]] for d in deals}
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        got = dict(con.execute("SELECT id, stage FROM deals"))
    finally:
        con.close()
    wrong = sum(1 for cid, stage in want.items() if got.get(cid) != stage)
    if wrong:
        raise SystemExit(f"seeding went wrong: {wrong} crm.cli deals not at their stage")
    checkpoint(crm_db)


def describe_crm_db(db: Path) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        acts = con.execute("SELECT count(*) FROM activities").fetchone()[0]
        stages = ", ".join(f"{s} {c}" for s, c in con.execute(
            "SELECT stage, count(*) FROM deals GROUP BY stage ORDER BY count(*) DESC"))
    finally:
        con.close()
    return f"{n:,} deals ({stages}), {acts:,} stage-change activities"


# ------------------------------------------------------------------ measuring


def output_size(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True)
    text = out.stdout.decode(errors="replace")
    n = len(text.splitlines())
    return f"{n} line{'s' if n != 1 else ''}, {len(out.stdout):,} B"


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
    out = subprocess.run(["git", "-C", str(run.HERE.parent), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(run.HERE.parent), "status", "--porcelain",
                            "--untracked-files=no", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" (with uncommitted changes in src/)" if dirty else "")


def install_kind() -> str:
    """How the timed pipectl is installed: editable (imports this work tree) or a normal
    install (a copy in site-packages, with .pyc files made at install time), as users have it."""
    out = subprocess.run(
        [str(Path(run.PIPECTL).with_name("python")), "-c",
         "import pipectl, sys; sys.stdout.write(pipectl.__file__)"],
        capture_output=True, text=True)
    where = Path(out.stdout.strip()) if out.returncode == 0 else None
    if where is None:
        return "installation unknown"
    if run.HERE.parent / "src" in where.parents:
        return "editable install of this work tree"
    return f"normal install, {where.parent.parent}"


def compare(binary: Path, crm_db: Path, reps: int, deals: int) -> str:
    pip_src = run.generated_db(deals)
    work = run.OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    pip_read = run.fresh_copy(pip_src, "peers_read.db")
    pip_write = run.fresh_copy(pip_src, "peers_write.db")
    crm_read = copy_db(crm_db, work / "crm_read.db")
    crm_write = copy_db(crm_db, work / "crm_write.db")
    hello = run.OUT / "baselines" / "hello.py"
    hello.parent.mkdir(parents=True, exist_ok=True)
    hello.write_text(run.HELLO)

    def dbs(which: str | None) -> tuple[Path | None, Path | None]:
        if which == "write":
            return pip_write, crm_write
        if which == "read":
            return pip_read, crm_read
        return None, None

    cmds: dict[str, run.Cmd] = {"hello": run.Cmd([run.PY, str(hello)])}
    argvs: dict[str, tuple[list[str], list[str]]] = {}
    for label, pip_args, crm_args, which in ROWS:
        p_db, c_db = dbs(which)
        p = run.pipectl(p_db, *pip_args) if p_db else [run.PIPECTL, *pip_args]
        c = crm(binary, c_db, *crm_args) if c_db else [str(binary), *crm_args]
        argvs[label] = (p, c)
        cmds[f"pipectl {label}"] = run.Cmd(p)
        cmds[f"crm {label}"] = run.Cmd(c)
    # What each prints (once, untimed, on the read copies: the write copies stay at 1,000 + runs)
    sizes = {label: (output_size(p), output_size(c)) for label, (p, c) in argvs.items()
             if dict((r[0], r[3]) for r in ROWS)[label] != "write"}
    started = datetime.now(UTC)
    load_before = load_average()
    res = run.measure(cmds, reps)
    load_after = load_average()
    finished = datetime.now(UTC)

    t = run.Table(
        f"pipectl and crm.cli, same machine, same run ({reps} interleaved runs each, medians)",
        ["command", "pipectl", "pipectl median", "crm.cli", "crm.cli median",
         "ratio (pipectl / crm.cli)", "verdict", "peak RSS pipectl / crm.cli"])
    for label, pip_args, crm_args, _ in ROWS:
        a, b = res[f"pipectl {label}"], res[f"crm {label}"]
        r = run.ratio(a, b)
        t.add(label, f"`pipectl {shlex.join(pip_args)}`", run.ms(a),
              f"`crm {shlex.join(crm_args)}`", run.ms(b), r, verdict(r),
              f"{a.peak_mb:.0f} / {b.peak_mb:.0f} MB" if a.rss_kb and b.rss_kb else "-")
    t.add("bare Typer hello-world (scale)", "`python hello.py`", run.ms(res["hello"]), "-", "-",
          "-", "-", f"{res['hello'].peak_mb:.0f} MB")
    o = run.Table("What each command printed (read-only commands, once)",
                  ["command", "pipectl", "crm.cli"])
    for label, (p, c) in sizes.items():
        o.add(label, p, c)
    lines = [
        f"Machine: {run.machine()}",
        f"pipectl commit: {git_commit()}, run as `{run.PIPECTL}` ({install_kind()}); "
        f"crm.cli: `{binary}` (working directory "
        f"`{os.getcwd()}`)",
        f"pipectl database: `{pip_src.name}` ({deals:,} generated deals); crm.cli database: "
        f"{describe_crm_db(crm_read)}",
        f"Run: {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC; load average (1/5/15 min) "
        f"{load_before} before, {load_after} after",
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
                   help="crm.cli's database of 1,000 deals (made by --seed)")
    p.add_argument("--crm-cwd", type=Path, default=None,
                   help="working directory for crm.cli (default: the nearest folder above "
                        "the binary that holds node_modules)")
    p.add_argument("--seed", action="store_true",
                   help="(re)create --crm-db from pipectl's generated database, then measure")
    p.add_argument("--seed-only", action="store_true", help="seed, do not measure")
    p.add_argument("--reps", type=int, default=15, help="runs per command (default 15)")
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
    if args.seed or args.seed_only:
        seed(binary, crm_db, run.generated_db(args.deals))
        if args.seed_only:
            print(describe_crm_db(crm_db))
            return 0
    if not crm_db.exists():
        print(f"{crm_db} does not exist: run once with --seed", file=sys.stderr)
        return 2
    if shutil.which("git") is None:
        print("git is needed to name the commit measured", file=sys.stderr)
        return 2
    print(compare(binary, crm_db, args.reps, args.deals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
