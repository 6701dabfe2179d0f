"""`pipectl calibrate`: the stage probabilities learned from the history, and how good the set
ones are. Thin: parse, call pipectl.services.forecasting, render (pipectl.views.forecasting).
`forecast --range` and `--backtest` are options of `pipectl forecast` (cli/reports.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import connect
from pipectl.cli.reports import (
    AsOfOption,
    CsvOption,
    JsonOption,
    PipelineOption,
    _as_of,
    _format,
    _pipeline,
)
from pipectl.errors import UsageError


def calibrate(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE",
                     help="Learn only from the deals decided (won or lost) since DATE."),
    ] = None,
    min_decided: Annotated[
        int,
        typer.Option("--min-decided", metavar="N",
                     help="A stage's probability is learned from at least N decided deals; "
                     "with fewer it says 'too few'."),
    ] = 10,
    as_of: AsOfOption = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Write the learned probabilities into the pipeline's "
                     "definition, as a new version, after showing the change."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --apply: do not ask.")] = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Stage probabilities learned from your own history, against the ones set.

    For each open stage: of the deals that were ever in it and are now decided, the share
    won, with its 90 % interval (Wilson) and how many it rests on, beside the probability the
    pipeline sets; and the days from entering the stage to the win or loss (median, and the
    25th to 75th percentile). Stages with fewer than --min-decided decided deals say so
    instead of a number. Then the set probabilities' Brier score on the decided deals and the
    calibration table: set probability against the share actually won. Only events known at
    the as-of moment count. docs/forecasting.md explains every number.

    Examples:

      pipectl calibrate

      pipectl calibrate --pipeline "Agency retainers" --since 2026-01-01 --json

      pipectl calibrate --apply
    """
    from pipectl.services import forecasting
    from pipectl.views import forecasting as view

    fmt = _format(as_json, as_csv)
    moment = _as_of(as_of)
    start = None
    if since is not None:
        from pipectl.localtime import shown, zone
        from pipectl.values import iso, parse_moment

        start = iso(parse_moment(since, "--since", zone()))
        if start > moment:
            raise UsageError(f"--since {since} is after the as-of moment {shown(moment)}")
    if apply and as_csv:
        raise UsageError("--apply prints what it changed as a table or --json, not --csv")
    if yes and not apply:
        raise UsageError("--yes goes with --apply")
    if apply and as_of is not None:
        raise UsageError("--apply writes what is learned now; it does not take --as-of")
    if apply and not yes:
        import sys

        if not sys.stdin.isatty():
            raise UsageError("--apply needs confirmation and there is no terminal",
                             hint="add --yes")
    name = _pipeline(pipeline)
    conn = connect(ctx)
    cal = forecasting.calibrate(conn, moment, name, start, min_decided)
    if not apply:
        if fmt == "json":
            view.calibrate_json(cal)
        elif fmt == "csv":
            view.calibrate_csv(cal)
        else:
            view.calibrate_table(cal)
        return
    preview = view.apply_preview(cal)
    if fmt == "table":
        view.calibrate_table(cal)
    if not preview:
        if fmt == "json":
            view.calibrate_json(cal, [])
        else:
            typer.echo("Nothing to apply: every stage with enough decided deals already has "
                       "its learned probability.")
        return
    if not yes:
        typer.echo("This sets, as a new version of the pipeline's definition:", err=fmt == "json")
        for line in preview:
            typer.echo(f"  {line}", err=fmt == "json")
        if not typer.confirm("Apply?", err=fmt == "json"):
            typer.echo("Nothing changed.", err=True)
            raise typer.Exit(1)
    applied = forecasting.apply_calibration(conn, cal)
    if fmt == "json":
        view.calibrate_json(cal, applied)
        return
    for a in applied:
        if a.version is not None:
            typer.echo(f"Pipeline {a.pipeline}: version {a.version} sets "
                       + ", ".join(f"{k} {old} % -> {new} %" for k, old, new in a.changes)
                       + " (earlier moments keep the version in force then)")


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
