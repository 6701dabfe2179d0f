"""The database file: a safe copy, a health check, and the demo database."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipectl.errors import DatabaseDamaged
from pipectl.services.check import Check as Check  # db check lives in services/check.py
from pipectl.services.check import check as check
from pipectl.store import db

if TYPE_CHECKING:
    from pipectl.services.reports import Board
    from pipectl.store.copy import Copied, Side


def backup(conn: sqlite3.Connection, target: Path | str) -> Path:
    """A consistent copy of the database in the new file ``target`` (SQLite's online backup,
    safe while others write; an existing ``target`` is never overwritten). Returns its path."""
    return db.backup(conn, target)


# ---------------------------------------------------------------- db restore


@dataclass(frozen=True)
class Restored:
    path: Path  # the database, now holding the backup's contents
    source: Path  # the backup
    deals: int  # in the database now
    events: int
    before: Path | None  # the database as it was, kept (None: there was no database)
    damaged: bool  # the database as it was could not be opened: moved aside whole


def restore(path: Path, source: Path | str, at: datetime,
            notice: Callable[[str], None] | None = None) -> Restored:
    """Make the database at ``path`` hold what the backup ``source`` holds.

    The backup is checked first (a pipectl database, whole, not newer than this pipectl). The
    database as it was is kept beside it, ``NAME.before-restore-<UTC time>.bak``, then its
    contents are replaced through SQLite in one transaction (``store.db.restore_into``), so
    its -wal and -shm stay consistent and other processes see before or after, never a mix.
    A database too damaged to open is moved aside whole (with its -wal and -shm) instead, and
    the backup copied into its place. A backup from an older pipectl is upgraded at once.
    """
    from pipectl.paths import expand
    from pipectl.store.check import counts

    path = db.database_path(path)
    source = expand(source)
    kept = path.with_name(f"{path.name}.before-restore-{at.strftime('%Y%m%dT%H%M%SZ')}.bak")
    src = db.open_backup(source, path)
    kept_as: Path | None = None
    damaged = False
    try:
        if not path.exists():
            db.write_copy(src, path)
        elif path.stat().st_size == 0:
            _into_empty(src, path)
        else:
            try:
                conn = db.connect(path, migrate=False)
            except DatabaseDamaged:
                damaged = True
                kept_as = db.move_aside(path, kept)
                db.write_copy(src, path)
            else:
                try:
                    done = db.commits
                    ours = not os.path.lexists(kept)  # (write_copy refuses a name in use)
                    try:
                        kept_as = db.write_copy(conn, kept)
                        db.restore_into(src, conn)
                    except BaseException:
                        if ours and db.commits == done:
                            kept.unlink(missing_ok=True)  # not restored: no copy needed
                        raise
                finally:
                    conn.close()
    finally:
        src.close()
    conn = db.connect(path, notice=notice)  # upgraded now if the backup is from an older pipectl
    try:
        deals, events = counts(conn)
    finally:
        conn.close()
    return Restored(path, source, deals, events, kept_as, damaged)


def _into_empty(src: sqlite3.Connection, path: Path) -> None:
    """An empty file (made by hand, or a database never written): filled through SQLite."""
    conn = db.connect(path, migrate=False)
    try:
        db.restore_into(src, conn)
    finally:
        conn.close()


# ---------------------------------------------------------------- db copy


@dataclass(frozen=True)
class CopyDone:
    source: str  # as messages show it (a server URL masked)
    target: str
    copied: Copied  # rows copied and verified, per table


def copy(source: str, target: str, at: datetime) -> CopyDone:
    """Copy the whole pipeline in ``source`` (a file or a ``postgresql://`` URL) to ``target``
    (a new file, or a server database that holds no pipeline yet), every row with its id,
    verified table by table (``store.copy``). One transaction of the target: on any failure
    it is as before (a new file is not left behind)."""
    from pipectl.errors import UsageError
    from pipectl.paths import expand
    from pipectl.store import copy as copying
    from pipectl.store import postgres

    for option, given in (("--from", source), ("--to", target)):
        if not given.strip():
            raise UsageError(f"{option} is empty", hint="give a file or a postgresql:// URL")
    if source.strip() == target.strip():
        raise UsageError("--from and --to are the same pipeline", hint="give another --to")
    if not postgres.is_url(source) and not postgres.is_url(target):
        src_path, dest = expand(source), expand(target)
        if src_path.exists() and dest.exists() and os.path.samefile(src_path, dest):
            raise UsageError("--from and --to are the same file")
    from pipectl.values import iso

    now = iso(at)
    src_conn, src_name = _open_source(source, target)
    src = copying.Side(src_conn, source if postgres.is_url(source) else None)
    try:
        if postgres.is_url(target):
            done = _copy_to_server(src, target, now)
        else:
            done = _copy_to_file(src, expand(target))
        return CopyDone(src_name, postgres.masked(target) if postgres.is_url(target)
                        else str(expand(target)), done)
    finally:
        src_conn.close()


def _open_source(source: str, target: str) -> tuple[Any, str]:
    """The pipeline to copy, opened to be read only: a file as it is (never created, upgraded
    or written: an empty or foreign file is refused), a server database that holds this
    pipectl's schema."""
    from pipectl.paths import expand
    from pipectl.store import postgres

    if postgres.is_url(source):
        from pipectl.store.postgres.connection import open_source

        return open_source(source), postgres.masked(source)
    path = expand(source)
    if not path.exists():
        from pipectl.errors import UsageError

        raise UsageError(f"{path} does not exist", hint="give the file to copy with --from")
    target_path = None if postgres.is_url(target) else expand(target)
    return db.open_to_copy(path, target_path), str(path)


def _copy_to_server(source: Side, url: str, now: str) -> Copied:
    from pipectl.errors import DatabaseError
    from pipectl.store import copy as copying
    from pipectl.store.postgres import masked
    from pipectl.store.postgres.connection import connect, transaction

    conn = connect(url, now)
    try:
        with transaction(conn, url):
            target = copying.Side(conn)
            target.lock()  # no other pipectl writes to the server while the copy runs
            why = copying.held(target)
            if why:
                raise DatabaseError(f"{masked(url)}: {why}; db copy fills an empty pipeline "
                                    "only, nothing was changed",
                                    hint="copy into a new database (createdb NAME)")
            with source.reading(), source.errors_told():
                return copying.copy_all(source, target)
    finally:
        conn.close()


def _copy_to_file(source: Side, path: Path) -> Copied:
    from pipectl.paths import new_file
    from pipectl.store import copy as copying

    target = new_file(path)
    temp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        conn = db.connect(temp)
        try:
            with db.transaction(conn), source.reading(), source.errors_told():
                done = copying.copy_all(source, copying.Side(conn))
        finally:
            conn.close()
        os.link(temp, target)  # never over a file that appeared meanwhile
    finally:
        for side in ("", "-wal", "-shm", "-journal"):
            Path(f"{temp}{side}").unlink(missing_ok=True)
    return done


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
