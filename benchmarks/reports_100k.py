"""Time the report commands (issue 3) on a generated 100,000-deal database.

    python benchmarks/reports_100k.py               # 7 runs of each command
    python benchmarks/reports_100k.py --runs 3 --deals 10000
    python benchmarks/reports_100k.py --only "report --by" --only "report"   # some commands

The database is made once by benchmarks/generate.py (seed 1) and cached in benchmarks/out/.
Each command runs as a fresh process (start-up included), with PIPECTL_NOW fixed at the end of
the generated history; the table shows wall-clock min / median / max and the median CPU time
(user + system, all threads), which a busy machine disturbs much less than wall time. Then the
passes of `pipectl report` are timed one by one, in-process, by CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
NOW = "2026-11-27T12:00:00Z"
COMMANDS = [
    ["report"], ["report", "--json"], ["report", "--month"], ["report", "--owner", "Anna"],
    ["report", "--as-of", "2025-06-01"], ["report", "--explain"], ["forecast"], ["stale"],
    ["next"], ["report", "--by", "owner"], ["report", "--quarter", "--by", "owner"],
    ["report", "--by", "owner", "--json"], ["report", "--by", "source"],
    ["report", "--by", "pipeline"],
]


def database(deals: int) -> Path:
    path = HERE / "out" / f"reports_{deals}_seed1.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(path),
                        "--deals", str(deals)], check=True)
    return path


def run(db: Path, argv: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PIPECTL_DB": str(db), "PIPECTL_NOW": NOW}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(BIN / "pipectl"), *argv], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def passes(db: Path) -> list[tuple[str, float]]:
    """CPU seconds of each pass of `pipectl report` (all time, as of NOW), run in sequence."""
    from pipectl.reports import periods, snapshot, summary
    from pipectl.reports.scope import scope
    from pipectl.store.db import connect

    conn = connect(db)
    window = periods.window(None, None)
    p = {"ws": window.start_iso(), "we": window.end_iso(), "as_of": NOW, "pipeline_id": None}
    out = []
    t = time.process_time()
    table = snapshot.build(conn, NOW)
    out.append(("as-of snapshot (TEMP table, one row per deal)", time.process_time() - t))
    t = time.process_time()
    summary._stays(conn, p, None, scope(conn, NOW))
    out.append(("completed stays + medians (on the 2nd core in `report`)",
                time.process_time() - t))
    snapshot.drop(conn, table)
    t = time.process_time()
    summary.build(conn, NOW, window)
    out.append(("whole report, in-process (both cores)", time.process_time() - t))
    conn.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--only", action="append", metavar="COMMAND",
                    help="only the commands exactly so (e.g. 'report --by owner'); repeatable; "
                    "the per-pass table is then left out")
    args = ap.parse_args()
    db = database(args.deals)
    print(f"{args.deals:,} deals; load average at start: {os.getloadavg()[0]:.1f}\n")
    print("| command | wall min | wall median | wall max | CPU median |")
    print("|---|---|---|---|---|")
    chosen = [a for a in COMMANDS if not args.only or " ".join(a) in args.only]
    for argv in chosen:
        samples = [run(db, argv) for _ in range(args.runs)]
        walls = sorted(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        print(f"| `pipectl {' '.join(argv)}` | {walls[0]:.2f} s | "
              f"{statistics.median(walls):.2f} s | {walls[-1]:.2f} s | {cpu:.2f} s |",
              flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}\n")
    if args.only:
        return 0
    print("| pass of `pipectl report` | CPU |")
    print("|---|---|")
    for label, seconds in passes(db):
        print(f"| {label} | {seconds:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
