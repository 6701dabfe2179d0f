"""Writing pipectl's export into the database: the deals of a source (the JSON form or the CSV
pair), checked one by one (``check``) and written a batch at a time, all in one transaction.

The file's ids are kept when the database is empty and every deal and event has an id that no
other has; that is tried first and, as soon as it turns out wrong, the pass starts again from a
savepoint without them. Nothing is held but the current batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from pipectl.domain.pipeline import LOST, Pipeline, fold_name
from pipectl.errors import UsageError
from pipectl.store import transfer as store
from pipectl.store.db import transaction
from pipectl.transfer import common
from pipectl.transfer import history as hist
from pipectl.transfer import target as targets
from pipectl.transfer.common import Options, Rollback, Summary, finish
from pipectl.transfer.formats import FORMAT
from pipectl.transfer.native.check import (
    Checked,
    Pipelines,
    as_import_row,
    check,
    ids_in_time_order,
)
from pipectl.values import iso

SAVEPOINT = "import_json"


class Source(Protocol):
    """What the loader reads: the JSON form (json_form) or the CSV pair (csv_pair)."""

    size: int
    version: Any

    def prepare(self, conn: sqlite3.Connection) -> None: ...
    def finish(self, conn: sqlite3.Connection) -> None: ...
    def deals(self) -> Iterator[tuple[int, Any]]: ...
    def check(self) -> None: ...
    def again(self) -> bool: ...


class _NotKept(Exception):
    """The file's ids cannot be kept after all (a deal or event without one, or one twice)."""


def _defaults(pipeline: Pipeline, now: datetime) -> hist.Defaults:
    """What a history made for a deal of the export assumes: won from the last open stage,
    lost at the first."""
    return hist.Defaults(pipeline, pipeline.open_keys[-1], pipeline.first, now)


class _Load:
    """One pass over the deals: validated one by one, written a batch at a time.

    A deal whose ref (or, without a ref, id and creation moment) is already in the
    database updates that deal (a ref twice in the file is a bad row, and so is a deal the
    database has in another pipeline); any other is added, with the file's ids if ``keep``
    (events then in the file's order of ids, those without one after them) or new ones (events
    in file order). After a bad deal nothing more is written: the rest is only checked, for the
    report.
    """

    def __init__(self, conn: sqlite3.Connection, pipelines: Pipelines, now: datetime,
                 flags: hist.Flags, summary: Summary, keep: bool) -> None:
        self.conn, self.pipelines, self.now = conn, pipelines, now
        self.flags, self.summary, self.keep = flags, summary, keep
        self.first_new = store.next_deal_id(conn)  # deals below it were there before
        self.next_id = self.first_new
        self.batch: list[Checked] = []
        self.writing = True
        self.refs: dict[str, int] = {}  # ref -> its row: each ref once in a file

    def run(self, source: Source) -> None:
        summary = self.summary
        for number, raw in source.deals():
            summary.rows += 1
            version = source.version
            self.pipelines.version = version if version in (1, 2) else FORMAT
            checked = check(number, raw, summary, self.now, self.pipelines)
            if checked is not None and checked.deal.ref:
                ref = checked.deal.ref
                if ref in self.refs:  # an export never holds two deals with one ref
                    summary.bad(number, [("ref", (
                        f"{ref!r} is also the ref of row {self.refs[ref]}; "
                        "a pipectl export never holds two deals with one ref"))])
                    checked = None
                else:
                    self.refs[ref] = number
            if checked is None:
                self.writing = False
                self.batch.clear()
                continue
            if not self.writing:
                continue
            deal = checked.deal
            if self.keep and (deal.id is None or any(e.id is None for e in deal.events or ())
                              or not ids_in_time_order(checked.events)):
                raise _NotKept  # new ids, given in time order, as the commands give them
            self.batch.append(checked)
            if len(self.batch) >= common.BATCH:
                self.flush()
        self.flush()
        if self.keep and self.writing:
            try:
                store.insert_stashed_events(self.conn)
            except store.Taken as exc:
                raise _NotKept from exc

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch or not self.writing:
            return
        try:
            self._write(batch)
        except store.Taken as exc:
            if self.keep and exc.what in ("deals.id", "events.id"):
                raise _NotKept from exc  # an id twice in the file
            raise

    def _elsewhere(self, checked: Checked, current: dict[str, Any]) -> bool:
        """A deal the database has in another pipeline than the file: a bad row."""
        if current["pipeline_id"] == checked.row["pipeline_id"]:
            return False
        there = self.pipelines(current["pipeline_id"]).name
        self.summary.bad(checked.number, [("pipeline", (
            f"the database has this deal (id {current['id']}) in pipeline {there!r}, the "
            f"file in {checked.pipeline.name!r}; move it first (pipectl move)"))])
        self.writing = False
        return True

    def _write(self, batch: list[Checked]) -> None:
        conn, keep, summary = self.conn, self.keep, self.summary
        known = store.deals_by_ref(conn, [c.deal.ref for c in batch if c.deal.ref])
        # a deal without a ref is the same deal when its id and creation moment match one
        # that was there before the import (renamed since or not)
        by_id = {
            i: row for i, row in store.deals_by_id(conn, [
                c.deal.id for c in batch
                if not c.deal.ref and c.deal.id is not None and c.deal.id < self.first_new
            ]).items() if row["ref"] is None
        }
        same = {
            c.deal.id: by_id[c.deal.id] for c in batch
            if not c.deal.ref and c.deal.id in by_id
            and by_id[c.deal.id]["created_at"] == c.deal.created_at  # a rename: still the deal
        }
        ids_known = [d["id"] for d in known.values()] + [d["id"] for d in same.values()]
        notes = store.note_texts(conn, ids_known) if ids_known else {}
        new_rows: list[dict] = []
        changed: dict[int, dict] = {}
        events: list[dict] = []
        seen: dict[str, dict] = dict(known)
        for c in batch:
            d, row, evs = c.deal, c.row, c.events
            current = seen.get(d.ref) if d.ref else same.get(d.id)  # type: ignore[arg-type]
            if current is not None:
                if keep:  # not in an empty database, whose file holds each ref once
                    raise _NotKept
                if self._elsewhere(c, current):
                    return
                evs = hist.update_deal(current, as_import_row(c.number, d),
                                       _defaults(c.pipeline, self.now),
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
            if d.events:  # sorted by check
                if not keep:
                    for e in evs:
                        e.pop("id", None)
            else:
                row, evs = hist.new_deal(as_import_row(c.number, d),
                                         _defaults(c.pipeline, self.now), self.flags)
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
        store.insert_deals(conn, new_rows, events)
        new_ids = {r["id"] for r in new_rows}
        store.update_deals(conn, [r for i, r in changed.items() if i not in new_ids], events)
        if keep:
            store.insert_events(conn, [e for e in events if "id" in e], with_id=True)
            store.stash_events(conn, [e for e in events if "id" not in e])
        else:
            store.insert_events(conn, events)
        summary.events += len(events)


# ---------------------------------------------------------------- --create-pipeline


def _stage_names(source: Source, name: str) -> tuple[list[str], list[str], list[str]]:
    """The stage names the file has in pipeline ``name`` (every one, in format 1), in file
    order; those of its won deals' won stages; and those its won deals' histories show they
    reached from their won stage (after-won stages): what --create-pipeline makes the pipeline
    of. A pass over the file, before anything is checked.

    A deal's stage and lost-at stage are in its pipeline; an event's stages in the pipeline it
    names (a 'pipeline' event's from_stage in the one the deal left), else in the deal's."""
    wanted = fold_name(name)
    found: list[tuple[str, Any, str]] = []  # (what, its pipeline, stage name)
    for _, raw in source.deals():
        if isinstance(raw, dict):
            found += _deal_stages(raw)
    if source.version == 1:
        found = [(what, None, stage) for what, _, stage in found]
    else:
        found = [f for f in found
                 if f[1] is None or (isinstance(f[1], str) and fold_name(f[1]) == wanted)]
        if not found:
            raise UsageError(
                f"--create-pipeline {name}: no deal of the file is in a pipeline of that name",
                hint="a pipectl export keeps each deal's pipeline: name one the file's deals "
                "are in",
            )
    return ([stage for what, _, stage in found if what == "stage"],
            [stage for what, _, stage in found if what == "won"],
            [stage for what, _, stage in found if what == "after_won"])


def _deal_stages(raw: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(what, pipeline, stage name) of one deal of the file: what is "stage" for each stage
    it names, "won" for the stage a won deal was won at, "after_won" for one it reached from
    there."""
    home = raw.get("pipeline")
    out: list[tuple[str, Any, str]] = []

    def seen(what: str, pipeline: Any, stage: Any) -> None:
        if isinstance(stage, str) and stage != LOST:
            out.append((what, pipeline, stage))

    seen("stage", home, raw.get("stage"))
    seen("stage", home, raw.get("lost_at_stage"))
    evs = sorted((e for e in raw.get("events") or () if isinstance(e, dict)),
                 key=lambda e: (str(e.get("at")), e["id"] if isinstance(e.get("id"), int) else 0))
    current = home
    closed, stage = raw.get("closed_at"), raw.get("stage")
    won = bool(closed) and isinstance(stage, str) and stage != LOST
    won_at: tuple[Any, str] | None = None  # the stage the deal was won at, in its pipeline
    after: list[tuple[Any, str]] = []
    for e in evs:
        there = e.get("pipeline") or current
        seen("stage", current if e.get("kind") == "pipeline" else there, e.get("from_stage"))
        seen("stage", there, e.get("to_stage"))
        to = e.get("to_stage")
        if won and isinstance(to, str) and to != LOST:
            if (won_at is None and e.get("at") == closed) or (
                    won_at is not None and e.get("kind") == "pipeline"):
                won_at = (there, to)  # the move that closed it; or a won deal moved on
            elif won_at is not None and e.get("kind") == "stage" and to != won_at[1]:
                after.append((there, to))
        current = there
    if won:
        if won_at is not None:
            out.append(("won", *won_at))
        out += [("after_won", p, s) for p, s in after]
        if not any(s == stage for _, s in after):
            seen("won", home, stage)
    return out


def _defined(source: Source, name: str) -> Pipeline | None:
    """The file's own definition of pipeline ``name`` (the JSON export's "pipelines", which
    come before its deals), if it has one: what --create-pipeline makes then."""
    if getattr(source, "definition", None) is None:
        return None
    deals = source.deals()
    next(deals, None)  # the members before the first deal are read
    deals.close()
    if source.version == 1:
        return None
    return source.definition(name)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the import


def run(conn: sqlite3.Connection, source: Source, opts: Options, now: datetime,
        summary: Summary) -> Summary:
    """Validate and write the deals of ``source`` in batches, in one transaction."""
    try:
        with transaction(conn):
            source.prepare(conn)
            name = opts.create_pipeline
            target = targets.pipeline(
                conn, opts, summary, now, None,
                lambda: _stage_names(source, name or ""),
                definition=lambda wanted: _defined(source, wanted),
            )
            if not summary.pipeline_created:
                summary.pipeline = None  # each deal's own (format 1: the target, told below)
            pipelines = Pipelines(
                conn, target, FORMAT, getattr(source, "path", "the file"),
                created=summary.pipeline_created and not summary.pipelines_created,
                definitions=getattr(source, "definition", None), at=iso(now),
                histories=getattr(source, "history", None),
            )
            made_first = list(summary.pipelines_created)  # by --create-pipeline
            empty = store.is_empty(conn)
            # a big load into an empty database: build the indexes once, at the end
            big = empty and source.size >= common.BULK_BYTES
            indexes = store.drop_indexes(conn) if big else []
            keep = empty
            while True:
                store.savepoint(conn, SAVEPOINT)
                flags = hist.Flags()
                try:
                    _Load(conn, pipelines, now, flags, summary, keep).run(source)
                    source.check()
                    again = source.again()
                except _NotKept:
                    keep, again = False, True
                summary.pipelines_created = [*made_first, *pipelines.made]
                if not again:
                    store.release_savepoint(conn, SAVEPOINT)
                    break
                store.rollback_to_savepoint(conn, SAVEPOINT)
                pipelines.forget_made()
                store.drop_json_scratch(conn)
                summary.rows = 0
                summary.restart()
            if source.version == 1:
                summary.pipeline = target.name
            store.drop_json_scratch(conn)
            rates = getattr(source, "rates", None)
            if rates:  # the exporting database's exchange rates, those this one lacks
                from pipectl.store import rates as rate_store

                summary.rates_added = rate_store.add_missing(conn, rates)
            source.finish(conn)
            store.create_indexes(conn, indexes)
            finish(summary, flags.counts, opts.dry_run)
    except Rollback:
        pass
    return summary
