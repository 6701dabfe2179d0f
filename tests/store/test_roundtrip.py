"""Export then import into an empty database reproduces deals and events exactly (hypothesis).

Histories are made by the daily use cases (add, advance, lose, reopen, qualify, edit, note,
move to another pipeline) with awkward texts (formula-like cells, accents, quotes), in the
default pipeline and in one of one's own (AGENCY); the JSON export with events is imported into
a fresh database that has the same pipelines, or none but the default (AGENCY then comes from
the definition the export carries), and both tables must match row for row: each deal keeps its
pipeline. The CSV export of deals alone must bring back the fields a CSV row carries
(FIELDS; see docs/import-export.md for those it does not).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.domain import pipeline_file
from pipectl.errors import PipectlError
from pipectl.models import DealEdit, NewDeal
from pipectl.services import deals
from pipectl.store import pipelines
from pipectl.store.db import transaction
from pipectl.transfer import exporter, importer
from tests import engines
from tests.engines import connect

START = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2025, 6, 1, tzinfo=UTC)  # the import: after every event of the histories

# A pipeline of one's own (docs/pipelines.md's example): its own checklist, a gate that is its
# second stage, a skippable stage, an after-won stage.
AGENCY_TOML = """
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
AGENCY = pipeline_file.parse(AGENCY_TOML)


def with_agency(conn: sqlite3.Connection) -> int:
    """Give a database the AGENCY pipeline (id 2 in a fresh one)."""
    with transaction(conn):
        return pipelines.create(conn, AGENCY, "2024-01-01T00:00:00Z")


def nfc(text: str) -> str:  # the commands store NFC text; the store functions expect it
    return unicodedata.normalize("NFC", text)

texts = st.one_of(
    st.sampled_from(["Acme", "=SUM(A1)", "+31 20 555", "-", "@here", "'quoted'", "Zoë Ångström",
                     'say "hi", ok', "'=x", "Nguyễn Văn An", "a;b|c"]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
            max_size=12).filter(lambda s: s.strip() == s and s and nfc(s) == s),
)
DEFAULT_KEYS = ["prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
                "post_purchase"]
AGENCY_KEYS = list(AGENCY.keys)
# (pipeline name or None for the default, open stage to start in)
homes = st.one_of(
    st.tuples(st.none(), st.sampled_from(DEFAULT_KEYS[:5])),
    st.tuples(st.just(AGENCY.name), st.sampled_from(AGENCY_KEYS[:3])),
)
add = st.tuples(
    st.just("add"), texts, st.one_of(st.none(), texts), homes,
    st.one_of(st.none(), st.integers(0, 10**9)), st.sampled_from(["USD", "EUR", "JPY"]),
    st.one_of(st.none(), st.integers(0, 100)), st.one_of(st.none(), texts),
)
step = st.one_of(
    add,
    st.tuples(st.just("advance"), st.integers(0, 5), st.none()),
    st.tuples(st.just("advance"), st.integers(0, 5),
              st.sampled_from(DEFAULT_KEYS + AGENCY_KEYS)),
    st.tuples(st.just("lose"), st.integers(0, 5), texts),
    st.tuples(st.just("reopen"), st.integers(0, 5)),
    st.tuples(st.just("qualify"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("edit"), st.integers(0, 5), texts,
              st.one_of(st.none(), st.integers(0, 10**7))),
    st.tuples(st.just("note"), st.integers(0, 5), texts),
    st.tuples(st.just("move"), st.integers(0, 5), st.sampled_from(["default", AGENCY.name]),
              st.one_of(st.none(), st.sampled_from(DEFAULT_KEYS + AGENCY_KEYS))),
)


def _build(conn: sqlite3.Connection, steps: list[tuple]) -> None:
    """Run the steps through the use cases (a refused one is skipped, as a user would)."""
    ids: list[int] = []
    at = START
    for s in steps:
        at += timedelta(hours=7, minutes=13)
        kind = s[0]
        try:
            if kind == "add":
                _, name, company, (pipeline, stage), value, cur, prob, ref = s
                pre = "known" if stage not in ("prospecting", "qualification", "lead",
                                               "discovery") else None  # past the gate
                ids.append(deals.add(conn, NewDeal(
                    name=name, company=company, stage=stage, pipeline=pipeline,
                    value_minor=value, currency=cur, probability=prob, prequalified=pre,
                    ref=ref), at)[0])
                continue
            if not ids:
                continue
            deal_id = ids[s[1] % len(ids)]
            if kind == "advance":
                deals.advance(conn, deal_id, to=s[2], prequalified="met before", at=at)
            elif kind == "lose":
                deals.lose(conn, deal_id, s[2], at=at)
            elif kind == "reopen":
                deals.reopen(conn, deal_id, at=at)
            elif kind == "qualify":
                criteria = pipelines.of_deal(conn, {"pipeline_id": _pipeline_of(conn, deal_id)})
                deals.qualify(conn, deal_id, dict.fromkeys(criteria.checklist, s[2]), at=at)
            elif kind == "edit":
                deals.edit(conn, deal_id, DealEdit(texts={"owner": s[2]}, value_minor=s[3]),
                           at=at)
            elif kind == "note":
                deals.note(conn, deal_id, s[2], next_action="call", due="2026-01-01", at=at)
            elif kind == "move":
                deals.move_to(conn, deal_id, s[2], s[3], at=at)
        except PipectlError:
            continue


def _pipeline_of(conn: sqlite3.Connection, deal_id: int) -> int:
    return conn.execute("SELECT pipeline_id FROM deals WHERE id = ?", (deal_id,)).fetchone()[0]


def _dump(db: engines.Target) -> dict[str, list[tuple]]:
    return {t: engines.rows(db, f"SELECT * FROM {t} ORDER BY id") for t in ("deals", "events")}


# The hypothesis tests here run a fifth of their examples on PostgreSQL (engines.settings_for):
# each example there empties two databases and makes their schema anew.
def test_json_export_import_round_trips_exactly(databases, tmp_path_factory) -> None:
    """Into a database that has AGENCY, or a fresh one (``fresh``), which gets it from the
    file's definition when a deal names it."""
    @settings(**engines.settings_for(databases.engine, 30), deadline=None)
    @given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40),
           st.booleans())
    def run(adds, steps, fresh: bool) -> None:
        _json_round_trip(databases, tmp_path_factory, adds, steps, fresh)

    run()


def _json_round_trip(databases, tmp_path_factory, adds, steps, fresh: bool) -> None:
    base = tmp_path_factory.mktemp("rt")
    databases.folder = base
    src, dst, out = databases.renew("src.db"), databases.renew("dst.db"), base / "export.json"
    conn = connect(src)
    try:
        with_agency(conn)
        _build(conn, adds + steps)
        exporter.export(conn, out, fmt="json", status="all", events=True, raw=False, at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        if not fresh:
            with_agency(conn)
        first = importer.run(conn, out, importer.Options(), LATER)
        again = importer.run(conn, out, importer.Options(), LATER)
        made = pipelines.by_name(conn, AGENCY.name) if pipelines.find_id(
            conn, AGENCY.name) else None
    finally:
        conn.close()
    assert _dump(dst) == _dump(src)
    assert (again.added, again.events, again.pipelines_created) == (0, 0, [])
    names_agency = _names_agency(src)
    if fresh:
        assert first.pipelines_created == ([AGENCY.name] if names_agency else [])
    if names_agency:
        assert made == AGENCY  # the definition, exactly


def _names_agency(db: engines.Target) -> bool:
    """Does a deal, or an event, of the database name AGENCY (id 2)?"""
    return bool(engines.rows(db, "SELECT 1 FROM deals WHERE pipeline_id = 2 UNION ALL "
                                 "SELECT 1 FROM events WHERE pipeline_id = 2"))


FIELDS = ("ref", "name", "company", "owner", "stage", "lost_at_stage", "lost_reason",
          "value_minor", "currency", "probability", "close_date", "created_at", "closed_at")


def test_csv_export_import_brings_every_deal_back(databases, tmp_path_factory) -> None:
    @settings(**engines.settings_for(databases.engine, 30), deadline=None)
    @given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40))
    def run(adds, steps) -> None:
        _csv_round_trip(databases, tmp_path_factory, adds, steps)

    run()


def _csv_round_trip(databases, tmp_path_factory, adds, steps) -> None:
    base = tmp_path_factory.mktemp("csv")
    databases.folder = base
    src, dst, out = databases.renew("src.db"), databases.renew("dst.db"), base / "deals.csv"
    conn = connect(src)
    try:
        _build(conn, [a for a in adds + steps if a[0] != "move" and not (  # the default only
            a[0] == "add" and a[3][0] is not None)])
        exporter.export(conn, out, fmt="csv", status="all", events=False, raw=False, at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        importer.run(conn, out, importer.Options(), LATER)
    finally:
        conn.close()
    cols = ", ".join(FIELDS)

    def rows(db: engines.Target) -> list[tuple]:
        return engines.rows(db, f"SELECT {cols} FROM deals ORDER BY created_at, id")

    assert rows(dst) == rows(src)


def test_csv_deals_with_csv_event_log_round_trip_exactly(databases, tmp_path_factory) -> None:
    """pipectl export -o deals.csv; pipectl export --events -o events.csv; then
    pipectl import deals.csv --history events.csv: the same tables, neutralised cells and all."""
    @settings(**engines.settings_for(databases.engine, 20), deadline=None)
    @given(st.lists(add, min_size=1, max_size=4), st.lists(step, min_size=8, max_size=40))
    def run(adds, steps) -> None:
        _csv_pair_round_trip(databases, tmp_path_factory, adds, steps)

    run()


def _csv_pair_round_trip(databases, tmp_path_factory, adds, steps) -> None:
    base = tmp_path_factory.mktemp("csvpair")
    databases.folder = base
    src, dst = databases.renew("src.db"), databases.renew("dst.db")
    deals_csv, events_csv = base / "deals.csv", base / "events.csv"
    conn = connect(src)
    try:
        with_agency(conn)
        _build(conn, adds + steps)
        exporter.export(conn, deals_csv, fmt="csv", status="all", events=False, raw=False,
                        at=START)
        exporter.export(conn, events_csv, fmt="csv", status="all", events=True, raw=False,
                        at=START)
    finally:
        conn.close()
    conn = connect(dst)
    try:
        with_agency(conn)
        importer.run(conn, deals_csv, importer.Options(history=events_csv), LATER)
    finally:
        conn.close()
    assert _dump(dst) == _dump(src)
