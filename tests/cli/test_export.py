"""pipectl export: CSV and JSON, status filter, events, formula neutralising, never overwrite."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path


def _seed(cli) -> None:
    cli("add", "=HYPERLINK(\"http://evil\")", "--company", "@Acme", "--value", "1200.50",
        "--currency", "EUR", "--at", "2026-01-05")
    cli("add", "Plain deal", "--company", "-dash", "--value", "10", "--at", "2026-01-06")
    cli("lose", "2", "--reason", "+price", "--at", "2026-01-07")


def test_csv_neutralises_formula_cells_by_default(cli, tmp_path: Path) -> None:
    _seed(cli)
    out = cli("export").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["'=HYPERLINK(\"http://evil\")", "Plain deal"]
    assert [r["company"] for r in rows] == ["'@Acme", "'-dash"]
    assert rows[1]["lost_reason"] == "'+price"
    assert (rows[0]["value"], rows[0]["currency"]) == ("1200.50", "EUR")
    raw = list(csv.DictReader(io.StringIO(cli("export", "--raw").stdout)))
    assert raw[0]["name"] == "=HYPERLINK(\"http://evil\")"


def test_csv_round_trip_through_import(cli, tmp_path: Path) -> None:
    _seed(cli)
    target = tmp_path / "deals.csv"
    cli("export", "-o", str(target))
    other = cli.another("other.db")
    other("import", str(target))
    before = {d["name"]: (d["company"], d["stage"], d["value"], d["lost_reason"])
              for d in cli.json("list", "--status", "all")}
    after = {d["name"]: (d["company"], d["stage"], d["value"], d["lost_reason"])
             for d in other.json("list", "--status", "all")}
    assert after == before


def test_json_with_events_and_status(cli, tmp_path: Path) -> None:
    _seed(cli)
    data = json.loads(cli("export", "--format", "json", "--events").stdout)
    assert data["pipectl_export"] == 2 and len(data["deals"]) == 2
    lost = data["deals"][1]
    assert (lost["pipeline"], lost["checklist"]) == ("default", None)
    assert [e["kind"] for e in lost["events"]] == ["created", "lost"]
    assert lost["events"][1] == {"id": 3, "at": "2026-01-07T00:00:00Z", "kind": "lost",
                                 "pipeline": "default", "from_stage": "prospecting",
                                 "to_stage": "lost", "reason": "+price"}
    assert data["deals"][0]["value"] == "1200.50"  # money as exact decimal strings
    won_only = json.loads(cli("export", "--format", "json", "--status", "lost").stdout)
    assert [d["name"] for d in won_only["deals"]] == ["Plain deal"]
    assert "events" not in won_only["deals"][0]
    empty = json.loads(cli("export", "--format", "json", "--status", "won").stdout)
    assert empty["deals"] == []


def test_csv_event_log(cli) -> None:
    _seed(cli)
    rows = list(csv.DictReader(io.StringIO(cli("export", "--events").stdout)))
    assert [(r["deal_id"], r["kind"]) for r in rows] == [("1", "created"), ("2", "created"),
                                                          ("2", "lost")]
    assert rows[2]["reason"] == "'+price"


def test_never_overwrites_and_bad_options(cli, tmp_path: Path) -> None:
    _seed(cli)
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    result = cli("export", "-o", str(target), code=2)
    assert "never overwrites" in result.stderr
    assert target.read_text() == "keep me"
    assert "is not csv or json" in cli("export", "--format", "xml", code=2).stderr
    assert "--status" in cli("export", "--status", "maybe", code=2).stderr
    fresh = tmp_path / "fresh.json"
    done = cli("export", "--format", "json", "-o", str(fresh))
    assert "Exported 2 deals" in done.stderr
    assert json.loads(fresh.read_text())["deals"][1]["name"] == "Plain deal"


def test_json_carries_the_definitions_of_its_pipelines_before_the_deals(cli, tmp_path: Path
                                                                         ) -> None:
    from pipectl.domain import pipeline_file
    from pipectl.domain.pipeline import from_json

    _seed(cli)
    agency = tmp_path / "agency.toml"
    agency.write_text('name = "Agency retainers"\nstages = [\n  { key = "lead", probability = 5 },'
                      '\n  { key = "signed", kind = "won" },\n]\n', encoding="utf-8")
    cli("pipeline", "apply", str(agency))
    text = cli("export", "--format", "json").stdout
    data = json.loads(text)
    assert list(data) == ["pipectl_export", "exported_at", "status", "events", "pipelines",
                          "rates", "deals"]
    assert data["rates"] == []  # none recorded (test_rates.py: with rates)
    # the pipelines its deals name (none is in Agency retainers), each on a line of its own
    assert [(p["name"], p["default"]) for p in data["pipelines"]] == [("default", True)]
    assert text.count("\n    {\"name\": \"default\", \"default\": true, \"definition\": {") == 1
    definition = data["pipelines"][0]["definition"]
    assert pipeline_file.dump(from_json(json.dumps(definition))) == \
        cli("pipeline", "export", "default").stdout
    # no deals: every pipeline
    none = json.loads(cli("export", "--format", "json", "--status", "won").stdout)
    assert [p["name"] for p in none["pipelines"]] == ["default", "Agency retainers"]
    assert none["pipelines"][1]["definition"]["stages"][0] == {
        "key": "lead", "label": "Lead", "kind": "open", "probability": 5, "rot_days": None,
        "gate": False, "skippable": False, "action": "", "aliases": [], "meaning": "",
        "leaves_when": ""}
    # the CSV pair has no place for them
    assert "Agency" not in cli("export").stdout + cli("export", "--events").stdout
