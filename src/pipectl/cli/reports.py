"""Reports: report, forecast, stale, next. Thin: parse, call pipectl.services.reports, render."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import (
    JSON_HELP,
    connect_for_owner,
    positive_limit,
)
from pipectl.errors import UsageError

AS_OF_HELP = (
    "Reconstruct the pipeline as it stood at this moment (YYYY-MM-DD means its midnight UTC, "
    "or an ISO datetime); later events are ignored. Default: now."
)
OWNER_HELP = "Only this owner's deals."
CSV_HELP = "Print CSV (one figure per row) instead of a table."
PIPELINE_HELP = (
    "Only the deals in this pipeline (as of the as-of moment). Default: every pipeline "
    "(totals span them; stages are listed per pipeline)."
)

PipelineOption = Annotated[
    str | None,
    typer.Option("--pipeline", envvar="PIPECTL_PIPELINE", metavar="NAME", help=PIPELINE_HELP),
]
AsOfOption = Annotated[str | None, typer.Option("--as-of", metavar="DATE", help=AS_OF_HELP)]
OwnerOption = Annotated[str | None, typer.Option("--owner", "-o", help=OWNER_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
CsvOption = Annotated[bool, typer.Option("--csv", help=CSV_HELP)]


def _pipeline(name: str | None) -> str | None:
    """--pipeline as given (NFC, trimmed; empty means every pipeline)."""
    from pipectl.values import optional_text

    return optional_text(name, "--pipeline")


def _as_of(text: str | None) -> str:
    from pipectl.services import reports

    return reports.as_of(text, "--as-of")


def _date(text: str | None, field: str):
    if text is None:
        return None
    from pipectl.values import parse_date

    return parse_date(text, field)


def _format(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other")
    return "json" if as_json else "csv" if as_csv else "table"


def report(
    ctx: typer.Context,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="Window start (included).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Window end (excluded).")
    ] = None,
    week: Annotated[
        bool, typer.Option("--week", help="The window is a week (Monday to Sunday).")
    ] = False,
    month: Annotated[bool, typer.Option("--month", help="The window is a calendar month.")] = False,
    quarter: Annotated[
        bool, typer.Option("--quarter", help="The window is a calendar quarter.")
    ] = False,
    year: Annotated[bool, typer.Option("--year", help="The window is a calendar year.")] = False,
    in_: Annotated[
        str | None,
        typer.Option(
            "--in",
            metavar="DATE",
            help="With --week/--month/--quarter/--year: the period containing DATE "
            "(default: the period containing the as-of moment, i.e. the current one).",
        ),
    ] = None,
    as_of: AsOfOption = None,
    owner: OwnerOption = None,
    pipeline: PipelineOption = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show how each figure was computed and from which deals."),
    ] = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Every pipeline metric on one screen, with a funnel chart.

    Deals by status, pipeline and weighted value per currency, close rate, win rate, stage
    conversion (drawn as a funnel), sales cycle, time in stage, sales velocity, lost reasons.

    Flows (qualified, won, lost, cycle, conversion, lost reasons) count what happened in the
    window [--from, --to), all time by default; the pipeline, time in stage and velocity's open
    deals are the state at the as-of moment. Every figure is computed from the deals' event
    history (docs/metrics.md gives each formula), with the pipelines as defined at the as-of
    moment. Counts and money span every pipeline unless --pipeline names one; stages are
    listed per pipeline, and close and win rate are also given per pipeline.

    Examples:

      pipectl report

      pipectl report --month --in 2026-11-01 --owner "Anna Kowalska"

      pipectl report --from 2026-01-01 --to 2026-07-01 --as-of 2026-06-30 --json

      pipectl report --quarter --explain

      pipectl report --pipeline Partners --month
    """
    from pipectl.services import reports

    fmt = _format(as_json, as_csv)
    moment = _as_of(as_of)
    units = [
        u
        for u, on in (("week", week), ("month", month), ("quarter", quarter), ("year", year))
        if on
    ]
    if len(units) > 1:
        raise UsageError("give only one of --week, --month, --quarter, --year")
    if units and (from_ or to):
        raise UsageError(f"--{units[0]} and --from/--to exclude each other")
    if in_ and not units:
        raise UsageError("--in needs --week, --month, --quarter or --year")
    if units:
        day = _date(in_, "--in") or _date(moment[:10], "--as-of")
        window = reports.period(units[0], day)
    else:
        window = reports.window(_date(from_, "--from"), _date(to, "--to"))
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    data = reports.report(conn, moment, window, owner, explain=explain, pipeline=name)
    from pipectl.views import reports as view

    if fmt == "json":
        from pipectl.views.common import print_json

        print_json(view.report_json(data))
    elif fmt == "csv":
        view.report_csv(data)
    else:
        view.report(data, explain=explain)


def forecast(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="month or quarter.")] = "month",
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE",
            help="First period: the one containing DATE. Default: three periods before the "
            "current.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATE",
            help="Last period: the one containing DATE. Default: two periods after the current.",
        ),
    ] = None,
    as_of: AsOfOption = None,
    owner: OwnerOption = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Forecast versus actual, per month or quarter.

    A period's forecast is the pipeline as it stood when the period began: the deals open then
    whose expected close date lay in the period (count, value, weighted value, per currency).
    Periods not yet begun are forecast from the pipeline as of now. For periods that are over,
    the value actually won in them (every deal won in the period) and the forecast deals that
    slipped (not won in the period). Weighted values use the deals' own probabilities, else
    their stages' as the pipelines were defined when the period began.

    Examples:

      pipectl forecast

      pipectl forecast --by quarter --from 2026-01-01 --to 2026-12-31 --json

      pipectl forecast --owner "Anna Kowalska" --csv
    """
    from pipectl.services import reports

    fmt = _format(as_json, as_csv)
    unit = by.strip().lower()
    if unit not in ("month", "quarter"):
        raise UsageError(f"--by {by!r} is not month or quarter")
    moment = _as_of(as_of)
    first = _date(from_, "--from")
    last = _date(to, "--to")
    chosen = reports.forecast_periods(unit, moment, first, last)
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    result = reports.forecast(conn, moment, chosen, owner, pipeline=name)
    items, name = result.periods, result.pipeline  # the pipeline as it calls itself
    from pipectl.views import reports as view

    if fmt == "json":
        from pipectl.views.common import print_json

        print_json(view.forecast_json(items, moment, unit, owner, name, result.no_close_date,
                                      result.no_close_date_ids))
    elif fmt == "csv":
        view.forecast_csv(items, result.no_close_date)
    else:
        view.forecast_table(items, moment, name, result.no_close_date)


def stale(
    ctx: typer.Context,
    days: Annotated[
        list[str] | None,
        typer.Option(
            "--days",
            metavar="N|STAGE=N",
            help="Idle threshold in days for every stage (default: each stage's rot days, 14 "
            "unless its pipeline says otherwise); STAGE=N sets one stage's (repeatable).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most this many deals (0: all).")
    ] = 50,
    as_of: AsOfOption = None,
    owner: OwnerOption = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open deals idle for longer than a threshold, oldest first.

    An event is any move, note, edit, checklist or value change. The threshold is each stage's
    rot days (14 unless the pipeline's definition sets rot_days) unless --days says
    otherwise, per stage if wanted.

    Examples:

      pipectl stale

      pipectl stale --days 7 --days negotiation=3 --json
    """
    from pipectl.services import reports

    most = positive_limit(limit) or None
    default = None
    wanted: list[reports.StageDays] = []
    for item in days or []:
        key, sep, value = item.partition("=")
        number = value if sep else key
        try:
            n = int(number.strip())
        except ValueError as exc:
            raise UsageError(f"--days {item!r} is not a number of days or STAGE=N") from exc
        if sep:
            wanted.append(reports.StageDays(key, n, item))
        else:
            default = n
    name = _pipeline(pipeline)
    moment = _as_of(as_of)
    conn, owner = connect_for_owner(ctx, owner)
    found = reports.stale(conn, moment, default, wanted, owner, limit=most, pipeline=name)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json

        print_json(view.stale_json(found.rows, found.total, moment, found.several))
    else:
        view.stale_table(found.rows, found.total, moment, found.several)


def next_(
    ctx: typer.Context,
    owner: OwnerOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most this many deals (0: all).")
    ] = 20,
    as_of: AsOfOption = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """What each open deal needs next, most urgent first.

    The deal's logged next action (pipectl note --next) if one was logged since it entered its
    stage, otherwise what its stage calls for (the action of its pipeline's definition).
    Ranked: overdue next action, due today, stale (no event for longer than its stage's rot
    days, 14 by default), close overdue (the expected close date has passed), closing soon
    (expected close today or within 14 days), then the rest; larger value first within each
    tier.

    Examples:

      pipectl next --owner "Anna Kowalska"

      pipectl next --limit 0 --json
    """
    from pipectl.services import reports

    most = positive_limit(limit) or None
    name = _pipeline(pipeline)
    moment = _as_of(as_of)
    conn, owner = connect_for_owner(ctx, owner)
    found = reports.next_steps(conn, moment, owner, limit=most, pipeline=name)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json

        print_json(view.next_json(found.rows, found.total, moment, found.several))
    else:
        view.next_table(found.rows, found.total, moment, found.several)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(forecast)
    app.command()(stale)
    app.command("next")(next_)
