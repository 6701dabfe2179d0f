"""pipectl's CSV pair (deals.csv --history events.csv), streamed: the events wait in a TEMP
table, the deals are read a batch at a time. Any order of the events file gives the database an
export of them gave; events of a deal the deals file lacks are counted and left out; a bad row
in either file is reported and nothing is written; an interruption changes nothing."""

from __future__ import annotations

import csv
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipectl.errors import UsageError
from pipectl.models import NewDeal
from pipectl.services import deals
from pipectl.store import transfer as store
from pipectl.transfer import common, exporter, formats, importer
from pipectl.transfer.native import csv_pair
from tests import engines
from tests.engines import connect
from tests.reliability.helpers import env, peak_rss, pipectl_exe
from tests.store.test_roundtrip import _dump

NOW = datetime(2026, 1, 1, tzinfo=UTC)
IMPORTED = datetime(2026, 3, 1, tzinfo=UTC)  # the import's moment: after the histories


def _pair(tmp_path: Path, db_at, n: int = 24) -> tuple[engines.Target, Path, Path]:
    """A database of n deals with notes, losses and a second deal of some refs; its CSV pair."""
    src = db_at("src.db")
    conn = connect(src)
    t = NOW
    for i in range(n):
        t += timedelta(hours=1)
        deal_id, _, _ = deals.add(conn, NewDeal(name=f"Zoë {i}, \"q\"",
                                                ref=f"R{i}" if i % 5 else None,
                                                stage="qualification", value_minor=i * 100,
                                                currency="EUR"), t)
        if i % 3 == 0:
            deals.note(conn, deal_id, "=call back", at=t + timedelta(minutes=5))
        if i % 4 == 0:
            deals.lose(conn, deal_id, "price", at=t + timedelta(minutes=9))
        if i % 6 == 1:
            deals.qualify(conn, deal_id, {"budget": True, "need": i % 4 == 1},
                          at=t + timedelta(minutes=3))
    deals_csv, events_csv = tmp_path / "deals.csv", tmp_path / "events.csv"
    exporter.export(conn, deals_csv, fmt="csv", status="all", events=False, raw=False, at=NOW)
    exporter.export(conn, events_csv, fmt="csv", status="all", events=True, raw=False, at=NOW)
    conn.close()
    return src, deals_csv, events_csv


def _import(db: engines.Target, deals_csv: Path, events_csv: Path, **opts: Any) -> importer.Summary:
    conn = connect(db)
    try:
        return importer.run(conn, deals_csv, importer.Options(history=events_csv, **opts), IMPORTED)
    finally:
        conn.close()


def _rows(f: Path) -> list[list[str]]:
    with f.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.reader(fh))


def _write(f: Path, rows: list[list[str]]) -> Path:
    with f.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return f


def _temp_tables(db: engines.Target) -> int:
    conn = connect(db)
    try:
        return engines.temp_tables(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("batch", [1, 4, 2000])
def test_the_pair_restores_the_database_in_batches_of_any_size(db_at, tmp_path: Path,
                                                              monkeypatch, batch: int) -> None:
    monkeypatch.setattr(common, "BATCH", batch)
    src, deals_csv, events_csv = _pair(tmp_path, db_at)
    dst = db_at("dst.db")
    summary = _import(dst, deals_csv, events_csv)
    n_events = len(_dump(src)["events"])
    assert (summary.added, summary.events, summary.history_rows) == (24, n_events, n_events)
    assert _dump(dst) == _dump(src)
    again = _import(dst, deals_csv, events_csv)
    assert (again.added, again.unchanged, again.events) == (0, 24, 0)


def test_events_in_another_order_than_the_deals(db_at, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(common, "BATCH", 3)
    src, deals_csv, events_csv = _pair(tmp_path, db_at)
    head, *events = _rows(events_csv)
    random.Random(7).shuffle(events)
    shuffled = _write(tmp_path / "shuffled.csv", [head, *events])
    # the deals backwards too: each batch asks for deals spread over the whole events file
    head_d, *rows_d = _rows(deals_csv)
    backwards = _write(tmp_path / "backwards.csv", [head_d, *reversed(rows_d)])
    _import(db_at("a.db"), deals_csv, shuffled)
    assert _dump(db_at("a.db")) == _dump(src)
    _import(db_at("b.db"), backwards, shuffled)
    assert _dump(db_at("b.db")) == _dump(src)


def _db_with_one_deal(db_at) -> tuple[engines.Target, Any]:
    """A database that already holds a deal, and its contents."""
    db = db_at("a.db")
    conn = connect(db)
    deals.add(conn, NewDeal(name="Before", ref="KEEP", stage="prospecting"), NOW)
    conn.close()
    return db, _dump(db)


@pytest.mark.parametrize("which", ["deals", "events"])
def test_a_bad_row_in_either_file_is_reported_and_nothing_is_written(
        db_at, tmp_path: Path, which: str, monkeypatch) -> None:
    monkeypatch.setattr(common, "BATCH", 4)
    _, deals_csv, events_csv = _pair(tmp_path, db_at)
    db, before = _db_with_one_deal(db_at)
    if which == "deals":
        head, *rows = _rows(deals_csv)
        rows[9][head.index("value")] = "lots"
        deals_csv = _write(tmp_path / "bad.csv", [head, *rows])
        # the 10th deal: row 11 of the file, the header being row 1 (as any CSV's report says)
        expected = (11, "value", "value 'lots' is not an amount")
    else:
        head, *rows = _rows(events_csv)
        deal_of = rows[-1][0]
        first = next(i for i, r in enumerate(rows) if r[0] == deal_of)
        rows[-1][head.index("at")] = "yesterday"
        events_csv = _write(tmp_path / "bad.csv", [head, *rows])
        # reported at the deal it belongs to (its row in the deals file, the header row 1)
        number = next(i for i, r in enumerate(_rows(deals_csv), 1) if r[0] == deal_of)
        expected = (number, f"events.{len(rows) - 1 - first}.at", "")
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db, deals_csv, events_csv)
    s = failed.value.summary
    assert (s.rows, s.bad_rows, s.bad_cells, s.added, s.events) == (24, 1, 1, 0, 0)
    assert len(s.errors) == 1
    number, loc, msg = s.errors[0]
    assert (number, loc) == expected[:2] and expected[2] in msg
    assert _dump(db) == before
    assert _temp_tables(db) == 0


@pytest.mark.parametrize("where", ["reading events", "writing deals"])
def test_ctrl_c_midway_leaves_the_database_as_it_was(db_at, tmp_path: Path, monkeypatch,
                                                     where: str) -> None:
    monkeypatch.setattr(common, "BATCH", 2)
    _, deals_csv, events_csv = _pair(tmp_path, db_at)
    db, before = _db_with_one_deal(db_at)
    calls = 0

    def interrupted(real):
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 5:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return call

    if where == "reading events":
        monkeypatch.setattr(csv_pair, "_key", interrupted(csv_pair._key))
    else:
        monkeypatch.setattr(store, "insert_events", interrupted(store.insert_events))
    conn = connect(db)
    try:
        with pytest.raises(KeyboardInterrupt):
            importer.run(conn, deals_csv, importer.Options(history=events_csv), IMPORTED)
        # the same connection goes on: no transaction left open, no TEMP table left behind
        assert not conn.in_transaction
        assert engines.temp_tables(conn) == 0
    finally:
        conn.close()
    assert calls == 5
    assert _dump(db) == before


def test_a_dry_run_writes_nothing_and_leaves_no_temp_table(db_at, tmp_path: Path) -> None:
    src, deals_csv, events_csv = _pair(tmp_path, db_at)
    db = db_at("a.db")
    conn = connect(db)
    try:
        summary = importer.run(conn, deals_csv,
                               importer.Options(history=events_csv, dry_run=True), IMPORTED)
        assert engines.temp_tables(conn) == 0
    finally:
        conn.close()
    assert (summary.added, summary.events) == (24, len(_dump(src)["events"]))
    assert _dump(db) == {k: [] for k in _dump(db)}


def test_the_events_key_matches_the_ids_as_spelt() -> None:
    assert [csv_pair._key(t) for t in ("12", "0", None, "", "012", "1e3", "٣", "9" * 19)] == [
        12, 0, "", "", "012", "1e3", "٣", "9" * 19]


@pytest.mark.slow
@pytest.mark.sqlite_only("the peak memory of a pipectl process importing into a file "
                         "(PIPECTL_DB); a server's import is benchmarks/postgres.py's")
def test_memory_does_not_grow_with_the_pair(tmp_path: Path) -> None:
    """30,000 deals with 6 events each (22 MB of CSV): read whole, it took 280 MB; now ~80 MB."""
    deals_csv, events_csv = tmp_path / "deals.csv", tmp_path / "events.csv"
    head_d, head_e = list(formats.DEAL_CSV), list(formats.EVENT_CSV)
    with deals_csv.open("w", newline="", encoding="utf-8") as fd, \
            events_csv.open("w", newline="", encoding="utf-8") as fe:
        wd, we = csv.writer(fd), csv.writer(fe)
        wd.writerow(head_d)
        we.writerow(head_e)
        for i in range(1, 30_001):
            d = dict.fromkeys(head_d, "")
            d.update(id=i, ref=f"R{i}", name=f"Deal {i}", pipeline="default", stage="prospecting",
                     value="10.00", currency="USD", created_at="2025-01-01T00:00:00Z",
                     updated_at="2025-01-02T00:00:00Z")
            wd.writerow(d.values())
            e = dict.fromkeys(head_e, "")
            e.update(deal_id=i, deal_ref=f"R{i}", id=i * 6, at="2025-01-01T00:00:00Z",
                     kind="created", pipeline="default", to_stage="prospecting", value="10.00",
                     currency="USD")
            we.writerow(e.values())
            for k in range(1, 6):
                e = dict.fromkeys(head_e, "")
                e.update(deal_id=i, deal_ref=f"R{i}", id=i * 6 + k, at="2025-01-02T00:00:00Z",
                         kind="note", text=f"note {k} for a deal, with \"text\" of some length")
                we.writerow(e.values())
    code, kib = peak_rss([pipectl_exe(), "import", str(deals_csv), "--history",
                          str(events_csv)], env(tmp_path / "a.db"))
    assert code == 0
    assert kib < 150_000
    con = sqlite3.connect(tmp_path / "a.db")
    try:
        assert con.execute("SELECT count(*), max(id) FROM events").fetchone() == (180_000,
                                                                                   180_005)
    finally:
        con.close()


def test_events_of_no_deal_or_of_a_deal_twice_refuse_the_pair(db_at, tmp_path: Path) -> None:
    """The deals of one --status with the events of all: the other deals' events were dropped
    without a word; a deal id twice in deals.csv gave both rows its events."""
    conn = connect(db_at("src.db"))
    try:
        for name in ("Kept", "Other"):
            deals.add(conn, NewDeal(name=name, stage="prospecting"), NOW)
        deals.lose(conn, 2, "price", at=NOW + timedelta(hours=1))
        only_open, events = tmp_path / "open.csv", tmp_path / "events.csv"
        exporter.export(conn, only_open, fmt="csv", status="open", events=False, raw=False,
                        at=NOW)
        exporter.export(conn, events, fmt="csv", status="all", events=True, raw=False, at=NOW)
    finally:
        conn.close()
    with pytest.raises(UsageError, match="holds 2 events of no deal in"):
        _import(db_at("a.db"), only_open, events)
    rows = _rows(only_open)
    twice = _write(tmp_path / "twice.csv", [rows[0], rows[1], rows[1]])
    with pytest.raises(UsageError, match="deal id 1 is there twice"):
        _import(db_at("b.db"), twice, events)
    for db in ("a.db", "b.db"):
        assert _dump(db_at(db))["deals"] == []


def test_a_format_1_pair_imports_into_the_target_pipeline(db_at, tmp_path: Path) -> None:
    """The pair pipectl exported before pipelines: four checklist columns, no pipeline."""
    d = dict.fromkeys(formats.DEAL_CSV_V1, "")
    d.update(id="1", ref="R1", name="Acme", stage="qualification", value="10.00",
             currency="USD", location="true", need="false", created_at="2025-01-01T00:00:00Z",
             updated_at="2025-01-03T00:00:00Z")
    created = dict.fromkeys(formats.EVENT_CSV_V1, "")
    created.update(deal_id="1", deal_ref="R1", id="1", at="2025-01-01T00:00:00Z",
                   kind="created", to_stage="prospecting", value="10.00", currency="USD")
    moved = dict.fromkeys(formats.EVENT_CSV_V1, "")
    moved.update(deal_id="1", deal_ref="R1", id="2", at="2025-01-02T00:00:00Z", kind="stage",
                 from_stage="prospecting", to_stage="qualification")
    checked = dict.fromkeys(formats.EVENT_CSV_V1, "")
    checked.update(deal_id="1", deal_ref="R1", id="3", at="2025-01-03T00:00:00Z",
                   kind="checklist", location="true", need="false")
    deals_csv = _write(tmp_path / "deals.csv", [list(d), list(d.values())])
    events_csv = _write(tmp_path / "events.csv", [list(created)] + [
        list(e.values()) for e in (created, moved, checked)])
    db = db_at("a.db")
    summary = _import(db, deals_csv, events_csv)
    assert (summary.added, summary.events, summary.pipeline) == (1, 3, "default")
    (row,) = _dump(db)["deals"]
    assert (row[9], row[19]) == (1, '{"location":true,"need":false}')
    # a deals file of one format with the event log of the other is refused
    other = tmp_path / "v2"
    other.mkdir()
    _, _, events_v2 = _pair(other, db_at)
    with pytest.raises(UsageError, match="is not a pipectl CSV export of the expected kind"):
        _import(db_at("b.db"), deals_csv, events_v2)
