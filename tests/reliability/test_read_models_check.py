"""The read models (issue 13) are never trusted blindly: a write made around pipectl makes the
reports replay the events until the next pipectl write recomputes them; `db check` tells rows
that are not what the events make of them, and `--repair` recomputes them; a new pipeline
version that moves the gate recomputes the deals of that pipeline in the same transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.reliability.test_check_tampering import _sql


def _one(db: Path, sql: str) -> object:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _replayed(cli: Cli, *args: str) -> dict:
    os.environ["PIPECTL_REPLAY"] = "1"
    try:
        return cli.json(*args)
    finally:
        del os.environ["PIPECTL_REPLAY"]


@pytest.fixture
def history(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-06T09:00:00Z")  # one "now" for every command
    cli("add", "Acme", "--value", "100", "--currency", "EUR", "--at", "2026-01-05")
    cli("add", "Zakład Łódź", "--value", "250", "--currency", "PLN", "--at", "2026-01-06")
    cli("add", "Công ty Hà Nội", "--value", "7", "--currency", "USD", "--at", "2026-01-07")
    cli("advance", "1", "--at", "2026-01-10")
    cli("qualify", "1", "location", "budget", "authority", "need", "--at", "2026-01-19")
    cli("advance", "1", "--at", "2026-01-20")
    cli("advance", "2", "--to", "meeting", "--prequalified", "referral", "--at", "2026-02-01")
    cli("lose", "3", "--reason", "price", "--at", "2026-02-03")
    cli("note", "2", "call back", "--next", "send the deck", "--due", "2026-02-10",
        "--at", "2026-02-04")
    return cli


def test_every_report_reads_the_same_from_the_read_models_as_from_the_events(history):
    for args in (("report",), ("report", "--as-of", "2026-01-15"),
                 ("report", "--from", "2026-01-01", "--to", "2026-02-01"),
                 ("report", "--by", "owner"), ("forecast",), ("stale",), ("next",)):
        assert history.json(*args) == _replayed(history, *args), args


def test_a_row_changed_behind_pipectls_back_is_told_and_recomputed(history, db_path):
    _sql(db_path, "UPDATE deal_states SET value_minor = 1 WHERE deal_id = 2")
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] == 1
    assert any("deal 2" in p and "read models" in p for p in found["problems"])
    repaired = json.loads(history("db", "check", "--repair", "--json").stdout)
    assert repaired["repaired"]["read_models"] == 1
    assert repaired["ok"] is True
    assert _one(db_path, "SELECT value_minor FROM deal_states WHERE deal_id = 2 "
                         "AND until_at > '9999'") == 25000
    assert history.json("report") == _replayed(history, "report")


def test_an_event_written_around_pipectl_makes_the_reports_replay(history, db_path):
    # the sqlite3 shell: an event, no recomputation (the trigger marks the deal)
    _sql(db_path, "INSERT INTO events (deal_id, at, kind, value_minor, currency) "
                  "VALUES (1, '2026-02-05T00:00:00Z', 'value', 99900, 'EUR')")
    assert _one(db_path, "SELECT count(*) FROM read_dirty") == 1
    report = history.json("report")
    assert report == _replayed(history, "report")
    assert "999.00" in str(report)  # the new value counts, although its rows are stale
    out = history("db", "check", code=1)
    assert "read models" in out.stdout
    # the next write of pipectl recomputes every marked deal in its transaction
    history("note", "3", "hello", "--at", "2026-02-06")
    assert _one(db_path, "SELECT count(*) FROM read_dirty") == 0
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    # the deal's own row still says the old value (the check tells it; --repair rebuilds it)
    assert (found["read_models_differing"], found["deals_differing"]) == (0, 1)
    assert history.json("report") == _replayed(history, "report")


PARTNERS = """name = "Partners"
checklist = ["fit"]
stages = [
  {{ key = "intro", probability = 10{intro} }},
  {{ key = "pilot", probability = 50{pilot} }},
  {{ key = "contract", probability = 75 }},
  {{ key = "signed", kind = "won" }},
]
"""


def test_a_gate_moved_recomputes_the_deals_of_that_pipeline(cli, db_path, tmp_path,
                                                            monkeypatch):
    toml = tmp_path / "p.toml"
    toml.write_text(PARTNERS.format(intro="", pilot=', gate = "checklist"'), encoding="utf-8")
    monkeypatch.setenv("PIPECTL_NOW", "2026-01-01T00:00:00Z")
    cli("pipeline", "apply", str(toml))
    monkeypatch.delenv("PIPECTL_NOW")
    cli("add", "Acme", "--pipeline", "Partners", "--at", "2026-01-05")
    cli("advance", "1", "--to", "pilot", "--at", "2026-01-06")
    cli("lose", "1", "--reason", "budget", "--at", "2026-01-07")  # (an open one would refuse)
    now = "SELECT qualified_at FROM deal_states WHERE until_at > '9999'"
    assert _one(db_path, now) is None  # qualified beyond the gate: contract and later
    toml.write_text(PARTNERS.format(intro=', gate = "checklist"', pilot=""), encoding="utf-8")
    monkeypatch.setenv("PIPECTL_NOW", "2026-01-08T00:00:00Z")
    cli("pipeline", "apply", str(toml))
    monkeypatch.delenv("PIPECTL_NOW")
    assert _one(db_path, now) == "2026-01-06T00:00:00Z"  # recomputed: pilot is beyond it now
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-06T09:00:00Z")  # both reports at one moment
    assert cli.json("report")["close_rate"] != _replayed(cli, "report", "--as-of",
                                                          "2026-01-07T12:00:00Z")["close_rate"]
    assert cli.json("report") == _replayed(cli, "report")
    # as of a moment before the change the old definition counts: the reports replay
    assert (cli.json("report", "--as-of", "2026-01-07")
            == _replayed(cli, "report", "--as-of", "2026-01-07"))
    assert cli.json("db", "check")["ok"] is True


def test_a_moment_that_is_no_date_written_around_pipectl_stops_no_write(history, db_path):
    """The shape check lets '2026-08-99T00:00:00Z' in; SQLite has no day number for it. The
    stay it ends has no length (as in the replay): every write goes on, the reports agree."""
    _sql(db_path, "INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage) "
                  "VALUES (2, '2026-08-99T00:00:00Z', 'stage', 1, 'meeting', 'proposal')")
    history("note", "1", "still writable", "--at", "2026-12-01")
    assert _one(db_path, "SELECT count(*) FROM read_dirty") == 0
    assert history.json("report") == _replayed(history, "report")
    assert history.json("forecast") == _replayed(history, "forecast")


def test_the_reports_figures_changed_behind_pipectls_back_are_told_and_counted_again(
        history, db_path):
    """The counts kept for the report (``store.figures``) are checked too: a row changed
    around pipectl is told, --repair counts them again from every deal, and the report is
    the replay's again."""
    before = history.json("report")
    _sql(db_path, "UPDATE deal_figures SET deals = deals + 5 WHERE stage = 'lost'")
    assert history.json("report") != before  # the report reads them
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] >= 1
    repaired = json.loads(history("db", "check", "--repair", "--json").stdout)
    assert repaired["ok"] is True
    history("db", "check")  # clean: exits 0
    assert history.json("report") == before == _replayed(history, "report")
    _sql(db_path, "INSERT INTO deal_figures (pipeline_id, stage, valued, own_probability, "
                  "qualified, won, lost, deals) VALUES (1, 'proposal', 0, 0, 0, 0, 0, 3)")
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] == 3  # a combination no deal has: every deal
    history("db", "check", "--repair")
    assert history.json("report") == before


def test_what_the_forecast_learns_changed_behind_pipectls_back_is_told_and_recomputed(
        history, db_path):
    """What the writes keep for calibrate and the forecast range (``store.outcomes``) is
    checked too: a count or a deal's row changed around pipectl is told, --repair computes
    them again, and calibrate and the range are the replay's again."""
    history("advance", "2", "--at", "2026-02-10")  # to proposal
    history("advance", "2", "--to", "won", "--at", "2026-02-20")
    reads = (("calibrate",), ("forecast", "--range", "--runs", "200"))
    before = {args: history.json(*args) for args in reads}
    for args in reads:
        assert before[args] == _replayed(history, *args), args
    _sql(db_path, "UPDATE outcome_figures SET n = n + 40 WHERE kind = 'stage'")
    assert history.json("calibrate") != before[("calibrate",)]  # calibrate reads them
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] >= 1
    history("db", "check", "--repair")
    history("db", "check")  # clean: exits 0
    assert {args: history.json(*args) for args in reads} == before
    _sql(db_path, "UPDATE deal_outcomes SET days = days + 9 WHERE deal_id = 2")
    found = json.loads(history("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] == 1  # the deal whose rows differ
    history("db", "check", "--repair")
    history("db", "check")
    assert {args: history.json(*args) for args in reads} == before


def test_a_repair_whose_deals_held_the_only_counts_counts_them_anew(cli, db_path):
    """``db check --repair`` empties the forecast's counts and recomputes the deals named; when
    those deals' (wrong) rows were the only counted ones, the counts are made anew, never
    taken from an empty table (negative counts: calibrate said "lost: -1")."""
    for name in ("Acme", "Zakład Łódź", "Công ty Hà Nội", "Bobco", "Delta"):
        cli("add", name, "--value", "100")  # few deals named of many: recomputed one by one
    _sql(db_path, "INSERT INTO deal_outcomes (deal_id, kind, pipeline_id, stage, won, valued, "
                  "days) VALUES (1, 'stage', 1, 'prospecting', 0, 1, 3)")
    found = json.loads(cli("db", "check", "--json", code=1).stdout)
    assert found["read_models_differing"] >= 1
    cli("db", "check", "--repair")
    cli("db", "check")  # clean: exits 0
    assert _one(db_path, "SELECT count(*) FROM outcome_figures") == 0
    assert _one(db_path, "SELECT count(*) FROM deal_outcomes") == 0
    stages = cli.json("calibrate")["pipelines"][0]["stages"]
    assert all(s["won"] == 0 and s["lost"] == 0 for s in stages), stages
