"""JSON import: pipectl's own export (deals with their events, ids kept in an empty database),
and plain JSON arrays of objects (imported like CSV rows)."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipectl.errors import UsageError
from pipectl.stages import Stage
from pipectl.store import transfer as store
from pipectl.store.db import transaction
from pipectl.transfer import history as hist
from pipectl.transfer.rows import ImportRow
from pipectl.values import MAX_MINOR, from_iso, parse_money

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
DAY = r"^\d{4}-\d{2}-\d{2}$"
Text = str | None
Kinds = Literal["created", "stage", "lost", "reopened", "checklist", "value", "close_date",
                "probability", "edit", "note"]


class NativeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | None = Field(default=None, ge=1)
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
    text: Text = None
    next_action: Text = None
    due: str | None = Field(default=None, pattern=DAY)
    field: Text = None
    old: Text = None
    new: Text = None


class NativeDeal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | None = Field(default=None, ge=1)
    ref: Text = None
    name: str = Field(min_length=1)
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


def run(conn: sqlite3.Connection, path: Path, opts: Any, now: datetime):
    from pipectl.transfer.importer import Summary

    summary = Summary(file=str(path), format="json", preset="pipectl", encoding="utf-8",
                      dry_run=opts.dry_run)
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from exc
    if isinstance(data, list):
        from pipectl.transfer.importer import run_rows

        return run_rows(conn, JsonRows(path, data), opts, now, summary)
    if not isinstance(data, dict) or "deals" not in data or not isinstance(data["deals"], list):
        raise UsageError(
            f"{path} is neither a pipectl export nor a JSON array of deals",
            hint="pipectl export --format json --events makes one",
        )
    version = data.get("pipectl_export", FORMAT)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{path}: 'pipectl_export' should be a format number, not {version!r}")
    if version > FORMAT:
        raise UsageError(f"{path} was exported by a newer pipectl", hint="upgrade pipectl")
    return _run_native(conn, data["deals"], opts, now, summary)


# ---------------------------------------------------------------- pipectl's CSV pair

_BOOLS = {"true": True, "false": False}


def is_native_csv(header: list[str]) -> bool:
    from pipectl.transfer.exporter import DEAL_CSV

    return tuple(header) == DEAL_CSV


def _csv_records(path: Path, opts: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    from pipectl.transfer.parsing import CsvSource, restore

    src = CsvSource(path, opts.encoding)
    try:
        if tuple(src.header) != columns:
            raise UsageError(
                f"{path} is not a pipectl CSV export of the expected kind",
                hint="pipectl export -o deals.csv and pipectl export --events -o events.csv",
            )
        out = []
        for _, cells in src.rows():
            rec: dict[str, Any] = {}
            for col, cell in zip(columns, cells, strict=False):
                text = restore(cell)
                rec[col] = None if text == "" else _BOOLS.get(text, text) if col in (
                    "location", "budget", "authority", "need") else text
            out.append(rec)
        return out
    finally:
        src.close()


def run_csv(conn: sqlite3.Connection, path: Path, events_path: Path, opts: Any, now: datetime):
    """pipectl's CSV export of deals with its CSV event log (--history): exact, like JSON."""
    from pipectl.transfer.exporter import DEAL_CSV, EVENT_CSV
    from pipectl.transfer.importer import Summary

    summary = Summary(file=str(path), format="csv", preset="pipectl", encoding="utf-8",
                      dry_run=opts.dry_run)
    deals = _csv_records(path, opts, DEAL_CSV)
    by_deal: dict[str, list[dict[str, Any]]] = {}
    for e in _csv_records(events_path, opts, EVENT_CSV):
        summary.history_rows += 1
        key = e.pop("deal_id") or ""
        e.pop("deal_ref", None)
        if e.get("kind") == "value" and e.get("value") is None:
            e["value"] = None
        by_deal.setdefault(key, []).append({k: v for k, v in e.items() if v is not None})
    for d in deals:
        d["events"] = by_deal.get(d.get("id") or "", [])
    return _run_native(conn, deals, opts, now, summary)


def _run_native(conn: sqlite3.Connection, raw_deals: list, opts: Any, now: datetime, summary):
    from pipectl.transfer.importer import ImportFailed, _Rollback

    deals: list[NativeDeal] = []
    for i, raw in enumerate(raw_deals, 1):
        summary.rows += 1
        try:
            deal = NativeDeal.model_validate(raw)
            _deal_row(deal)
            for e in deal.events or []:
                _event_row(e)
        except ValidationError as exc:
            summary.bad_rows += 1
            for err in exc.errors():
                summary.bad_cells += 1
                if len(summary.errors) < 50:
                    loc = ".".join(str(x) for x in err["loc"])
                    summary.errors.append((i, loc, err["msg"]))
            continue
        except UsageError as exc:
            summary.bad_rows += 1
            summary.bad_cells += 1
            summary.errors.append((i, "value", exc.message))
            continue
        deals.append(deal)
    if summary.bad_rows:
        raise ImportFailed(summary)
    defaults = hist.Defaults(won_from=Stage.NEGOTIATION, lost_from=Stage.PROSPECTING, now=now)
    flags = hist.Flags()
    try:
        with transaction(conn):
            _write(conn, deals, defaults, flags, summary)
            summary.warnings = {hist.WARNINGS[k]: v for k, v in flags.counts.items()}
            if opts.dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return summary


FORMAT = 1


def _write(conn, deals: list[NativeDeal], defaults, flags, summary) -> None:
    ids = [d.id for d in deals]
    event_ids = [e.id for d in deals for e in d.events or []]
    keep = (
        store.is_empty(conn)
        and None not in ids and len(set(ids)) == len(ids)
        and None not in event_ids and len(set(event_ids)) == len(event_ids)
    )
    known = store.deals_by_ref(conn, [d.ref for d in deals if d.ref])
    # a deal without a ref is the same deal when its id, name and creation moment match
    by_id = {
        i: row for i, row in store.deals_by_id(
            conn, [d.id for d in deals if not d.ref and d.id is not None]
        ).items() if row["ref"] is None
    }
    same = {
        d.id: by_id[d.id] for d in deals
        if not d.ref and d.id in by_id
        and (by_id[d.id]["created_at"], by_id[d.id]["name"]) == (d.created_at, d.name)
    }
    ids_known = [d["id"] for d in known.values()] + [d["id"] for d in same.values()]
    notes = store.note_texts(conn, ids_known) if ids_known else {}
    next_id = store.next_deal_id(conn)
    new_rows: list[dict] = []
    changed: dict[int, dict] = {}
    events: list[dict] = []
    seen: dict[str, dict] = dict(known)
    for number, d in enumerate(deals, 1):
        current = seen.get(d.ref) if d.ref else same.get(d.id)  # type: ignore[arg-type]
        if current is not None:
            evs = hist.update_deal(current, _as_row(number, d), defaults,
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
        if d.events:
            row = _deal_row(d)
            evs = sorted((_event_row(e) for e in d.events),
                         key=lambda e: (e["at"], e.get("id") or 0))
            if not keep:
                for e in evs:
                    e.pop("id", None)
        else:
            row, evs = hist.new_deal(_as_row(number, d), defaults, flags)
        if keep:
            row["id"] = d.id
        else:
            row["id"] = next_id
            next_id += 1
        for e in evs:
            e["deal_id"] = row["id"]
        new_rows.append(row)
        if d.ref:
            seen[d.ref] = row
        events.extend(evs)
        summary.added += 1
    store.insert_deals(conn, new_rows)
    changed_rows = [r for i, r in changed.items() if i not in {n["id"] for n in new_rows}]
    store.update_deals(conn, changed_rows)
    if keep:
        events.sort(key=lambda e: e.get("id", MAX_MINOR))
    store.insert_events(conn, [e for e in events if "id" in e], with_id=True)
    store.insert_events(conn, [e for e in events if "id" not in e])
    summary.events += len(events)


class JsonRows:
    """A JSON array of flat objects, read like a CSV file (keys are the columns)."""

    def __init__(self, path: Path, data: list) -> None:
        self.path = path
        self.size = len(data)
        self.encoding = "utf-8"
        self.delimiter = None
        header: dict[str, None] = {}
        for item in data:
            if not isinstance(item, dict):
                raise UsageError(f"{path}: a JSON array of deals must hold objects")
            header.update(dict.fromkeys(item))
        self.header = list(header)
        self._data = data
        self._done = 0

    def rows(self):
        for number, item in enumerate(self._data, 2):
            self._done = number - 1
            yield number, ["" if item.get(h) is None else _text(item.get(h)) for h in self.header]

    def position(self) -> int:
        return self._done

    def close(self) -> None:
        pass


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)
