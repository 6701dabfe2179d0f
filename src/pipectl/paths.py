"""File names typed by users, and the one way pipectl writes a new file."""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from pipectl.errors import PipectlError, UsageError


def expand(path: str | Path) -> Path:
    """``~`` and ``~user`` expanded; an unknown user is a usage error, not a crash."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise UsageError(f"cannot expand {str(path)!r}: no such user's home directory") from exc


def new_file(path: str | Path, error: type[PipectlError] = UsageError) -> Path:
    """A file pipectl is about to create: expanded, and refused with ``error`` if it exists
    (pipectl never overwrites a file), is a symbolic link (even one to nothing: pipectl does
    not create a file through one) or its folder is missing."""
    target = expand(path)
    if target.is_symlink():
        raise error(f"{target} is a symbolic link; pipectl does not write through one",
                    hint="give the real path, or a new name")
    if target.exists():
        raise error(f"{target} exists; pipectl never overwrites a file", hint="pick a new name")
    if not target.parent.is_dir():
        raise error(f"cannot write {target}: the folder {target.parent} does not exist")
    return target


def replaced_file(path: str | Path, error: type[PipectlError] = UsageError) -> Path:
    """A file pipectl is about to write whole, replacing it if it exists (``--force``):
    expanded, and refused with ``error`` if it is a symbolic link (pipectl does not write
    through one), exists but is not a regular file (a folder, a device) or its folder is
    missing."""
    target = expand(path)
    if target.is_symlink():
        raise error(f"{target} is a symbolic link; pipectl does not write through one",
                    hint="give the real path")
    if target.exists() and not target.is_file():
        raise error(f"{target} exists and is not a regular file; pipectl replaces only a file")
    if not target.parent.is_dir():
        raise error(f"cannot write {target}: the folder {target.parent} does not exist")
    return target


# ---------------------------------------------------------------- writing a new file whole

PARTIAL = ".partial-"  # in the name of every file being written: `.NAME.partial-PID`


@contextmanager
def atomic_new_file(
    path: str | Path,
    mode: str = "w",
    *,
    encoding: str = "utf-8",
    newline: str | None = "",
    error: type[PipectlError] = UsageError,
    replace: bool = False,
) -> Iterator[IO[Any]]:
    """A new file that appears under its name only complete, or not at all.

    Yields a file (``mode`` "w": text in ``encoding`` with ``newline``; "wb": bytes) that is
    really a temporary file beside the target, ``.NAME.partial-PID``, created exclusively
    with mode 0600. Its ``name`` is that temporary path, for a writer that needs a path
    (SQLite's backup). When the block ends normally the file is flushed and fsynced and then
    takes its final name without ever replacing a file (a file that appeared there meanwhile
    is refused with ``error``), and the folder is fsynced. When the block raises anything
    (an error, Ctrl-C, the SIGTERM or SIGHUP that the CLI turns into an exception) the
    temporary file is removed and nothing appears. Only SIGKILL (or a power cut) mid-write can
    leave the temporary file behind; never a file under the final name.

    ``error`` (exit 2 by default) refuses the name: it exists, is a symbolic link, its folder
    is missing or the file cannot be created there. A write that fails (disk full, a file size
    limit) is a ``PipectlError`` (exit 1) that says no file was written.

    ``replace`` (``export --force``): a regular file already under the name is replaced, in
    one rename, by the complete new one; until then, and if the block raises or the process
    is killed, the old file is there intact. The new file keeps the old one's permission bits
    (a file a cron job refreshes for its readers stays readable to them); its owner is the
    writer's.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: atomic_new_file writes text ('w') or bytes ('wb')")
    target = replaced_file(path, error) if replace else new_file(path, error)
    left = "the old file is unchanged" if replace and target.exists() else "no file was written"
    temp, fh = _create_temp(target, mode, encoding, newline, error)
    placed = False  # the temporary file is gone (renamed into place)
    try:
        try:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        except OSError as exc:
            raise PipectlError(f"cannot write {target}: {_why(exc)}; {left}") from exc
        try:
            placed = _replace(temp, target) if replace else _place(temp, target)
        except FileExistsError as exc:
            raise error(f"{target} exists (it appeared while pipectl wrote); pipectl never "
                        "overwrites a file", hint="pick a new name") from exc
        except OSError as exc:
            raise PipectlError(f"cannot write {target}: {_why(exc)}; {left}") from exc
    finally:
        if not fh.closed:
            with suppress(OSError):  # closing flushes: may fail again (the disk is still full)
                fh.close()
        if not placed:
            with suppress(OSError):  # the folder became unwritable meanwhile: nothing to do
                temp.unlink(missing_ok=True)
    _sync_folder(target.parent)


def _create_temp(target: Path, mode: str, encoding: str, newline: str | None,
                 error: type[PipectlError]) -> tuple[Path, IO[Any]]:
    name = target.name if len(os.fsencode(target.name)) <= 200 else target.name[:50]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0)

    def opener(file: str, _flags: int) -> int:
        return os.open(file, flags, 0o600)

    for n in range(100):
        temp = target.with_name(f".{name}{PARTIAL}{os.getpid()}{f'-{n}' if n else ''}")
        try:
            if mode == "wb":
                return temp, open(temp, "wb", opener=opener)
            return temp, open(temp, "w", encoding=encoding, newline=newline,
                              opener=opener)
        except FileExistsError:
            continue  # left by a killed process that had our pid
        except OSError as exc:
            raise error(f"cannot write {target}: {_why(exc)}") from exc
    raise error(f"cannot write {target}: 100 temporary files .{name}{PARTIAL}... are in the way",
                hint="remove them: they were left by killed pipectl processes")


def _replace(temp: Path, target: Path) -> bool:
    """Give ``temp`` the name ``target``, replacing a file there (atomically: a reader sees
    the old file or the new one, never neither), with the old file's permission bits."""
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # it changed while pipectl wrote: a rename would replace the link or fail on a folder
        raise OSError(errno.EEXIST, "it is no longer a regular file", str(target))
    with suppress(FileNotFoundError):
        os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
    os.replace(temp, target)
    return True


def _place(temp: Path, target: Path) -> bool:
    """Give ``temp`` the name ``target`` unless that name exists (FileExistsError), atomically.
    True when ``temp`` is gone (renamed), False when it is still there (linked)."""
    if _rename_noreplace(temp, target):
        return True
    try:
        os.link(temp, target)  # fails if target exists, whatever made it
        return False
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # A file system with neither (old kernels on FAT, some network shares): look, then rename.
    # Only a file another process makes in between these two calls could be replaced.
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(temp, target)
    return True


_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _rename_noreplace(temp: Path, target: Path) -> bool:
    """Linux's renameat2(RENAME_NOREPLACE): True when done, False where not available (other
    systems, an old C library or kernel, a file system without it); FileExistsError if
    ``target`` exists."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(temp), at_fdcwd, os.fsencode(target),
                 rename_noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that a new name in it survives a crash (where the system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return "the disk quota is used up"
    if exc.errno == errno.EFBIG:
        return "the file would be larger than this system allows (a file size limit)"
    return (exc.strerror or str(exc)).lower()
