#!/usr/bin/env python3
"""Before/after speed comparison of two pipectl installations, side by side in one run.

Made for issue 10 (pipelines as data): "before" is commit 586a045 (schema 3), "after" this
tree. Set up (paths under $PIPECTL_BENCH_DIR, default benchmarks/out/compare):

    git worktree add $DIR/base 586a045
    python3 -m venv $DIR/base/.venv && $DIR/base/.venv/bin/pip install -q -e $DIR/base
    python3 -m venv $DIR/after-venv && $DIR/after-venv/bin/pip install -q -e .
    $DIR/base/.venv/bin/python $DIR/base/benchmarks/generate.py $DIR/base-100k.db --deals 100000
    $DIR/after-venv/bin/python benchmarks/generate.py $DIR/after-100k.db --deals 100000
    $DIR/base/.venv/bin/python $DIR/base/benchmarks/generate.py --deals 100000 --csv $DIR/100k.csv
    (the same with --deals 1000000 for base-1m.db and after-1m.db; seed 1 is the default)

Every command runs in a fresh process, interleaved: for each round and each command, the
"before" run, then the "after" run, then the next command. Times are wall-clock (fork to
reap, the child reaped by a blocking wait4 so the time is exact: Popen.wait(timeout=...) polls
in steps of up to 50 ms, which quantised the start-up figures); the table gives median
(min-max) per side and the ratio of medians after/before, then the median CPU time (user +
system of the command's process and its children, from wait4) per side and its ratio, the
steadier figure when other work shares the machine, and the peak RSS.

Data (built once, as above):
    base-100k.db, base-1m.db     schema 3, base generator, seed 1
    after-100k.db, after-1m.db   schema 4, after generator, seed 1
    100k.csv                     import CSV, base generator, seed 1

The large databases are copied once per invocation into --work (read commands leave them
unchanged, but an "after" tree that gains a migration would otherwise upgrade the sources).
The small databases (one deal) are made once per side with that side's own `pipectl add`;
`add` and `advance 1` run on a fresh copy of that template each time (copied before the
timer starts). `import` runs into a database file that does not exist yet (removed before
each run, untimed). The "edges" group (issue 11: files written beside the database, db check)
runs on a copy of each side's 100k database: `export -o FILE` (CSV, and JSON with events) and
`db backup FILE` into a file removed before each run (untimed), and `db check`.

All runs: PIPECTL_NOW=2026-12-01T00:00:00Z, explicit --db, PIPECTL_DB unset, COLUMNS=120,
PYTHONDONTWRITEBYTECODE unset and PYTHONPYCACHEPREFIX=<work>/pycache (so both sides run from
byte-compiled modules without writing __pycache__ into the source trees). One untimed warm-up round
precedes the start-up group only (the large groups read files already in the page cache).

Usage:
    python3 benchmarks/compare_versions.py                  # everything, 5 rounds
    python3 benchmarks/compare_versions.py --rounds-1m 2    # fewer rounds at 1M
    python3 benchmarks/compare_versions.py --rounds-startup 15  # more rounds where cheap
    python3 benchmarks/compare_versions.py --groups startup,100k
    python3 benchmarks/compare_versions.py --groups edges --only "db check"
    python3 benchmarks/compare_versions.py --groups 1m --only stale,next --rounds-1m 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(os.environ.get("PIPECTL_BENCH_DIR",
                            Path(__file__).resolve().parent / "out" / "compare"))
NOW = "2026-12-01T00:00:00Z"
SIDES = ("before", "after")
LARGE_CMDS = (("report",), ("report", "--json"), ("forecast",), ("stale",), ("next",),
              ("board",))


@dataclass
class Sample:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds
    rss_kb: list[int] = field(default_factory=list)
    error: str | None = None  # "exit N: first error line"
    out_hash: str | None = None  # sha1 of stdout of the last successful run

    def cell(self) -> str:
        if self.error:
            return f"FAILED ({self.error})"
        if not self.times:
            return "-"
        med = statistics.median(self.times)
        return f"{fmt(med)} ({fmt(min(self.times))}-{fmt(max(self.times))})"

    def cpu_cell(self) -> str:
        return fmt(statistics.median(self.cpu)) if self.cpu and not self.error else "-"


def fmt(t: float) -> str:
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


BOX = re.compile(r"[\u2500-\u257f]")


def first_error_line(stderr: str, rc: int) -> str:
    lines = [BOX.sub("", ln).strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return "(no stderr)"
    if any(ln.startswith("Traceback") for ln in lines):
        return lines[-1]  # the exception itself
    lines = [ln for ln in lines if not ln.startswith(("Usage:", "Try '"))
             and ln.lower() not in ("error", "error:")] or lines
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0]


@dataclass
class Cmd:
    name: str
    argv: list[str]
    setup: object = None  # callable run before each run, untimed


class Runner:
    def __init__(self, work: Path, timeout: float) -> None:
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONDONTWRITEBYTECODE", "PIPECTL_DB", "PIPECTL_NOW")}
        self.env.update(PIPECTL_NOW=NOW, COLUMNS="120", PYTHONPYCACHEPREFIX=str(work / "pycache"),
                        PYTHONUNBUFFERED="1")
        self.timeout = timeout

    def once(self, cmd: Cmd, s: Sample, timed: bool) -> None:
        if s.error:
            return  # a side that failed is not run again
        if cmd.setup:
            cmd.setup()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=self.env)
            killed = threading.Event()

            def kill() -> None:
                killed.set()
                proc.kill()
            timer = threading.Timer(self.timeout, kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)  # blocks: exact, unlike wait(timeout)
            finally:
                timer.cancel()
            took = time.perf_counter() - started
            rc = proc.returncode = os.waitstatus_to_exitcode(status)
            if killed.is_set():
                s.error = f"timeout after {self.timeout:.0f} s"
                return
            if rc != 0:
                err.seek(0)
                s.error = f"exit {rc}: " + first_error_line(
                    err.read().decode(errors="replace"), rc)[:150]
                return
            if timed:
                s.times.append(took)
                s.cpu.append(usage.ru_utime + usage.ru_stime)
                s.rss_kb.append(usage.ru_maxrss)
                out.seek(0)
                s.out_hash = hashlib.sha1(out.read()).hexdigest()

    def group(self, title: str, pairs: list[tuple[Cmd, Cmd]], rounds: int, warmup: int,
              results: list) -> None:
        samples = [(Sample(), Sample()) for _ in pairs]
        t0 = time.time()
        for rnd in range(warmup + rounds):
            for (b, a), (sb, sa) in zip(pairs, samples, strict=False):
                self.once(b, sb, rnd >= warmup)
                self.once(a, sa, rnd >= warmup)
            print(f"  [{title}] round {rnd + 1}/{warmup + rounds} done "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        for (b, _), (sb, sa) in zip(pairs, samples, strict=False):
            results.append((title, b.name, sb, sa, rounds))


def copy_db(src: Path, dst: Path) -> None:
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm"), Path(f"{dst}-journal")):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)


def remover(path: Path):
    def rm() -> None:
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            p.unlink(missing_ok=True)
    return rm


def copier(src: Path, dst: Path):
    return lambda: copy_db(src, dst)


def counts(db: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return (con.execute("PRAGMA user_version").fetchone()[0],
                con.execute("SELECT count(*) FROM deals").fetchone()[0],
                con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        con.close()


def checkpoint(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before-venv", type=Path, default=BENCH / "base" / ".venv")
    p.add_argument("--after-venv", type=Path, default=BENCH / "after-venv")
    p.add_argument("--data", type=Path, default=BENCH, help="where the .db/.csv files are")
    p.add_argument("--work", type=Path, default=BENCH / "work")
    p.add_argument("--rounds", type=int, default=5, help="rounds per command (default 5)")
    p.add_argument("--rounds-startup", type=int, default=None,
                   help="rounds for the 1-deal commands (default: --rounds)")
    p.add_argument("--rounds-1m", type=int, default=None,
                   help="rounds at 1M deals (default: --rounds)")
    p.add_argument("--import-rounds", type=int, default=3)
    p.add_argument("--groups", default="startup,100k,1m,import,edges",
                   help="comma-separated subset of startup,100k,1m,import,edges")
    p.add_argument("--only", default="",
                   help="comma-separated command names to keep, e.g. 'stale,next,report --json'")
    p.add_argument("--timeout", type=float, default=900, help="per run, seconds")
    args = p.parse_args()
    groups = set(args.groups.split(","))
    rounds_1m = args.rounds_1m or args.rounds
    rounds_startup = args.rounds_startup or args.rounds
    pipectl = {"before": str(args.before_venv / "bin" / "pipectl"),
               "after": str(args.after_venv / "bin" / "pipectl")}
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    runner = Runner(work, args.timeout)
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    def keep(pairs: list) -> list:
        return [pr for pr in pairs if not only or pr[0].name in only]
    started = time.time()

    # --- header: what is being compared
    git = ["git", "--no-optional-locks", "-C", str(Path(__file__).resolve().parents[1])]
    head = subprocess.run([*git, "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()[:100]
    dirty = subprocess.run([*git, "diff", "HEAD", "--shortstat"], capture_output=True,
                           text=True).stdout.strip() or "clean"
    untracked = subprocess.run([*git, "ls-files", "--others", "--exclude-standard"],
                               capture_output=True, text=True).stdout.split()
    print(f"Run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"- before: `{pipectl['before']}`")
    print(f"- after: this tree (HEAD {head}; uncommitted: {dirty}; "
          f"{len(untracked)} untracked file(s)), `{pipectl['after']}`")
    print(f"- PIPECTL_NOW={NOW}; rounds: 1 deal {rounds_startup} (+1 untimed warm-up), "
          f"100k {args.rounds}, 1M {rounds_1m}, "
          f"import {args.import_rounds}; order in each round: before then after, "
          f"per command\n")

    # --- small databases, made once per side with that side's pipectl
    small: dict[str, Path] = {}
    for side in SIDES:
        tpl = work / f"{side}-small-template.db"
        remover(tpl)()
        proc = subprocess.run([pipectl[side], "--db", str(tpl), "add", "Template deal",
                               "--company", "Acme", "--value", "1200", "--currency", "EUR",
                               "--owner", "Anna"], env=runner.env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            print(f"  could not make the {side} small database: "
                  f"{first_error_line(proc.stderr, proc.returncode)}", file=sys.stderr)
        else:
            checkpoint(tpl)
        small[side] = tpl

    results: list = []

    if "startup" in groups:
        pairs = []
        for side_cmd in ("--version", "--help"):
            pairs.append(tuple(Cmd(side_cmd, [pipectl[s], "--db", str(small[s]), side_cmd])
                               for s in SIDES))
        listdb = {s: work / f"{s}-small-list.db" for s in SIDES}
        for s in SIDES:
            if small[s].exists():
                copy_db(small[s], listdb[s])
        pairs.append(tuple(Cmd("list", [pipectl[s], "--db", str(listdb[s]), "list"])
                           for s in SIDES))
        for name, argv in (("add X", ["add", "X"]), ("advance 1", ["advance", "1"])):
            pairs.append(tuple(
                Cmd(name, [pipectl[s], "--db", str(work / f"{s}-small-run.db"), *argv],
                    setup=copier(small[s], work / f"{s}-small-run.db"))
                for s in SIDES))
        runner.group("1 deal", keep(pairs), rounds_startup, 1, results)

    for label, size, rounds in (("100k", "100k", args.rounds), ("1M", "1m", rounds_1m)):
        if size not in groups:
            continue
        dbs = {}
        for side, prefix in (("before", "base"), ("after", "after")):
            src = args.data / f"{prefix}-{size}.db"
            dst = work / f"{side}-{size}.db"
            copy_db(src, dst)
            dbs[side] = dst
        pairs = [tuple(Cmd(" ".join(c), [pipectl[s], "--db", str(dbs[s]), *c]) for s in SIDES)
                 for c in LARGE_CMDS]
        runner.group(label, keep(pairs), rounds, 0, results)
        for side in SIDES:
            remover(dbs[side])()

    if "import" in groups and (not only or "import 100k.csv" in only):
        csv_path = args.data / "100k.csv"
        pairs = [tuple(
            Cmd("import 100k.csv", [pipectl[s], "--db", str(work / f"{s}-import.db"),
                                     "import", str(csv_path)],
                setup=remover(work / f"{s}-import.db"))
            for s in SIDES)]
        runner.group("empty db", pairs, args.import_rounds, 0, results)
        for s in SIDES:
            remover(work / f"{s}-import.db")()

    if "edges" in groups:
        dbs = {}
        for side, prefix in (("before", "base"), ("after", "after")):
            dbs[side] = work / f"{side}-edges-100k.db"
            copy_db(args.data / f"{prefix}-100k.db", dbs[side])
        outputs = []
        pairs = []
        for name, argv, out in (
                ("export -o F.csv", ["export", "-o"], "export.csv"),
                ("export --format json --events -o F.json",
                 ["export", "--format", "json", "--events", "-o"], "export.json"),
                ("db backup F", ["db", "backup"], "backup.db")):
            files = {s: work / f"{s}-{out}" for s in SIDES}
            outputs.extend(files.values())
            pairs.append(tuple(Cmd(name, [pipectl[s], "--db", str(dbs[s]), *argv, str(files[s])],
                                   setup=remover(files[s])) for s in SIDES))
        pairs.append(tuple(Cmd("db check", [pipectl[s], "--db", str(dbs[s]), "db", "check"])
                           for s in SIDES))
        runner.group("100k", keep(pairs), args.rounds, 0, results)
        for path in (*outputs, *dbs.values()):
            remover(path)()

    # --- the table
    print("| data | command | rounds | before median (min-max) | after median (min-max) "
          "| after/before | CPU before | CPU after | CPU after/before | peak RSS before, after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    differ = []
    for title, name, sb, sa, rounds in results:
        if sb.error or sa.error or not sb.times or not sa.times:
            r = rc = "n/a"
            rss = "-"
        else:
            r = f"{statistics.median(sa.times) / statistics.median(sb.times):.2f}"
            rc = f"{statistics.median(sa.cpu) / statistics.median(sb.cpu):.2f}"
            rss = f"{max(sb.rss_kb) // 1024} MB, {max(sa.rss_kb) // 1024} MB"
        print(f"| {title} | `{name}` | {rounds} | {sb.cell()} | {sa.cell()} | {r} "
              f"| {sb.cpu_cell()} | {sa.cpu_cell()} | {rc} | {rss} |")
        if sb.out_hash and sa.out_hash and sb.out_hash != sa.out_hash:
            differ.append(f"{title} `{name}`")
    print()
    print("stdout identical on both sides except for: " + (", ".join(differ) or "none")
          + " (the add/advance/import lines may differ legitimately)")
    print(f"\n(ran in {time.time() - started:.0f} s; load average at end "
          f"{os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
