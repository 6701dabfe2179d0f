"""Rendering of import summaries and reports, the import progress bar, db check results."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any

from pipectl.views.common import console, count, print_json
from pipectl.views.table import echo


def summary_json(s: Any) -> dict[str, Any]:
    return {
        "file": s.file,
        "format": s.format,
        "preset": s.preset,
        "preset_detected": s.preset_detected,
        "encoding": s.encoding,
        "dry_run": s.dry_run,
        "pipeline": s.pipeline,
        "pipeline_created": s.pipeline_created,
        "pipelines_created": list(s.pipelines_created),
        "stage_map_saved": s.stage_map_saved,
        "rates_added": s.rates_added,
        "rows": s.rows,
        "added": s.added,
        "updated": s.updated,
        "unchanged": s.unchanged,
        "events": s.events,
        "history_rows": s.history_rows,
        "mapped": s.mapped,
        "unmapped": s.unmapped,
        "warnings": [{"count": n, "text": t} for t, n in s.warnings.items()],
        "rounded": [{"currency": c, "amounts": n, "most": most}
                    for c, (n, most) in s.rounded.items()],
        "bad_rows": s.bad_rows + s.history_bad_rows,
        # errors lists the first bad cells of each file; bad_cells counts them all
        "bad_cells": s.bad_cells + s.history_bad_cells,
        "errors": [{"file": f, "row": r, "column": c, "reason": why}
                   for f, errors in ((s.file, s.errors), (s.history_file, s.history_errors))
                   for r, c, why in errors],
    }


def print_summary(s: Any, as_json: bool) -> None:
    if as_json:
        print_json(summary_json(s))
        return
    head = "Dry run (nothing written)" if s.dry_run else "Imported"
    preset = f", preset {s.preset}{' (detected)' if s.preset_detected else ''}" if s.preset else ""
    echo(f"{head}: {s.file} ({s.format}{preset}, {s.encoding or 'utf-8'})")
    if s.pipeline:
        made = " (created from the file's stages)" if s.pipeline_created and \
            s.pipeline not in s.pipelines_created else ""
        echo(f"  into pipeline {s.pipeline}{made}")
    for name in s.pipelines_created:
        echo(f"  created pipeline {name!r} from the file")
    echo(
        f"  {count(s.rows, 'row')}: {count(s.added, 'deal')} added, {s.updated} updated, "
        f"{s.unchanged} unchanged; {count(s.events, 'event')}"
    )
    if s.history_rows:
        echo(f"  stage history: {s.history_rows} rows")
    if s.rates_added:
        echo(f"  exchange rates: {s.rates_added} added")
    if s.mapped:
        echo("  columns used: " + ", ".join(f"{c} -> {f}" for f, c in s.mapped.items()))
    if s.unmapped:
        echo(f"  columns not imported ({len(s.unmapped)}): " + ", ".join(s.unmapped))
    if s.stage_map_saved:
        echo(f"  stage map remembered ({count(s.stage_map_saved, 'stage name')}): the next "
             "import of this source into this pipeline needs no --stage-map")
    if s.rounded:
        echo("  amounts rounded to their currency's minor unit (half to even; each as the file "
             "wrote it is kept in its deal's history): " + ", ".join(
                 f"{count(n, 'amount')} in {c} by at most {most} {c}"
                 for c, (n, most) in s.rounded.items()))
    for text, n in s.warnings.items():
        echo(f"  note: {n} {text}")


def print_errors(s: Any, as_json: bool) -> None:
    """The bad-row report, on stderr (stdout with --json)."""
    if as_json:
        print_json(summary_json(s))
        return
    err = sys.stderr
    if s.bad_rows or not s.history_bad_rows:
        err.write(f"{count(s.bad_rows, 'bad row')} of {s.rows} in {s.file}:\n")
        _cells(s.errors, s.bad_cells)
    if s.history_bad_rows:
        err.write(f"{count(s.history_bad_rows, 'bad row')} in {s.history_file}:\n")
        _cells(s.history_errors, s.history_bad_cells)


def _cells(errors: list[tuple[int, str, str]], cells: int) -> None:
    """A file's bad cells listed (the first of them), and how many more there are."""
    err = sys.stderr
    for row, col, reason in errors:
        err.write(f"  row {row}, column {col!r}: {reason}\n")
    if cells > len(errors):
        err.write(f"  ... and {cells - len(errors)} more ({cells} bad cells in all)\n")


@contextmanager
def progress_bar(label: str, enabled: bool):
    """A Rich progress bar on stderr when it is a terminal; yields update(done, total)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(  # the label holds a file name: never read it as markup
        TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def differs_json(d: Any) -> dict[str, Any]:
    """A deal that differs from its events (``services.check.Differs``), for --json."""
    return {"id": d.deal_id, "why": d.why,
            "fields": [{"field": c, "stored": s, "expected": m} for c, s, m in d.fields]}


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value)


def _differs_line(d: dict[str, Any]) -> str:
    if d["why"]:
        return f"deal {d['id']}: {d['why']}"
    return f"deal {d['id']}: " + "; ".join(
        f"{f['field']} is {_shown(f['stored'])}, its events make {_shown(f['expected'])}"
        for f in d["fields"])


def _print_repaired(result: dict[str, Any]) -> None:
    done = result["repaired"]
    echo(f"{result['path']}: repaired")
    for o in done["objects"]:
        echo(f"  {'recreated' if o['action'] == 'created' else 'dropped'} {o['type']} "
             f"{o['name']}")
    if done["deals"]:
        ids = ", ".join(str(i) for i in done["deal_ids"][:20])
        more = f" and {done['deals'] - 20} more" if done["deals"] > 20 else ""
        their = "its" if done["deals"] == 1 else "their"
        echo(f"  rebuilt {count(done['deals'], 'deal')} from {their} events: {ids}{more}")
    if done["read_models"]:
        n = done["read_models"]
        echo(f"  recomputed the read models of {count(n, 'deal')} from "
             f"{'its' if n == 1 else 'their'} events")
    if not done["objects"] and not done["deals"] and not done["read_models"]:
        echo("  nothing needed repairing")
    for d in done["unrepaired"]:
        echo(f"  not rebuilt: {_differs_line(d)}")
    if done["append_only_triggers_were_missing"]:
        echo("  note: the history's append-only triggers were missing, so events may have been "
             "changed meanwhile; the deals now follow the events as they are (only a backup "
             "can tell what they were)")


def print_check(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if result.get("repaired") is not None:
        _print_repaired(result)
    if result["ok"]:
        echo(
            f"{result['path']}: no problems found ({count(result['deals'], 'deal')}, "
            f"{count(result['events'], 'event')}; structure intact, schema as pipectl made it, "
            "every event belongs to a deal, every deal is what its events make of it)"
        )
        return
    echo(f"{result['path']}: problems found")
    for line in result["problems"]:
        echo(f"  - {line}")
    differing = result.get("differing") or []
    if differing:
        n = result["deals_differing"]
        first = f"the first {len(differing)} of {n}" if n > len(differing) else f"{n}"
        echo(f"  deals that differ from their events ({first}):")
        for d in differing:
            echo(f"    {_differs_line(d)}")
