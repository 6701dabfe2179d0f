"""What every road of an import shares: its options, its summary, how it fails or rolls back, and
its limits. The roads (``importer`` for CSV and plain JSON rows, ``native`` for pipectl's own
export) import this module and never each other's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipectl.errors import PipectlError, UsageError

BATCH = 2000  # rows validated, then written, at a time
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
    # --currency (or PIPECTL_CURRENCY) was given: then it, not the currency a deal already
    # in the database has, is that of its amounts without a currency cell
    currency_given: bool = False
    encoding: str | None = None
    dayfirst: bool = False
    dry_run: bool = False
    history: Path | None = None
    pipeline: str | None = None  # the pipeline the deals go into (None: the default one)
    create_pipeline: str | None = None  # make this pipeline from the file's stages, into it
    again: bool = False  # import a file again that an import took deals without a ref from
    history_name: Path | None = None  # how messages call the history file (None: its path)
    # how the files write decimals: "point" (1,234.50), "comma" (1.234,50); None: the point,
    # and a file whose amounts read two ways ('1.500') with none to tell which is refused
    decimal: str | None = None

    def __post_init__(self) -> None:
        if self.pipeline is not None and self.create_pipeline is not None:
            raise UsageError(
                "--pipeline and --create-pipeline both name where the deals go",
                hint="give one of them",
            )
        if self.decimal is not None:
            self.decimal = self.decimal.strip().lower()
            if self.decimal not in ("point", "comma"):
                raise UsageError(f"--decimal {self.decimal!r} is not point or comma",
                                 hint="--decimal point reads 1,234.50; --decimal comma 1.234,50")


@dataclass
class Summary:
    file: str
    format: str = "csv"
    preset: str | None = None
    preset_detected: bool = False
    encoding: str | None = None
    delimiter: str | None = None
    pipeline: str | None = None  # the pipeline the deals went into (None: each deal's own)
    pipeline_created: bool = False
    pipelines_created: list[str] = field(default_factory=list)  # from the file's definitions
    stage_map_saved: int = 0  # --stage-map entries remembered for the next import
    rates_added: int = 0  # exchange rates from pipectl's JSON export the database lacked
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
    # the --history file's bad cells, as the file's own (the first MAX_REPORTED of them)
    history_file: str | None = None
    history_errors: list[tuple[int, str, str]] = field(default_factory=list)
    history_bad_rows: int = 0
    history_bad_cells: int = 0
    # amounts rounded to their currency's minor unit, in both files: currency -> (how many,
    # the largest change as exact text, e.g. "0.005")
    rounded: dict[str, tuple[int, str]] = field(default_factory=dict)
    dry_run: bool = False

    def restart(self) -> None:
        """Forget the counts of an attempt that was undone (the file is read again)."""
        self.added = self.updated = self.unchanged = self.events = 0
        self.bad_rows = self.bad_cells = 0
        self.errors.clear()

    def bad(self, row: int, problems: list[tuple[str, str]]) -> None:
        """One bad row and what is wrong with it: [(column, reason), ...]."""
        self.bad_rows += 1
        self.bad_cells += len(problems)
        for column, reason in problems:
            if len(self.errors) < MAX_REPORTED:
                self.errors.append((row, column, reason))

    def bad_history(self, row: int, problems: list[tuple[str, str]]) -> None:
        """One bad row of the --history file."""
        self.history_bad_rows += 1
        self.history_bad_cells += len(problems)
        for column, reason in problems:
            if len(self.history_errors) < MAX_REPORTED:
                self.history_errors.append((row, column, reason))


class ImportFailed(PipectlError):
    """Bad rows (of the file, of its --history file): nothing was written; the summary holds
    the report. ``also``: what else stopped the import (unknown stages, amounts that read two
    ways), told after it; it makes the exit code its own (2)."""

    def __init__(self, summary: Summary, also: PipectlError | None = None) -> None:
        # nothing was written: no counts of what would have been (and amounts are counted as
        # rounded when written, which stopped at the first bad row)
        summary.added = summary.updated = summary.unchanged = summary.events = 0
        summary.rounded = {}
        n, h = summary.bad_rows, summary.history_bad_rows
        total = n + h
        if n and h:
            where = f"({n} in {summary.file}, {h} in {summary.history_file})"
        else:
            where = f"in {summary.file if n else summary.history_file}"
        hint = "the report above gives row, column and reason of each"
        message = f"{total} bad row{'s' if total != 1 else ''} {where}; nothing was imported"
        if also is None:
            super().__init__(message, hint=hint)
        else:
            super().__init__(f"{message} ({hint})", more=tuple(also.lines()))
            self.exit_code = also.exit_code
        self.summary = summary


class AlreadyImported(PipectlError):
    """The same bytes gave deals without a ref before: importing them again would double
    those deals (exit 1)."""


class Rollback(Exception):
    """A dry run's end: undo everything, report as if written."""


def finish(summary: Summary, counts: dict[str, int], dry_run: bool) -> None:
    """The end of an import, inside its transaction: bad rows fail it (reporting no counts of
    what would have been added); else its warnings are told, and a dry run rolls back."""
    from pipectl.transfer.history import WARNINGS, warning_text

    if summary.bad_rows or summary.history_bad_rows:
        raise ImportFailed(summary)
    summary.warnings = {  # in one order whichever road counted them
        warning_text(k, counts[k]): counts[k] for k in WARNINGS if counts.get(k)
    }
    if dry_run:
        raise Rollback
