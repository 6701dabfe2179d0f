"""Every real CRM export in shared/data/real imports as it is, with its documented command.

The commands here are the ones docs/import-export.md shows. Skipped, with the reason, where
the real files are not beside the repository.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests import engines

PIPEDRIVE_STAGES = [
    "Kolejka (darmowa)=prospecting", "Kolejka=prospecting", "Kandydaci=prospecting",
    "Zakwalifikowani=qualification", "Propozycja konsultacji=qualification",
    "Odbyte konsultacje=meeting", "Analiza CV=meeting", "Po konsultacji CV=meeting",
    "Propozycja warsztatów=proposal", "Po warsztatach CV=proposal", "Po warsztatach=proposal",
    "Symulacja 1=negotiation", "Symulacja 2=negotiation", "Po symulacjach=negotiation",
    "Po rozmowie 1=negotiation", "Po rozmowie 2=negotiation",
    "Przekazani do partnerów=negotiation",
]


def _rows(db: engines.Target, sql: str, *params) -> list[tuple]:
    return engines.rows(db, sql, params)


def _coherent(db: engines.Target) -> None:
    """Every deal's events are in time order and its row agrees with them."""
    bad = _rows(
        db, """SELECT d.id FROM deals d WHERE
                 d.created_at != (SELECT min(at) FROM events e WHERE e.deal_id = d.id)
              OR d.updated_at != (SELECT max(at) FROM events e WHERE e.deal_id = d.id)
              OR (SELECT to_stage FROM events e WHERE e.deal_id = d.id
                  AND to_stage IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1) != d.stage
              OR (SELECT to_stage FROM events e WHERE e.deal_id = d.id AND kind = 'created')
                  NOT IN ('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')
              OR (d.stage IN ('won', 'lost')) != (d.closed_at IS NOT NULL)""")
    order = _rows(db, """SELECT count(*) FROM events a JOIN events b
                         ON a.deal_id = b.deal_id AND b.id > a.id AND b.at < a.at""")[0][0]
    assert bad == []
    assert order == 0


def test_maven_sales_pipeline(cli, db_path: Path, real_data: Path) -> None:
    out = cli.json("import", str(real_data / "maven_crm" / "sales_pipeline.csv"),
                   "--preset", "maven")
    assert (out["rows"], out["added"], out["bad_rows"]) == (8800, 8800, 0)
    assert out["unmapped"] == ["product"]
    stages = dict(_rows(db_path, "SELECT stage, count(*) FROM deals GROUP BY stage"))
    assert stages == {"won": 4238, "lost": 2473, "meeting": 1589, "prospecting": 500}
    # a won deal: created engaging (meeting) at engage_date, won at close_date
    deal = cli.json("show", "1")
    assert (deal["ref"], deal["name"], deal["owner"]) == ("1C1I7A6R", "Cancity", "Moses Frase")
    assert (deal["value"], deal["currency"]) == ("1054.00", "USD")
    assert [(e["at"], e["kind"], e.get("to_stage")) for e in deal["events"]] == [
        ("2016-10-20T00:00:00Z", "created", "meeting"),
        ("2017-03-01T00:00:00Z", "stage", "won"),
    ]
    # lost deals carry close_value 0: that is "not recorded", not a value of zero
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE stage = 'lost' AND "
                          "value_minor IS NOT NULL") == [(0,)]
    # no account: the name falls back to the ref
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE company IS NULL AND name = ref") == [
        (1425,)]
    _coherent(db_path)
    again = cli.json("import", str(real_data / "maven_crm" / "sales_pipeline.csv"),
                     "--preset", "maven")
    assert (again["added"], again["updated"], again["unchanged"], again["events"]) == (
        0, 0, 8800, 0)


@pytest.mark.parametrize(
    "name", ["accounts.csv", "products.csv", "sales_teams.csv", "data_dictionary.csv"]
)
def test_maven_side_tables_are_refused_clearly(cli, real_data: Path, name: str) -> None:
    """The other Maven files hold no deals: one clear line, nothing written."""
    result = cli("import", str(real_data / "maven_crm" / name), code=2)
    assert "no column gives the deals a name" in result.stderr


def test_hubspot_snapshots_in_order(cli, db_path: Path, real_data: Path) -> None:
    folder = real_data / "hubspot"
    first = cli.json("import", str(folder / "hubspot-crm-exports-all-deals-2023-04-03.masked.csv"))
    assert (first["preset"], first["added"], first["bad_rows"]) == ("hubspot", 87, 0)
    second = cli.json("import", str(folder / "hubspot-crm-exports-all-deals-2023-05-09.masked.csv"),
                      "--preset", "hubspot")
    assert second["added"] + second["updated"] + second["unchanged"] == 84
    third = cli.json("import", str(folder / "hubspot-crm-exports-all-deals-2023-05-16.masked.csv"),
                     "--preset", "hubspot")
    assert third["added"] + third["updated"] + third["unchanged"] == 87
    # the 05-16 "all properties" export's own probability (a fraction) is the deal's
    assert third["mapped"]["probability"] == "Deal probability"
    refs = set()
    for f in folder.glob("*.csv"):
        text = f.read_text(encoding="utf-8-sig").splitlines()[1:]
        refs |= {line.split(",")[0].strip('"') for line in text}
    assert _rows(db_path, "SELECT count(*) FROM deals") == [(len(refs),)]
    # 'Closed: abandoned' is a loss whose reason says so
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE lost_reason = 'Closed: abandoned'"
                 )[0][0] >= 26
    # the deal with no stage at all is a prospect; amounts like 100000.0 are exact
    assert _rows(db_path, "SELECT stage FROM deals WHERE ref = '7134651618'") == [
        ("prospecting",)]
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE value_minor = 10000000")[0][0] >= 5
    _coherent(db_path)


def test_salesforce_opportunities_with_their_history(cli, db_path: Path, real_data: Path) -> None:
    folder = real_data / "salesforce"
    opp = folder / "sfdc_sample_org_Opportunity.csv"
    hist = folder / "sfdc_sample_org_OpportunityHistory.csv"
    alone = cli("import", str(hist), code=2)
    assert "--history" in alone.stderr
    assert _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]
    out = cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist))
    assert (out["added"], out["history_rows"], out["bad_rows"]) == (31, 62, 0)
    stages = Counter(dict(_rows(db_path, "SELECT stage, count(*) FROM deals GROUP BY stage")))
    assert stages["won"] == 18
    assert sum(stages.values()) == 31
    # the history's close-date change is an event of its own
    won = _rows(db_path, "SELECT id FROM deals WHERE ref = '0064600000J5S5VAAV'")[0][0]
    deal = cli.json("show", str(won))
    kinds = [(e["kind"], e.get("to_stage"), e.get("close_date")) for e in deal["events"]]
    assert kinds == [
        ("created", "negotiation", "2013-09-16"),
        ("stage", "won", None),
        ("close_date", None, "2018-07-06"),
    ]
    # won when its history says (its first row, at its creation), not at its CloseDate
    assert deal["closed_at"] == "2018-10-13T17:16:45Z"
    assert deal["close_date"] == "2018-07-06"
    assert deal["value"] == "220000.00"
    _coherent(db_path)


def test_salesforce_opportunities_alone(cli, db_path: Path, real_data: Path) -> None:
    out = cli.json("import", str(real_data / "salesforce" / "sfdc_sample_org_Opportunity.csv"))
    assert (out["preset"], out["added"]) == ("salesforce", 31)
    _coherent(db_path)


def test_pipedrive_needs_its_stages_mapped(cli, db_path: Path, real_data: Path) -> None:
    f = real_data / "pipedrive" / "ambiwalencja_pipedrive_deals_export.csv"
    refused = cli("import", str(f), "--preset", "pipedrive", code=2)
    assert "unknown stages in column 'Deal - Stage'" in refused.stderr
    assert '--stage-map "' in refused.stderr
    assert _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]
    args = ["import", str(f), "--preset", "pipedrive", "--map", "Deal - Nazwa kursu=name"]
    for item in PIPEDRIVE_STAGES:
        args += ["--stage-map", item]
    out = cli.json(*args)
    assert (out["added"], out["bad_rows"]) == (3253, 0)
    assert "Deal - Źródło finansowania" in out["unmapped"]
    status = Counter()
    for stage, n in _rows(db_path, "SELECT stage, count(*) FROM deals GROUP BY stage"):
        status[{"won": "won", "lost": "lost"}.get(stage, "open")] += n
    assert status == {"open": 1756, "lost": 1479, "won": 18}
    # Polish diacritics survive, and the lost reason is the file's
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE lost_reason = "
                          "'4.3 Samodzielnie znalazł pracę'") == [(223,)]
    # a lost deal died at the stage the file shows it in
    assert _rows(db_path, "SELECT lost_at_stage FROM deals WHERE ref = '186085'") in (
        [("prospecting",)], [("qualification",)], [("meeting",)], [("proposal",)],
        [("negotiation",)], [(None,)])
    _coherent(db_path)
    listed = json.loads(cli("list", "--status", "won", "--json").stdout)
    assert len(listed) == 18


def test_reports_on_imported_maven_data(cli, real_data: Path) -> None:
    """Win rate, close rate and cycle computed from the imported histories match the file."""
    cli("import", str(real_data / "maven_crm" / "sales_pipeline.csv"), "--preset", "maven")
    report = cli.json("report")
    assert report["deals"] == {"open": 2089, "won": 4238, "lost": 2473, "total": 8800}
    assert (report["win_rate"]["won"], report["win_rate"]["lost"]) == (4238, 2473)
    # every engaged deal (won, lost or still engaging) is qualified; prospects are not
    assert report["close_rate"]["qualified"] == 8300
    assert report["lost_reasons"]["by_reason"] == [
        {"reason": "no reason recorded", "count": 2473, "value": {}}]
    # sales cycle = engage_date to close_date of the won deals, as in the file
    import csv

    with (real_data / "maven_crm" / "sales_pipeline.csv").open(encoding="utf-8") as fh:
        from datetime import date

        days = sorted(
            (date.fromisoformat(r["close_date"]) - date.fromisoformat(r["engage_date"])).days
            for r in csv.DictReader(fh) if r["deal_stage"] == "Won"
        )
    assert report["sales_cycle"]["count"] == len(days)
    assert report["sales_cycle"]["median_days"] == (days[len(days) // 2 - 1] + days[
        len(days) // 2]) / 2


def test_maven_into_a_pipeline_made_from_its_stages(cli, db_path: Path, real_data: Path) -> None:
    """--create-pipeline: Maven's own stages, in the order the preset knows them."""
    out = cli.json("import", str(real_data / "maven_crm" / "sales_pipeline.csv"),
                   "--create-pipeline", "Maven")
    assert (out["added"], out["pipeline"], out["pipeline_created"]) == (8800, "Maven", True)
    shown = cli.json("pipeline", "show", "Maven")
    assert [(s["key"], s["kind"]) for s in shown["stages"]] == [
        ("prospecting", "open"), ("engaging", "open"), ("won", "won"), ("lost", "lost")]
    stages = dict(_rows(db_path, "SELECT stage, count(*) FROM deals GROUP BY stage"))
    assert stages == {"won": 4238, "lost": 2473, "engaging": 1589, "prospecting": 500}
    # won and lost deals were engaging first, as the preset says of Maven
    assert _rows(db_path, "SELECT DISTINCT lost_at_stage FROM deals WHERE stage = 'lost'") == [
        ("engaging",)]
    again = cli.json("import", str(real_data / "maven_crm" / "sales_pipeline.csv"),
                     "--pipeline", "Maven")
    assert (again["added"], again["unchanged"]) == (0, 8800)


def test_hubspot_into_a_pipeline_made_from_its_stages(cli, db_path: Path,
                                                      real_data: Path) -> None:
    f = real_data / "hubspot" / "hubspot-crm-exports-all-deals-2023-04-03.masked.csv"
    out = cli.json("import", str(f), "--create-pipeline", "HubSpot")
    assert (out["added"], out["bad_rows"]) == (87, 0)
    shown = cli.json("pipeline", "show", "HubSpot")
    kinds = [s["kind"] for s in shown["stages"]]
    assert kinds.count("won") == 1 and kinds[-1] == "lost" and "open" in kinds
    opens = [s["probability"] for s in shown["stages"] if s["kind"] == "open"]
    assert opens[0] == 10 and opens[-1] == 90 and opens == sorted(opens)
    # 'Closed: abandoned' is still a loss whose reason says so
    assert _rows(db_path, "SELECT count(*) FROM deals WHERE lost_reason = 'Closed: abandoned'"
                 )[0][0] >= 1
    _coherent_in(db_path, shown)


def _coherent_in(db: engines.Target, shown: dict) -> None:
    """Every deal's events are in time order, each deal created in an open stage."""
    opens = tuple(s["key"] for s in shown["stages"] if s["kind"] == "open")
    bad = _rows(db, f"""SELECT count(*) FROM events WHERE kind = 'created'
                       AND to_stage NOT IN ({', '.join('?' * len(opens))})""", *opens)[0][0]
    assert bad == 0
