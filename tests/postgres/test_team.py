"""A team on a server pipeline: pipectl team grant|revoke|list, and the rules the server
enforces (roles, privileges, row-level security) for pipectl and psql alike.

Each test has its own database and its own login roles (anna and bob reps, carol a manager,
vic a viewer), dropped afterwards with the database's group roles."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.postgres.conftest import admin, new_database, url_of

NOW = "2026-12-01T09:00:00Z"


@dataclass
class Team:
    db: str
    roles: dict[str, str]  # short name -> the server role

    def url(self, who: str = "owner") -> str:
        return url_of(self.db, None if who == "owner" else self.roles[who])

    def cli(self, who: str = "owner") -> Cli:
        return Cli(self.url(who))  # type: ignore[arg-type]

    def sql(self, query: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            return conn.execute(query).fetchall()

    def state(self) -> list[list[tuple]]:
        """Everything a write could change (as the superuser sees it)."""
        return [self.sql(f"SELECT * FROM {t} ORDER BY 1, 2") for t in
                ("deals", "events", "pipelines", "pipeline_versions", "rates", "imports",
                 "team_members")]


def _drop_roles(db: str, roles: list[str]) -> None:
    import psycopg

    groups = [f"pipectl_{db}_{a}" for a in ("viewer", "rep", "manager")]
    with psycopg.connect(url_of(db), autocommit=True) as conn:
        for r in roles + groups:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone():
                conn.execute(f'DROP OWNED BY "{r}"')
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for r in roles + groups:
            conn.execute(f'DROP ROLE IF EXISTS "{r}"')


@pytest.fixture
def team(monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    db = new_database()
    tag = uuid.uuid4().hex[:6]
    roles = {n: f"pt_{tag}_{n}" for n in ("anna", "bob", "carol", "vic", "nobody")}
    with admin() as conn:
        for r in roles.values():
            conn.execute(f'CREATE ROLE "{r}" LOGIN')
    t = Team(db, roles)
    try:
        owner = t.cli()
        owner("add", "Acme", "--owner", "Anna Kowalska", "--value", "1000")
        owner("add", "Bobco", "--owner", "Bob", "--value", "2000")
        owner("add", "Nobody's", "--value", "300")
        owner("team", "grant", roles["anna"], "--as", "rep", "--owner", "Anna Kowalska")
        owner("team", "grant", roles["bob"], "--as", "rep", "--owner", "Bob")
        owner("team", "grant", roles["carol"], "--as", "manager")
        owner("team", "grant", roles["vic"], "--as", "viewer")
        yield t
    finally:
        _drop_roles(db, list(roles.values()))


def _refused(cli: Cli, *args: str) -> str:
    out = cli(*args, code=1)
    err = out.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "permission denied" in err and "nothing was changed" in err, err
    return err


# ---------------------------------------------------------------- grant, list, revoke


def test_team_list_shows_each_member_and_the_owner(team: Team) -> None:
    out = json.loads(team.cli("vic")("team", "list", "--json").stdout)
    assert out["database_owner"] == "postgres"
    assert out["you"] == team.roles["vic"]
    assert [(m["role"], m["access"], m["owner"], m["granted_by"], m["granted_at"])
            for m in out["members"]] == [
        (team.roles["carol"], "manager", team.roles["carol"], "postgres", NOW),
        (team.roles["anna"], "rep", "Anna Kowalska", "postgres", NOW),
        (team.roles["bob"], "rep", "Bob", "postgres", NOW),
        (team.roles["vic"], "viewer", team.roles["vic"], "postgres", NOW)]
    table = team.cli()("team", "list").stdout
    assert "Anna Kowalska" in table and "The database's owner, postgres" in table


def test_grant_again_changes_the_access_and_says_what_it_was(team: Team) -> None:
    anna = team.roles["anna"]
    out = team.cli()("team", "grant", anna, "--as", "viewer").stdout
    assert out.startswith(f"{anna} is a viewer of this pipeline (was rep): reads everything")
    _refused(team.cli("anna"), "advance", "1")
    out = team.cli()("team", "grant", anna, "--as", "rep", "--owner", "Anna Kowalska").stdout
    assert "(was viewer)" in out and "'Anna Kowalska'" in out
    team.cli("anna")("advance", "1")


def test_revoke_leaves_the_role_no_right_at_all(team: Team) -> None:
    anna = team.roles["anna"]
    assert team.cli()("team", "revoke", anna).stdout.strip() == \
        f"{anna} is no longer a rep of this pipeline"
    err = team.cli("anna")("list", code=1).stderr
    assert "permission denied: this role is no member of this pipeline's team" in err
    assert "pipectl team grant ROLE" in err and "Traceback" not in err
    team.cli()("team", "revoke", anna, code=1)  # no member any more: exit 1, says so
    assert [r[0] for r in team.sql("SELECT role FROM team_members ORDER BY 1")] == sorted(
        team.roles[n] for n in ("bob", "carol", "vic"))


def test_only_the_database_owner_grants(team: Team) -> None:
    before = team.state()
    for who in ("carol", "anna", "vic"):
        err = team.cli(who)("team", "grant", team.roles["nobody"], "--as", "manager",
                            code=1).stderr
        assert "only the database's owner (postgres) or a superuser may" in err
        team.cli(who)("team", "revoke", team.roles["bob"], code=1)
    assert team.state() == before


def test_grant_refuses_what_it_cannot_mean(team: Team) -> None:
    owner = team.cli()
    err = owner("team", "grant", "no_such_role_here", "--as", "rep", code=1).stderr
    assert "the server has no role 'no_such_role_here'" in err and "createuser" in err
    err = owner("team", "grant", "postgres", "--as", "rep", code=1).stderr
    assert "is a superuser" in err
    err = owner("team", "grant", team.roles["bob"], "--as", "boss", code=2).stderr
    assert "viewer, rep, manager" in err


def test_team_on_a_file_says_it_is_a_servers(cli: Cli) -> None:
    err = cli("team", "grant", "anna", "--as", "rep", code=2).stderr
    assert "works on a PostgreSQL server" in err and "file permissions" in err
    cli("team", "list", code=2)
    cli("team", "revoke", "anna", code=2)
    assert not Path(cli.db).exists()  # refused before the file is opened, or made


# ---------------------------------------------------------------- what each may do


def test_a_rep_changes_their_own_deals_and_only_those(team: Team) -> None:
    anna = team.cli("anna")
    anna("advance", "1")
    anna("note", "1", "Called", "--next", "Send the offer", "--due", "2026-12-03")
    anna("edit", "1", "--value", "1500")
    anna("add", "Anna's new", "--owner", "Anna Kowalska", "--value", "50")
    anna("lose", "4", "--reason", "no budget")
    anna("reopen", "4")
    anna("rm", "4", "--yes")
    before = team.state()
    for args in (("advance", "2"), ("note", "2", "x"), ("edit", "2", "--value", "1"),
                 ("lose", "2", "--reason", "x"), ("qualify", "2", "budget"),
                 ("edit", "2", "--owner", "Anna Kowalska"), ("rm", "2", "--yes"),
                 ("advance", "3"), ("rm", "3", "--yes")):
        err = _refused(anna, *args)
        assert "deal" in err and "is owned by" in err, err
    err = _refused(anna, "rm", "2", "--yes")
    assert (f"deal 2 is owned by 'Bob', and {team.roles['anna']} is a rep for 'Anna Kowalska'; "
            f"{team.roles['bob']}, a manager ({team.roles['carol']}) or the database owner "
            "(postgres) may change it") in err
    # a deal of her own given away, or added for another, or for no one
    err = _refused(anna, "edit", "1", "--owner", "Bob")
    assert "would be owned by 'Bob'" in err
    err = _refused(anna, "add", "For Bob", "--owner", "Bob")
    assert "would be owned by 'Bob'" in err
    err = _refused(anna, "add", "For no one")
    assert "give it --owner 'Anna Kowalska'" in err
    _refused(anna, "rate", "set", "USD", "EUR", "0.9")
    assert team.state() == before
    events = team.sql("SELECT deal_id, kind, actor FROM events WHERE deal_id = 1 ORDER BY id")
    assert {a for _, _, a in events[1:]} == {team.roles["anna"]}  # the server's word


def test_a_rep_imports_only_deals_of_their_own(team: Team, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("name,owner,value\nMine,Anna Kowalska,10\nTheirs,Bob,20\n")
    before = team.state()
    _refused(team.cli("anna"), "import", str(mixed))
    assert team.state() == before
    mine = tmp_path / "mine.csv"
    mine.write_text("name,owner,value\nMine,Anna Kowalska,10\nAlso mine,Anna Kowalska,20\n")
    team.cli("anna")("import", str(mine))
    assert team.sql("SELECT count(*) FROM deals WHERE owner = 'Anna Kowalska'") == [(3,)]


def test_list_and_next_owner_me_are_the_reps_own(team: Team) -> None:
    rows = json.loads(team.cli("anna")("list", "--owner", "me", "--json").stdout)
    assert [r["name"] for r in rows] == ["Acme"]
    rows = json.loads(team.cli("bob")("list", "--owner", "me", "--json").stdout)
    assert [r["name"] for r in rows] == ["Bobco"]


def test_a_viewer_reads_everything_and_changes_nothing(team: Team, tmp_path: Path) -> None:
    vic = team.cli("vic")
    before = team.state()
    for args in (("add", "X", "--owner", "Bob"), ("advance", "1"), ("note", "2", "x"),
                 ("edit", "1", "--value", "5"), ("rm", "1", "--yes"),
                 ("rate", "set", "USD", "EUR", "0.9")):
        _refused(vic, *args)
    sheet = tmp_path / "one.csv"
    sheet.write_text("name,owner\nX,Bob\n")
    _refused(vic, "import", str(sheet))
    assert team.state() == before
    for args in (("list",), ("show", "2"), ("board",), ("report",), ("forecast",),
                 ("stale",), ("next",), ("stages",), ("pipeline", "list"), ("rate", "list"),
                 ("db", "check"), ("team", "list")):
        vic(*args)
    vic("export", "--output", str(tmp_path / "all.csv"))
    assert (tmp_path / "all.csv").read_text().count("\n") == 4


def test_a_manager_changes_everything_and_defines_pipelines(team: Team,
                                                            tmp_path: Path) -> None:
    carol = team.cli("carol")
    carol("advance", "1")
    carol("edit", "2", "--owner", "Anna Kowalska")
    carol("rm", "3", "--yes")
    carol("rate", "set", "USD", "EUR", "0.9")
    spec = tmp_path / "p.toml"
    spec.write_text('name = "Renewals"\n\n[[stages]]\nkey = "open"\nprobability = 50\n\n'
                    '[[stages]]\nkey = "renewed"\nkind = "won"\n')
    carol("pipeline", "apply", str(spec))
    assert team.sql("SELECT name FROM pipelines ORDER BY id")[-1] == ("Renewals",)
    # anna now holds deal 2 (a manager handed it over), bob no longer does
    team.cli("anna")("advance", "2")
    _refused(team.cli("bob"), "note", "2", "mine?")
    spec.write_text(spec.read_text().replace("probability = 50", "probability = 60"))
    _refused(team.cli("anna"), "pipeline", "apply", str(spec))  # a change: a manager's


def test_a_reps_writes_never_skew_a_figure(team: Team) -> None:
    """A rep may not write the read models the reports use: their writes leave them marked,
    the reports replay the events meanwhile, and a manager's next write settles them: the
    figures are the same all along."""
    anna = team.cli("anna")
    anna("advance", "1")
    anna("qualify", "1", "location", "budget", "authority", "need")
    anna("advance", "1")
    anna("add", "More", "--owner", "Anna Kowalska", "--value", "700")
    anna("lose", "4", "--reason", "timing")
    assert team.sql("SELECT count(*) FROM read_dirty")[0][0] > 0
    pending = [team.cli("vic")(*a).stdout for a in (("report", "--json"),
                                                    ("forecast", "--json"))]
    team.cli("carol")("note", "2", "settles the marks")
    assert team.sql("SELECT count(*) FROM read_dirty") == [(0,)]
    team.cli("carol")("note", "2", "x")  # a note changes no figure
    settled = [team.cli("vic")(*a).stdout for a in (("report", "--json"),
                                                    ("forecast", "--json"))]
    assert pending == settled
    assert json.loads(settled[0])["deals"] == {"open": 3, "won": 0, "lost": 1, "total": 4}


# ---------------------------------------------------------------- psql, by hand


_BY_HAND_REFUSED = [
    # (statement, what the server says)
    ("INSERT INTO events (deal_id, at, kind, text) VALUES (2, '2026-12-01T10:00:00Z', 'note',"
     " 'x')", "deal 2 is owned by 'Bob'"),
    ("INSERT INTO deals (name, pipeline_id, stage, currency, created_at, updated_at, owner) "
     "VALUES ('x', 1, 'won', 'USD', '2026-12-01T09:00:00Z', '2026-12-01T09:00:00Z', 'Bob')",
     "would be owned by 'Bob'"),
    ("UPDATE deals SET owner = 'Bob' WHERE id = 1", "would be owned by 'Bob'"),
    ("UPDATE events SET text = 'x' WHERE deal_id = 1", "permission denied for table events"),
    ("DELETE FROM events WHERE deal_id = 1", "permission denied for table events"),
    ("TRUNCATE deals CASCADE", "permission denied for table deals"),
    ("INSERT INTO deal_states SELECT * FROM deal_states LIMIT 1",
     "permission denied for table deal_states"),
    ("UPDATE deal_figures SET deals = deals + 1", "permission denied for table deal_figures"),
    ("DELETE FROM read_dirty", "permission denied for table read_dirty"),
    ("INSERT INTO rates (source, target, at, rate, recorded_at) VALUES ('USD', 'EUR', "
     "'2026-12-01T00:00:00Z', '2', '2026-12-01T00:00:00Z')", "permission denied for table rates"),
    ("UPDATE pipelines SET name = 'x'", "permission denied for table pipelines"),
    ("UPDATE team_members SET access = 'manager'", "permission denied for table team_members"),
    ("ALTER TABLE deals DISABLE ROW LEVEL SECURITY", "must be owner of table deals"),
    ("DROP POLICY team_rep_change ON deals", "must be owner"),
    ("SET ROLE postgres", "permission denied to set role"),
    ("SELECT setval('deals_id_seq', 1000)", "permission denied for sequence"),
]


def _psql(team: Team, who: str, statement: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", team.url(who), "-X", "-v", "ON_ERROR_STOP=1", "-Atc",
                           statement], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_as_a_rep_meets_the_same_refusals(team: Team) -> None:
    groups = [f"pipectl_{team.db}_{a}" for a in ("manager", "rep", "viewer")]
    by_hand = [*_BY_HAND_REFUSED, *[(f'SET ROLE "{g}"', "permission denied to set role")
                                    for g in groups if not g.endswith("_rep")],
               *[(f'GRANT "{g}" TO "{team.roles["anna"]}"', "must have admin option")
                 for g in groups]]
    before = team.state()
    for statement, said in by_hand:
        done = _psql(team, "anna", statement)
        assert done.returncode != 0 and said in done.stderr, (statement, done.stderr)
    # what row-level security filters: a colleague's deal is not there to change or remove
    for statement in ("UPDATE deals SET stage = 'won' WHERE id = 2",
                      "UPDATE deals SET owner = 'Anna Kowalska' WHERE id = 2",
                      "DELETE FROM deals WHERE id = 2", "DELETE FROM deals WHERE id = 3"):
        done = _psql(team, "anna", statement)
        assert done.returncode == 0 and done.stdout.strip() in ("UPDATE 0", "DELETE 0"), \
            (statement, done.stdout, done.stderr)
    assert team.state() == before
    # her own: the same SQL goes through (as pipectl sends it)
    done = _psql(team, "anna", "UPDATE deals SET name = 'Acme Renamed' WHERE id = 1")
    assert done.stdout.strip() == "UPDATE 1", done.stderr
    # everyone reads
    done = _psql(team, "vic", "SELECT count(*) FROM deals")
    assert done.stdout.strip() == "3"
    done = _psql(team, "vic", "UPDATE deals SET name = 'x' WHERE id = 1")
    assert "permission denied for table deals" in done.stderr


def test_a_server_of_schema_9_upgrades_and_its_team_reads_the_new_read_model(team: Team
                                                                             ) -> None:
    """Migration 10 (``store.outcomes``) on a server with a team: the new tables get the
    rights ``deal_states`` has (every member reads, a manager writes), every deal is marked,
    and until a manager's write computes them calibrate reads the events: the same figures."""
    owner = team.cli()
    owner("advance", "1", "--to", "meeting", "--prequalified", "referral")
    owner("lose", "2", "--reason", "price")
    before = json.loads(owner("calibrate", "--json").stdout)
    import psycopg

    from pipectl.store.schema import VERSION
    from tests.postgres.test_undo import _BACK_TO_10

    with psycopg.connect(team.url(), autocommit=True) as conn:  # back to schema 9
        conn.execute(_BACK_TO_10)  # (the migrations after 10 too)
        conn.execute("DROP TABLE deal_outcomes, outcome_figures")
        conn.execute("DELETE FROM pipectl_migrations WHERE version = 10")
    vic = team.cli("vic")
    err = vic("calibrate", "--json", code=1).stderr  # a viewer may not create tables
    assert f"schema is version 9, older than this pipectl's ({VERSION}), and this role may not " \
           "upgrade it; nothing was changed" in err and "database's owner upgrades" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert json.loads(owner("calibrate", "--json").stdout) == before  # upgraded by its owner
    assert json.loads(vic("calibrate", "--json").stdout) == before
    assert team.sql("SELECT max(version) FROM pipectl_migrations") == [(VERSION,)]
    assert team.sql("SELECT count(*) FROM read_dirty") == [(3,)]  # computed by the next write
    rights = {(r, p) for r, p in team.sql(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = 'deal_outcomes'")}
    assert rights == {(r, p) for r, p in team.sql(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = 'deal_states'")}
    _refused(team.cli("anna"), "note", "2", "hi")  # a rep's refused write changes nothing
    team.cli("carol")("note", "3", "called")  # a manager's write computes them
    assert team.sql("SELECT count(*) FROM read_dirty") == [(0,)]
    assert team.sql("SELECT count(*) FROM deal_outcomes WHERE kind = 'stage'") == [(1,)]
    assert json.loads(vic("calibrate", "--json").stdout) == before
    owner("db", "check")
