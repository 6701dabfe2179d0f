"""Import of pipectl's own export, exactly: the JSON form (deals with their events, ids kept in
an empty database) and the CSV pair (deals.csv --history events.csv), formats 1 and 2.

By job: ``json_form`` reads the JSON export and ``csv_pair`` the CSV pair, one deal at a time;
``check`` validates a deal (its shape, times, pipelines, and that its events make it);
``load`` writes the deals in one transaction. The importer (``transfer.importer``) decides
which files come here; this package never imports it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pipectl.transfer.common import Options, Summary
from pipectl.transfer.native.csv_pair import is_native_csv

__all__ = ["is_native_csv", "run_csv", "run_json"]


def run_json(conn: sqlite3.Connection, path: Path, fh: BinaryIO, opts: Options,
             now: datetime) -> Summary:
    """pipectl's JSON export (an object with its "deals"), open as ``fh``; ``path`` names it
    in messages."""
    from pipectl.transfer.native import load
    from pipectl.transfer.native.json_form import JsonExport

    summary = Summary(file=str(path), format="json", preset="pipectl", encoding="utf-8",
                      dry_run=opts.dry_run)
    return load.run(conn, JsonExport(path, fh), opts, now, summary)


def run_csv(conn: sqlite3.Connection, path: Path, events_path: Path, opts: Options,
            now: datetime, name: Path | None = None) -> Summary:
    """pipectl's CSV export of deals with its CSV event log (--history): exact, like JSON.
    ``name`` is how messages call the deals file (default: its path)."""
    from pipectl.transfer.native import load
    from pipectl.transfer.native.csv_pair import CsvPair

    summary = Summary(file=str(name or path), format="csv", preset="pipectl",
                      encoding="utf-8", dry_run=opts.dry_run)
    return load.run(conn, CsvPair(path, events_path, opts, summary, name), opts, now, summary)
