"""Reading pipectl's CSV pair (``pipectl export -o deals.csv`` and ``pipectl export --events -o
events.csv``) as its JSON export is read: each deal with its events, one at a time.

The events file is first put in a TEMP table (``prepare``, inside the import's transaction),
then the deals file is streamed a batch at a time, each batch's deals with their events read
back from that table. Either format: both files of one export (their headers say which). The
pair carries no pipeline definitions (the JSON export does): the database must have every
pipeline its deals name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipectl.errors import UsageError
from pipectl.store import transfer as store
from pipectl.transfer import common
from pipectl.transfer.formats import (
    DEAL_CSV,
    DEAL_CSV_V1,
    EVENT_CSV,
    EVENT_CSV_V1,
    V1_CRITERIA,
    deal_csv_version,
)
from pipectl.transfer.parsing import CsvSource, restore

_BOOLS = {"true": True, "false": False}


def is_native_csv(header: list[str]) -> bool:
    return deal_csv_version(header) is not None


def _value(col: str, text: str) -> Any:
    """A cell of the export as the JSON form has it: the checklist an object (format 2) or
    booleans (format 1), an empty cell None."""
    if text == "":
        return None
    if col in V1_CRITERIA:
        return _BOOLS.get(text, text)
    if col == "checklist":
        try:
            return json.loads(text)
        except ValueError:
            return text  # reported: "should be a JSON object"
    return text


def _open_csv(path: Path, opts: Any, columns: tuple[str, ...], name: Path | None = None
              ) -> CsvSource:
    src = CsvSource(path, opts.encoding, name)
    if tuple(src.header) != columns:
        src.close()
        raise UsageError(
            f"{src.path} is not a pipectl CSV export of the expected kind",
            hint="pipectl export -o deals.csv and pipectl export --events -o events.csv, "
            "from one pipectl",
        )
    return src


def _records(src: CsvSource, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a pipectl CSV export as (row number, record); a short row lacks its last
    keys. The header is row 1, as in a spreadsheet and in the bad-row report of any CSV."""
    for number, cells in src.rows():
        rec: dict[str, Any] = {}
        for col, cell in zip(columns, cells, strict=False):
            rec[col] = _value(col, restore(cell) if cell[:1] == "'" else cell)
        yield number, rec


def _key(deal_id: str | None) -> int | str:
    """A deal id as the events' TEMP table keys it (a plain number as an integer)."""
    text = deal_id or ""
    if text.isascii() and text.isdigit() and len(text) < 19 and (text[0] != "0" or text == "0"):
        return int(text)
    return text


class CsvPair:
    """pipectl's CSV pair, read as the JSON export is (see the module's docstring)."""

    def __init__(self, path: Path, events_path: Path, opts: Any, summary: common.Summary,
                 name: Path | None = None) -> None:
        # the files read; how messages call them (standard input is read from a copy)
        self.file, self.events_file = path, events_path
        self.path, self.events_path = name or path, opts.history_name or events_path
        self.opts, self.summary = opts, summary
        self.size = path.stat().st_size
        src = CsvSource(path, opts.encoding, name)
        try:
            self.version = deal_csv_version(src.header) or 0
        finally:
            src.close()
        self.deal_columns = DEAL_CSV if self.version == 2 else DEAL_CSV_V1
        self.event_columns = EVENT_CSV if self.version == 2 else EVENT_CSV_V1
        self.columns = self.event_columns[2:]  # deal_id and deal_ref are the deal's
        self.conn: sqlite3.Connection | None = None
        self._count_events()

    def prepare(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        width = len(self.event_columns)
        src = _open_csv(self.events_file, self.opts, self.event_columns, self.events_path)
        try:
            def rows() -> Iterator[tuple[Any, ...]]:
                for _, cells in src.rows():
                    # restore() changes only a cell that starts with an apostrophe
                    texts = [restore(c) if c[:1] == "'" else c for c in cells[:width]]
                    texts += [""] * (width - len(texts))
                    yield (_key(texts[0]), *texts[2:])

            self.summary.history_rows += store.stash_csv_events(conn, self.columns, rows())
            for number, problems in src.problems:  # the event log's framing: the whole file
                column, reason = problems[0]
                raise UsageError(f"{self.events_path}: row {number}, column {column!r}: "
                                 f"{reason}; nothing was imported")
        finally:
            src.close()

    def finish(self, conn: sqlite3.Connection) -> None:
        store.drop_csv_events(conn)

    def deals(self) -> Iterator[tuple[int, Any]]:
        self._count_events()
        src = _open_csv(self.file, self.opts, self.deal_columns, self.path)
        try:
            batch: list[tuple[int, dict[str, Any]]] = []
            for rec in _records(src, self.deal_columns):
                batch.append(rec)
                if len(batch) >= common.BATCH:
                    yield from self._with_events(batch)
                    batch = []
            yield from self._with_events(batch)
            for number, problems in src.problems:  # the file's framing: bad rows
                self.summary.rows += 1
                self.summary.bad(number, problems)
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
                col: _value(col, text)
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
