"""What an import reads: a file named on the command line, or standard input (``-``).

A regular file is read where it is, as often as the import needs. Anything else (standard
input, a pipe, a FIFO, a character device such as ``/dev/stdin`` or ``/dev/zero``) can be read
once only: its bytes are copied into a private temporary file first (mode 0600, removed when
the import ends, however it ends), and the import reads that.

Either way one pass over the bytes, a piece at a time, finds what the import needs before it
starts: their SHA-256 (an exact re-import is told by it), the format when neither ``--format``
nor the name gives it (the first character: ``[`` or ``{`` is JSON, anything else CSV), and
whether the bytes can be a CSV or JSON text at all. A NUL character, or for CSV a line of more
than ``MAX_LINE_BYTES`` bytes, stops the reading there with one line: "not a CSV or JSON text
file". So ``import /dev/zero`` ends at once instead of reading without end, and nothing is held
in memory but a piece.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipectl.errors import PipectlError, UsageError
from pipectl.transfer.parsing import MAX_LINE, not_text, open_file

STDIN = "-"  # the file name that means standard input
STDIN_NAME = Path("<stdin>")  # how messages and the summary call it
CHUNK = 1 << 20
# A line of MAX_LINE characters takes at most 4 bytes a character in any encoding pipectl
# reads; CsvSource counts the characters exactly.
MAX_LINE_BYTES = 4 * MAX_LINE
_WIDE = ("utf-16", "utf-32")  # encodings whose text holds NUL bytes
# the bytes that end a run: line ends, and in JSON the marks between values
_MARKS = {"csv": (b"\n", b"\r"), "json": (b"\n", b"\r", b",", b":", b"]", b"}")}


@dataclass(frozen=True)
class Incoming:
    """A file ready to import."""

    path: Path  # the bytes to read: the file itself, or the copy of a stream
    name: Path  # how messages call it: as the user named it, <stdin> for standard input
    fmt: str  # csv or json
    digest: str  # SHA-256 of the bytes, in hex


def is_stdin(file: Path | str) -> bool:
    return str(file) == STDIN


def _format(name: Path, fmt: str | None, head: bytes) -> str:
    """--format, else the name's suffix (.json, .csv), else the first character of the text."""
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in ("csv", "json"):
            raise UsageError(f"--format {fmt!r} is not csv or json")
        return fmt
    suffix = name.suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix[1:]
    encoding = json.detect_encoding(head[:4])
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return "json" if text[:1] in ("[", "{") else "csv"


class _Pass:
    """One pass over the bytes: their digest, and the checks that they can be text."""

    def __init__(self, name: Path, head: bytes, fmt: str) -> None:
        self.name, self.fmt = name, fmt
        self.sha = hashlib.sha256()
        self.size = 0
        encoding = json.detect_encoding(head[:4])  # a BOM, or the NUL pattern of UTF-16/32
        self.wide = encoding.startswith(_WIDE)
        self.decoder = (codecs.getincrementaldecoder(encoding)("replace") if self.wide
                        else None)
        self.run = 0  # bytes since the last line end

    def feed(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        where = self.size
        self.size += len(chunk)
        if self.decoder is None:
            if b"\x00" in chunk:
                at = where + chunk.index(0)
                raise not_text(self.name, f"it holds a NUL byte (at byte {at:,})")
        elif "\x00" in self.decoder.decode(chunk, final=not chunk):
            raise not_text(self.name, "it holds a NUL character")
        self._runs(chunk)

    def _runs(self, chunk: bytes) -> None:
        """No run of more than MAX_LINE_BYTES bytes without a line end (in JSON, without a
        line end or one of , : ] }, as one text of minified JSON has no line end). A piece is
        never longer than that, so only a run across pieces can be."""
        marks = _MARKS[self.fmt]
        found = [i for i in (chunk.find(m) for m in marks) if i >= 0]
        if not found:
            self.run += len(chunk)
        else:
            if self.run + min(found) > MAX_LINE_BYTES:
                self._too_long()
            self.run = len(chunk) - 1 - max(chunk.rfind(m) for m in marks)
        if self.run > MAX_LINE_BYTES:
            self._too_long()

    def _too_long(self) -> None:
        what = "a line" if self.fmt == "csv" else "a line or a single value"
        raise not_text(self.name, f"{what} runs over {MAX_LINE_BYTES:,} bytes")


def _read(fh: BinaryIO, name: Path) -> bytes:
    try:
        return fh.read(CHUNK)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from exc


@contextlib.contextmanager
def opened(file: Path | str, fmt: str | None = None) -> Iterator[Incoming]:
    """The file (or standard input, ``-``) checked, and copied when it is a stream; the copy
    is removed on leaving, however the import ends."""
    if is_stdin(file):
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("import -: standard input is a terminal, not a file",
                             hint="pipe a file in, e.g. cat deals.csv | pipectl import -")
        name = STDIN_NAME
        fh: BinaryIO = getattr(sys.stdin, "buffer", sys.stdin)  # type: ignore[assignment]
        owned = False
    else:
        name = Path(file)
        fh = open_file(name)
        owned = True
    copy: Path | None = None
    try:
        regular = owned and stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
        head = _read(fh, name)
        fmt = _format(name, fmt, head)
        check = _Pass(name, head, fmt)
        out: BinaryIO | None = None
        if not regular:
            fd, spool = tempfile.mkstemp(prefix="pipectl-import-", suffix=f".{fmt}")
            copy = Path(spool)
            out = os.fdopen(fd, "wb")
        try:
            chunk = head
            while chunk:
                check.feed(chunk)
                if out is not None:
                    _write(out, chunk, name)
                    if check.size % ROOM_EVERY < len(chunk):  # check.size: the bytes copied
                        _room_left(copy, check.size, name)  # type: ignore[arg-type]
                chunk = _read(fh, name)
            check.feed(b"")
        except BaseException:
            if out is not None:
                with contextlib.suppress(OSError):
                    out.close()
            raise
        if out is not None:
            _close(out, name)
        yield Incoming(path=copy or name, name=name, fmt=fmt, digest=check.sha.hexdigest())
    finally:
        if owned:
            fh.close()
        if copy is not None:
            with contextlib.suppress(OSError):
                copy.unlink()


# A stream is copied to TMPDIR before it is imported; the copy stops while the disk there
# still has this much room (an endless stream, `yes | pipectl import -`, would fill it).
ROOM_EVERY = 64 * 2**20  # look at the free space after each 64 MiB copied
ROOM_KEPT = 512 * 2**20


def _room_left(copy: Path, copied: int, name: Path) -> None:
    import shutil

    try:
        free = shutil.disk_usage(copy.parent).free
    except OSError:
        return
    if free < max(ROOM_KEPT, ROOM_EVERY):
        raise PipectlError(
            f"{name}: {copied / 2**20:,.0f} MiB copied to {copy.parent} and only "
            f"{free / 2**20:,.0f} MiB left there; stopped before the disk is full, nothing "
            "was imported",
            hint="save the input to a file and import that, or set TMPDIR to a folder with room")


def _write(out: BinaryIO, chunk: bytes, name: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise _no_copy(name, exc) from exc


def _close(out: BinaryIO, name: Path) -> None:
    try:
        out.close()
    except OSError as exc:
        raise _no_copy(name, exc) from exc


def _no_copy(name: Path, exc: OSError) -> PipectlError:
    return PipectlError(
        f"cannot copy {name} to a temporary file in {tempfile.gettempdir()}: "
        f"{exc.strerror}; nothing was imported",
        hint="free some space there, or set TMPDIR to a folder with room",
    )
