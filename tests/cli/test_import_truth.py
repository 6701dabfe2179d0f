"""Imported histories say what the files say, and no more (issue 12, H2).

- a stage history's amounts are read in each row's own currency, else its deal's, else
  ``--currency``; an error about an amount names the currency it was read in;
- a lost deal is lost at the last open stage its history shows, with the deals file's reason;
- with a stage history, the history's moments drive the past (``report --as-of``);
- a later snapshot never closes a deal before the moment it was last known open;
- what a file cannot tell (qualification, close time, start) is left out of close rate and
  sales cycle, and the report says so; a file's own probability column is the deal's.

Small files written here reproduce each case; the real Salesforce and HubSpot exports are
checked against figures computed from their raw CSV with the csv module (never with pipectl).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

NOW = "2026-12-01T09:00:00Z"


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


def _write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def _warnings(summary: dict[str, Any]) -> dict[str, int]:
    return {w["text"]: w["count"] for w in summary["warnings"]}


def _events(cli: Cli, deal: int, *keys: str) -> list[tuple]:
    return [tuple(e.get(k) for k in ("at", "kind", *keys)) for e in cli.json("show", str(deal))
            ["events"]]


# ---------------------------------------------------------------- 1. a history in three currencies

OPPORTUNITIES = """
Id,Name,StageName,Amount,CurrencyIsoCode,CloseDate,CreatedDate,LastModifiedDate,IsClosed,IsWon
A1,Bogota fleet,Closed Won,1500000.50,COP,2026-03-10,2026-01-05 09:00:00,2026-03-10 12:00:00,1,1
A2,Kuwait,Negotiation/Review,12.345,KWD,2026-06-30,2026-01-06 09:00:00,2026-02-20 10:00:00,0,0
A3,Berlin,Proposal/Price Quote,9225.225,,2026-05-31,2026-01-07 09:00:00,2026-02-21 10:00:00,0,0
"""
# A1's rows name no currency (its deal's: COP) but its last; A2's first is in its deal's KWD
# with 4 decimals (KWD has 3), its second names KWD; A3 names none anywhere (--currency EUR),
# with 3 decimals (EUR has 2).
HISTORY = """
OpportunityId,CreatedDate,StageName,Amount,CurrencyIsoCode,CloseDate,Probability
A1,2026-01-05 09:00:00,Prospecting,1000000.25,,2026-03-31,10
A1,2026-02-01 10:00:00,Proposal/Price Quote,1500000.50,,2026-03-31,75
A1,2026-03-10 12:00:00,Closed Won,1500000.50,COP,2026-03-10,100
A2,2026-01-06 09:00:00,Qualification,10.1234,,2026-06-30,10
A2,2026-02-20 10:00:00,Negotiation/Review,12.345,KWD,2026-06-30,90
A3,2026-01-07 09:00:00,Prospecting,8000.125,,2026-05-31,10
A3,2026-02-21 10:00:00,Proposal/Price Quote,9225.225,,2026-05-31,75
"""


def test_a_history_is_read_in_each_rows_currency(cli: Cli, tmp_path: Path) -> None:
    opp = _write(tmp_path / "opp.csv", OPPORTUNITIES)
    hist = _write(tmp_path / "hist.csv", HISTORY)
    out = cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist),
                   "--currency", "EUR")
    assert (out["added"], out["history_rows"]) == (3, 7)
    values = {i: [(e[0], e[2], e[3]) for e in _events(cli, i, "value", "currency")
                  if e[2] is not None] for i in (1, 2, 3)}
    assert values == {
        1: [("2026-01-05T09:00:00Z", "1000000.25", "COP"),
            ("2026-02-01T10:00:00Z", "1500000.50", "COP")],
        2: [("2026-01-06T09:00:00Z", "10.123", "KWD"),  # 10.1234 to KWD's 3 decimals
            ("2026-02-20T10:00:00Z", "12.345", "KWD")],
        3: [("2026-01-07T09:00:00Z", "8000.12", "EUR"),  # half to even
            ("2026-02-21T10:00:00Z", "9225.22", "EUR")],
    }
    # the past is in the deals' own currencies: never COP billions as dollars
    past = cli.json("report", "--as-of", "2026-01-10")
    assert past["pipeline"]["value"] == {"COP": "1000000.25", "EUR": "8000.12",
                                         "KWD": "10.123"}
    assert cli.json("report")["won"]["value"] == {"COP": "1500000.50"}


def test_an_amount_error_in_a_history_names_its_currency(cli: Cli, tmp_path: Path) -> None:
    opp = _write(tmp_path / "opp.csv", OPPORTUNITIES)
    hist = _write(tmp_path / "bad.csv", """
OpportunityId,CreatedDate,StageName,Amount,CurrencyIsoCode,CloseDate,Probability
A1,2026-01-05 09:00:00,Prospecting,1.000.000,,2026-03-31,10
A2,2026-01-06 09:00:00,Qualification,12.3x,KWD,2026-06-30,10
A3,2026-01-07 09:00:00,Prospecting,eight,,2026-05-31,10
""")
    result = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist),
                 "--currency", "EUR", code=1)
    lines = [x for x in result.stderr.splitlines() if "column 'Amount'" in x]
    assert len(lines) == 3
    assert lines[0].startswith("  row 2, column 'Amount': '1.000.000' ")
    assert lines[0].endswith("(read in COP, its deal's currency in the deals file)")
    assert lines[1].endswith("(read in KWD, the row's own currency)")
    assert lines[2].endswith(
        "(read in EUR, --currency, else USD: neither the row nor its deal names one)")
    assert cli.json("list") == []


# A deals file with no currency for J1, J2, J4 (an empty cell, or no column at all): J1's and
# J4's history rows name one (J1's first row does not; J4's latest row in time comes first in
# the file), J2's name none; J3's deals cell names COP.
NO_CURRENCY_HISTORY = """
OpportunityId,CreatedDate,StageName,Amount,CurrencyIsoCode
J1,2026-01-05 09:00:00,Prospecting,150,
J1,2026-02-01 10:00:00,Proposal/Price Quote,200,JPY
J2,2026-01-06 09:00:00,Prospecting,10.5,
J3,2026-01-07 09:00:00,Prospecting,5000,
J4,2026-03-01 10:00:00,Proposal/Price Quote,300,JPY
J4,2026-01-08 09:00:00,Prospecting,100,MXN
"""


def _no_currency_deals(column: bool) -> str:
    rows = [("J1", "Tokyo", "200", ""), ("J2", "Paris", "10.5", ""),
            ("J3", "Bogota", "5000", "COP"), ("J4", "Osaka", "300", "")]
    head = "Id,Name,StageName,Amount" + (",CurrencyIsoCode" if column else "")
    lines = [head + ",CreatedDate,LastModifiedDate,IsClosed,IsWon"]
    for ref, name, amount, cur in rows:
        last = "2026-03-01 10:00:00" if ref == "J4" else "2026-02-01 10:00:00"
        cells = [ref, name, "Proposal/Price Quote", amount, *([cur] if column else []),
                 "2026-01-05 09:00:00", last, "0", "0"]
        if not column and cur:
            continue  # J3 needs its currency cell
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("column", [True, False], ids=["empty cell", "no column"])
def test_a_deal_without_a_currency_cell_is_in_the_one_its_history_names(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: bool) -> None:
    """A deal whose currency cell is empty (or missing) is in the currency its history rows
    name (the latest naming one), not --currency: its value never switches currency because
    of a missing cell. Its history rows that name none are in it too."""
    from pipectl.transfer import importer
    from tests.store.test_bulk_import import assert_same

    opp = _write(tmp_path / "opp.csv", _no_currency_deals(column))
    hist = _write(tmp_path / "hist.csv", NO_CURRENCY_HISTORY)
    cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist),
             "--currency", "EUR")
    values = {d["ref"]: [(e[2], e[3]) for e in _events(cli, d["id"], "value", "currency")
                         if e[2] is not None] for d in cli.json("list")}
    expected = {
        "J1": [("150", "JPY"), ("200", "JPY")],  # not 'value: 200.00 EUR' at its last change
        "J2": [("10.50", "EUR")],  # nothing names one: --currency
        "J3": [("5000.00", "COP")],
        "J4": [("100.00", "MXN"), ("300", "JPY")],  # the latest row naming one: JPY
    }
    if not column:
        del expected["J3"]
    assert values == expected
    assert {d["ref"]: (d["value"], d["currency"]) for d in cli.json("list")} == {
        ref: v[-1] for ref, v in expected.items()}
    # the bulk road (a large file into an empty database) writes the same
    _, deals = assert_same(opp, tmp_path, monkeypatch, importer.Options(
        preset="salesforce", history=hist, currency="EUR"))
    assert len(deals) == len(expected)


def test_a_history_amount_in_its_deals_history_currency_says_so(cli: Cli,
                                                                tmp_path: Path) -> None:
    opp = _write(tmp_path / "opp.csv", _no_currency_deals(True))
    hist = _write(tmp_path / "hist.csv", NO_CURRENCY_HISTORY.replace(",150,", ",1.5.0,"))
    err = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist),
              code=1).stderr
    line = next(x for x in err.splitlines() if "column 'Amount'" in x)
    assert line.startswith("  row 2, column 'Amount': '1.5.0' ")
    assert line.endswith("(read in JPY, its deal's currency in its history rows)")


# ---------------------------------------------------------------- 2. losses keep stage and reason

LOSSES = """
Id,Name,StageName,Amount,CloseDate,CreatedDate,LastModifiedDate,IsClosed,IsWon,Loss_Reason__c
L1,Early loss,Closed Lost,1000,2026-02-10,2026-01-05 09:00:00,2026-02-10 12:00:00,1,0,No budget
L2,Late loss,Closed Lost,5000,2026-04-01,2026-01-06 09:00:00,2026-04-01 12:00:00,1,0,Competitor
L3,Lost from the start,Closed Lost,700,2026-01-20,2026-01-20 09:00:00,2026-01-20 09:00:00,1,0,
L4,Lost twice,Closed Lost,900,2026-05-01,2026-01-08 09:00:00,2026-05-01 12:00:00,1,0,Went quiet
L5,Lost late,Closed Lost,300,2026-03-15,2026-01-09 09:00:00,2026-03-20 12:00:00,1,0,Timing
"""
LOSS_HISTORY = """
OpportunityId,CreatedDate,StageName,Amount,CloseDate
L1,2026-01-05 09:00:00,Prospecting,1000,2026-03-31
L1,2026-01-20 10:00:00,Qualification,1000,2026-03-31
L1,2026-02-10 12:00:00,Closed Lost,1000,2026-02-10
L2,2026-01-06 09:00:00,Prospecting,5000,2026-04-30
L2,2026-02-01 10:00:00,Proposal/Price Quote,5000,2026-04-30
L2,2026-03-01 10:00:00,Negotiation/Review,5000,2026-04-30
L2,2026-04-01 12:00:00,Closed Lost,5000,2026-04-01
L3,2026-01-20 09:00:00,Closed Lost,700,2026-01-20
L4,2026-01-08 09:00:00,Qualification,900,2026-04-30
L4,2026-02-01 09:00:00,Closed Lost,900,2026-02-01
L4,2026-03-01 09:00:00,Needs Analysis,900,2026-04-30
L4,2026-05-01 12:00:00,Closed Lost,900,2026-05-01
L5,2026-01-09 09:00:00,Prospecting,300,2026-03-31
L5,2026-02-01 09:00:00,Value Proposition,300,2026-03-31
"""


def test_losses_keep_their_stage_and_reason(cli: Cli, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    opp = _write(tmp_path / "opp.csv", LOSSES)
    hist = _write(tmp_path / "hist.csv", LOSS_HISTORY)
    out = cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist),
                   "--map", "Loss_Reason__c=lost_reason")
    assert _warnings(out) == {
        "deal's stage history starts with it already closed: when it began is unknown (no "
        "sales cycle)": 1,
        "lost deal's file does not say how far it got: lost at the pipeline's first stage, its "
        "qualification unknown (left out of the close rate)": 1,
    }

    def moves(deal: int) -> list[tuple]:
        return [e for e in _events(cli, deal, "from_stage", "to_stage", "reason")
                if e[1] in ("created", "stage", "lost", "reopened")]

    # lost where its history last shows it open, at the history's moment, with its reason;
    # never "moved back to prospecting" first
    assert moves(1) == [
        ("2026-01-05T09:00:00Z", "created", None, "prospecting", None),
        ("2026-01-20T10:00:00Z", "stage", "prospecting", "qualification", None),
        ("2026-02-10T12:00:00Z", "lost", "qualification", "lost", "No budget"),
    ]
    assert moves(2)[-1] == ("2026-04-01T12:00:00Z", "lost", "negotiation", "lost",
                            "Competitor")
    # lost and reopened in its history: the first loss at its stage with no reason (the deals
    # file's reason is the last loss's), then the last loss at the stage reopened to
    assert moves(4) == [
        ("2026-01-08T09:00:00Z", "created", None, "qualification", None),
        ("2026-02-01T09:00:00Z", "lost", "qualification", "lost", "no reason recorded"),
        ("2026-03-01T09:00:00Z", "reopened", "lost", "qualification", None),
        ("2026-03-01T09:00:00Z", "stage", "qualification", "meeting", None),
        ("2026-05-01T12:00:00Z", "lost", "meeting", "lost", "Went quiet"),
    ]
    # the history ends open: lost at its last open stage, at its CloseDate (after the history)
    assert moves(5)[-1] == ("2026-03-15T00:00:00Z", "lost", "meeting", "lost", "Timing")
    # a history that starts lost shows no open stage: the first stage stands in, and the deal
    # says it does not know whether it was qualified (nor when it began)
    assert _events(cli, 3, "to_stage", "field", "new")[0] == (
        "2026-01-20T09:00:00Z", "created", "prospecting", "unknown", "created_at qualified_at")
    monkeypatch.setenv("COLUMNS", "400")  # the timeline on one line per event
    shown = cli("show", "3").stdout
    assert "the file did not say when it began, whether it was qualified" in shown
    report = cli.json("report")
    assert report["lost_reasons"]["by_stage"] == [
        {"pipeline": "default", "stage": s, "count": n, "value": {"USD": v}}
        for s, n, v in (("prospecting", 1, "700.00"), ("qualification", 1, "1000.00"),
                        ("meeting", 2, "1200.00"), ("negotiation", 1, "5000.00"))]
    assert report["close_rate"] == {"rate": 0.0, "won": 0, "qualified": 3}  # L2, L4, L5
    assert report["left_out"] == {"unknown_qualification": 1, "unknown_start": 0,
                                  "unknown_close": 0}
    # no stay at prospecting was invented for the losses (once: one per loss, moved back to
    # it): L1, L2, L5 moved on from it, and L3's stand-in ended as it began
    stays = {t["stage"]: t["completed_stays"] for t in report["time_in_stage"]}
    assert stays["prospecting"] == 4
    # L1 lost from it; L4 lost from it, and once reopened into it moved on to meeting
    assert stays["qualification"] == 3


# ---------------------------------------------------------------- 3. the past follows the history

def test_the_past_follows_the_history_not_the_close_date(cli: Cli, tmp_path: Path) -> None:
    """A deal recorded already won (its history's first row is Closed Won) with a CloseDate
    before its record existed: it is won from the history's moment; its CloseDate is kept as
    its close date, and its sales cycle is unknown."""
    opp = _write(tmp_path / "opp.csv", """
Id,Name,StageName,Amount,CloseDate,CreatedDate,LastModifiedDate,IsClosed,IsWon
W1,Entered late,Closed Won,220000,2018-07-06,2018-10-13 17:16:45,2018-10-13 17:16:45,1,1
W2,Tracked,Closed Won,50000,2018-09-30,2018-08-01 10:00:00,2018-10-02 10:00:00,1,1
""")
    hist = _write(tmp_path / "hist.csv", """
OpportunityId,CreatedDate,StageName,Amount,CloseDate
W1,2018-10-13 17:16:45,Closed Won,220000,2018-07-06
W2,2018-08-01 10:00:00,Negotiation/Review,50000,2018-09-30
W2,2018-10-02 10:00:00,Closed Won,50000,2018-09-30
""")
    cli("import", str(opp), "--preset", "salesforce", "--history", str(hist))
    w1 = cli.json("show", "1")
    assert (w1["closed_at"], w1["close_date"]) == ("2018-10-13T17:16:45Z", "2018-07-06")
    w2 = cli.json("show", "2")
    assert w2["closed_at"] == "2018-10-02T10:00:00Z"  # the history's row, not CloseDate 09-30
    before = cli.json("report", "--as-of", "2018-10-01")
    assert before["deals"] == {"open": 1, "won": 0, "lost": 0, "total": 1}
    after = cli.json("report", "--as-of", "2018-10-14")
    assert after["deals"] == {"open": 0, "won": 2, "lost": 0, "total": 2}
    assert after["sales_cycle"] == {"count": 1, "median_days": 62.0, "mean_days": 62.0}
    assert after["left_out"]["unknown_start"] == 1
    text = cli("report", "--as-of", "2018-10-14").stdout
    assert "Sales cycle: median 62 d, mean 62 d (1 deal won; 1 deal without a known start " \
        "left out)" in text


# ---------------------------------------------------------------- 4. snapshots never back-date

SNAPSHOT_HEADER = ("Record ID,Deal Name,Deal Stage,Close Date,Deal owner,Amount,"
                   "Closed Lost Reason,Last Modified Date,Create Date\n")


def _snapshot(path: Path, *rows: str) -> Path:
    path.write_text("\ufeff" + SNAPSHOT_HEADER + "".join(r + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_a_later_snapshot_never_closes_a_deal_before_it_was_last_known_open(
        cli: Cli, tmp_path: Path) -> None:
    first = _snapshot(
        tmp_path / "s1.csv",
        "101,Stale date,Opportunity identified,2022-11-04 08:53,Ann,1000,,2023-03-28 12:24,"
        "2022-10-19 08:54",
        "102,Before latest,Awaiting outcome,2023-04-30 10:00,Ann,2000,,2023-03-01 10:00,"
        "2023-01-10 09:00",
        "103,News date,Awaiting outcome,2023-01-10 09:57,Bob,3000,,2023-03-28 12:18,"
        "2022-12-07 09:57")
    second = _snapshot(
        tmp_path / "s2.csv",
        # closed with the close date it already had while open (months before it was seen
        # open): closed at the row's last change
        "101,Stale date,Closed: lost,2022-11-04 08:53,Ann,1000,Went silent,2023-04-26 12:10,"
        "2022-10-19 08:54",
        "102,Before latest,Awaiting outcome,2023-04-30 10:00,Ann,2500,,2023-04-05 10:00,"
        "2023-01-10 09:00",
        # closed with a new close date, after it was last known open: closed then
        "103,News date,Closed: lost,2023-05-02 12:09,Bob,3000,Price,2023-05-05 08:01,"
        "2022-12-07 09:57")
    third = _snapshot(
        tmp_path / "s3.csv",
        # a new close date, but before the deal's latest event (its value changed on 04-05)
        "102,Before latest,Closed: won,2023-03-20 10:00,Ann,2500,,2023-05-10 11:00,"
        "2023-01-10 09:00")
    cli("import", str(first))
    out = cli.json("import", str(second))
    key = ("deal's close date was one it already had while open, or before its latest event: "
           "closed at its last change instead, never before it was last known open")
    assert _warnings(out) == {key: 1}
    assert _warnings(cli.json("import", str(third))) == {key: 1}
    closed = {d["ref"]: (d["stage"], d["closed_at"]) for d in
              (cli.json("show", str(i)) for i in (1, 2, 3))}
    assert closed == {"101": ("lost", "2023-04-26T12:10:00Z"),
                      "102": ("won", "2023-05-10T11:00:00Z"),
                      "103": ("lost", "2023-05-02T12:09:00Z")}
    # as of a moment the first snapshot showed them open, they are open
    then = cli.json("report", "--as-of", "2023-03-29")
    assert then["deals"] == {"open": 3, "won": 0, "lost": 0, "total": 3}


# ---------------------------------------------------------------- 5. presets invent no facts

def test_a_file_with_no_close_times_has_no_sales_cycle(cli: Cli, tmp_path: Path) -> None:
    f = _write(tmp_path / "deals.csv", """
name,stage,created_at,value
Alpha,won,2026-01-05,1000
Beta,won,2026-02-01,2000
Gamma,lost,2026-02-03,500
Delta,proposal,2026-03-01,700
""")
    out = cli.json("import", str(f))
    assert _warnings(out)["won or lost deals had no close time: closed at their last known "
                           "time"] == 3
    report = cli.json("report")
    assert report["sales_cycle"] == {"count": 0, "median_days": None, "mean_days": None}
    assert report["left_out"] == {"unknown_qualification": 1, "unknown_start": 0,
                                  "unknown_close": 2}
    assert report["velocity"]["USD"]["per_day"] is None  # never a cycle of 0 days
    text = cli("report").stdout
    assert "Sales cycle: n/a (no close times in the import)" in text
    assert "0.0 d" not in text and "median 0 d" not in text


def test_lost_deals_of_unknown_qualification_are_left_out_of_the_close_rate(
        cli: Cli, tmp_path: Path) -> None:
    """Lost with no stage at loss: the file cannot tell whether they were qualified. With a
    lost-at column (or a preset that knows, as Maven's), it can."""
    f = _write(tmp_path / "deals.csv", """
name,stage,created_at,closed_at,lost_at_stage
W1,won,2026-01-05,2026-02-05,
W2,won,2026-01-06,2026-02-20,
M1,meeting,2026-01-07,,
P1,prospecting,2026-01-08,,
L1,lost,2026-01-09,2026-02-01,
L2,lost,2026-01-10,2026-02-02,
L3,lost,2026-01-11,2026-02-03,proposal
""")
    out = cli.json("import", str(f))
    assert _warnings(out)["lost deals' files do not say how far they got: lost at the "
                           "pipeline's first stage, their qualification unknown (left out of "
                           "the close rate)"] == 2
    report = cli.json("report")
    assert report["close_rate"] == {"rate": 0.5, "won": 2, "qualified": 4}  # W1 W2 M1 L3
    assert report["left_out"]["unknown_qualification"] == 2
    assert "Close rate: 50.0% (2 won of 4 qualified; 2 deals of unknown qualification left " \
        "out)" in cli("report").stdout
    # a deal later seen beyond the gate is known qualified: no longer left out
    cli("reopen", "5")
    cli("advance", "5", "--to", "meeting", "--prequalified", "referred")
    assert cli.json("report")["left_out"]["unknown_qualification"] == 1


def test_the_bulk_road_marks_what_the_file_left_unknown_as_the_row_road_does(
        databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.store.test_bulk_import import assert_same

    rows = ["name,stage,created_at,closed_at,updated_at,lost_at_stage,prequalified"]
    for i in range(60):
        stage = ("won", "lost", "proposal", "prospecting")[i % 4]
        created = "" if i % 7 == 0 else f"2026-01-{i % 28 + 1:02d}T09:00:00Z"
        closed = "" if i % 3 == 0 or stage in ("proposal", "prospecting") else \
            f"2026-03-{i % 28 + 1:02d}T09:00:00Z"
        if i % 11 == 0 and closed:  # closed before it was created: its start is unknown
            closed = "2025-12-01T09:00:00Z"
        updated = f"2026-04-{i % 28 + 1:02d}T09:00:00Z" if i % 5 else ""
        lost_at = "meeting" if stage == "lost" and i % 8 == 5 else ""
        reason = "referred" if i % 13 == 0 else ""
        rows.append(f"D{i},{stage},{created},{closed},{updated},{lost_at},{reason}")
    f = _write(tmp_path / "many.csv", "\n".join(rows) + "\n")
    _, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert len(deals) == 60
    from tests.engines import rows

    marks = dict(rows(databases.named["both-slow.db"], "SELECT new, count(*) FROM events "
                                                       "WHERE field = 'unknown' GROUP BY new"))
    # every kind of mark is there, so both roads were compared on each
    assert {"created_at", "closed_at", "qualified_at", "closed_at qualified_at"} <= set(marks)


def test_a_files_own_probability_is_the_deals(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "hubspot.csv"
    f.write_text(
        "\ufeffRecord ID,Deal Name,Deal Stage,Close Date,Amount,Deal probability,Create Date\n"
        "1,One,Opportunity identified,2026-12-20 10:00,1000,0.07,2026-11-01 10:00\n"
        "2,Two,Awaiting outcome,2026-12-20 10:00,1000,1.0,2026-11-01 10:00\n"
        "3,Three,Awaiting outcome,2026-12-20 10:00,1000,,2026-11-01 10:00\n",
        encoding="utf-8")
    out = cli.json("import", str(f))
    assert out["mapped"]["probability"] == "Deal probability"
    # the third has none of its own: its stage's (proposal, 60 %)
    assert [cli.json("show", str(i))["probability"] for i in (1, 2, 3)] == [7, 100, 60]
    # weighted: 7 % of 1000, 100 % of 1000, and the stage's 60 % of 1000
    assert cli.json("report")["pipeline"]["weighted_value"] == {"USD": "1670.00"}
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\ufeffRecord ID,Deal Name,Deal Stage,Deal probability\n4,Four,Awaiting outcome,0.075\n",
        encoding="utf-8")
    refused = cli("import", str(bad), code=1)
    assert "'0.075' is not a probability from 0 to 1 in whole percents (0.4 for 40%)" in \
        refused.stderr


# ---------------------------------------------------------------- the real files

SF_STAGES = {  # docs/import-export.md, presets: Salesforce's stages in the default pipeline
    "Prospecting": "prospecting", "Qualification": "qualification",
    "Needs Analysis": "meeting", "Value Proposition": "meeting",
    "Id. Decision Makers": "meeting", "Perception Analysis": "meeting",
    "Proposal/Price Quote": "proposal", "Negotiation/Review": "negotiation",
    "Closed Won": "won", "Closed Lost": "lost",
}


def _moment(text: str) -> str:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def _salesforce_as_of(folder: Path, as_of: str) -> dict[str, Any]:
    """Each opportunity's state at ``as_of`` from the raw CSV: it exists from its first
    history row (or CreatedDate); its state is its last history row at or before the moment
    (the Opportunity row once LastModifiedDate has passed)."""
    with (folder / "sfdc_sample_org_OpportunityHistory.csv").open(encoding="utf-8-sig") as fh:
        history = list(csv.DictReader(fh))
    with (folder / "sfdc_sample_org_Opportunity.csv").open(encoding="utf-8-sig") as fh:
        opportunities = list(csv.DictReader(fh))
    counts = {"open": 0, "won": 0, "lost": 0}
    pipeline: dict[str, int] = {}
    for opp in opportunities:
        rows = [(_moment(h["CreatedDate"]), n, h) for n, h in enumerate(history)
                if h["OpportunityId"] == opp["Id"]]
        rows.append((_moment(opp["LastModifiedDate"]), len(history), opp))
        rows.sort(key=lambda r: (r[0], r[1]))
        start = min(rows[0][0], _moment(opp["CreatedDate"]))
        if start > as_of:
            continue
        state = [r for r in rows if r[0] <= as_of][-1][2]
        stage = SF_STAGES[state["StageName"]]
        status = stage if stage in ("won", "lost") else "open"
        counts[status] += 1
        if status == "open":
            pipeline[stage] = pipeline.get(stage, 0) + int(state["Amount"])
    return {"deals": {**counts, "total": sum(counts.values())},
            "pipeline": {k: f"{v}.00" for k, v in pipeline.items()}}


@pytest.mark.parametrize("as_of", ["2018-08-01", "2018-10-14"])
def test_salesforce_as_of_follows_its_history(cli: Cli, real_data: Path, as_of: str) -> None:
    folder = real_data / "salesforce"
    cli("import", str(folder / "sfdc_sample_org_Opportunity.csv"), "--preset", "salesforce",
        "--history", str(folder / "sfdc_sample_org_OpportunityHistory.csv"))
    want = _salesforce_as_of(folder, f"{as_of}T00:00:00Z")
    got = cli.json("report", "--as-of", as_of)
    assert got["deals"] == want["deals"]
    assert {s["stage"]: s["value"].get("USD") for s in got["pipeline"]["stages"]
            if s["count"]} == want["pipeline"]
    if as_of == "2018-08-01":  # before the org's data load: CloseDates do not make deals won
        assert want["deals"]["total"] == 0


def test_salesforce_won_deals_recorded_already_won_have_no_cycle(cli: Cli,
                                                                 real_data: Path) -> None:
    folder = real_data / "salesforce"
    cli("import", str(folder / "sfdc_sample_org_Opportunity.csv"), "--preset", "salesforce",
        "--history", str(folder / "sfdc_sample_org_OpportunityHistory.csv"))
    with (folder / "sfdc_sample_org_OpportunityHistory.csv").open(encoding="utf-8-sig") as fh:
        first: dict[str, str] = {}
        for h in csv.DictReader(fh):
            first.setdefault(h["OpportunityId"], h["StageName"])
    born_won = sum(1 for stage in first.values() if stage == "Closed Won")
    report = cli.json("report")
    assert report["sales_cycle"]["count"] == report["deals"]["won"] - born_won == 0
    assert report["left_out"]["unknown_start"] == born_won == 18
    assert "Sales cycle: n/a (no known start for the 18 deals won)" in cli("report").stdout


def _hubspot_rows(folder: Path) -> list[dict[str, dict[str, str]]]:
    """Per snapshot, oldest first: Record ID -> the row (first of duplicate columns)."""
    out = []
    for name in ("04-03", "05-09", "05-16"):
        path = folder / f"hubspot-crm-exports-all-deals-2023-{name}.masked.csv"
        with path.open(encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            index: dict[str, int] = {}
            for i, h in enumerate(header):
                index.setdefault(h, i)
            out.append({r[index["Record ID"]]: {h: r[i] for h, i in index.items()}
                        for r in reader})
    return out


def test_hubspot_snapshots_never_back_date_a_close(cli: Cli, real_data: Path) -> None:
    folder = real_data / "hubspot"
    snapshots = _hubspot_rows(folder)
    for name in ("04-03", "05-09", "05-16"):
        cli("import", str(folder / f"hubspot-crm-exports-all-deals-2023-{name}.masked.csv"),
            "--preset", "hubspot")
    deals = {d["ref"]: d for d in cli.json("list", "--status", "all", "--limit", "0")}
    closed = ("Closed: won", "Closed: lost", "Closed: abandoned")
    checked = 0
    for earlier, later in pairwise(snapshots):
        for ref, row in later.items():
            before = earlier.get(ref)
            if before is None or before["Deal Stage"] in closed or row["Deal Stage"] not in closed:
                continue
            seen_open = _moment(before["Last Modified Date"] + ":00")
            shown = cli.json("show", str(deals[ref]["id"]))
            assert shown["closed_at"] >= seen_open, ref
            checked += 1
    assert checked == 6  # the deals a later snapshot closes
    # the first snapshot's deal closed by the second with its old Close Date, 2022-11-04:
    # lost at the second's Last Modified Date, not months before it was last seen open
    assert cli.json("show", str(deals["5700635126"]["id"]))["closed_at"] == \
        "2023-04-26T12:10:00Z"


def test_hubspot_probability_and_unknown_qualification(cli: Cli, real_data: Path) -> None:
    folder = real_data / "hubspot"
    snapshots = _hubspot_rows(folder)
    for name in ("04-03", "05-09", "05-16"):
        cli("import", str(folder / f"hubspot-crm-exports-all-deals-2023-{name}.masked.csv"),
            "--preset", "hubspot")
    deals = {d["ref"]: d for d in cli.json("list", "--status", "all", "--limit", "0")}
    last = snapshots[-1]
    for ref, row in last.items():
        if row["Deal probability"]:
            want = round(float(row["Deal probability"]) * 100)
            assert deals[ref]["probability"] == want, ref
    # lost deals first seen lost (never open in an earlier snapshot): qualification unknown
    first_seen: dict[str, str] = {}
    for snap in snapshots:
        for ref, row in snap.items():
            first_seen.setdefault(ref, row["Deal Stage"])
    unknown = sum(1 for stage in first_seen.values()
                  if stage in ("Closed: lost", "Closed: abandoned"))
    assert cli.json("report")["left_out"]["unknown_qualification"] == unknown == 46


def test_what_a_file_left_unknown_survives_pipectls_own_export(cli: Cli, tmp_path: Path) -> None:
    f = _write(tmp_path / "deals.csv", """
name,stage,created_at,closed_at
W1,won,2026-01-05,
L1,lost,2026-01-09,2026-02-01
""")
    cli("import", str(f))
    before = cli.json("report")["left_out"]
    assert before == {"unknown_qualification": 1, "unknown_start": 0, "unknown_close": 1}
    export = tmp_path / "all.json"
    cli("export", "--format", "json", "--events", "-o", str(export))
    other = cli.another("other.db")
    other("import", str(export))
    assert other.json("report")["left_out"] == before
    # a mark pipectl never writes is refused, naming the event
    text = export.read_text(encoding="utf-8").replace('"new": "qualified_at"', '"new": "price"')
    assert '"new": "price"' in text
    bad = _write(tmp_path / "bad.json", text)
    refused = cli.another("third.db")("import", str(bad), code=1)
    assert "events.0.field" in refused.stderr
    assert "a 'created' event's field is 'unknown', with new naming some of: created_at " \
        "closed_at qualified_at" in refused.stderr


def test_a_deal_seen_again_without_a_currency_keeps_its_own(cli: Cli, real_data: Path,
                                                            tmp_path: Path) -> None:
    """HubSpot's exports name no currency: imported with --currency GBP, the next snapshot
    imported without it leaves the deals in GBP (it turned every changed value into USD);
    given --currency, that is the amounts' currency; new deals take the default as ever."""
    folder = real_data / "hubspot"
    cli("import", str(folder / "hubspot-crm-exports-all-deals-2023-04-03.masked.csv"),
        "--preset", "hubspot", "--currency", "GBP")
    cli("import", str(folder / "hubspot-crm-exports-all-deals-2023-05-09.masked.csv"),
        "--preset", "hubspot")
    deals = cli.json("list", "--status", "all", "--limit", "0")
    by_currency: dict[str, int] = {}
    for d in deals:
        by_currency[d["currency"]] = by_currency.get(d["currency"], 0) + 1
    with open(folder / "hubspot-crm-exports-all-deals-2023-04-03.masked.csv",
              encoding="utf-8-sig", newline="") as f:
        first = {row["Record ID"] for row in csv.DictReader(f)}
    with open(folder / "hubspot-crm-exports-all-deals-2023-05-09.masked.csv",
              encoding="utf-8-sig", newline="") as f:
        new = {row["Record ID"] for row in csv.DictReader(f)} - first
    assert by_currency == {"GBP": len(first), "USD": len(new)}
    # no event of a deal of the first file is in another currency than GBP
    events = json.loads(cli("export", "--format", "json", "--events").stdout)["deals"]
    assert {e["currency"] for d in events if d["ref"] in first for e in d["events"]
            if e.get("currency")} == {"GBP"}
    # --currency given: the file's amounts are in it (a deal may change its currency)
    small = tmp_path / "again.csv"
    small.write_text("Record ID,Deal Name,Amount\n" + f"{sorted(first)[0]},Renamed,10\n",
                     encoding="utf-8")
    cli("import", str(small), "--preset", "hubspot", "--currency", "EUR")
    [deal] = [d for d in cli.json("list", "--status", "all", "--limit", "0")
              if d["ref"] == sorted(first)[0]]
    assert (deal["currency"], deal["value"]) == ("EUR", "10.00")
