"""Issue 4: how long `pipectl import` of 100,000 rows takes, beside `sqlite3 .import`.

From the repository root, with the project's venv active::

    python benchmarks/import_100k.py              # 100,000 rows, 3 runs each
    python benchmarks/import_100k.py --rows 20000 --runs 5

The CSV comes from benchmarks/generate.py (realistic deals: stages, won and lost with close
times, several currencies, accents) and is cached in benchmarks/out/. Each run imports into a
fresh database in a fresh process; `sqlite3 .import` of the same file into a bare table is run
interleaved with it, so machine noise hits both alike. Prints wall-clock and CPU medians and
the peak resident memory (ru_maxrss) as a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"


def measure(cmd: list[str], stdin: str | None = None) -> tuple[float, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    csv_path = OUT / f"import_{args.rows}_seed1.csv"
    if not csv_path.exists():
        tmp = csv_path.with_suffix(".tmp.csv")
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--deals", str(args.rows),
                        "--seed", "1", "--csv", str(tmp)], check=True,
                       stdout=subprocess.DEVNULL)
        tmp.rename(csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    results: dict[str, list[tuple[float, float, float]]] = {"pipectl": [], "sqlite3": []}
    events = "?"
    with tempfile.TemporaryDirectory() as work:
        for i in range(args.runs):
            db = Path(work) / f"p{i}.db"
            bare = Path(work) / f"b{i}.db"
            results["pipectl"].append(measure([PIPECTL, "--db", str(db), "import",
                                               str(csv_path)]))
            results["sqlite3"].append(measure([SQLITE3, str(bare)],
                                              f".mode csv\n.import {csv_path} deals\n"))
            events = subprocess.run([SQLITE3, str(db), "SELECT count(*) FROM events"],
                                    capture_output=True, text=True).stdout.strip()
    print(f"{args.rows:,} rows, {size_mb:.1f} MB CSV, {events} events written; "
          f"median of {args.runs} runs; load average {os.getloadavg()[0]:.1f}\n")
    print("| command | wall | CPU | peak RSS |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        # ru_maxrss of children is the largest so far: pipectl runs first, so its row is its own
        rss = f"{rows[0][2]:.0f} MB" if name == "pipectl" else "-"
        print(f"| {name} | {wall:.2f} s | {cpu:.2f} s | {rss} |")
    pw = statistics.median(r[0] for r in results["pipectl"])
    sw = statistics.median(r[0] for r in results["sqlite3"])
    print(f"\nratio pipectl / sqlite3 .import: {pw / sw:.1f}x wall; "
          f"{args.rows / pw:,.0f} rows per second")


if __name__ == "__main__":
    main()
