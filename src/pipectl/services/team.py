"""A team on a server pipeline: who may do what (``pipectl team grant|revoke|list``).

The rules themselves live on the server (``store.postgres.team``: group roles, privileges,
row-level security), so that a member connecting with psql meets the same refusals as one
using pipectl. These use cases only let the database's owner set them, and say clearly what
changed. A file has no team: its access is its file permissions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipectl.errors import NotFound, PipectlError, UsageError
from pipectl.services import clock
from pipectl.store import sql
from pipectl.store.db import snapshot, transaction
from pipectl.values import clean_text, iso

if TYPE_CHECKING:
    from pipectl.store.postgres.team import Member

ACCESS = ("viewer", "rep", "manager")

WHAT = {
    "viewer": "reads everything, changes nothing",
    "rep": "reads everything; adds and changes only deals owned by {owner}",
    "manager": "reads and changes everything, pipelines and rates included",
}


@dataclass(frozen=True)
class Granted:
    role: str
    access: str
    owner: str  # the owner name its deals carry
    before: str | None  # its access before (None: it was no member)
    can_login: bool


@dataclass(frozen=True)
class Team:
    members: list[Member]
    db_owner: str  # the role that owns the schema (all rights, bypasses row security)
    me: str  # the role asking


def on_a_file(command: str, where: str = "") -> UsageError:
    said = f"{where}: " if where else ""
    return UsageError(
        f"{said}pipectl team {command} works on a PostgreSQL server (--db postgresql://...): "
        "who may change a file is decided by its file permissions",
        hint="docs/team.md: pipectl db copy --to postgresql://... moves a file's pipeline "
        "to a server")


def _server(conn: sqlite3.Connection, command: str) -> None:
    if sql.on_sqlite(conn):
        raise on_a_file(command)


def role_name(text: str) -> str:
    """A server role's name exactly as given, checked: what a command checks before it opens
    the database."""
    # as the server spells it: not normalised, not stripped (a role may be named so)
    name = text
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UsageError(f"ROLE {name!r}: a role's name, without control characters")
    if len(name.encode()) > 63:
        raise UsageError(f"role {name!r} is longer than PostgreSQL's 63 bytes")
    return name


def access_of(text: str) -> str:
    access = text.strip().lower()
    if access not in ACCESS:
        raise UsageError(f"--as {text!r}: a team role is one of {', '.join(ACCESS)}")
    return access


def _may_administer(conn: sqlite3.Connection, what: str) -> None:
    from pipectl.store.postgres import team

    me, db_owner, may, create = team.standing(conn)
    if not may:
        raise PipectlError(
            f"{me} may not {what}: only the database's owner ({db_owner}) or a superuser "
            "may", hint=f"ask {db_owner} to run it")
    if not create:
        raise PipectlError(
            f"{me} may not {what}: the server lets only a role with CREATEROLE (or a "
            "superuser) grant roles", hint=f"ALTER ROLE {me} CREATEROLE, as a superuser")


def grant(conn: sqlite3.Connection, role: str, access: str,
          owner: str | None = None) -> Granted:
    """Make the server role ``role`` a viewer, rep or manager of this pipeline, its deals'
    owner name ``owner`` (default: the role's name). Run by the database's owner."""
    _server(conn, "grant")
    from pipectl.store.postgres import team

    name, access = role_name(role), access_of(access)
    owner_name = clean_text(owner if owner is not None else name, "--owner", required=True)
    _may_administer(conn, "grant team roles")  # before the writers' turn, which a viewer lacks
    with transaction(conn):
        found = team.role(conn, name)
        if found is None:
            raise NotFound(f"the server has no role {name!r}",
                           hint=f"create it first, e.g. createuser {name} (or, in psql, "
                           f"CREATE ROLE {team.quoted(name)} LOGIN PASSWORD '...')")
        superuser, can_login, owns = found
        if superuser or owns:
            why = "is a superuser" if superuser else "acts as the database's owner"
            raise PipectlError(f"{name} {why}: it may do everything already, and a team role "
                               "would change nothing")
        if name in team.groups(conn).values() or name.startswith("pipectl_"):
            raise UsageError(f"{name} is one of pipectl's group roles, not a member's")
        before = team.grant(conn, name, access, owner_name, iso(clock.now()))
    return Granted(name, access, owner_name, before, can_login)


def revoke(conn: sqlite3.Connection, role: str) -> str:
    """Take ``role`` out of the team: it keeps no right on this pipeline. Returns the access
    it had."""
    _server(conn, "revoke")
    from pipectl.store.postgres import team

    name = role_name(role)
    _may_administer(conn, "revoke team roles")  # before the writers' turn, which a viewer lacks
    with transaction(conn):
        before = team.revoke(conn, name)
        if before is None:
            raise NotFound(f"{name} is no member of this pipeline's team",
                           hint="pipectl team list shows the members")
    return before


def listing(conn: sqlite3.Connection) -> Team:
    _server(conn, "list")
    from pipectl.store.postgres import team

    with snapshot(conn):
        me, db_owner, _, _ = team.standing(conn)
        return Team(team.members(conn), db_owner, me)


def my_owner(conn: sqlite3.Connection) -> str | None:
    """On a server with a team, the owner name the connected role's deals carry (None: a file,
    no team, or not a member)."""
    if sql.on_sqlite(conn):
        return None
    from pipectl.store.postgres import team

    return team.my_owner(conn)
