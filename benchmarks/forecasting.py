"""Time `pipectl forecast --range` and `pipectl calibrate`, and check that start-up did not move.

The three speed goals of the forecasting issue:

- `forecast --range` with 10,000 runs over 100,000 open deals under 2 s (two cores);
- `calibrate` at 1M deals / 5M events within 2x of its own SQL run in the `sqlite3` shell;
- numpy imported only by these two commands: every other command starts as fast as before.

Usage (from the repository root, the project's venv active)::

    # ~100,000 deals open at the as-of moment (27 % of the generated deals are open)
    python benchmarks/generate.py --deals 369000 --seed 1 benchmarks/out/d369k.db
    python benchmarks/generate.py --deals 1000000 --seed 1 benchmarks/out/d1m.db

    python benchmarks/forecasting.py range --db benchmarks/out/d369k.db --reps 5
    python benchmarks/forecasting.py calibrate --db benchmarks/out/d1m.db --reps 3
    python benchmarks/forecasting.py startup --reps 15
    python benchmarks/forecasting.py all --range-db benchmarks/out/d369k.db \
        --calibrate-db benchmarks/out/d1m.db

``range``: `pipectl --db FILE forecast --range --runs 10000 --as-of MOMENT` as a whole process
(output thrown away), median of --reps after one warm-up; then the same forecast in this
process, timed by step (the learning SQL, the open-deals snapshot, thresholds, simulate, ...)
by wrapping the functions ``services.forecasting._simulate_at`` calls.

``calibrate``: `pipectl --db FILE calibrate --json --as-of MOMENT` as a whole process against
its own SQL replayed by the `sqlite3` shell (`-readonly`, output thrown away): the statements
are captured from a run of the command (``sqlite3.connect`` wrapped, each connection's
``set_trace_callback``; parameters come bound), from the connection's PRAGMAs to the COMMIT.
Interleaved, one warm-up each, median of --reps; then one shell run with `.timer on` to show
which statements take the time.

``startup``: `--version`, `--help`, `list -n 1`, `report --json` and `forecast --json` on a
small database, each a whole process, against the same commands with the tree of --old-rev
(default 812f8fe, the commit before the feature; extracted with `git archive` into
benchmarks/out/, never checked out), interleaved; and whether numpy was imported (read in the
process itself, at exit).

Every process runs without PYTHONDONTWRITEBYTECODE (with it, each start compiles pipectl
again). The load average is printed beside each section: take medians on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # benchmarks/run.py: its CAPTURE runs pipectl capturing every SQL statement

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PY = sys.executable
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
AS_OF = "2026-12-01T09:00:00Z"  # generate.py's history ends on 2026-11-27
OLD_REV = "812f8fe"


# Runs pipectl's console script and says on stderr, at exit, whether numpy was imported.
WATCH = r"""
import atexit, sys


@atexit.register
def said():
    sys.stderr.write(f"\nNUMPY={'numpy' in sys.modules} MODULES={len(sys.modules)}\n")


from pipectl.entry import main

sys.argv = ["pipectl", *sys.argv[1:]]
sys.exit(main())
"""


def environment(pythonpath: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def timed(argv: Sequence[str], env: dict[str, str] | None = None,
          stdin: Path | None = None) -> float:
    """Wall time of one whole process, its output thrown away; a failure stops the run."""
    fh = stdin.open("rb") if stdin else subprocess.DEVNULL
    try:
        t = time.perf_counter()
        done = subprocess.run(list(argv), stdin=fh, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env or environment())
        elapsed = time.perf_counter() - t
    finally:
        if stdin:
            fh.close()  # type: ignore[union-attr]
    if done.returncode or done.stderr.strip():
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()[:2000]}")
    return elapsed


def interleaved(cmds: dict[str, Callable[[], float]], reps: int, warmup: int = 1
                ) -> dict[str, list[float]]:
    """Each command run ``warmup`` times (not kept), then ``reps`` rounds of all in turn."""
    for _ in range(warmup):
        for command in cmds.values():
            command()
    out: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(reps):
        for name, command in cmds.items():
            out[name].append(command())
    return out


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], unit: str = "s") -> str:
    if unit == "ms":
        return f"{med(xs) * 1000:.0f} ms ({min(xs) * 1000:.0f}-{max(xs) * 1000:.0f})"
    return f"{med(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})"


def load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "?"


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    shell = subprocess.run([SQLITE3, "--version"], capture_output=True, text=True).stdout.split()
    import numpy

    return (f"{cores} CPUs ({cpu}), {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, numpy {numpy.__version__}, SQLite "
            f"{sqlite3.sqlite_version} (Python) / {shell[0] if shell else '?'} (sqlite3 shell)")


def pipectl(db: Path, *args: str) -> list[str]:
    return [PIPECTL, "--db", str(db), *args]


# ------------------------------------------------------------------ forecast --range


@contextmanager
def steps() -> Iterator[dict[str, float]]:
    """While open: the seconds spent in each step of ``forecast_range``, by wrapping the
    functions it calls (module attributes, looked up at call time)."""
    from pipectl.domain import forecasting as f
    from pipectl.reports import learning, snapshot
    from pipectl.services import forecasting as service

    spent: dict[str, float] = {}
    inside: list[str] = []  # the step running now: a nested call counts for the outer one
    saved: list[tuple[object, str, object]] = []

    def wrap(module: object, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if original is None:  # not in this version of pipectl
            return

        def timed_call(*args, **kwargs):
            if inside:
                return original(*args, **kwargs)
            inside.append(label)
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t
                inside.pop()

        saved.append((module, name, original))
        setattr(module, name, timed_call)

    wrap(service, "_analogs", "past periods (analogs)")
    wrap(learning, "learn", "learning SQL (reports.learning.learn)")
    wrap(learning, "open_deals", "the open deals (reports.learning.open_deals)")
    wrap(snapshot, "build", "open-deals snapshot (snapshot.build)")  # before 25eb99d
    wrap(f, "thresholds", "thresholds")
    wrap(f, "simulate", "simulate (numpy, threads)")
    wrap(service, "_won_in", "won so far (_won_in)")
    try:
        yield spent
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def tracer(into: list[tuple[float, str]]) -> Callable[[str], None]:
    return lambda sql: into.append((time.perf_counter(), sql))


def range_breakdown(db: Path, as_of: str, runs: int, reps: int) -> tuple[dict[str, list[float]],
                                                                         int, int]:
    """``forecast_range`` in this process, by step: {step: seconds per rep}, the deals open
    at ``as_of`` and how many of them were simulated (with a value and a timing)."""
    from pipectl.domain import forecasting as f
    from pipectl.services import forecasting as service
    from pipectl.store.db import connect

    simulated = [0]
    original = f.thresholds

    def counting(deals, today, ends):
        simulated[0] = len(deals.value_minor)
        return original(deals, today, ends)

    out: dict[str, list[float]] = {}
    open_deals = 0
    for rep in range(reps + 1):  # the first is a warm-up
        conn = connect(db, read_only_ok=True, now=as_of)
        trace: list[tuple[float, str]] = []
        conn.set_trace_callback(tracer(trace))
        f.thresholds = counting
        try:
            periods = service.range_periods("month", as_of, None, None)
            with steps() as spent:
                t = time.perf_counter()
                found = service.forecast_range(conn, as_of, "month", periods, runs=runs)
                total = time.perf_counter() - t
        finally:
            f.thresholds = original
            conn.close()
        open_deals = found.basis.deals
        if rep == 0:
            continue
        spent["other (rows -> OpenDeals in Python, quantiles)"] = total - sum(spent.values())
        spent["total (forecast_range)"] = total
        trace.append((t + total, ""))
        for (start, sql), (end, _) in itertools.pairwise(trace):
            label = next((name for name, pattern in STATEMENTS if pattern.search(sql)), None)
            if label is not None:
                spent[label] = spent.get(label, 0.0) + end - start
        for k, v in spent.items():
            out.setdefault(k, []).append(v)
    return out, open_deals, simulated[0]


# The statements of forecast --range worth naming (trace callback: from one statement's start
# to the next one's, so with the Python that reads its rows).
STATEMENTS = [
    ("SQL: learn's decided deals (CREATE TEMP TABLE learn_N)",
     re.compile(r"CREATE TEMP TABLE learn_")),
    ("SQL: learn's indexes on it", re.compile(r"CREATE (UNIQUE )?INDEX temp\.learn_")),
    ("SQL: learn's stages (STAGES_SQL)", re.compile(r"^\s*WITH e AS")),
    ("SQL: learn's slips (SLIPS_SQL)", re.compile(r"julianday\(x\.close_date\)")),
    ("SQL: learn's new-business windows (FRESH_SQL, all)",
     re.compile(r"FROM learn_\d+\s+WHERE won = 1")),
    ("SQL: learn's counted stages and slips, kept at write time (outcome_figures)",
     re.compile(r"FROM outcome_figures")),
    ("SQL: learn's new-business windows, kept at write time (deal_outcomes, all)",
     re.compile(r"FROM deal_outcomes")),
    ("SQL: the snapshot's temp table (CREATE TEMP TABLE snap_N)",
     re.compile(r"CREATE TEMP TABLE snap_")),
    ("SQL: the open deals read from it", re.compile(r"FROM snap_\d+ WHERE status = 'open'")),
]


def numpy_import(reps: int = 5) -> float:
    """What the first --range in a process pays for numpy (calibrate needs none): a fresh
    interpreter importing it, less one doing nothing (medians)."""
    env = environment()
    res = interleaved({"numpy": lambda: timed([PY, "-c", "import numpy"], env),
                       "pass": lambda: timed([PY, "-c", "pass"], env)}, reps)
    return med(res["numpy"]) - med(res["pass"])


def section_range(db: Path, as_of: str, runs: int, reps: int) -> str:
    lines = [f"### `forecast --range --runs {runs}` on {db.name} (as of {as_of})", "",
             f"load before: {load()}", ""]
    argv = pipectl(db, "forecast", "--range", "--runs", str(runs), "--as-of", as_of)
    whole = interleaved({"range": lambda: timed(argv)}, reps)["range"]
    parts, open_deals, simulated = range_breakdown(db, as_of, runs, reps)
    lines += [f"{open_deals:,} deals open at the as-of moment; {simulated:,} simulated (the "
              "others have no value, or are older than any win their history saw).", "",
              "| what | median (min-max) |", "|---|---|",
              f"| `pipectl --db {db.name} forecast --range --runs {runs}`, whole process, "
              f"{reps} runs | **{spread(whole)}** |"]
    for name, xs in parts.items():
        if name.startswith("SQL:"):
            lines.append(f"| - of which {name[5:]} | {spread(xs)} |")
        else:
            lines.append(f"| in process: {name} | {spread(xs)} |")
    lines.append(f"| numpy's import, paid once by the whole process | "
                 f"{numpy_import() * 1000:.0f} ms |")
    lines += ["", f"load after: {load()}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ calibrate


def captured_sql(argv: Sequence[str], target: Path) -> Path:
    """The statements the pipectl command ``argv`` (without the executable) runs, as a
    script for the sqlite3 shell (``.bail on``: the replay stops at a failing statement)."""
    raw = target.with_suffix(".raw.sql")
    subprocess.run([PY, "-c", run.CAPTURE, *argv], check=True, stdout=subprocess.DEVNULL,
                   env={**environment(), "CAPTURE_TO": str(raw)})
    target.write_text(".bail on\n" + raw.read_text())
    raw.unlink()
    return target


def slowest_statements(db: Path, script: Path, top: int = 4) -> list[tuple[float, str]]:
    """One shell run with `.timer on`: the ``top`` statements by wall time."""
    text = ".timer on\n" + script.read_text()
    done = subprocess.run([SQLITE3, "-readonly", str(db)], input=text, capture_output=True,
                          text=True, check=True, env=environment())
    times = [float(line.split()[3]) for line in done.stdout.splitlines()
             if line.startswith("Run Time: real")]
    body = script.read_text().split(";\n")
    body = [s.strip() for s in body if s.strip() and s.strip() != ".bail on"]
    body = [s.removeprefix(".bail on\n") for s in body]
    pairs = sorted(zip(times, body, strict=False), reverse=True)[:top]
    return [(t, " ".join(s.split())[:90]) for t, s in pairs]


def section_calibrate(db: Path, as_of: str, reps: int) -> str:
    lines = [f"### `calibrate --json` on {db.name} (as of {as_of})", "",
             f"load before: {load()}", ""]
    args = ["--db", str(db), "calibrate", "--json", "--as-of", as_of]
    with tempfile.TemporaryDirectory() as tmp:
        script = captured_sql(args, Path(tmp) / "calibrate.sql")
        n = sum(1 for line in script.read_text().splitlines() if line.rstrip().endswith(";"))
        shell = [SQLITE3, "-readonly", str(db)]
        res = interleaved({"pipectl": lambda: timed([PIPECTL, *args]),
                           "shell": lambda: timed(shell, stdin=script)}, reps)
        slow = slowest_statements(db, script)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    deals, events = conn.execute(
        "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM events)").fetchone()
    conn.close()
    r = med(res["pipectl"]) / med(res["shell"])
    lines += [f"{deals:,} deals, {events:,} events; {n} statements captured.", "",
              "| what | median (min-max) |", "|---|---|",
              f"| `pipectl --db {db.name} calibrate --json`, whole process, {reps} runs | "
              f"**{spread(res['pipectl'])}** |",
              f"| its statements in `sqlite3 -readonly`, whole process | "
              f"{spread(res['shell'])} |",
              f"| pipectl / shell | **{r:.2f}x** (goal <= 2x) |", "",
              "Slowest statements in the shell (one run, `.timer on`):", ""]
    lines += [f"- {t:.2f} s: `{s}...`" for t, s in slow]
    lines += ["", f"load after: {load()}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ start-up


def old_tree(rev: str) -> Path:
    """The ``src`` of ``rev``, extracted once into benchmarks/out/ (nothing checked out)."""
    dest = OUT / f"src-{rev}"
    if not (dest / "src" / "pipectl" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def watched(argv: Sequence[str], env: dict[str, str]) -> tuple[bool, int]:
    """Whether the pipectl command ``argv`` (without the executable) imported numpy, and
    how many modules it had at exit."""
    done = subprocess.run([PY, "-c", WATCH, *argv], capture_output=True, text=True, env=env)
    tail = done.stderr.strip().splitlines()[-1]
    said = dict(part.split("=") for part in tail.split())
    return said["NUMPY"] == "True", int(said["MODULES"])


def section_startup(small: Path, old: Path, rev: str, reps: int) -> str:
    new_env, old_env = environment(), environment(str(old))
    # the old tree's own demo: a file of a newer schema is refused by an older pipectl
    small_old = OUT / f"demo_{rev}.db"
    small_old.unlink(missing_ok=True)
    subprocess.run([PIPECTL, "demo", "--path", str(small_old)], check=True,
                   stdout=subprocess.DEVNULL, env=old_env)
    cmds = {
        "--version": ["--version"],
        "--help": ["--help"],
        "list -n 1": ["--db", "{small}", "list", "-n", "1"],
        "report --json": ["--db", "{small}", "report", "--json"],
        "forecast --json": ["--db", "{small}", "forecast", "--json"],
    }

    def on(db: Path, args: list[str]) -> list[str]:
        return [a.replace("{small}", str(db)) for a in args]

    lines = [f"### Start-up: HEAD against {rev} (small database: {small.name})", "",
             f"load before: {load()}", ""]
    runs: dict[str, Callable[[], float]] = {}
    for name, args in cmds.items():
        runs[f"new {name}"] = lambda a=on(small, args): timed([PIPECTL, *a], new_env)
        runs[f"old {name}"] = lambda a=on(small_old, args): timed([PIPECTL, *a], old_env)
    res = interleaved(runs, reps)
    lines += [f"| command | before ({rev}) | after (this tree) | after / before | numpy "
              "imported | modules at exit (before / after) |", "|---|---|---|---|---|---|"]
    for name, args in cmds.items():
        numpy_new, mods_new = watched(on(small, args), new_env)
        _, mods_old = watched(on(small_old, args), old_env)
        r = med(res[f"new {name}"]) / med(res[f"old {name}"])
        lines.append(f"| `pipectl {name}` | {spread(res[f'old {name}'], 'ms')} | "
                     f"{spread(res[f'new {name}'], 'ms')} | {r:.2f}x | "
                     f"{'**yes**' if numpy_new else 'no'} | {mods_old} / {mods_new} |")
    checks = {"calibrate --json": ["--db", str(small), "calibrate", "--json"],
              "forecast --range --json": ["--db", str(small), "forecast", "--range", "--json"]}
    for name, args in checks.items():
        numpy_new, mods_new = watched(args, new_env)
        lines.append(f"| `pipectl {name}` (new) | - | - | - | {'yes' if numpy_new else 'no'} "
                     f"| - / {mods_new} |")
    lines += ["", f"load after: {load()}", ""]
    return "\n".join(lines)


def small_db(path: Path | None) -> Path:
    if path is not None:
        return path
    path = OUT / "demo.db"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([PIPECTL, "demo", "--path", str(path)], check=True,
                       stdout=subprocess.DEVNULL, env=environment())
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("range", "calibrate", "startup", "all"))
    p.add_argument("--db", type=Path, help="the database of `range` or `calibrate`")
    p.add_argument("--range-db", type=Path, help="with `all`: the database of `range`")
    p.add_argument("--calibrate-db", type=Path, help="with `all`: the database of `calibrate`")
    p.add_argument("--small-db", type=Path,
                   help="start-up's database (default: a `pipectl demo` in benchmarks/out/)")
    p.add_argument("--as-of", default=AS_OF, help=f"the as-of moment (default {AS_OF})")
    p.add_argument("--runs", type=int, default=10_000, help="--range's runs (default 10000)")
    p.add_argument("--reps", type=int, help="timed runs of each command after a warm-up "
                   "(default: range 5, calibrate 3, startup 15)")
    p.add_argument("--old-rev", default=OLD_REV,
                   help=f"start-up's commit to compare with (default {OLD_REV})")
    a = p.parse_args(argv)
    range_db = a.db if a.what == "range" else a.range_db
    calibrate_db = a.db if a.what == "calibrate" else a.calibrate_db
    for db in (range_db, calibrate_db, a.small_db):
        if db is not None and not db.exists():
            p.error(f"{db} does not exist (benchmarks/generate.py makes one)")
    print(f"Machine: {machine()}\n")
    if a.what in ("range", "all"):
        if range_db is None:
            p.error("range needs --db (all: --range-db)")
        print(section_range(range_db, a.as_of, a.runs, a.reps or 5))
    if a.what in ("calibrate", "all"):
        if calibrate_db is None:
            p.error("calibrate needs --db (all: --calibrate-db)")
        print(section_calibrate(calibrate_db, a.as_of, a.reps or 3))
    if a.what in ("startup", "all"):
        print(section_startup(small_db(a.small_db), old_tree(a.old_rev), a.old_rev,
                              a.reps or 15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
