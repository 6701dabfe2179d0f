"""Time the hand-written SQL baselines (benchmarks/sql/) against one full scan of `events`
and against the pipectl command, side by side, interleaved, on one database (issue 13).

    python benchmarks/sql_baselines.py                 # 100k deals, seed 1 (generated if absent)
    python benchmarks/sql_baselines.py --db FILE --reps 7

Every figure is the median wall time of a whole process: the `sqlite3` shell running the
baseline script (its parameters set with `.parameter set`, output discarded), the shell
running `select count(*), sum(length(kind)), max(at) from events`, and `pipectl CMD --json`.
The shell opens the database `-readonly`: a baseline writes only TEMP tables.
Prints a Markdown table of medians and ratios.
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
sys.path.insert(0, str(HERE / "sql"))
import baselines  # noqa: E402

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
SCAN = "select count(*), sum(length(kind)), max(at) from events;\n"
AS_OF = "2026-12-01T09:00:00Z"


def timed(cmd: list[str], stdin: str | None = None) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, text=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return elapsed


def commands(db: Path, as_of: str) -> dict[str, tuple[list[str], str]]:
    """name -> (pipectl argv, baseline shell script)."""
    out = {}
    for name in baselines.COMMANDS:
        argv = [PIPECTL, "--db", str(db), name, "--json"]
        if name != "board":
            argv += ["--as-of", as_of]
        values = baselines.params(name, as_of, limit=50 if name == "stale" else 20)
        if name in ("stale", "next"):
            argv += ["--limit", str(values["limit"])]
        out[name] = (argv, baselines.shell_script(name, values))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=HERE / "out" / "d100000.db")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--as-of", default=AS_OF)
    a = p.parse_args(argv)
    if not a.db.exists():
        a.db.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--deals", "100000",
                        "--seed", "1", str(a.db)], check=True)
    os.environ["PIPECTL_NOW"] = a.as_of
    cmds = commands(a.db, a.as_of)
    times: dict[str, list[float]] = {"scan": []}
    for name in cmds:
        times[f"{name}-sql"], times[name] = [], []
    for _ in range(a.reps + 1):  # the first round warms the page cache and is dropped
        times["scan"].append(timed([SQLITE3, "-readonly", str(a.db)], SCAN))
        for name, (pipectl_argv, script) in cmds.items():
            times[f"{name}-sql"].append(timed([SQLITE3, "-readonly", str(a.db)], script))
            times[name].append(timed(pipectl_argv))
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    load = os.getloadavg()
    print(f"{a.db.name}: {a.reps} runs each, interleaved, medians; load average before "
          f"the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n")
    print("| command | pipectl `--json` | best SQL (`sqlite3` shell) | full scan of events "
          "| pipectl / SQL | SQL / scan | pipectl / scan |")
    print("|---|---|---|---|---|---|---|")
    scan = med["scan"]
    for name in cmds:
        own, sql = med[name], med[f"{name}-sql"]
        print(f"| `{name}` | {own * 1000:.0f} ms | {sql * 1000:.0f} ms | {scan * 1000:.0f} ms "
              f"| {own / sql:.1f}x | {sql / scan:.1f}x | {own / scan:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
