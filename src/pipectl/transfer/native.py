"""JSON import: pipectl's own export (deals with their events, ids kept in an empty database),
and plain JSON arrays of objects (imported like CSV rows); pipectl's CSV pair (deals.csv
--history events.csv), imported as its JSON export is.

Both are streamed, in memory that does not grow with the file: ``JsonReader`` reads the file a
piece at a time and hands out one element of the top-level array, or of the export's "deals"
array, at a time. An export's deals are validated and written in batches inside the one
transaction; a plain array is read twice (the first pass collects the keys of every object,
the columns of the rows, as a CSV file's header gives them). The CSV pair's event log is put
in a TEMP table first, then its deals are streamed as an export's are, a batch at a time, each
batch with its events read back from that table.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pipectl import stages
from pipectl.errors import UsageError
from pipectl.stages import Stage
from pipectl.store import transfer as store
from pipectl.store.db import transaction
from pipectl.transfer import history as hist
from pipectl.transfer.json_reader import JsonReader
from pipectl.transfer.rows import ImportRow, error_place, pydantic_reason
from pipectl.values import FUTURE_SLACK, clean_text, format_money, from_iso, parse_money

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
DAY = r"^\d{4}-\d{2}-\d{2}$"


def _clean(value: str | None, multiline: bool) -> str | None:
    """A text of the file as pipectl stores texts (what the CSV import and the commands do):
    NFC, no surrounding space; a control character is refused."""
    if value is None:
        return None
    try:
        return clean_text(value, "it", multiline=multiline) or None
    except UsageError as exc:
        raise ValueError(exc.message) from None


Text = Annotated[str | None, AfterValidator(lambda v: _clean(v, multiline=False))]
LongText = Annotated[str | None, AfterValidator(lambda v: _clean(v, multiline=True))]  # a note


def _name(value: str) -> str:
    cleaned = _clean(value, multiline=False)
    if not cleaned:
        raise ValueError("a deal needs a name")
    return cleaned


Name = Annotated[str, AfterValidator(_name)]
# an id is a whole number JSON readers hold exactly (2**53), far below SQLite's limit, so the
# next new deal's id (the largest + 1) always fits
DbId = Annotated[int | None, Field(default=None, ge=1, le=2**53)]
Kinds = Literal["created", "stage", "lost", "reopened", "checklist", "value", "close_date",
                "probability", "edit", "note"]


class NativeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DbId = None
    at: str = Field(pattern=ISO)
    kind: Kinds
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    value: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    close_date: str | None = Field(default=None, pattern=DAY)
    probability: int | None = Field(default=None, ge=0, le=100)
    location: bool | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    reason: Text = None
    text: LongText = None
    next_action: Text = None
    due: str | None = Field(default=None, pattern=DAY)
    field: Text = None
    old: Text = None
    new: Text = None


class NativeDeal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DbId = None
    ref: Text = None
    name: Name
    company: Text = None
    contact: Text = None
    email: Text = None
    phone: Text = None
    owner: Text = None
    source: Text = None
    stage: Stage
    lost_at_stage: Stage | None = None
    lost_reason: Text = None
    value: str | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    probability: int | None = Field(default=None, ge=0, le=100)
    close_date: str | None = Field(default=None, pattern=DAY)
    qualified_at: str | None = Field(default=None, pattern=ISO)
    prequalified_reason: Text = None
    location: bool | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    next_action: Text = None
    next_due: str | None = Field(default=None, pattern=DAY)
    created_at: str = Field(pattern=ISO)
    updated_at: str = Field(pattern=ISO)
    closed_at: str | None = Field(default=None, pattern=ISO)
    events: list[NativeEvent] | None = None


def _minor(text: str | None, currency: str | None) -> int | None:
    if text is None:
        return None
    return parse_money(text, currency or "USD")


def _deal_row(d: NativeDeal) -> dict[str, Any]:
    row = d.model_dump(exclude={"events", "value"})
    row["value_minor"] = _minor(d.value, d.currency)
    for c in hist.CRITERIA:
        row[c] = None if row[c] is None else int(row[c])
    for c in ("stage", "lost_at_stage"):
        row[c] = row[c].value if row[c] is not None else None
    return row


def _event_row(e: NativeEvent) -> dict[str, Any]:
    row = {k: v for k, v in e.model_dump(exclude={"value"}).items() if v is not None}
    for c in ("from_stage", "to_stage"):
        if c in row:
            row[c] = row[c].value
    for c in hist.CRITERIA:
        if c in row:
            row[c] = int(row[c])
    if e.value is not None:
        row["value_minor"] = _minor(e.value, e.currency)
    return row


def _as_row(number: int, d: NativeDeal) -> ImportRow:
    """A native deal's current state as an ImportRow (for a ref the database has)."""
    def moment(text: str | None) -> datetime | None:
        return from_iso(text) if text else None

    return ImportRow(
        row=number, ref=d.ref, name=d.name, company=d.company, contact=d.contact,
        email=d.email, phone=d.phone, owner=d.owner, source=d.source,
        value_minor=_minor(d.value, d.currency), currency=d.currency,
        probability=d.probability, stage=d.stage, their_stage=d.stage.value,
        before_close=d.lost_at_stage, created_at=moment(d.created_at),
        closed_at=moment(d.closed_at), updated_at=moment(d.updated_at),
        close_date=date.fromisoformat(d.close_date) if d.close_date else None,
        lost_reason=d.lost_reason, prequalified=d.prequalified_reason,
    )


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc


def run(conn: sqlite3.Connection, path: Path, opts: Any, now: datetime):
    from pipectl.transfer.importer import Summary, run_rows

    summary = Summary(file=str(path), format="json", preset="pipectl", encoding="utf-8",
                      dry_run=opts.dry_run)
    with _open(path) as fh:
        if JsonReader(fh, path).first() == "[":
            return run_rows(conn, JsonRows(path, fh), opts, now, summary)
        return _run_native(conn, _Export(path, fh), opts, now, summary)


class _Export:
    """pipectl's export object, its "deals" array streamed one deal at a time.

    The object's other members are read on the way (the format number may come before or
    after the deals). As with ``json.load``, a key given twice counts once, with its last
    value: when a later "deals" turns up, ``again()`` asks for a new pass that streams it.
    """

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self.fh = path, fh
        self.size = path.stat().st_size
        self.target = 1  # which "deals" member is streamed
        self.is_object = self.is_list = False
        self.found = 0
        self.version: Any = FORMAT

    def deals(self) -> Iterator[tuple[int, Any]]:
        reader = JsonReader(self.fh, self.path)
        self.is_object = reader.first() == "{"
        self.is_list = False
        self.found = 0
        self.version = FORMAT
        if not self.is_object:
            reader.value()
        else:
            for key in reader.members():
                if key == "deals":
                    self.found += 1
                    self.is_list = reader.peek() == "["
                    if self.is_list and self.found == self.target:
                        yield from enumerate(reader.array(), 1)  # "row N": the Nth deal
                    else:
                        reader.skip()
                elif key == "pipectl_export":
                    self.version = reader.value()
                else:
                    reader.skip()
        reader.end()

    def check(self) -> None:
        """After a whole pass: the file is an export this pipectl reads."""
        path, version = self.path, self.version
        if not (self.is_object and self.found and self.is_list):
            raise UsageError(
                f"{path} is neither a pipectl export nor a JSON array of deals",
                hint="pipectl export --format json --events makes one",
            )
        if not isinstance(version, int) or isinstance(version, bool):
            raise UsageError(
                f"{path}: 'pipectl_export' should be a format number, not {version!r}"
            )
        if version > FORMAT:
            raise UsageError(f"{path} was exported by a newer pipectl", hint="upgrade pipectl")

    def prepare(self, conn: sqlite3.Connection) -> None:
        pass

    def finish(self, conn: sqlite3.Connection) -> None:
        pass

    def again(self) -> bool:
        if self.found > self.target:
            self.target = self.found
            return True
        return False


# ---------------------------------------------------------------- pipectl's CSV pair

_BOOLS = {"true": True, "false": False}


def is_native_csv(header: list[str]) -> bool:
    from pipectl.transfer.exporter import DEAL_CSV

    return tuple(header) == DEAL_CSV


_CRITERIA = ("location", "budget", "authority", "need")


def _open_csv(path: Path, opts: Any, columns: tuple[str, ...]):
    from pipectl.transfer.parsing import CsvSource

    src = CsvSource(path, opts.encoding)
    if tuple(src.header) != columns:
        src.close()
        raise UsageError(
            f"{path} is not a pipectl CSV export of the expected kind",
            hint="pipectl export -o deals.csv and pipectl export --events -o events.csv",
        )
    return src


def _csv_records(src: Any, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a pipectl CSV export as (row number, record): None for an empty cell,
    booleans for the checklist; a short row lacks its last keys. The header is row 1, as in a
    spreadsheet and in the bad-row report of any CSV."""
    from pipectl.transfer.parsing import restore

    for number, cells in src.rows():
        rec: dict[str, Any] = {}
        for col, cell in zip(columns, cells, strict=False):
            text = restore(cell) if cell[:1] == "'" else cell
            rec[col] = None if text == "" else _BOOLS.get(text, text) if col in _CRITERIA \
                else text
        yield number, rec


def _key(deal_id: str | None) -> int | str:
    """A deal id as the events' TEMP table keys it (a plain number as an integer)."""
    text = deal_id or ""
    if text.isascii() and text.isdigit() and len(text) < 19 and (text[0] != "0" or text == "0"):
        return int(text)
    return text


class _CsvPair:
    """pipectl's CSV pair, as _run_native reads an export: the events file is first put in a
    TEMP table (``prepare``, inside the import's transaction), then the deals file is streamed
    a batch at a time, each batch's deals with their events read back from that table."""

    def __init__(self, path: Path, events_path: Path, opts: Any, summary) -> None:
        from pipectl.transfer.exporter import EVENT_CSV

        self.path, self.events_path, self.opts, self.summary = path, events_path, opts, summary
        self.size = path.stat().st_size
        self.columns = EVENT_CSV[2:]  # deal_id and deal_ref are the deal's
        self.conn: sqlite3.Connection | None = None
        self._count_events()

    def prepare(self, conn: sqlite3.Connection) -> None:
        from pipectl.transfer.exporter import EVENT_CSV
        from pipectl.transfer.parsing import restore

        self.conn = conn
        width = len(EVENT_CSV)
        src = _open_csv(self.events_path, self.opts, EVENT_CSV)
        try:
            def rows() -> Iterator[tuple[Any, ...]]:
                for _, cells in src.rows():
                    # restore() changes only a cell that starts with an apostrophe
                    texts = [restore(c) if c[:1] == "'" else c for c in cells[:width]]
                    texts += [""] * (width - len(texts))
                    yield (_key(texts[0]), *texts[2:])

            self.summary.history_rows += store.stash_csv_events(conn, self.columns, rows())
        finally:
            src.close()

    def finish(self, conn: sqlite3.Connection) -> None:
        store.drop_csv_events(conn)

    def deals(self) -> Iterator[tuple[int, Any]]:
        from pipectl.transfer.exporter import DEAL_CSV
        from pipectl.transfer.importer import BATCH

        self._count_events()
        src = _open_csv(self.path, self.opts, DEAL_CSV)
        try:
            batch: list[tuple[int, dict[str, Any]]] = []
            for rec in _csv_records(src, DEAL_CSV):
                batch.append(rec)
                if len(batch) >= BATCH:
                    yield from self._with_events(batch)
                    batch = []
            yield from self._with_events(batch)
        finally:
            src.close()

    def _with_events(self, batch: list[tuple[int, dict[str, Any]]]
                     ) -> Iterator[tuple[int, dict[str, Any]]]:
        assert self.conn is not None
        columns = self.columns
        keys = [_key(d.get("id")) for _, d in batch]
        by_key: dict[int | str, list[dict[str, Any]]] = {}
        for row in store.stashed_csv_events(self.conn, keys):
            by_key.setdefault(row[0], []).append({
                col: _BOOLS.get(text, text) if col in _CRITERIA else text
                for col, text in zip(columns, row[2:], strict=True) if text != ""
            })
        for (number, d), key in zip(batch, keys, strict=True):
            d["events"] = by_key.get(key, [])
            if key in self.seen and d["events"] and self.twice is None:
                self.twice = d.get("id")
            self.seen.add(key)
            self.used += len(d["events"])
            yield number, d

    def _count_events(self) -> None:
        """A new pass: no event handed to a deal yet (check() compares)."""
        self.used = 0  # events handed to deals
        self.twice: Any = None  # a deal id met again, with events
        self.seen: set[int | str] = set()

    def check(self) -> None:
        """Every event of the log belongs to exactly one deal of the deals file: none dropped
        unseen, none given to two deals."""
        if self.twice is not None:
            raise UsageError(
                f"{self.path}: deal id {self.twice} is there twice, and its events would go to "
                "both; nothing was imported",
                hint="import a deals file and the event log exported together",
            )
        left = self.summary.history_rows - self.used
        if left:
            raise UsageError(
                f"{self.events_path} holds {left} event{'s' if left != 1 else ''} of no deal "
                f"in {self.path}; nothing was imported",
                hint="export both files with the same --status, or with none",
            )

    def again(self) -> bool:
        return False


def run_csv(conn: sqlite3.Connection, path: Path, events_path: Path, opts: Any, now: datetime):
    """pipectl's CSV export of deals with its CSV event log (--history): exact, like JSON."""
    from pipectl.transfer.importer import Summary

    summary = Summary(file=str(path), format="csv", preset="pipectl", encoding="utf-8",
                      dry_run=opts.dry_run)
    return _run_native(conn, _CsvPair(path, events_path, opts, summary), opts, now, summary)


SAVEPOINT = "import_json"


def _run_native(conn: sqlite3.Connection, source: _Export | _CsvPair, opts: Any, now: datetime,
                summary):
    """Validate and write the deals of ``source`` in batches, in one transaction.

    The file's ids are kept when the database is empty and every deal and event has an id
    that no other has; that is tried first and, as soon as it turns out wrong, the pass starts
    again from a savepoint without them. Nothing is held but the current batch.
    """
    from pipectl.transfer.importer import BULK_BYTES, _Rollback, finish

    defaults = hist.Defaults(won_from=Stage.NEGOTIATION, lost_from=Stage.PROSPECTING, now=now)
    try:
        with transaction(conn):
            source.prepare(conn)
            empty = store.is_empty(conn)
            # a big load into an empty database: build the indexes once, at the end
            indexes = store.drop_indexes(conn) if empty and source.size >= BULK_BYTES else []
            keep = empty
            while True:
                store.savepoint(conn, SAVEPOINT)
                flags = hist.Flags()
                try:
                    _Load(conn, defaults, flags, summary, keep).run(source.deals())
                    source.check()
                    again = source.again()
                except _NotKept:
                    keep, again = False, True
                if not again:
                    store.release_savepoint(conn, SAVEPOINT)
                    break
                store.rollback_to_savepoint(conn, SAVEPOINT)
                store.drop_json_scratch(conn)
                summary.rows = 0
                summary.restart()
            store.drop_json_scratch(conn)
            source.finish(conn)
            store.create_indexes(conn, indexes)
            finish(summary, flags, opts.dry_run)
    except _Rollback:
        pass
    return summary


FORMAT = 1
MAX_REPORTED = 50


class _NotKept(Exception):
    """The file's ids cannot be kept after all (a deal or event without one, or one twice)."""


Checked = tuple[int, NativeDeal, dict[str, Any], list[dict[str, Any]]]


def _check(number: int, raw: Any, summary, now: datetime) -> Checked | None:
    """A deal of the file validated, with its row and event rows; None if bad (reported)."""
    try:
        deal = NativeDeal.model_validate(raw)
        problems = _times(deal, now)
        if not problems:
            row, evs = _deal_row(deal), [_event_row(e) for e in deal.events or ()]
            if evs:
                evs = sorted(evs, key=lambda e: (e["at"], e.get("id") or 0))
                problems = _history(deal, row, evs)
        if not problems:
            return number, deal, row, evs
        summary.bad_rows += 1
        for loc, reason in problems:
            summary.bad_cells += 1
            if len(summary.errors) < MAX_REPORTED:
                summary.errors.append((number, loc, reason))
    except ValidationError as exc:
        summary.bad_rows += 1
        for err in exc.errors():
            summary.bad_cells += 1
            if len(summary.errors) < MAX_REPORTED:
                summary.errors.append((number, error_place(err["loc"]), pydantic_reason(err)))
    except UsageError as exc:
        summary.bad_rows += 1
        summary.bad_cells += 1
        if len(summary.errors) < MAX_REPORTED:
            summary.errors.append((number, "value", exc.message))
    return None


_MOMENTS = ("created_at", "updated_at", "closed_at", "qualified_at")
_DAYS = ("close_date", "next_due")


def _times(d: NativeDeal, now: datetime) -> list[tuple[str, str]]:
    """The deal's and its events' times: real moments (days), none of them in the future.
    [(where, what is wrong), ...]"""
    latest = now + FUTURE_SLACK
    out: list[tuple[str, str]] = []

    def moment(where: str, text: str | None) -> None:
        if text is None:
            return
        try:
            when = from_iso(text)
        except ValueError:
            out.append((where, f"{text!r} is not a real moment"))
            return
        if when > latest:
            out.append((where, f"{text} is in the future"))

    def day(where: str, text: str | None) -> None:
        if text is None:
            return
        try:
            date.fromisoformat(text)
        except ValueError:
            out.append((where, f"{text!r} is not a real date"))

    for f in _MOMENTS:
        moment(f, getattr(d, f))
    for f in _DAYS:
        day(f, getattr(d, f))
    for i, e in enumerate(d.events or ()):
        moment(f"events.{i}.at", e.at)
        day(f"events.{i}.close_date", e.close_date)
        day(f"events.{i}.due", e.due)
    return out


# the deal's fields that its events make (the texts start from what the first edit of each
# found, or the deal's own when never edited)
_PROJECTED = ("stage", "lost_at_stage", "lost_reason", "value_minor", "currency", "probability",
              "close_date", "qualified_at", "prequalified_reason", *hist.CRITERIA,
              "next_action", "next_due", "created_at", "updated_at", "closed_at",
              *hist.DEAL_TEXTS)


# the fields each kind of event carries (beyond id, at, kind), as pipectl's commands and its
# import write them: (required, also allowed)
_STAGES = ("from_stage", "to_stage")
_EVENT_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "created": ({"to_stage", "currency"}, {"value", "close_date", "probability", "reason"}),
    "stage": (set(_STAGES), {"reason", "text"}),
    "lost": ({*_STAGES, "reason"}, {"text"}),
    "reopened": (set(_STAGES), {"reason", "text"}),
    "checklist": (set(), {*hist.CRITERIA, "text"}),
    "note": ({"text"}, {"next_action", "due"}),
    "value": ({"currency"}, {"value"}),
    "close_date": (set(), {"close_date"}),
    "probability": (set(), {"probability"}),
    "edit": ({"field"}, {"old", "new"}),
}
_CARRIED = sorted({f for need, may in _EVENT_FIELDS.values() for f in need | may})


def _shape(e: NativeEvent) -> list[tuple[str, str]]:
    """[(field, what is wrong)] when the event carries a field its kind never has, or lacks
    one it always has."""
    need, may = _EVENT_FIELDS[e.kind]
    given = {f for f in _CARRIED if getattr(e, f) is not None}
    out = [(f, f"a {e.kind!r} event has no {f}") for f in sorted(given - need - may)]
    out += [(f, f"a {e.kind!r} event needs its {f}") for f in sorted(need - given)]
    return out


def _history(d: NativeDeal, row: dict[str, Any], evs: list[dict[str, Any]]
             ) -> list[tuple[str, str]]:
    """The events, in the order they are stored (time, then id: the file may list them in
    any order), make a history pipectl could have written, and the deal's fields are what they
    make of it; else [(where, what is wrong), ...] (where: the event as the file numbers it)."""
    index = {id(e): i for i, e in enumerate(evs)}
    out = [(f"events.{i}.{f}", why) for i, e in enumerate(d.events or ()) for f, why in _shape(e)]
    if out:
        return out
    deal = hist.blank_deal()
    for f in hist.DEAL_TEXTS:  # each text as it was before its first edit
        first = next((e for e in evs if e["kind"] == "edit" and e.get("field") == f), None)
        deal[f] = first.get("old") if first is not None else row[f]
    for n, e in enumerate(evs):
        where = f"events.{index[id(e)]}"
        kind = e["kind"]
        if (kind == "created") != (n == 0):
            out.append((f"{where}.kind", "a deal's first event, and only that one, is "
                        f"'created' (this one is {kind!r})"))
            break
        to, src = e.get("to_stage"), e.get("from_stage")
        if kind in ("created", "stage", "lost", "reopened") and to is None:
            out.append((f"{where}.to_stage", f"a {kind!r} event needs its stage"))
            break
        if kind in ("stage", "lost", "reopened") and src != deal["stage"]:
            out.append((f"{where}.from_stage", f"{src!r} is not the stage the deal was in "
                        f"({deal['stage']!r})"))
            break
        lost = Stage.LOST.value
        if kind == "lost" and not stages.is_open(Stage(src)):
            out.append((f"{where}.from_stage", f"a deal is lost from an open stage, not {src!r}"))
            break
        if (kind == "lost") != (to == lost) and to is not None:
            out.append((f"{where}.to_stage", f"a {kind!r} event cannot go to {to!r}"))
            break
        if (kind == "reopened") != (src == lost) and kind in ("stage", "reopened"):
            out.append((f"{where}.kind", f"a deal leaves {lost!r} by a 'reopened' event "
                        f"(this one is {kind!r}, from {src!r})"))
            break
        if kind == "edit":
            fld = e.get("field")
            if fld not in hist.DEAL_TEXTS:
                out.append((f"{where}.field", f"{fld!r} is not a text field of a deal"))
                break
            if e.get("old") != deal[fld]:
                out.append((f"{where}.old", f"{e.get('old')!r} is not the deal's {fld} "
                            f"then ({deal[fld]!r})"))
                break
            if fld == "name" and not e.get("new"):
                out.append((f"{where}.new", "a deal's name may not be empty"))
                break
        hist.project(deal, e)
    if out:
        return out
    for f in _PROJECTED:
        given, made = row[f], deal[f]
        if f == "value_minor":  # as written: the same digits in another currency are told
            f, given = "value", d.value  # by the currency
            made = None if made is None else format_money(made, deal["currency"] or d.currency)
        elif f in hist.CRITERIA:
            given, made = getattr(d, f), None if made is None else bool(made)
        if given != made:
            out.append((f, f"{given!r} is not what its events make of it ({made!r}); a "
                        "deal's fields follow from its events"))
    return out


def _ids_in_time_order(evs: list[dict[str, Any]]) -> bool:
    """Reports read a deal's history in id order: kept ids must follow the times."""
    ids = [e.get("id") for e in evs]
    return all(a is not None and b is not None and a < b for a, b in pairwise(ids))


class _Load:
    """One pass over the deals: validated one by one, written a batch at a time.

    A deal whose ref (or, without a ref, id and creation moment) is already in the
    database updates that deal (a ref twice in the file is a bad row); any other is added,
    with the file's ids if ``keep`` (events then in the file's order of ids, those without one
    after them) or new ones (events in file order). After a bad deal nothing more is written:
    the rest is only checked, for the report.
    """

    def __init__(self, conn: sqlite3.Connection, defaults: hist.Defaults, flags: hist.Flags,
                 summary, keep: bool) -> None:
        self.conn, self.defaults, self.flags, self.summary = conn, defaults, flags, summary
        self.keep = keep
        self.first_new = store.next_deal_id(conn)  # deals below it were there before
        self.next_id = self.first_new
        self.batch: list[Checked] = []
        self.writing = True
        self.refs: dict[str, int] = {}  # ref -> its row: each ref once in a file

    def run(self, raws: Iterable[tuple[int, Any]]) -> None:
        from pipectl.transfer.importer import BATCH

        summary = self.summary
        for number, raw in raws:
            summary.rows += 1
            checked = _check(number, raw, summary, self.defaults.now)
            if checked is not None and checked[1].ref:
                ref = checked[1].ref
                if ref in self.refs:  # an export never holds two deals with one ref
                    summary.bad_rows += 1
                    summary.bad_cells += 1
                    if len(summary.errors) < MAX_REPORTED:
                        summary.errors.append((number, "ref", (
                            f"{ref!r} is also the ref of row {self.refs[ref]}; "
                            "a pipectl export never holds two deals with one ref")))
                    checked = None
                else:
                    self.refs[ref] = number
            if checked is None:
                self.writing = False
                self.batch.clear()
                continue
            if not self.writing:
                continue
            deal = checked[1]
            if self.keep and (deal.id is None or any(e.id is None for e in deal.events or ())
                              or not _ids_in_time_order(checked[3])):
                raise _NotKept  # new ids, given in time order, as the commands give them
            self.batch.append(checked)
            if len(self.batch) >= BATCH:
                self.flush()
        self.flush()
        if self.keep and self.writing:
            store.insert_stashed_events(self.conn)

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch or not self.writing:
            return
        try:
            self._write(batch)
        except sqlite3.IntegrityError as exc:
            if self.keep and ("deals.id" in str(exc) or "events.id" in str(exc)):
                raise _NotKept from exc  # an id twice in the file
            raise

    def _write(self, batch: list[Checked]) -> None:
        conn, keep, summary = self.conn, self.keep, self.summary
        known = store.deals_by_ref(conn, [d.ref for _, d, _, _ in batch if d.ref])
        # a deal without a ref is the same deal when its id and creation moment match one
        # that was there before the import (renamed since or not)
        by_id = {
            i: row for i, row in store.deals_by_id(conn, [
                d.id for _, d, _, _ in batch
                if not d.ref and d.id is not None and d.id < self.first_new
            ]).items() if row["ref"] is None
        }
        same = {
            d.id: by_id[d.id] for _, d, _, _ in batch
            if not d.ref and d.id in by_id
            and by_id[d.id]["created_at"] == d.created_at  # a rename is still the deal
        }
        ids_known = [d["id"] for d in known.values()] + [d["id"] for d in same.values()]
        notes = store.note_texts(conn, ids_known) if ids_known else {}
        new_rows: list[dict] = []
        changed: dict[int, dict] = {}
        events: list[dict] = []
        seen: dict[str, dict] = dict(known)
        for number, d, row, evs in batch:
            current = seen.get(d.ref) if d.ref else same.get(d.id)  # type: ignore[arg-type]
            if current is not None:
                if keep:  # not in an empty database, whose file holds each ref once
                    raise _NotKept
                evs = hist.update_deal(current, _as_row(number, d), self.defaults,
                                       notes.get(current["id"], set()))
                if evs:
                    changed.setdefault(current["id"], current)
                    summary.updated += 1
                else:
                    summary.unchanged += 1
                for e in evs:
                    e["deal_id"] = current["id"]
                events.extend(evs)
                continue
            if d.events:  # sorted by _check
                if not keep:
                    for e in evs:
                        e.pop("id", None)
            else:
                row, evs = hist.new_deal(_as_row(number, d), self.defaults, self.flags)
            if keep:
                row["id"] = d.id
            else:
                row["id"] = self.next_id
                self.next_id += 1
            for e in evs:
                e["deal_id"] = row["id"]
            new_rows.append(row)
            if d.ref:
                seen[d.ref] = row
            events.extend(evs)
            summary.added += 1
        store.insert_deals(conn, new_rows)
        new_ids = {r["id"] for r in new_rows}
        store.update_deals(conn, [r for i, r in changed.items() if i not in new_ids])
        if keep:
            store.insert_events(conn, [e for e in events if "id" in e], with_id=True)
            store.stash_events(conn, [e for e in events if "id" not in e])
        else:
            store.insert_events(conn, events)
        summary.events += len(events)


class JsonRows:
    """A JSON array of flat objects, read like a CSV file (keys are the columns).

    Read twice, one object at a time: the first pass checks the file and collects the keys of
    all objects (the header, in the order they first appear), the second hands out the rows.
    """

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self._fh = path, fh
        self.encoding = "utf-8"
        self.delimiter = None
        header: dict[str, None] = {}
        size = 0
        objects = True
        reader = JsonReader(fh, path)
        for item in reader.array():
            size += 1
            if isinstance(item, dict):
                header.update(dict.fromkeys(item))
            else:
                objects = False
        reader.end()
        if not objects:
            raise UsageError(f"{path}: a JSON array of deals must hold objects")
        self.count = size
        self.size = os.fstat(fh.fileno()).st_size  # bytes, as CsvSource's (BULK_BYTES, progress)
        self.header = list(header)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        header = self.header
        # "row N" of a bad-row report is the array's Nth object (as for pipectl's export)
        for number, item in enumerate(JsonReader(self._fh, self.path).array(), 1):
            if not isinstance(item, dict):
                raise UsageError(f"{self.path} changed while it was imported")
            yield number, ["" if item.get(h) is None else _text(item.get(h)) for h in header]

    def position(self) -> int:
        """Bytes read so far (by whole chunks of the reader)."""
        try:
            return min(self._fh.tell(), self.size)
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        pass


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)
