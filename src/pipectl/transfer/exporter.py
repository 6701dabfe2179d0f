"""Export: deals (and their events) as CSV or JSON, streamed row by row.

CSV cells a spreadsheet would execute (leading = + - @ TAB CR) are neutralised with a leading
apostrophe unless ``raw``; ``pipectl import`` undoes it. The JSON form, with events, is
pipectl's native format (``transfer.formats``, version 2): importing it into an empty database
reproduces deals and events exactly (ids included). A deal names its pipeline and carries its
checklist as one object; a move event names the pipeline it happened in, a checklist event
carries the criteria it changed. Before its deals, the JSON form carries the definition of every
pipeline it names (``"pipelines"``), from which an import creates those the database lacks, and
every exchange rate recorded (``"rates"``), which an import adds where the database lacks them;
the CSV pair has no place for either.

An export is complete when it ends with a line end: a file appears under its name only complete
(``paths.atomic_new_file``), and an export to standard output that is cut ends with an
unterminated ``pipectl: export interrupted`` (``export``).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pipectl.domain.checklist import decode
from pipectl.domain.pipeline import to_json
from pipectl.paths import atomic_new_file
from pipectl.store import pipelines as pipeline_store
from pipectl.store import transfer as store
from pipectl.store.db import snapshot
from pipectl.transfer.formats import DEAL_CSV, EVENT_CSV, FORMAT
from pipectl.transfer.parsing import neutralise
from pipectl.values import format_money, iso

FORMAT_VERSION = FORMAT
Names = dict[int, str]  # pipeline id -> name


def deal_record(deal: dict[str, Any], names: Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in store.DEAL_COLUMNS:
        v = deal[c]
        if c == "value_minor":
            out["value"] = None if v is None else format_money(v, deal["currency"])
        elif c == "pipeline_id":
            out["pipeline"] = names[v]
        elif c == "checklist":
            out[c] = decode(v) if v else None
        else:
            out[c] = v
    return out


def event_record(event: dict[str, Any], names: Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in store.EVENT_COLUMNS:
        v = event[c]
        if c == "deal_id" or v is None:
            continue
        if c == "value_minor":
            out["value"] = format_money(v, event["currency"])
        elif c == "pipeline_id":
            out["pipeline"] = names[v]
        elif c == "checks":
            out["checklist"] = decode(v)
        else:
            out[c] = v
    if event["kind"] == "value" and event["value_minor"] is None:
        out["value"] = None
    return out


def pipeline_records(conn: sqlite3.Connection, status: str, events: bool,
                     pipeline_id: int | None = None) -> list[dict]:
    """The "pipelines" of the JSON export: each pipeline its deals (with ``events``, their
    events too) name, or every pipeline when it has no deals, with its latest definition and
    every version of it."""
    return [
        {"name": p["name"], "default": bool(p["is_default"]),
         "definition": json.loads(to_json(pipeline_store.load(conn, p["id"]))),
         # every version, oldest first, with the moment it came into force: the history of
         # the deals names stages a later version dropped, and past figures use the
         # definition in force then
         "versions": [
             {"version": v, "at": at,
              "definition": json.loads(to_json(pipeline_store.load_version(conn, p["id"], v)))}
             for v, at in pipeline_store.versions(conn, p["id"])
         ]}
        for p in store.export_pipelines(conn, status, events, pipeline_id)
    ]


def rate_records(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The "rates" of the JSON export: every exchange rate row ever recorded (corrections and
    withdrawals too: the latest recorded for a pair and moment is the one in force), oldest
    recorded first."""
    from pipectl.store import rates

    return [{"from": r.source, "to": r.target, "at": r.at, "rate": r.rate,
             "recorded_at": r.recorded_at} for r in rates.all_rates(conn)]


def _cell(v: Any, raw: bool) -> str:
    if v is None:
        return ""
    if isinstance(v, dict):  # the checklist: one JSON text cell
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    else:
        text = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return text if raw else neutralise(text)


def _with_events(conn: sqlite3.Connection, status: str, pipeline_id: int | None = None
                 ) -> Iterator[tuple[dict, list[dict]]]:
    """Each deal with its events: two ordered streams merged (no per-deal query)."""
    evs = store.iter_events(conn, status, pipeline_id)
    pending = next(evs, None)
    for deal in store.iter_deals(conn, status, pipeline_id):
        mine = []
        while pending is not None and pending["deal_id"] == deal["id"]:
            mine.append(pending)
            pending = next(evs, None)
        yield deal, mine


INTERRUPTED = "pipectl: export interrupted"  # the last, unterminated line of a cut export
FAILED = "pipectl: export failed"


def export(
    conn: sqlite3.Connection,
    output: Path | None,
    *,
    fmt: str,
    status: str,
    events: bool,
    raw: bool,
    at: datetime,
    pipeline: str | None = None,
    force: bool = False,
) -> int:
    """Write the export; returns the number of deals (or events for CSV --events).

    To a file: it appears under its name only once complete (``paths.atomic_new_file``);
    anything that stops the export (an error, Ctrl-C, SIGTERM, SIGHUP) leaves no file. To
    standard output, which cannot be taken back: a cut export ends with the line
    ``pipectl: export interrupted`` (or ``... failed``) and no line end, where a complete one
    ends with a line end (CSV: its last row's CR LF; JSON: the closing brace's). ``force``
    replaces a file already under the name, in one rename once the export is complete (it is
    intact until then, and after a failed or interrupted export)."""
    if output is not None:
        with atomic_new_file(output, replace=force) as fh:
            return _write(conn, fh, fmt=fmt, status=status, events=events, raw=raw, at=at,
                          pipeline=pipeline)
    out = sys.stdout
    try:
        return _write(conn, out, fmt=fmt, status=status, events=events, raw=raw, at=at,
                      pipeline=pipeline)
    except BrokenPipeError:
        raise  # the reader went away: nobody to tell
    except BaseException as exc:
        _mark_cut(out, INTERRUPTED if isinstance(exc, KeyboardInterrupt) else FAILED)
        raise


def _mark_cut(out: TextIO, line: str) -> None:
    """End a cut export with a line no reader takes for the end of an export: no line end
    (both formats end complete with one), and neither a CSV row of the export's width nor
    JSON. On a terminal it gets a line end, so that the error message starts a line."""
    try:
        out.write(line + ("\n" if out.isatty() else ""))
        out.flush()
    except (OSError, ValueError):  # the output is gone or closed: nothing more to say there
        pass


def _write(conn, fh: TextIO, *, fmt: str, status: str, events: bool, raw: bool,
           at: datetime, pipeline: str | None = None) -> int:
    n = 0
    with snapshot(conn):
        names = store.pipeline_names(conn)
        pid = None
        if pipeline is not None:
            from pipectl.store import pipelines as pipeline_store

            chosen = pipeline_store.by_name(conn, pipeline)
            pid, pipeline = chosen.id, chosen.name
        if fmt == "csv":
            writer = csv.writer(fh, lineterminator="\r\n")
            if events:
                writer.writerow(EVENT_CSV)
                for deal, evs in _with_events(conn, status, pid):
                    for e in evs:
                        rec = event_record(e, names)
                        rec["deal_id"], rec["deal_ref"] = deal["id"], deal["ref"]
                        writer.writerow([_cell(rec.get(c), raw) for c in EVENT_CSV])
                        n += 1
            else:
                writer.writerow(DEAL_CSV)
                for deal in store.iter_deals(conn, status, pid):
                    rec = deal_record(deal, names)
                    writer.writerow([_cell(rec[c], raw) for c in DEAL_CSV])
                    n += 1
            return n
        head = {"pipectl_export": FORMAT_VERSION, "exported_at": iso(at), "status": status,
                "events": events, **({"pipeline": pipeline} if pipeline is not None else {})}
        text = json.dumps(head, ensure_ascii=False, indent=2)
        defined = [json.dumps(p, ensure_ascii=False)
                   for p in pipeline_records(conn, status, events, pid)]
        fh.write(text[:-2] + ',\n  "pipelines": [')
        fh.write("".join(f"\n    {p}," for p in defined)[:-1] + "\n  ]" if defined else "]")
        rates = [json.dumps(r, ensure_ascii=False) for r in rate_records(conn)]
        fh.write(',\n  "rates": [')
        fh.write("".join(f"\n    {r}," for r in rates)[:-1] + "\n  ]" if rates else "]")
        fh.write(',\n  "deals": [')
        source = _with_events(conn, status, pid) if events else (
            (d, None) for d in store.iter_deals(conn, status, pid)
        )
        for deal, evs in source:
            rec = deal_record(deal, names)
            if evs is not None:
                rec["events"] = [event_record(e, names) for e in evs]
            fh.write(("\n    " if n == 0 else ",\n    ") + json.dumps(rec, ensure_ascii=False))
            n += 1
        fh.write("\n  ]\n}\n" if n else "]\n}\n")
        return n
