"""The bulk import (a large CSV: rows converted in SQL) writes exactly what the row-by-row
import writes: same deals, same events in the same order per deal, same pipelines and stage
maps, same summary. Every test imports one file both ways and compares, into an empty database
or one that already holds deals (some of them named by the file's refs), into the default
pipeline or one of one's own (tests/store/test_projection_property.py proves, besides, that
what the SQL writes is what domain.projection makes of its events).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipectl.domain.pipeline import Pipeline, StageDef
from pipectl.errors import PipectlError
from pipectl.store import bulk as bulk_sql
from pipectl.store import db, pipelines
from pipectl.transfer import common, importer
from tests import engines
from tests.cli.test_import_real import PIPEDRIVE_STAGES

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SEEDED = datetime(2026, 10, 1, 9, 0, 0, tzinfo=UTC)  # when the deals already there came in
ROOT = Path(__file__).resolve().parents[2]


# A pipeline of one's own: a gate at its third stage, a skippable one, two after-won stages.
STUDIO = Pipeline.of("Studio", [
    StageDef("inquiry", "Inquiry", probability=5, aliases=("lead", "new")),
    StageDef("brief", "Brief received", probability=15),
    StageDef("scoping", "Scoping", probability=30, gate=True),
    StageDef("quote", "Quote sent", probability=60, skippable=True),
    StageDef("booked", "Booked", kind="won", probability=100, aliases=("won", "closed won")),
    StageDef("shoot", "Shoot", kind="after_won", probability=100),
    StageDef("delivered", "Delivered", kind="after_won", probability=100),
], ("budget", "date"))


def _import(path: Path, db_file: engines.Target, bulk: bool, opts: importer.Options,
            monkeypatch: pytest.MonkeyPatch,
            seed: Path | None = None, have: tuple[Pipeline, ...] = (),
            seed_opts: importer.Options | None = None) -> tuple[Any, sqlite3.Connection]:
    conn = engines.connect(db_file)
    for pipeline in have:  # pipelines of one's own, made the same both times
        with db.transaction(conn):
            pipelines.create(conn, pipeline, "2026-01-01T00:00:00Z")
    if seed is not None:  # the deals already there: written the same (row by row) both times
        monkeypatch.setattr(common, "BULK_BYTES", 10**15)
        # a bad seed file writes nothing, both times
        with contextlib.suppress(importer.ImportFailed, PipectlError):
            importer.run(conn, seed, seed_opts or importer.Options(), SEEDED)
    monkeypatch.setattr(common, "BULK_BYTES", 0 if bulk else 10**15)
    try:
        summary: Any = vars(importer.run(conn, path, opts, NOW))
    except importer.ImportFailed as exc:
        summary = ("failed", vars(exc.summary))
    except Exception as exc:  # UsageError and the like: the same error both ways
        summary = (type(exc).__name__, str(exc))
    return summary, conn


def _dump(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    deals = [tuple(r) for r in conn.execute("SELECT * FROM deals ORDER BY id")]
    events = [tuple(r)[1:] for r in conn.execute("SELECT * FROM events ORDER BY deal_id, id")]
    # the pipelines (a created one, its definition), their stage keys and remembered maps
    rest = [tuple(r) for sql in (
        "SELECT id, name, is_default FROM pipelines ORDER BY id",
        "SELECT pipeline_id, version, definition FROM pipeline_versions ORDER BY 1, 2",
        "SELECT * FROM stage_keys ORDER BY 1, 2",
        "SELECT * FROM stage_maps ORDER BY 1, 2, 3",
    ) for r in conn.execute(sql)]
    return deals, events, rest


def assert_same(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                opts: importer.Options | None = None,
                seed: Path | None = None, have: tuple[Pipeline, ...] = (),
                seed_opts: importer.Options | None = None,
                dbs: engines.Databases | None = None) -> tuple[Any, list[tuple]]:
    """Import ``path`` both ways (into a database holding the pipelines ``have`` and the deals
    of ``seed``, if given); the databases and summaries must be equal. The databases are
    ``dbs.named["both-slow.db"]`` and ``["both-fast.db"]`` (files in tmp_path without
    ``dbs``)."""
    opts = opts or importer.Options()
    dbs = dbs or engines.Databases("sqlite", tmp_path)
    slow, slow_conn = _import(path, dbs.renew("both-slow.db"), False, opts, monkeypatch, seed,
                              have, seed_opts)
    fast, fast_conn = _import(path, dbs.renew("both-fast.db"), True, opts, monkeypatch, seed,
                              have, seed_opts)
    try:
        assert fast == slow
        slow_deals, slow_events, slow_rest = _dump(slow_conn)
        fast_deals, fast_events, fast_rest = _dump(fast_conn)
        assert fast_deals == slow_deals
        assert fast_events == slow_events
        assert fast_rest == slow_rest
        return slow, slow_deals
    finally:
        slow_conn.close()
        fast_conn.close()


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many rows the SQL side left to the row-by-row path, per bulk import."""
    left: list[int] = []
    real = bulk_sql.leftover_rows

    def counting(*args: Any, **kwargs: Any):
        rows = list(real(*args, **kwargs))
        left.append(len(rows))
        return iter(rows)

    monkeypatch.setattr(bulk_sql, "leftover_rows", counting)
    yield left


def _write(tmp_path: Path, header: list[str], rows: list[list[str]], name: str = "in.csv",
           encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    p = tmp_path / name
    p.write_text(buf.getvalue(), encoding=encoding)
    return p


def test_generated_pipeline_goes_all_through_sql(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    f = tmp_path / "gen.csv"
    generate.write(None, f, 3000, 7, "2026-06-30")
    summary, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary["added"] == 3000 and len(deals) == 3000
    assert converted == [0]  # every generated row is in pipectl's own form


EDGE_HEADER = ["ref", "name", "company", "owner", "stage", "status", "lost_at_stage",
               "lost_reason", "value", "currency", "probability", "close_date", "created_at",
               "closed_at", "updated_at", "note", "prequalified_reason"]
EDGE_ROWS = [
    # the usual rows, every stage and status
    ["A1", "Acme renewal", "Acme", "Bob", "proposal", "", "", "", "1200.50", "EUR", "40",
     "2026-03-01", "2026-01-05T10:00:00Z", "", "", "", ""],
    ["A2", "", "Nguyễn Thị Mai Co", "Łukasz", "won", "", "", "", "99", "VND", "",
     "", "2025-12-01T08:00:00Z", "2026-01-02T09:00:00Z", "", "signed", ""],
    ["A3", "Post", "", "", "post_purchase", "", "", "", "10", "", "", "", "", "", "", "", ""],
    ["A4", "Lost one", "X", "", "lost", "", "meeting", "price", "5", "usd", "", "",
     "2026-01-01T00:00:00Z", "2025-12-01T00:00:00Z", "", "", ""],
    ["A5", "Lost two", "", "", "", "lost", "", "", "0", "JPY", "", "2026-02-03", "", "", "",
     "", ""],
    ["A6", "Open", "", "", "meeting", "open", "", "", "", "", "100", "", "", "", "", "",
     "referral"],
    ["A7", "Pre", "", "", "prospecting", "", "", "", "", "", "0", "", "", "", "", "", "intro"],
    ["", "No ref", "Zażółć", "Ünal", "Qualification", "", "", "", "1", "KWD", "", "", "",
     "", "2026-02-02T02:02:02Z", "", ""],
    # rows the row-by-row path must take: not in pipectl's own form
    ["B1", " padded", "", "", "proposal", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["B2", "Cafe\u0301 decomposed", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["B3", "'=SUM(A1)", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["B4", "Space time", "", "", "", "", "", "", "", "", "", "", "2026-02-28 10:00", "", "",
     "", ""],
    ["B5", "Slash date", "", "", "", "", "", "", "", "", "", "3/4/2026", "", "", "", "", ""],
    ["B6", "Commas", "", "", "", "", "", "", "1,234.50", "", "", "", "", "", "", "", ""],
    ["B7", "Yen decimals", "", "", "", "", "", "", "100.00", "JPY", "", "", "", "", "", "",
     ""],
    ["B8", "Percent sign", "", "", "", "", "", "", "", "", "40%", "", "", "", "", "", ""],
    ["B9", "Two lines", "", "", "", "", "", "", "", "", "", "", "", "", "", "a\nb", ""],
    ["B10", "Tab\tinside", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["B11", "Offset time", "", "", "", "", "", "", "", "", "", "",
     "2026-01-01T10:00:00+02:00", "", "", "", ""],
    ["B12", "No\u00a0break", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    # in its own form, but closed before it was created: SQL fixes the history the same way
    ["B13", "Closed early", "", "", "won", "", "", "", "", "", "", "",
     "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z", "", "", ""],
    ["", "", "Only company", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
]


def test_edge_rows_same_both_ways(databases, tmp_path: Path, monkeypatch, converted) -> None:
    f = _write(tmp_path, EDGE_HEADER, EDGE_ROWS)
    summary, _deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary["added"] == len(EDGE_ROWS)
    # B1, B2 and B4-B12 went row by row, the rest through SQL: B3's neutralised formula is
    # restored as the row-by-row path restores it, B13's history is fixed the same way
    assert converted == [11]


NEUTRALISED_ROWS = [  # what pipectl's export writes for cells a spreadsheet would run
    ["N1", "'=HYPERLINK(x)", "'+49 30 1234", "'-Minh", "proposal", "", "", "", "10", "EUR",
     "", "", "", "", "", "'@noted", ""],
    ["'-N2", "Ref neutralised", "", "", "won", "", "", "", "", "", "", "", "", "", "", "'=x",
     ""],
    ["N3", "''=twice", "Acme", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["N4", "'t Hooft BV", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["N5", "'", "'+", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
]


def test_neutralised_cells_restored_the_same_both_ways(databases, tmp_path: Path, monkeypatch,
                                                      converted) -> None:
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[:8], *NEUTRALISED_ROWS])
    summary, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary["added"] == 13
    # N1 and N2 through SQL, restored; N3-N5 keep a leading apostrophe: row by row
    assert converted == [3]
    by_ref = {d[1]: d for d in deals}
    assert "=HYPERLINK(x)" in by_ref["N1"] and "+49 30 1234" in by_ref["N1"]
    assert "-N2" in by_ref


@pytest.mark.parametrize("cell, column", [("'-5", "value"), ("'=EUR", "currency")])
def test_a_neutralised_cell_that_is_bad_restored_is_bad_both_ways(
        databases, tmp_path: Path, monkeypatch, cell: str, column: str) -> None:
    row = ["Z1", "Bad", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""]
    row[EDGE_HEADER.index(column)] = cell
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[:8], row])
    summary, _deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary[0] == "failed" and [e[0] for e in summary[1]["errors"]] == [10]


@pytest.mark.parametrize("row, why", [
    (["C1", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""], "no name"),
    (["C1", "X", "", "", "nowhere", "", "", "", "", "", "", "", "", "", "", "", ""],
     "unknown stage"),
    (["C1", "X", "", "", "", "won", "proposal", "", "", "", "", "", "", "", "", "", ""],
     "won with a lost-at stage: fine"),
    (["C1", "X", "", "", "lost", "open", "", "", "", "", "", "", "", "", "", "", ""],
     "open but lost"),
    (["C1", "X", "", "", "", "", "", "", "-5", "", "", "", "", "", "", "", ""], "negative"),
    (["C1", "X", "", "", "", "", "", "", "", "", "", "", "2026-02-30T00:00:00Z", "", "", "",
      ""], "30 February"),
    (["C1", "X", "", "", "", "", "", "", "", "EURO", "", "", "", "", "", "", ""],
     "bad currency"),
    (["C1", "X", "", "", "", "", "", "", "", "", "101", "", "", "", "", "", ""], "101 %"),
    (["C1", "X\x07", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""], "control"),
    (["A1", "Same ref again", "", "", "won", "", "", "", "", "", "", "", "", "", "", "", ""],
     "duplicate ref: the whole file goes row by row"),
])
def test_bad_or_odd_rows_same_both_ways(databases, tmp_path: Path, monkeypatch, row, why) -> None:
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[:8], row, *EDGE_ROWS[8:10]])
    assert_same(f, tmp_path, monkeypatch, dbs=databases)


# NOW is 2026-11-27T12:00:00Z: times up to 5 minutes after it are accepted (as --at accepts
# them), later ones are bad cells; a closed deal with only a close date still to come is closed
# at NOW (never before its creation)
FUTURE_ROWS = [
    ["F1", "Won, close date ahead", "", "", "Closed Won", "", "", "", "10", "", "",
     "2026-12-01", "2026-01-01T00:00:00Z", "", "", "", ""],
    ["F2", "Lost, close date ahead", "", "", "", "lost", "proposal", "", "", "", "",
     "2027-03-01", "", "", "", "", ""],
    ["F3", "Created a minute from now", "", "", "won", "", "", "", "", "", "", "2026-12-24",
     "2026-11-27T12:01:00Z", "", "", "", ""],
    ["F4", "Closed 4 minutes from now", "", "", "won", "", "", "", "", "", "", "",
     "2026-01-01T00:00:00Z", "2026-11-27T12:04:00Z", "", "", ""],
    ["F5", "Open, close date ahead", "", "", "proposal", "", "", "", "", "", "", "2027-01-01",
     "2026-11-27T12:00:00Z", "", "2026-11-27T12:05:00Z", "", ""],
    ["F6", "Won today", "", "", "won", "", "", "", "", "", "", "2026-11-27",
     "2026-01-01T00:00:00Z", "", "", "", ""],
]


def test_future_close_dates_same_both_ways(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[:8], *FUTURE_ROWS])
    summary, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary["warnings"][importer.hist.WARNINGS["closed_now"][1]] == 3  # F1-F3
    assert converted == [5]  # F1-F5 (a time after NOW) went row by row, F6 through SQL
    closed = {d[1]: d[-2] for d in deals}  # closed_at (the column before search)
    assert closed["F1"] == closed["F2"] == "2026-11-27T12:00:00Z"
    assert closed["F3"] == "2026-11-27T12:01:00Z"  # not before its creation
    assert closed["F4"] == "2026-11-27T12:04:00Z"
    assert closed["F5"] is None
    assert closed["F6"] == "2026-11-27T00:00:00Z"


@pytest.mark.parametrize("column, cell", [
    ("created_at", "2030-01-01T00:00:00Z"),
    ("closed_at", "2026-11-27T12:05:01Z"),
    ("updated_at", "2029-05-05T00:00:00Z"),
])
def test_a_time_after_now_is_a_bad_cell_both_ways(databases, tmp_path: Path, monkeypatch, column,
                                                  cell) -> None:
    row = ["G1", "Later", "", "", "won", "", "", "", "", "", "", "", "", "", "", "", ""]
    row[EDGE_HEADER.index(column)] = cell
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[:8], row])
    summary, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary[0] == "failed" and deals == []
    assert summary[1]["errors"] == [(10, column, f"{cell} is in the future")]


def test_duplicate_refs_fall_back_to_row_by_row(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    rows = [EDGE_ROWS[0], EDGE_ROWS[1], [*EDGE_ROWS[0][:1], "Again", *EDGE_ROWS[0][2:]]]
    f = _write(tmp_path, EDGE_HEADER, rows)
    summary, _deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert (summary["added"], summary["updated"]) == (2, 1)
    assert converted[-1] == 3  # started again, all rows row by row


def test_into_a_database_with_deals_rows_naming_them_update_them(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    """Rows whose ref names a deal already there update it, row by row; the other rows make
    new deals through SQL, numbered on from the deals already there, in file order."""
    seed = _write(tmp_path, EDGE_HEADER, [
        ["A1", "Acme renewal", "Acme", "Bob", "qualification", "", "", "", "1000", "EUR", "",
         "", "2025-11-01T10:00:00Z", "", "", "first call", ""],
        ["A4", "Lost one", "X", "", "meeting", "", "", "", "5", "USD", "", "", "", "", "", "",
         "warm"],
        ["Z9", "Not in the file", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["", "No ref", "Zażółć", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ], "seed.csv")
    summary, deals = assert_same(_write(tmp_path, EDGE_HEADER, EDGE_ROWS), tmp_path,
                                 monkeypatch, seed=seed, dbs=databases)
    assert (summary["added"], summary["updated"]) == (len(EDGE_ROWS) - 2, 2)
    assert converted == [13]  # A1 and A4 (they update), B1, B2 and B4-B12 went row by row
    assert [d[0] for d in deals] == list(range(1, len(EDGE_ROWS) + 3))  # no gaps
    by_ref = {d[1]: d for d in deals}
    assert by_ref["A1"][0] == 1 and by_ref["A2"][0] == 5  # A2: the first new row


def test_importing_the_same_file_again_changes_nothing(databases, tmp_path: Path, monkeypatch,
                                                       converted) -> None:
    f = _write(tmp_path, EDGE_HEADER, EDGE_ROWS[:8])
    summary, _deals = assert_same(f, tmp_path, monkeypatch, seed=f, dbs=databases)
    # the seven rows with a ref change nothing; the row without one is a new deal again
    assert (summary["unchanged"], summary["updated"]) == (7, 0)
    assert (summary["added"], summary["events"]) == (1, 1)
    assert converted == [7]


def test_a_ref_that_names_a_deal_only_once_cleaned_falls_back(
        databases, tmp_path: Path, monkeypatch,
                                                              converted) -> None:
    seed = _write(tmp_path, EDGE_HEADER, [EDGE_ROWS[0]], "seed.csv")
    padded = [" A1", *EDGE_ROWS[0][1:4], "won", *EDGE_ROWS[0][5:]]
    f = _write(tmp_path, EDGE_HEADER, [*EDGE_ROWS[1:8], padded])
    summary, _deals = assert_same(f, tmp_path, monkeypatch, seed=seed, dbs=databases)
    assert (summary["added"], summary["updated"]) == (7, 1)
    assert converted[-1] == 8  # started again, all rows row by row


def test_a_second_file_into_a_database_with_deals_goes_through_sql(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    seed = _big(tmp_path, 50)
    rows = [[f"S{i}", f"Second {i}", "Beta", "", "meeting", "", "", "", str(i), "PLN", "", "",
             "2026-03-01T00:00:00Z", "", "", "", "kept"] for i in range(1, 301)]
    summary, deals = assert_same(_write(tmp_path, EDGE_HEADER, rows), tmp_path, monkeypatch,
                                 seed=seed, dbs=databases)
    assert summary["added"] == 300 and len(deals) == 350
    assert converted == [0]


@pytest.mark.parametrize("name, preset, extra", [
    ("maven_crm/sales_pipeline.csv", None, []),
    ("hubspot/hubspot-crm-exports-all-deals-2023-04-03.masked.csv", None, []),
    ("hubspot/hubspot-crm-exports-all-deals-2023-05-16.masked.csv", None, []),
    ("salesforce/sfdc_sample_org_Opportunity.csv", "salesforce", []),
    ("pipedrive/ambiwalencja_pipedrive_deals_export.csv", "pipedrive",
     ["Deal - Nazwa kursu=name"]),
])
def test_real_exports_same_both_ways(databases, real_data: Path, tmp_path: Path, monkeypatch,
                                     name: str, preset: str | None, extra: list[str]) -> None:
    opts = importer.Options(preset=preset, maps=extra,
                            stage_maps=PIPEDRIVE_STAGES if preset == "pipedrive" else [])
    summary, _deals = assert_same(real_data / name, tmp_path, monkeypatch, opts, dbs=databases)
    assert isinstance(summary, dict) and summary["added"] > 0


_CELLS = {
    "ref": st.sampled_from(["", "R1", "R2", "R3", "R4", "R5", "R6", "r1", " R7", "R8 "]),
    "name": st.sampled_from(["", "Deal", "Đơn hàng", "Cafe\u0301", "x" * 2001, "'=1", "A  B",
                             "Ü", "''=2", "'t Hooft", "'"]),
    "company": st.sampled_from(["", "Acme", "Zażółć gęślą", "ACME", "'+49 30", "'-x"]),
    "stage": st.sampled_from(["", "prospecting", "Meeting", "won", "lost", "post purchase",
                              "negotiation", "nope", "closed won"]),
    "status": st.sampled_from(["", "open", "won", "lost", "maybe"]),
    "lost_at_stage": st.sampled_from(["", "proposal", "won", "qualification"]),
    "value": st.sampled_from(["", "0", "12", "12.5", "12.345", "1,000", "007", ".5", "12.",
                              "9999999999999", "abc"]),
    "currency": st.sampled_from(["", "EUR", "jpy", "KWD", "EU"]),
    "probability": st.sampled_from(["", "0", "40", "100", "101", "40%", "4.0"]),
    "close_date": st.sampled_from(["", "2026-02-28", "2026-02-29", "2024-02-29", "2/3/2026",
                                   "2026-13-01", "2026-12-01", "2026-11-27"]),
    "created_at": st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-01-31T23:59:59Z",
                                   "2026-04-31T00:00:00Z", "2026-01-01 10:00",
                                   "1899-12-31T00:00:00Z", "2030-01-01T00:00:00Z",
                                   "2026-11-27T12:03:00Z"]),
    "closed_at": st.sampled_from(["", "2026-01-15T00:00:00Z", "2025-12-01T00:00:00Z",
                                  "2026-01-01T24:00:00Z", "2026-11-27T12:05:00Z",
                                  "2026-11-27T12:06:00Z"]),
    "updated_at": st.sampled_from(["", "2026-03-01T00:00:00Z", "2029-01-01T00:00:00Z"]),
    "note": st.sampled_from(["", "called", "line\nbreak", "Ghi chú", "'@mention"]),
    "prequalified_reason": st.sampled_from(["", "referral"]),
}


# The hypothesis tests below run a fifth of their examples on PostgreSQL (engines.settings_for):
# each example there empties two databases and makes their schema anew.
# a row of an amount that reads two ways (1.500, 12.345: shows_decimal_point): every run tries it
_BLANK = dict.fromkeys(_CELLS, "")
_TWO_WAYS = [_BLANK, {**_BLANK, "value": "12.345"}]


def test_any_rows_same_both_ways(databases, tmp_path: Path, monkeypatch) -> None:
    @settings(**engines.settings_for(databases.engine, 40), deadline=None)
    @given(st.lists(st.fixed_dictionaries(_CELLS), min_size=1, max_size=12))
    @example(_TWO_WAYS)
    def run(rows: list[dict]) -> None:
        header = list(_CELLS)
        f = _write(tmp_path, header, [[r[h] for h in header] for r in rows])
        assert_same(f, tmp_path, monkeypatch, dbs=databases)

    run()


def test_any_rows_into_a_database_with_deals_same_both_ways(
        databases, tmp_path: Path, monkeypatch) -> None:
    @settings(**engines.settings_for(databases.engine, 40), deadline=None)
    @given(st.lists(st.fixed_dictionaries(_CELLS), min_size=1, max_size=6),
           st.lists(st.fixed_dictionaries(_CELLS), min_size=1, max_size=12))
    @example([_BLANK], _TWO_WAYS)
    def run(there: list[dict], rows: list[dict]) -> None:
        header = list(_CELLS)
        seed = _write(tmp_path, header, [[r[h] for h in header] for r in there], "seed.csv")
        f = _write(tmp_path, header, [[r[h] for h in header] for r in rows])
        assert_same(f, tmp_path, monkeypatch, seed=seed, dbs=databases)

    run()


# ---------------------------------------------------------------- a pipeline of one's own

STUDIO_ROWS = [
    # the usual rows: stage names of Studio (keys, labels, aliases), statuses, lost deals
    ["S1", "Wedding", "Acme", "Ann", "Inquiry", "", "", "", "1200", "EUR", "", "2026-03-01",
     "2026-01-05T10:00:00Z", "", "", "", ""],
    ["S2", "Portrait", "", "", "booked", "", "", "", "99", "", "", "", "2025-12-01T08:00:00Z",
     "2026-01-02T09:00:00Z", "", "signed", ""],
    ["S3", "Album", "", "", "delivered", "", "", "", "10", "", "", "", "", "", "", "", ""],
    ["S4", "Lost one", "X", "", "lost", "", "brief", "price", "5", "usd", "", "",
     "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "", "", ""],
    ["S5", "Lost two", "", "", "", "lost", "", "", "0", "JPY", "", "2026-02-03", "", "", "",
     "", ""],
    ["S6", "Quoted", "", "", "quote sent", "open", "", "", "", "", "100", "", "", "", "", "",
     ""],
    ["S7", "New", "", "", "new", "", "", "", "", "", "0", "", "", "", "", "", "intro"],
    ["S8", "Closed won", "", "", "Closed Won", "", "", "", "1", "KWD", "", "", "", "",
     "2026-02-02T02:02:02Z", "", ""],
    ["S9", "Won from scoping", "", "", "scoping", "won", "", "", "", "", "", "",
     "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z", "", "", ""],
    ["S10", "Shoot", "", "", "SHOOT", "", "", "", "", "", "", "", "", "", "", "", ""],
    # rows the row-by-row path takes: not in pipectl's own form
    ["T1", " padded", "", "", "brief", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["T2", "Slash date", "", "", "scoping", "", "", "", "", "", "", "3/4/2026", "", "", "",
     "", ""],
    ["T3", "Commas", "", "", "delivered", "", "", "", "1,234.50", "", "", "", "", "", "", "",
     ""],
]


def test_into_a_pipeline_of_ones_own_same_both_ways(databases, tmp_path: Path, monkeypatch,
                                                    converted) -> None:
    """--pipeline Studio: its stage names (keys, labels, aliases) are read, its won stage,
    after-won stages, gate and first stage say what a row means; every deal and move event
    is Studio's."""
    f = _write(tmp_path, EDGE_HEADER, STUDIO_ROWS)
    summary, deals = assert_same(f, tmp_path, monkeypatch, importer.Options(pipeline="Studio"),
                                 have=(STUDIO,), dbs=databases)
    assert (summary["added"], summary["pipeline"]) == (len(STUDIO_ROWS), "Studio")
    assert converted == [3]  # T1-T3 went row by row
    stage = {d[1]: (d[9], d[10], d[11]) for d in deals}  # pipeline_id, stage, lost_at_stage
    assert {p for p, _, _ in stage.values()} == {2}
    assert stage["S1"][1:] == ("inquiry", None)
    assert stage["S3"][1] == stage["T3"][1] == "delivered"
    assert stage["S4"][1:] == ("lost", "brief")
    assert stage["S5"][1:] == ("lost", "inquiry")  # lost at Studio's first stage
    assert stage["S7"][1] == "inquiry" and stage["S8"][1] == stage["S9"][1] == "booked"
    conn = engines.connect(databases.named["both-fast.db"])
    try:
        moves = [tuple(r) for r in conn.execute(
            "SELECT DISTINCT pipeline_id FROM events WHERE to_stage IS NOT NULL")]
        s3 = [tuple(r) for r in conn.execute(
            "SELECT kind, from_stage, to_stage FROM events WHERE deal_id = 3 ORDER BY id")]
        quoted = conn.execute("SELECT qualified_at IS NOT NULL, prequalified_reason FROM deals "
                              "WHERE ref = 'S6'").fetchone()
    finally:
        conn.close()
    assert moves == [(2,)]
    # won on the way to an after-won stage: created at the last open stage, then booked
    assert s3 == [("created", None, "quote"), ("stage", "quote", "booked"),
                  ("stage", "booked", "delivered")]
    assert tuple(quoted) == (1, "imported (file stage: quote sent)")  # past Studio's gate


def test_a_default_stage_name_is_unknown_to_a_pipeline_of_ones_own(databases, tmp_path: Path,
                                                                   monkeypatch) -> None:
    rows = [*STUDIO_ROWS[:3], ["U1", "Proposal", "", "", "proposal", *[""] * 12]]
    summary, deals = assert_same(_write(tmp_path, EDGE_HEADER, rows), tmp_path, monkeypatch,
                                 importer.Options(pipeline="Studio"), have=(STUDIO,), dbs=databases)
    assert summary[0] == "UsageError" and deals == []
    assert "unknown stage in column 'stage': 'proposal' (row 5)" in summary[1]
    assert "STAGE: a stage of pipeline 'Studio': inquiry, brief, scoping, quote, booked, " \
        "shoot, delivered, lost" in summary[1]
    assert summary[1].endswith('\n  --stage-map "proposal=STAGE"')


def test_a_ref_of_a_deal_in_another_pipeline_is_a_bad_row(
        databases, tmp_path: Path, monkeypatch) -> None:
    """An import writes into one pipeline: a row naming a deal of another is refused (it
    would have been read with the wrong pipeline's stages)."""
    seed = _write(tmp_path, EDGE_HEADER, [EDGE_ROWS[0]], "seed.csv")
    f = _write(tmp_path, EDGE_HEADER, [*STUDIO_ROWS[:3], ["A1", *STUDIO_ROWS[0][1:]]])
    summary, deals = assert_same(f, tmp_path, monkeypatch, importer.Options(pipeline="Studio"),
                                 seed=seed, have=(STUDIO,), dbs=databases)
    assert summary[0] == "failed" and len(deals) == 1
    assert summary[1]["errors"] == [(5, "ref", "'A1' is the ref of deal 1, in pipeline "
                                               "'default'; this import goes into 'Studio'")]


MAVEN_ROWS = [
    ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date",
     "close_date", "close_value"],
    ["M1", "Ann", "GTX", "Acme", "Won", "2016-10-20", "2017-03-01", "1054"],
    ["M2", "Bob", "GTX", "", "Engaging", "2016-10-25", "", ""],
    ["M3", "Ann", "MG", "Beta", "Lost", "2016-11-01", "2017-01-02", "0"],
    ["M4", "Cy", "MG", "Beta", "Prospecting", "", "", ""],
]


def test_create_pipeline_from_the_files_stages_same_both_ways(databases, tmp_path: Path,
                                                              monkeypatch) -> None:
    f = _write(tmp_path, MAVEN_ROWS[0], MAVEN_ROWS[1:])
    summary, deals = assert_same(f, tmp_path, monkeypatch,
                                 importer.Options(create_pipeline="Maven"), dbs=databases)
    assert (summary["pipeline"], summary["pipeline_created"]) == ("Maven", True)
    assert {(d[1], d[9], d[10], d[11]) for d in deals} == {
        ("M1", 2, "won", None), ("M2", 2, "engaging", None), ("M3", 2, "lost", "engaging"),
        ("M4", 2, "prospecting", None)}
    conn = engines.connect(databases.named["both-fast.db"])
    try:
        made = pipelines.by_name(conn, "Maven")
    finally:
        conn.close()
    # in the order the preset knows; won as the won stage, lost as the lost state
    assert [(s.key, s.label, s.kind, s.probability) for s in made.line] == [
        ("prospecting", "Prospecting", "open", 10), ("engaging", "Engaging", "open", 90),
        ("won", "Won", "won", 100)]
    assert made.gate is None and made.checklist == ()


def test_create_pipeline_with_a_name_taken_changes_nothing(
        databases, tmp_path: Path, monkeypatch) -> None:
    f = _write(tmp_path, MAVEN_ROWS[0], MAVEN_ROWS[1:])
    summary, deals = assert_same(f, tmp_path, monkeypatch,
                                 importer.Options(create_pipeline="studio"), have=(STUDIO,),
                                 dbs=databases)
    assert summary == ("UsageError", "--create-pipeline: a pipeline named 'studio' exists "
                                     "already (import into it with --pipeline 'studio')")
    assert deals == []


_STUDIO_CELLS = {
    **_CELLS,
    "stage": st.sampled_from(["", "inquiry", "Brief received", "scoping", "QUOTE", "booked",
                              "won", "lost", "shoot", "delivered", "nope", "proposal"]),
    "lost_at_stage": st.sampled_from(["", "brief", "quote", "booked", "prospecting"]),
}


def test_any_rows_into_a_pipeline_of_ones_own_same_both_ways(
        databases, tmp_path: Path, monkeypatch) -> None:
    # on PostgreSQL a fifth of the examples (engines.settings_for)
    @settings(**engines.settings_for(databases.engine, 40), deadline=None)
    @given(st.lists(st.fixed_dictionaries(_STUDIO_CELLS), min_size=1, max_size=6),
           st.lists(st.fixed_dictionaries(_STUDIO_CELLS), min_size=1, max_size=12))
    @example([_BLANK], _TWO_WAYS)  # every run tries it
    def run(there: list[dict], rows: list[dict]) -> None:
        header = list(_STUDIO_CELLS)
        seed = _write(tmp_path, header, [[r[h] for h in header] for r in there], "seed.csv")
        f = _write(tmp_path, header, [[r[h] for h in header] for r in rows])
        opts = importer.Options(pipeline="Studio")
        assert_same(f, tmp_path, monkeypatch, opts, seed=seed, have=(STUDIO,), seed_opts=opts,
                    dbs=databases)

    run()


def _big(tmp_path: Path, n: int = 3000) -> Path:
    rows = [[f"R{i}", f"Deal {i}", "Acme", "", "proposal", "", "", "", str(i), "EUR", "", "",
             "2026-01-01T00:00:00Z", "", "", "", ""] for i in range(1, n + 1)]
    return _write(tmp_path, EDGE_HEADER, rows, "big.csv")


def _interrupt_at(step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = getattr(bulk_sql, step)

    def then_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if step == "leftover_rows":
            list(result)
        raise KeyboardInterrupt

    monkeypatch.setattr(bulk_sql, step, then_ctrl_c)


@pytest.mark.parametrize("step", ["stage_rows", "convert", "leftover_rows"])
def test_ctrl_c_anywhere_in_a_bulk_import_leaves_the_database_as_it_was(
        db_path: engines.Target, tmp_path: Path, monkeypatch, step: str) -> None:
    monkeypatch.setattr(common, "BULK_BYTES", 0)
    conn = engines.connect(db_path)
    indexes = engines.schema_objects(conn)
    _interrupt_at(step, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        importer.run(conn, _big(tmp_path), importer.Options(), NOW)
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM deals").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert engines.schema_objects(conn) == indexes
    assert engines.temp_tables(conn) == 0
    # and the same connection imports the file afterwards
    monkeypatch.undo()
    monkeypatch.setattr(common, "BULK_BYTES", 0)
    assert importer.run(conn, _big(tmp_path), importer.Options(), NOW).added == 3000


def test_progress_of_a_bulk_import_reaches_the_file_size(db_path: engines.Target,
                                                         tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(common, "BULK_BYTES", 0)
    conn = engines.connect(db_path)
    f = _big(tmp_path)
    seen: list[tuple[int, int]] = []
    importer.run(conn, f, importer.Options(), NOW, lambda done, total: seen.append((done, total)))
    size = f.stat().st_size
    assert len(seen) >= 3 and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_dry_run_reports_the_same_and_writes_nothing(
        databases, tmp_path: Path, monkeypatch) -> None:
    f = _write(tmp_path, EDGE_HEADER, EDGE_ROWS)
    summary, deals = assert_same(f, tmp_path, monkeypatch, importer.Options(dry_run=True),
    dbs=databases)
    assert summary["dry_run"] and summary["added"] == len(EDGE_ROWS) and deals == []


def test_a_plain_json_array_same_both_ways(
        databases, tmp_path: Path, monkeypatch, converted) -> None:
    import json

    items = [{h: (int(v) if h == "probability" and v.isdigit() else v) for h, v in
              zip(EDGE_HEADER, row, strict=True) if v != ""} for row in EDGE_ROWS]
    f = tmp_path / "deals.json"
    f.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    summary, deals = assert_same(f, tmp_path, monkeypatch, dbs=databases)
    assert summary["added"] == len(EDGE_ROWS) == len(deals)
    assert converted == [11]  # took the bulk road, the odd rows row by row
