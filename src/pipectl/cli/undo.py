"""undo: void a deal's newest change (issue 16)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipectl.cli.common import connect
from pipectl.errors import UsageError


def _interactive() -> bool:
    return sys.stdin.isatty()


def undo(
    ctx: typer.Context,
    deal_id: Annotated[int | None, typer.Argument(
        metavar="[ID]", help="The deal whose newest change to void; without it, the newest "
        "change of any deal (the last command).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Void the newest change of a deal (or the last command), keeping it in the history.

    Shows what it will undo and asks first unless --yes; without a terminal to ask on, it
    refuses unless --yes is given. The voided events stay in the history, marked (show), and
    every report ignores them. Repeat to walk further back. A deal's creation is not undone:
    pipectl rm deletes a deal.

    Examples:

      pipectl undo 12

      pipectl undo --yes
    """
    from pipectl.services import undo as service

    conn = connect(ctx)
    plan = service.plan(conn, deal_id)
    typer.echo(plan.headline())
    if not yes:
        if not _interactive():
            raise UsageError("undo needs confirmation and there is no terminal", hint="add --yes")
        if not typer.confirm("Undo it?"):
            typer.echo("nothing undone", err=True)
            raise typer.Exit(1)
    done = service.undo(conn, plan.deal_id, expected=plan.event_ids)
    typer.echo(done.message())


def register(app: typer.Typer) -> None:
    app.command()(undo)
