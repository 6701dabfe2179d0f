"""The import: read a file row by row, validate, build histories, write in one transaction.

Which road a file takes is decided here: pipectl's own export (JSON, or the CSV pair of deals
and event log) goes to ``transfer.native``; any other CSV file or JSON array of objects is read
row by row here (a large one through the bulk road, ``transfer.bulk``). Every road writes into
one pipeline per deal, and reads stage names through it (``transfer.target``).

Rows are streamed and written in batches (executemany) inside ONE transaction: a Ctrl-C, a kill
or a bad row leaves the database as it was. Refs are looked up once per batch, not per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from pipectl.errors import PipectlError, UsageError
from pipectl.store import transfer as store
from pipectl.store.db import transaction
from pipectl.transfer import common
from pipectl.transfer import history as hist
from pipectl.transfer import target as targets
from pipectl.transfer.common import (
    ImportFailed,
    Options,
    Progress,
    Rollback,
    Summary,
    finish,
)
from pipectl.transfer.fields import (
    FIELDS,
    Preset,
    detect,
    fallbacks,
    get_preset,
    parse_pairs,
    resolve_columns,
)
from pipectl.transfer.parsing import CsvSource, open_file, restore
from pipectl.transfer.rows import Amounts, ImportRow, RowContext, parse_row
from pipectl.transfer.stage_map import StageMap, source_key, stage_list
from pipectl.values import iso

__all__ = ["FIELDS", "ImportFailed", "Options", "Summary", "run"]


MOST_STAGES = 50  # unknown stages listed (each with its --stage-map line); all are counted


def _flag(name: str) -> str:
    """``--stage-map "NAME=STAGE"``, quoted for a shell."""
    item = f"{name}=STAGE"
    if any(c in item for c in '"$`\\!'):
        import shlex

        return f"--stage-map {shlex.quote(item)}"
    return f'--stage-map "{item}"'


def _unknown_stages(files: list[tuple[str, RowContext]]) -> list[str]:
    """The lines of an error naming every unknown stage of the files (name, row context),
    file by file, and the --stage-map line of each, ready to paste; [] when there is none."""
    from pipectl.transfer.fields import norm

    lines: list[str] = []
    names: dict[str, str] = {}  # norm(name) -> name, in order
    for file, ctx in files:
        unknown = ctx.unknown_stages
        if not unknown:
            continue
        shown = ", ".join(f"{n!r} (row {r})" for n, r in list(unknown.items())[:MOST_STAGES])
        if len(unknown) > MOST_STAGES:
            shown += f" and {len(unknown) - MOST_STAGES} more"
        lines.append(f"{file}: unknown stage{'s' if len(unknown) > 1 else ''} in column "
                     f"{ctx.column('stage')!r}: {shown}")
        for n in unknown:
            names.setdefault(norm(n), n)
    if not lines:
        return []
    p = files[0][1].pipeline
    lines.append(f"map {'each' if len(names) > 1 else 'it'} by adding to the command (STAGE: "
                 f"a stage of pipeline {p.name!r}: {stage_list(p)}):")
    lines += [f"  {_flag(n)}" for n in list(names.values())[:MOST_STAGES]]
    if len(names) > MOST_STAGES:
        lines.append(f"  ... and {len(names) - MOST_STAGES} more ({len(names)} unknown stages "
                     "in all)")
    return lines


def _two_ways(files: list[tuple[str, Amounts]]) -> list[str]:
    """The lines of an error naming the amounts that read two ways ('1.500': 1.50 or 1,500.00)
    when no amount of the files shows which way they are written; [] otherwise."""
    from pipectl.transfer.parsing import strip_symbols
    from pipectl.values import money_text, two_readings

    n = sum(a.n_two_ways for _, a in files)
    if not n or any(a.pointed for _, a in files):
        return []
    lines = [f"{n} amount{'s' if n != 1 else ''} read two ways, and no amount shows how the "
             "file writes decimals:"]
    listed = 0
    for file, a in files:
        for row, column, cell, currency in a.two_ways:
            readings = two_readings(strip_symbols(cell), currency)
            assert readings is not None
            first, second = (money_text(x, currency) for x in readings)
            lines.append(f"  {file}: row {row}, column {column!r}: {cell!r} is {first} "
                         f"(decimal point) or {second} (decimal comma)")
            listed += 1
    if n > listed:
        lines.append(f"  ... and {n - listed} more")
    lines.append("say which with --decimal point (1,234.50) or --decimal comma (1.234,50)")
    return lines


def _stopped(lines: list[str], summary: Summary) -> PipectlError | None:
    """What stops an import besides bad rows (``lines``: unknown stages, amounts that read two
    ways), with the bad rows if any (the error then carries the summary's report); None when
    nothing does."""
    if not lines:
        return None
    if summary.bad_rows or summary.history_bad_rows:
        return ImportFailed(summary, UsageError(lines[0], more=tuple(lines[1:])))
    first = lines[0].removesuffix(":")
    return UsageError(f"{first}; nothing was imported{':' if first != lines[0] else ''}",
                      more=tuple(lines[1:]))


class NotNew(Exception):
    """A bulk import met a row that is not what the SQL side took it for (it updates a deal
    this import made, or a deal it expected to update is not there): the file goes row by row
    instead."""


class _Writer:
    """Collects a batch of rows and writes it: new deals, changed deals, their events."""

    def __init__(self, conn: sqlite3.Connection, defaults: hist.Defaults, summary: Summary,
                 flags: hist.Flags, histories: dict[str, list[ImportRow]],
                 ref_column: str = "ref") -> None:
        self.conn = conn
        self.defaults = defaults
        self.summary = summary
        self.flags = flags
        self.histories = histories
        self.ref_column = ref_column
        self.next_id = store.next_deal_id(conn)
        self.batch: list[tuple[ImportRow, int | None]] = []
        self.writing = True
        # bulk import: each row comes with its deal id when the SQL side found it new, None
        # when it updates a deal already there; a row that turns out otherwise (it names a
        # deal this import made, or none) stops the writer: the file goes row by row
        self.bulk = False

    def add(self, row: ImportRow, deal_id: int | None = None) -> None:
        self.batch.append((row, deal_id))
        if len(self.batch) >= common.BATCH:
            self.flush()

    def _elsewhere(self, batch: list[tuple[ImportRow, int | None]],
                   known: dict[str, hist.Row]) -> None:
        """A ref of a deal in another pipeline is a bad row: an import writes into one."""
        pid = self.defaults.pipeline_id
        names: dict[int, str] | None = None
        for row, _ in batch:
            deal = known.get(row.ref or "")
            if deal is not None and deal["pipeline_id"] != pid:
                names = names or store.pipeline_names(self.conn)
                self.summary.bad(row.row, [(self.ref_column, (
                    f"{row.ref!r} is the ref of deal {deal['id']}, in pipeline "
                    f"{names.get(deal['pipeline_id'])!r}; this import goes into "
                    f"{self.defaults.pipeline.name!r}"))])
                self.writing = False

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        known = store.deals_by_ref(self.conn, [r.ref for r, _ in batch if r.ref])
        self._elsewhere(batch, known)
        if not self.writing:
            return
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
        store.insert_deals(self.conn, new, events)
        store.update_deals(self.conn, list(changed.values()), events)
        store.insert_events(self.conn, events)
        self.summary.events += len(events)


class _Feeder:
    """One row of the file into the writer, or into the report of bad cells."""

    def __init__(self, ctx: RowContext, summary: Summary, writer: _Writer) -> None:
        self.ctx, self.summary, self.writer = ctx, summary, writer

    def __call__(self, number: int, cells: list[str], deal_id: int | None = None) -> None:
        parsed = parse_row(number, cells, self.ctx)
        if isinstance(parsed, list):
            self.summary.bad(number, parsed)
            self.writer.writing = False
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
    except (NotNew, store.Taken) as exc:
        if isinstance(exc, store.Taken) and exc.what != "deals.ref":
            raise
        # two rows with one new ref (the second updates the first), or a row whose ref only
        # matches once cleaned: only the row-by-row path does these (in file order); start
        # again that way, from the staged rows
        store.rollback_to_savepoint(conn, "import_bulk")
        summary.restart()
        flags.clear()
        ctx.unknown_stages.clear()
        ctx.amounts.clear()
        writer = _Writer(conn, defaults, summary, flags, writer.histories, writer.ref_column)
        feed = _Feeder(ctx, summary, writer)
        for _, line, cells in sql.leftover_rows(conn, rows.width, the_plan, every=True):
            feed(line, rows.cells(cells, width))
    else:
        store.release_savepoint(conn, "import_bulk")
        summary.added += deals
        summary.events += events
        for key, count in warnings.items():
            flags.counts[key] = flags.counts.get(key, 0) + count
        amounts = ctx.amounts
        if ctx.decimal is None and amounts.n_two_ways and not amounts.pointed:
            amounts.pointed = sql.shows_decimal_point(conn, the_plan)  # rows SQL converted
    sql.drop(conn)
    return writer


def _not_again(conn: sqlite3.Connection, digest: str, path: Path) -> None:
    """Refuse the bytes an import took deals without a ref from before: each such deal would
    be added once more (a deal with a ref is found again by it)."""
    before = store.imported_before(conn, digest)
    if before is None:
        return
    at, file, added = before
    same = "" if file == str(path) else f" (as {file})"
    raise common.AlreadyImported(
        f"{path} was imported before, at {at}{same}: importing it again would add its "
        f"{added} deal{'s' if added != 1 else ''} without a ref a second time; nothing was "
        "imported",
        hint="--again imports it anyway",
    )


def _history_source(path: Path, opts: Options) -> tuple[CsvSource, Preset, dict[str, int]]:
    """A stage-history file (Salesforce OpportunityHistory), open, with its preset and
    columns."""
    src = CsvSource(path, opts.encoding, opts.history_name)
    preset = detect(src.header)
    if preset is None or not preset.history:
        src.close()
        raise UsageError(
            f"{src.path} is not a stage-history file",
            hint="--history takes a Salesforce OpportunityHistory export",
        )
    fields, _ = resolve_columns(src.header, preset, [])
    return src, preset, fields


def _cell_text(cells: list[str], i: int) -> str | None:
    """A text cell as parse_row stores it (None when empty or not text pipectl keeps)."""
    from pipectl.values import clean_text

    cell = cells[i] if i < len(cells) else ""
    if cell[:1] == "'":
        cell = restore(cell)
    try:
        return clean_text(cell, "ref") or None
    except Exception:  # reported by the row's own reading
        return None


def _currency_cells(src: Any, fields: dict[str, int]) -> tuple[dict[str, str], list[str]]:
    """One more pass over the deals file: ref -> the currency each row names (a --history row
    without a currency of its own is in its deal's), and the refs of the rows that name none
    (a deal seen again keeps the currency the database holds for it). Nothing without a ref
    column."""
    from pipectl.values import currency_code

    if "ref" not in fields:
        return {}, []
    named: dict[str, str] = {}
    unnamed: list[str] = []
    r, c = fields["ref"], fields.get("currency")
    src.again()
    for _, cells in src.rows():
        ref = _cell_text(cells, r)
        cell = cells[c] if c is not None and c < len(cells) else ""
        if ref is None:
            continue
        if not cell.strip():
            unnamed.append(ref)
            continue
        try:
            named[ref] = currency_code(cell)
        except Exception:  # a bad currency cell: the deals file's reading reports it
            continue
    src.again()
    return named, unnamed


def _history_currencies(src: Any, fields: dict[str, int], opts: Options,
                        now: datetime) -> dict[str, str]:
    """ref -> the currency a deal's --history rows name: that of its latest row (in time,
    then file order, as history.new_deal orders them) naming one. A deal whose deals-file
    currency cell is empty is in it, and so are its history rows that name none (the file is
    read once more)."""
    from pipectl.transfer.parsing import parse_when
    from pipectl.values import currency_code

    if "ref" not in fields or "currency" not in fields:
        return {}
    r, c, t = fields["ref"], fields["currency"], fields.get("created_at")
    latest: dict[str, tuple[datetime, int, str]] = {}
    src.again()
    for number, cells in src.rows():
        cell = cells[c] if c < len(cells) else ""
        ref = _cell_text(cells, r) if cell.strip() else None
        if ref is None:
            continue
        try:
            code = currency_code(restore(cell) if cell[:1] == "'" else cell)
        except Exception:  # a bad currency cell: the row's own reading reports it
            continue
        when = None
        if t is not None and t < len(cells):
            try:
                when = parse_when(cells[t], dayfirst=opts.dayfirst)
            except ValueError:
                when = None
        key = (when[0] if when else now, number, code)
        if ref not in latest or key[:2] > latest[ref][:2]:
            latest[ref] = key
    src.again()
    return {ref: code for ref, (_, _, code) in latest.items()}


def _row_currency(cells: list[str], fields: dict[str, int], deals: dict[str, str],
                  default: str, history: dict[str, str] | None = None) -> tuple[str, str]:
    """The currency a --history row's amount is in, and why: its own currency cell (read by
    parse_row), else its deal's (in the deals file, else the one its other history rows
    name: ``history``), else --currency (default USD)."""
    from pipectl.values import currency_code

    c = fields.get("currency")
    bad_cell = ""  # a currency cell that names none: said after the currency used instead
    if c is not None and c < len(cells) and cells[c].strip():
        try:
            return currency_code(cells[c]), "the row's own currency"
        except Exception:  # parse_row reports the cell
            bad_cell = "the row's currency cell is not a currency code"
    ref = _cell_text(cells, fields["ref"]) if "ref" in fields else None
    for known, why in ((deals, "its deal's currency in the deals file"),
                       (history or {}, "its deal's currency in its history rows")):
        if ref is not None and ref in known:
            return known[ref], f"{why}: {bad_cell}" if bad_cell else why
    return default, f"--currency, else USD: {bad_cell or 'neither the row nor its deal names one'}"


def _read_history(path: Path, opts: Options, stages: StageMap,
                  now: datetime, deals: dict[str, str] | None = None, *,
                  summary: Summary, read: list[tuple[str, RowContext]]
                  ) -> tuple[dict[str, list[ImportRow]], dict[str, str]]:
    """A stage-history file: ref -> its rows, and ref -> the currency its rows name
    (``_history_currencies``: a deals-file row whose currency cell is empty is in it).
    ``deals``: ref -> the currency of each deal of the deals file, for the rows that name
    none. Its bad rows go to ``summary`` (``bad_history``); its name and how its rows were
    read (unknown stages, amounts) to ``read``, for the import to judge with the deals
    file's."""
    src, preset, fields = _history_source(path, opts)
    try:
        summary.history_file = str(src.path)
        own = _history_currencies(src, fields, opts, now)
        ctx = RowContext(fields, src.header, preset, stages, opts.currency, opts.dayfirst,
                         now=now, decimal=opts.decimal)
        out: dict[str, list[ImportRow]] = {}
        errors: list[tuple[int, str, str]] = []
        value_column = ctx.column("value")
        for number, cells in src.rows():
            currency, why = _row_currency(cells, fields, deals or {}, opts.currency, own)
            ctx.currency = currency
            parsed = parse_row(number, cells, ctx)
            if isinstance(parsed, list):
                # an amount's error names the currency it was read in, and why that one
                errors.extend(
                    (number, c, f"{r} (read in {currency}, {why})" if c == value_column else r)
                    for c, r in parsed)
                continue
            if parsed.ref:
                out.setdefault(parsed.ref, []).append(parsed)
        errors += [(number, c, r) for number, problems in src.problems for c, r in problems]
        for number, group in groupby(errors, key=itemgetter(0)):
            summary.bad_history(number, [(c, r) for _, c, r in group])
        read.append((str(src.path), ctx))
        return out, own
    finally:
        src.close()


def _stage_cells(rows: Iterable[tuple[int, list[str]]], columns: list[int]) -> Iterator[str]:
    """The stage names of rows (in these columns, the first non-empty one of each group)."""
    for _, cells in rows:
        for i in columns:
            cell = cells[i] if i < len(cells) else ""
            if cell:
                yield restore(cell) if cell[:1] == "'" else cell


def _file_stages(src: Any, fields: dict[str, int], more: dict[str, list[int]],
                 opts: Options) -> list[str]:
    """Every stage name of the file (and of its --history file), in file order: what
    --create-pipeline makes the pipeline of. Reads the file once more."""
    names: list[str] = []
    for fld in ("stage", "lost_at_stage"):
        if fld in fields:
            src.again()
            names += _stage_cells(src.rows(), [fields[fld], *more.get(fld, [])])
    src.again()
    if opts.history is not None:
        hsrc, _, hfields = _history_source(opts.history, opts)
        try:
            if "stage" in hfields:
                names += _stage_cells(hsrc.rows(), [hfields["stage"]])
        finally:
            hsrc.close()
    return names


def run(
    conn: sqlite3.Connection,
    path: Path,
    opts: Options,
    now: datetime,
    progress: Progress | None = None,
    *,
    name: Path | None = None,
    digest: str | None = None,
) -> Summary:
    """Import ``path``; returns the summary. Raises ImportFailed (bad rows: nothing written),
    UsageError (bad file, unknown stage or pipeline, bad --map) or a database error.

    ``name`` is how messages call the file (standard input is read from a copy); ``digest``,
    the SHA-256 of its bytes, lets a row import refuse a file it took deals without a ref
    from before (``opts.again`` imports it anyway); None: not checked, not recorded."""
    fmt = (opts.fmt or ("json" if path.suffix.lower() == ".json" else "csv")).lower()
    if fmt not in ("csv", "json"):
        raise UsageError(f"--format {opts.fmt!r} is not csv or json")
    from pipectl.transfer import native

    shown = name or path
    if fmt == "json":
        from pipectl.transfer.json_reader import JsonReader
        from pipectl.transfer.json_rows import JsonRows

        with open_file(path, shown) as fh:
            if JsonReader(fh, shown).first() != "[":
                return native.run_json(conn, shown, fh, opts, now)
            summary = Summary(file=str(shown), format="json", encoding="utf-8",
                              dry_run=opts.dry_run)
            return run_rows(conn, JsonRows(shown, fh), opts, now, summary, progress, digest)
    summary = Summary(file=str(shown), format="csv", dry_run=opts.dry_run)
    src = CsvSource(path, opts.encoding, name)
    if opts.history is not None and not opts.maps and opts.preset in (None, "pipectl") \
            and native.is_native_csv(src.header):
        src.close()
        return native.run_csv(conn, path, opts.history, opts, now, shown)
    return run_rows(conn, src, opts, now, summary, progress, digest)


def run_rows(
    conn: sqlite3.Connection,
    src: Any,
    opts: Options,
    now: datetime,
    summary: Summary,
    progress: Progress | None = None,
    digest: str | None = None,
) -> Summary:
    """Import the rows of an open source (CSV file or JSON array); closes it. With the
    ``digest`` of its bytes: refused when an import took deals without a ref from the same
    bytes before (unless ``opts.again``), and recorded when this one does."""
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
        more = fallbacks(src.header, preset, fields, summary.unmapped)
        for fld, cols in more.items():
            summary.mapped[fld] = ", ".join([summary.mapped[fld], *(src.header[i] for i in cols)])
        source = source_key(preset, src.header)
        try:
            with transaction(conn):
                first_new = store.next_deal_id(conn)
                target = targets.pipeline(
                    conn, opts, summary, now, preset,
                    lambda: (_file_stages(src, fields, more, opts), ()),
                )
                stages = targets.stage_map(conn, target, preset, source, opts)
                if digest is not None and not opts.again:  # the options' mistakes told first
                    _not_again(conn, digest, path)
                # JSON numbers have one decimal separator, the point
                decimal = opts.decimal or ("point" if summary.format == "json" else None)
                ctx = RowContext(fields, src.header, preset, stages, opts.currency,
                                 opts.dayfirst, now=now, decimal=decimal)
                ctx.fallbacks = more
                histories: dict[str, list[ImportRow]] = {}
                read: list[tuple[str, RowContext]] = [(str(path), ctx)]
                # deals already held keep their currency (below) unless --currency says
                keep = not opts.currency_given and not store.is_empty(conn)
                named, unnamed = (_currency_cells(src, fields)
                                  if keep or opts.history is not None else ({}, []))
                if opts.history is not None:
                    # a deal whose currency cell is empty is in the one its history names
                    histories, ctx.currencies = _read_history(
                        opts.history, opts, stages, now, named, summary=summary, read=read)
                    summary.history_rows = sum(len(v) for v in histories.values())
                if keep and unnamed:
                    # a deal seen again whose currency cell is empty keeps its currency (a
                    # HubSpot export has no currency column: a re-import without --currency
                    # must not turn its GBP into USD); its history rows' currency comes first
                    ctx.held = store.currencies_by_ref(conn, unnamed, opts.currency)
                defaults = hist.Defaults(target, stages.won_from, stages.lost_from, now,
                                         stages.lost_from_known)
                flags = _rows(conn, src, ctx, defaults, histories, summary, now, progress)
                for number, problems in getattr(src, "problems", ()):  # the file's framing
                    summary.rows += 1
                    summary.bad(number, problems)
                summary.rounded = _rounded(flags.rounded)
                stop = _stopped(_unknown_stages(read)
                                + _two_ways([(f, c.amounts) for f, c in read]), summary)
                if stop is not None:
                    raise stop
                targets.remember(conn, stages, source, summary)
                if digest is not None:
                    store.record_import(conn, digest, iso(now), str(path), first_new)
                finish(summary, flags.counts, opts.dry_run)
        except Rollback:
            pass
        return summary
    finally:
        src.close()


def _rounded(rounded: dict[str, tuple[int, Any]]) -> dict[str, tuple[int, str]]:
    """The amounts rounded that the import wrote (each on the event that sets it, with the
    file's text; hist.Flags.rounded), per currency over both files: (how many, the largest
    change)."""
    return {c: (n, f"{most.normalize():f}") for c, (n, most) in sorted(rounded.items())}


def _rows(conn: sqlite3.Connection, src: Any, ctx: RowContext, defaults: hist.Defaults,
          histories: dict[str, list[ImportRow]], summary: Summary, now: datetime,
          progress: Progress | None) -> hist.Flags:
    """Every row of the file into the database (the bulk road for a large file); returns the
    counts of the adjustments made."""
    flags = hist.Flags()
    bulk = src.size >= common.BULK_BYTES
    # a big load into an empty database: build the indexes once, at the end
    indexes = store.drop_indexes(conn) if bulk and store.is_empty(conn) else []
    ref_column = ctx.column("ref") if "ref" in ctx.fields else "ref"
    writer = _Writer(conn, defaults, summary, flags, histories, ref_column)
    feed = _Feeder(ctx, summary, writer)
    if bulk and not histories and not ctx.currencies:  # the SQL side reads no history
        writer = _bulk(conn, src, ctx, defaults, flags, summary, writer, now, progress)
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
    return flags
