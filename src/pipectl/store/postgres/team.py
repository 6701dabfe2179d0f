"""A team on one server pipeline: three group roles of the database and the row-level security
that makes the server, not the client, decide what each member may change.

- a **viewer** reads everything and writes nothing (SELECT only);
- a **rep** reads everything, adds deals owned by their own owner name, and changes (events,
  edits, rm) only the deals that carry it; pipelines, rates and the read models are not
  theirs to write;
- a **manager** reads and changes everything, pipelines included.

The database's owner (the role that created the schema) and superusers bypass row-level
security, as PostgreSQL has it: they are the team's administrators, and only they run
``pipectl team grant``.

Who is which is kept twice, on purpose: membership of a group role gives the table privileges
(``GRANT``), and ``team_members`` maps each member role to the owner name its deals carry
(``anna`` -> ``Anna Kowalska``), which the policies read. The policies' checks raise their own
message (``42501``, beginning ``pipectl: ``) that names the deal's owner and who may change
it, so that psql and pipectl see the same refusal.

Everything here is created by the first ``team grant`` (nothing for a server without a team),
idempotently, under the schema's advisory lock. This module speaks SQL only to a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ACCESS = ("viewer", "rep", "manager")
MESSAGE = "pipectl: "  # the start of a refusal worded by the server's checks

# rep: deals of their own, the events of those deals, the record of an import, and the
# writers' turn (locking a table takes a right to change it)
REP_WRITES = {"deals": "INSERT, UPDATE, DELETE", "events": "INSERT", "imports": "INSERT",
              "pipectl_write_turn": "UPDATE", "undos": "INSERT"}
NOT_MANAGED = ("pipectl_migrations", "team_members")  # the schema's and the owner's alone
# changed by no one (a deal's removal takes its events and undos); an event's voided_by is
# set once by an undo (its column alone: ``setup``)
APPEND_ONLY = ("events", "rates", "undos")


@dataclass(frozen=True)
class Member:
    role: str
    access: str
    owner: str
    granted_at: str
    granted_by: str
    can_login: bool


def quoted(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def groups(conn: Any) -> dict[str, str]:
    """access -> the name of that group role of this database (role names are the cluster's:
    each database has its own three). ``pipectl_<database>_rep``, or by the database's oid
    when its name is long or not plain lower-case."""
    name, oid = conn.execute("SELECT current_database(), oid FROM pg_catalog.pg_database "
                             "WHERE datname = current_database()").fetchone()
    base = (f"pipectl_{name}" if re.fullmatch(r"[a-z0-9_]{1,40}", name)
            else f"pipectl_db{oid}")
    return {a: f"{base}_{a}" for a in ACCESS}


def present(conn: Any) -> bool:
    """Whether this database has a team (its first ``team grant`` made the table)."""
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = 'team_members' "
        "AND n.nspname = current_schema())").fetchone()[0])


def standing(conn: Any) -> tuple[str, str, bool, bool]:
    """(this connection's role, the database owner's role, whether this role may act as the
    owner (the owner, a member of it, or a superuser), whether it may create roles)."""
    row = conn.execute(
        "SELECT current_user, pg_catalog.pg_get_userbyid(c.relowner), "
        "pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper, "
        "r.rolsuper OR r.rolcreaterole "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_roles r ON r.rolname = current_user "
        "WHERE c.relname = 'deals' AND n.nspname = current_schema()").fetchone()
    return str(row[0]), str(row[1]), bool(row[2]), bool(row[3])


def role(conn: Any, name: str) -> tuple[bool, bool, bool] | None:
    """(superuser, may log in, acts as the database owner) of the role ``name``; None when the
    server has no such role."""
    row = conn.execute(
        "SELECT r.rolsuper, r.rolcanlogin, pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE') "
        "FROM pg_catalog.pg_roles r, pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE r.rolname = ? AND c.relname = 'deals' AND n.nspname = current_schema()",
        (name,)).fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]), bool(row[2]))


def setup(conn: Any) -> dict[str, str]:
    """The team's group roles, table, checks, privileges and policies (idempotent: each
    ``team grant`` runs it, so a database made by an older pipectl gets the current rules).
    Inside the caller's transaction, run by the database's owner. Returns ``groups``."""
    g = groups(conn)
    viewer, rep, manager = (quoted(g[a]) for a in ACCESS)
    everyone = f"{viewer}, {rep}, {manager}"
    schema = quoted(conn.execute("SELECT current_schema()").fetchone()[0])
    database = quoted(conn.execute("SELECT current_database()").fetchone()[0])
    for name in g.values():
        if conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ?",
                        (name,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {quoted(name)} NOLOGIN")
    from pipectl.store.postgres.schema import safe_search_path

    conn.execute(_TABLE)
    safe_search_path(conn)  # what the functions below keep: no pg_temp table stands in
    for statement in _FUNCTIONS:  # as written: no placeholders (psycopg's own connection)
        conn.raw.execute(statement)
    conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {everyone}")
    conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {everyone}")
    conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {everyone}")
    conn.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {schema} "
                 f"FROM {viewer}, {rep}")
    for table, rights in REP_WRITES.items():
        conn.execute(f"GRANT {rights} ON {table} TO {rep}")
    conn.execute(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {manager}")
    conn.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(NOT_MANAGED)} "
                 f"FROM {manager}")
    conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(APPEND_ONLY)} FROM {manager}")
    conn.execute(f"GRANT EXECUTE ON FUNCTION pipectl_number_ids() TO {rep}, {manager}")
    conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {rep}, {manager}")
    conn.execute(f"GRANT UPDATE (voided_by) ON events TO {rep}, {manager}")  # undo
    for table in ("deals", "events", "undos"):
        conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        for policy in ("team_read", "team_manage", "team_rep_add", "team_rep_change",
                       "team_rep_rm", "team_rep_void"):
            conn.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        conn.execute(f"CREATE POLICY team_read ON {table} FOR SELECT USING (true)")
        conn.execute(f"CREATE POLICY team_manage ON {table} FOR ALL TO {manager} "
                     "USING (true) WITH CHECK (true)")
    # a rep: a deal they add or change must stay theirs (the check raises the refusal); a
    # deal that is not theirs is not there to change or remove (PostgreSQL filters it, and
    # pipectl says why: ``explain_unchanged``)
    conn.execute(f"CREATE POLICY team_rep_add ON deals FOR INSERT TO {rep} "
                 "WITH CHECK (pipectl_may_hold(owner))")
    conn.execute(f"CREATE POLICY team_rep_change ON deals FOR UPDATE TO {rep} "
                 "USING (owner = pipectl_team_owner()) WITH CHECK (pipectl_may_hold(owner))")
    conn.execute(f"CREATE POLICY team_rep_rm ON deals FOR DELETE TO {rep} "
                 "USING (owner = pipectl_team_owner())")
    conn.execute(f"CREATE POLICY team_rep_add ON events FOR INSERT TO {rep} "
                 "WITH CHECK (pipectl_may_change(deal_id))")
    # undo (issue 16): a rep records an undo of, and voids the events of, a deal they may
    # change; a viewer neither
    conn.execute(f"CREATE POLICY team_rep_add ON undos FOR INSERT TO {rep} "
                 "WITH CHECK (pipectl_may_change(deal_id))")
    conn.execute(f"CREATE POLICY team_rep_void ON events FOR UPDATE TO {rep} "
                 "USING (true) WITH CHECK (pipectl_may_change(deal_id))")
    return g


_TABLE = """
CREATE TABLE IF NOT EXISTS team_members (
    role TEXT COLLATE "C" PRIMARY KEY,
    access TEXT COLLATE "C" NOT NULL CHECK (access IN ('viewer', 'rep', 'manager')),
    owner TEXT COLLATE "C" NOT NULL CHECK (length(trim(owner)) > 0),
    granted_at TEXT COLLATE "C" NOT NULL,
    granted_by TEXT COLLATE "C" NOT NULL
)"""

_FUNCTIONS = (
    # the owner name this role's deals carry (None: not a member)
    """CREATE OR REPLACE FUNCTION pipectl_team_owner() RETURNS TEXT LANGUAGE sql STABLE
    SET search_path FROM CURRENT AS $$
    SELECT owner FROM team_members WHERE role = current_user $$""",
    # who may change a deal owned by deal_owner: its reps, the managers, the database owner
    """CREATE OR REPLACE FUNCTION pipectl_who_may(deal_owner TEXT) RETURNS TEXT
    LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT concat_ws(', ',
        (SELECT string_agg(role, ', ' ORDER BY role) FROM team_members
         WHERE access = 'rep' AND owner = deal_owner),
        'a manager (' || coalesce((SELECT string_agg(role, ', ' ORDER BY role)
                                   FROM team_members WHERE access = 'manager'), 'none yet')
        || ')') || ' or the database owner ('
        || (SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class
            WHERE oid = 'deals'::regclass) || ')' $$""",
    """CREATE OR REPLACE FUNCTION pipectl_may_hold(deal_owner TEXT) RETURNS BOOLEAN
    LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
    DECLARE
        mine TEXT := pipectl_team_owner();
    BEGIN
        IF mine IS NOT NULL AND deal_owner IS NOT DISTINCT FROM mine THEN
            RETURN true;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = format(
            'pipectl: %s is a rep: the deals it adds or changes are owned by %s, and this '
            'one would be owned by %s; %s may',
            current_user, coalesce(quote_literal(mine), 'no one (not a team member)'),
            coalesce(quote_literal(deal_owner), 'no one (give it --owner ' ||
                     coalesce(quote_literal(mine), 'NAME') || ')'),
            pipectl_who_may(deal_owner));
    END $$""",
    """CREATE OR REPLACE FUNCTION pipectl_may_change(deal BIGINT) RETURNS BOOLEAN
    LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
    DECLARE
        mine TEXT := pipectl_team_owner();
        theirs TEXT;
    BEGIN
        SELECT owner INTO theirs FROM deals WHERE id = deal;
        IF mine IS NOT NULL AND theirs IS NOT DISTINCT FROM mine THEN
            RETURN true;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = format(
            'pipectl: deal %s is owned by %s, and %s is a rep for %s; %s may change it',
            deal, coalesce(quote_literal(theirs), 'no one'), current_user,
            coalesce(quote_literal(mine), 'no one (not a team member)'),
            pipectl_who_may(theirs));
    END $$""",
)


def grant(conn: Any, name: str, access: str, owner: str, now: str) -> str | None:
    """Make ``name`` a member of this database's ``access`` group (and of no other of its
    groups), its deals' owner name ``owner``. Returns its access before (None: none)."""
    g = setup(conn)
    before = conn.execute("SELECT access FROM team_members WHERE role = ?",
                          (name,)).fetchone()
    for other in ACCESS:
        if other != access:
            conn.execute(f"REVOKE {quoted(g[other])} FROM {quoted(name)}")
    conn.execute(f"GRANT {quoted(g[access])} TO {quoted(name)}")
    conn.execute("INSERT INTO team_members (role, access, owner, granted_at, granted_by) "
                 "VALUES (?, ?, ?, ?, current_user) ON CONFLICT (role) DO UPDATE SET "
                 "access = excluded.access, owner = excluded.owner, "
                 "granted_at = excluded.granted_at, granted_by = excluded.granted_by",
                 (name, access, owner, now))
    return None if before is None else str(before[0])


def revoke(conn: Any, name: str) -> str | None:
    """``name`` out of the team: of none of its groups, its mapping gone. Returns the access
    it had (None: it was no member; nothing changed)."""
    if not present(conn):
        return None
    before = conn.execute("SELECT access FROM team_members WHERE role = ?",
                          (name,)).fetchone()
    if before is None:
        return None
    g = groups(conn)
    for access in ACCESS:
        conn.execute(f"REVOKE {quoted(g[access])} FROM {quoted(name)}")
    conn.execute("DELETE FROM team_members WHERE role = ?", (name,))
    return str(before[0])


def members(conn: Any) -> list[Member]:
    if not present(conn):
        return []
    rows = conn.execute(
        "SELECT m.role, m.access, m.owner, m.granted_at, m.granted_by, "
        "coalesce(r.rolcanlogin, false) FROM team_members m "
        "LEFT JOIN pg_catalog.pg_roles r ON r.rolname = m.role "
        "ORDER BY CASE m.access WHEN 'manager' THEN 0 WHEN 'rep' THEN 1 ELSE 2 END, m.role"
    ).fetchall()
    return [Member(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bool(r[5]))
            for r in rows]


def my_owner(conn: Any) -> str | None:
    """The owner name this connection's role carries in the team (None: no team, or not a
    member)."""
    if not present(conn):
        return None
    row = conn.execute("SELECT owner FROM team_members WHERE role = current_user").fetchone()
    return None if row is None else str(row[0])


def explain_unchanged(conn: Any, deal_id: int) -> None:
    """A change of deal ``deal_id`` that the server filtered out (a rep's UPDATE or DELETE of a
    deal not theirs changes no row): raise the server's own refusal of it."""
    if present(conn):
        conn.execute("SELECT pipectl_may_change(?)", (deal_id,)).fetchone()

