"""db path, db backup, db restore, db check: where the data lives, a safe copy, restoring
one, a health check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect, db_path, notice, shown_db

db_app = typer.Typer(
    help="The database file: where it is, a safe copy, restoring one, a health check.\n\n"
    "Examples:\n\n  pipectl db path\n\n  pipectl db backup ~/pipeline-2026-11-27.db\n\n"
    "  pipectl db restore ~/pipeline-2026-11-27.db\n\n"
    "  pipectl db check",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@db_app.command("path")
def path_(ctx: typer.Context) -> None:
    """Print the path of the database file in use (--db, PIPECTL_DB or the default); for a
    PostgreSQL server, its URL with any password masked.

    Example:

      pipectl db path
    """
    typer.echo(shown_db(ctx))


@db_app.command()
def backup(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Where to write the copy (new file).")
    ],
) -> None:
    """Write a consistent copy of the database to FILE, safe while others write.

    FILE must not exist: a backup never overwrites anything, nor writes through a symbolic
    link. It is written under a temporary name and renamed once complete (mode 0600), so a
    kill, a signal or a full disk never leaves a partial backup under FILE. Restore it with
    pipectl db restore FILE (never by copying it over the database: a -wal file left beside
    it would be replayed onto the copy).

    Example:

      pipectl db backup ~/backups/pipeline-2026-11-27.db
    """
    from pipectl.services import database

    conn = connect(ctx)
    target = database.backup(conn, file)
    typer.echo(f"Backed up {db_path(ctx)} to {target}")


@db_app.command()
def restore(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="BACKUP", help="The backup to restore (from db backup).")
    ],
) -> None:
    """Make the database hold what the backup BACKUP holds, safely, even while others use it.

    BACKUP is checked first (a pipectl database, whole, not from a newer pipectl). The
    database as it was is kept beside it as NAME.before-restore-<UTC time>.bak (restore that
    to undo). Its contents are then replaced in one transaction through SQLite, which keeps
    its -wal and -shm files consistent: other pipectl processes see the database before or
    after, and a crash midway leaves it as before. A database too damaged to open is moved
    aside whole (with its -wal and -shm) and the backup copied into its place. A backup from an
    older pipectl is upgraded at once.

    Examples:

      pipectl db restore ~/backups/pipeline-2026-11-27.db

      pipectl --db team.db db restore team-monday.db
    """
    from pipectl.services import clock, database

    path = db_path(ctx)
    done = database.restore(path, file, clock.now(), notice=notice)
    typer.echo(f"Restored {done.path} from {done.source}: {_n(done.deals, 'deal')}, "
               f"{_n(done.events, 'event')}")
    if done.before:
        how = "it could not be opened, so it was moved aside whole" if done.damaged \
            else "restore it to undo"
        typer.echo(f"The database as it was is in {done.before} ({how})")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@db_app.command()
def check(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option(
        "--repair",
        help="Rebuild every deal that differs from its events (the events are the truth) and "
        "recreate missing or altered indexes and triggers, in one transaction; refused, "
        "changing nothing, when the file is damaged or a table was altered.",
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check the database: its structure (integrity), its schema (tables, indexes and the
    append-only triggers as pipectl made them), that every row it points to exists, and that
    every deal is what its events make of it.

    Exits 1 when a problem is found, with what it means and what to do; the deals that differ
    from their events are named, with each column stored and as the events make it. With
    --repair, those deals are rebuilt from their events and the schema's indexes and triggers
    recreated first, then the database is checked again.

    Examples:

      pipectl db check

      pipectl db check --repair
    """
    from pipectl.services import check as checking
    from pipectl.store.postgres import is_url
    from pipectl.views.transfer import differs_json, print_check

    if repair and is_url((ctx.find_root().obj or {}).get("db")):
        from pipectl.errors import UsageError

        raise UsageError("db check --repair works on a file, not on a PostgreSQL server",
                         hint="db check tells what differs; pipectl db copy --from URL --to "
                         "FILE makes a file to repair")
    if repair:  # a write: a file pipectl may not write is refused before any work
        from pipectl.cli.common import notice
        from pipectl.store.db import connect as open_for_writing

        path = db_path(ctx)
        ctx.find_root().obj["db"] = str(path)
        conn = open_for_writing(path, notice=notice)
        ctx.call_on_close(conn.close)
    else:
        conn = connect(ctx)
    repaired = checking.repair(conn) if repair else None
    found = checking.check(conn)
    result = {
        "path": shown_db(ctx),
        "ok": found.ok,
        "deals": found.deals,
        "events": found.events,
        "integrity": "ok" if not found.damage else found.damage[:20],
        "schema": [{"type": f.type, "name": f.name, "table": f.table, "problem": f.problem}
                   for f in found.schema],
        "orphan_rows": found.orphan_rows,
        "deals_differing": found.differing,
        "differing": [differs_json(d) for d in found.differ],
        "read_models_differing": len(found.read_models),
        "problems": found.problems,
        "repaired": None if repaired is None else {
            "objects": [{"type": t, "name": n, "action": a} for t, n, a in repaired.objects],
            "deals": len(repaired.deals),
            "deal_ids": repaired.deals[:100],
            "unrepaired": [differs_json(d) for d in repaired.unrepaired[:20]],
            "append_only_triggers_were_missing": repaired.append_only_missing,
            "read_models": len(repaired.read_models),
        },
    }
    print_check(result, as_json)
    if not found.ok:
        raise typer.Exit(1)



@db_app.command("copy")
def copy_(
    ctx: typer.Context,
    to: Annotated[str, typer.Option(
        "--to", metavar="FILE|URL",
        help="Where to copy the pipeline: a new file, or a postgresql:// URL of a server "
        "database that holds no pipeline yet.")],
    source: Annotated[str | None, typer.Option(
        "--from", metavar="FILE|URL",
        help="The pipeline to copy. Default: the one in use (--db, PIPECTL_DB or the default "
        "file).")] = None,
) -> None:
    """Copy a whole pipeline to a PostgreSQL server, or from one to a new file.

    Every deal, event, pipeline definition, stage map, import record and exchange rate moves
    with its id, and the read models with them. The copy is one transaction of the target and
    is verified before it commits: per table, the row count and a digest of every row must be
    equal on both sides, or nothing is written. A file target must not exist (it appears only
    complete); a server target must hold no pipeline yet (a new database: createdb NAME).
    A password in a URL is never printed; credentials may also come from PGPASSWORD or
    ~/.pgpass.

    Examples:

      pipectl db copy --to postgresql://anna@crm.example:5432/sales

      pipectl db copy --from postgresql://anna@crm.example/sales --to sales-copy.db
    """
    from pipectl.services import clock, database
    from pipectl.store.postgres import is_url

    root = ctx.find_root().obj or {}
    if source is None:
        given = root.get("db")
        source = given if is_url(given) else str(db_path(ctx))
    done = database.copy(source, to, clock.now())
    copied = done.copied
    typer.echo(f"Copied {_n(copied.deals, 'deal')} and {_n(copied.events, 'event')} from "
               f"{done.source} to {done.target} ({len(copied.tables)} tables, each verified)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
