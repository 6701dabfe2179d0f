"""The reports read from the read models against one full scan of `events` and against the
replay they replace, side by side, interleaved, on one database (issue 13).

    python benchmarks/read_models.py                       # 100k deals, seed 1
    python benchmarks/read_models.py --deals 1000000 --reps 3
    python benchmarks/read_models.py --db FILE --only report,forecast

For each command: the median wall time of a whole process (`pipectl CMD`, output discarded),
its peak memory (the child's maximum resident set size), the same command with
`PIPECTL_REPLAY=1` (the replay of the events, as before the read models), and the `sqlite3`
shell running `select count(*), sum(length(kind)), max(at) from events` (one full scan), all
interleaved so that the machine's load falls on each alike. Prints a Markdown table of
medians and ratios. The database is generated (`generate.py --seed 1`) when absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
SCAN = "select count(*), sum(length(kind)), max(at) from events;\n"
AS_OF = "2026-12-01T09:00:00Z"

COMMANDS = {
    "report": ["report"],
    "report --json": ["report", "--json"],
    "report --month": ["report", "--month"],
    "report --by owner": ["report", "--by", "owner"],
    "report --as-of 2026-06-01": ["report", "--as-of", "2026-06-01"],
    "forecast": ["forecast"],
    "forecast --json": ["forecast", "--json"],
    "stale": ["stale"],
    "stale --json": ["stale", "--json"],
    "next": ["next"],
    "next --json": ["next", "--json"],
    "board": ["board"],
    "board --json": ["board", "--json"],
}


def run(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[float, int]:
    """(wall seconds, peak resident set size in MB) of one whole process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    if stdin:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        assert proc.stderr is not None
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().strip()}")
    return elapsed, usage.ru_maxrss // 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deals", type=int, default=100_000)
    p.add_argument("--db", type=Path)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--only", help="comma-separated command names (default: all)")
    p.add_argument("--no-replay", action="store_true", help="leave out the replay runs")
    a = p.parse_args(argv)
    db = a.db or HERE / "out" / f"d{a.deals}.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--deals", str(a.deals),
                        "--seed", "1", str(db)], check=True)
    env = {**os.environ, "PIPECTL_NOW": AS_OF, "COLUMNS": "80"}
    replay = {**env, "PIPECTL_REPLAY": "1"}
    names = [n for n in COMMANDS if not a.only or n.split()[0] in a.only.split(",")
             or n in a.only.split(",")]
    times: dict[str, list[float]] = {"scan": []}
    peaks: dict[str, int] = {}
    for _ in range(a.reps + 1):  # the first round warms the page cache and is dropped
        times["scan"].append(run([SQLITE3, str(db)], env, SCAN)[0])
        for name in names:
            argv_ = [PIPECTL, "--db", str(db), *COMMANDS[name]]
            t, peak = run(argv_, env)
            times.setdefault(name, []).append(t)
            peaks[name] = max(peaks.get(name, 0), peak)
            if not a.no_replay:
                times.setdefault(f"{name} (replay)", []).append(run(argv_, replay)[0])
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    scan = med["scan"]
    load = os.getloadavg()
    print(f"{db.name}: {a.reps} runs each, interleaved, medians of whole processes; "
          f"load average at the end {load[0]:.1f}")
    print()
    print("| command | read models | / full scan | peak memory | replay | replay / read models |")
    print("|---|---|---|---|---|---|")
    print(f"| full scan of `events` (sqlite3 shell) | {scan * 1000:.0f} ms | 1.0x | | | |")
    for name in names:
        t = med[name]
        r = med.get(f"{name} (replay)")
        rcol = f"{r * 1000:.0f} ms | {r / t:.1f}x" if r else " | "
        print(f"| `pipectl {name}` | {t * 1000:.0f} ms | {t / scan:.1f}x | "
              f"{peaks[name]} MB | {rcol} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
