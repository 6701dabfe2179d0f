"""pipeline apply|list|show|export|default|rm: pipelines of your own, defined in TOML files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect
from pipectl.errors import UsageError

pipeline_app = typer.Typer(
    help="Pipelines of your own: stages, probabilities, rot days, the checklist gate.\n\n"
    "A pipeline is defined in a small TOML file (see docs/pipelines.md); changing it makes a new "
    "version and never rewrites history.\n\n"
    "Examples:\n\n  pipectl pipeline apply agency.toml --dry-run\n\n"
    "  pipectl pipeline list\n\n  pipectl pipeline export default > default.toml",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The pipeline's name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@pipeline_app.command("apply")
def apply_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE.toml", help="The pipeline's definition.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would change; change nothing.")] = False,
    move: Annotated[list[str] | None, typer.Option(
        "--move", metavar="OLD=NEW",
        help="Move the deals of a stage the new definition drops (repeatable).")] = None,
) -> None:
    """Create the pipeline FILE defines, or change it (found by its name).

    The difference is printed first. A change that would strand deals (a stage removed while
    deals sit in it) is refused with the count, unless --move OLD=NEW says where they go; each
    such move is an event.

    Examples:

      pipectl pipeline apply agency.toml

      pipectl pipeline apply agency.toml --dry-run

      pipectl pipeline apply agency.toml --move pitch=proposal
    """
    from pipectl.services import pipelines

    text = _read_definition(file)
    conn = connect(ctx)
    done = pipelines.apply(conn, text, source=str(file), dry_run=dry_run, moves=move)
    name = done.pipeline.name
    if done.created:
        verb = "Would create" if done.dry_run else "Created"
        stages = ", ".join(done.pipeline.keys)
        typer.echo(f"{verb} pipeline {name!r}: {stages}")
        return
    if not done.changes:
        typer.echo(f"Pipeline {name!r} is unchanged")
        return
    for change in done.changes:
        typer.echo(f"  {change.text}")
    if done.dry_run:
        refused = [(k, n) for k, n in done.moved.items() if k not in done.moves]
        for old, n in done.moved.items():
            deals = f"{n} deal{'s' if n != 1 else ''}"
            if old in done.moves:
                typer.echo(f"  would move {deals} from {old} to {done.moves[old]}")
            else:
                typer.echo(f"  {deals} in {old}: refused without --move {old}=STAGE")
        typer.echo(f"Dry run: pipeline {name!r} unchanged")
        if refused:  # exits as the real apply would
            from pipectl.services.pipelines import stranded_refusal

            raise stranded_refusal(*refused[0], done.pipeline)
        return
    for old, n in done.moved.items():
        typer.echo(f"  moved {n} deal{'s' if n != 1 else ''} from {old} to {done.moves[old]}")
    typer.echo(f"Pipeline {name!r} is now version {done.version}")


def _name(text: str) -> str:
    """A pipeline's name as given (NFC, trimmed; never empty)."""
    from pipectl.values import clean_text

    return clean_text(text, "the pipeline's name", required=True)


MAX_FILE = 1024 * 1024  # a definition is a few hundred bytes; a megabyte is no pipeline


def _read_definition(file: Path) -> str:
    """The text of a definition file: a regular file of UTF-8 text, at most MAX_FILE bytes
    (never a FIFO, a device or a directory, which could hang or fill the memory)."""
    import os
    import stat

    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{file}: {(exc.strerror or str(exc)).lower()}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise UsageError(f"{file} is a directory, not a pipeline definition")
        raise UsageError(f"{file} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise UsageError(f"{file} is larger than {MAX_FILE // 1024} KiB: not a pipeline "
                         "definition")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file}: not UTF-8 text ({exc.reason})") from exc


@pipeline_app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the pipelines, the default first, with their deals and version.

    Example:

      pipectl pipeline list
    """
    from pipectl.services import pipelines
    from pipectl.views import pipelines as view

    conn = connect(ctx)
    rows = pipelines.listing(conn)
    view.listing(rows, as_json)


@pipeline_app.command()
def show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="The pipeline's name. Default: the default pipeline.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a pipeline: its stages, the rules they make, its checklist and versions.

    Example:

      pipectl pipeline show "Agency retainers"
    """
    from pipectl.services import pipelines
    from pipectl.views import pipelines as view

    conn = connect(ctx)
    pipeline, row = pipelines.get(conn, None if name is None else _name(name))
    view.show(pipeline, row, as_json)


@pipeline_app.command()
def export(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="The pipeline's name. Default: the default pipeline.")] = None,
) -> None:
    """Print a pipeline's definition as TOML (what pipeline apply reads back unchanged).

    Example:

      pipectl pipeline export default > default.toml
    """
    from pipectl.services import pipelines

    conn = connect(ctx)
    typer.echo(pipelines.export(conn, None if name is None else _name(name)), nl=False)


@pipeline_app.command()
def default(ctx: typer.Context, name: NameArg) -> None:
    """Make NAME the default pipeline: where add, import and board go unless told otherwise.

    Example:

      pipectl pipeline default "Agency retainers"
    """
    from pipectl.services import pipelines

    conn = connect(ctx)
    pipeline = pipelines.set_default(conn, _name(name))
    typer.echo(f"Default pipeline: {pipeline.name}")


@pipeline_app.command()
def rm(ctx: typer.Context, name: NameArg) -> None:
    """Remove a pipeline that holds no deal (move them out first).

    A pipeline that history still names (deals moved out of it) is kept, marked removed, so
    that past figures stay true.

    Example:

      pipectl pipeline rm "Old pipeline"
    """
    from pipectl.services import pipelines

    conn = connect(ctx)
    pipeline, deleted = pipelines.remove(conn, _name(name))
    what = "Removed" if deleted else "Removed (kept for its history)"
    typer.echo(f"{what} pipeline {pipeline.name!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
