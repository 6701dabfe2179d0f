"""Issue 16's cost to the reports: undone events ignored (schema 11's partial indexes and
filters) and the search texts with notes (schema 12), against an older tree.

    git worktree add /tmp/old 5e59ef7
    python benchmarks/generate.py --deals 50000 --seed 1 /tmp/pb/new.db
    PYTHONPATH=/tmp/old/src python /tmp/old/benchmarks/generate.py --deals 50000 --seed 1 \\
        /tmp/pb/old.db
    python benchmarks/issue16.py --old-src /tmp/old/src --old-db /tmp/pb/old.db \\
        --new-db /tmp/pb/new.db [--rounds 5]

Each command runs as a whole process, old and new alternately, at a fixed PIPECTL_NOW; the
medians are printed as a Markdown table, then `log --since 7d` on the new file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = [["report", "--json"], ["forecast", "--json"], ["stale", "--json"],
            ["calibrate", "--json"], ["list", "-n", "20", "--json"]]


def _time(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipectl", *args], env=env,
                          capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{args}: {done.stderr.decode()[-300:]}")
    return took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old-src", required=True)
    p.add_argument("--old-db", required=True)
    p.add_argument("--new-db", required=True)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    env = dict(os.environ, PIPECTL_NOW="2026-12-07T09:00:00Z", TZ="UTC")
    old = dict(env, PYTHONPATH=a.old_src)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(a.rounds):
        for c in COMMANDS:
            key = " ".join(c)
            times.setdefault((key, "old"), []).append(_time(["--db", a.old_db, *c], old))
            times.setdefault((key, "new"), []).append(_time(["--db", a.new_db, *c], env))
    print("| command | before | after | after/before |\n|---|---|---|---|")
    for c in COMMANDS:
        key = " ".join(c)
        o, n = (statistics.median(times[(key, w)]) for w in ("old", "new"))
        print(f"| `{key}` | {o:.2f} s | {n:.2f} s | {n / o:.2f}x |")
    log = [_time(["--db", a.new_db, "log", "--since", "7d", "--json"], env)
           for _ in range(a.rounds)]
    print(f"\n`log --since 7d --json`: {statistics.median(log):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
