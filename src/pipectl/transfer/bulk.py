"""A large CSV: the usual rows that make new deals converted in SQL, the rest row by row.

The result is the one the row-by-row path gives, event ids aside (new deals are numbered in
file order either way, events keep each deal's order): the SQL side only takes rows
whose every cell is already in the form the row-by-row path would store unchanged, and the
meaning of stage, status and currency cells comes from the same Python functions, asked once
per distinct value. A row whose ref names a deal already in the database updates it row by
row, in file order. Whenever the two could differ (two rows with one new ref), the whole file
goes row by row. tests/store/test_bulk_import.py compares both paths on many files.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from operator import itemgetter

from pipectl.domain.pipeline import LOST
from pipectl.store import bulk as store
from pipectl.transfer.history import Defaults, iso
from pipectl.transfer.parsing import restore
from pipectl.transfer.rows import RowContext, stage_facts
from pipectl.values import MAX_TEXT, currency_code, exponent, fold, in_range

TEXTS = ("ref", "name", "company", "contact", "email", "phone", "owner", "source",
         "prequalified", "lost_reason", "note")
COMBO_FIELDS = ("stage", "status", "won", "closed", "lost_at_stage")


@dataclass
class Staged:
    """The file's rows in the TEMP table: which header columns, and how many rows."""

    columns: list[int]  # header index of each staged column
    rows: int

    @property
    def width(self) -> int:
        return len(self.columns)

    def cells(self, staged: list[str], header_width: int) -> list[str]:
        """A staged row back as the file's cells (unstaged columns empty)."""
        out = [""] * header_width
        for i, cell in zip(self.columns, staged, strict=True):
            out[i] = cell
        return out


# A control character or tab (what clean_text refuses or replaces), or white space other
# than " " (kept out, so that the only character ``strip`` could remove from a cell is " ").
_ODD = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]*)?")
_WHOLE = re.compile(r"[0-9]{1,12}")  # with --decimal comma, a '.' groups thousands
_PERCENT = re.compile(r"[0-9]{1,3}")
_USUAL_DAY = r"(?:19|2[0-9])[0-9][0-9]-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
_USUAL_MOMENT = _USUAL_DAY + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
_USUAL_PERCENT = r"100|[1-9]?[0-9]"


def _real(text: str) -> bool:
    """A time or day of the right shape is real (no 31 April, 25 o'clock) and in the accepted
    calendar (``values.in_range``)."""
    try:
        if len(text) > 10:
            return in_range(datetime.fromisoformat(text.removesuffix("Z")).date())
        return in_range(date.fromisoformat(text))
    except ValueError:
        return False


class RowCheck:
    """Is a row already in pipectl's own form? Then its search text, else None.

    "Own form": every text cell is what ``clean_text`` would store unchanged (and not a
    neutralised formula), times are ``YYYY-MM-DDTHH:MM:SSZ``, the close date ``YYYY-MM-DD``,
    the amount plain digits with at most one point, the percentage 0-100 in digits, and the
    deal has a name, company or ref. Only such rows are converted in SQL; the others go
    through ``parse_row``, which stores exactly these cells for such rows.
    """

    def __init__(self, ctx: RowContext) -> None:
        f = ctx.fields
        self.fallbacks = [(f[fld], more) for fld, more in ctx.fallbacks.items()]
        present = [t for t in TEXTS if t in f]
        self.texts = itemgetter(*(f[t] for t in present), 0, 0)  # 2 spare: always a tuple
        self.n_texts = len(present)
        self.moments = [f[m] for m in ("created_at", "closed_at", "updated_at") if m in f]
        self.day = f.get("close_date")
        self.amount = f.get("value")
        self.amounts = _WHOLE if ctx.decimal == "comma" else _AMOUNT
        self.percent = f.get("probability")
        # a probability written as a fraction (HubSpot's 0.4) is read row by row
        self.fraction = bool(ctx.preset and ctx.preset.probability_fraction)
        # the usual typed cells in one match: times and a close date on days 1-28 (any month
        # has them), plain amounts, percentages 0-100; a row that fails it is checked cell by
        # cell below (29-31 of a month, or a bad cell)
        typed = [(i, _USUAL_MOMENT) for i in self.moments]
        typed += [(i, pattern) for i, pattern in ((self.day, _USUAL_DAY),
                                                  (self.amount, self.amounts.pattern),
                                                  (self.percent, "(?!)" if self.fraction
                                                   else _USUAL_PERCENT))
                  if i is not None]
        self.typed = itemgetter(*(i for i, _ in typed), 0, 0)
        self.n_typed = len(typed)
        self.usual = re.compile("\x1f".join(f"(?:{p})?" for _, p in typed))
        self.names = itemgetter(*(f[k] for k in ("name", "company", "ref") if k in f), 0, 0)
        self.n_names = sum(k in f for k in ("name", "company", "ref"))
        searched = [f[k] for k in ("company", "contact", "email", "owner", "source", "ref")
                    if k in f]
        self.searched = itemgetter(*searched, 0, 0)
        self.n_searched = len(searched)
        self.note = f.get("note")  # the row's note: a line of the search text

    def __call__(self, cells: list[str]) -> str | None:
        if self.fallbacks:
            cells = list(cells)
            for i, more in self.fallbacks:
                if not cells[i]:
                    cells[i] = next((cells[j] for j in more if cells[j]), "")
        texts = self.texts(cells)[: self.n_texts]
        joined = "\n" + "\n".join(texts) + "\n"
        if (
            _ODD.search(joined)
            or "\n " in joined or " \n" in joined  # a cell starts or ends with a space
            or "\n'" in joined  # an apostrophe that is not a neutralised formula's
            or joined.count("\n") != self.n_texts + 1  # a line break in a cell
            or not (joined.isascii() or unicodedata.is_normalized("NFC", joined))
            or (len(joined) > MAX_TEXT and any(len(t) > MAX_TEXT for t in texts))
        ):
            return None
        if not self.usual.fullmatch("\x1f".join(self.typed(cells)[: self.n_typed])):
            return self.typed_cell_by_cell(cells)
        return self.search(cells)

    def typed_cell_by_cell(self, cells: list[str]) -> str | None:
        for i in self.moments:
            m = cells[i]
            if m and not (_MOMENT.fullmatch(m) and _real(m)):
                return None
        if self.day is not None:
            d = cells[self.day]
            if d and not (_DAY.fullmatch(d) and _real(d)):
                return None
        if self.amount is not None:
            a = cells[self.amount]
            if a and not self.amounts.fullmatch(a):
                return None
        if self.percent is not None:
            p = cells[self.percent]
            if p and (self.fraction or not (_PERCENT.fullmatch(p) and int(p) <= 100)):
                return None
        return self.search(cells)

    def search(self, cells: list[str]) -> str | None:
        """The deal's search text (as store.deals.search_text makes it), None without a name."""
        name = next(filter(None, self.names(cells)[: self.n_names]), "")
        if not name:
            return None
        words = " ".join([name, *filter(None, self.searched(cells)[: self.n_searched])])
        head = words.lower() if words.isascii() else fold(words)
        # the note: one line here (a cell with a line break is not in pipectl's own form)
        note = fold(cells[self.note]).strip() if self.note is not None else ""
        return f"{head}\n{note}" if note else head


def stage(conn: sqlite3.Connection, rows: Iterator[tuple[int, list[str]]], ctx: RowContext,
          header_width: int, progress: Callable[[int], None] | None = None) -> Staged:
    """Copy the cells of the fields the import reads into the TEMP table, with each row's
    search text when it is in pipectl's own form (RowCheck)."""
    used = sorted({*ctx.fields.values(), *(i for more in ctx.fallbacks.values() for i in more)})
    pick = itemgetter(*used, 0, 0)  # 2 spare: always a tuple
    width = len(used)
    check = RowCheck(ctx)
    last = used[-1]

    def staged() -> Iterator[tuple]:
        for n, (line, cells) in enumerate(rows, 1):
            if len(cells) <= last:
                cells = cells + [""] * (header_width - len(cells))
            if "\x1f'" in "\x1f" + "\x1f".join(pick(cells)[:width]):
                cells = _restored(cells, used)
            yield (n, line, check(cells), *pick(cells)[:width])
            if progress is not None and n % 1000 == 0:
                progress(n)

    count = store.stage_rows(conn, width, staged())
    return Staged(used, count)


def _restored(cells: list[str], used: list[int]) -> list[str]:
    """The row with its neutralised cells restored (``'+49 ...`` -> ``+49 ...``, as
    ``parse_row`` restores them), when that leaves no used cell starting with an apostrophe;
    else the row as it is (RowCheck then leaves it to ``parse_row``, which must restore its
    cells once, not twice). ``restore`` never empties a cell, so a field's fallback columns
    are chosen as ``parse_row`` chooses them, and ``parse_row`` reads the restored row as it
    reads the file's."""
    fixed = list(cells)
    for i in used:
        if fixed[i][:1] == "'":
            fixed[i] = restore(fixed[i])
            if fixed[i][:1] == "'":
                return cells
    return fixed


def plan(conn: sqlite3.Connection, staged: Staged, ctx: RowContext, defaults: Defaults,
         base_id: int, now: datetime) -> store.Plan:
    """What the staged cells mean: each field's staged columns, what each distinct combination
    of stage cells and each currency cell means (asked of the row-by-row path's own functions,
    and of the target pipeline), and where the new deals are numbered from."""
    p = defaults.pipeline
    col = {h: k for k, h in enumerate(staged.columns)}
    columns = {
        fld: [col[i], *(col[j] for j in ctx.fallbacks.get(fld, []))]
        for fld, i in ctx.fields.items() if fld in store.CELL_FIELDS
    }
    combo_fields = tuple(f for f in COMBO_FIELDS if f in ctx.fields)
    probe = replace(ctx, unknown_stages={})
    combos: list[store.Combo] = []
    for values in store.distinct(conn, [columns[f] for f in combo_fields]):
        values = values[: len(combo_fields)]
        if any(v[:1] == "'" for v in values):
            continue  # a neutralised cell: the row-by-row path restores it
        facts = stage_facts(dict(zip(combo_fields, values, strict=True)), 0, probe)
        if facts.errors or probe.unknown_stages:
            probe.unknown_stages.clear()
            continue  # reported, with its row, by the row-by-row path
        final = facts.stage
        if final == LOST:
            opening = facts.before_close or defaults.lost_from
        elif not p.is_open(final):
            opening = facts.before_close or defaults.won_from
        else:
            opening = final
        qualified = p.is_qualified_stage(opening)
        auto = f"imported (file stage: {facts.their_stage or opening})" if qualified else None
        won = final != LOST and p.is_won(final)
        combos.append(store.Combo(
            tuple(values), final, opening, auto, facts.lost_reason, closed=not p.is_open(final),
            won=won, after_won=won and final != p.won_key, qualified=qualified,
            unknown_qualification=(final == LOST and facts.before_close is None
                                   and not defaults.lost_known and not qualified),
        ))
    currencies: dict[str, tuple[str, int]] = {}
    for (cell,) in store.distinct(conn, [columns.get("currency", [])]):
        if cell[:1] == "'":
            continue
        try:
            code = currency_code(cell) if cell.strip() else ctx.currency
        except Exception:
            continue
        currencies[cell] = (code, exponent(code))
    return store.Plan(
        columns=columns, combo_cells=combo_fields, combos=combos, currencies=currencies,
        base_id=base_id, renumbered=store.number_rows(conn, columns.get("ref", []), base_id),
        now=iso(now),
        zero_value_lost_is_unknown=bool(ctx.preset and ctx.preset.zero_value_lost_is_unknown),
        pipeline_id=defaults.pipeline_id, won_key=p.won_key,
    )
