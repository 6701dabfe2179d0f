"""The pipeline at a glance: board, stages, demo."""

from __future__ import annotations

import typer

from pipectl.cli.common import JSON_HELP, connect_for_owner

BOARD_PIPELINE_HELP = "The pipeline to show. Default: the default pipeline."


def _pipeline(name: str | None) -> str | None:
    from pipectl.values import optional_text

    return optional_text(name, "--pipeline")


def board(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", "-o", help="Only this owner's deals."),
    limit: int = typer.Option(
        8, "--limit", "-n", help="Largest deals shown per stage (0: all of them)."
    ),
    pipeline: str = typer.Option(
        None, "--pipeline", envvar="PIPECTL_PIPELINE", metavar="NAME", help=BOARD_PIPELINE_HELP
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One pipeline at a glance: a column per open stage with its deals, count and values.

    Values are totalled per currency, never added across currencies; weighted value uses each
    deal's own probability, else its stage's. The default pipeline unless --pipeline names
    another.

    Examples:

      pipectl board --owner "Anna Kowalska"

      pipectl board --pipeline "Agency retainers"
    """
    from pipectl.cli.common import positive_limit
    from pipectl.store import deals, pipelines
    from pipectl.views import deals as view

    per_stage = positive_limit(limit) or None
    name = _pipeline(pipeline)
    conn, owner = connect_for_owner(ctx, owner)
    shown = pipelines.by_name(conn, name)
    columns = view.board_data(*deals.board(conn, shown, owner=owner, per_stage=per_stage),
                              shown)
    if as_json:
        from pipectl.views.common import print_json

        print_json(view.board_json(columns))
    else:
        _title(conn, shown)
        view.board(columns)


def _title(conn, shown) -> None:
    """With more than one pipeline in the database, say which one the board shows."""
    several = conn.execute(
        "SELECT count(*) > 1 FROM pipelines WHERE removed_at IS NULL").fetchone()[0]
    if several:
        from pipectl.views.table import echo

        echo(("Pipeline: ", "bold"), (shown.name, "bold"))


def stages_(
    ctx: typer.Context,
    pipeline: str = typer.Option(
        None, "--pipeline", envvar="PIPECTL_PIPELINE", metavar="NAME",
        help="The pipeline whose stages to show. Default: the default pipeline.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A pipeline's stages, their default probabilities and the rules for moving between them.

    Examples:

      pipectl stages --json

      pipectl stages --pipeline "Agency retainers"
    """
    from pipectl.cli.common import connect
    from pipectl.domain.rules import describe
    from pipectl.store import pipelines
    from pipectl.views import deals as view

    name = _pipeline(pipeline)
    shown = pipelines.by_name(connect(ctx), name)
    if as_json:
        from pipectl.views.common import print_json

        print_json({"pipeline": shown.name, "stages": view.stages_json(shown),
                    "rules": describe(shown)})
    else:
        view.stages_table(shown)


def demo(
    path: str = typer.Option(
        None, "--path", help="Where to write the demo database. Default: demo.db in the user "
        "data directory (never your own pipeline).",
    ),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed, the same demo."),
) -> None:
    """Create a separate demo database with a realistic pipeline and show its board.

    About forty deals over six months: every stage, won and lost deals with reasons, skipped
    stages, a move back, a reopened deal, three owners, EUR and USD, Vietnamese and Polish names.
    Your own database (--db) is never touched; the demo file is replaced on each run.

    Examples:

      pipectl demo

      pipectl demo --path /tmp/demo.db && pipectl --db /tmp/demo.db list --status all
    """

    from pipectl import demo as demo_data
    from pipectl.cli.common import default_db_path, now
    from pipectl.paths import expand
    from pipectl.store import deals, pipelines
    from pipectl.store.db import connect as open_db
    from pipectl.views import deals as view
    from pipectl.views.table import echo

    target = expand(path) if path else default_db_path().with_name("demo.db")
    count = demo_data.build(target, now(), seed=seed)
    conn = open_db(target)
    try:
        shown = pipelines.default(conn)
        columns = view.board_data(*deals.board(conn, shown, per_stage=5), shown)
        _title(conn, shown)
        status = deals.counts_by_status(conn)
    finally:
        conn.close()
    view.board(columns)
    echo()
    echo(f"Demo database with {count} deals ({status['open']} open, {status['won']} won, "
         f"{status['lost']} lost): {target}")
    echo(f'Explore it:  export PIPECTL_DB="{target}"; pipectl list; pipectl show 1')


def register(app: typer.Typer) -> None:
    app.command()(board)
    app.command("stages")(stages_)
    app.command()(demo)
