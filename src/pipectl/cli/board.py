"""The pipeline at a glance: board, stages, demo."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import IN_HELP, JSON_HELP, OWNER_HELP, connect_for_owner

BOARD_PIPELINE_HELP = "The pipeline to show. Default: the default pipeline."


def _pipeline(name: str | None) -> str | None:
    from pipectl.values import optional_text

    return optional_text(name, "--pipeline")


def board(
    ctx: typer.Context,
    owner: Annotated[
        str | None, typer.Option("--owner", "-o", help=OWNER_HELP)
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", help="Largest deals shown per stage (0: all of them)."),
    ] = 8,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline", envvar="PIPECTL_PIPELINE", metavar="NAME", help=BOARD_PIPELINE_HELP
        ),
    ] = None,
    into: Annotated[str | None, typer.Option("--in", metavar="CURRENCY", help=IN_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """One pipeline at a glance: a column per open stage with its deals, count and values.

    Values are totalled per currency, never added across currencies (--in converts them at the
    rates in force now, and says which); weighted value uses each deal's own probability, else
    its stage's. The largest deals of a stage are those of each currency in turn (with --in:
    by converted value). The default pipeline unless --pipeline names another. With --in,
    --json gives {"values_in": ..., "stages": [...]}.

    Examples:

      pipectl board --owner "Anna Kowalska"

      pipectl board --pipeline "Agency retainers"

      pipectl board --in EUR
    """
    from pipectl.cli.common import in_arg, positive_limit
    from pipectl.services import reports
    from pipectl.views import deals as view

    per_stage = positive_limit(limit) or None
    name = _pipeline(pipeline)
    target = in_arg(into)
    conn, owner = connect_for_owner(ctx, owner)
    shown = reports.board(conn, name, owner=owner, per_stage=per_stage, into=target)
    columns = view.board_data(shown.top, shown.totals, shown.pipeline)
    conv = shown.converter
    if conv is not None:
        from pipectl.views import rates as rate_view

        columns = rate_view.board_in(columns, conv)
    if as_json:
        from pipectl.views.common import print_json

        stages = view.board_json(columns)
        print_json(stages if conv is None else {"values_in": conv.as_json(), "stages": stages})
    else:
        _title(shown)
        if conv is not None:
            from pipectl.views.rates import heading
            from pipectl.views.table import echo

            echo((heading(conv, "at the rates in force now"), "dim"))
        view.board(columns)


def _title(shown) -> None:
    """With more than one pipeline in the database, say which one the board shows."""
    if shown.several:
        from pipectl.views.table import echo

        echo(("Pipeline: ", "bold"), (shown.pipeline.name, "bold"))


def stages_(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            envvar="PIPECTL_PIPELINE",
            metavar="NAME",
            help="The pipeline whose stages to show. Default: the default pipeline.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A pipeline's stages, their default probabilities and the rules for moving between them.

    Examples:

      pipectl stages --json

      pipectl stages --pipeline "Agency retainers"
    """
    from pipectl.cli.common import connect
    from pipectl.services import reports
    from pipectl.views import deals as view

    name = _pipeline(pipeline)
    shown = reports.stages(connect(ctx), name)
    if as_json:
        from pipectl.views.common import print_json

        print_json(
            {
                "pipeline": shown.pipeline.name,
                "stages": view.stages_json(shown.pipeline),
                "rules": shown.rules,
            }
        )
    else:
        view.stages_table(shown.pipeline)


def demo(
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            help="Where to write the demo database. Default: demo.db in the user "
            "data directory (never your own pipeline).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed, the same demo.")
    ] = 7,
) -> None:
    """Create a separate demo database with a realistic pipeline and show its board.

    About forty deals over six months: every stage, won and lost deals with reasons, skipped
    stages, a move back, a reopened deal, three owners, EUR and USD, Vietnamese and Polish names.
    Your own database (--db) is never touched; the demo file is replaced on each run.

    Examples:

      pipectl demo

      pipectl demo --path /tmp/demo.db && pipectl --db /tmp/demo.db list --status all
    """

    from pipectl.cli.common import default_db_path
    from pipectl.paths import expand
    from pipectl.services import database
    from pipectl.views import deals as view
    from pipectl.views.table import echo

    target = expand(path) if path else default_db_path().with_name("demo.db")
    made = database.demo(target, seed=seed, per_stage=5)
    shown = made.board
    columns = view.board_data(shown.top, shown.totals, shown.pipeline)
    _title(shown)
    view.board(columns)
    status = made.status
    echo()
    echo(
        f"Demo database with {made.count} deals ({status['open']} open, {status['won']} won, "
        f"{status['lost']} lost): {target}"
    )
    echo('Two pipelines: the default one (above) and "Agency retainers", one of its own:')
    echo('  pipectl board --pipeline "Agency retainers"; pipectl pipeline list')
    echo(f'Explore it:  export PIPECTL_DB="{target}"; pipectl list; pipectl show 1')


def register(app: typer.Typer) -> None:
    app.command()(board)
    app.command("stages")(stages_)
    app.command()(demo)
