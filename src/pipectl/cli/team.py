"""team grant|revoke|list: who may do what on a server pipeline (PostgreSQL roles and
row-level security; docs/team.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect

team_app = typer.Typer(
    help="A team on a PostgreSQL server pipeline: who may read and change what.\n\n"
    "The server enforces it (roles and row-level security), for pipectl and psql alike: a "
    "viewer reads everything and changes nothing; a rep reads everything and adds and "
    "changes only the deals of their owner name; a manager changes everything, pipelines "
    "and rates included. Only the database's owner grants and revokes.\n\n"
    "Examples:\n\n  pipectl team grant anna --as rep --owner 'Anna Kowalska'\n\n"
    "  pipectl team grant carol --as manager\n\n  pipectl team list\n\n"
    "  pipectl team revoke anna",
    no_args_is_help=True,
    rich_markup_mode=None,
)

def _server(ctx: typer.Context) -> None:
    """A team is a server's: on a file, refused before anything is opened (or created)."""
    from pipectl.cli.common import db_path
    from pipectl.services.team import on_a_file
    from pipectl.store.postgres import is_url

    given = (ctx.find_root().obj or {}).get("db")
    if not is_url(given):
        raise on_a_file(ctx.command.name or "", str(db_path(ctx)))


RoleArg = Annotated[str, typer.Argument(metavar="ROLE", help="A role of the PostgreSQL "
                                        "server (created beforehand, e.g. createuser anna).")]


@team_app.command("grant")
def grant(
    ctx: typer.Context,
    role: RoleArg,
    access: Annotated[str, typer.Option(
        "--as", metavar="ACCESS", help="viewer, rep or manager, e.g. --as rep.")],
    owner: Annotated[str | None, typer.Option(
        "--owner", help="The owner name a rep's deals carry, as deals show it, e.g. --owner "
        "'Anna Kowalska'. Default: the role's name.")] = None,
) -> None:
    """Make ROLE a viewer, rep or manager of this pipeline (again: change it).

    Run by the database's owner, on a PostgreSQL server. A rep adds and changes only deals
    owned by their --owner name; list --owner me and next --owner me show them.

    Examples:

      pipectl team grant anna --as rep --owner 'Anna Kowalska'

      pipectl team grant carol --as manager

      pipectl team grant audit --as viewer
    """
    from pipectl.services import team
    from pipectl.views import team as view

    _server(ctx)
    team.role_name(role)
    team.access_of(access)
    view.granted(team.grant(connect(ctx), role, access, owner))


@team_app.command("revoke")
def revoke(ctx: typer.Context, role: RoleArg) -> None:
    """Take ROLE out of the team: it may no longer read or change this pipeline.

    The deals and events it recorded stay, with it as their actor.

    Example:

      pipectl team revoke anna
    """
    from pipectl.services import team

    _server(ctx)
    name = team.role_name(role)
    before = team.revoke(connect(ctx), name)
    typer.echo(f"{name} is no longer a {before} of this pipeline")


@team_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the team: each member's role, access and owner name.

    Examples:

      pipectl team list

      pipectl team list --json
    """
    from pipectl.services import team
    from pipectl.views import team as view

    _server(ctx)
    shown = team.listing(connect(ctx))
    if as_json:
        from pipectl.views.common import print_json

        print_json(view.listing_json(shown))
    else:
        view.listing(shown)


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
