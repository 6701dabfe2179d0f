"""Import and export: a CRM file in, CSV or JSON out.

``import_file`` reads the clock and hands the file to ``transfer.importer.run``, which owns its
transaction: every row or none, and a dry run rolls back by raising ``Rollback`` through it.
So it is never called inside a transaction of the caller's (a dry run would then be committed
with it): it refuses to be. ``export`` reads one consistent state (``transfer.exporter`` holds
its read transaction) and the clock for the export's time stamp.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipectl.errors import UsageError
from pipectl.services import clock
from pipectl.transfer.common import ImportFailed, Options, Progress, Summary

__all__ = ["ImportFailed", "Options", "Summary", "check_files", "export", "import_file"]

FORMATS = ("csv", "json")
STATUSES = ("open", "won", "lost", "all")


def check_files(file: Path, history: Path | None = None) -> None:
    """UsageError unless the file to import (and its history file, when given) exist."""
    if not file.exists():
        raise UsageError(f"{file}: no such file")
    if history is not None and not history.exists():
        raise UsageError(f"{history}: no such file")


def import_file(
    conn: sqlite3.Connection,
    file: Path,
    opts: Options,
    progress: Progress | None = None,
) -> Summary:
    """Import ``file`` as ``opts`` say; returns the summary (with ``opts.dry_run``: what would
    have been written, nothing written). Raises ImportFailed (bad rows: nothing written, the
    summary on it), UsageError or a database error. ``progress`` is called with the rows done.
    """
    from pipectl.transfer import importer

    if conn.in_transaction:
        raise UsageError("an import runs in its own transaction, not inside another one")
    check_files(file, opts.history)
    return importer.run(conn, file, opts, clock.now(), progress)


def export(
    conn: sqlite3.Connection,
    output: Path | None = None,
    *,
    fmt: str = "csv",
    status: str = "all",
    events: bool = False,
    raw: bool = False,
    pipeline: str | None = None,
) -> int:
    """Write the deals (``status``: open, won, lost or all; of ``pipeline`` only, when named),
    with ``events`` their history, as CSV or JSON to ``output`` (a new file, never
    overwritten, that appears only complete: an error or an interruption leaves none; None:
    standard output, where a cut export ends with an unterminated ``pipectl: export
    interrupted``). Returns the number of deals written (of events, for CSV with ``events``)."""
    from pipectl.transfer import exporter

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not csv or json")
    if status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    return exporter.export(conn, output, fmt=fmt, status=status, events=events, raw=raw,
                           at=clock.now(), pipeline=pipeline)
