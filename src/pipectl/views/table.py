"""Tables and styled lines for the terminal, written directly (no Rich: see docs/performance.md).

Every table pipectl prints goes through ``Table``; every other styled line through ``echo``.

- Look: Rich's default box (heavy head ``┏━┳┓ ┃ ┡━╇┩``, light body ``│ ├─┼┤ └┴┘``), bold
  header, italic title above, optional dim caption below, one space of padding in each cell.
- Width: the terminal's when stdout is a terminal, else ``COLUMNS``, else no limit (a pipe or
  a file gets whole cells, for grep and friends). A table wider than that shrinks its widest
  *flexible* columns first (then, if still needed, any column), and cuts cells with "…". A
  cell is ONE line unless its column wraps (the board does) or it is given as a list of
  lines. Widths are display widths: East Asian wide and full-width characters count 2,
  combining marks and joiners 0; a cut never separates a character from its combining marks.
- Colour: ANSI codes only when stdout is a terminal and NO_COLOR is unset or empty;
  FORCE_COLOR (non-empty) forces them on for a non-terminal, NO_COLOR still wins.
- Safety: users' text is never interpreted. There is no markup; control characters (ESC, CR,
  LF, ...) and bidirectional overrides in a cell print as visible escapes such as ``\\x1b``.
- Streaming: ``Table.write`` takes any iterable of rows. Column widths come from the first
  ``sample`` rows (1,000 by default); later rows are written one by one at those widths (a
  longer cell is cut with "…"), so memory does not grow with the number of rows.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TextIO, Union

Span = tuple[str, str]  # (text, style); style: space-separated names from _SGR, or ""

_SGR = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33",
        "strike": "9"}
ELLIPSIS = "…"
_ZWJ = "\u200d"
_VS16 = "\ufe0f"
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Styled:
    """A line made of plain pieces and (text, style) pairs; nothing in it is read as markup."""

    __slots__ = ("spans",)

    def __init__(self, *parts: str | Span) -> None:
        self.spans: list[Span] = [(p, "") if isinstance(p, str) else p for p in parts]

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.spans)

    def __repr__(self) -> str:
        return f"Styled({self.spans!r})"


# A cell: plain text, a styled line, or several lines (a list of either).
Cell = Union[str, Styled, list[Union[str, Styled]]]  # noqa: UP007 (runtime alias, Python 3.11)


# ---------------------------------------------------------------- text measuring and cutting


def safe(text: str) -> str:
    """``text`` with control characters and bidirectional overrides as visible escapes."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat in ("Cc", "Zl", "Zp") or c in _BIDI:
            out.append(c.encode("unicode_escape").decode("ascii"))
        else:
            out.append(c)
    return "".join(out)


def _char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def clusters(text: str) -> list[tuple[str, int]]:
    """``text`` (already safe) as (grapheme, display width) pairs.

    A grapheme here is a character with the combining marks, variation selectors and joiners
    that follow it, and whatever a zero-width joiner binds to it (emoji sequences). Its width is
    its first character's; an emoji selector (U+FE0F) makes a narrow character wide.
    """
    if _simple(text):  # one cell per character, nothing joins
        return [(c, 1) for c in text]
    out: list[tuple[str, int]] = []
    join = False
    for c in text:
        w = _char_width(c)
        if out and (w == 0 or join):
            g, gw = out[-1]
            if c == _VS16 and gw == 1:
                gw = 2
            out[-1] = (g + c, gw)
            join = c == _ZWJ
            continue
        out.append((c, w))
        join = False
    return out


# Characters met so far that are one cell wide and stand alone (no mark, joiner or selector):
# a text made only of them measures and cuts like ASCII (set.issuperset runs in C).
_SIMPLE: set[str] = set()


def _simple(text: str) -> bool:
    if text.isascii() or _SIMPLE.issuperset(text):
        return True
    for c in text:
        if c not in _SIMPLE and _char_width(c) == 1 and c != _ZWJ:
            _SIMPLE.add(c)
    return _SIMPLE.issuperset(text)


def _fitted(text: str, w: int, right: bool) -> str:
    """A one-line cell (already made safe) cut to ``w`` cells with "…" and padded to ``w``."""
    if _simple(text):  # one cell per character: lengths are widths
        if len(text) > w:
            text = text[: w - 1] + ELLIPSIS if w > 0 else ""
        pad = " " * (w - len(text))
    else:
        text = cut(text, w)
        pad = " " * (w - width(text))
    return pad + text if right else text + pad


def width(text: str) -> int:
    """Display width of (safe) text in terminal cells."""
    if _simple(text):
        return len(text)
    return sum(w for _, w in clusters(text))


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` cells, ending with "…" when something was cut."""
    if _simple(text):
        if len(text) <= limit:
            return text
        return text[: limit - 1] + ELLIPSIS if limit > 0 else ""
    parts = clusters(text)
    if sum(w for _, w in parts) <= limit:
        return text
    if limit <= 0:
        return ""
    kept, used = [], 0
    for g, w in parts:
        if used + w > limit - 1:
            break
        kept.append(g)
        used += w
    return "".join(kept) + ELLIPSIS


# ---------------------------------------------------------------- plain output


def _settings() -> dict | None:
    """The running command's settings (the root context's ``obj``), when a command runs."""
    for name in ("typer._click.globals", "click.globals"):  # Typer's own copy of Click
        module = sys.modules.get(name)
        ctx = module.get_current_context(silent=True) if module is not None else None
        if ctx is not None:
            obj = ctx.find_root().obj
            return obj if isinstance(obj, dict) else None
    return None


FORMATS = ("table", "plain")


def plain_output() -> bool:
    """Tables as tab-separated text: ``pipectl --plain`` (the root option, which also reads
    PIPECTL_FORMAT), else PIPECTL_FORMAT=plain."""
    obj = _settings()
    if obj is not None and obj.get("plain") is not None:
        return bool(obj["plain"])
    return os.environ.get("PIPECTL_FORMAT", "").strip().lower() == "plain"


_plain_count = [0]  # tables written in plain form outside a command (tests, Python callers)


def _next_plain_table() -> int:
    """How many tables this command wrote in plain form before this one."""
    obj = _settings()
    if obj is None:
        _plain_count[0] += 1
        return _plain_count[0] - 1
    n = obj.get("plain_tables", 0)
    obj["plain_tables"] = n + 1
    return n


def plain_text(cell: Cell) -> str:
    """A cell as one line of plain text: its lines joined with "; ", tabs and control
    characters escaped (``safe``), so that a tab always separates fields."""
    if isinstance(cell, list):
        return "; ".join(t for t in (plain_text(x) for x in cell) if t)
    return safe(cell if isinstance(cell, str) else cell.plain)


# ---------------------------------------------------------------- styled lines


def color_enabled(stream: TextIO | None = None) -> bool:
    """ANSI styles on: NO_COLOR (non-empty) wins, then FORCE_COLOR, else 'is a terminal'."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


UNLIMITED = 1_000_000  # the width of a pipe or file when COLUMNS is not set


def terminal_width(stream: TextIO | None = None) -> int:
    """The terminal's width when ``stream`` is one, else COLUMNS, else UNLIMITED: output that
    goes to a pipe or a file keeps whole cells (Rich assumed 80 and wrapped them)."""
    stream = stream or sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        return max(shutil.get_terminal_size((80, 24)).columns, 20)
    columns = os.environ.get("COLUMNS", "")
    return max(int(columns), 20) if columns.isdigit() else UNLIMITED


def _paint(text: str, style: str, color: bool) -> str:
    if not color or not style or not text:
        return text
    codes = ";".join(_SGR[s] for s in style.split())
    return f"\x1b[{codes}m{text}\x1b[0m"


def _spans(cell: str | Styled) -> list[Span]:
    if isinstance(cell, str):
        return [(safe(cell), "")]
    return [(safe(t), s) for t, s in cell.spans]


def echo(*parts: str | Span, stream: TextIO | None = None) -> None:
    """Write one styled line (pieces and (text, style) pairs, nothing read as markup).

    Embedded line breaks are layout only when they are pieces of their own ("\\n"); inside data
    they print escaped like any control character. With --plain, lines meant for stdout go
    to stderr without styles: stdout carries only the tab-separated tables.
    """
    out = stream or sys.stdout
    if stream is None and plain_output():
        out = sys.stderr
    color = color_enabled(out) and not plain_output()
    chunks = []
    for p in parts:
        if p == "\n":
            chunks.append("\n")
        elif isinstance(p, str):
            chunks.append(safe(p))
        else:
            chunks.append(_paint(safe(p[0]), p[1], color))
    out.write("".join(chunks) + "\n")


# ---------------------------------------------------------------- cells laid out


def _line_width(spans: list[Span]) -> int:
    return sum(width(t) for t, _ in spans)


def _styled_clusters(spans: list[Span]) -> list[tuple[str, int, str]]:
    return [(g, w, s) for t, s in spans for g, w in clusters(t)]


def _join(parts: list[tuple[str, int, str]]) -> list[Span]:
    """Consecutive clusters of one style back into spans."""
    out: list[Span] = []
    for g, _, s in parts:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0] + g, s)
        else:
            out.append((g, s))
    return out


def _cut_spans(spans: list[Span], limit: int) -> list[Span]:
    if len(spans) == 1:
        return [(cut(spans[0][0], limit), spans[0][1])]
    parts = _styled_clusters(spans)
    if sum(w for _, w, _ in parts) <= limit:
        return spans
    kept, used = [], 0
    for g, w, s in parts:
        if used + w > limit - 1:
            break
        kept.append((g, w, s))
        used += w
    if limit > 0:
        kept.append((ELLIPSIS, 1, kept[-1][2] if kept else ""))
    return _join(kept)


def _is_code(word: str) -> bool:
    """A currency code as pipectl writes it: three capital letters ("EUR", "USD,")."""
    head = word[:3]
    return (len(head) == 3 and head.isascii() and head.isalpha() and head.isupper()
            and (len(word) == 3 or not word[3].isalpha()))


def units(text: str) -> list[str]:
    """``text``'s words as a wrapped column keeps them whole: split at spaces, except the
    one between an amount and its currency ("12,500.00 EUR" is one unit) and before a "+"
    that joins amounts ("12,500.00 EUR +")."""
    out: list[str] = []
    glue = False
    for word in text.split(" "):
        if not word:
            glue = False
            continue
        if glue and out and (word == "+" or (out[-1][-1:].isdigit() and _is_code(word))):
            out[-1] += " " + word
        else:
            out.append(word)
        glue = True
    return out


_WORD = 24  # a wrapped column never breaks a unit up to this wide (longer ones fold)


def _whole(unit: str) -> bool:
    """A unit a wrapped column never breaks, whatever its width: a number, or an amount with
    its currency (and its " +"): "9,999,999,999,999.99 EUR +"."""
    return unit.lstrip("-\u2212")[:1].isdigit()


def _floor(unit: str) -> int:
    """The width a wrapped column keeps for ``unit``: all of it for a number or an amount,
    else at most ``_WORD`` (a longer word folds)."""
    n = width(unit)
    return n if _whole(unit) else min(n, _WORD)


def _wrap_spans(spans: list[Span], limit: int) -> list[list[Span]]:
    """Word-wrap one line to ``limit`` cells at spaces; a word wider than a line is folded.

    Leading spaces of the line are kept (an indent); the spaces where a line breaks are not.
    An amount and its currency ("12,500.00 EUR") stay together, as one word.
    """
    if _line_width(spans) <= limit:  # the common case, measured without splitting
        return [spans]
    parts = _styled_clusters(spans)
    tokens: list[tuple[list[tuple[str, int, str]], list[tuple[str, int, str]]]] = []
    gap: list[tuple[str, int, str]] = []
    word: list[tuple[str, int, str]] = []
    for p in parts:  # (spaces before, word) pairs
        if p[0] == " ":
            if word:
                tokens.append((gap, word))
                gap, word = [], []
            gap.append(p)
        else:
            word.append(p)
    if word or gap:
        tokens.append((gap, word))
    glued: list[tuple[list[tuple[str, int, str]], list[tuple[str, int, str]]]] = []
    for gap, word in tokens:  # "12,500.00" " " "EUR": one word
        if (glued and len(gap) == 1 and glued[-1][1]
                and ("".join(g for g, _, _ in word) == "+"
                     or (glued[-1][1][-1][0][-1:].isdigit()
                         and _is_code("".join(g for g, _, _ in word[:4]))))):
            glued[-1] = (glued[-1][0], glued[-1][1] + gap + word)
        else:
            glued.append((gap, word))
    tokens = glued
    lines: list[list[tuple[str, int, str]]] = []
    line: list[tuple[str, int, str]] = []
    used = 0
    for gap, word in tokens:
        gw = sum(w for _, w, _ in gap)
        ww = sum(w for _, w, _ in word)
        if used + gw + ww <= limit and (line or not lines):
            line += gap + word
            used += gw + ww
            continue
        if line:
            lines.append(line)
            line, used = [], 0
        for g, w, s in word:  # a new line; fold a word wider than the column
            while used + w > limit and line:  # each fold leaves a shorter line
                line, used = _fold(line, lines)
            line.append((g, w, s))
            used += w
    if line or not lines:
        lines.append(line)
    return [_join(x) for x in lines]


def _wrap_text(text: str, room: int) -> list[str]:
    """A line of text (a title, a caption) wrapped at spaces to ``room`` cells."""
    return ["".join(t for t, _ in line) for line in _wrap_spans([(safe(text), "")], room)]


_FOLD_AFTER = frozenset(",_/-")  # a word too wide for its column folds after one of these


def _fold(line: list[tuple[str, int, str]], lines: list[list[tuple[str, int, str]]]
          ) -> tuple[list[tuple[str, int, str]], int]:
    """End ``line`` (full) as one of ``lines``, after its last separator (a thousands comma:
    ``9,999,999,`` then ``999.99``, never ``9,999,99`` then ``9,999.99``) when it has one in
    its second half; return the new line (what followed the separator) and its width."""
    at = next((i for i in range(len(line) - 1, len(line) // 2 - 1, -1)
               if line[i][0] in _FOLD_AFTER), len(line) - 1)
    lines.append(line[: at + 1])
    rest = line[at + 1:]
    return rest, sum(w for _, w, _ in rest)


# ---------------------------------------------------------------- the table

_BOX = {  # left, fill, cross, right: Rich's HEAVY_HEAD box
    "top": ("┏", "━", "┳", "┓"),
    "head": ("┡", "━", "╇", "┩"),
    "mid": ("├", "─", "┼", "┤"),
    "foot": ("└", "─", "┴", "┘"),
}


class Column:
    """A table column. ``flexible`` columns are cut first when the table is too wide (the
    others, amounts and dates, are never cut); ``wrap`` columns break long lines at spaces
    instead of cutting them (never between an amount and its currency); ``width`` fixes the
    width (a bar chart's column); ``min_width``: the width a flexible column keeps while
    other columns can be dropped; ``drop`` (1, 2, ...): the order in which the column is left
    out when the table does not fit the terminal (0: never left out); ``heading``: a column
    left out heads the rows instead (a row of its own, in the first column, wherever its
    value changes; the rows under it indented two spaces): no row loses what it said."""

    __slots__ = ("drop", "flexible", "header", "heading", "justify", "min_width", "width",
                 "wrap")

    def __init__(self, header: str, justify: str = "left", *, flexible: bool = True,
                 wrap: bool = False, min_width: int = 0, width: int | None = None,
                 drop: int = 0, heading: bool = False) -> None:
        self.header = header
        self.justify = justify  # "left" or "right"
        self.flexible = flexible
        self.wrap = wrap
        self.min_width = min_width
        self.width = width
        self.drop = drop
        self.heading = heading


def _indented(cell: Cell) -> Cell:
    """``cell`` two spaces further right (each of its lines)."""
    if isinstance(cell, list):
        return [_indented(x) for x in cell]  # type: ignore[misc]
    if isinstance(cell, str):
        return "  " + cell
    return Styled("  ", *cell.spans)


def _lines_of(cell: Cell) -> list[list[Span]]:
    if isinstance(cell, list):
        return [_spans(x) for x in cell] or [[("", "")]]
    return [_spans(cell)]


def _fit(natural: list[int], floors: list[int], columns: Sequence[Column],
         room: int) -> list[int]:
    """Column widths that fit ``room`` cells: shrink the widest flexible column, one cell at a
    time, down to its floor (header width, min_width, a wrapped column's longest word); then
    flexible one-line columns down to three cells, then one. The others (amounts, dates,
    numbers) are never cut, nor a wrapped column's words (up to ``_WORD`` cells; numbers and
    amounts with their currency whatever their width): a table
    that cannot fit is wider than the terminal rather than lose digits."""
    widths = list(natural)
    excess = sum(widths) - room
    cut_ok = [i for i, c in enumerate(columns) if c.flexible and c.width is None and not c.wrap]
    phases = (
        [(i, floors[i]) for i, c in enumerate(columns) if c.flexible and c.width is None],
        [(i, min(floors[i], 3)) for i in cut_ok],
        [(i, 1) for i in cut_ok],
    )
    for phase in phases:
        while excess > 0:
            can = [i for i, floor in phase if widths[i] > floor]
            if not can:
                break
            widest = max(can, key=lambda i: widths[i])
            widths[widest] -= 1
            excess -= 1
    return widths


class Table:
    """A table written straight to a stream.

    ``box=False`` draws no borders (columns two spaces apart, like Rich's ``box=None``);
    ``lines=True`` rules a line between rows (the board); ``expand`` stretches the table to the
    full width.
    """

    def __init__(
        self,
        *columns: Column | str,
        title: str | None = None,
        caption: str | None = None,
        box: bool = True,
        lines: bool = False,
        expand: bool = False,
        sample: int = 1000,
    ) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.title = title
        self.caption = caption
        self.box = box
        self.lines = lines
        self.expand = expand
        self.sample = sample
        self.rows: list[Sequence[Cell]] = []

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def write(self, rows: Iterable[Sequence[Cell]] | None = None,
              stream: TextIO | None = None) -> int:
        """Write the table (the rows given, else those added); returns how many rows."""
        out = stream or sys.stdout
        source: Iterator[Sequence[Cell]] = iter(self.rows if rows is None else rows)
        if plain_output():
            return self._write_plain(source, out)
        head = list(islice(source, self.sample))
        keep, widths = self._layout(head, terminal_width(out))
        heads = [i for i, c in enumerate(self.columns) if c.heading and i not in keep]
        if heads and keep:  # its values head the rows now: lay them out again with those
            headed = self._headed(heads[0], keep[0])
            head, source = list(headed(head)), headed(source)
            first = self.columns[keep[0]]
            floor = first.min_width
            first.min_width += 2 if floor else 0  # its cells are indented now
            try:
                keep, widths = self._layout(head, terminal_width(out), {heads[0]})
            finally:
                first.min_width = floor
        if len(keep) == len(self.columns):
            return self._write(head, source, widths, out)
        columns = self.columns
        self.columns = [columns[i] for i in keep]
        try:
            return self._write([[r[i] for i in keep] for r in head],
                               ([r[i] for i in keep] for r in source), widths, out)
        finally:
            self.columns = columns

    def _headed(self, at: int, first: int
                ) -> Callable[[Iterable[Sequence[Cell]]], Iterator[Sequence[Cell]]]:
        """Rows under headings: column ``at``'s value, bold in column ``first`` of a row of its
        own wherever it changes; the rows under a heading indented two spaces in ``first``
        (a row with no value there, a total, stays as it was)."""
        last: list[str | None] = [None]

        def rows(source: Iterable[Sequence[Cell]]) -> Iterator[Sequence[Cell]]:
            for row in source:
                value = plain_text(row[at])
                if value and value != last[0]:
                    yield [Styled((value, "bold")) if i == first else ""
                           for i in range(len(row))]
                last[0] = value
                if value:
                    row = [_indented(c) if i == first else c for i, c in enumerate(row)]
                yield row

        return rows

    def _write_plain(self, source: Iterator[Sequence[Cell]], out: TextIO) -> int:
        """Tab-separated: a header row, then a row per row, every cell whole on one line (a
        cell of several lines joined with "; "), tabs and control characters escaped; the
        title and caption go to stderr. Tables after the first are a blank line apart."""
        if self.title:
            sys.stderr.write(safe(self.title) + "\n")
        chunk = ["\t".join(safe(c.header) for c in self.columns)]
        if _next_plain_table():
            chunk.insert(0, "")
        count = 0
        for row in source:
            chunk.append("\t".join(plain_text(cell) for cell in row))
            count += 1
            if len(chunk) >= 512:
                out.write("\n".join(chunk) + "\n")
                chunk = []
        out.write("\n".join(chunk) + "\n")
        if self.caption:
            sys.stderr.write(safe(self.caption) + "\n")
        return count

    def _write(self, head: list[Sequence[Cell]], source: Iterator[Sequence[Cell]],
               widths: list[int], out: TextIO) -> int:
        color = color_enabled(out)
        count = 0
        chunk: list[str] = []
        room = terminal_width(out)
        if self.title:  # wrapped at spaces where the terminal is narrower
            chunk += [_paint(line, "italic", color) for line in _wrap_text(self.title, room)]
        chunk += self._rule("top", widths)
        chunk += self._row([Styled((c.header, "bold")) for c in self.columns], widths, color,
                           "┃")
        chunk += self._rule("head", widths)
        for row in head:
            if count and self.lines:
                chunk += self._rule("mid", widths)
            chunk += self._row(row, widths, color)
            count += 1
        del head
        plain = not self.lines and not any(c.wrap for c in self.columns)
        rights = [c.justify == "right" for c in self.columns]
        for row in source:
            if plain and (line := self._plain_row(row, widths, rights)) is not None:
                chunk.append(line)
            else:
                if self.lines:
                    chunk += self._rule("mid", widths)
                chunk += self._row(row, widths, color)
            count += 1
            if len(chunk) >= 512:
                out.write("\n".join(chunk) + "\n")
                chunk = []
        chunk += self._rule("foot", widths)
        if self.caption:  # centred under the table, else wrapped to the terminal
            full = sum(widths) + self._overhead()
            text = safe(self.caption)
            if width(text) <= full:
                chunk.append(" " * ((full - width(text)) // 2) + _paint(text, "dim", color))
            else:
                chunk += [_paint(line, "dim", color) for line in _wrap_text(text, room)]
        out.write("\n".join(chunk) + "\n")
        return count

    # -- layout

    def _overhead(self, n: int | None = None) -> int:
        n = len(self.columns) if n is None else n
        return 3 * n + 1 if self.box else 2 * n

    def _widths(self, rows: list[Sequence[Cell]]) -> tuple[list[int], list[int]]:
        """Natural widths from ``rows`` (the header's at least), and the floors below which
        a column is not shrunk while columns can be left out."""
        natural, floors = [], []
        for i, col in enumerate(self.columns):
            if col.width is not None:
                natural.append(col.width)
                floors.append(col.width)
                continue
            w = width(col.header)  # min_width is a floor, not a width to fill
            floor = max(w, col.min_width)
            for row in rows:
                cell = row[i]
                if isinstance(cell, str):
                    n = width(safe(cell))
                    w = max(w, n)
                    if col.wrap and n > floor:
                        floor = max(floor, *(_floor(x) for x in units(safe(cell)) or [""]))
                    continue
                for line in _lines_of(cell):
                    w = max(w, _line_width(line))
                    if col.wrap:
                        words = units("".join(t for t, _ in line))
                        floor = max(floor, *(_floor(x) for x in words)) if words else floor
            natural.append(w)
            floors.append(min(floor, w))
        return natural, floors

    def _layout(self, rows: list[Sequence[Cell]], room: int, out: frozenset[int] | set[int] = (
                frozenset())) -> tuple[list[int], list[int]]:
        """The columns kept (their indexes) and their widths, fitted to ``room``: while the
        table does not fit with every column at its floor, the next column in ``drop`` order
        is left out (those in ``out`` are); then the flexible columns shrink (``_fit``)."""
        natural, floors = self._widths(rows)
        cols = self.columns
        need = [floors[i] if c.flexible and c.width is None else natural[i]
                for i, c in enumerate(cols)]
        keep = [i for i in range(len(cols)) if i not in out]
        for i in sorted((i for i, c in enumerate(cols) if c.drop and i not in out),
                        key=lambda i: cols[i].drop):
            if sum(need[k] for k in keep) + self._overhead(len(keep)) <= room:
                break
            keep.remove(i)
        room -= self._overhead(len(keep))
        widths = _fit([natural[i] for i in keep], [floors[i] for i in keep],
                      [cols[i] for i in keep], room)
        spare = room - sum(widths)
        grow = [k for k, i in enumerate(keep) if cols[i].width is None]
        if self.expand and spare > 0 and grow:
            for k in range(spare):
                widths[grow[k % len(grow)]] += 1
        return keep, widths

    # -- drawing

    def _rule(self, kind: str, widths: list[int]) -> list[str]:
        if not self.box:
            return []
        left, fill, cross, right = _BOX[kind]
        return [left + cross.join(fill * (w + 2) for w in widths) + right]

    def _plain_row(self, cells: Sequence[Cell], widths: list[int],
                   rights: list[bool]) -> str | None:
        """A row of one-line plain cells (the common case, kept fast); None for any other."""
        parts = []
        for text, w, right in zip(cells, widths, rights, strict=True):
            if not isinstance(text, str):
                return None
            parts.append(_fitted(text if text.isprintable() else safe(text), w, right))
        if self.box:
            return "│ " + " │ ".join(parts) + " │"
        return (" " + "  ".join(parts)).rstrip()

    def _row(self, cells: Sequence[Cell], widths: list[int], color: bool,
             bar: str = "│") -> list[str]:
        if bar == "│" and not any(c.wrap for c in self.columns):
            line = self._plain_row(cells, widths, [c.justify == "right" for c in self.columns])
            if line is not None:
                return [line]
        laid: list[list[str]] = []
        for col, w, cell in zip(self.columns, widths, cells, strict=True):
            if isinstance(cell, str) and not (col.wrap and width(safe(cell)) > w):
                text = cell if cell.isprintable() else safe(cell)  # the common case: fast
                laid.append([_fitted(text, w, col.justify == "right")])
                continue
            out_lines = []
            for line in _lines_of(cell):
                pieces = _wrap_spans(line, w) if col.wrap else [line]
                for piece in pieces:
                    n = _line_width(piece)
                    if n > w:
                        piece = _cut_spans(piece, w)
                        n = _line_width(piece)
                    text = "".join(_paint(t, s, color) for t, s in piece)
                    pad = " " * (w - n)
                    out_lines.append(pad + text if col.justify == "right" else text + pad)
            laid.append(out_lines)
        height = max(len(x) for x in laid)
        if height == 1:
            rows = [[x[0] for x in laid]]
        else:
            rows = [[x[k] if k < len(x) else " " * widths[i] for i, x in enumerate(laid)]
                    for k in range(height)]
        if self.box:
            return [f"{bar} " + f" {bar} ".join(parts) + f" {bar}" for parts in rows]
        return [(" " + "  ".join(parts)).rstrip() for parts in rows]
