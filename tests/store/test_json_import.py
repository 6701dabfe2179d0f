"""JSON import, streamed: batches and pieces of any size give the same database; the file's ids
are kept exactly when the whole file allows it; bad deals, bad files and odd but valid
documents behave as a whole-file json.load did. Most files here are written by hand in format 1
(four checklist columns, no pipelines), which import still reads; format 2's own (pipelines,
the checklist as an object) has tests of its own at the end."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipectl.errors import UsageError
from pipectl.models import NewDeal
from pipectl.services import deals
from pipectl.transfer import common, exporter, importer, json_reader
from tests import engines
from tests.engines import connect
from tests.reliability.helpers import env, peak_rss, pipectl_exe
from tests.store.test_roundtrip import _dump

NOW = datetime(2026, 1, 1, tzinfo=UTC)
IMPORTED = datetime(2026, 3, 1, tzinfo=UTC)  # the import's moment: after the histories


def _import(db: engines.Target, f: Path, **opts: Any) -> importer.Summary:
    conn = connect(db)
    try:
        return importer.run(conn, f, importer.Options(**opts), IMPORTED)
    finally:
        conn.close()


def _deal(i: int, ref: str | None = None, events: list[dict] | None = None, **more) -> dict:
    d: dict[str, Any] = {
        "id": i, "ref": ref, "name": f"Deal {i} ] \"x\"", "stage": "prospecting",
        "value": "10.00", "currency": "USD", "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z", **more,
    }
    if events is not None:
        d["events"] = events
    return d


def _created(i: int) -> dict:
    return {"id": i, "at": "2025-01-01T00:00:00Z", "kind": "created", "to_stage": "prospecting",
            "value": "10.00", "currency": "USD"}


def _write(tmp_path: Path, deals_: list[dict], name: str = "x.json", **head: Any) -> Path:
    f = tmp_path / name
    f.write_text(json.dumps({"pipectl_export": 1, **head, "deals": deals_}), encoding="utf-8")
    return f


def _ids(db: engines.Target) -> tuple[list[int], list[tuple[int, int]]]:
    d = _dump(db)
    return [r[0] for r in d["deals"]], [(r[0], r[1]) for r in d["events"]]


def test_tiny_batches_and_pieces_give_the_same_database(db_at, tmp_path: Path, monkeypatch) -> None:
    src = db_at("src.db")
    conn = connect(src)
    t = NOW
    for i in range(30):
        t += timedelta(hours=1)
        deal_id, _, _ = deals.add(conn, NewDeal(name=f"Zoë {i} ], \"q\" \\ {{",
                                                ref=f"R{i % 25}" if i < 25 else None,
                                                stage="qualification", value_minor=i * 100,
                                                currency="EUR"), t)
        if i % 3 == 0:
            deals.note(conn, deal_id, "call ] back, \"soon\"", at=t + timedelta(minutes=5))
        if i % 4 == 0:
            deals.lose(conn, deal_id, "price", at=t + timedelta(minutes=9))
    out = tmp_path / "all.json"
    exporter.export(conn, out, fmt="json", status="all", events=True, raw=False, at=NOW)
    conn.close()
    monkeypatch.setattr(common, "BATCH", 4)
    monkeypatch.setattr(json_reader, "_CHUNK", 5)
    dst = db_at("dst.db")
    summary = _import(dst, out)
    assert (summary.added, summary.events) == (30, len(_dump(src)["events"]))
    assert _dump(dst) == _dump(src)
    again = _import(dst, out)
    assert (again.added, again.unchanged, again.events) == (0, 30, 0)


def test_unique_ids_are_kept_and_deals_without_events_come_after(db_at, tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(common, "BATCH", 1)
    f = _write(tmp_path, [_deal(3), _deal(7, "A", [_created(40)]), _deal(5, "B", [_created(9)])])
    _import(db_at("a.db"), f)
    ids, events = _ids(db_at("a.db"))
    assert ids == [3, 5, 7]
    # deal 3 had no events: its history is made and numbered after the file's largest id
    assert events == [(9, 5), (40, 7), (41, 3)]


@pytest.mark.parametrize("case", ["deal id twice", "event id twice", "no deal id",
                                  "no event id"])
def test_ids_that_cannot_all_be_kept_are_all_renumbered(db_at, tmp_path: Path, case: str) -> None:
    a = _deal(10, "A", [_created(1)])
    b = _deal(20, "B", [_created(2)])
    c = _deal(30, "C", [_created(3)])
    if case == "deal id twice":
        c["id"] = 10
    elif case == "event id twice":
        c["events"][0]["id"] = 1
    elif case == "no deal id":
        c["id"] = None
    else:
        del c["events"][0]["id"]
    _import(db_at("a.db"), _write(tmp_path, [a, b, c]))
    ids, events = _ids(db_at("a.db"))
    assert ids == [1, 2, 3]
    assert [e for e, _ in events] == list(range(1, len(events) + 1))


def test_a_ref_twice_in_the_file_is_a_bad_row_not_a_merge(db_at, tmp_path: Path) -> None:
    """Two deals of one export with one ref (a hand edit): merging them lost one deal's
    recorded history and invented events for the other."""
    b = _deal(20, "A", [{**_created(2), "to_stage": "meeting", "reason": "met"}],
              stage="meeting", prequalified_reason="met", qualified_at="2025-01-01T00:00:00Z")
    f = _write(tmp_path, [_deal(10, "A", [_created(1)]), b, _deal(30, "C", [_created(3)])])
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("a.db"), f)
    assert failed.value.summary.errors == [
        (2, "ref", "'A' is also the ref of row 1; a pipectl export never holds two deals with "
                   "one ref")]
    assert _ids(db_at("a.db")) == ([], [])


def test_texts_are_stored_as_pipectl_stores_them(db_at, tmp_path: Path) -> None:
    """NFC and no surrounding space (an NFD owner did not match --owner), a control
    character refused, as the CSV import does."""
    nfd = "Zoe\u0308 A\u030angstro\u0308m"
    f = _write(tmp_path, [_deal(1, " R1 ", owner=nfd, company="  Acme ")])
    _import(db_at("a.db"), f)
    (row,) = _dump(db_at("a.db"))["deals"]
    assert {"R1", "Zoë Ångström", "Acme"} <= set(row)
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("b.db"), _write(tmp_path, [_deal(1, name="a\x07b")], "b.json"))
    assert failed.value.summary.errors == [(1, "name", "it contains a control character")]


@pytest.mark.parametrize(("change", "column", "reason"), [
    ({"id": 2**70}, "id", "should be less than or equal to 9007199254740992"),
    ({"id": 2**63 - 1}, "id", "should be less than or equal to 9007199254740992"),
    ({"value": 18500}, "value", "should be text, in quotes"),
    ({"currency": "usd"}, "currency", "'usd' is not three capital letters, e.g. EUR"),
    ({"bogus": 1}, "bogus", "is not a field of pipectl's export"),
    ({"created_at": "2025-01-01T00:00:00+00:00"}, "created_at",
     "'2025-01-01T00:00:00+00:00' is not a UTC moment, YYYY-MM-DDTHH:MM:SSZ"),
    ({"stage": None}, "stage", "should be text, in quotes"),
    ({"stage": "nowhere"}, "stage", "'nowhere' is not a stage of pipeline 'default'"),
])
def test_bad_fields_are_told_in_pipectl_words(db_at, tmp_path: Path, change: dict, column: str,
                                              reason: str) -> None:
    """A huge id was an internal error (OverflowError); pydantic's own words, patterns and
    class names reached the report."""
    f = _write(tmp_path, [_deal(1, **change)])
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("a.db"), f)
    assert failed.value.summary.errors == [(1, column, reason)]


def test_a_deal_that_is_not_an_object_is_told_so(db_at, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text(json.dumps({"pipectl_export": 1, "deals": [_deal(1), 5]}), encoding="utf-8")
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("a.db"), f)
    assert failed.value.summary.errors == [(2, "deal", "should be a JSON object")]


def test_bad_deals_are_reported_and_nothing_is_written(db_at, tmp_path: Path) -> None:
    db = db_at("a.db")
    _import(db, _write(tmp_path, [_deal(1, "KEEP")], "first.json"))
    before = _dump(db)
    rows = [_deal(i, f"R{i}") for i in range(1, 5001)]
    for i in range(100, 5000, 80):
        rows[i]["value"] = "lots"
    rows[4999]["stage"] = "nowhere"
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db, _write(tmp_path, rows))
    s = failed.value.summary
    assert (s.rows, s.bad_rows, s.added, s.events) == (5000, 63, 0, 0)
    assert len(s.errors) == 50 and s.errors[0] == (101, "value", s.errors[0][2])
    assert _dump(db) == before


def _won(i: int) -> dict:
    """A deal created in negotiation (pre-qualified) and won, its fields as its events make."""
    evs = [{**_created(2 * i), "to_stage": "negotiation", "reason": "met"},
           {"id": 2 * i + 1, "at": "2025-02-01T00:00:00Z", "kind": "stage",
            "from_stage": "negotiation", "to_stage": "won"}]
    return _deal(i, f"W{i}", evs, stage="won", prequalified_reason="met",
                 qualified_at="2025-01-01T00:00:00Z", updated_at="2025-02-01T00:00:00Z",
                 closed_at="2025-02-01T00:00:00Z")


def _event(i: int, **change: Any) -> Any:
    def edit(d: dict) -> None:
        d["events"][i].update(change)
    return edit


def _top(**change: Any) -> Any:
    def edit(d: dict) -> None:
        d.update(change)
    return edit


def _drop_events(**change: Any) -> Any:
    def edit(d: dict) -> None:
        del d["events"]
        d.update(change)
    return edit


@pytest.mark.parametrize(("edit", "column", "reason"), [
    (_event(0, at="2026-13-45T99:00:00Z"), "events.0.at",
     "'2026-13-45T99:00:00Z' is not a real moment"),
    (_event(1, at="2030-01-01T00:00:00Z"), "events.1.at", "2030-01-01T00:00:00Z is in the future"),
    (_event(1, close_date="2025-02-30"), "events.1.close_date", "'2025-02-30' is not a real date"),
    (_drop_events(created_at="2026-13-45T99:00:00Z"), "created_at",
     "'2026-13-45T99:00:00Z' is not a real moment"),
    (_drop_events(closed_at="2031-01-01T00:00:00Z"), "closed_at",
     "2031-01-01T00:00:00Z is in the future"),
    (_top(currency="JPY"), "currency", "'JPY' is not what its events make of it ('USD')"),
    (_top(value="12.00"), "value", "'12.00' is not what its events make of it ('10.00')"),
    (_top(stage="proposal", closed_at=None), "stage",
     "'proposal' is not what its events make of it ('won')"),
    (_top(closed_at="2025-03-01T00:00:00Z"), "closed_at", "'2025-03-01T00:00:00Z' is not"),
    (_event(1, kind="edit", field="name", old="Deal 2 ] \"x\"", new="X", from_stage=None,
            to_stage=None), "name",
     "'Deal 2 ] \"x\"' is not what its events make of it ('X')"),
    (_event(1, kind="lost", to_stage="lost", reason="r"), "lost_at_stage", "None is not what"),
    (_event(1, from_stage="proposal"), "events.1.from_stage",
     "'proposal' is not the stage the deal was in ('negotiation')"),
    (_event(1, kind="reopened"), "events.1.kind", "a deal leaves 'lost' by a 'reopened' event"),
    (_event(1, to_stage="lost"), "events.1.to_stage", "a 'stage' event cannot go to 'lost'"),
    (_event(0, kind="note", text="hi", to_stage=None, currency=None, value=None, reason=None),
     "events.0.kind", "a deal's first event, and only that one, is"),
    (_event(1, kind="edit", field="stage", old="negotiation", new="won", from_stage=None,
            to_stage=None), "events.1.field",
     "'stage' is not a text field of a deal"),
    # each kind of event carries the fields the commands give it, no other (a note with a
    # stage hit a CHECK constraint; a value without currency or a loss without reason crashed
    # report)
    (_event(1, kind="note", text="hi", from_stage=None), "events.1.to_stage",
     "a 'note' event has no to_stage"),
    (_event(1, kind="lost", to_stage="lost"), "events.1.reason", "a 'lost' event needs its reason"),
    (_event(1, kind="value", value="12.00", from_stage=None, to_stage=None), "events.1.currency",
     "a 'value' event needs its currency"),
    (_event(1, kind="edit", field="name", old="a", new="b", due="2026-01-01", from_stage=None,
            to_stage=None), "events.1.due", "a 'edit' event has no due"),
    (lambda d: d["events"].append({"id": 90, "at": "2025-03-01T00:00:00Z", "kind": "lost",
                                   "from_stage": "won", "to_stage": "lost", "reason": "r"}),
     "events.2.from_stage", "a deal is lost from an open stage, not 'won'"),
    (lambda d: d["events"].extend([
        {"id": 90, "at": "2025-02-02T00:00:00Z", "kind": "edit", "field": "name",
         "old": d["name"], "new": "X"},
        {"id": 91, "at": "2025-02-03T00:00:00Z", "kind": "edit", "field": "name", "old": "Y",
         "new": d["name"]}]), "events.3.old", "'Y' is not the deal's name then ('X')"),
])
def test_a_deal_whose_events_are_bad_or_disagree_with_it_is_a_bad_row(
        db_at, tmp_path: Path, edit: Any, column: str, reason: str) -> None:
    """An event's time is a real moment, not in the future; the events make a history pipectl
    could have written; the deal's fields are the ones its events make. Otherwise the deal is a
    bad row and nothing is written (a time like 2026-13-45T99:00:00Z was stored as it was and
    locked the deal; a currency of JPY over USD events split list from reports)."""
    db = db_at("a.db")
    good = _write(tmp_path, [_won(1), _won(2)], "good.json")
    _import(db_at("b.db"), good)  # the deals as they are import
    bad = _won(2)
    edit(bad)
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db, _write(tmp_path, [_won(1), bad]))
    s = failed.value.summary
    assert (s.bad_rows, s.added) == (1, 0)
    assert any((n, col) == (2, column) and why.startswith(reason)
               for n, col, why in s.errors), s.errors
    assert _dump(db) == {"deals": [], "events": []}


def test_events_listed_out_of_time_order_are_stored_in_time_order(db_at, tmp_path: Path) -> None:
    d = _won(1)
    d["events"].reverse()
    _import(db_at("a.db"), _write(tmp_path, [d]))
    _import(db_at("b.db"), _write(tmp_path, [_won(1)], "b.json"))
    assert _dump(db_at("a.db")) == _dump(db_at("b.db"))


@pytest.mark.parametrize(("text", "message"), [
    ('{"pipectl_export": 1, "deals": [{"id": 1', "is not valid JSON"),
    ('{"deals": [], "pipectl_export": 3}', "newer pipectl"),
    ('{"deals": [], "pipectl_export": 0}', "no format of pipectl's"),
    ('{"deals": [], "pipectl_export": "1"}', "should be a format number"),
    ('{"deals": {}}', "neither a pipectl export"),
    ('{"deals": [], "deals": 3}', "neither a pipectl export"),
    ('"deals"', "neither a pipectl export"),
    ('[1, 2]', "must hold objects"),
    ('[{"name": "A"}, 2, {"name": "B"', "is not valid JSON"),  # the worse problem first
])
def test_bad_files_change_nothing(db_at, tmp_path: Path, text: str, message: str) -> None:
    db = db_at("a.db")
    _import(db, _write(tmp_path, [_deal(1, "KEEP")], "first.json"))
    before = _dump(db)
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(UsageError, match=message):
        _import(db, f)
    assert _dump(db) == before


def test_a_later_deals_key_wins_as_in_json_load(db_at, tmp_path: Path) -> None:
    f = tmp_path / "twice.json"
    f.write_text('{"deals": [' + json.dumps(_deal(1, "A")) + '], "pipectl_export": 1, '
                 '"deals": [' + json.dumps(_deal(2, "B")) + "]}")
    _import(db_at("a.db"), f)
    assert [r[1] for r in _dump(db_at("a.db"))["deals"]] == ["B"]


def test_array_columns_are_the_keys_of_every_object(db_at, tmp_path: Path) -> None:
    f = tmp_path / "rows.json"
    f.write_text(json.dumps([{"name": "A ] ,"}] * 3 + [{"name": "B", "owner": "Łukasz",
                                                         "value": 12}]))
    summary = _import(db_at("a.db"), f)
    assert summary.added == 4
    got = {(r[2], r[7], r[13]) for r in _dump(db_at("a.db"))["deals"]}  # name, owner, value
    assert got == {("A ] ,", None, None), ("B", "Łukasz", 1200)}


def test_truncated_file_is_one_line_exit_2(tmp_path: Path) -> None:
    f = _write(tmp_path, [_deal(i) for i in range(1, 50)])
    f.write_bytes(f.read_bytes()[:-500])
    r = subprocess.run([pipectl_exe(), "import", str(f)], env=env(tmp_path / "a.db"),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "is not valid JSON" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.sqlite_only("the peak memory of a pipectl process importing into a file "
                         "(PIPECTL_DB); a server's import is benchmarks/postgres.py's")
def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """30,000 deals with 6 events each (~40 MB): the whole-file json.load took ~0.5 GB."""
    f = tmp_path / "big.json"
    with f.open("w", encoding="utf-8") as fh:
        fh.write('{"pipectl_export": 1, "deals": [')
        for i in range(1, 30_001):
            evs = [_created(i * 6)] + [
                {"id": i * 6 + k, "at": "2025-01-02T00:00:00Z", "kind": "note",
                 "text": f"note {k} for a deal ] with \"text\" of some length"}
                for k in range(1, 6)]
            fh.write(("," if i > 1 else "") + json.dumps(
                _deal(i, f"R{i}", evs, updated_at="2025-01-02T00:00:00Z")))
        fh.write("]}")
    code, kib = peak_rss([pipectl_exe(), "import", str(f)], env(tmp_path / "a.db"))
    assert code == 0
    assert kib < 150_000
    assert _ids(tmp_path / "a.db")[0][-1] == 30_000


def test_kept_ids_must_follow_the_events_times(db_at, tmp_path: Path) -> None:
    """Reports read a deal's history in id order: a file whose event ids go against their
    times is given new ids in time order (kept, its deal said qualification while reports
    said prospecting)."""
    evs = [{**_created(2), "at": "2025-01-01T00:00:00Z"},
           {"id": 1, "at": "2025-01-05T00:00:00Z", "kind": "stage", "from_stage": "prospecting",
            "to_stage": "qualification"}]
    f = _write(tmp_path, [_deal(1, "A", evs, stage="qualification",
                                updated_at="2025-01-05T00:00:00Z")])
    _import(db_at("a.db"), f)
    d = _dump(db_at("a.db"))
    assert [(e[0], e[3]) for e in d["events"]] == [(1, "created"), (2, "stage")]


def test_a_deal_without_ref_renamed_since_is_still_the_deal(db_at, tmp_path: Path) -> None:
    """Importing an export again after a rename added the deal again, each time."""
    db = db_at("a.db")
    f = _write(tmp_path, [_deal(1, None, [_created(1)])])
    _import(db, f)
    conn = connect(db)
    try:
        conn.execute("UPDATE deals SET name = 'Renamed' WHERE id = 1")
    finally:
        conn.close()
    again = _import(db, f)
    assert (again.added, again.updated + again.unchanged) == (0, 1)
    assert [r[0] for r in _dump(db)["deals"]] == [1]


def test_a_lone_surrogate_is_a_bad_cell(db_at, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text(json.dumps({"pipectl_export": 1, "deals": [_deal(1, name="Acme \ud800")]}),
                 encoding="utf-8")
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("a.db"), f)
    assert failed.value.summary.errors == [
        (1, "name", "it contains a character that is not text (a lone surrogate)")]


# ---------------------------------------------------------------- format 2: pipelines

def _write2(tmp_path: Path, deals_: list[dict], name: str = "x2.json") -> Path:
    f = tmp_path / name
    f.write_text(json.dumps({"pipectl_export": 2, "deals": deals_}), encoding="utf-8")
    return f


def _created2(i: int) -> dict:
    return {**_created(i), "pipeline": "default"}


def _agency_deal(i: int, ref: str | None = None, **more: Any) -> dict:
    """A deal of format 2 in AGENCY, created at its first stage, its checklist assessed."""
    evs = [
        {"id": 2 * i, "at": "2025-01-01T00:00:00Z", "kind": "created",
         "pipeline": "Agency retainers", "to_stage": "lead", "value": "10.00",
         "currency": "USD"},
        {"id": 2 * i + 1, "at": "2025-01-02T00:00:00Z", "kind": "checklist",
         "checklist": {"budget": True, "need": False}},
    ]
    return {"id": i, "ref": ref, "name": f"Deal {i}", "pipeline": "Agency retainers",
            "stage": "lead", "value": "10.00", "currency": "USD",
            "checklist": {"budget": True, "need": False}, "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-02T00:00:00Z", "events": evs, **more}


def _with_agency(db: Path) -> None:
    from tests.store.test_roundtrip import with_agency

    conn = connect(db)
    try:
        with_agency(conn)
    finally:
        conn.close()


def test_format_2_keeps_each_deals_pipeline_and_checklist(db_at, tmp_path: Path) -> None:
    db = db_at("a.db")
    _with_agency(db)
    summary = _import(db, _write2(tmp_path, [_agency_deal(1, "A"), _deal(2, "B", [_created2(9)],
                                                                          pipeline="default")]))
    assert (summary.added, summary.pipeline) == (2, None)
    d = _dump(db)
    deals_ = {r[1]: r for r in d["deals"]}
    assert (deals_["A"][9], deals_["A"][19]) == (2, '{"budget":true,"need":false}')
    assert (deals_["B"][9], deals_["B"][19]) == (1, None)
    checks = [(e[3], e[4], e[11]) for e in d["events"]]  # kind, pipeline_id, checks
    assert checks == [("created", 2, None), ("checklist", None, '{"budget":true,"need":false}'),
                      ("created", 1, None)]


def test_a_pipeline_the_database_lacks_is_one_line_unless_created(db_at, tmp_path: Path) -> None:
    db = db_at("a.db")
    f = _write2(tmp_path, [_deal(1, "B", [_created2(9)], pipeline="default"), _agency_deal(2)])
    with pytest.raises(UsageError) as refused:
        _import(db, f)
    assert str(refused.value) == (
        f"{f}: its deals are in pipeline 'Agency retainers', which this database does not "
        "have; nothing was imported (create it (pipectl pipeline apply FILE), or import with "
        "--create-pipeline 'Agency retainers')")
    assert _dump(db) == {"deals": [], "events": []}
    with pytest.raises(UsageError, match="no deal of the file is in a pipeline of that name"):
        _import(db, f, create_pipeline="Other")
    summary = _import(db, f, create_pipeline="Agency retainers")
    assert (summary.added, summary.pipeline, summary.pipeline_created) == (
        2, "Agency retainers", True)
    conn = connect(db)
    try:
        from pipectl.store import pipelines

        made = pipelines.by_name(conn, "Agency retainers")
        assert [(s.key, s.kind) for s in made.line] == [("lead", "open"), ("won", "won")]
        rows = _dump(db)["deals"]
        assert [r[9] for r in rows] == [1, made.id]
        # no gate in a pipeline made of stage names: the deal counts as qualified from its start
        assert rows[1][17] == "2025-01-01T00:00:00Z"
    finally:
        conn.close()


def test_format_1_goes_into_the_target_pipeline_its_checklist_as_one_object(
        db_at, tmp_path: Path) -> None:
    db = db_at("a.db")
    checklist = {"id": 3, "at": "2025-01-03T00:00:00Z", "kind": "checklist", "need": True,
                 "location": False}
    d = _deal(1, "A", [_created(2), checklist], location=False, need=True,
              updated_at="2025-01-03T00:00:00Z")
    summary = _import(db, _write(tmp_path, [d]))
    assert summary.pipeline == "default"
    row = _dump(db)["deals"][0]
    assert row[19] == '{"location":false,"need":true}'  # in format 1's order, as a migration
    assert _dump(db)["events"][1][11] == '{"location":false,"need":true}'
    # a checklist that is not what the events make is told by criterion
    bad = _deal(1, "A", [_created(2), checklist], location=True, need=True,
                updated_at="2025-01-03T00:00:00Z")
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("b.db"), _write(tmp_path, [bad], "bad.json"))
    assert failed.value.summary.errors[0][:2] == (1, "location")
    # into a pipeline of one's own, whose stages it must use
    _with_agency(db_at("c.db"))
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("c.db"), _write(tmp_path, [d], "c.json"), pipeline="Agency retainers")
    assert failed.value.summary.errors == [
        (1, "events.0.to_stage", "'prospecting' is not a stage of pipeline 'Agency retainers'")]


def test_the_format_number_after_the_deals_is_read_first(db_at, tmp_path: Path) -> None:
    """A format 1 file whose number comes after its deals: they are read again as format 1."""
    f = tmp_path / "late.json"
    f.write_text('{"deals": [' + json.dumps(_deal(1, "A", location=True)) +
                 '], "pipectl_export": 1}', encoding="utf-8")
    assert _import(db_at("a.db"), f).added == 1
    f2 = tmp_path / "late2.json"
    f2.write_text('{"deals": [' + json.dumps(_agency_deal(1, "A")) + '], "pipectl_export": 2}',
                  encoding="utf-8")
    _with_agency(db_at("b.db"))
    assert _import(db_at("b.db"), f2).added == 1
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db_at("c.db"), _write(tmp_path, [_agency_deal(1, "A")]))  # says format 1
    assert (1, "pipeline", "is not a field of pipectl's export") in failed.value.summary.errors


def test_a_deal_the_database_has_in_another_pipeline_is_a_bad_row(db_at, tmp_path: Path) -> None:
    db = db_at("a.db")
    _with_agency(db)
    _import(db, _write2(tmp_path, [_deal(1, "A", [_created2(1)], pipeline="default")],
                        "a.json"))
    before = _dump(db)
    moved = _agency_deal(1, "A")  # the same ref, in another pipeline
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db, _write2(tmp_path, [moved], "b.json"))
    assert failed.value.summary.errors == [
        (1, "pipeline", "the database has this deal (id 1) in pipeline 'default', the file in "
                        "'Agency retainers'; move it first (pipectl move)")]
    assert _dump(db) == before


@pytest.mark.parametrize(("edit", "column", "reason"), [
    (lambda evs: evs[0].pop("pipeline"), "events.0.pipeline",
     "a 'created' event needs its pipeline"),
    (lambda evs: evs[1].update(pipeline="default"), "events.1.pipeline",
     "a 'checklist' event has no pipeline"),
    (lambda evs: evs.append({"id": 9, "at": "2025-01-03T00:00:00Z", "kind": "stage",
                             "pipeline": "default", "from_stage": "lead",
                             "to_stage": "pitch"}), "events.2.to_stage",
     "'pitch' is not a stage of pipeline 'default'"),
    (lambda evs: evs.append({"id": 9, "at": "2025-01-03T00:00:00Z", "kind": "stage",
                             "pipeline": "default", "from_stage": "lead",
                             "to_stage": "meeting"}), "events.2.pipeline",
     "a 'stage' event happens in the deal's pipeline ('Agency retainers'), not in 'default'"),
    (lambda evs: evs.append({"id": 9, "at": "2025-01-03T00:00:00Z", "kind": "pipeline",
                             "pipeline": "Agency retainers", "from_stage": "lead",
                             "to_stage": "pitch"}), "events.2.pipeline",
     "the deal is in pipeline 'Agency retainers' already"),
    (lambda evs: evs.append({"id": 9, "at": "2025-01-03T00:00:00Z", "kind": "pipeline",
                             "pipeline": "default", "from_stage": "lead",
                             "to_stage": "won"}), "events.2.to_stage",
     "a deal moved from 'lead' cannot land on 'won'"),
])
def test_format_2_histories_are_checked_against_their_pipelines(db_at, tmp_path: Path, edit: Any,
                                                                column: str, reason: str) -> None:
    db = db_at("a.db")
    _with_agency(db)
    d = _agency_deal(1, "A")
    edit(d["events"])
    with pytest.raises(importer.ImportFailed) as failed:
        _import(db, _write2(tmp_path, [d]))
    assert any((col, why) == (column, reason) or (col == column and why.startswith(reason))
               for _, col, why in failed.value.summary.errors), failed.value.summary.errors


def test_a_move_between_pipelines_round_trips(db_at, tmp_path: Path) -> None:
    from tests.store.test_roundtrip import with_agency

    src = db_at("src.db")
    conn = connect(src)
    try:
        with_agency(conn)
        deal_id, _, _ = deals.add(conn, NewDeal(name="Mover", stage="meeting",
                                                prequalified="met"), NOW)
        deals.move_to(conn, deal_id, "Agency retainers", "pitch", at=NOW + timedelta(hours=1))
        deals.lose(conn, deal_id, "price", at=NOW + timedelta(hours=2))
        deals.move_to(conn, deal_id, "default", "proposal", at=NOW + timedelta(hours=3))
        out = tmp_path / "all.json"
        exporter.export(conn, out, fmt="json", status="all", events=True, raw=False, at=NOW)
    finally:
        conn.close()
    dst = db_at("dst.db")
    _with_agency(dst)
    assert _import(dst, out).added == 1
    assert _dump(dst) == _dump(src)
    kinds = [(e["kind"], e.get("pipeline")) for e in
             json.loads(out.read_text())["deals"][0]["events"]]
    assert kinds == [("created", "default"), ("pipeline", "Agency retainers"),
                     ("lost", "Agency retainers"), ("pipeline", "default")]


# ---------------------------------------------------------------- format 2: pipeline definitions


def _definitions(*names: str) -> list[dict]:
    """The "pipelines" member of an export: AGENCY's definition (and the default's)."""
    from pipectl.domain.pipeline import DEFAULT, to_json
    from tests.store.test_roundtrip import AGENCY

    made = {"default": DEFAULT, AGENCY.name: AGENCY}
    return [{"name": n, "default": n == "default", "definition": json.loads(to_json(made[n]))}
            for n in names]


def _write_defined(tmp_path: Path, deals_: list[dict], pipelines_: Any,
                   name: str = "d.json", after: bool = False) -> Path:
    f = tmp_path / name
    head = {"pipectl_export": 2, "exported_at": "2026-01-01T00:00:00Z"}
    doc = ({**head, "deals": deals_, "pipelines": pipelines_} if after
           else {**head, "pipelines": pipelines_, "deals": deals_})
    f.write_text(json.dumps(doc), encoding="utf-8")
    return f


def test_a_pipeline_the_file_defines_is_created_in_the_import(db_at, tmp_path: Path) -> None:
    from pipectl.store import pipelines
    from tests.store.test_roundtrip import AGENCY

    f = _write_defined(tmp_path, [_agency_deal(1, "A"), _deal(2, "B", [_created2(9)],
                                                               pipeline="default")],
                       _definitions("default", AGENCY.name))
    db = db_at("a.db")
    dry = _import(db, f, dry_run=True)
    assert (dry.added, dry.pipelines_created, dry.pipeline) == (2, [AGENCY.name], None)
    conn = connect(db)
    try:
        assert pipelines.find_id(conn, AGENCY.name) is None  # a dry run keeps nothing
    finally:
        conn.close()
    summary = _import(db, f)
    assert (summary.added, summary.pipelines_created, summary.pipeline_created) == (
        2, [AGENCY.name], False)
    conn = connect(db)
    try:
        assert pipelines.by_name(conn, AGENCY.name) == AGENCY
    finally:
        conn.close()
    # the file's qualified_at stands: the pipeline has its gate
    assert _dump(db)["deals"][0][17] is None
    assert _import(db, f).pipelines_created == []


def test_a_file_whose_ids_cannot_be_kept_creates_its_pipeline_once(db_at, tmp_path: Path) -> None:
    """The first pass (ids kept) is rolled back when an id repeats: the pipeline it made goes
    with it and the second pass makes it again."""
    from tests.store.test_roundtrip import AGENCY

    second = _agency_deal(2, "B")
    second["events"][0]["id"] = 2  # the first deal's created event's id
    f = _write_defined(tmp_path, [_agency_deal(1, "A"), second], _definitions(AGENCY.name))
    summary = _import(db_at("a.db"), f)
    assert (summary.added, summary.pipelines_created) == (2, [AGENCY.name])
    d = _dump(db_at("a.db"))
    assert [r[9] for r in d["deals"]] == [2, 2]
    assert [e[0] for e in d["events"]] == [1, 2, 3, 4]  # new ids


@pytest.mark.parametrize(("pipelines_", "reason"), [
    ({"Agency retainers": {}}, "'pipelines' should be a list of"),
    ([{"definition": {}}], "'pipelines' should be a list of"),
    ([{"name": "Agency retainers", "definition": "[]"}],
     "the file's definition of pipeline 'Agency retainers' is not valid: its "
     "'definition' is not an object"),
    ([{"name": "Agency retainers", "definition": {"name": "Agency retainers"}}],
     "the file's definition of pipeline 'Agency retainers' is not valid: not a stored "
     "pipeline"),
    ([{"name": "Agency retainers", "definition": {"name": "Agency retainers", "stages": [
        {"key": "lead", "label": "Lead"}, {"key": "Won!", "label": "Won", "kind": "won"}]}}],
     "the file's definition of pipeline 'Agency retainers' is not valid: stage 2"),
])
def test_a_bad_definition_is_one_line(db_at, tmp_path: Path, pipelines_: Any, reason: str) -> None:
    f = _write_defined(tmp_path, [_agency_deal(1, "A")], pipelines_)
    db = db_at("a.db")
    with pytest.raises(UsageError) as refused:
        _import(db, f)
    assert str(refused.value).startswith(f"{f}: {reason}"), str(refused.value)
    assert "\n" not in str(refused.value)
    assert _dump(db) == {"deals": [], "events": []}


def test_definitions_after_the_deals_are_not_read(db_at, tmp_path: Path) -> None:
    """Export writes them first; after the deals they are skipped (the deals were read)."""
    from tests.store.test_roundtrip import AGENCY

    f = _write_defined(tmp_path, [_agency_deal(1, "A")], _definitions(AGENCY.name), after=True)
    with pytest.raises(UsageError, match="which this database does not have"):
        _import(db_at("a.db"), f)


def test_a_removed_pipeline_travels_under_its_stored_name(db_at, tmp_path: Path) -> None:
    """A deal moved out of a pipeline later removed: its history names the removed pipeline,
    which the export defines under its stored name ("... (removed ...)")."""
    from pipectl.services import pipelines as pipeline_service
    from pipectl.store import pipelines
    from tests.store.test_roundtrip import with_agency

    src = db_at("src.db")
    conn = connect(src)
    try:
        with_agency(conn)
        deal_id, _, _ = deals.add(conn, NewDeal(name="Mover", pipeline="Agency retainers"), NOW)
        deals.move_to(conn, deal_id, "default", "prospecting", at=NOW + timedelta(hours=1))
        pipeline_service.remove(conn, "Agency retainers", at=NOW + timedelta(hours=2))
        removed = pipelines.load(conn, 2)
        stored = conn.execute("SELECT name FROM pipelines WHERE id = 2").fetchone()[0]
        out = tmp_path / "all.json"
        exporter.export(conn, out, fmt="json", status="all", events=True, raw=False, at=NOW)
    finally:
        conn.close()
    assert stored.startswith("Agency retainers (removed ")
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [p["name"] for p in data["pipelines"]] == ["default", stored]
    dst = db_at("dst.db")
    assert _import(dst, out).pipelines_created == [stored]
    assert _dump(dst) == _dump(src)
    conn = connect(dst)
    try:
        assert pipelines.load(conn, 2) == replace(removed, name=stored)
    finally:
        conn.close()
    # back into the database it came from: the removed pipeline is the one its history names
    again = _import(src, out)
    assert (again.unchanged, again.pipelines_created) == (1, [])


def test_an_export_names_the_pipelines_of_its_deals_or_every_one(db_at, tmp_path: Path) -> None:
    from tests.store.test_roundtrip import AGENCY, with_agency

    conn = connect(db_at("a.db"))
    try:
        with_agency(conn)

        def names(status: str = "all", events: bool = True) -> list[str]:
            return [p["name"] for p in exporter.pipeline_records(conn, status, events)]

        assert names() == ["default", AGENCY.name]  # no deals: every pipeline
        deal_id, _, _ = deals.add(conn, NewDeal(name="Mover", pipeline=AGENCY.name), NOW)
        assert names() == [AGENCY.name]
        deals.move_to(conn, deal_id, "default", "prospecting", at=NOW + timedelta(hours=1))
        assert names() == ["default", AGENCY.name]  # its history is in both
        assert names(events=False) == ["default"]
        assert names("won") == ["default", AGENCY.name]  # no won deal: every pipeline
        deals.add(conn, NewDeal(name="Other", pipeline=AGENCY.name), NOW)
        assert names("open", events=False) == ["default", AGENCY.name]
    finally:
        conn.close()
