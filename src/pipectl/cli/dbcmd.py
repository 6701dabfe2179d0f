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
    from pipectl.store.db import backup as _backup

    conn = connect(ctx)
    target = _backup(conn, file)
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
    from pipectl.store import transfer as store
    from pipectl.views.transfer import print_check

    conn = connect(ctx)
    problems: list[str] = []
    damage = store.integrity_problems(conn)
    if damage:
        problems.append(
            f"the file's structure is damaged ({len(damage)} finding"
            f"{'s' if len(damage) != 1 else ''}, first: {damage[0]}); restore a backup, "
            "or export what can still be read (pipectl export --format json --events)"
        )
    orphans = store.foreign_key_problems(conn)
    if orphans:
        tables = sorted({t for t, _, _ in orphans})
        problems.append(
            f"{len(orphans)} row{'s' if len(orphans) != 1 else ''} in {', '.join(tables)} "
            "belong to a deal that no longer exists (history without its deal)"
        )
    deals, events = store.counts(conn) if not damage else (0, 0)
    result = {
        "path": str(db_path(ctx)),
        "ok": not problems,
        "deals": deals,
        "events": events,
        "integrity": "ok" if not damage else damage[:20],
        "orphan_rows": len(orphans),
        "problems": problems,
    }
    print_check(result, as_json)
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
