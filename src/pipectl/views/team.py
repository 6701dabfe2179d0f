"""A server pipeline's team for people (a table) and programs (JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipectl.localtime import shown
from pipectl.views.table import Column, Table, echo

if TYPE_CHECKING:
    from pipectl.services.team import Granted, Team


def what(access: str, owner: str) -> str:
    from pipectl.services.team import WHAT

    return WHAT[access].format(owner=repr(owner))


def granted(done: Granted) -> None:
    was = "" if done.before in (None, done.access) else f" (was {done.before})"
    echo(f"{done.role} is a {done.access} of this pipeline{was}: "
         f"{what(done.access, done.owner)}")
    if not done.can_login:
        echo(f"note: {done.role} cannot log in yet (as the server's administrator: "
             f"ALTER ROLE {done.role} LOGIN PASSWORD '...')")


def listing_json(team: Team) -> dict[str, Any]:
    return {"database_owner": team.db_owner, "you": team.me,
            "members": [{"role": m.role, "access": m.access, "owner": m.owner,
                         "granted_at": m.granted_at, "granted_by": m.granted_by,
                         "can_login": m.can_login} for m in team.members]}


def listing(team: Team) -> None:
    if not team.members:
        echo(f"No team yet: only the database's owner ({team.db_owner}) and superusers may "
             "change this pipeline (pipectl team grant ROLE --as rep adds a member)")
        return
    table = Table(Column("Role", flexible=False), Column("Access", flexible=False),
                  Column("Owner name"), Column("Granted", flexible=False),
                  Column("By", flexible=False),
                  caption=f"The database's owner, {team.db_owner}, may do everything.")
    for m in team.members:
        role = m.role if m.can_login else f"{m.role} (no login)"
        table.add_row(role, m.access, m.owner if m.access == "rep" else "",
                      shown(m.granted_at), m.granted_by)
    table.write()
