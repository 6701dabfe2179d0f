"""The read, import/export and database services, called as a script would: with a connection
from pipectl.store.db.connect, no CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from pipectl.errors import UsageError
from pipectl.services import database, reports, transfer
from pipectl.store.db import connect, snapshot
from pipectl.store.db import transaction as write_transaction
from tests.store.test_reports import TWO_AS_OF, build_two

AGENCY = """\
name = "Agency retainers"
stages = [
  { key = "lead", label = "New lead", probability = 5 },
  { key = "signed", label = "Signed", kind = "won" },
]
"""


@pytest.fixture
def two(conn: sqlite3.Connection) -> sqlite3.Connection:
    build_two(conn)
    return conn


def _json(data) -> str:
    from pipectl.views import reports as view

    return json.dumps(view.report_json(data), sort_keys=True)


def test_report_is_the_report_code_read_in_one_state(two) -> None:
    from pipectl.reports import summary
    from pipectl.store import sql

    assert sql.second_reader(two) is not None  # a file: time in stage runs in a thread
    window = reports.window(date(2026, 1, 1), None)
    got = reports.report(two, TWO_AS_OF, window)
    assert not two.in_transaction  # the read transaction is over
    assert _json(got) == _json(summary.build(two, TWO_AS_OF, window))
    assert any(t.stays.count for t in got.time_in_stage)  # the second reader's figures


def test_reports_work_after_the_connection_made_a_temp_table(two) -> None:
    """SQLite refuses to change temp storage inside a transaction once a temp table exists:
    the reports' tuning happens before their read transaction."""
    two.execute("CREATE TEMP TABLE mine (x)")
    reports.report(two, TWO_AS_OF, reports.window())
    periods = reports.forecast_periods("month", TWO_AS_OF)
    assert len(reports.forecast(two, TWO_AS_OF, periods).periods) == 6
    assert reports.stale(two, TWO_AS_OF).total >= 0
    assert reports.next_steps(two, TWO_AS_OF, pipeline="Partners").several is False


def test_reads_join_a_transaction_the_caller_holds(two) -> None:
    # this connection has written (its temp schema is open): a report cannot set up its
    # scratch storage inside a transaction on it until one report has run outside
    with snapshot(two), pytest.raises(UsageError, match="cannot begin inside this transaction"):
        reports.report(two, TWO_AS_OF, reports.window())
    reports.report(two, TWO_AS_OF, reports.window())  # sets it up, once per connection
    with snapshot(two):
        assert reports.report(two, TWO_AS_OF, reports.window()).window.label == "all time"
        assert reports.board(two).pipeline.name
        with reports.deals(two, status="all") as found:
            assert len(list(found.rows)) == 8
        assert two.in_transaction
    assert not two.in_transaction


def test_the_board_sees_one_state(two, db_path: Path, monkeypatch) -> None:
    """A pipeline added by another process while the board is read is not half seen."""
    from pipectl.services import pipelines
    from pipectl.store import deals as deal_store

    real = deal_store.board

    def board_while_another_process_writes(conn, *args, **kwargs):
        other = connect(db_path)
        try:
            pipelines.apply(other, AGENCY, at="2026-01-20")
        finally:
            other.close()
        return real(conn, *args, **kwargs)

    two.execute("UPDATE pipelines SET removed_at = '2026-01-02T00:00:00Z' WHERE id = 2")
    assert reports.board(two).several is False
    monkeypatch.setattr(deal_store, "board", board_while_another_process_writes)
    assert reports.board(two).several is False  # read before the other commit
    monkeypatch.setattr(deal_store, "board", real)
    assert reports.board(two).several is True


def test_deal_list_filters_and_streams(two) -> None:
    with reports.deals(two, pipeline="Partners", status="all", sort="value") as found:
        names = [r["name"] for r in found.rows]
        assert found.pipeline is not None and found.pipeline.name == "Partners"
        assert set(found.pipelines) == {1, 2}
    assert names == ["P2", "P1", "P3", "M1", "P4"]
    with reports.deals(two, pipeline="", stage="meeting", status="all") as found:
        assert found.pipeline is not None and found.pipeline.id == 1  # '': the default
        assert [r["name"] for r in found.rows] == []
    with pytest.raises(UsageError, match="--sort 'size'"), reports.deals(two, sort="size"):
        pass
    assert reports.deal(two, 5)["name"] == "P3"


def test_stale_per_stage_days_and_their_errors(two) -> None:
    found = reports.stale(two, TWO_AS_OF, days=0)
    assert found.total == len(found.rows) > 0 and found.several
    with pytest.raises(UsageError, match=r"--days 'nowhere=3': no pipeline has an open stage"):
        reports.stale(two, TWO_AS_OF, stage_days=[reports.StageDays("nowhere", 3)])
    with pytest.raises(UsageError, match=r"--days ' signed = 3': signed is not an open stage"):
        reports.stale(two, TWO_AS_OF, stage_days=[reports.StageDays(" signed ", 3, " signed = 3")])


def test_forecast_periods_and_the_pipeline_as_it_calls_itself(two) -> None:
    chosen = reports.forecast_periods("quarter", TWO_AS_OF)
    assert [p.label for p in chosen] == ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1",
                                         "2026-Q2", "2026-Q3"]
    with pytest.raises(UsageError, match="is before --from"):
        reports.forecast_periods("month", TWO_AS_OF, date(2026, 5, 1), date(2026, 1, 1))
    with pytest.raises(UsageError, match="too many"):
        reports.forecast_periods("month", TWO_AS_OF, date(2000, 1, 1), date(2026, 1, 1))
    assert reports.forecast(two, TWO_AS_OF, chosen, pipeline="partners").pipeline == "Partners"


def test_as_of_reads_the_clock(monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-04-05T06:07:08Z")
    assert reports.as_of(None) == "2026-04-05T06:07:08Z"
    assert reports.as_of("2026-01-02") == "2026-01-02T00:00:00Z"


# ---------------------------------------------------------------- import and export


def _sheet(tmp_path: Path) -> Path:
    f = tmp_path / "in.csv"
    f.write_text("name,stage,value\nAcme,proposal,100\nGlobex,lead,5\n", encoding="utf-8")
    return f


def _deals(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM deals").fetchone()[0]


def test_import_dry_run_writes_nothing_and_a_real_one_writes(conn, tmp_path) -> None:
    f = _sheet(tmp_path)
    summary = transfer.import_file(conn, f, transfer.Options(dry_run=True))
    assert (summary.rows, summary.added, _deals(conn)) == (2, 2, 0)
    summary = transfer.import_file(conn, f, transfer.Options())
    assert (summary.added, _deals(conn)) == (2, 2)


def test_import_refuses_to_run_inside_the_callers_transaction(conn, tmp_path) -> None:
    """Its dry run rolls back through its own transaction: joined to an outer one, it would be
    committed with it."""
    f = _sheet(tmp_path)
    with pytest.raises(UsageError, match="its own transaction"), write_transaction(conn):
        transfer.import_file(conn, f, transfer.Options(dry_run=True))
    assert _deals(conn) == 0
    with pytest.raises(UsageError, match="no such file"):
        transfer.import_file(conn, tmp_path / "missing.csv", transfer.Options())


def test_export_stamps_the_clock(conn, tmp_path, monkeypatch) -> None:
    transfer.import_file(conn, _sheet(tmp_path), transfer.Options())
    monkeypatch.setenv("PIPECTL_NOW", "2026-04-05T06:07:08Z")
    out = tmp_path / "out.json"
    assert transfer.export(conn, out, fmt="json", events=True) == 2
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["exported_at"] == "2026-04-05T06:07:08Z"
    assert [d["name"] for d in data["deals"]] == ["Acme", "Globex"]
    with pytest.raises(UsageError, match="--status 'some'"):
        transfer.export(conn, tmp_path / "x.csv", status="some")


# ---------------------------------------------------------------- the database file


def test_check_and_backup(two, tmp_path) -> None:
    found = database.check(two)
    assert (found.ok, found.deals, found.orphan_rows, found.problems) == (True, 8, 0, [])
    copy = database.backup(two, tmp_path / "copy.db")
    other = connect(copy)
    try:
        assert database.check(other).deals == 8
    finally:
        other.close()


def test_demo_builds_and_reads_its_board(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-06-01T12:00:00Z")
    made = database.demo(tmp_path / "demo.db", seed=7)
    assert made.count == sum(made.status.values()) > 0
    assert made.board.several  # the demo has a second pipeline
    assert all(len(rows) <= 5 for rows in made.board.top.values())
