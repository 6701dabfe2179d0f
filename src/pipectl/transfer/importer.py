"""The import: read a file row by row, validate, build histories, write in one transaction.

Rows are streamed and written in batches (executemany) inside ONE transaction: a Ctrl-C, a kill
or a bad row leaves the database as it was. Refs are looked up once per batch, not per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipectl import stages
from pipectl.errors import PipectlError, UsageError
from pipectl.stages import Stage
from pipectl.store import transfer as store
from pipectl.store.db import transaction
from pipectl.transfer import history as hist
from pipectl.transfer.fields import (
    FIELDS,
    PRESETS,
    Preset,
    detect,
    fallbacks,
    get_preset,
    norm,
    parse_pairs,
    resolve_columns,
)
from pipectl.transfer.parsing import CsvSource
from pipectl.transfer.rows import ImportRow, RowContext, parse_row

BATCH = 2000
BULK_BYTES = 1_000_000  # from this file size on (~5,000 rows), a CSV takes the bulk road
# (transfer/bulk.py), and an import into an empty database drops and rebuilds the secondary
# indexes (inside its transaction)
MAX_REPORTED = 50  # bad cells listed in the report; all are counted

Progress = Callable[[int, int], None]  # (bytes read, file size)


@dataclass
class Options:
    fmt: str | None = None  # csv | json (else from the file name)
    preset: str | None = None
    maps: list[str] = field(default_factory=list)
    stage_maps: list[str] = field(default_factory=list)
    currency: str = "USD"
    encoding: str | None = None
    dayfirst: bool = False
    dry_run: bool = False
    history: Path | None = None


@dataclass
class Summary:
    file: str
    format: str = "csv"
    preset: str | None = None
    preset_detected: bool = False
    encoding: str | None = None
    delimiter: str | None = None
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0
    history_rows: int = 0
    mapped: dict[str, str] = field(default_factory=dict)  # field -> column
    unmapped: list[str] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    bad_rows: int = 0
    bad_cells: int = 0
    dry_run: bool = False


    def restart(self) -> None:
        """Forget the counts of an attempt that was undone (the file is read again)."""
        self.added = self.updated = self.unchanged = self.events = 0
        self.bad_rows = self.bad_cells = 0
        self.errors.clear()


class ImportFailed(PipectlError):
    """Bad rows: nothing was written; the summary holds the report."""

    def __init__(self, summary: Summary) -> None:
        n = summary.bad_rows
        super().__init__(
            f"{n} bad row{'s' if n != 1 else ''} in {summary.file}; nothing was imported",
            hint="the report above gives row, column and reason of each",
        )
        self.summary = summary


class _Rollback(Exception):
    pass


def finish(summary: Summary, flags: hist.Flags, dry_run: bool) -> None:
    """The end of an import, inside its transaction: bad rows fail it (reporting no counts of
    what would have been added); else its warnings are told, and a dry run rolls back."""
    if summary.bad_rows:
        summary.added = summary.updated = summary.unchanged = summary.events = 0
        raise ImportFailed(summary)
    summary.warnings = {  # in one order whichever road counted them
        hist.warning_text(k, flags.counts[k]): flags.counts[k]
        for k in hist.WARNINGS if flags.counts.get(k)
    }
    if dry_run:
        raise _Rollback


class NotNew(Exception):
    """A bulk import met a row that is not what the SQL side took it for (it updates a deal
    this import made, or a deal it expected to update is not there): the file goes row by row
    instead."""


def stage_map(preset: Preset | None, items: list[str]) -> dict[str, Stage]:
    from pipectl.transfer.rows import _exact_stage

    out: dict[str, Stage] = dict(preset.stages) if preset else {}
    for theirs, ours in parse_pairs(items, "--stage-map"):
        stage = _exact_stage(ours)
        if stage is None:
            raise UsageError(
                f"--stage-map {theirs}={ours}: unknown stage {ours!r}",
                hint=f"use one of: {', '.join(Stage)}",
            )
        out[norm(theirs)] = stage
    return out


def _unknown_stages_error(ctx: RowContext) -> UsageError:
    names = list(ctx.unknown_stages)
    col = ctx.column("stage")
    first = names[0]
    shown = ", ".join(f"{n!r} (row {ctx.unknown_stages[n]})" for n in names[:8])
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    flags = " ".join(f'--stage-map "{n}=STAGE"' for n in names[:3])
    return UsageError(
        f"unknown stage{'s' if len(names) > 1 else ''} in column {col!r}: {shown}{more}; "
        "nothing was imported",
        hint=f'map {"each" if len(names) > 1 else "it"}, e.g. {flags or first} '
        f"(STAGE is one of: {', '.join(Stage)})",
    )


class _Writer:
    """Collects a batch of rows and writes it: new deals, changed deals, their events."""

    def __init__(self, conn: sqlite3.Connection, defaults: hist.Defaults, summary: Summary,
                 flags: hist.Flags, histories: dict[str, list[ImportRow]]) -> None:
        self.conn = conn
        self.defaults = defaults
        self.summary = summary
        self.flags = flags
        self.histories = histories
        self.next_id = store.next_deal_id(conn)
        self.batch: list[tuple[ImportRow, int | None]] = []
        self.writing = True
        # bulk import: each row comes with its deal id when the SQL side found it new, None
        # when it updates a deal already there; a row that turns out otherwise (it names a
        # deal this import made, or none) stops the writer: the file goes row by row
        self.bulk = False

    def add(self, row: ImportRow, deal_id: int | None = None) -> None:
        self.batch.append((row, deal_id))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch or not self.writing:
            return
        known = store.deals_by_ref(self.conn, [r.ref for r, _ in batch if r.ref])
        notes = store.note_texts(self.conn, [d["id"] for d in known.values()]) if known else {}
        state: dict[str, hist.Row] = dict(known)
        new: list[hist.Row] = []
        changed: dict[int, hist.Row] = {}
        events: list[hist.Row] = []
        new_ids: set[int] = set()
        for row, deal_id in batch:
            deal = state.get(row.ref) if row.ref else None
            if self.bulk and (deal is None) != (deal_id is not None):
                raise NotNew
            if deal is None:
                deal, evs = hist.new_deal(row, self.defaults, self.flags,
                                          self.histories.get(row.ref or ""))
                deal["id"] = deal_id or self.next_id
                self.next_id = deal["id"] + 1
                new.append(deal)
                new_ids.add(deal["id"])
                if row.ref:
                    state[row.ref] = deal
                self.summary.added += 1
            else:
                evs = hist.update_deal(deal, row, self.defaults, notes.get(deal["id"], set()),
                                       self.flags)
                if evs:
                    if deal["id"] not in new_ids:
                        changed[deal["id"]] = deal
                    self.summary.updated += 1
                else:
                    self.summary.unchanged += 1
            for e in evs:
                e["deal_id"] = deal["id"]
            events.extend(evs)
        store.insert_deals(self.conn, new)
        store.update_deals(self.conn, list(changed.values()))
        store.insert_events(self.conn, events)
        self.summary.events += len(events)


class _Feeder:
    """One row of the file into the writer, or into the report of bad cells."""

    def __init__(self, ctx: RowContext, summary: Summary, writer: _Writer) -> None:
        self.ctx, self.summary, self.writer = ctx, summary, writer

    def __call__(self, number: int, cells: list[str], deal_id: int | None = None) -> None:
        summary = self.summary
        parsed = parse_row(number, cells, self.ctx)
        if isinstance(parsed, list):
            summary.bad_rows += 1
            summary.bad_cells += len(parsed)
            self.writer.writing = False
            for col, reason in parsed:
                if len(summary.errors) < MAX_REPORTED:
                    summary.errors.append((number, col, reason))
        else:
            self.writer.add(parsed, deal_id)


def _bulk(conn: sqlite3.Connection, src: CsvSource, ctx: RowContext, defaults: hist.Defaults,
          flags: hist.Flags, summary: Summary, writer: _Writer, now: datetime,
          progress: Progress | None) -> _Writer:
    """A large file: stage it, convert the usual rows that make new deals in SQL, feed the
    others (and the rows that update deals already there) row by row (see transfer/bulk.py).
    Returns the writer that holds the rest."""
    from pipectl.store import bulk as sql
    from pipectl.transfer import bulk

    def staged(n: int) -> None:
        if progress is not None:
            progress(src.position(), src.size)

    width = len(src.header)
    rows = bulk.stage(conn, src.rows(), ctx, width, staged)
    summary.rows = rows.rows
    base = writer.next_id - 1
    the_plan = bulk.plan(conn, rows, ctx, defaults, base, now)
    store.savepoint(conn, "import_bulk")
    try:
        deals, events, warnings = sql.convert(conn, the_plan)
        writer.bulk = True
        feed = _Feeder(ctx, summary, writer)
        for deal_id, line, cells in sql.leftover_rows(conn, rows.width, the_plan):
            feed(line, rows.cells(cells, width), deal_id)
        writer.flush()
    except (NotNew, sqlite3.IntegrityError) as exc:
        if isinstance(exc, sqlite3.IntegrityError) and "deals.ref" not in str(exc):
            raise
        # two rows with one new ref (the second updates the first), or a row whose ref only
        # matches once cleaned: only the row-by-row path does these (in file order); start
        # again that way, from the staged rows
        store.rollback_to_savepoint(conn, "import_bulk")
        summary.restart()
        flags.counts.clear()
        ctx.unknown_stages.clear()
        writer = _Writer(conn, defaults, summary, flags, writer.histories)
        feed = _Feeder(ctx, summary, writer)
        for _, line, cells in sql.leftover_rows(conn, rows.width, the_plan, every=True):
            feed(line, rows.cells(cells, width))
    else:
        store.release_savepoint(conn, "import_bulk")
        summary.added += deals
        summary.events += events
        for key, count in warnings.items():
            flags.counts[key] = flags.counts.get(key, 0) + count
    sql.drop(conn)
    return writer


def _read_history(path: Path, opts: Options, defaults_currency: str,
                  now: datetime) -> dict[str, list[ImportRow]]:
    """A stage-history file (Salesforce OpportunityHistory): ref -> its rows."""
    src = CsvSource(path, opts.encoding)
    try:
        preset = detect(src.header)
        if preset is None or not preset.history:
            raise UsageError(
                f"{path} is not a stage-history file",
                hint="--history takes a Salesforce OpportunityHistory export",
            )
        fields, _ = resolve_columns(src.header, preset, [])
        ctx = RowContext(fields, src.header, preset, stage_map(preset, opts.stage_maps),
                         defaults_currency, opts.dayfirst, now=now)
        out: dict[str, list[ImportRow]] = {}
        errors: list[tuple[int, str, str]] = []
        for number, cells in src.rows():
            parsed = parse_row(number, cells, ctx)
            if isinstance(parsed, list):
                errors.extend((number, c, r) for c, r in parsed)
                continue
            if parsed.ref:
                out.setdefault(parsed.ref, []).append(parsed)
        if ctx.unknown_stages:
            raise _unknown_stages_error(ctx)
        if errors:
            row, col, reason = errors[0]
            raise UsageError(f"{path}: row {row}, column {col!r}: {reason}; nothing was imported")
        return out
    finally:
        src.close()


def run(
    conn: sqlite3.Connection,
    path: Path,
    opts: Options,
    now: datetime,
    progress: Progress | None = None,
) -> Summary:
    """Import ``path``; returns the summary. Raises ImportFailed (bad rows: nothing written),
    UsageError (bad file, unknown stage, bad --map) or a database error."""
    fmt = (opts.fmt or ("json" if path.suffix.lower() == ".json" else "csv")).lower()
    if fmt not in ("csv", "json"):
        raise UsageError(f"--format {opts.fmt!r} is not csv or json")
    if fmt == "json":
        from pipectl.transfer import native

        return native.run(conn, path, opts, now)
    summary = Summary(file=str(path), format="csv", dry_run=opts.dry_run)
    src = CsvSource(path, opts.encoding)
    if opts.history is not None and not opts.maps and opts.preset in (None, "pipectl"):
        from pipectl.transfer import native

        if native.is_native_csv(src.header):
            src.close()
            return native.run_csv(conn, path, opts.history, opts, now)
    return run_rows(conn, src, opts, now, summary, progress)


def run_rows(
    conn: sqlite3.Connection,
    src: Any,
    opts: Options,
    now: datetime,
    summary: Summary,
    progress: Progress | None = None,
) -> Summary:
    """Import the rows of an open source (CSV file or JSON array); closes it."""
    path = src.path
    try:
        summary.encoding, summary.delimiter = src.encoding, src.delimiter
        if opts.preset:
            preset: Preset | None = get_preset(opts.preset, src.header)
        else:
            preset = detect(src.header)
            summary.preset_detected = preset is not None
        if preset is not None and preset.history:
            raise UsageError(
                f"{path} is a Salesforce OpportunityHistory file (one row per change)",
                hint="import it with its Opportunity file: pipectl import Opportunity.csv "
                f"--preset salesforce --history {path.name}",
            )
        summary.preset = preset.name if preset else None
        fields, summary.unmapped = resolve_columns(
            src.header, preset, parse_pairs(opts.maps, "--map")
        )
        summary.mapped = {f: src.header[i] for f, i in sorted(fields.items(), key=lambda x: x[1])}
        if not ({"name", "company", "ref"} & fields.keys()):
            raise UsageError(
                f"{path}: no column gives the deals a name, company or ref",
                hint='map one, e.g. --map "Deal Title=name"',
            )
        ctx = RowContext(fields, src.header, preset, stage_map(preset, opts.stage_maps),
                         opts.currency, opts.dayfirst, now=now)
        ctx.fallbacks = fallbacks(src.header, preset, fields, summary.unmapped)
        for fld, more in ctx.fallbacks.items():
            summary.mapped[fld] = ", ".join([summary.mapped[fld], *(src.header[i] for i in more)])
        histories: dict[str, list[ImportRow]] = {}
        if opts.history is not None:
            histories = _read_history(opts.history, opts, opts.currency, now)
            summary.history_rows = sum(len(v) for v in histories.values())
        p = preset or PRESETS["pipectl"]
        defaults = hist.Defaults(won_from=p.won_from, lost_from=p.lost_from, now=now)
        flags = hist.Flags()
        try:
            with transaction(conn):
                bulk = src.size >= BULK_BYTES
                # a big load into an empty database: build the indexes once, at the end
                indexes = store.drop_indexes(conn) if bulk and store.is_empty(conn) else []
                writer = _Writer(conn, defaults, summary, flags, histories)
                feed = _Feeder(ctx, summary, writer)
                if bulk and not histories:
                    writer = _bulk(conn, src, ctx, defaults, flags, summary, writer, now,
                                   progress)
                else:
                    for n, (number, cells) in enumerate(src.rows(), 1):
                        summary.rows += 1
                        feed(number, cells)
                        if progress is not None and n % 1000 == 0:
                            progress(src.position(), src.size)
                writer.flush()
                store.create_indexes(conn, indexes)
                if progress is not None:
                    progress(src.size, src.size)
                if ctx.unknown_stages:
                    raise _unknown_stages_error(ctx)
                finish(summary, flags, opts.dry_run)
        except _Rollback:
            pass
        return summary
    finally:
        src.close()


__all__ = ["FIELDS", "ImportFailed", "Options", "Summary", "run", "stages"]
