"""Import and export: a CRM file in, CSV or JSON out.

``import_file`` reads the clock and hands the file to ``transfer.importer.run``, which owns its
transaction: every row or none, and a dry run rolls back by raising ``Rollback`` through it.
So it is never called inside a transaction of the caller's (a dry run would then be committed
with it): it refuses to be. ``export`` reads one consistent state (``transfer.exporter`` holds
its read transaction) and the clock for the export's time stamp.
"""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from pathlib import Path

from pipectl.errors import UsageError
from pipectl.services import clock
from pipectl.transfer.common import AlreadyImported, ImportFailed, Options, Progress, Summary

__all__ = ["AlreadyImported", "ImportFailed", "Options", "Summary", "check_files", "export",
           "import_file"]

FORMATS = ("csv", "json")
STATUSES = ("open", "won", "lost", "all")


def check_files(file: Path, history: Path | None = None) -> None:
    """UsageError unless the file to import (and its history file, when given) exist;
    ``-`` (standard input) is one of them at most."""
    from pipectl.transfer.incoming import is_stdin

    if history is not None and is_stdin(file) and is_stdin(history):
        raise UsageError("FILE and --history cannot both be standard input (-)")
    if not is_stdin(file) and not file.exists():
        raise UsageError(f"{file}: no such file")
    if history is not None and not is_stdin(history) and not history.exists():
        raise UsageError(f"{history}: no such file")


def import_file(
    conn: sqlite3.Connection,
    file: Path,
    opts: Options,
    progress: Progress | None = None,
) -> Summary:
    """Import ``file`` (``-``: standard input) as ``opts`` say; returns the summary (with
    ``opts.dry_run``: what would have been written, nothing written). Raises ImportFailed (bad
    rows: nothing written, the summary on it), AlreadyImported (the same bytes gave deals
    without a ref before; ``opts.again`` imports them anyway), UsageError or a database
    error. ``progress`` is called with the rows done.

    The file and the history file are first read once (``transfer.incoming``): a stream is
    copied to a temporary file, the format found, and a file that cannot be a CSV or JSON text
    refused before anything else happens.
    """
    from dataclasses import replace

    from pipectl.transfer import importer, incoming

    if conn.in_transaction:
        raise UsageError("an import runs in its own transaction, not inside another one")
    check_files(file, opts.history)
    with ExitStack() as stack:
        src = stack.enter_context(incoming.opened(file, opts.fmt))
        if opts.history is not None:
            events = stack.enter_context(incoming.opened(opts.history, "csv"))
            opts = replace(opts, history=events.path, history_name=events.name)
        opts = replace(opts, fmt=src.fmt)
        return importer.run(conn, src.path, opts, clock.now(), progress, name=src.name,
                            digest=src.digest)


def export(
    conn: sqlite3.Connection,
    output: Path | None = None,
    *,
    fmt: str = "csv",
    status: str = "all",
    events: bool = False,
    raw: bool = False,
    pipeline: str | None = None,
    force: bool = False,
) -> int:
    """Write the deals (``status``: open, won, lost or all; of ``pipeline`` only, when named),
    with ``events`` their history, as CSV or JSON to ``output`` (a new file, never
    overwritten unless ``force``, that appears only complete: an error or an interruption
    leaves none, or with ``force`` the old file intact; None: standard output, where a cut
    export ends with an unterminated ``pipectl: export interrupted``). Returns the number of
    deals written (of events, for CSV with ``events``)."""
    from pipectl.transfer import exporter

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not csv or json")
    if status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    return exporter.export(conn, output, fmt=fmt, status=status, events=events, raw=raw,
                           at=clock.now(), pipeline=pipeline, force=force)
