"""pipectl on a PostgreSQL server against pipectl on a file, side by side (issue 14).

    python benchmarks/postgres.py DB [--csv FILE] [--url postgresql://postgres@127.0.0.1/postgres]
                                  [--runs 3]

DB is a pipectl file (benchmarks/generate.py makes one). The script copies it into a fresh
database on the server (``pipectl db copy``, timed), then runs each read command on the file
and on the server, interleaved, and reports the median wall time and peak memory (GNU time's
maximum resident set) of each. With --csv, it also times importing that file into a new file
and into a new server database. Every server database it makes is dropped at the end.
Figures go to docs/performance.md. Issue 14's own yardsticks (report and forecast against
the same SQL in psql, import against \\copy, at 1M deals) are ``benchmarks/postgres_sql.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

NOW = "2026-12-01T09:00:00Z"
READS = (
    ("report", ["report"]),
    ("report --json", ["report", "--json"]),
    ("forecast --json", ["forecast", "--json"]),
    ("stale --json", ["stale", "--json"]),
    ("next --json", ["next", "--json"]),
    ("board --json", ["board", "--json"]),
    ("list --json -n 100", ["list", "--json", "--limit", "100"]),
    ("list --json --status all", ["list", "--json", "--status", "all"]),
    ("export", ["export"]),
)


def pipectl() -> list[str]:
    found = shutil.which("pipectl", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pipectl"]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in MB) of one run; its output thrown away."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", report.name, *args],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
        return seconds, int(report.read().strip().splitlines()[-1]) // 1024


def database(admin: str, name: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import psycopg

    env = {**os.environ, "PIPECTL_NOW": NOW, "PYTHONDONTWRITEBYTECODE": "",
           "PIPECTL_BUSY_TIMEOUT_MS": "600000"}
    env.pop("PYTHONDONTWRITEBYTECODE")
    made: list[str] = []

    def fresh() -> str:
        name = f"pipectl_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return database(args.url, name)

    run = pipectl()
    try:
        server = fresh()
        seconds, mb = timed([*run, "--db", str(args.db), "db", "copy", "--to", server], env)
        print(f"db copy {args.db} -> server: {seconds:.1f} s, {mb} MB")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"load average {os.getloadavg()[0]:.2f}")
        print("| command | file | server | server / file | peak MB file / server |")
        print("|---|---|---|---|---|")
        for label, cmd in READS:
            on_file, on_server = [], []
            mem_file = mem_server = 0
            for _ in range(args.runs):
                s, m = timed([*run, "--db", str(args.db), *cmd], env)
                on_file.append(s)
                mem_file = max(mem_file, m)
                s, m = timed([*run, "--db", server, *cmd], env)
                on_server.append(s)
                mem_server = max(mem_server, m)
            f, v = statistics.median(on_file), statistics.median(on_server)
            print(f"| `{label}` | {f * 1000:,.0f} ms | {v * 1000:,.0f} ms | {v / f:.2f}x | "
                  f"{mem_file} / {mem_server} |", flush=True)
        if args.csv:
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / "import.db"
                s, m = timed([*run, "--db", str(target), "import", str(args.csv)], env)
                print(f"import {args.csv} into a new file: {s:.1f} s, {m} MB")
            s, m = timed([*run, "--db", fresh(), "import", str(args.csv)], env)
            print(f"import {args.csv} into a new server database: {s:.1f} s, {m} MB")
        print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
