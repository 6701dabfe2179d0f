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
