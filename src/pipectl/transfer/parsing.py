"""Reading cells as users' files write them: encodings, CSV dialects, dates, amounts.

Pure functions (the file opener aside). Every parser raises ValueError with a message meant for
the bad-row report ("'31/31/2023' is not a date ...").
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pipectl.errors import UsageError
from pipectl.values import parse_money

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


def detect_encoding(path: Path) -> str:
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
        for line in fh:
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


class CsvSource:
    """A CSV file opened for streaming: header, rows, and how far the reading got (bytes)."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
            self.encoding = check_encoding(encoding) if encoding else detect_encoding(path)
            if self.encoding == "utf-8" and not encoding:
                self.encoding = "utf-8-sig"
            self._raw = path.open("rb")
        except FileNotFoundError as exc:
            raise UsageError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise UsageError(f"{path} is a directory, not a file") from exc
        except PermissionError as exc:
            raise UsageError(f"cannot read {path}: permission denied") from exc
        if self.encoding in ("utf-8", "utf_8") and self._raw.read(3) != b"\xef\xbb\xbf":
            self._raw.seek(0)
        errors = "strict"
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding, errors=errors, newline="")
        try:
            head = self._text.read(65536)
        except UnicodeDecodeError as exc:
            self.close()
            raise UsageError(
                f"{path} is not valid {self.encoding}", hint="name its encoding with --encoding"
            ) from exc
        self.delimiter = sniff_delimiter(head)
        self._start()
        try:
            header = next(self._reader)
        except StopIteration as exc:
            self.close()
            raise UsageError(f"{path} is empty: no header row") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            self.close()
            raise UsageError(f"{path}: cannot read the header ({exc})") from exc
        self.header = [h.strip() for h in header]
        if not any(self.header):
            self.close()
            raise UsageError(f"{path}: the first row (the header) is empty")

    def _start(self) -> None:
        self._text.seek(0)
        self._reader = csv.reader(self._text, delimiter=self.delimiter, quotechar='"',
                                  doublequote=True, skipinitialspace=False, strict=False)

    def again(self) -> None:
        """Read the rows once more from the first (``rows`` then starts over)."""
        self._start()
        next(self._reader)  # the header, read and checked already

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells); the header is row 1, as in a spreadsheet."""
        number = 1
        width = len(self.header)
        try:
            for cells in self._reader:
                number += 1
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    self._too_many(number, cells, width)
                yield number, cells
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{self.path}: row {number + 1} is not valid {self.encoding}",
                hint="name the file's encoding with --encoding, e.g. --encoding cp1252",
            ) from exc
        except csv.Error as exc:
            raise UsageError(
                f"{self.path}: row {number + 1} cannot be read as CSV ({exc})"
            ) from exc

    def _too_many(self, number: int, cells: list[str], width: int) -> None:
        """A row with more cells than the header has columns: some cell holds the delimiter
        unquoted (a decimal comma: 12,50 read as 12 and 50). Dropping the cells beyond the
        header would misread the row silently."""
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
    except ValueError:
        pass
    hint = "D/M/YYYY" if dayfirst else "M/D/YYYY"
    raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD, YYYY-MM-DD HH:MM or {hint})")


def _check(moment: datetime) -> datetime:
    if not 1900 <= moment.year <= 2999:
        raise ValueError("year out of range")
    return moment


# ---------------------------------------------------------------- amounts

_SYMBOLS = "$€£¥"


def parse_amount(text: str, currency: str) -> int | None:
    """``100000``, ``100000.0``, ``1,234.50``, ``$1,234.50`` -> minor units; empty -> None."""
    raw = text.strip()
    if not raw:
        return None
    raw = raw.strip(_SYMBOLS).strip()
    try:
        return parse_money(raw, currency)
    except UsageError as exc:
        raise ValueError(str(exc).replace("value ", "", 1)) from exc


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
