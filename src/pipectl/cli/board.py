"""The pipeline at a glance: board, stages, demo."""

from __future__ import annotations

import typer

from pipectl.cli.common import JSON_HELP, connect_for_owner


def board(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", "-o", help="Only this owner's deals."),
    limit: int = typer.Option(
        8, "--limit", "-n", help="Largest deals shown per stage (0: all of them)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The pipeline at a glance: a column per open stage with its deals, count and values.

    Values are totalled per currency, never added across currencies; weighted value uses each
    deal's own probability, else its stage's.

    Example:

      pipectl board --owner "Anna Kowalska"
    """
    from pipectl.cli.common import positive_limit
    from pipectl.store import deals
    from pipectl.views import deals as view

    per_stage = positive_limit(limit) or None
    conn, owner = connect_for_owner(ctx, owner)
    columns = view.board_data(*deals.board(conn, owner=owner, per_stage=per_stage))
    if as_json:
        from pipectl.views.common import print_json

        print_json(view.board_json(columns))
    else:
        view.board(columns)


def stages_(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The stages, their default probabilities and the rules for moving between them.

    Example:

      pipectl stages --json
    """
    from pipectl.views import deals as view

    if as_json:
        from pipectl.views.common import print_json

        print_json({"stages": view.stages_json(), "rules": list(view.RULES_TEXT)})
    else:
        view.stages_table()


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
    from pipectl.store import deals
    from pipectl.store.db import connect as open_db
    from pipectl.views import deals as view
    from pipectl.views.table import echo

    target = expand(path) if path else default_db_path().with_name("demo.db")
    count = demo_data.build(target, now(), seed=seed)
    conn = open_db(target)
    try:
        columns = view.board_data(*deals.board(conn, per_stage=5))
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
