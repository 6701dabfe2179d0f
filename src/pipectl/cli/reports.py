"""Reports: report, forecast, stale, next. Thin: parse, call pipectl.reports, render."""

from __future__ import annotations

import typer

from pipectl.cli.common import (
    JSON_HELP,
    connect_for_owner,
    now,
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


def _pipeline_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--pipeline", envvar="PIPECTL_PIPELINE", metavar="NAME",
                        help=PIPELINE_HELP)


def _pipeline(name: str | None) -> str | None:
    """--pipeline as given (NFC, trimmed; empty means every pipeline)."""
    from pipectl.values import optional_text

    return optional_text(name, "--pipeline")


def _as_of(text: str | None) -> str:
    from pipectl.values import iso, parse_moment

    return iso(parse_moment(text, "--as-of") if text else now())


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
    from_: str = typer.Option(None, "--from", metavar="DATE", help="Window start (included)."),
    to: str = typer.Option(None, "--to", metavar="DATE", help="Window end (excluded)."),
    week: bool = typer.Option(False, "--week", help="The window is a week (Monday to Sunday)."),
    month: bool = typer.Option(False, "--month", help="The window is a calendar month."),
    quarter: bool = typer.Option(False, "--quarter", help="The window is a calendar quarter."),
    year: bool = typer.Option(False, "--year", help="The window is a calendar year."),
    in_: str = typer.Option(
        None, "--in", metavar="DATE",
        help="With --week/--month/--quarter/--year: the period containing DATE "
        "(default: the period containing the as-of moment, i.e. the current one).",
    ),
    as_of: str = typer.Option(None, "--as-of", metavar="DATE", help=AS_OF_HELP),
    owner: str = typer.Option(None, "--owner", "-o", help=OWNER_HELP),
    pipeline: str = _pipeline_option(),
    explain: bool = typer.Option(
        False, "--explain", help="Show how each figure was computed and from which deals."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
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
    from pipectl.reports import periods, summary

    fmt = _format(as_json, as_csv)
    moment = _as_of(as_of)
    units = [u for u, on in (("week", week), ("month", month), ("quarter", quarter),
                             ("year", year)) if on]
    if len(units) > 1:
        raise UsageError("give only one of --week, --month, --quarter, --year")
    if units and (from_ or to):
        raise UsageError(f"--{units[0]} and --from/--to exclude each other")
    if in_ and not units:
        raise UsageError("--in needs --week, --month, --quarter or --year")
    if units:
        day = _date(in_, "--in") or _date(moment[:10], "--as-of")
        window = periods.period(units[0], day)
    else:
        window = periods.window(_date(from_, "--from"), _date(to, "--to"))
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    data = summary.build(conn, moment, window, owner, explain=explain, pipeline=name)
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
    by: str = typer.Option("month", "--by", help="month or quarter."),
    from_: str = typer.Option(
        None, "--from", metavar="DATE",
        help="First period: the one containing DATE. Default: three periods before the current.",
    ),
    to: str = typer.Option(
        None, "--to", metavar="DATE",
        help="Last period: the one containing DATE. Default: two periods after the current.",
    ),
    as_of: str = typer.Option(None, "--as-of", metavar="DATE", help=AS_OF_HELP),
    owner: str = typer.Option(None, "--owner", "-o", help=OWNER_HELP),
    pipeline: str = _pipeline_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
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
    from pipectl.reports import forecast as fc
    from pipectl.reports import periods

    fmt = _format(as_json, as_csv)
    unit = by.strip().lower()
    if unit not in ("month", "quarter"):
        raise UsageError(f"--by {by!r} is not month or quarter")
    moment = _as_of(as_of)
    here = periods.period_start(unit, _date(moment[:10], "--as-of"))
    first = _date(from_, "--from")
    if first is None:
        first = here
        for _ in range(3):
            first = periods.period_start(unit, first.replace(day=1) - _one_day())
    last = _date(to, "--to")
    if last is None:
        last = here
        for _ in range(2):
            last = periods.next_start(unit, last)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    chosen = periods.periods(unit, first, last)
    if len(chosen) > 120:
        raise UsageError(f"{len(chosen)} periods is too many (at most 120)")
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    items = fc.build(conn, moment, chosen, owner, pipeline=name)
    if name is not None:  # as the pipeline calls itself, not as typed
        from pipectl.store import pipelines

        name = pipelines.by_name(conn, name).name
    from pipectl.views import reports as view

    if fmt == "json":
        from pipectl.views.common import print_json

        print_json(view.forecast_json(items, moment, unit, owner, name))
    elif fmt == "csv":
        view.forecast_csv(items)
    else:
        view.forecast_table(items, moment, name)


def _one_day():
    from datetime import timedelta

    return timedelta(days=1)


def stale(
    ctx: typer.Context,
    days: list[str] = typer.Option(
        None, "--days", metavar="N|STAGE=N",
        help="Idle threshold in days for every stage (default: each stage's rot days, 14 "
        "unless its pipeline says otherwise); STAGE=N sets one stage's (repeatable).",
    ),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many deals (0: all)."),
    as_of: str = typer.Option(None, "--as-of", metavar="DATE", help=AS_OF_HELP),
    owner: str = typer.Option(None, "--owner", "-o", help=OWNER_HELP),
    pipeline: str = _pipeline_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Open deals idle for longer than a threshold, oldest first.

    An event is any move, note, edit, checklist or value change. The threshold is each stage's
    rot days (14 unless the pipeline's definition sets rot_days) unless --days says
    otherwise, per stage if wanted.

    Examples:

      pipectl stale

      pipectl stale --days 7 --days negotiation=3 --json
    """
    from pipectl.reports import actions
    from pipectl.reports.scope import scope

    most = positive_limit(limit) or None
    default = None
    wanted: list[tuple[str, str, int]] = []  # (as given, stage name, days)
    for item in days or []:
        key, sep, value = item.partition("=")
        number = value if sep else key
        try:
            n = int(number.strip())
        except ValueError as exc:
            raise UsageError(f"--days {item!r} is not a number of days or STAGE=N") from exc
        if sep:
            wanted.append((item, key, n))
        else:
            default = n
    name = _pipeline(pipeline)
    moment = _as_of(as_of)
    conn, owner = connect_for_owner(ctx, owner)
    sc = scope(conn, moment, name)
    per_stage = {}
    for item, key, n in wanted:
        for pid, stage in _open_stage(sc, item, key):
            per_stage[(pid, stage)] = n
    rows, total = actions.stale(conn, moment, actions.thresholds(sc, default, per_stage), owner,
                                limit=most, sc=sc)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json

        print_json(view.stale_json(rows, total, moment, sc.several))
    else:
        view.stale_table(rows, total, moment, sc.several)


def _open_stage(sc, item: str, text: str) -> list[tuple[int, str]]:
    """The open stage ``text`` names (key, label, alias or prefix) in each pipeline covered
    that has it: [(pipeline id, stage key)]. Pipelines with a stage of that very key come
    first: only they are meant then."""
    found: list[tuple[int, str]] = []
    errors: list[UsageError] = []
    key = text.strip()
    having = [p for p in sc.shown if key in p.keys]  # a stage's key names it before any alias
    for p in having or sc.shown:
        try:
            stage = p.parse_stage(text)
        except UsageError as exc:
            errors.append(exc)
            continue
        if not p.is_open(stage):
            raise UsageError(f"--days {item!r}: {stage} is not an open stage")
        found.append((p.id, stage))
    if not found and len(errors) == 1:
        raise errors[0]
    if not found:
        have = "; ".join(f"{p.name}: {', '.join(p.open_keys)}" for p in sc.shown)
        raise UsageError(f"--days {item!r}: no pipeline has an open stage {text!r}",
                         hint=f"open stages of {have}")
    return found


def next_(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", "-o", help=OWNER_HELP),
    limit: int = typer.Option(20, "--limit", "-n", help="At most this many deals (0: all)."),
    as_of: str = typer.Option(None, "--as-of", metavar="DATE", help=AS_OF_HELP),
    pipeline: str = _pipeline_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """What each open deal needs next, most urgent first.

    The deal's logged next action (pipectl note --next) if one was logged since it entered its
    stage, otherwise what its stage calls for (the action of its pipeline's definition).
    Ranked: overdue next action, due today, stale (no event for longer than its stage's rot
    days, 14 by default), expected close within 14 days, then the rest; larger value first
    within each tier.

    Examples:

      pipectl next --owner "Anna Kowalska"

      pipectl next --limit 0 --json
    """
    from pipectl.reports import actions
    from pipectl.reports.scope import scope

    most = positive_limit(limit) or None
    name = _pipeline(pipeline)
    moment = _as_of(as_of)
    conn, owner = connect_for_owner(ctx, owner)
    sc = scope(conn, moment, name)
    rows, total = actions.next_steps(conn, moment, owner, limit=most, sc=sc)
    from pipectl.views import reports as view

    if as_json:
        from pipectl.views.common import print_json

        print_json(view.next_json(rows, total, moment, sc.several))
    else:
        view.next_table(rows, total, moment, sc.several)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(forecast)
    app.command()(stale)
    app.command("next")(next_)
