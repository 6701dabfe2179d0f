"""The database file: a safe copy, a health check, and the demo database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipectl.services.check import Check as Check  # db check lives in services/check.py
from pipectl.services.check import check as check
from pipectl.store import db

if TYPE_CHECKING:
    from pipectl.services.reports import Board


def backup(conn: sqlite3.Connection, target: Path | str) -> Path:
    """A consistent copy of the database in the new file ``target`` (SQLite's online backup,
    safe while others write; an existing ``target`` is never overwritten). Returns its path."""
    return db.backup(conn, target)


# ---------------------------------------------------------------- the demo


@dataclass(frozen=True)
class Demo:
    path: Path
    count: int  # deals in it
    board: Board  # its default pipeline's board
    status: dict[str, int]  # deals open, won and lost


def demo(path: Path, seed: int = 7, per_stage: int | None = 5) -> Demo:
    """(Re)create the demo database at ``path`` (refused when ``path`` holds anything but a
    demo), anchored at now (``services.clock``), and read its board."""
    from pipectl import demo as demo_data
    from pipectl.services import clock, reports

    count = demo_data.build(path, clock.now(), seed=seed)
    conn = db.connect(path)
    try:
        shown = reports.board(conn, per_stage=per_stage)
        status = reports.deal_counts(conn)
    finally:
        conn.close()
    return Demo(path, count, shown, status)
