"""Opening a pipectl database safely.

Before SQLite is allowed to write anything, the file is checked: a directory, a missing folder,
a file that is not SQLite, a SQLite database that is not pipectl's, a database from a newer
pipectl, and a read-only file are each refused with their own message, and the file is left byte
for byte as it was. Only then is the connection opened read-write with WAL, a busy timeout and
foreign keys on, and pending migrations applied (once, under the write lock).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipectl.errors import DatabaseBusy, DatabaseError, PipectlError

APPLICATION_ID = 0x70697065  # "pipe"
SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_BUSY_MS = 5000


def busy_timeout_ms() -> int:
    try:
        return max(0, int(os.environ.get("PIPECTL_BUSY_TIMEOUT_MS", DEFAULT_BUSY_MS)))
    except ValueError:
        return DEFAULT_BUSY_MS


def _inspect(path: Path) -> tuple[int, int] | None:
    """(application_id, user_version) of an existing file, or None when it is new/empty.

    Opens the file read-only (immutable, so not even a -shm file is made).
    """
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file")
    if not path.parent.is_dir():
        raise DatabaseError(
            f"cannot create {path}: the folder {path.parent} does not exist",
            hint="create the folder first, or choose another --db",
        )
    if not path.exists():
        return None
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(100)
    except PermissionError as exc:
        raise DatabaseError(f"cannot read {path}: permission denied") from exc
    if size == 0:
        return None
    if not head.startswith(SQLITE_MAGIC):
        raise DatabaseError(
            f"{path} is not a pipectl database (not even SQLite); it was left untouched",
            hint="choose another file with --db",
        )
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages_in_header = int.from_bytes(head[28:32], "big")
    too_short = pages_in_header and size < page_size * pages_in_header
    if len(head) < 100 or page_size < 512 or too_short:
        raise DatabaseError(
            f"{path} is damaged (the file is shorter than its header says); it was left untouched",
            hint="restore it from a backup (pipectl db backup makes one)",
        )
    app_id = int.from_bytes(head[68:72], "big")
    user_version = int.from_bytes(head[60:64], "big")
    if app_id not in (0, APPLICATION_ID):
        raise DatabaseError(
            f"{path} is a SQLite database of another application; it was left untouched",
            hint="choose another file with --db",
        )
    if app_id == 0:
        # A plain SQLite file: pipectl's only if it has no tables at all (a fresh file).
        uri = f"file:{path}?mode=ro&immutable=1"
        try:
            con = sqlite3.connect(uri, uri=True)
            try:
                tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{path} is damaged and cannot be read: {exc}") from exc
        if tables:
            raise DatabaseError(
                f"{path} is a SQLite database but not a pipectl one; it was left untouched",
                hint="choose another file with --db",
            )
        return None
    return app_id, user_version


def _create_file(path: Path) -> None:
    """Create an empty database file with mode 0600, atomically (never truncating)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create {path}: {exc.strerror}") from exc
    os.close(fd)


def connect(path: Path | str, *, migrate: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) a pipectl database and bring its schema up to date."""
    from pipectl.store import schema

    path = Path(path).expanduser()
    found = _inspect(path)
    if found is not None and found[1] > schema.VERSION:
        raise DatabaseError(
            f"{path} was written by a newer pipectl (schema {found[1]}; this one knows up to "
            f"{schema.VERSION}); it was left untouched",
            hint="upgrade pipectl",
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise DatabaseError(f"{path} is read-only; pipectl needs to write to it")
    if found is None:
        _create_file(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms() / 1000)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms()}")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover - only on filesystems without shm
            raise DatabaseError(f"{path}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        if migrate:
            schema.migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def translate(exc: BaseException, path: Path | str | None = None) -> PipectlError:
    """Turn a sqlite3 error into a one-line PipectlError."""
    text = str(exc)
    where = f"{path}: " if path else ""
    low = text.lower()
    if "locked" in low or "busy" in low:
        return DatabaseBusy(
            f"{where}database is busy: another pipectl held it too long; nothing was changed",
            hint="try again",
        )
    if "disk is full" in low or "database or disk is full" in low:
        return DatabaseError(f"{where}disk is full; nothing was changed")
    if "readonly" in low or "read-only" in low:
        return DatabaseError(f"{where}database is read-only; nothing was changed")
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return DatabaseError(
            f"{where}database is damaged ({text})",
            hint="run pipectl db check, or restore a backup",
        )
    if "unable to open" in low:
        return DatabaseError(f"{where}cannot open the database file ({text})")
    return DatabaseError(f"{where}database error: {text}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write command = one BEGIN IMMEDIATE transaction; rolled back on any exception."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise translate(exc) from exc
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def backup(conn: sqlite3.Connection, target: Path | str) -> Path:
    """A consistent copy (SQLite's online backup), safe while others write."""
    target = Path(target).expanduser()
    if target.exists():
        raise DatabaseError(
            f"{target} exists; pipectl never overwrites a file", hint="pick a new name"
        )
    if not target.parent.is_dir():
        raise DatabaseError(f"cannot write {target}: the folder {target.parent} does not exist")
    _create_file(target)
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    except BaseException:
        dest.close()
        target.unlink(missing_ok=True)
        raise
    dest.close()
    return target


def copy_file(source: Path, target: Path) -> None:
    shutil.copy2(source, target)
