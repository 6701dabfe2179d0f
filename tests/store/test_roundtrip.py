"""Export then import into an empty database reproduces deals and events exactly (hypothesis).

Histories are made by the daily store functions (add, advance, lose, reopen, qualify, edit,
note) with awkward texts (formula-like cells, accents, quotes); the JSON export with events is
imported into a fresh database and both tables must match row for row. The CSV export of deals
alone must bring back the fields a CSV row carries (FIELDS; see docs/import-export.md for those
it does not).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.errors import PipectlError
from pipectl.models import DealEdit, NewDeal
from pipectl.stages import Stage
from pipectl.store import deals
from pipectl.store.db import connect
from pipectl.transfer import exporter, importer

START = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2025, 6, 1, tzinfo=UTC)  # the import: after every event of the histories


def nfc(text: str) -> str:  # the commands store NFC text; the store functions expect it
    return unicodedata.normalize("NFC", text)

texts = st.one_of(
    st.sampled_from(["Acme", "=SUM(A1)", "+31 20 555", "-", "@here", "'quoted'", "Zoë Ångström",
                     'say "hi", ok', "'=x", "Nguyễn Văn An", "a;b|c"]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
            max_size=12).filter(lambda s: s.strip() == s and s and nfc(s) == s),
)
open_stages = st.sampled_from([Stage.PROSPECTING, Stage.QUALIFICATION, Stage.MEETING,
                               Stage.PROPOSAL, Stage.NEGOTIATION])
add = st.tuples(
    st.just("add"), texts, st.one_of(st.none(), texts), open_stages,
    st.one_of(st.none(), st.integers(0, 10**9)), st.sampled_from(["USD", "EUR", "JPY"]),
    st.one_of(st.none(), st.integers(0, 100)), st.one_of(st.none(), texts),
)
step = st.one_of(
    add,
    st.tuples(st.just("advance"), st.integers(0, 5), st.none()),
    st.tuples(st.just("advance"), st.integers(0, 5), st.sampled_from(list(Stage))),
    st.tuples(st.just("lose"), st.integers(0, 5), texts),
    st.tuples(st.just("reopen"), st.integers(0, 5)),
    st.tuples(st.just("qualify"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("edit"), st.integers(0, 5), texts,
              st.one_of(st.none(), st.integers(0, 10**7))),
    st.tuples(st.just("note"), st.integers(0, 5), texts),
)


def _build(conn: sqlite3.Connection, steps: list[tuple]) -> None:
    ids: list[int] = []
    at = START
    for s in steps:
        at += timedelta(hours=7, minutes=13)
        kind = s[0]
        try:
            if kind == "add":
                _, name, company, stage, value, cur, prob, ref = s
                pre = "known" if stage not in (Stage.PROSPECTING, Stage.QUALIFICATION) else None
                ids.append(deals.add(conn, NewDeal(
                    name=name, company=company, stage=stage, value_minor=value, currency=cur,
                    probability=prob, prequalified=pre, ref=ref), at))
                continue
            if not ids:
                continue
            deal_id = ids[s[1] % len(ids)]
            if kind == "advance":
                deals.advance(conn, deal_id, at, to=s[2], prequalified="met before")
            elif kind == "lose":
                deals.lose(conn, deal_id, at, s[2])
            elif kind == "reopen":
                deals.reopen(conn, deal_id, at)
            elif kind == "qualify":
                deals.qualify(conn, deal_id, dict.fromkeys(
                    ("location", "budget", "authority", "need"), s[2]), at)
            elif kind == "edit":
                deals.edit(conn, deal_id, DealEdit(texts={"owner": s[2]}, value_minor=s[3]), at)
            elif kind == "note":
                deals.note(conn, deal_id, s[2], at, next_action="call", due="2026-01-01")
        except PipectlError:
            continue


def _dump(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("deals", "events")}
    finally:
        con.close()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40))
def test_json_export_import_round_trips_exactly(tmp_path_factory, adds, steps) -> None:
    base = tmp_path_factory.mktemp("rt")
    src, dst, out = base / "src.db", base / "dst.db", base / "export.json"
    conn = connect(src)
    try:
        _build(conn, adds + steps)
        exporter.export(conn, out, fmt="json", status="all", events=True, raw=False, at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        importer.run(conn, out, importer.Options(), LATER)
        again = importer.run(conn, out, importer.Options(), LATER)
    finally:
        conn.close()
    assert _dump(dst) == _dump(src)
    assert (again.added, again.events) == (0, 0)  # importing it twice changes nothing


FIELDS = ("ref", "name", "company", "owner", "stage", "lost_at_stage", "lost_reason",
          "value_minor", "currency", "probability", "close_date", "created_at", "closed_at")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40))
def test_csv_export_import_brings_every_deal_back(tmp_path_factory, adds, steps) -> None:
    base = tmp_path_factory.mktemp("csv")
    src, dst, out = base / "src.db", base / "dst.db", base / "deals.csv"
    conn = connect(src)
    try:
        _build(conn, adds + steps)
        exporter.export(conn, out, fmt="csv", status="all", events=False, raw=False, at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        importer.run(conn, out, importer.Options(), LATER)
    finally:
        conn.close()
    cols = ", ".join(FIELDS)

    def rows(p: Path) -> list[tuple]:
        con = sqlite3.connect(p)
        try:
            return con.execute(f"SELECT {cols} FROM deals ORDER BY created_at, id").fetchall()
        finally:
            con.close()

    assert rows(dst) == rows(src)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40))
def test_csv_deals_with_csv_event_log_round_trip_exactly(tmp_path_factory, adds, steps) -> None:
    """pipectl export -o deals.csv; pipectl export --events -o events.csv; then
    pipectl import deals.csv --history events.csv: the same tables, neutralised cells and all."""
    base = tmp_path_factory.mktemp("csvpair")
    src, dst = base / "src.db", base / "dst.db"
    deals_csv, events_csv = base / "deals.csv", base / "events.csv"
    conn = connect(src)
    try:
        _build(conn, adds + steps)
        exporter.export(conn, deals_csv, fmt="csv", status="all", events=False, raw=False,
                        at=START)
        exporter.export(conn, events_csv, fmt="csv", status="all", events=True, raw=False,
                        at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        importer.run(conn, deals_csv, importer.Options(history=events_csv), LATER)
    finally:
        conn.close()
    assert _dump(dst) == _dump(src)
