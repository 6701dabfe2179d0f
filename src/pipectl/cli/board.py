"""The pipeline at a glance: board, stages, demo."""

from __future__ import annotations

import typer

from pipectl.cli.common import JSON_HELP, connect


def board(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", "-o", help="Only this owner's deals."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The pipeline at a glance: a column per open stage with its deals, count and values.

    Values are totalled per currency, never added across currencies; weighted value uses each
    deal's own probability, else its stage's.

    Example:

      pipectl board --owner Anna
    """
    from pipectl.store import deals
    from pipectl.views import deals as view

    rows = deals.list_deals(connect(ctx), status="open", owner=owner, sort="value")
    columns = view.board_data(rows)
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


def register(app: typer.Typer) -> None:
    app.command()(board)
    app.command("stages")(stages_)
