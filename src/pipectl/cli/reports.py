"""Reports: report, forecast, stale, next. Thin: parse, call pipectl.services.reports, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from pipectl.cli.common import (
    JSON_HELP,
    OWNER_HELP,
    connect_for_owner,
    positive_limit,
)
from pipectl.errors import UsageError

AS_OF_HELP = (
    "Reconstruct the pipeline as it stood at this moment, in your local time unless an offset "
    "is given (YYYY-MM-DD means the start of that day; or a time, e.g. 2026-12-01T09:00); "
    "later events are ignored. Default: now."
)
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


def _in_values(given: list[str]) -> tuple[str | None, str | None]:
    """report's --in values: at most one DATE (a period) and one CURRENCY (three letters),
    checked before the database is opened."""
    import re

    from pipectl.cli.common import in_arg

    codes = [g for g in given if re.fullmatch(r"\s*[A-Za-z]{3}\s*", g)]
    days = [g for g in given if g not in codes]
    for text in days:
        if not re.match(r"\s*\d", text):
            raise UsageError(f"--in {text!r} is neither a date (YYYY-MM-DD: the period "
                             "containing it) nor a currency code (three letters, e.g. EUR)")
    if len(days) > 1 or len(codes) > 1:
        raise UsageError("--in takes at most one date and one currency",
                         hint="e.g. --quarter --in 2026-07-01 --in EUR")
    for day in days:
        _date(day, "--in")
    return (days[0] if days else None), (in_arg(codes[0]) if codes else None)


def _values_in(conv, fmt: str) -> None:
    """Say which rates converted the figures (``_said``)."""
    from pipectl.views.rates import heading

    _said(heading(conv), fmt)


def _said(line: str, fmt: str) -> None:
    """A line about the figures: above a table; on stderr beside CSV; not with JSON, which
    carries it as "values_in"."""
    if fmt == "table":
        from pipectl.views.table import echo

        echo((line, "dim"))
    elif fmt == "csv":
        from pipectl.views.common import note

        note(line[:1].lower() + line[1:])


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
        list[str] | None,
        typer.Option(
            "--in",
            metavar="DATE|CURRENCY",
            help="A DATE, with --week/--month/--quarter/--year: the period containing it "
            "(default: the period containing the as-of moment, i.e. the current one). A "
            "CURRENCY: the money converted into it at the rates in force at the as-of moment "
            "(pipectl rate set; a currency with no rate stays as it is, with a note). Both "
            "may be given, e.g. --quarter --in 2026-07-01 --in EUR.",
        ),
    ] = None,
    as_of: AsOfOption = None,
    owner: OwnerOption = None,
    pipeline: PipelineOption = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show how each figure was computed and from which deals."),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="owner|source|pipeline",
            help="One row per owner (or source, or pipeline) instead of the whole report: deals "
            "won and their value, win rate, close rate, median cycle, open and weighted "
            "pipeline, per currency. Not with --owner for --by owner, nor with --pipeline for "
            "--by pipeline. Example: pipectl report --quarter --by owner",
        ),
    ] = None,
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

      pipectl report --quarter --by owner
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
    in_day, target = _in_values(in_ or [])
    if in_day and not units:
        raise UsageError("--in needs --week, --month, --quarter or --year",
                         hint="--in EUR, three letters, converts into a currency instead")
    if units:
        from pipectl.localtime import today

        day = _date(in_day, "--in") or today(moment)  # the user's date at the as-of moment
        window = reports.period(units[0], day)
    else:
        window = reports.window(_date(from_, "--from"), _date(to, "--to"))
    name = _pipeline(pipeline)
    if by is not None:
        from pipectl.cli.common import owner_arg

        source = getattr(ctx.get_parameter_source("pipeline"), "name", None)
        given = "PIPECTL_PIPELINE" if source == "ENVIRONMENT" else "--pipeline"
        by = reports.report_by(by, owner_arg(owner), name, given)
        conn, owner = connect_for_owner(ctx, owner)
        grouped = reports.breakdown(conn, moment, window, by, owner, explain=explain,
                                    pipeline=name)
        from pipectl.views import breakdown as by_view

        conv = None
        if target is not None:
            from pipectl.services import rates

            grouped, conv = rates.convert_breakdown(conn, grouped, target)
        _render(grouped, conv, fmt, by_view.breakdown_json, by_view.breakdown_csv,
                by_view.breakdown)
        return
    conn, owner = connect_for_owner(ctx, owner)
    data = reports.report(conn, moment, window, owner, explain=explain, pipeline=name)
    from pipectl.views import reports as view

    conv = None
    if target is not None:
        from pipectl.services import rates

        data, conv = rates.convert_report(conn, data, target)
    _render(data, conv, fmt, view.report_json, view.report_csv,
            lambda d: view.report(d, explain=explain))


def _render(data: Any, conv: Any, fmt: str, as_json: Callable[[Any], dict[str, Any]],
            as_csv: Callable[[Any], None], as_text: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, CSV or the terminal's text; converted by ``conv`` (--in), the
    output says at which rates (what had no rate stays in its currency)."""
    if conv is not None:
        _values_in(conv, fmt)
    if fmt == "json":
        from pipectl.views.common import print_json

        out = as_json(data)
        print_json(out if conv is None else {**out, "values_in": conv.as_json()})
    elif fmt == "csv":
        as_csv(data)
    else:
        as_text(data)


def forecast(
    ctx: typer.Context,
    by: Annotated[str | None, typer.Option("--by", help="month or quarter.")] = None,
    quarter: Annotated[bool, typer.Option("--quarter", help="Per quarter: --by quarter.")] = False,
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
    into: Annotated[
        str | None,
        typer.Option(
            "--in",
            metavar="CURRENCY",
            help="Convert the money into this currency, each period at the rates in force "
            "when its forecast was read (its start; a future period's: the as-of moment), "
            "its actual too, e.g. --in EUR; a currency with no rate stays as it is.",
        ),
    ] = None,
    range_: Annotated[
        bool,
        typer.Option("--range", help="P10 / P50 / P90 and the expected value won in each "
                     "period from the current one, by Monte Carlo over the open deals with "
                     "probabilities and timing learned from the history (docs/forecasting.md). "
                     "Default: the current period and the two after it."),
    ] = False,
    target: Annotated[
        str | None,
        typer.Option("--target", metavar="AMOUNT",
                     help="With the range (implies --range): the chance of winning at least "
                     "AMOUNT in each period, e.g. --target 250000 or --target '250000 EUR'."),
    ] = None,
    backtest: Annotated[
        bool,
        typer.Option("--backtest", help="For each period over: the weighted forecast and the "
                     "range as computed at its start from the events known then, against the "
                     "value won; the share of periods inside P10-P90 and the mean errors. "
                     "Default: the 24 periods before the current one."),
    ] = False,
    runs: Annotated[
        int, typer.Option("--runs", metavar="N", help="Simulated futures (100 to 1,000,000).")
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the draws: same seed, same "
                          "figures.")
    ] = 1,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Forecast versus actual, per month or quarter; with --range, as a range of outcomes;
    with --backtest, scored against the past.

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

      pipectl forecast --by quarter --in EUR

      pipectl forecast --range

      pipectl forecast --target 250000 --quarter

      pipectl forecast --backtest --from 2025-01-01 --json
    """
    from pipectl.cli.common import in_arg
    from pipectl.services import reports

    fmt = _format(as_json, as_csv)
    if quarter and by is not None and by.strip().lower() != "quarter":
        raise UsageError(f"--quarter and --by {by} disagree")
    unit = "quarter" if quarter else (by or "month").strip().lower()
    if unit not in ("month", "quarter"):
        raise UsageError(f"--by {by!r} is not month or quarter")
    moment = _as_of(as_of)
    first = _date(from_, "--from")
    last = _date(to, "--to")
    if range_ or target is not None or backtest:
        if into is not None:
            raise UsageError("--in converts the weighted forecast; the range and the backtest "
                             "are per currency", hint="leave out --in")
        if backtest and (range_ or target is not None):
            raise UsageError("--backtest scores the past; --range and --target forecast the "
                             "future: run them one at a time")
        _ranges(ctx, unit, moment, first, last, owner, _pipeline(pipeline), backtest, target,
                runs, seed, fmt)
        return
    target = in_arg(into)
    chosen = reports.forecast_periods(unit, moment, first, last)
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    result = reports.forecast(conn, moment, chosen, owner, pipeline=name)
    values_in = None
    if target is not None:
        from pipectl.services import rates
        from pipectl.views import rates as rate_view

        result, convs, now = rates.convert_forecast(conn, result, target, moment)
        values_in = rate_view.forecast_json_in(result.periods, convs, now)
        for line in rate_view.forecast_heading(result.periods, convs, now):
            _said(line, fmt)
    items, name = result.periods, result.pipeline  # the pipeline as it calls itself
    from pipectl.views import reports as view

    if fmt == "json":
        from pipectl.views.common import print_json

        out = view.forecast_json(items, moment, unit, owner, name, result.no_close_date,
                                 result.no_close_date_ids)
        print_json(out if values_in is None else {**out, "values_in": values_in})
    elif fmt == "csv":
        view.forecast_csv(items, result.no_close_date)
    else:
        view.forecast_table(items, moment, name, result.no_close_date)


def _ranges(ctx: typer.Context, unit: str, moment: str, first, last, owner: str | None,
            name: str | None, backtest: bool, target_text: str | None, runs: int, seed: int,
            fmt: str) -> None:
    """forecast --range / --target / --backtest (services.forecasting)."""
    from pipectl.services import forecasting
    from pipectl.views import forecasting as view

    if not 100 <= runs <= forecasting.MOST_RUNS:
        raise UsageError(f"--runs {runs} must be from 100 to {forecasting.MOST_RUNS:,}")
    if seed < 0:
        raise UsageError(f"--seed {seed} must be 0 or more")
    target = None if target_text is None else forecasting.parse_target(target_text)
    if backtest:
        chosen = forecasting.backtest_periods(unit, moment, first, last)
        conn, owner = connect_for_owner(ctx, owner)
        result = forecasting.backtest(conn, moment, unit, chosen, owner, name, runs, seed)
        shown = (view.backtest_json, view.backtest_csv, view.backtest_table)
    else:
        chosen = forecasting.range_periods(unit, moment, first, last)
        conn, owner = connect_for_owner(ctx, owner)
        result = forecasting.forecast_range(conn, moment, unit, chosen, owner, name, runs,
                                            seed, target)
        shown = (view.range_json, view.range_csv, view.range_table)
    as_json, as_csv, as_table = shown
    if fmt == "json":
        as_json(result, owner)
    elif fmt == "csv":
        as_csv(result)
    else:
        as_table(result)


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
    found = reports.stale(conn, moment, default, wanted, owner, limit=most, pipeline=name,
                          stream=as_json)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json_ending_with_list

        print_json_ending_with_list({"as_of": moment, "total": found.total}, "deals",
                                    view.stale_items(found.rows, found.several))
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
    found = reports.next_steps(conn, moment, owner, limit=most, pipeline=name,
                               stream=as_json)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json_ending_with_list

        print_json_ending_with_list({"as_of": moment, "total": found.total}, "deals",
                                    view.next_items(found.rows, found.several))
    else:
        view.next_table(found.rows, found.total, moment, found.several)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(forecast)
    app.command()(stale)
    app.command("next")(next_)
