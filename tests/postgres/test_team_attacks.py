"""A team under attack: a rep, a viewer, a manager (and a role of the server that is no member
at all) trying, in psql and through pipectl, to change what is not theirs, to run code as
the database's owner, to skew the figures a manager reads, or to lock the others out.

The first part holds the holes a red-team pass found in the first version (each test failed
until its fix, which its docstring names, went in: the severity is what the hole was); the
second, attacks that are refused and must stay so (test_team.py's own list,
``_BY_HAND_REFUSED``, is not repeated here).

The root of most holes was: PostgreSQL searches the session's temporary schema (``pg_temp``)
*first* for tables and views whenever ``search_path`` does not name it, and every role may
create temporary objects (``GRANT TEMPORARY`` in ``team.setup``, and ``PUBLIC``'s by
default). ``SET search_path FROM CURRENT`` captures ``"$user", public``, without
``pg_temp``: a temporary ``team_members``, ``deals`` or ``read_dirty`` of the attacker's
shadows the pipeline's own inside ``pipectl_team_owner``, ``pipectl_may_change``, the
SECURITY DEFINER triggers and ``pipectl_number_ids`` (which PUBLIC could execute). Every
such function now keeps ``<schema>, pg_temp`` (``schema.safe_search_path``)."""

from __future__ import annotations

import contextlib
import json
import shutil
import unicodedata

import psycopg
import pytest

from pipectl.store.postgres.adapter import WRITE_TURN
from tests.postgres.conftest import admin
from tests.postgres.test_team import Team, _psql, _refused
from tests.postgres.test_team import team as team  # a fixture

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")

# code that, run as the database's owner, makes the session's own role a manager in the team
# table (the tests check team_members did not change)
_EVIL_TRIGGER = (
    "CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE public.team_members SET access = 'manager', owner = 'pwned by ' || current_user "
    "WHERE role = session_user; IF NOT FOUND THEN INSERT INTO public.team_members VALUES "
    "(session_user, 'manager', 'pwned', '2026-12-01T09:00:00Z', current_user); END IF; "
    "RETURN NULL; END $$; ")
_EVIL_VALUE = (
    "CREATE FUNCTION pg_temp.evil() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE public.team_members SET access = 'manager', owner = 'pwned by ' || current_user "
    "WHERE role = session_user; IF NOT FOUND THEN INSERT INTO public.team_members VALUES "
    "(session_user, 'manager', 'pwned', '2026-12-01T09:00:00Z', current_user); END IF; "
    "RETURN 1; END $$; ")

OLD_WRITE_LOCK = 0x70697066  # the advisory lock writers took before: anyone may take it


def _members(team: Team) -> list[tuple]:
    return team.sql("SELECT role, access, owner FROM team_members ORDER BY role")


# ================================================================ holes (fail until fixed)


def test_a_rep_cannot_pose_as_a_colleague_with_a_temporary_team_members(team: Team) -> None:
    """CRITICAL. pipectl_team_owner() reads ``team_members`` through a search_path without
    pg_temp: a temporary table of that name, made by the rep, is the one it reads, and the
    rep is then whoever she writes into it.

    Fix (schema.py SCHEMA and team.py _FUNCTIONS, and a migration ALTERing the existing
    functions): every pipectl function gets ``SET search_path = <schema>, pg_temp`` (pg_temp
    named last, so never searched first), e.g. in ``team.setup``:
    ``ALTER FUNCTION pipectl_team_owner() SET search_path = public, pg_temp`` (likewise
    pipectl_who_may, pipectl_may_hold, pipectl_may_change) -- or qualify every table
    (``public.team_members``)."""
    before = team.state()
    done = _psql(team, "anna",
                 "CREATE TEMP TABLE team_members (role text, access text, owner text); "
                 "INSERT INTO team_members VALUES (current_user, 'rep', 'Bob'); "
                 "UPDATE deals SET name = 'Hijacked', value_minor = 1 WHERE id = 2; "
                 "INSERT INTO events (deal_id, at, kind, text) "
                 "VALUES (2, '2026-12-01T10:00:00Z', 'note', 'forged by anna')")
    assert team.state() == before, done.stdout + done.stderr


def test_a_rep_cannot_add_to_a_colleagues_history_with_a_temporary_deals(team: Team) -> None:
    """CRITICAL. pipectl_may_change(deal) reads the deal's owner from ``deals`` through the
    same search_path: a temporary ``deals`` saying deal 2 is Anna's lets her append events
    (a win, a loss, a note) to Bob's deal. Fix: as above (search_path ending in pg_temp)."""
    before = team.state()
    done = _psql(team, "anna",
                 "CREATE TEMP TABLE deals (id bigint, owner text); "
                 "INSERT INTO deals VALUES (2, 'Anna Kowalska'); "
                 "INSERT INTO events (deal_id, at, kind, text) "
                 "VALUES (2, '2026-12-01T10:00:00Z', 'note', 'forged by anna')")
    assert team.state() == before, done.stdout + done.stderr


def test_a_rep_runs_no_code_as_the_owner_through_the_dirty_marks(team: Team) -> None:
    """CRITICAL (a rep becomes the database's owner; a superuser when, as in docs/team.md,
    the owner is postgres). pipectl_dirty_event() is SECURITY DEFINER and inserts into
    ``read_dirty`` by an unqualified name: the rep's temporary ``read_dirty`` is the one it
    writes, and a trigger on it (a pg_temp function) runs as the owner.

    Fix: as above (``SET search_path = public, pg_temp`` on pipectl_dirty_event,
    pipectl_dirty_deal, pipectl_dirty_version; or ``INSERT INTO public.read_dirty``)."""
    before = _members(team)
    done = _psql(team, "anna",
                 _EVIL_TRIGGER + "CREATE TEMP TABLE read_dirty (deal_id bigint); "
                 "CREATE TRIGGER t BEFORE INSERT ON pg_temp.read_dirty "
                 "FOR EACH ROW EXECUTE FUNCTION pg_temp.evil(); "
                 "INSERT INTO events (deal_id, at, kind, text) "
                 "VALUES (1, '2026-12-01T10:00:00Z', 'note', 'mine')")
    assert _members(team) == before, done.stdout + done.stderr


@pytest.mark.parametrize("who", ["vic", "nobody"])
def test_no_role_runs_code_as_the_owner_through_pipectl_number_ids(team: Team,
                                                                   who: str) -> None:
    """CRITICAL. pipectl_number_ids() is SECURITY DEFINER and executable by PUBLIC: a viewer
    -- or any role of the server, member or not (a revoked one too: PUBLIC may CONNECT and
    use the schema) -- makes a temporary view ``deals`` calling its own function, and that
    function runs as the owner.

    Fix: ``SET search_path = public, pg_temp`` on it (above) and, in ``team.setup``,
    ``REVOKE EXECUTE ON FUNCTION pipectl_number_ids() FROM PUBLIC`` then ``GRANT EXECUTE
    ... TO <rep>, <manager>`` (better still: in SCHEMA, so no team is needed for it)."""
    before = _members(team)
    done = _psql(team, who, _EVIL_VALUE + "CREATE TEMP VIEW deals AS SELECT pg_temp.evil() "
                 "AS id; SELECT pipectl_number_ids()")
    assert _members(team) == before, done.stdout + done.stderr


def test_a_rep_cannot_skip_the_dirty_marks_and_skew_the_figures(team: Team,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """HIGH. The rep's temporary ``read_dirty`` takes the marks her writes leave: the read
    models keep a deal she removed, no mark says so, ``usable()`` says they are fresh, and
    every report -- a manager's included, and after a manager's write too -- counts it.
    Fix: as above (the SECURITY DEFINER triggers' search_path ending in pg_temp)."""
    done = _psql(team, "anna", "CREATE TEMP TABLE read_dirty (deal_id bigint); "
                 "DELETE FROM deals WHERE id = 1")
    assert done.returncode == 0, done.stderr
    team.cli("carol")("note", "2", "a manager's write settles the marks")
    shown = json.loads(team.cli("carol")("report", "--json").stdout)["deals"]
    monkeypatch.setenv("PIPECTL_REPLAY", "1")
    replayed = json.loads(team.cli("carol")("report", "--json").stdout)["deals"]
    assert replayed["total"] == 2
    assert shown == replayed


def test_a_manager_cannot_erase_a_deals_history(team: Team) -> None:
    """MEDIUM. Events are append-only while their deal exists: pipectl_event_delete() checks
    ``EXISTS (SELECT 1 FROM deals ...)`` -- by an unqualified name and with no search_path
    of its own. A manager (who holds DELETE on events) hides ``deals`` behind an empty
    temporary table and deletes any deal's history, the deal left in place.

    Fix (schema.py): ``pipectl_event_delete`` reads ``public.deals`` (or gets ``SET
    search_path = public, pg_temp``), as do pipectl_event_actor and pipectl_append_only;
    and ``team.setup`` need not grant DELETE on events (nor UPDATE on events and rates) to
    the manager at all: ``rm`` removes them by the foreign key's cascade, run as the table's
    owner."""
    before = team.state()
    done = _psql(team, "carol", "CREATE TEMP TABLE deals (id bigint); "
                 "DELETE FROM events WHERE deal_id = 2")
    assert team.state() == before, done.stdout + done.stderr


@pytest.mark.parametrize("who", ["vic", "nobody"])
def test_a_viewer_cannot_stop_every_write(team: Team, who: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """MEDIUM (denial of service). Every write transaction first takes the advisory lock
    WRITE_LOCK (adapter.Connection._special). Advisory locks need no right: a viewer, or any
    role that may connect (PUBLIC may), holds it in a session and every write of the team --
    the owner's too -- waits, then ends with exit 75, for as long as it likes.

    Fix: take the writers' turn on something only writers may lock, e.g. a one-row table
    ``pipectl_write_turn`` (SCHEMA) that the rep and manager groups may UPDATE, and in
    ``_special`` ``LOCK TABLE pipectl_write_turn IN EXCLUSIVE MODE`` instead of
    ``pg_advisory_xact_lock`` (a viewer's ACCESS SHARE does not conflict with it); and in
    ``team.setup`` ``REVOKE CONNECT, TEMPORARY ON DATABASE ... FROM PUBLIC`` so that a role
    outside the team (a revoked one) may not even connect."""
    monkeypatch.setenv("PIPECTL_BUSY_TIMEOUT_MS", "1000")
    with psycopg.connect(team.url(who), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (OLD_WRITE_LOCK,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege), holder.transaction():
            holder.execute(WRITE_TURN)
        team.cli("carol")("note", "2", "a manager's note")
        team.cli()("note", "2", "the owner's note")


def test_a_viewer_cannot_break_a_writers_numbering(team: Team) -> None:
    """MEDIUM (denial of service). pipectl_number_ids() sets every id sequence to the
    largest *committed* id + 1, and anyone may call it at any time: called while a writer's
    transaction has added rows, the writer's next row takes an id it already used
    (``duplicate key value violates unique constraint "events_pkey"``). A viewer calling it
    in a loop makes every import of a manager fail (seen: 3,000 rows, exit 1).

    Fix: ``REVOKE EXECUTE ... FROM PUBLIC`` (above), and the function takes the writers'
    turn itself first (``PERFORM pg_advisory_xact_lock(<WRITE_LOCK>)``, or the table lock
    above), so it never runs inside another's turn."""
    with psycopg.connect(team.url("carol"), autocommit=True) as writer, \
            psycopg.connect(team.url("vic"), autocommit=True,
                            options="-c lock_timeout=500") as vic, writer.transaction():
        writer.execute(WRITE_TURN)
        writer.execute("SELECT pipectl_number_ids()")
        writer.execute("INSERT INTO events (deal_id, at, kind, text) "
                       "VALUES (2, '2026-12-01T10:00:00Z', 'note', 'one')")
        with contextlib.suppress(psycopg.Error):  # refused, or waits for the writer: fixed
            vic.execute("SELECT pipectl_number_ids()")
        writer.execute("INSERT INTO events (deal_id, at, kind, text) "
                       "VALUES (2, '2026-12-01T10:00:00Z', 'note', 'two')")
    assert team.sql("SELECT count(*) FROM events WHERE text IN ('one', 'two')") == [(2,)]


def test_grant_takes_the_role_named_as_the_server_spells_it(team: Team) -> None:
    """LOW. ``team grant`` NFC-normalises and strips the role's name (values.clean_text) and
    then looks it up byte for byte: a role whose name is decomposed (NFD, as macOS spells
    it) or has a space at an end cannot be granted (``the server has no role``, and the
    hint's createuser would make another role), and where both spellings exist the other
    role is the one granted.

    Fix (services/team.py role_name): keep the name as given (reject control characters
    only); or look it up as given first and say which role was found."""
    nfd = unicodedata.normalize("NFD", f"{team.roles['nobody']}_trần")
    with admin() as conn:
        conn.execute(f'CREATE ROLE "{nfd}" LOGIN')
    try:
        team.cli()("team", "grant", nfd, "--as", "viewer")
        assert team.sql(f"SELECT count(*) FROM team_members WHERE role = '{nfd}'") == [(1,)]
    finally:
        with psycopg.connect(team.url(), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{nfd}"')
        with admin() as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{nfd}"')


# ================================================================ attacks that are refused


_REP_REFUSED = [
    # a colleague's deal by upsert: the existing row must pass the UPDATE policy
    ("INSERT INTO deals (id, name, pipeline_id, stage, currency, created_at, updated_at, "
     "owner) SELECT 2, 'x', pipeline_id, stage, currency, created_at, updated_at, "
     "'Anna Kowalska' FROM deals WHERE id = 2 ON CONFLICT (id) DO UPDATE SET name = 'x'",
     "violates row-level security policy"),
    ("INSERT INTO deals (id, name, pipeline_id, stage, currency, created_at, updated_at, "
     "owner) SELECT 2, 'x', pipeline_id, stage, currency, created_at, updated_at, "
     "'Anna Kowalska' FROM deals WHERE id = 2 ON CONFLICT (id) DO UPDATE "
     "SET owner = 'Anna Kowalska'", "violates row-level security policy"),
    ("COPY deals FROM STDIN", "COPY FROM not supported with row-level security"),
    ("COPY events FROM STDIN", "COPY FROM not supported with row-level security"),
    ("CREATE TABLE public.rt_mine (a int)", "permission denied for schema public"),
    ("CREATE OR REPLACE FUNCTION public.pipectl_team_owner() RETURNS text LANGUAGE sql "
     "AS $$ SELECT 'Bob' $$", "permission denied for schema public"),
    ("CREATE SCHEMA rt_mine", "permission denied for database"),
    ("ALTER FUNCTION pipectl_team_owner() SET search_path = pg_temp", "must be owner"),
    ("ALTER TABLE events DISABLE TRIGGER events_actor", "must be owner of table events"),
    ("CREATE TRIGGER rt_t AFTER INSERT ON public.deals FOR EACH ROW EXECUTE FUNCTION "
     "pipectl_append_only()", "permission denied for table deals"),
    ("CREATE POLICY rt_p ON deals FOR ALL USING (true)", "must be owner of table deals"),
    ("SET SESSION AUTHORIZATION postgres", "permission denied to set session authorization"),
    ("UPDATE imports SET added = 5", "permission denied for table imports"),
    ("DELETE FROM imports", "permission denied for table imports"),
    ("UPDATE read_facts SET facts = '{}'", "permission denied for table read_facts"),
    ("INSERT INTO read_dirty_pipelines VALUES (1)",
     "permission denied for table read_dirty_pipelines"),
    ("DELETE FROM pipectl_migrations", "permission denied for table pipectl_migrations"),
]


def test_more_of_a_reps_psql_is_refused(team: Team) -> None:
    before = team.state()
    for statement, said in _REP_REFUSED:
        done = _psql(team, "anna", statement)
        assert done.returncode != 0 and said in done.stderr, (statement, done.stderr)
    # what row-level security filters, whatever the statement's shape
    for statement in ("UPDATE deals d SET name = 'x' FROM deals o WHERE o.id = 2 "
                      "AND d.id = o.id",
                      "WITH x AS (UPDATE deals SET name = 'x' WHERE id = 2 RETURNING id) "
                      "SELECT 'UPDATE ' || count(*) FROM x",
                      "DELETE FROM deals d USING deals o WHERE d.id = 2 AND o.id = 2",
                      "UPDATE deals SET owner = 'Anna Kowalska' WHERE owner IS NULL",
                      "DELETE FROM deals WHERE owner IS DISTINCT FROM 'Anna Kowalska'"):
        done = _psql(team, "anna", statement)
        assert done.returncode == 0 and done.stdout.strip() in ("UPDATE 0", "DELETE 0"), \
            (statement, done.stdout, done.stderr)
    # the rep group's own role is no one's owner name: nothing to change as it
    rep_group = f"pipectl_{team.db}_rep"
    done = _psql(team, "anna", f'SET ROLE "{rep_group}"; UPDATE deals SET name = \'x\' '
                 "WHERE id = 1")
    assert done.stdout.strip().endswith("UPDATE 0"), (done.stdout, done.stderr)
    assert team.state() == before


@pytest.mark.parametrize("who", ["anna", "carol"])
def test_an_events_actor_is_the_server_role_even_in_copy_mode(team: Team, who: str) -> None:
    """``pipectl.copy = on`` keeps a copied event's actor only for the table's owner."""
    deal = 1 if who == "anna" else 2
    done = _psql(team, who, "SET pipectl.copy = 'on'; INSERT INTO events (deal_id, at, kind, "
                 f"text, actor) VALUES ({deal}, '2026-12-01T10:00:00Z', 'note', 'x', "
                 "'postgres') RETURNING actor")
    assert done.returncode == 0, done.stderr
    assert team.sql(f"SELECT actor FROM events WHERE deal_id = {deal} AND text = 'x'") == [
        (team.roles[who],)]


_MANAGER_REFUSED = [
    ("UPDATE team_members SET access = 'manager'", "permission denied for table team_members"),
    ("INSERT INTO team_members VALUES ('x', 'manager', 'x', '2026-12-01T09:00:00Z', 'x')",
     "permission denied for table team_members"),
    ("INSERT INTO pipectl_migrations VALUES (99, 'x', '2026-12-01T09:00:00Z')",
     "permission denied for table pipectl_migrations"),
    ("TRUNCATE deals CASCADE", "permission denied for table deals"),
    ("TRUNCATE events", "permission denied for table events"),
    # append-only: no right to (and the triggers, behind it)
    ("UPDATE events SET text = 'x' WHERE deal_id = 1", "permission denied for table events"),
    ("DELETE FROM events WHERE deal_id = 1", "permission denied for table events"),
    ("ALTER TABLE deals DISABLE ROW LEVEL SECURITY", "must be owner of table deals"),
    ("ALTER TABLE events DISABLE TRIGGER events_no_delete", "must be owner of table events"),
    ("SET ROLE postgres", "permission denied to set role"),
    ("SELECT setval('events_id_seq', 1)", "permission denied for sequence"),
    ("CREATE TABLE public.rt_mine (a int)", "permission denied for schema public"),
]


def test_a_manager_is_still_limited(team: Team) -> None:
    team.cli("carol")("rate", "set", "USD", "EUR", "0.9")
    manager = f"pipectl_{team.db}_manager"
    by_hand = [*_MANAGER_REFUSED,
               ("UPDATE rates SET rate = '2'", "permission denied for table rates"),
               ("DELETE FROM rates", "permission denied for table rates"),
               (f'GRANT "{manager}" TO "{team.roles["vic"]}"', "must have admin option")]
    before = team.state()
    for statement, said in by_hand:
        done = _psql(team, "carol", statement)
        assert done.returncode != 0 and said in done.stderr, (statement, done.stderr)
    assert team.state() == before


def test_a_viewer_may_not_lock_a_table_against_reads(team: Team) -> None:
    done = _psql(team, "vic", "BEGIN; LOCK TABLE deals IN ACCESS EXCLUSIVE MODE; COMMIT")
    assert "permission denied for table deals" in done.stderr
    done = _psql(team, "vic", "BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; COMMIT")
    assert "permission denied for table events" in done.stderr


def test_a_non_member_is_refused_in_one_line_and_changes_nothing(team: Team) -> None:
    nobody = team.cli("nobody")
    before = team.state()
    for args in (("list",), ("report",), ("team", "list"), ("note", "1", "x"),
                 ("team", "grant", team.roles["nobody"], "--as", "manager"),
                 ("db", "copy", "--to", "/nonexistent/x.db")):
        err = nobody(*args, code=1).stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        assert "no member of this pipeline's team" in err, err
    assert team.state() == before


def test_a_refused_import_as_a_rep_leaves_no_record_of_it(team: Team, tmp_path) -> None:
    """A refused import records no row in ``imports`` (which would make the manager's own
    import of the same file say it was imported before)."""
    sheet = tmp_path / "theirs.csv"
    sheet.write_text("name,owner,value\nTheirs,Bob,20\n")
    _refused(team.cli("anna"), "import", str(sheet))
    assert team.sql("SELECT count(*) FROM imports") == [(0,)]
    team.cli("carol")("import", str(sheet))


@pytest.mark.parametrize("name", ['q"uote', "two  spaces", "x'; DROP TABLE deals; --",
                                  "ünïcödé"])
def test_grant_takes_any_role_name_as_a_name(team: Team, name: str) -> None:
    role = f"{team.roles['nobody']}_{name}"
    with admin() as conn:
        conn.execute('CREATE ROLE "{}" LOGIN'.format(role.replace('"', '""')))
    try:
        out = team.cli()("team", "grant", role, "--as", "rep", "--owner", "Bob").stdout
        assert out.startswith(f"{role} is a rep of this pipeline")
        assert team.sql("SELECT count(*) FROM deals") == [(3,)]
        with psycopg.connect(team.url(), autocommit=True) as conn:
            assert conn.execute("SELECT access, owner FROM team_members WHERE role = %s",
                                (role,)).fetchall() == [("rep", "Bob")]
        assert team.cli()("team", "revoke", role).stdout.strip() == \
            f"{role} is no longer a rep of this pipeline"
    finally:
        quoted = role.replace('"', '""')
        with psycopg.connect(team.url(), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{quoted}"')
        with admin() as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{quoted}"')


def test_grant_refuses_a_role_of_the_owner_and_another_databases_group(team: Team) -> None:
    member = f"{team.roles['nobody']}_owns"
    group = f"pipectl_{team.roles['nobody']}_manager"  # as another database's would be
    with admin() as conn:
        conn.execute(f'CREATE ROLE "{member}" LOGIN IN ROLE postgres')
        conn.execute(f'CREATE ROLE "{group}" NOLOGIN')
    try:
        err = team.cli()("team", "grant", member, "--as", "viewer", code=1).stderr
        assert "acts as the database's owner" in err
        err = team.cli()("team", "grant", group, "--as", "rep", code=2).stderr
        assert "one of pipectl's group roles" in err
    finally:
        with admin() as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{member}"')
            conn.execute(f'DROP ROLE IF EXISTS "{group}"')
