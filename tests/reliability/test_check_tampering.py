"""db check sees tampering (issue 11, item 12): the schema as pipectl made it (tables, indexes,
the append-only triggers), and every deal equal to the projection of its events; db check
--repair rebuilds the deals from their events and recreates what the schema lacks, in one
transaction, and refuses a damaged file or an altered table.

Before: "no problems found" after the append-only triggers were dropped and an event
rewritten, and for a deal whose row said won while its events said open (report counted it
open, list said won). And no false alarm: the demo, real CRM files imported, databases
upgraded from old schemas, and a database whose pipeline changed its gate all check clean.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pipectl.domain.pipeline import DEFAULT
from pipectl.services.check import check
from pipectl.store.db import connect
from tests.conftest import Cli
from tests.reliability.helpers import FIXTURES
from tests.store.test_projection_property import _run, operations
from tests.unit.test_rules_custom import TWELVE


def _sql(db: Path, *statements: str) -> None:
    """Write to the database behind pipectl's back, as a user with the sqlite3 shell can."""
    con = sqlite3.connect(db)
    try:
        for s in statements:
            con.execute(s)
        con.commit()
    finally:
        con.close()


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _clean(cli: Cli) -> dict:
    report = cli.json("db", "check")
    assert report["ok"] is True, report["problems"]
    assert (report["schema"], report["deals_differing"], report["differing"]) == ([], 0, [])
    return report


# ---------------------------------------------------------------- the reproducers


def test_dropped_triggers_and_a_rewritten_event_are_seen_and_repaired(cli, db_path) -> None:
    cli("add", "Acme", "--value", "100", "--at", "2026-01-05")
    cli("add", "Beta", "--at", "2026-01-05")
    cli("advance", "1", "--at", "2026-01-06")
    _clean(cli)
    _sql(db_path, "DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete",
         "UPDATE events SET to_stage = 'meeting' WHERE deal_id = 1 AND kind = 'stage'")

    out = cli("db", "check", code=1).stdout
    assert "problems found" in out and "no problems" not in out
    assert "trigger events_no_delete missing, trigger events_no_update missing" in out
    assert "without its append-only triggers the history can be rewritten" in out
    assert "1 deal differs from what its events make of it" in out
    assert "deal 1: stage is 'qualification', its events make 'meeting'" in out
    found = json_of(cli("db", "check", "--json", code=1).stdout)
    assert found["ok"] is False
    assert [(s["type"], s["name"], s["problem"]) for s in found["schema"]] == [
        ("trigger", "events_no_delete", "missing"), ("trigger", "events_no_update", "missing")]
    assert found["deals_differing"] == 1
    assert found["differing"][0]["id"] == 1
    assert {"field": "stage", "stored": "qualification", "expected": "meeting"} in \
        found["differing"][0]["fields"]

    fixed = cli("db", "check", "--repair").stdout
    assert "recreated trigger events_no_delete" in fixed
    assert "recreated trigger events_no_update" in fixed
    assert "rebuilt 1 deal from its events: 1" in fixed
    assert "events may have been changed meanwhile" in fixed
    assert "no problems found" in fixed
    _clean(cli)
    assert cli.json("show", "1")["stage"] == "meeting"  # the events are the truth
    # the history is append-only again
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        _sql(db_path, "UPDATE events SET to_stage = 'won' WHERE deal_id = 1")


def test_a_deal_won_in_its_row_but_open_in_its_events(cli, db_path) -> None:
    cli("add", "Acme", "--value", "100", "--at", "2026-01-05")
    cli("add", "Beta", "--value", "50", "--at", "2026-01-06")
    _sql(db_path, "UPDATE deals SET stage = 'won', closed_at = '2026-01-07T00:00:00Z' "
                  "WHERE id = 1")
    # the contradiction the issue saw: list says won, report counts it open
    assert [d["id"] for d in cli.json("list", "--status", "won")] == [1]
    assert cli.json("report")["deals"]["open"] == 2

    result = cli("db", "check", code=1)
    assert "deal 1: stage is 'won', its events make 'prospecting'; closed_at is " \
           "'2026-01-07T00:00:00Z', its events make none" in result.stdout
    report = json_of(cli("db", "check", "--json", code=1).stdout)
    assert report["deals_differing"] == 1
    assert [d["id"] for d in report["differing"]] == [1]

    repaired = cli.json("db", "check", "--repair")
    assert repaired["ok"] is True
    assert repaired["repaired"]["deals"] == 1 and repaired["repaired"]["deal_ids"] == [1]
    assert repaired["repaired"]["objects"] == []
    _clean(cli)
    # list and report agree again
    assert cli.json("list", "--status", "won") == []
    assert sorted(d["id"] for d in cli.json("list", "--status", "open")) == [1, 2]
    assert cli.json("report")["deals"] == {"open": 2, "won": 0, "lost": 0, "total": 2}


def json_of(text: str) -> dict:
    import json

    return json.loads(text)


def test_every_stored_column_is_checked(cli, db_path) -> None:
    """Each column the events make, tampered alone, is named (and the search text too)."""
    cli("add", "Acme", "--value", "100", "--company", "Acme Corp", "--at", "2026-01-05")
    cli("qualify", "1", "location", "--at", "2026-01-06")
    for column, value in [("value_minor", "1"), ("currency", "'EUR'"),
                          ("created_at", "'2026-01-01T00:00:00Z'"),
                          ("updated_at", "'2026-02-01T00:00:00Z'"),
                          ("checklist", """'{"location":false}'"""),
                          ("probability", "90"), ("close_date", "'2026-05-01'"),
                          ("next_due", "'2026-03-01'"), ("search", "'nothing'")]:
        before = _rows(db_path, f"SELECT {column} FROM deals WHERE id = 1")[0][0]
        _sql(db_path, f"UPDATE deals SET {column} = {value} WHERE id = 1")
        report = json_of(cli("db", "check", "--json", code=1).stdout)
        assert [f["field"] for f in report["differing"][0]["fields"]] == [column]
        assert report["differing"][0]["fields"][0]["expected"] == before
        cli("db", "check", "--repair")
        assert _rows(db_path, f"SELECT {column} FROM deals WHERE id = 1")[0][0] == before
        _clean(cli)


def test_a_checklist_in_another_order_is_the_same_checklist(cli, db_path) -> None:
    cli("add", "Acme", "--at", "2026-01-05")
    cli("qualify", "1", "location", "budget", "--at", "2026-01-06")
    _sql(db_path, """UPDATE deals SET checklist = '{"budget":true,"location":true}'""")
    _clean(cli)


# ---------------------------------------------------------------- the schema


def test_indexes_missing_extra_and_altered_are_named_and_repaired(cli, db_path) -> None:
    cli("add", "Acme", "--owner", "Anna")
    _sql(db_path, "DROP INDEX deals_owner", "CREATE INDEX mine ON deals (name)",
         "DROP INDEX deals_close", "CREATE INDEX deals_close ON deals (close_date DESC)")
    report = json_of(cli("db", "check", "--json", code=1).stdout)
    assert [(s["type"], s["name"], s["problem"]) for s in report["schema"]] == [
        ("index", "deals_close", "altered"), ("index", "deals_owner", "missing"),
        ("index", "mine", "extra")]
    assert "pipectl db check --repair recreates them" in cli("db", "check", code=1).stdout
    fixed = cli.json("db", "check", "--repair")["repaired"]["objects"]
    assert fixed == [
        {"type": "index", "name": "deals_close", "action": "dropped"},
        {"type": "index", "name": "mine", "action": "dropped"},
        {"type": "index", "name": "deals_close", "action": "created"},
        {"type": "index", "name": "deals_owner", "action": "created"},
    ]
    _clean(cli)


def test_an_altered_table_is_not_repaired(cli, db_path) -> None:
    cli("add", "Acme")
    _sql(db_path, "ALTER TABLE deals ADD COLUMN secret TEXT", "DROP TRIGGER events_no_update")
    out = cli("db", "check", code=1).stdout
    assert "table deals altered" in out and "restore a backup" in out
    before = _rows(db_path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    refused = cli("db", "check", "--repair", code=1)
    assert refused.stderr.startswith("error: the schema is not as pipectl made it (table "
                                     "deals altered)")
    assert "nothing was changed" in refused.stderr and "restore a backup" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    # not even the missing trigger was recreated
    assert _rows(db_path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == before


def test_a_damaged_file_is_not_repaired(cli, db_path) -> None:
    cli("add", "Acme", "--owner", "Anna")
    (page,) = _rows(db_path, "SELECT rootpage FROM sqlite_master WHERE name = 'deals_owner'")[0]
    (size,) = _rows(db_path, "PRAGMA page_size")[0]
    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").stat().st_size == 0
    with db_path.open("r+b") as fh:  # the index's page: garbage
        fh.seek((page - 1) * size)
        fh.write(b"\x0d" + b"\xff" * (size - 1))
    out = cli("db", "check", code=1).stdout
    assert "the file's structure is damaged" in out
    refused = cli("db", "check", "--repair", code=1).stderr
    assert refused.startswith("error: the file's structure is damaged")
    assert "cannot mend a damaged file; nothing was changed" in refused
    assert "restore a backup" in refused


# ---------------------------------------------------------------- deals that cannot be rebuilt


def test_a_deal_without_events_is_named_and_left_alone(cli, db_path) -> None:
    cli("add", "Acme")
    _sql(db_path, "INSERT INTO deals (name, pipeline_id, stage, currency, created_at, "
                  "updated_at) VALUES ('Ghost', 1, 'prospecting', 'USD', "
                  "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    out = cli("db", "check", code=1).stdout
    assert "deal 2: it has no events" in out
    repaired = cli("db", "check", "--repair", code=1).stdout
    assert "not rebuilt: deal 2: it has no events" in repaired
    assert _rows(db_path, "SELECT name FROM deals WHERE id = 2") == [("Ghost",)]


# ---------------------------------------------------------------- no false alarms


def test_the_daily_commands_leave_a_database_that_checks_clean(cli, tmp_path) -> None:
    from tests.unit.test_pipeline_file import EXAMPLE as AGENCY

    agency = tmp_path / "agency.toml"
    agency.write_text(AGENCY)
    cli("pipeline", "apply", str(agency))
    cli("add", "Acme", "--value", "1000", "--company", "Acme Corp", "--at", "2026-01-05")
    cli("add", "Beta", "--value", "500", "--currency", "EUR", "--at", "2026-01-05")
    cli("add", "Gamma", "--stage", "meeting", "--prequalified", "referral", "--at", "2026-01-05")
    cli("qualify", "1", "location", "budget", "authority", "need", "--at", "2026-01-06")
    cli("advance", "1", "--at", "2026-01-07")
    cli("advance", "1", "--at", "2026-01-08")
    cli("edit", "1", "--name", "Acme Ltd", "--value", "1200", "--close", "2026-03-01",
        "--at", "2026-01-09")
    cli("note", "1", "called", "--next", "send contract", "--due", "2026-01-20",
        "--at", "2026-01-10")
    cli("lose", "2", "--reason", "price", "--at", "2026-01-11")
    cli("reopen", "2", "--at", "2026-01-12")
    cli("advance", "3", "--at", "2026-01-13")
    cli("advance", "3", "--to", "won", "--at", "2026-01-13")
    cli("move", "2", "--pipeline", "Agency retainers", "--at", "2026-01-14")
    cli("add", "Delta", "--at", "2026-01-15")
    cli("rm", "4", "--yes")
    _clean(cli)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations(DEFAULT), operations(TWELVE))
def test_whatever_the_commands_do_the_check_finds_nothing(tmp_path_factory, ours, twelve):
    """The property tests' random sequences of commands (refused ones included), in the
    default pipeline and in a twelve-stage one: the deals are what their events make."""
    for p, sequence in ((DEFAULT, ours), (TWELVE, twelve)):
        path = tmp_path_factory.mktemp("check") / "p.db"
        _run(path, p, sequence)
        conn = connect(path)
        try:
            found = check(conn)
        finally:
            conn.close()
        assert found.ok, found.problems
        assert found.differing == 0 and found.schema == []


def test_the_demo_checks_clean(cli, tmp_path) -> None:
    demo = tmp_path / "demo.db"
    cli("demo", "--path", str(demo))
    report = _clean(Cli(demo))
    assert report["deals"] >= 40


@pytest.mark.parametrize("fixture", ["schema_v1.db", "schema_v3.db"])
def test_databases_upgraded_from_old_schemas_check_clean(tmp_path, fixture) -> None:
    copy = tmp_path / fixture
    shutil.copyfile(FIXTURES / fixture, copy)
    report = _clean(Cli(copy))  # opening it upgrades it
    assert report["deals"] > 0 and report["events"] > report["deals"]


def test_real_crm_files_imported_check_clean(cli, real_data, tmp_path) -> None:
    maven = real_data / "maven_crm" / "sales_pipeline.csv"
    cli("import", str(maven), "--preset", "maven")  # the bulk (INSERT ... SELECT) path
    cli("import", str(maven), "--preset", "maven")  # seen again: nothing appended
    assert _clean(cli)["deals"] == 8800
    hubspot = sorted((real_data / "hubspot").glob("*.csv"))
    other = Cli(tmp_path / "hubspot.db")
    for f in hubspot:  # snapshots in order: deals updated by later files
        other("import", str(f), "--preset", "hubspot")
    _clean(other)
    sf = real_data / "salesforce"
    third = Cli(tmp_path / "sf.db")
    third("import", str(sf / "sfdc_sample_org_Opportunity.csv"), "--preset", "salesforce",
          "--history", str(sf / "sfdc_sample_org_OpportunityHistory.csv"))
    _clean(third)
    # pipectl's own export, imported into another database, with its history
    exported = tmp_path / "sf.json"
    third("export", "--format", "json", "--events", "-o", str(exported))
    _clean(Cli(tmp_path / "again.db"))
    Cli(tmp_path / "again.db")("import", str(exported))
    _clean(Cli(tmp_path / "again.db"))


def test_a_history_imported_after_the_gate_moved_checks_clean(cli, tmp_path, db_path) -> None:
    """An import projects a file's past with the pipeline as defined when it runs; the daily
    commands use the definition in force when each event happened. After a new version moved
    the gate, the two differ for the file's old deals: not tampering, and not told as such.
    A deal changed behind pipectl's back in such a database is still told."""
    definition = cli("pipeline", "export").stdout
    moved = definition.replace('probability = 20, gate = "checklist", ', "probability = 20, ")
    moved = moved.replace('label = "Demo or meeting", probability = 40, ',
                          'label = "Demo or meeting", probability = 40, gate = "checklist", ')
    assert moved.count('gate = "checklist"') == 1 and moved != definition
    path = tmp_path / "v2.toml"
    path.write_text(moved)
    cli("pipeline", "apply", str(path))
    csv = tmp_path / "old.csv"
    csv.write_text("name,stage,created at,closed at\nA,meeting,2020-01-01,\n"
                   "B,won,2020-01-01,2020-02-01\nC,proposal,2020-01-01,\n")
    cli("import", str(csv))
    _clean(cli)
    _sql(db_path, "UPDATE deals SET stage = 'proposal' WHERE name = 'A'")
    report = json_of(cli("db", "check", "--json", code=1).stdout)
    assert [d["id"] for d in report["differing"]] == [1]


def test_events_that_make_a_state_the_database_refuses_are_not_rebuilt(cli, db_path) -> None:
    """A rewritten event can make a state no deal may have (a stage its pipeline lacks): the
    deal is named, left as it is, and the rest of the repair still happens."""
    cli("add", "Acme", "--at", "2026-01-05")
    cli("add", "Beta", "--at", "2026-01-05")
    cli("lose", "1", "--reason", "price", "--at", "2026-01-06")
    _sql(db_path, "DROP TRIGGER events_no_update",
         "UPDATE events SET from_stage = 'nowhere' WHERE deal_id = 1 AND kind = 'lost'",
         "UPDATE deals SET stage = 'won', closed_at = '2026-01-07T00:00:00Z' WHERE id = 2")
    out = cli("db", "check", "--repair", code=1).stdout
    assert "recreated trigger events_no_update" in out
    assert "rebuilt 1 deal from its events: 2" in out
    assert "not rebuilt: deal 1: the database refuses what its events make of it" in out
    assert _rows(db_path, "SELECT lost_at_stage FROM deals WHERE id = 1") == [("prospecting",)]
    report = json_of(cli("db", "check", "--json", code=1).stdout)
    assert report["schema"] == [] and [d["id"] for d in report["differing"]] == [1]


def test_a_table_text_spelled_differently_is_not_called_altered(cli, db_path) -> None:
    """SQLite rewrites a table's text when another table is renamed (the upgrade to schema 4
    does), and not every version quotes the same: quoting and spacing are not a change. A
    constraint taken out is."""
    cli("add", "Acme")

    def rewrite(old: str, new: str) -> None:
        con = sqlite3.connect(db_path)
        try:
            (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'events'"
                                 ).fetchone()
            assert old in sql
            (version,) = con.execute("PRAGMA schema_version").fetchone()
            con.execute("PRAGMA writable_schema = ON")
            con.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?) "
                        "WHERE name = 'events'", (old, new))
            con.execute(f"PRAGMA schema_version = {version + 1}")
            con.commit()
        finally:
            con.close()

    rewrite('REFERENCES "deals"(id)', "REFERENCES  deals ( id )")
    _clean(cli)
    rewrite("CHECK (value_minor >= 0)", "CHECK (value_minor >= -1)")
    report = json_of(cli("db", "check", "--json", code=1).stdout)
    assert [(s["type"], s["name"], s["problem"]) for s in report["schema"]] == [
        ("table", "events", "altered")]


def test_a_read_only_database_is_checked_and_repair_is_refused_before_any_work(cli, db_path):
    cli("add", "Acme", "--at", "2026-01-05")
    _sql(db_path, "UPDATE deals SET probability = 3 WHERE id = 1")
    db_path.chmod(0o444)
    try:
        assert [d["id"] for d in json_of(cli("db", "check", "--json", code=1).stdout)[
            "differing"]] == [1]
        refused = cli("db", "check", "--repair", code=1)
        assert refused.stderr.startswith(f"error: {db_path} is read-only")
        assert refused.stdout == ""  # refused before the check ran
    finally:
        db_path.chmod(0o600)
    assert _rows(db_path, "SELECT probability FROM deals") == [(3,)]


def test_the_json_keys_are_stable(cli) -> None:
    cli("add", "Acme")
    report = cli.json("db", "check")
    assert list(report) == ["path", "ok", "deals", "events", "integrity", "schema",
                            "orphan_rows", "deals_differing", "differing",
                            "read_models_differing", "problems", "repaired"]
    assert (report["integrity"], report["repaired"]) == ("ok", None)
    repaired = cli.json("db", "check", "--repair")["repaired"]
    assert list(repaired) == ["objects", "deals", "deal_ids", "unrepaired",
                              "append_only_triggers_were_missing", "read_models"]
