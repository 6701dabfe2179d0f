"""db path, db backup, db check: where the data lives, a safe copy, a health check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect, db_path

db_app = typer.Typer(
    help="The database file: where it is, a safe copy, a health check.\n\n"
    "Examples:\n\n  pipectl db path\n\n  pipectl db backup ~/pipeline-2026-11-27.db\n\n"
    "  pipectl db check",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@db_app.command("path")
def path_(ctx: typer.Context) -> None:
    """Print the path of the database file in use (--db, PIPECTL_DB or the default).

    Example:

      pipectl db path
    """
    typer.echo(str(db_path(ctx)))


@db_app.command()
def backup(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Where to write the copy (new file).")
    ],
) -> None:
    """Write a consistent copy of the database to FILE, safe while others write.

    FILE must not exist: a backup never overwrites anything. Restore by using the copy with
    --db, or by copying it back while no pipectl runs.

    Example:

      pipectl db backup ~/backups/pipeline-2026-11-27.db
    """
    from pipectl.services import database

    conn = connect(ctx)
    target = database.backup(conn, file)
    typer.echo(f"Backed up {db_path(ctx)} to {target}")


@db_app.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check the database: its structure (integrity) and that every event belongs to a deal.

    Exits 1 when a problem is found, with what it means and what to do.

    Example:

      pipectl db check
    """
    from pipectl.services import database
    from pipectl.views.transfer import print_check

    conn = connect(ctx)
    found = database.check(conn)
    result = {
        "path": str(db_path(ctx)),
        "ok": found.ok,
        "deals": found.deals,
        "events": found.events,
        "integrity": "ok" if not found.damage else found.damage[:20],
        "orphan_rows": found.orphan_rows,
        "problems": found.problems,
    }
    print_check(result, as_json)
    if not found.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
