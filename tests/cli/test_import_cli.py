"""pipectl import on small hand-made files: maps, stages, dates, encodings, bad rows, re-import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import engines
from tests.engines import state as tree_state


def _write(tmp_path: Path, text: str, name: str = "in.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def _count(db: engines.Target, table: str = "deals") -> int:
    return engines.rows(db, f"SELECT count(*) FROM {table}")[0][0]


SHEET = (
    "Deal Title,Worth,Phase,Opened,Closed,Why,Who\n"
    'Acme renewal,"1,234.50",Proposal,3/1/2024,,,Anna\n'
    "Globex,100000.0,Closed Won,2024-01-05 09:30,2024-02-01,,Ben\n"
    "Initech,,Closed Lost,2024-01-10,2024-01-20,budget cut,Anna\n"
)
MAPS = ["--map", "Deal Title=name", "--map", "Worth=value", "--map", "Phase=stage",
        "--map", "Opened=created_at", "--map", "Closed=closed_at", "--map", "Why=lost_reason",
        "--map", "Who=owner"]


def test_generic_spreadsheet_with_maps(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, SHEET)
    out = cli.json("import", str(f), *MAPS, "--currency", "EUR")
    assert (out["rows"], out["added"], out["bad_rows"], out["unmapped"]) == (3, 3, 0, [])
    deals = {d["name"]: d for d in cli.json("list", "--status", "all")}
    acme, globex, initech = deals["Acme renewal"], deals["Globex"], deals["Initech"]
    assert (acme["stage"], acme["value"], acme["currency"]) == ("proposal", "1234.50", "EUR")
    assert acme["created_at"] == "2024-03-01T00:00:00Z"
    assert (globex["stage"], globex["value"], globex["closed_at"]) == (
        "won", "100000.00", "2024-02-01T00:00:00Z")
    assert (initech["stage"], initech["lost_at_stage"], initech["lost_reason"]) == (
        "lost", "prospecting", "budget cut")
    shown = cli.json("show", str(globex["id"]))
    assert [(e["at"], e["kind"], e.get("from_stage"), e.get("to_stage"))
            for e in shown["events"]] == [
        ("2024-01-05T09:30:00Z", "created", None, "negotiation"),
        ("2024-02-01T00:00:00Z", "stage", "negotiation", "won"),
    ]
    lost = cli.json("show", str(initech["id"]))
    assert [(e["kind"], e.get("from_stage"), e.get("reason")) for e in lost["events"]] == [
        ("created", None, None), ("lost", "prospecting", "budget cut")]


def test_dayfirst(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "name,created_at\nA,3/1/2024\n")
    cli("import", str(f), "--dayfirst")
    assert cli.json("list")[0]["created_at"] == "2024-01-03T00:00:00Z"


def test_columns_named_like_fields_need_no_map(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "name,Company,value,currency,Close Date,extra\n"
                         "A,Acme,10,GBP,2026-12-01,x\n")
    out = cli.json("import", str(f))
    assert out["unmapped"] == ["extra"]
    deal = cli.json("list")[0]
    assert (deal["company"], deal["value"], deal["currency"], deal["close_date"]) == (
        "Acme", "10.00", "GBP", "2026-12-01")


def test_name_falls_back_to_company_then_ref(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "ref,company\nR1,Acme\nR2,\n")
    cli("import", str(f))
    assert sorted(d["name"] for d in cli.json("list")) == ["Acme", "R2"]


def test_unknown_stage_names_the_value_and_the_fix(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "name,stage\nA,prospecting\nB,Hot lead\n")
    cli("list")  # create the database
    before = tree_state(db_path)
    result = cli("import", str(f), code=2)
    assert "unknown stage in column 'stage': 'Hot lead' (row 3)" in result.stderr
    assert '--stage-map "Hot lead=STAGE"' in result.stderr
    assert tree_state(db_path) == before
    cli("import", str(f), "--stage-map", "Hot lead=proposal")
    assert sorted(d["stage"] for d in cli.json("list")) == ["proposal", "prospecting"]


def test_bad_rows_are_reported_and_nothing_is_written(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "name,value,created_at,probability\nA,10,2024-01-01,5\n"
                         "B,ten,2024-13-01,\nC,5,2024-01-02,150\n")
    result = cli("import", str(f), code=1)
    assert "row 3, column 'value': 'ten' is not an amount" in result.stderr
    assert "row 3, column 'created_at': '2024-13-01' is not a date" in result.stderr
    assert "row 4, column 'probability': '150' is not a whole percentage" in result.stderr
    assert "2 bad rows" in result.stderr and "nothing was imported" in result.stderr
    assert _count(db_path) == 0
    report = json.loads(cli("import", str(f), "--json", code=1).stdout)
    assert report["bad_rows"] == 2
    assert {"file": str(f), "row": 3, "column": "value",
            "reason": "'ten' is not an amount"} in [
        {**e, "reason": e["reason"].split(" (")[0]} for e in report["errors"]]


def test_dry_run_reports_and_writes_nothing(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, SHEET)
    out = cli.json("import", str(f), *MAPS, "--dry-run")
    assert (out["dry_run"], out["added"]) == (True, 3)
    assert _count(db_path) == 0 and _count(db_path, "events") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "Nope=name"], "--map: the file has no column 'Nope'"),
        (["--map", "name=colour"], "unknown field 'colour'"),
        (["--map", "name"], "has no '='"),
        (["--preset", "zoho"], "unknown preset 'zoho'"),
        (["--stage-map", "x=nowhere"], "unknown stage 'nowhere'"),
        (["--format", "xml"], "is not csv or json"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
    ],
)
def test_bad_options_are_one_clear_line(cli, tmp_path: Path, args: list[str], message: str):
    f = _write(tmp_path, "name\nA\n")
    result = cli("import", str(f), *args, code=2)
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_and_empty_files(cli, tmp_path: Path) -> None:
    assert "no such file" in cli("import", str(tmp_path / "nope.csv"), code=2).stderr
    empty = _write(tmp_path, "", "empty.csv")
    assert "empty" in cli("import", str(empty), code=2).stderr
    bad_json = _write(tmp_path, "{", "x.json")
    assert "not valid JSON" in cli("import", str(bad_json), code=2).stderr


def test_encodings_bom_cp1252_and_named(cli, tmp_path: Path) -> None:
    names = ["Zoë Ångström", "Renée Müller", "Café Français"]
    text = "name\n" + "\n".join(names) + "\n"
    cli("import", str(_write(tmp_path, "\ufeff" + text, "bom.csv")))
    cli("import", str(_write(tmp_path, text, "legacy.csv", encoding="cp1252")))
    cli("import", str(_write(tmp_path, text, "latin.csv", encoding="latin-1")),
        "--encoding", "latin-1", "--again")  # the bytes of legacy.csv: imported before
    got = sorted(d["name"] for d in cli.json("list"))
    assert got == sorted(names * 3)


def test_semicolon_files_and_formula_cells_restored(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "name;company\n'=HYPERLINK(x);'@Acme\nplain;'t Hooft\n")
    cli("import", str(f))
    got = {d["name"]: d["company"] for d in cli.json("list")}
    assert got == {"=HYPERLINK(x)": "@Acme", "plain": "'t Hooft"}


def test_reimport_by_ref_appends_events_for_changes(cli, tmp_path: Path) -> None:
    first = _write(tmp_path, "ref,name,stage,value,updated_at\nX1,Acme,qualification,100,"
                             "2024-01-01\nX2,Beta,prospecting,5,2024-01-01\n", "a.csv")
    cli("import", str(first), "--map", "updated_at=updated_at")
    second = _write(tmp_path, "ref,name,stage,value,updated_at,closed_at\n"
                              "X1,Acme Corp,won,150,2024-02-01,2024-01-20\n"
                              "X2,Beta,prospecting,5,2024-02-01,\n", "b.csv")
    out = cli.json("import", str(second))
    assert (out["added"], out["updated"], out["unchanged"]) == (0, 1, 1)
    deals = {d["ref"]: d for d in cli.json("list", "--status", "all")}
    assert len(deals) == 2
    x1 = cli.json("show", str(deals["X1"]["id"]))
    assert (x1["name"], x1["stage"], x1["value"], x1["closed_at"]) == (
        "Acme Corp", "won", "150.00", "2024-01-20T00:00:00Z")
    assert [(e["kind"], e["at"]) for e in x1["events"]] == [
        ("created", "2024-01-01T00:00:00Z"),
        ("stage", "2024-01-20T00:00:00Z"),
        ("edit", "2024-02-01T00:00:00Z"),
        ("value", "2024-02-01T00:00:00Z"),
    ]
    assert x1["events"][1]["from_stage"] == "qualification"
    again = cli.json("import", str(second))
    assert (again["updated"], again["events"]) == (0, 0)


def test_reimport_lost_then_reopened(cli, tmp_path: Path) -> None:
    cli("import", str(_write(tmp_path, "ref,name,stage\nA,A,meeting\n", "1.csv")))
    cli("import", str(_write(tmp_path, "ref,name,status,lost_reason\nA,A,lost,price\n", "2.csv")))
    deal = cli.json("list", "--status", "all")[0]
    assert (deal["stage"], deal["lost_at_stage"], deal["lost_reason"]) == (
        "lost", "meeting", "price")
    cli("import", str(_write(tmp_path, "ref,name,stage\nA,A,proposal\n", "3.csv")))
    shown = cli.json("show", str(deal["id"]))
    assert [(e["kind"], e.get("to_stage")) for e in shown["events"]] == [
        ("created", "meeting"), ("lost", "lost"), ("reopened", "meeting"),
        ("stage", "proposal")]
    assert shown["lost_at_stage"] is None and shown["closed_at"] is None


def test_duplicate_refs_in_one_file_update_the_first(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "ref,name,stage\nA,First,prospecting\nA,First,meeting\n")
    out = cli.json("import", str(f))
    assert (out["added"], out["updated"]) == (1, 1)
    assert [d["stage"] for d in cli.json("list")] == ["meeting"]


def test_a_big_file_with_a_ref_twice_into_an_empty_pipeline(cli, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk road (a file over BULK_BYTES into an empty pipeline drops the indexes until
    its end) falls back to row by row for a ref twice, whose update reads the deal's notes:
    it once asked SQLite for the dropped index by name ('no such index: events_deal')."""
    from pipectl.transfer import common

    monkeypatch.setattr(common, "BULK_BYTES", 0)
    # past the row-by-row writer's first batch (2,000 rows): the update then reads the notes
    # already written
    rows = "".join(f"R{i},Deal {i},Company {i},first note {i},100\n" for i in range(2100))
    f = _write(tmp_path, "ref,name,company,note,value\n" + rows
               + "R5,Deal 5 again,Company 5,second note,200\n")
    out = cli.json("import", str(f))
    assert (out["added"], out["updated"]) == (2100, 1)
    shown = cli.json("show", "6")
    assert shown["name"] == "Deal 5 again"
    assert [e["text"] for e in shown["events"] if e["kind"] == "note"] == [
        "first note 5", "second note"]


def test_json_array_of_objects(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, json.dumps([{"name": "A", "value": 10, "stage": "proposal"},
                                     {"name": "B", "value": None}]), "rows.json")
    out = cli.json("import", str(f))
    assert out["added"] == 2
    assert {d["name"]: d["value"] for d in cli.json("list")} == {"A": "10.00", "B": None}


def test_summary_in_words(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, SHEET + "x,1,Proposal,,,,\n")
    out = cli("import", str(f), *MAPS).stdout
    assert "4 rows: 4 deals added" in out
    assert "1 deal had no creation time: created at its close time, else its last update, " \
        "else the import time" in out


def test_a_modification_time_before_creation_never_moves_the_creation(cli, tmp_path) -> None:
    f = _write(tmp_path, "name,stage,created_at,updated_at\nA,meeting,2024-03-01,2024-01-01\n")
    cli("import", str(f))
    deal = cli.json("show", "1")
    assert [(e["kind"], e["at"]) for e in deal["events"]] == [
        ("created", "2024-03-01T00:00:00Z")]


def test_a_made_up_name_never_renames_a_deal_on_reimport(cli, tmp_path) -> None:
    f = _write(tmp_path, "ref,company\nR1,Acme\n")
    cli("import", str(f))
    cli("edit", "1", "--name", "Acme renewal 2026")
    g = _write(tmp_path, "ref,company\nR1,Acme Group\n", "again.csv")
    cli("import", str(g))
    deal = cli.json("show", "1")
    assert (deal["name"], deal["company"]) == ("Acme renewal 2026", "Acme Group")


def test_prequalified_reason_counts_as_qualified_from_creation(cli, tmp_path) -> None:
    f = _write(tmp_path, "name,stage,prequalified,created_at\n"
                         "A,prospecting,met at a fair,2024-01-01\nB,prospecting,,2024-01-01\n")
    cli("import", str(f))
    deals = {d["name"]: d for d in cli.json("list")}
    assert (deals["A"]["qualified_at"], deals["A"]["prequalified_reason"]) == (
        "2024-01-01T00:00:00Z", "met at a fair")
    assert deals["B"]["qualified_at"] is None


def test_pipedrive_won_and_lost_times_both_feed_closed_at(cli, tmp_path) -> None:
    f = _write(tmp_path, '"Deal - ID","Deal - Title","Deal - Stage","Deal - Status",'
                         '"Deal - Deal created","Deal - Won time","Deal - Lost time"\n'
                         '"1","A","Lead In","Won","2024-01-01 10:00:00",'
                         '"2024-02-01 10:00:00",""\n'
                         '"2","B","Lead In","Lost","2024-01-01 10:00:00",'
                         '"","2024-03-01 10:00:00"\n')
    out = cli.json("import", str(f), "--stage-map", "Lead In=qualification")
    assert out["preset"] == "pipedrive"
    assert out["mapped"]["closed_at"] == "Deal - Won time, Deal - Lost time"
    deals = {d["name"]: d for d in cli.json("list", "--status", "all")}
    assert deals["A"]["closed_at"] == "2024-02-01T10:00:00Z"
    assert (deals["B"]["closed_at"], deals["B"]["lost_at_stage"]) == (
        "2024-03-01T10:00:00Z", "qualification")


FUTURE = (
    "name,created_at,stage,status,closed_at,close_date\n"
    "Fut,2030-01-01,prospecting,,,\n"
    "FutWon,2026-01-01,negotiation,won,2029-05-05,\n"
    "AliasWon,2026-01-01,Closed Won,,,2026-12-01\n"
)


def test_a_time_in_the_future_is_a_bad_cell(cli, db_path: Path, tmp_path: Path,
                                            monkeypatch) -> None:
    """A file's times are facts: after now (beyond the 5 minutes --at allows) they are bad
    cells, and nothing is written (a deal created in 2030 locked every later write)."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")
    result = cli("import", str(_write(tmp_path, FUTURE)), code=1)
    assert "row 2, column 'created_at': 2030-01-01 is in the future" in result.stderr
    assert "row 3, column 'closed_at': 2029-05-05 is in the future" in result.stderr
    assert "2 bad rows" in result.stderr and _count(db_path) == 0


def test_a_closed_deal_with_a_close_date_ahead_closes_now(cli, tmp_path: Path,
                                                          monkeypatch) -> None:
    """HubSpot's "Closed won" with its close date ahead: won at the import time (not in the
    future, where reports would count it open), with a warning; the deal stays writable."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")
    f = _write(tmp_path, "\n".join(FUTURE.splitlines()[::3]) + "\n")  # header and AliasWon
    out = cli.json("import", str(f))
    assert out["added"] == 1
    assert out["warnings"] == [{"count": 1, "text": "won or lost deal whose only close time "
                                "was an expected close date still to come: closed at the "
                                "import time"}]
    (deal,) = cli.json("list", "--status", "won")
    assert (deal["closed_at"], deal["close_date"]) == ("2026-11-27T10:00:00Z", "2026-12-01")
    assert cli.json("report")["deals"]["won"] == 1
    cli("note", str(deal["id"]), "kick-off booked")


def test_a_stage_history_row_in_the_future_is_refused(cli, db_path: Path, tmp_path: Path,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")
    opp = _write(tmp_path, "Id,Name,StageName,IsWon,IsClosed,CreatedDate\n"
                           "O1,Deal,Prospecting,false,false,2026-01-01T00:00:00Z\n", "opp.csv")
    hist = _write(tmp_path, "OpportunityId,CreatedDate,StageName\n"
                            "O1,2026-01-01T00:00:00Z,Prospecting\n"
                            "O1,2031-02-03T00:00:00Z,Qualification\n", "hist.csv")
    # a bad cell of the history file is a bad row as one of the deals file is (exit 1), in a
    # report that names the file
    result = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist), code=1)
    assert f"1 bad row in {hist}:\n" in result.stderr
    assert "row 3, column 'CreatedDate': 2031-02-03T00:00:00Z is in the future" in result.stderr
    assert _count(db_path) == 0


def test_pipectl_deals_csv_alone_says_what_it_leaves_out(cli, tmp_path: Path,
                                                         monkeypatch) -> None:
    """docs/import-export.md: deals.csv without --history brings the row's fields back, not
    the checklist, next step, qualified_at or ids; the summary lists those columns."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")
    cli("add", "Acme", "--company", "AcmeCo", "--value", "100", "--at", "2026-11-01")
    cli("qualify", "1", "--location", "--budget", "--authority", "--need", "--at", "2026-11-02")
    cli("advance", "1", "--at", "2026-11-05")
    cli("advance", "1", "--at", "2026-11-10")
    cli("note", "1", "call", "--next", "send deck", "--due", "2026-12-01", "--at", "2026-11-11")
    f = tmp_path / "deals.csv"
    cli("export", "-o", str(f))
    other = cli.another("other.db")
    out = other.json("import", str(f))
    assert out["unmapped"] == ["id", "pipeline", "qualified_at", "checklist", "next_action",
                               "next_due"]
    assert out["pipeline"] == "default"
    (deal,) = other.json("list", "--status", "all")
    shown = other.json("show", str(deal["id"]))
    assert (shown["stage"], shown["value"], shown["company"]) == ("meeting", "100.00", "AcmeCo")
    assert shown["qualified_at"] == shown["created_at"] == "2026-11-01T00:00:00Z"
    assert shown["prequalified_reason"] == "imported (file stage: meeting)"
    assert shown["next_action"] is None and set(shown["checklist"].values()) == {None}


def test_json_bad_rows_are_told_in_pipectl_words(cli, tmp_path: Path) -> None:
    """A plain array's first object is row 1 (it was row 2, as if it had a header line);
    pydantic's 'Field required' is 'missing'; one bad row is '1 bad row'."""
    arr = tmp_path / "deals.json"
    arr.write_text('[{"name": "A"}, {"name": "B", "value": "12,50"}]', encoding="utf-8")
    err = cli("import", str(arr), code=1).stderr
    assert err.startswith("1 bad row of 2 in ")
    assert "  row 2, column 'value': '12,50' is not an amount" in err
    partial = tmp_path / "partial.json"
    partial.write_text('{"format": "pipectl", "deals": [{"id": 1, "name": "A"}]}',
                       encoding="utf-8")
    err = cli("import", str(partial), code=1).stderr
    assert "  row 1, column 'stage': missing\n" in err
    assert "Field required" not in err


# ---------------------------------------------------------------- pipelines

AGENCY = """
name = "Agency retainers"
checklist = ["budget", "authority", "need"]
stages = [
  { key = "lead",      label = "New lead",       probability = 5 },
  { key = "discovery", label = "Discovery call", probability = 20, gate = "checklist" },
  { key = "pitch",     label = "Pitch",          probability = 50, skippable = true },
  { key = "signed",    label = "Signed",         kind = "won" },
  { key = "live",      label = "Live",           kind = "after_won" },
]
"""


def _agency(cli, tmp_path: Path) -> None:
    cli("pipeline", "apply", str(_write(tmp_path, AGENCY, "agency.toml")))


def test_pipeline_names_where_the_deals_go_and_whose_stages_are_read(cli, tmp_path: Path,
                                                                     monkeypatch) -> None:
    _agency(cli, tmp_path)
    f = _write(tmp_path, "ref,name,stage,status\nA,Acme,new lead,\nB,Beta,pitch,won\n"
                         "C,Gamma,Discovery call,lost\n")
    out = cli.json("import", str(f), "--pipeline", "agency retainers")
    assert (out["added"], out["pipeline"], out["pipeline_created"]) == (
        3, "Agency retainers", False)
    deals = {d["ref"]: d for d in cli.json("list", "--status", "all", "--pipeline",
                                           "Agency retainers")}
    assert {r: (d["pipeline"], d["stage"], d["lost_at_stage"]) for r, d in deals.items()} == {
        "A": ("Agency retainers", "lead", None), "B": ("Agency retainers", "signed", None),
        "C": ("Agency retainers", "lost", "discovery")}
    # PIPECTL_PIPELINE says the same; a stage of the default pipeline is unknown there
    monkeypatch.setenv("PIPECTL_PIPELINE", "Agency retainers")
    g = _write(tmp_path, "ref,name,stage\nD,Delta,proposal\n", "g.csv")
    refused = cli("import", str(g), code=2)
    assert "unknown stage in column 'stage': 'proposal' (row 2)" in refused.stderr
    assert "pipeline 'Agency retainers': lead, discovery, pitch, signed, live, lost" in \
        refused.stderr
    assert cli.json("import", str(g), "--pipeline", "default")["pipeline"] == "default"


def test_an_unknown_pipeline_is_one_line(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "name\nA\n")
    cli("list")
    before = tree_state(db_path)
    result = cli("import", str(f), "--pipeline", "nope", code=2)
    assert "no pipeline named 'nope'" in result.stderr and result.stderr.count("\n") == 1
    both = cli("import", str(f), "--pipeline", "default", "--create-pipeline", "x", code=2)
    assert "--pipeline and --create-pipeline" in both.stderr
    assert tree_state(db_path) == before


def test_create_pipeline_from_the_files_stages(cli, tmp_path: Path, monkeypatch) -> None:
    f = _write(tmp_path, "Deal Title,Phase\nA,Hot\nB,Warm\nC,Closed Won\nD,Cold\nE,Lost\n"
                         "F,Warm\n")
    # PIPECTL_PIPELINE gives way to --create-pipeline
    monkeypatch.setenv("PIPECTL_PIPELINE", "default")
    out = cli.json("import", str(f), "--map", "Deal Title=name", "--map", "Phase=stage",
                   "--create-pipeline", "Leads 2026")
    assert (out["added"], out["pipeline"], out["pipeline_created"]) == (6, "Leads 2026", True)
    shown = cli.json("pipeline", "show", "Leads 2026")
    stages = [(s["key"], s["label"], s["kind"], s["probability"]) for s in shown["stages"]]
    # first seen, open ones spread from 10 to 90 %; Closed Won the won stage; Lost the state
    assert stages == [("hot", "Hot", "open", 10), ("warm", "Warm", "open", 50),
                      ("cold", "Cold", "open", 90), ("closed_won", "Closed Won", "won", 100),
                      ("lost", "Closed lost", "lost", 0)]
    got = {d["name"]: d["stage"] for d in cli.json("list", "--status", "all", "--pipeline",
                                                   "Leads 2026")}
    assert got == {"A": "hot", "B": "warm", "C": "closed_won", "D": "cold", "E": "lost",
                   "F": "warm"}
    again = cli("import", str(f), "--map", "Deal Title=name", "--map", "Phase=stage",
                "--create-pipeline", "leads 2026", code=2)
    assert "a pipeline named 'leads 2026' exists already" in again.stderr
    words = cli("import", str(f), "--map", "Deal Title=name", "--map", "Phase=stage",
                "--pipeline", "Leads 2026", "--dry-run", "--again").stdout
    assert "into pipeline Leads 2026\n" in words


def test_a_stage_map_is_remembered_for_the_source_and_pipeline(cli, db_path: Path,
                                                               tmp_path: Path) -> None:
    _agency(cli, tmp_path)
    f = _write(tmp_path, "ref,name,stage\nA,Acme,Hot\nB,Beta,Cold\n")
    words = cli("import", str(f), "--pipeline", "Agency retainers",
                "--stage-map", "Hot=pitch", "--stage-map", "Cold=lead").stdout
    assert "stage map remembered (2 stage names)" in words
    saved = engines.rows(db_path, "SELECT pipeline_id, source, name, key FROM stage_maps "
                                  "ORDER BY name")
    assert saved == [(2, "csv:name,ref,stage", "cold", "lead"), (2, "csv:name,ref,stage", "hot",
                                                                 "pitch")]
    # the same columns again, with no flags: the remembered map reads them
    g = _write(tmp_path, "stage,ref,name\nHot,C,Gamma\n", "g.csv")
    out = cli.json("import", str(g), "--pipeline", "Agency retainers")
    assert (out["added"], out["stage_map_saved"]) == (1, 0)
    # not for another pipeline; and flags still win over what is remembered
    assert "unknown stage" in cli("import", str(g), code=2).stderr
    h = _write(tmp_path, "ref,name,stage\nC,Gamma,Hot\n", "h.csv")
    cli("import", str(h), "--pipeline", "Agency retainers", "--stage-map", "Hot=discovery")
    deals = {d["ref"]: d["stage"] for d in cli.json("list", "--status", "all", "--pipeline",
                                                    "Agency retainers")}
    assert deals == {"A": "pitch", "B": "lead", "C": "discovery"}


def test_a_failed_or_dry_import_keeps_no_stage_map_and_no_pipeline(cli, db_path: Path,
                                                                   tmp_path: Path) -> None:
    """The stage map and a --create-pipeline are written in the import's one transaction."""
    f = _write(tmp_path, "name,stage,value\nA,Hot,ten\n")
    cli("import", str(f), "--stage-map", "Hot=proposal", code=1)
    cli("import", str(f), "--stage-map", "Hot=proposal", "--dry-run", code=1)
    cli("import", str(f), "--create-pipeline", "Heat", code=1)
    g = _write(tmp_path, "name,stage,value\nA,Hot,10\n", "g.csv")
    cli("import", str(g), "--stage-map", "Hot=proposal", "--dry-run")
    out = cli.json("import", str(g), "--create-pipeline", "Heat", "--dry-run")
    assert (out["added"], out["pipeline_created"]) == (1, True)
    assert engines.rows(db_path, "SELECT count(*) FROM stage_maps") == [(0,)]
    assert engines.rows(db_path, "SELECT name FROM pipelines") == [("default",)]
    assert engines.rows(db_path, "SELECT count(*) FROM deals") == [(0,)]


# ---------------------------------------------------------------- an export into a fresh database

# (name, pipeline or None for the default, the commands after `add` that put it where it ends)
SCENARIO = [
    ("D prospect", None, []),
    ("D qualifying", None, [["advance"]]),
    ("D meeting", None, [["qualify", "location", "budget", "authority", "need"],
                         ["advance"], ["advance"]]),
    ("D proposal", "pre", [["advance"]]),
    ("D negotiation", "pre", [["advance"], ["advance"]]),
    ("D won", "pre", [["advance"], ["advance", "--to", "won"]]),
    ("D post-purchase", "pre", [["advance"], ["advance", "--to", "won"], ["advance"]]),
    ("D lost", None, [["advance"], ["lose", "--reason", "price"]]),
    ("A lead", "agency", []),
    ("A discovery", "agency", [["advance"]]),
    ("A pitch", "agency", [["advance"], ["qualify", "budget", "authority", "need"],
                           ["advance"]]),
    ("A signed", "agency pre", [["advance"]]),
    ("A live", "agency pre", [["advance"], ["advance"]]),
    ("A lost", "agency", [["advance"], ["qualify", "budget", "--not", "need"],
                          ["lose", "--reason", "no budget"]]),
    ("Moved", "pre", [["note", "retainer?", "--next", "call", "--due", "2026-02-20"],
                      ["move", "--pipeline", "Agency retainers", "--stage", "pitch"]]),
    ("Won moved", "pre", [["advance"], ["advance", "--to", "won"],
                          ["move", "--pipeline", "Agency retainers"]]),
    ("Lost moved", None, [["lose", "--reason", "timing"],
                          ["move", "--pipeline", "Agency retainers", "--stage", "lead"]]),
]


def _scenario(cli, tmp_path: Path, monkeypatch) -> Path:
    """A database with the default pipeline and AGENCY (a gate, an after-won stage), deals in
    every stage of each (lost and after-won included) and deals moved between them; its JSON
    export with events."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-03-01T09:00:00Z")
    _agency(cli, tmp_path)
    for day, (name, where, steps) in enumerate(SCENARIO, 1):
        add = ["add", name, "--value", str(1000 * day), "--at", f"2026-01-{day:02d}T09:00:00Z"]
        if where and "agency" in where:
            add += ["--pipeline", "Agency retainers"]
        if where and "pre" in where:
            add += ["--stage", "pitch" if "agency" in where else "meeting",
                    "--prequalified", "referral"]
        deal = cli.json(*add)["id"]
        for hour, step in enumerate(steps, 1):
            cli(step[0], str(deal), *step[1:], "--at", f"2026-01-{day:02d}T{9 + hour:02d}:00:00Z")
    out = tmp_path / "all.json"
    cli("export", "--format", "json", "--events", "-o", str(out))
    return out


def _everything(cli) -> dict:
    deals = cli.json("list", "--status", "all")
    return {
        "report": cli.json("report"),
        "pipelines": [cli("pipeline", "export", p).stdout for p in ("default",
                                                                    "Agency retainers")],
        "deals": {d["id"]: cli.json("show", str(d["id"])) for d in deals},
    }


def test_an_export_imports_into_a_fresh_database_exactly(cli, tmp_path: Path,
                                                          monkeypatch) -> None:
    """The export carries the definitions of its pipelines: a fresh database gets them, and
    reports, pipeline definitions and every deal (ids kept) are the same on both sides."""
    out = _scenario(cli, tmp_path, monkeypatch)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [(p["name"], p["default"]) for p in data["pipelines"]] == [
        ("default", True), ("Agency retainers", False)]
    stages = {(d["pipeline"], d["stage"]) for d in data["deals"]}
    assert {s for p, s in stages if p == "default"} >= {
        "prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
        "post_purchase", "lost"}
    assert {s for p, s in stages if p == "Agency retainers"} == {
        "lead", "discovery", "pitch", "signed", "live", "lost"}
    fresh = cli.another("fresh.db")
    words = fresh("import", str(out)).stdout
    assert "  created pipeline 'Agency retainers' from the file\n" in words
    assert f"{len(SCENARIO)} deals added" in words
    before, after = _everything(cli), _everything(fresh)
    assert after["pipelines"] == before["pipelines"]
    assert after["report"] == before["report"]
    assert sorted(after["deals"]) == list(range(1, len(SCENARIO) + 1))
    assert after["deals"] == before["deals"]
    # and again: nothing changes, nothing is created
    again = fresh.json("import", str(out))
    assert (again["added"], again["unchanged"], again["pipelines_created"]) == (
        0, len(SCENARIO), [])


def test_a_dry_run_creates_no_pipeline_and_a_bad_definition_is_one_line(
        cli, tmp_path: Path, monkeypatch) -> None:
    out = _scenario(cli, tmp_path, monkeypatch)
    fresh = cli.another("fresh.db")
    dry = fresh.json("import", str(out), "--dry-run")
    assert (dry["added"], dry["pipelines_created"]) == (len(SCENARIO), ["Agency retainers"])
    assert [p["name"] for p in fresh.json("pipeline", "list")] == ["default"]
    assert fresh.json("list", "--status", "all") == []
    data = json.loads(out.read_text(encoding="utf-8"))
    data["pipelines"][1]["definition"]["stages"][3]["kind"] = "open"  # no won stage left
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    before = tree_state(fresh.db)
    err = fresh("import", str(bad), code=2).stderr
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {bad}: the file's definition of pipeline 'Agency retainers' "
                          "is not valid: ")
    assert "won" in err
    assert tree_state(fresh.db) == before


def test_a_pipeline_the_database_has_is_used_as_it_is(cli, tmp_path: Path,
                                                      monkeypatch) -> None:
    """Its definition, not the file's: a deal in a stage it lacks is a bad row."""
    out = _scenario(cli, tmp_path, monkeypatch)
    other = cli.another("other.db")
    no_live = AGENCY.replace('  { key = "live",      label = "Live",           '
                             'kind = "after_won" },\n', "")
    other("pipeline", "apply", str(_write(tmp_path, no_live, "no_live.toml")))
    failed = json.loads(other("import", str(out), "--json", code=1).stdout)
    assert failed["pipelines_created"] == []
    assert [(e["row"], e["reason"]) for e in failed["errors"]] == [
        (13, "'live' is not a stage of pipeline 'Agency retainers'")]


def test_create_pipeline_from_a_file_without_definitions_knows_after_won_stages(
        cli, tmp_path: Path, monkeypatch) -> None:
    """An older format-2 file (no "pipelines"): --create-pipeline makes the pipeline of its
    stage names, a won deal's stage reached from its won stage an after-won stage."""
    out = _scenario(cli, tmp_path, monkeypatch)
    data = json.loads(out.read_text(encoding="utf-8"))
    del data["pipelines"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    fresh = cli.another("fresh.db")
    assert "which this database does not have" in fresh("import", str(old), code=2).stderr
    done = fresh.json("import", str(old), "--create-pipeline", "Agency retainers")
    assert (done["added"], done["pipeline_created"]) == (len(SCENARIO), True)
    toml = fresh("pipeline", "export", "Agency retainers").stdout
    assert [line.split(",")[0].strip(" {") for line in toml.splitlines() if "key =" in line] \
        == ['key = "lead"', 'key = "discovery"', 'key = "pitch"', 'key = "signed"',
            'key = "live"']
    assert '{ key = "signed", label = "signed", kind = "won" }' in toml
    assert '{ key = "live", label = "live", kind = "after_won" }' in toml
    # with the definitions in the file, --create-pipeline makes the pipeline they define
    exact = cli.another("exact.db")
    words = exact("import", str(out), "--create-pipeline", "Agency retainers").stdout
    assert "  into pipeline Agency retainers\n  created pipeline 'Agency retainers' from the " \
           "file\n" in words
    assert exact("pipeline", "export", "Agency retainers").stdout == \
        cli("pipeline", "export", "Agency retainers").stdout
    assert _everything(exact)["deals"] == _everything(cli)["deals"]
