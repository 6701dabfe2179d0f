"""Shell completion's cost: a Tab (the completion process) and start-up with and without it.

    python benchmarks/completion.py tab --db demo.db --db d50k.db [--runs 21]
    python benchmarks/completion.py startup --tree /tmp/before/src --tree /tmp/after/src \
        --db demo.db [--runs 21]

``tab`` times the process a bash Tab runs (``_PIPECTL_COMPLETE=complete_bash``) for a set of
lines on each database, beside ``python -c pass`` and ``pipectl --version``. ``startup`` times
``pipectl --version``, ``--help`` and ``list -n 1`` of each source tree (put first on
PYTHONPATH), the trees' runs interleaved so that both meet the same load. Medians of
``--runs`` runs after one warm-up, in milliseconds: wall time, and the CPU time (user + system)
the process used, which a busy machine inflates much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

RUN = "import sys\nfrom pipectl.entry import main\nsys.argv[0] = 'pipectl'\nsys.exit(main())"

LINES = (
    "pipectl adv",  # a command's name
    "pipectl advance 12 --",  # its options
    "pipectl show 12",  # deal ids (with names for zsh and fish)
    "pipectl list --owner ",  # owners
    "pipectl advance 12 --to ",  # the deal's pipeline's stages
    "pipectl lose 12 --reason ",  # lost reasons
    "pipectl add x --currency ",  # currencies
)


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0,):
        raise SystemExit(f"{argv}: exit {proc.returncode}: {proc.stderr.decode()[-300:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(cases: dict[str, tuple[list[str], dict[str, str]]], runs: int
            ) -> dict[str, tuple[float, float]]:
    """Each case's median wall and CPU time in ms, the cases interleaved run by run."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv, env in cases.values():
        once(argv, env)  # warm-up: byte-code compiled, files in the page cache
    for _ in range(runs):
        for name, (argv, env) in cases.items():
            times[name].append(once(argv, env))
    return {name: (statistics.median(w for w, _ in t) * 1000,
                   statistics.median(c for _, c in t) * 1000) for name, t in times.items()}


def tab(args: argparse.Namespace) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL_", "_PIPECTL"))}
    for db in args.db:
        env = {**base, "PIPECTL_DB": db}
        cases = {"python -c pass": ([sys.executable, "-c", "pass"], env),
                 "pipectl --version": ([sys.executable, "-c", RUN, "--version"], env)}
        for line in LINES:
            cases[f"Tab: {line}"] = ([sys.executable, "-c", RUN], {
                **env, "_PIPECTL_COMPLETE": "complete_bash", "_PIPECTL_LINE": line})
        print(f"\n{db} (median of {args.runs})")
        for name, (wall, cpu) in medians(cases, args.runs).items():
            print(f"  {name:40} {wall:7.1f} ms wall {cpu:7.1f} ms CPU")


def startup(args: argparse.Namespace) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL_", "_PIPECTL"))}
    cases = {}
    for tree in args.tree:
        env = {**base, "PYTHONPATH": tree, "PIPECTL_DB": args.db}
        for what in (["--version"], ["--help"], ["list", "-n", "1"]):
            cases[f"{tree}: pipectl {' '.join(what)}"] = ([sys.executable, "-c", RUN, *what],
                                                          env)
    print(f"(median of {args.runs}, interleaved)")
    for name, (wall, cpu) in medians(cases, args.runs).items():
        print(f"  {name:60} {wall:7.1f} ms wall {cpu:7.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tab")
    t.add_argument("--db", action="append", required=True)
    t.add_argument("--runs", type=int, default=21)
    s = sub.add_parser("startup")
    s.add_argument("--tree", action="append", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    tab(args) if args.what == "tab" else startup(args)


if __name__ == "__main__":
    main()
