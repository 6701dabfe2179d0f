"""Opening a pipectl database safely.

Before SQLite is allowed to write anything, the file is checked: a directory, a missing folder,
a file that is not SQLite, a SQLite database that is not pipectl's, a database from a newer
pipectl, and a read-only file are each refused with their own message, and the file is left byte
for byte as it was. Only then is the connection opened read-write with WAL, a busy timeout and
foreign keys on, and pending migrations applied (once, under the write lock).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipectl.errors import (
    DatabaseBusy,
    DatabaseDamaged,
    DatabaseError,
    PipectlError,
    UsageError,
)
from pipectl.paths import expand

APPLICATION_ID = 0x70697065  # "pipe"
SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_BUSY_MS = 5000


def busy_timeout_ms() -> int:
    try:
        return max(0, int(os.environ.get("PIPECTL_BUSY_TIMEOUT_MS", DEFAULT_BUSY_MS)))
    except ValueError:
        return DEFAULT_BUSY_MS


_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _what_is(head: bytes) -> str:
    """A few words on what a non-SQLite file is, for the error message."""
    for magic, kind in _KINDS:
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return "a text file"
    return "some other kind of file"


def _read_only_reason(path: Path) -> str | None:
    """Why pipectl may not write to an existing file, or None when it may.

    Checked without changing anything. The mode bits are checked too because root may write
    to any file regardless of them (os.access says yes for root): a file whose owner made it
    read-only (chmod a-w) is respected even by root. Opening O_RDWR (and closing at once, no
    byte written) catches the rest: other users' files, chattr +i, read-only mounts.
    """
    if _read_only_mount(path):
        return READ_ONLY_MOUNT
    mode = path.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return f"its mode is {stat.filemode(mode)}"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc)
    os.close(fd)
    return None


READ_ONLY_MOUNT = "it is on a read-only file system"


def read_only_uri(path: Path | str, immutable: bool = False) -> str:
    """The URI that opens ``path`` read-only (``immutable``: as it is, no -shm, no locks; only
    for a file nobody writes). Built from the absolute path, percent-encoded: a name with ?, #
    or % in it is still that file."""
    return f"{Path(path).absolute().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"


def wal_pending(path: Path | str) -> bool:
    """Whether a -wal beside ``path`` may hold commits the file lacks: read as it is
    (immutable), the file would then show old data."""
    wal = Path(f"{path}-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def peek(path: Path | str, seconds: float = 1.0) -> sqlite3.Connection | None:
    """A read-only connection for a quick look (shell completion), or None when ``path`` is
    no SQLite file, or the file is locked or unreadable. Nothing is created, migrated or
    waited for: a file whose -wal is empty (the usual case between commands) is read as it is
    (``immutable``: no -shm, no -wal, no lock), else read-only without a busy timeout; a
    statement still running after ``seconds`` is interrupted (``sqlite3.OperationalError``)."""
    try:
        target = Path(path).absolute()
        if not target.is_file():
            return None
        with open(target, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return None
        conn = sqlite3.connect(read_only_uri(target, immutable=not wal_pending(target)),
                               uri=True, isolation_level=None, timeout=0)
    except (OSError, sqlite3.Error, ValueError):
        return None
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # locked: fails now
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):  # no statvfs (Windows): the O_RDWR test still tells
        return False


def _read_only(path: Path | str, why: str, what: str = "pipectl needs to write to it"
               ) -> DatabaseError:
    """The refusal of a write to a read-only database; chmod is no help on a read-only
    mount, so it is only suggested for a file's own mode."""
    hint = ("work on a copy: cp it to a writable folder and use --db COPY" if why == READ_ONLY_MOUNT
            else "make it writable with chmod u+w, or work on a copy")
    return DatabaseError(f"{path} is read-only ({why}); {what}", hint=hint)


def _damaged(path: Path, why: str) -> DatabaseError:
    return DatabaseDamaged(
        f"{path} is damaged ({why}); it was left untouched",
        hint="restore it from a backup; pipectl db backup makes them",
    )


def _inspect(path: Path) -> tuple[int, int] | None:
    """(application_id, user_version) of an existing file, or None when it is new/empty.

    Only reads the first 100 bytes (the SQLite header): nothing is written, no -wal/-shm made.
    """
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file", hint=_OTHER)
    if not path.parent.is_dir():
        raise DatabaseError(
            f"cannot create {path}: the folder {path.parent} does not exist",
            hint="create the folder first, or choose another --db",
        )
    if not path.exists():
        return None
    if not path.is_file():
        raise DatabaseError(f"{path} is not a regular file", hint=_OTHER)
    head = _settled_head(path)
    if head is None:
        return None
    app_id = int.from_bytes(head[68:72], "big")
    user_version = int.from_bytes(head[60:64], "big")
    if app_id not in (0, APPLICATION_ID):
        raise DatabaseError(
            f"{path} is a SQLite database of another application; it was left untouched",
            hint=_OTHER,
        )
    return app_id, user_version


# Looks at a header that disagrees with its file's size, at most, before calling it damaged.
# A truncated file is called so at its second look (it looks the same twice); only a file that
# keeps changing while it looks short takes all of them (66 ms of sleep in all).
HEADER_LOOKS = 12


def _settled_head(path: Path) -> bytes | None:
    """The SQLite header of ``path`` once it agrees with the file's size; None for an empty file.

    Another pipectl may be writing the file while it is looked at. Closing the last connection
    checkpoints: SQLite writes page 1 (the header, with the new page count) first, then the
    other pages, growing the file, then deletes the -wal. A look taken across that moment can
    pair a new header with an old size, and the -wal (which excuses a short file) is already
    gone. So a short file is only called truncated once two looks in a row see exactly the same
    header, size and no -wal: nothing was being written between them.
    """
    previous: tuple[bytes, int, bool] | None = None
    why = ""
    for attempt in range(HEADER_LOOKS):
        look = _look(path)
        head, size, settling = look
        if not head:
            return None  # empty: new, or being created by another pipectl this very moment
        if not head.startswith(SQLITE_MAGIC):
            raise DatabaseError(
                f"{path} is not a pipectl database: it is {_what_is(head)}, not SQLite; "
                "it was left untouched",
                hint=_OTHER,
            )
        if len(head) >= 100:
            page_size = int.from_bytes(head[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            if page_size < 512 or page_size & (page_size - 1):
                raise _damaged(path, f"its header gives an impossible page size, {page_size}")
        why = _shortfall(head, size, settling)
        if not why:
            return head
        if look == previous:
            break
        previous = look
        time.sleep(0.001 * attempt)
    raise _damaged(path, why)


def _look(path: Path) -> tuple[bytes, int, bool]:
    """One look at the file: its first 100 bytes, then its size, then whether a -wal or
    -journal is beside it. In that order each is at least as new as the one before it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    settling = any(Path(f"{path}{s}").exists() for s in ("-wal", "-journal"))
    return head, size, settling


def _shortfall(head: bytes, size: int, settling: bool) -> str:
    """Why a file is shorter than its SQLite header says ("" when it is not)."""
    if len(head) < 100:
        return f"only {size} bytes, shorter than a SQLite header"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages_in_header = int.from_bytes(head[28:32], "big")
    header_valid = head[24:28] == head[92:96]  # the page count is valid for this change
    # With a -wal (or -journal) beside it, the file may lag its header for a moment (a
    # checkpoint writes page 1 first) and SQLite itself completes it: not damage.
    too_short = header_valid and size < page_size * pages_in_header and not settling
    if size < page_size or too_short:
        return "the file is shorter than its header says: truncated"
    return ""


_OTHER = "choose another file with --db"


def _create_file(path: Path) -> None:
    """Create an empty file with mode 0600 whatever the umask, atomically (never truncating)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _check_contents(conn: sqlite3.Connection, path: Path) -> None:
    """The header checks again, through the real connection, before anything is written.

    The raw file header can lag: another process may have created, migrated or upgraded the
    database with its changes still in the -wal file. The connection sees them.
    """
    from pipectl.store import schema

    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id not in (0, APPLICATION_ID):
        raise DatabaseError(
            f"{path} is a SQLite database of another application; it was left untouched",
            hint=_OTHER,
        )
    if version > schema.VERSION:
        raise _newer(path, version)
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and tables:
        raise DatabaseError(
            f"{path} is a SQLite database but not a pipectl one; it was left untouched",
            hint=_OTHER,
        )


def _newer(path: Path, version: int) -> DatabaseError:
    from pipectl.store import schema

    return DatabaseError(
        f"{path} was written by a newer pipectl (schema {version}; this one knows up to "
        f"{schema.VERSION}); it was left untouched",
        hint="upgrade pipectl",
    )


def _follow(path: Path) -> Path:
    """The file a symbolic link points to (even a dangling one: it is then created there, 0600,
    not through the link, which O_EXCL would refuse and SQLite would create 0644)."""
    if not path.is_symlink():
        return path
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:
        raise DatabaseError(
            f"{path} is a symbolic link that leads nowhere (a loop)", hint=_OTHER
        ) from exc


def database_path(path: Path | str) -> Path:
    """The file a --db names: expanded, and through a symbolic link."""
    return _follow(expand(path))


def _links(path: Path) -> None:
    """Refuse a file with several names (hard links): SQLite finds its -wal, -shm and locks by
    the name it was opened with, so two processes writing through two names do not see each
    other, and the file is corrupted (an index broken, writes reported saved then lost)."""
    try:
        n = path.stat().st_nlink
    except OSError:
        return
    if n > 1:
        raise DatabaseError(
            f"{path} has {n} names (hard links); SQLite coordinates writers by name, so writing "
            "through two names corrupts it: it was left untouched",
            hint="keep one name: rm the other links, which find / -samefile FILE lists; or "
                 "work on a copy made with pipectl db backup",
        )


def _mounted_alone(path: Path) -> None:
    """Refuse a database file bind-mounted on its own (``docker -v ./p.db:/data/p.db``): it has
    another name outside the mount that no link count shows (writes through both are lost, as
    with hard links), and the -wal and -shm SQLite keeps beside it land in the folder of this
    name, not beside the real file (committed changes in that -wal are lost with it)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            points = {line.split(" ")[4] for line in fh if line.count(" ") > 4}
    except OSError:  # not Linux, or no /proc: nothing to see
        return
    real = os.path.realpath(path)
    escaped = real.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011") \
        .replace("\n", "\\012")
    if escaped in points:
        raise DatabaseError(
            f"{path} is a file mounted on its own (a bind mount): it has another name outside "
            "this mount, and SQLite's -wal and -shm beside it would not be beside the real file; "
            "it was left untouched",
            hint="mount the folder that holds it instead",
        )


def _same(value: None) -> None:
    return value


def _bind_none_directly() -> None:
    """Make Python's ``sqlite3`` bind ``None`` through a registered adapter. Without one it
    looks for ``__adapt__`` and ``__conform__`` on ``None`` for every NULL it binds (~0.2 us
    each: a 21-column read-model row with 15 NULLs cost 6.1 us to insert, 2.9 us with it).
    The value bound is unchanged: NULL."""
    sqlite3.register_adapter(type(None), _same)


class Connection(sqlite3.Connection):
    """A pipectl file's connection: a ``sqlite3.Connection`` that knows who uses it."""

    actor: str | None = None  # who the events written through it are recorded as


def act_as(conn: sqlite3.Connection, actor: str | None) -> None:
    """Who the events written through ``conn`` are recorded as (``events.actor``; None: not
    known). Every insert of an event binds it as a value (no SQL function: a Python callback
    per row would turn a Ctrl-C inside it into a database error)."""
    if isinstance(conn, Connection):
        conn.actor = actor


def actor_of(conn: sqlite3.Connection) -> str | None:
    return getattr(conn, "actor", None)


def connect(path: Path | str, *, migrate: bool = True,
            notice: Callable[[str], None] | None = None,
            read_only_ok: bool = False, now: str | None = None) -> sqlite3.Connection:
    """Open (creating if needed) a pipectl database and bring its schema up to date.

    Every refusal happens before SQLite writes a byte: the header is checked from the file, then
    the contents through a connection that has only read, and only then is WAL switched on
    (a no-op for a pipectl file, which is WAL already) and migrations applied.

    A file pipectl may not write to (its mode, another user's, a read-only mount) is refused,
    unless ``read_only_ok`` (a command that only reads): it is then opened read-only, and a
    write through it fails with the same refusal.
    """
    from pipectl.store import schema

    path = database_path(path)
    found = _inspect(path)
    if found is not None and found[1] > schema.VERSION:
        raise _newer(path, found[1])
    if path.exists():
        _links(path)
        _mounted_alone(path)
        why = _read_only_reason(path)
        if why:
            if not read_only_ok:
                raise _read_only(path, why)
            return _connect_read_only(path, why, found)
    else:
        _create_file(path)
    timeout = busy_timeout_ms()
    _bind_none_directly()
    try:
        # An absolute path: SQLite (built to accept URIs) would open a relative "file:x" as
        # a URI, another file than the one checked above.
        conn = sqlite3.connect(str(path.absolute()), isolation_level=None,
                               timeout=timeout / 1000, factory=Connection)
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {timeout}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cell_size_check = ON")  # meet damage early, before writing on it
        _check_contents(conn, path)
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover - only on filesystems without shm
            raise DatabaseError(f"{path}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        if migrate:
            global commits
            mine = commits
            schema.MOMENT[0] = now  # a new file's default pipeline is created then
            try:
                upgrade(conn, path, notice)
            finally:  # (also when Ctrl-C lands just after its commit)
                commits = mine  # a schema made or upgraded is not the command's change
                schema.MOMENT[0] = None
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(path: Path, why: str, found: tuple[int, int] | None
                       ) -> sqlite3.Connection:
    """A read-only connection to a file pipectl may not write, for a command that only reads.

    On a read-only mount nobody can change the file, and SQLite (which would need a -shm
    file beside it) opens it as immutable; elsewhere it is opened read-only, seeing what other
    processes commit. A file still to be upgraded cannot be read (the upgrade writes)."""
    from pipectl.store import schema

    version = found[1] if found else 0
    if version == 0:
        raise _read_only(path, why, "an empty file is no database yet")
    if version < schema.READABLE_FROM:
        raise _read_only(path, why, f"it is from an older pipectl (schema {version}) and "
                                    "reading it needs an upgrade, which writes to it")
    timeout = busy_timeout_ms()
    # Read-only, SQLite needs the -shm beside the file (made by a writer, or now). Without it
    # (a read-only mount, a folder we may not write) the file is read as it is (immutable),
    # unless a -wal beside it holds changes the file lacks: those cannot be read so, and
    # reading without them would be silently stale.
    pending = wal_pending(path)
    tries = [read_only_uri(path)] + ([] if pending else [read_only_uri(path, immutable=True)])
    for n, uri in enumerate(tries):
        conn = None
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {timeout}")
            conn.execute("PRAGMA cell_size_check = ON")
            _check_contents(conn, path)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            # no -shm can be made beside it (a folder we may not write): read it as it is
            if n + 1 < len(tries) and (exc.sqlite_errorcode & 0xFF) in (8, 14):
                continue
            if pending and (exc.sqlite_errorcode & 0xFF) in (8, 14):
                raise _read_only(
                    path, why, f"its changes still in {path.name}-wal cannot be read without "
                    "writing beside it, and reading without them would show old data",
                ) from exc
            raise translate(exc, path) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def translate(exc: BaseException, path: Path | str | None = None) -> PipectlError:
    """Turn a sqlite3 error into a one-line PipectlError (by SQLite's result code when known).

    Each of these leaves the database as it was: SQLite rolls the statement or transaction
    back, and ``transaction`` rolls back the rest.
    """
    text = str(exc)
    where = f"{path}: " if path else ""
    low = text.lower()
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (5, 6) or (primary is None and ("locked" in low or "busy" in low)):
        return _busy(where)
    if primary == 13 or "disk is full" in low:
        return DatabaseError(
            f"{where}the disk is full; nothing was changed", hint="free some space, then retry"
        )
    if primary == 10 or "disk i/o error" in low:
        name = getattr(exc, "sqlite_errorname", None)  # which I/O: SQLITE_IOERR_SHMSIZE, ...
        return DatabaseError(
            f"{where}could not write to the disk ({text}{', ' + name if name else ''}"
            f"{_free_space(path)}: disk full, a file size limit or a failing device); "
            "nothing was changed",
            hint="free some space, then run pipectl db check",
        )
    if primary == 8 or "readonly" in low or "read-only" in low:
        why = _read_only_reason(Path(path)) if path and Path(path).is_file() else None
        if why:
            return _read_only(path, why, "nothing was changed")  # type: ignore[arg-type]
        return DatabaseError(f"{where}database is read-only; nothing was changed")
    if primary in (11, 26) or "malformed" in low or "not a database" in low or "corrupt" in low:
        return DatabaseError(
            f"{where}database is damaged ({text}); nothing was changed",
            hint="run pipectl db check, or restore a backup",
        )
    if primary == 14 or "unable to open" in low:
        return DatabaseError(f"{where}cannot open the database file ({text})")
    return DatabaseError(f"{where}database error: {text}; nothing was changed")


def _busy(where: str = "") -> DatabaseBusy:
    return DatabaseBusy(
        f"{where}database is busy: another pipectl held it too long; nothing was changed",
        hint="try again; PIPECTL_BUSY_TIMEOUT_MS sets how long to wait",
    )


def _free_space(path: Path | str | None) -> str:
    """", 12 MB free" on the database's disk, for an I/O error's message ("" when unknown)."""
    if path is None:
        return ""
    import shutil

    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return ""
    return f", {free / 1e6:,.0f} MB free" if free >= 1e6 else f", {free:,} bytes free"


# Transactions committed by this process: lets Ctrl-C after a commit say so truthfully.
commits = 0


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write command = one BEGIN IMMEDIATE transaction; rolled back on any exception.

    Nested use joins the outer transaction (no BEGIN, no COMMIT): a command may take the write
    lock first, read "now" under it, then call store functions that open their own. That is
    how "now" is never earlier than an event another process committed while we waited.
    """
    if conn.in_transaction:
        yield conn
        return
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
    global commits
    try:
        from pipectl.store.readmodel import settle

        settle(conn)  # the read models follow the events, in the same transaction
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        else:  # the COMMIT went through; the exception (Ctrl-C) landed as it returned
            commits += 1
        raise
    commits += 1


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every query inside sees the same state, even while others write."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


# Names SQLite gives the files beside a database: a backup so named would be taken for one
# (and a -journal deleted by the next command as a finished journal).
_SIDE_FILES = ("-journal", "-wal", "-shm")


def backup(conn: sqlite3.Connection, target: Path | str) -> Path:
    """A consistent copy (SQLite's online backup), safe while others write, in the new file
    ``target``: it appears under that name only complete (mode 0600, never overwriting, never
    through a symbolic link), or not at all."""
    target = expand(target)
    if target.name.endswith(_SIDE_FILES):
        raise UsageError(
            f"{target}: a name ending in -journal, -wal or -shm is SQLite's for the files beside "
            "a database (the next command may delete it)", hint="pick another name")
    return write_copy(conn, target, UsageError)


def write_copy(source: sqlite3.Connection, target: Path,
               error: type[PipectlError] = DatabaseError) -> Path:
    """SQLite's online backup of ``source`` into the new file ``target``, written under a
    temporary name beside it and renamed once complete and synced (``paths.atomic_new_file``):
    a kill, a signal or a full disk mid-copy leaves no file under ``target``. ``error`` refuses
    the name (exists, a symbolic link, no such folder)."""
    from pipectl.paths import atomic_new_file

    with atomic_new_file(target, "wb", error=error) as fh:
        temp = Path(fh.name)
        try:
            dest = sqlite3.connect(str(temp.absolute()), isolation_level=None)
            try:
                # no journal: a copy that fails is deleted whole, never rolled back
                dest.execute("PRAGMA journal_mode = OFF")
                source.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            raise _cannot_write(target, exc) from exc
        finally:
            for side in _SIDE_FILES:
                Path(f"{temp}{side}").unlink(missing_ok=True)
    return target


def _cannot_write(target: Path, exc: sqlite3.Error) -> PipectlError:
    """A copy that failed: blamed on the file being written (the source is only read)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    why = {13: "the disk is full", 10: "a disk I/O error"}.get(code, str(exc))
    if code in (5, 6):
        return translate(exc)
    full = code in (10, 13)
    return DatabaseError(f"cannot write {target}: {why}{_free_space(target) if full else ''}; "
                         "no file was written",
                         hint="free some space, then retry" if full else None)


# ---------------------------------------------------------------- restoring a backup


def open_backup(path: Path | str, database: Path) -> sqlite3.Connection:
    """A read-only connection to the backup ``path``, once it is known to be a whole pipectl
    database this pipectl can read, and not ``database`` itself."""
    from pipectl.store import schema

    path = expand(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist", hint="give the backup file's path")
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if database.exists() and os.path.samefile(path, database):
        raise UsageError(f"{path} is the database itself", hint="give a backup file")
    try:
        found = _inspect(path)
    except DatabaseError as exc:  # the checks of a --db file, with the hint for a backup
        exc.hint = "choose another backup"
        raise
    if found is None:
        raise DatabaseError(f"{path} is empty: not a backup; nothing was changed")
    if found[1] > schema.VERSION:
        raise _newer(path, found[1])
    # A backup file has no -wal beside it: read as it is (immutable), so no -wal or -shm is
    # made beside it. One that has (it was used with --db) is read with what its -wal holds,
    # or not at all.
    try:
        conn = sqlite3.connect(read_only_uri(path, immutable=not wal_pending(path)), uri=True,
                               isolation_level=None)
        try:
            try:
                _check_contents(conn, path)
            except DatabaseError as exc:
                exc.hint = "choose another backup"
                raise
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                raise DatabaseError(f"{path} holds no pipectl database; nothing was changed")
            damage = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
            if damage != ["ok"]:
                raise DatabaseError(
                    f"{path} is damaged ({damage[0]}); nothing was changed",
                    hint="choose another backup")
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path} cannot be read as a database ({exc}); nothing was "
                            "changed", hint="choose another backup") from exc
    return conn


def open_to_copy(path: Path, target: Path | None) -> sqlite3.Connection:
    """A read-only connection to the pipectl file ``path`` for ``db copy`` (never created,
    upgraded or written), once it is known to be a whole pipectl database this pipectl reads,
    holding every table a copy moves, and not ``target``."""
    from pipectl.store import schema

    try:
        conn = open_backup(path, target if target is not None and target.exists() else path
                           .with_name(path.name + ".no-such-target"))
    except (DatabaseError, UsageError) as exc:  # a backup's hint says "choose another backup"
        exc.hint = None
        raise
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < schema.READ_MODELS_FROM:
        conn.close()
        raise DatabaseError(
            f"{path} is a pipectl database of schema {version}, older than db copy reads "
            f"({schema.READ_MODELS_FROM}); nothing was changed",
            hint=f"open it once with this pipectl to upgrade it (pipectl --db {path} list), "
            "then copy it")
    return conn


def move_aside(path: Path, kept: Path) -> Path:
    """A database too damaged to open, renamed to ``kept`` with the files beside it (-wal,
    -shm, -journal): a stale -wal must never be replayed onto what takes its place."""
    if os.path.lexists(kept):
        raise DatabaseError(f"{kept} exists; pipectl never overwrites a file",
                            hint="wait a second and retry")
    for side in _SIDE_FILES:
        if os.path.lexists(f"{path}{side}"):
            os.replace(f"{path}{side}", f"{kept}{side}")
    os.replace(path, kept)
    return kept


def restore_into(source: sqlite3.Connection, dest: sqlite3.Connection) -> None:
    """Replace everything in ``dest`` by the contents of ``source``, in one write transaction
    of ``dest`` (SQLite's backup API): other processes see the database before or after, a
    crash midway leaves it as before, and the files beside it (-wal, -shm) stay SQLite's
    to manage: nothing is copied over them. Waits for other writers as long as the busy
    timeout, then raises DatabaseBusy (Python alone would retry for ever)."""
    global commits

    def progress(status: int, remaining: int, total: int) -> None:
        if status in (5, 6):  # BUSY, LOCKED: SQLite already waited the busy timeout
            raise _busy()

    before = _fingerprint(dest)
    try:
        source.backup(dest, pages=-1, progress=progress)
    except BaseException as exc:
        # A signal that came while SQLite copied is raised once it is done: the copy may be
        # committed. Then it is the command's change (Ctrl-C must not say nothing changed).
        try:
            if _fingerprint(dest) != before:
                commits += 1
        except BaseException:  # a second Ctrl-C: say the worst, that it may be saved
            commits += 1
        if isinstance(exc, sqlite3.Error):
            raise translate(exc) from exc
        raise
    commits += 1


# ---------------------------------------------------------------- upgrades


def upgrade(conn: sqlite3.Connection, path: Path | None = None,
            notice: Callable[[str], None] | None = None) -> list[str]:
    """Apply pending migrations once, under the write lock. Returns the names applied.

    ``notice`` is told, before an existing database is copied and upgraded, what is about to
    happen (at a million deals the upgrade to schema 4 takes minutes).

    Foreign keys are off while the migrations run (SQLite's own procedure for rebuilding a
    table: with them on, dropping the old deals table would first delete through them), and
    checked in full before the commit: a violation rolls the whole upgrade back.
    """
    from pipectl.store.schema import REBUILDS, VERSION, _migrations

    if conn.execute("PRAGMA user_version").fetchone()[0] >= VERSION:
        return []
    from sqlite_utils import Database

    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set before it
    try:
        with transaction(conn):
            # Re-read under the lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current >= VERSION:
                return []
            if current > 0 and path is not None:
                _backup_before_upgrade(conn, path, current, notice)
            db = Database(conn)
            migrations = _migrations()
            names = [m.name for m in migrations.pending(db)]
            migrations.apply(db)
            # checked in full only after a migration that rebuilt tables (at 1M deals the
            # check takes 7 s, for nothing when a migration only adds a table)
            rebuilt = set(names) & REBUILDS
            bad = conn.execute("PRAGMA foreign_key_check").fetchall() if rebuilt else []
            if bad:
                raise sqlite3.IntegrityError(
                    f"the upgrade would leave {len(bad)} rows naming a missing row "
                    f"(first: {tuple(bad[0])}); nothing was changed")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {VERSION}")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return names


def _fingerprint(conn: sqlite3.Connection) -> tuple | None:
    """What changes whenever a pipectl command writes, in every schema: the counts and the
    latest ids and times of deals and events (every write to a deal appends an event or removes
    the deal), and the rows of the append-only tables that hold no deal (pipeline versions,
    exchange rates) or record a change no event does (undos) where the file has them."""
    try:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM deals), (SELECT max(id) FROM deals), "
            "(SELECT max(updated_at) FROM deals), (SELECT count(*) FROM events), "
            "(SELECT max(id) FROM events)").fetchone()
        tables = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('pipeline_versions', 'rates', 'undos')")}
        more = tuple(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                     for name in sorted(tables))
        return (*row, *more, conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None


def _still_current(backup: Path, conn: sqlite3.Connection) -> bool:
    """Whether the pre-upgrade copy ``backup``, made by an earlier try whose upgrade failed,
    still holds the database as it is (nothing written since): then it is not made again."""
    if not backup.is_file():
        return False
    try:
        other = sqlite3.connect(read_only_uri(backup, immutable=True), uri=True)
    except sqlite3.Error:
        return False
    try:
        ok = other.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        theirs = _fingerprint(other) if ok else None
    except sqlite3.Error:
        return False
    finally:
        other.close()
    return theirs is not None and theirs == _fingerprint(conn)


def _backup_before_upgrade(conn: sqlite3.Connection, path: Path, version: int,
                           notice: Callable[[str], None] | None = None) -> Path:
    """Copy the database as it is before upgrading it (file mode 0600, like the database), to
    a temporary name renamed into place once complete: a kill mid-copy never leaves a file
    that looks like a backup. ``notice`` is told the name first.

    The copy is read through a second, read-only connection: ``conn`` holds the write lock
    (BEGIN IMMEDIATE), so nobody can commit meanwhile, and SQLite's backup API will not copy
    from a connection inside a write transaction (SQLITE_LOCKED, which Python's
    ``Connection.backup`` retries forever: it hung every upgrade).
    """
    from pipectl.store.schema import VERSION

    target = path.with_name(f"{path.name}.schema{version}.bak")
    if _still_current(target, conn):
        if notice is not None:
            notice(f"upgrading {path} from schema {version} to {VERSION} (its copy as it is, "
                   f"{target.name}, was made by an earlier try); on a large database this "
                   "takes a while")
        return target
    if notice is not None:
        notice(f"upgrading {path} from schema {version} to {VERSION}, after a copy of it as it "
               f"is ({target.name}); on a large database this takes a while")
    source = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        if target.exists():  # older than the database: replaced, once the new one is whole
            fresh = target.with_name(f"{target.name}.new")
            fresh.unlink(missing_ok=True)  # left by a kill between the copy and the rename
            write_copy(source, fresh)
            os.replace(fresh, target)
        else:
            write_copy(source, target)
    finally:
        source.close()
    return target
