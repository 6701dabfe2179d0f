"""`pipectl log`: what happened across all deals, day by day, for the weekly review."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, OWNER_HELP, connect_for_owner, positive_limit
from pipectl.errors import UsageError

SINCE_HELP = ("The first day: YYYY-MM-DD, today, yesterday, a weekday (monday: this week's), "
              "7d, 2w, 1m (the last seven days, two weeks, month, today included). Default: 7d.")
UNTIL_HELP = "The last day (the same forms as --since). Default: today."


def log(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help=SINCE_HELP)] = None,
    until: Annotated[str | None, typer.Option("--until", help=UNTIL_HELP)] = None,
    owner: Annotated[str | None, typer.Option("--owner", help=OWNER_HELP)] = None,
    pipeline: Annotated[str | None, typer.Option(
        "--pipeline", help="Only the deals now in this pipeline.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", help="At most this many events (the newest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one event a row.")] = False,
) -> None:
    """What happened across all deals, day by day, newest first: moves, wins, losses, notes,
    next steps, changes (and undos).

    Each line: the time, the deal, what happened. Days are your local days.

    Example:

      pipectl log --since monday --owner me
    """
    from pipectl.domain.days import parse_since
    from pipectl.services import clock
    from pipectl.services.activity import log as read_log

    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other")
    n = positive_limit(limit)
    today = clock.day()
    first = parse_since(since if since is not None else "7d", today, "--since")
    last = parse_since(until, today, "--until") if until is not None else today
    conn, who = connect_for_owner(ctx, owner)
    got = read_log(conn, first, last, who, pipeline, n)
    from pipectl.views import log as view

    since_text, until_text = first.isoformat(), last.isoformat()
    if as_json:
        view.log_json(got.rows, got.pipelines, since_text, until_text)
    elif as_csv:
        view.log_csv(got.rows, got.pipelines)
    else:
        view.log_text(got.rows, got.pipelines, since_text, until_text, got.limited)


def register(app: typer.Typer) -> None:
    app.command()(log)
