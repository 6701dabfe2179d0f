"""Reading cells as users' files write them: encodings, CSV dialects, dates, amounts.

Pure functions (the file opener aside). Every parser raises ValueError with a message meant for
the bad-row report ("'31/31/2023' is not a date ...").
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from pipectl.errors import PipectlError, UsageError
from pipectl.values import DATE_RANGE, exponent, in_range, round_money, two_readings

# ---------------------------------------------------------------- formula neutralising

# A spreadsheet executes a cell that starts with one of these.
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _needs(text: str) -> bool:
    """Does ``text``, after any leading apostrophes, start with a character in DANGEROUS?
    (A loop, not recursion: a cell may start with thousands of apostrophes.)"""
    return text.lstrip("'")[:1] in DANGEROUS


def neutralise(text: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with an apostrophe.

    A cell that already starts with an apostrophe before such a character gets one more, so
    that ``restore`` undoes exactly what this did (round trip).
    """
    return "'" + text if _needs(text) else text


def restore(text: str) -> str:
    """Undo ``neutralise``; leaves every other cell alone (``'t Hooft`` stays)."""
    if text[:1] == "'" and _needs(text[1:]):
        return text[1:]
    return text


# ---------------------------------------------------------------- encodings and CSV

SAMPLE = 1 << 20  # bytes looked at to detect an encoding or a delimiter


def detect_encoding(path: Path, name: Path | None = None) -> str:
    """'utf-8-sig' for UTF-8 (with or without BOM), 'utf-16' or 'utf-32' for a file that starts
    with their byte-order mark, else the likeliest legacy encoding.

    The whole file is checked as UTF-8 in chunks (fast, constant memory): a file whose first
    megabyte is ASCII but whose last row holds a cp1252 'é' is still caught. For a file that is
    not UTF-8, the lines holding non-ASCII bytes are decoded with each candidate (charset-
    normalizer's guess among them) and the one that yields whole words in one script wins;
    ties go to cp1252, the most common.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    # UTF-16 (Excel's "Unicode text" and "CSV UTF-16") and UTF-32 start with their byte-order
    # mark, which the codec reads and drops
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(SAMPLE)
            if b"\x00" in chunk:  # no text encoding but UTF-16/32 (found above) has one
                raise not_text(name or path, "it holds a NUL byte")
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                break
            if not chunk:
                return "utf-8-sig"
    sample = _non_ascii_lines(path)
    from charset_normalizer import from_bytes

    guess = from_bytes(sample).best()
    candidates = list(LEGACY)
    if guess is not None and guess.encoding not in candidates:
        candidates.append(guess.encoding)
    best, best_score = "cp1252", float("-inf")
    for enc in candidates:
        try:
            text = sample.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        score = _plausibility(text)
        if score > best_score:
            best, best_score = enc, score
    return best


LEGACY = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "shift_jis", "gb18030")


def _non_ascii_lines(path: Path, limit: int = 256 * 1024) -> bytes:
    out = bytearray()
    with path.open("rb") as fh:
        # each line read up to a limit: a file without line ends is never read whole
        for line in iter(lambda: fh.readline(limit), b""):
            if not line.isascii():
                out += line
                if len(out) >= limit:
                    break
    return bytes(out)


def _plausibility(text: str) -> float:
    """Words holding non-ASCII characters: +1 when all letters of one script (and, for Latin,
    not all accented), else -1."""
    import unicodedata

    score = 0.0
    for word in re.findall(r"[^\s,;\t|\"'()\[\]{}<>/\\.:!?0-9-]+", text):
        if word.isascii():
            continue
        scripts = set()
        ok = True
        for ch in word:
            if not ch.isalpha():
                ok = False
                break
            scripts.add(unicodedata.name(ch, "UNKNOWN").split()[0])
        if ok and scripts == {"LATIN"} and len(word) >= 3:
            # a Latin-script word has some ASCII letters; 'Ïðèâåò' is Cyrillic read as cp1252
            ok = not all(not ch.isascii() for ch in word)
        score += 1 if ok and len(scripts) == 1 else -1
    return score


def check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise UsageError(f"unknown encoding {name!r}", hint="e.g. utf-8, cp1252, latin-1") from exc


def sniff_delimiter(head: str) -> str:
    """The delimiter of the header line: the most frequent of , ; TAB | outside quotes."""
    line = head.splitlines()[0] if head else ""
    unquoted = re.sub(r'"[^"]*"', "", line)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


MAX_LINE = 1 << 20  # characters in one line of a CSV file: beyond, it is no CSV text file
# Handed to the csv reader after the file's last line: no line of a file holds a NUL (such a
# file is refused), so where it turns up says how the file ended (see CsvSource.rows).
_END = "\x00end\x00"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def open_file(path: Path, name: Path | str | None = None) -> BinaryIO:
    """``path`` opened to read bytes; a missing, unreadable or folder path is one clear usage
    error, naming it ``name`` (default: its path)."""
    shown = name or path
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise UsageError(f"{shown}: no such file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{shown} is a directory, not a file") from exc
    except PermissionError as exc:
        raise UsageError(f"cannot read {shown}: permission denied") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {shown}: {exc.strerror}") from exc


def not_text(path: Path | str, why: str) -> UsageError:
    """A file that is no CSV or JSON text (a NUL byte, a line without end)."""
    return UsageError(f"{path} is not a CSV or JSON text file: {why}; nothing was imported")


class CsvSource:
    """A CSV file opened for streaming: header, rows, and how far the reading got (bytes).

    ``path`` is the file read; ``name``, when given, is how messages call it (standard input
    is read from a copy). Rows that the file's framing makes wrong (a quote never closed, a
    cut last row, rows swallowed into one quoted cell) are not handed out: each is told in
    ``problems`` once ``rows`` is done, as the bad rows of the import.
    """

    def __init__(self, path: Path, encoding: str | None, name: Path | None = None) -> None:
        self.path = name or path
        self.problems: list[tuple[int, list[tuple[str, str]]]] = []
        self.ended = True  # the file's last line has its line end
        self._raw = open_file(path, self.path)  # a missing or unreadable file: one clear line
        try:
            self.size = os.fstat(self._raw.fileno()).st_size
            self.encoding = (check_encoding(encoding) if encoding
                             else detect_encoding(path, self.path))
        except BaseException:
            self._raw.close()
            raise
        if self.encoding == "utf-8" and not encoding:
            self.encoding = "utf-8-sig"
        if self.encoding in ("utf-8", "utf_8") and self._raw.read(3) != b"\xef\xbb\xbf":
            self._raw.seek(0)
        errors = "strict"
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding, errors=errors, newline="")
        try:
            head = self._text.read(65536)
        except UnicodeError as exc:  # UTF-16 without a BOM: UnicodeError
            self.close()
            utf = self.encoding.lower().replace("_", "-") in ("utf-16", "utf16", "utf-32", "utf32")
            raise UsageError(
                f"{self.path} is not valid {self.encoding}"
                + (" (it has no byte order mark)" if utf else ""),
                hint=f"name the byte order: --encoding {self.encoding}-le or "
                     f"{self.encoding}-be" if utf else "name its encoding with --encoding",
            ) from exc
        self.delimiter = sniff_delimiter(head)
        self._start()
        try:
            header = next(self._reader)
        except StopIteration as exc:
            self.close()
            raise UsageError(f"{self.path} is empty: no header row") from exc
        except (UnicodeError, csv.Error) as exc:
            self.close()
            raise UsageError(f"{self.path}: cannot read the header ({exc})") from exc
        except UsageError:
            self.close()
            raise
        if header == [_END]:
            self.close()
            raise UsageError(f"{self.path} is empty: no header row")
        if len(head) < 65536 and head.strip() and not any(c in head for c in "\r\n"):
            # the whole file is one line with no line end: a header cut short (an export
            # cut in its first line), or a header alone; either way there is nothing to import
            self.close()
            raise PipectlError(
                f"{self.path} ends inside its header row (one line, no line end, no rows): it "
                "looks truncated; nothing was imported")
        # a byte order mark the named encoding kept (--encoding utf-8, utf-16-le) is no part of
        # the first column's name
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        self.header = [h.strip() for h in header]
        if not any(self.header):
            self.close()
            raise UsageError(f"{self.path}: the first row (the header) is empty")
        from pipectl.transfer.formats import deal_csv_version, event_csv_version

        # pipectl's own export ends every row with a line end
        self.own = bool(deal_csv_version(self.header) or event_csv_version(self.header))

    def _start(self) -> None:
        self._text.seek(0)
        self._reader = csv.reader(self._lines(), delimiter=self.delimiter, quotechar='"',
                                  doublequote=True, skipinitialspace=False, strict=False)

    def _lines(self) -> Iterator[str]:
        """The file's lines, each with its line end, then ``_END``. A line longer than
        MAX_LINE, or one holding a NUL, stops the reading: no CSV text file has one (and a
        stream such as /dev/zero would otherwise be read without end)."""
        readline = self._text.readline
        limit = MAX_LINE + 1
        last = ""
        n = 0
        self.ended = True
        while True:
            line = readline(limit)
            if not line:
                break
            n += 1
            if len(line) == limit:
                raise not_text(self.path, f"line {n} runs over {MAX_LINE:,} characters")
            if "\x00" in line:
                raise not_text(self.path, f"line {n} holds a NUL character")
            last = line
            yield line
        self.ended = not last or last[-1] in "\r\n"
        yield _END

    def again(self) -> None:
        """Read the rows once more from the first (``rows`` then starts over)."""
        self._start()
        next(self._reader)  # the header, read and checked already

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells); the header is row 1, as in a spreadsheet. Each row is handed
        out once the next is read, so that a last row cut short is never handed out."""
        number = 1
        width = len(self.header)
        self.problems = []
        reader = self._reader
        seen = reader.line_num
        held: tuple[int, list[str]] | None = None
        before = width  # the cells of the row before the held one
        last = True  # the held row is the file's last (not so when a cell ran to the end)
        try:
            while True:
                try:
                    for cells in reader:
                        number += 1
                        lines = reader.line_num - seen
                        seen = reader.line_num
                        if len(cells) == 1 and cells[0] == _END:
                            break
                        if lines > 1:  # a quoted cell holds line breaks
                            if cells and cells[-1].endswith(_END):  # a quote open at the end
                                cells[-1] = cells[-1][: -len(_END)]
                                self._unclosed(number, cells, lines - 1)
                                last = False
                                break
                            if self._swallowed(number, cells, width):
                                continue
                        if not cells or (len(cells) == 1 and not cells[0].strip()):
                            continue
                        if held is not None:
                            before = len(held[1])
                            if before > width:
                                self._too_many(*held, width)
                            yield held
                        held = (number, cells)
                    break
                except csv.Error as exc:  # a cell over csv's field limit: read on after it
                    number += 1
                    lines = reader.line_num - seen
                    seen = reader.line_num
                    self._unreadable(number, lines, exc)
            if held is not None:
                if last and self._cut(held[0], held[1], before, width):
                    return
                if len(held[1]) > width:
                    self._too_many(*held, width)
                yield held
        except UnicodeError as exc:  # UTF-16 without a BOM: UnicodeError
            raise UsageError(
                f"{self.path}: row {number + 1} is not valid {self.encoding}",
                hint="name the file's encoding with --encoding, e.g. --encoding cp1252",
            ) from exc

    def _column(self, i: int) -> str:
        return self.header[i] if 0 <= i < len(self.header) and self.header[i] else f"#{i + 1}"

    def _unclosed(self, number: int, cells: list[str], lines: int) -> None:
        """The file ends inside a quoted cell."""
        column = self._column(len(cells) - 1)
        if not self.ended and (lines <= 1 or self.own):
            why = "the file ends mid-row, inside a quoted cell: it looks truncated"
        else:
            over = "the last line" if lines <= 1 else f"the last {lines} lines"
            why = (f'the quote (") that opens this cell is never closed: the cell runs over '
                   f"{over} of the file (a stray quote, or a file cut short)")
        self.problems.append((number, [(column, why)]))

    def _swallowed(self, number: int, cells: list[str], width: int) -> bool:
        """A quoted cell holding line breaks of which several read as whole rows of the file
        (as many cells as the header): a stray quote joined those rows into one cell. Two such
        lines are enough when the header has three or more columns; a two-column file needs
        five (a note's line with one comma reads as a row of two cells)."""
        if width < 2:
            return False
        need = 2 if width >= 3 else 5
        d = self.delimiter
        for i, cell in enumerate(cells):
            if "\n" not in cell and "\r" not in cell:
                continue
            parts = _LINE_BREAK.split(cell)
            rows = sum(1 for line in parts[1:] if line.count(d) == width - 1)
            if rows >= need:
                self.problems.append((number, [(self._column(i), (
                    f"this quoted cell runs over {len(parts)} lines, {rows} of which read as "
                    f"rows of the file ({width} cells each): a stray quote (\") joined those "
                    "rows into one cell"))]))
                return True
        return False

    def _unreadable(self, number: int, lines: int, exc: csv.Error) -> None:
        """A row the csv reader gave up on (a cell longer than its field limit)."""
        text = str(exc)
        if "field limit" in text:
            why = (f"a cell runs over more than {csv.field_size_limit():,} characters "
                   f"({lines} lines): a quote (\") that opens it and is never closed?")
        else:
            why = f"cannot be read as CSV ({text})"
        self.problems.append((number, [("row", why)]))

    def _cut(self, number: int, cells: list[str], before: int, width: int) -> bool:
        """Is the last row cut short? The file does not end with a line end, and the row has
        fewer cells than the header and than the row before it (or it is pipectl's own
        export, which ends every row with one). A complete last row without a final line
        end, as hand-written files have, is not."""
        if self.ended or not (self.own or len(cells) < min(width, before)):
            return False
        why = "the file ends mid-row: it looks truncated"
        if len(cells) < width:
            why += f" (the last row has {len(cells)} of the header's {width} cells)"
        else:
            why += " (a pipectl export ends every row with a line end)"
        self.problems.append((number, [(self._column(len(cells) - 1), why)]))
        return True

    def _too_many(self, number: int, cells: list[str], width: int) -> None:
        """A row with more cells than the header has columns: some cell holds the delimiter
        unquoted (a decimal comma: 12,50 read as 12 and 50). Dropping the cells beyond the
        header would misread the row silently. (Empty cells beyond it are let be.)"""
        if not any(c.strip() for c in cells[width:]):
            return
        raise UsageError(
            f"{self.path}: row {number} has {len(cells)} cells for the header's {width} "
            f"columns (an unquoted {self.delimiter!r} inside a cell, as in 12,50?); "
            "nothing was imported",
            hint="quote that cell, or give the header a name for every column",
        )

    def position(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._raw.close()


# ---------------------------------------------------------------- dates

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_SLASH = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
)


_FAST_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def parse_when(text: str, *, dayfirst: bool = False) -> tuple[datetime, bool] | None:
    """A cell -> (UTC moment, is_date_only), or None when empty.

    ISO dates and datetimes (T or space, optional seconds, Z or offset), ``YYYY-MM-DD HH:MM``,
    ``M/D/YYYY`` (``D/M/YYYY`` with dayfirst) with an optional time. No offset means UTC.
    """
    if not text:
        return None
    if len(text) == 20 and _FAST_ISO.fullmatch(text):  # pipectl's own form: the common case
        try:
            return _check(datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)), False
        except ValueError:
            pass
    return _parse_when(text, dayfirst)


@lru_cache(maxsize=4096)
def _parse_when(text: str, dayfirst: bool) -> tuple[datetime, bool] | None:
    raw = text.strip()
    if not raw:
        return None
    try:
        m = _ISO_DATE.fullmatch(raw)
        if m:
            y, mo, d = (int(g) for g in m.groups())
            return _check(datetime(y, mo, d, tzinfo=UTC)), True
        m = _ISO_TIME.fullmatch(raw)
        if m:
            y, mo, d, h, mi = (int(g) for g in m.groups()[:5])
            s = int(m.group(6) or 0)
            moment = datetime(y, mo, d, h, mi, s, tzinfo=UTC)
            off = m.group(7)
            if off and off != "Z":
                sign = 1 if off[0] == "+" else -1
                digits = off[1:].replace(":", "")
                from datetime import timedelta

                moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return _check(moment), False
        m = _SLASH.fullmatch(raw)
        if m:
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            mo, d = (b, a) if dayfirst else (a, b)
            h, mi, s = (int(m.group(i) or 0) for i in (4, 5, 6))
            return _check(datetime(y, mo, d, h, mi, s, tzinfo=UTC)), m.group(4) is None
    except (_OutOfRange, OverflowError):  # OverflowError: an offset past year 1 or 9999
        raise ValueError(f"{text!r} is out of range: {DATE_RANGE}") from None
    except ValueError:
        pass
    hint = "D/M/YYYY" if dayfirst else "M/D/YYYY"
    raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD, YYYY-MM-DD HH:MM or {hint})")


class _OutOfRange(ValueError):
    """A real moment outside the calendar pipectl accepts."""


def _check(moment: datetime) -> datetime:
    if not in_range(moment.date()):
        raise _OutOfRange("year out of range")
    return moment


# ---------------------------------------------------------------- amounts

_SYMBOLS = "$€£¥"


def strip_symbols(text: str) -> str:
    """An amount cell without its spaces and currency symbol (``$1,234.50`` -> ``1,234.50``)."""
    return text.strip().strip(_SYMBOLS).strip()


def read_amount(text: str, currency: str, *, comma: bool = False) -> tuple[int, Any] | None:
    """``100000``, ``100000.0``, ``1,234.50``, ``$1,234.50`` -> (minor units, None). More
    decimals than the currency has are rounded half to even, the second item saying by how
    much: ``9225.225`` USD -> (922522, Decimal('0.005')). Empty -> None. ``comma``: the
    decimal separator is the comma (``1.234,50``)."""
    if not text.strip():
        return None
    try:
        return round_money(strip_symbols(text), currency, comma=comma)
    except UsageError as exc:
        raise ValueError(str(exc).replace("value ", "", 1)) from exc


def parse_amount(text: str, currency: str, *, comma: bool = False) -> int | None:
    """An amount cell in minor units (rounded as ``read_amount`` does); empty -> None."""
    read = read_amount(text, currency, comma=comma)
    return None if read is None else read[0]


def separators(text: str, currency: str) -> int:
    """What an amount cell tells of the file's decimal separator: 1 when it reads two ways
    (``values.two_readings``: ``1.500`` in USD is 1.50 or 1,500.00), -1 when it shows the
    point to be the decimal point or the comma to group thousands (``100000.0``, ``1,234``,
    ``1,234.50``, ``0.500``, ``9225.225``, ``7564.6845``), 0 when it shows neither (``1500``;
    ``1.500`` in KWD, whose minor unit has three decimals, holds no thousands)."""
    raw = strip_symbols(text)
    if "." not in raw and "," not in raw:
        return 0
    if two_readings(raw, currency) is not None:
        return 1
    if "." in raw and "," not in raw and exponent(currency) >= 3 and \
            re.fullmatch(r"\+?[1-9]\d{0,2}\.\d{3}", raw):
        return 0
    return -1


_TRUE = {"1", "true", "yes", "y", "t", "x"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def parse_flag(text: str) -> bool | None:
    raw = text.strip().casefold()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False if raw else None
    raise ValueError(f"{text!r} is not true or false (1/0, true/false, yes/no)")


def parse_percent(text: str) -> int | None:
    """``40``, ``40%``, ``40.0`` -> 40; empty -> None. Whole percent from 0 to 100."""
    raw = text.strip().rstrip("%").strip()
    if not raw:
        return None
    # plain digits only: float() would take 'inf', 'nan', '1e400' and overflow on them
    m = _PERCENT.fullmatch(raw)
    if m is None:
        raise ValueError(f"{text!r} is not a percentage")
    if (m.group(2) or "").strip("0") or not 0 <= int(m.group(1)) <= 100:
        raise ValueError(f"{text!r} is not a whole percentage from 0 to 100")
    return int(m.group(1))


_PERCENT = re.compile(r"([0-9]+)(?:\.([0-9]*))?")
