"""Shared helpers for the reliability tests: run the installed pipectl, fingerprint a database."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def pipectl_exe() -> str:
    """The installed console script next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("pipectl")
    if beside.exists():
        return str(beside)
    found = shutil.which("pipectl")
    if not found:  # pragma: no cover - the package is installed for the suite
        raise RuntimeError("pipectl is not installed")
    return found


def env(db: Path | None = None, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    if db is not None:
        e["PIPECTL_DB"] = str(db)
    e.update(extra)
    return e


def run(db: Path, *args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess:
    """pipectl ARGS against DB in a subprocess (text output, never raises on exit code)."""
    return subprocess.run(
        [pipectl_exe(), *args], env=env(db, **extra), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_state(path: Path) -> dict[str, str | None]:
    """sha256 of the file and its -wal/-shm/-journal siblings (None when absent)."""
    out: dict[str, str | None] = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        out[suffix or "db"] = sha256(p) if p.is_file() else None
    return out


def dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of deals and events (and the schema version), read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            "user_version": [con.execute("PRAGMA user_version").fetchone()],
            "deals": con.execute("SELECT * FROM deals ORDER BY id").fetchall(),
            "events": con.execute("SELECT * FROM events ORDER BY id").fetchall(),
        }
    finally:
        con.close()


def integrity(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def counts(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (
            con.execute("SELECT count(*) FROM deals").fetchone()[0],
            con.execute("SELECT count(*) FROM events").fetchone()[0],
        )
    finally:
        con.close()


HOLDER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
for statement in sys.argv[2:]:
    con.execute(statement)
print("ready", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
con.close()
"""


class Holder:
    """Runs SQL statements on a database in ANOTHER process and keeps that connection (and its
    locks) until closed. In-process holders would not do: POSIX locks belong to the process,
    and any close() of the file in the test process (e.g. hashing it) drops them."""

    def __init__(self, path: Path, *statements: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), *statements],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            self.close()
            raise RuntimeError("the lock holder did not start")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PEAK = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def peak_rss(args: list[str], environ: dict[str, str]) -> tuple[int, int]:
    """(exit code, peak resident KiB) of a command, started by a small Python process.

    Not by the test process itself: Linux counts in a child's ru_maxrss the memory of the
    process it was forked (vforked) from, up to its exec, so a child of a pytest process that
    has grown to 400 MB "peaks" at 400 MB whatever it does. The small starter is ~10 MB.
    """
    out = subprocess.run([sys.executable, "-c", _PEAK, *args], env=environ,
                         capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    code, kib = out.stdout.split()
    return int(code), int(kib)
