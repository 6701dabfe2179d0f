"""Reading one JSON document a piece at a time (stdlib only): the elements of a big array are
handed out one by one, so memory holds the current element, not the file. Errors read as
``json.load``'s, with line, column and character, as one-line UsageErrors.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipectl.errors import UsageError

_CHUNK = 1 << 20  # characters decoded at a time
_MARGIN = 32  # a value ending this close to the end of what is read may go on after it
# characters of one value read at once (an element of the top array, a deal with its events):
# beyond, the file is refused rather than held in memory
MAX_VALUE = 1 << 26
_SPACE = re.compile(r"[ \t\n\r]*")


class JsonReader:
    """One JSON document, read from a binary file a piece at a time.

    ``first()`` is the first character of the top-level value; ``value()`` decodes the value
    that starts here (``json.JSONDecoder.raw_decode`` over a sliding buffer, which grows only
    for an element bigger than a piece); ``array()`` hands out the elements of the array that
    starts here one at a time, ``members()`` the keys of an object (the caller reads each
    value); ``end()`` checks that nothing follows. The encoding is found as ``json.loads``
    finds it for bytes (UTF-8 with or without BOM, UTF-16, UTF-32). Any problem is a
    UsageError naming the file, with the line, column and character, as ``json.load`` gives.
    """

    def __init__(self, fh: BinaryIO, path: Path | str, chunk: int | None = None) -> None:
        self.fh, self.path, self.chunk = fh, path, chunk or _CHUNK
        fh.seek(0)
        encoding = json.detect_encoding(fh.read(4))
        fh.seek(0)
        self._decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
        self._decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0  # the place in buf
        self.eof = False
        self._base = 0  # characters dropped from the front of buf
        self._lines = 0  # newlines among them
        self._last_nl = -1  # the place of the last of them

    def _more(self, at_least: int = 0) -> bool:
        """Append the next piece of the file, dropping what was read; False at its end."""
        if self.eof:
            return False
        data = self.fh.read(max(self.chunk, at_least))
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeError as exc:
            raise UsageError(f"{self.path} is not valid JSON ({exc})") from exc
        self.eof = not data
        k = self.pos
        if k:
            n = self.buf.count("\n", 0, k)
            if n:
                self._lines += n
                self._last_nl = self._base + self.buf.rfind("\n", 0, k)
            self._base += k
            self.buf, self.pos = self.buf[k:] + text, 0
        else:
            self.buf += text
        return True

    def error(self, msg: str, pos: int | None = None) -> UsageError:
        at = self.pos if pos is None else pos
        line = self._lines + self.buf.count("\n", 0, at) + 1
        nl = self.buf.rfind("\n", 0, at)
        last = self._base + nl if nl >= 0 else self._last_nl
        where = self._base + at
        return UsageError(
            f"{self.path} is not valid JSON ({msg}: line {line} column {where - last} "
            f"(char {where}))"
        )

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), moving to it."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def first(self) -> str:
        c = self.peek()
        if not c:
            raise self.error("Expecting value")
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self._decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # cut off by the end of the piece, not wrong: read on and decode it again
                if not self.eof and (exc.pos >= len(self.buf) - _MARGIN
                                     or exc.msg.startswith("Unterminated string")):
                    self._grow()
                    continue
                raise self.error(exc.msg, exc.pos) from None
            except RecursionError:
                raise self.error("nested too deeply") from None
            except ValueError as exc:  # e.g. an integer of more than 4300 digits
                raise self.error(str(exc)) from None
            if end >= len(self.buf) - _MARGIN and not self.eof:
                self._grow()  # a number may go on in the next piece
                continue
            self.pos = end
            return obj

    def _grow(self) -> None:
        """Read on for a value that goes on past what is read: as much again, up to
        MAX_VALUE characters of it."""
        held = len(self.buf) - self.pos
        if held > MAX_VALUE:
            raise UsageError(f"{self.path}: a single JSON value runs over {MAX_VALUE:,} "
                             "characters; nothing was imported")
        self._more(held)

    def array(self) -> Iterator[Any]:
        """The elements of the array that starts here, one at a time."""
        if self.peek() != "[":
            raise self.error("Expecting '['")
        self.pos += 1
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            c = self.peek()
            self.pos += 1
            if c == "]":
                return
            if c != ",":
                self.pos -= 1
                raise self.error("Expecting ',' delimiter")

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; after each, the caller reads its value."""
        if self.peek() != "{":
            raise self.error("Expecting '{'")
        self.pos += 1
        c = self.peek()
        if c == "}":
            self.pos += 1
            return
        while True:
            if c != '"':
                raise self.error("Expecting property name enclosed in double quotes")
            key = self.value()
            if self.peek() != ":":
                raise self.error("Expecting ':' delimiter")
            self.pos += 1
            yield key
            c = self.peek()
            if c == "}":
                self.pos += 1
                return
            if c != ",":
                raise self.error("Expecting ',' delimiter")
            self.pos += 1
            c = self.peek()

    def skip(self) -> None:
        """Read past the value that starts here (an array element by element)."""
        if self.peek() == "[":
            for _ in self.array():
                pass
        else:
            self.value()

    def end(self) -> None:
        if self.peek():
            raise self.error("Extra data")
