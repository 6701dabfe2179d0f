"""Property: whatever users do, the deals table is exactly a replay of the event history,
refused moves change nothing, and no deal is won without having been qualified."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.domain.checklist import decode
from pipectl.domain.pipeline import DEFAULT, LOST, Pipeline
from pipectl.errors import MoveRefused, NotFound
from pipectl.models import DealEdit, NewDeal
from pipectl.services import deals as svc
from pipectl.store import deals, pipelines
from pipectl.store.db import transaction
from tests import engines
from tests.unit.test_rules_custom import TWELVE

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def operations(p: Pipeline):
    stage = st.sampled_from([*p.keys, LOST])
    return st.lists(
        st.one_of(
            st.tuples(st.just("add"), stage, st.booleans()),
            st.tuples(st.just("advance"), st.integers(1, 4), st.one_of(st.none(), stage),
                      st.booleans()),
            st.tuples(st.just("qualify"), st.integers(1, 4),
                      st.dictionaries(st.sampled_from(p.checklist), st.booleans(),
                                      min_size=1)),
            st.tuples(st.just("lose"), st.integers(1, 4)),
            st.tuples(st.just("reopen"), st.integers(1, 4)),
            st.tuples(st.just("edit"), st.integers(1, 4), st.integers(0, 10**9),
                      st.integers(0, 400)),
            st.tuples(st.just("note"), st.integers(1, 4)),
        ),
        min_size=1,
        max_size=40,
    )


def snapshot(conn) -> tuple:
    return (
        [tuple(r) for r in conn.execute("SELECT * FROM deals ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT * FROM events ORDER BY id")],
    )


def replay(p: Pipeline, events: list[dict]) -> dict:
    """The current state of one deal, computed from its events alone: written here again, on
    purpose, apart from domain.projection, so that the two check each other."""
    s: dict = {"checklist": None, "qualified_at": None, "closed_at": None,
               "lost_at_stage": None, "lost_reason": None, "probability": None,
               "next_action": None, "next_due": None}
    marks: dict = {}
    for e in events:
        kind, when = e["kind"], e["at"]
        if kind == "created":
            s |= {"stage": e["to_stage"], "value_minor": e.get("value_minor"),
                  "currency": e["currency"], "close_date": e.get("close_date"),
                  "probability": e.get("probability"), "prequalified_reason": e.get("reason"),
                  "created_at": when}
            if e.get("reason") or p.is_qualified_stage(e["to_stage"]):
                s["qualified_at"] = when
            if not p.is_open(e["to_stage"]):
                s["closed_at"] = when  # logged already won
        if kind in ("stage", "lost", "reopened"):
            to = e["to_stage"]
            s["stage"] = to
            if kind == "lost":
                s |= {"lost_at_stage": e["from_stage"], "lost_reason": e["reason"],
                      "closed_at": when}
            elif kind == "reopened":
                s |= {"lost_at_stage": None, "lost_reason": None, "closed_at": None}
            elif to == p.won_key:
                s["closed_at"] = when
            elif p.is_open(to):
                s["closed_at"] = None
            if s["qualified_at"] is None and to != LOST and p.is_qualified_stage(to):
                s["qualified_at"] = when
            if kind == "stage" and e.get("reason"):
                s["prequalified_reason"] = e["reason"]
        if kind == "checklist":
            marks |= decode(e["checks"])
            ordered = {c: marks[c] for c in p.checklist if c in marks}
            s["checklist"] = json.dumps(ordered, separators=(",", ":")) if ordered else None
        if kind == "value":
            s["value_minor"], s["currency"] = e.get("value_minor"), e["currency"]
        if kind == "close_date":
            s["close_date"] = e.get("close_date")
        if kind == "probability":
            s["probability"] = e.get("probability")
        if kind == "note" and (e.get("next_action") or e.get("due")):
            s["next_action"], s["next_due"] = e.get("next_action"), e.get("due")
        s["updated_at"] = when
    return s


def _run(engine: str, p: Pipeline, sequence) -> None:
    with engines.scratch(engine, "p.db") as db:
        _run_in(engines.connect(db), p, sequence)


def _run_in(conn, p: Pipeline, sequence) -> None:
    if p.name != DEFAULT.name:
        with transaction(conn):
            pipelines.create(conn, p, "2025-12-01T00:00:00Z")
    t = T0
    try:
        for op in sequence:
            t += timedelta(hours=5)
            before = snapshot(conn)
            try:
                match op:
                    case ("add", stage, prequal):
                        svc.add(conn, NewDeal(name="D", stage=stage, pipeline=p.name,
                                              prequalified="known" if prequal else None,
                                              value_minor=1000, currency="EUR"), t)
                    case ("advance", i, to, prequal):
                        svc.advance(conn, i, to, "known" if prequal else None, None, t)
                    case ("qualify", i, changes):
                        svc.qualify(conn, i, changes, None, t)
                    case ("lose", i):
                        svc.lose(conn, i, "price", t)
                    case ("reopen", i):
                        svc.reopen(conn, i, t)
                    case ("edit", i, value, days):
                        svc.edit(conn, i, DealEdit(value_minor=value,
                                                   close_date=date(2026, 1, 1)
                                                   + timedelta(days=days)), t)
                    case ("note", i):
                        svc.note(conn, i, "hi", "call", "2026-05-01", t)
            except (MoveRefused, NotFound) as refused:
                assert snapshot(conn) == before, f"refused {op} changed the database"
                del refused
        for row in deals.list_deals(conn, status="all"):
            events = deals.events(conn, row["id"])
            expected = replay(p, events)
            for key, value in expected.items():
                assert row[key] == value, (key, row[key], value, events)
            times = [e["at"] for e in events]
            assert times == sorted(times)
            if row["stage"] != LOST and p.is_won(row["stage"]):
                assert row["qualified_at"] is not None and row["qualified_at"] <= row["closed_at"]
            for e in events:
                if e["kind"] == "stage" and e["to_stage"] != LOST:
                    a, b = e["from_stage"], e["to_stage"]
                    for passed in p.between(a, b) if p.order(b) > p.order(a) else ():
                        # the only skips the domain allows: a skippable stage, or the gate by
                        # a pre-qualified deal
                        assert passed.skippable or (passed.gate and row["qualified_at"]), e
    finally:
        conn.close()


# On PostgreSQL a fifth of the examples (engines.settings_for): each makes its database anew.
def test_deals_table_is_a_replay_of_events(engine) -> None:
    @settings(**engines.settings_for(engine, 150), deadline=None)
    @given(operations(DEFAULT))
    def run(sequence) -> None:
        _run(engine, DEFAULT, sequence)

    run()


def test_deals_table_is_a_replay_of_events_in_a_twelve_stage_pipeline(engine) -> None:
    @settings(**engines.settings_for(engine, 100), deadline=None)
    @given(operations(TWELVE))
    def run(sequence) -> None:
        _run(engine, TWELVE, sequence)

    run()


# ---------------------------------------------------------------- the reports' snapshot
# The as-of snapshot of the reports (pipectl.reports.snapshot, SQL over every deal at once)
# must say of each deal what domain.projection says from its events up to that moment, in a
# database of two pipelines where deals also move from one into the other.

_deal = st.integers(0, 20)  # a deal among those added so far (modulo their number)
snapshot_ops = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 5]),  # hours since the previous operation (0: the same moment)
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, 6), st.booleans()),
            st.tuples(st.just("advance"), _deal, st.one_of(st.none(), st.integers(0, 6)),
                      st.booleans()),
            st.tuples(st.just("advance"), _deal, st.none(), st.booleans()),
            st.tuples(st.just("qualify"), _deal, st.booleans()),
            st.tuples(st.just("lose"), _deal),
            st.tuples(st.just("reopen"), _deal),
            st.tuples(st.just("move"), _deal, st.one_of(st.none(), st.integers(0, 6))),
            st.tuples(st.just("edit"), _deal, st.integers(0, 10**6), st.integers(0, 400),
                      st.one_of(st.none(), st.integers(0, 100))),
            st.tuples(st.just("note"), _deal),
        ),
    ),
    min_size=1,
    max_size=60,
)


def _second_pipeline():
    from pipectl.domain.pipeline import Pipeline, StageDef

    return Pipeline.of("Partners", [
        StageDef("intro", "Introduction", probability=20, rot_days=7),
        StageDef("pilot", "Pilot", probability=50, gate=True),
        StageDef("contract", "Contract", probability=75, skippable=True),
        StageDef("signed", "Signed", kind="won", probability=100),
        StageDef("live", "Live", kind="after_won", probability=100),
    ], ("fit",))


def _expected(events: list[dict], pipelines: dict) -> dict:
    """What the snapshot must say of one deal, from its events (oldest first)."""
    from pipectl.domain.pipeline import LOST
    from pipectl.domain.projection import project

    deal = project(events, pipelines)
    pipeline = pipelines[deal["pipeline_id"]]
    status = pipeline.status(deal["stage"]).value
    moves = [e for e in events if "to_stage" in e]
    reached = max(pipeline.order(e["to_stage"]) if e["to_stage"] != LOST else 0
                  for e in moves if e["pipeline_id"] == deal["pipeline_id"])
    return {
        "pipeline_id": deal["pipeline_id"],
        "stage": deal["stage"],
        "status": status,
        "entered_at": moves[-1]["at"],
        "lost_stage": deal["lost_at_stage"],
        "lost_reason": deal["lost_reason"],
        "decided_at": deal["closed_at"],
        "won_at": deal["closed_at"] if status == "won" else None,
        "qualified_at": deal["qualified_at"],
        "reached": reached,
        "value_minor": deal["value_minor"],
        "currency": deal["currency"],
        "close_date": deal["close_date"],
        "probability": deal["probability"],
        "created_at": deal["created_at"],
        # what an import left unknown, told on the created event (none: daily commands)
        "unknown": events[0].get("new") if events[0].get("field") == "unknown" else None,
    }


def test_report_snapshot_is_the_projection_as_of_each_moment(engine):
    # on PostgreSQL a fifth of the examples (engines.settings_for)
    @settings(**engines.settings_for(engine, 100), deadline=None)
    @given(snapshot_ops)
    def run(sequence) -> None:
        with engines.scratch(engine, "s.db") as db:
            _snapshot_run(engines.connect(db), sequence)

    run()


def _snapshot_run(conn, sequence) -> None:
    from pipectl.errors import UsageError
    from pipectl.reports import snapshot as report_snapshot
    from pipectl.services import deals as svc
    from pipectl.store import pipelines as pipeline_store
    from pipectl.store.db import transaction
    from pipectl.values import iso

    t = T0
    try:
        with transaction(conn):
            pipeline_store.create(conn, _second_pipeline(), iso(T0))
        names = ["default", "Partners"]
        defs = pipeline_store.all_in_force(conn)

        for name, stage in (("default", "prospecting"), ("Partners", "intro")):
            svc.add(conn, NewDeal(name="D", pipeline=name, stage=stage, value_minor=500,
                                  currency="USD"), at=t)
        added = 2

        def stage_of(deal_id: int, index: int | None) -> str | None:
            if index is None:
                return None
            pid = deals.get(conn, deal_id)["pipeline_id"]
            keys = defs[pid].keys
            return keys[index % len(keys)]

        for gap, op in sequence:
            t += timedelta(hours=gap)
            if op[0] != "add":
                op = (op[0], op[1] % added + 1, *op[2:])
            try:
                match op:
                    case ("add", which, index, prequal):
                        keys = defs[which + 1].keys
                        svc.add(conn, NewDeal(name="D", pipeline=names[which],
                                              stage=keys[index % len(keys)],
                                              prequalified="known" if prequal else None,
                                              value_minor=1000, currency="EUR"), at=t)
                        added += 1
                    case ("advance", i, index, prequal):
                        svc.advance(conn, i, to=stage_of(i, index),
                                    prequalified="known" if prequal else None, at=t)
                    case ("qualify", i, met):
                        pid = deals.get(conn, i)["pipeline_id"]
                        svc.qualify(conn, i, dict.fromkeys(defs[pid].checklist, met), at=t)
                    case ("lose", i):
                        svc.lose(conn, i, "price", at=t)
                    case ("reopen", i):
                        svc.reopen(conn, i, at=t)
                    case ("move", i, index):
                        row = deals.get(conn, i)
                        other = 3 - row["pipeline_id"]
                        keys = defs[other].keys
                        svc.move_to(conn, i, names[other - 1],
                                    None if index is None else keys[index % len(keys)], at=t)
                    case ("edit", i, value, days, prob):
                        svc.edit(conn, i, DealEdit(
                            value_minor=value,
                            close_date=date(2026, 1, 1) + timedelta(days=days),
                            probability=prob, clear_probability=prob is None), at=t)
                    case ("note", i):
                        svc.note(conn, i, "hi", "call", "2026-05-01", at=t)
            except (MoveRefused, NotFound, UsageError):
                pass
        histories = {row["id"]: deals.events(conn, row["id"])
                     for row in deals.list_deals(conn, status="all")}
        moments = sorted({e["at"] for events in histories.values() for e in events})
        for as_of in moments[:: max(1, len(moments) // 12)] + moments[-1:]:
            table = report_snapshot.build(conn, as_of, pipelines=defs)
            try:
                got = {r["id"]: {k: v for k, v in dict(r).items() if k != "id"}
                       for r in conn.execute(f"SELECT * FROM {table}")}
            finally:
                report_snapshot.drop(conn, table)
            expected = {
                deal_id: _expected([e for e in events if e["at"] <= as_of], defs)
                for deal_id, events in histories.items() if events[0]["at"] <= as_of
            }
            assert got.keys() == expected.keys(), as_of
            for deal_id, want in expected.items():
                assert got[deal_id] == want, (as_of, deal_id, histories[deal_id])
    finally:
        conn.close()


# ---------------------------------------------------------------- the bulk import
# A large CSV's usual rows become deals and events by INSERT ... SELECT (store/bulk.py), not
# through domain.projection: each deal the SQL writes must be exactly what the projection makes
# of the events it writes, in the default pipeline and in pipelines of one's own (a gate that
# is not the second stage, none at all, several after-won stages).


def _import_targets() -> list:
    """Pipelines an import writes into (None: the default one)."""
    from pipectl.domain.pipeline import Pipeline, StageDef

    return [
        None,
        _second_pipeline(),
        Pipeline.of("Flat", [
            StageDef("ask", "Asked", probability=30),
            StageDef("quote", "Quoted", probability=60, skippable=True),
            StageDef("deal", "Deal done", kind="won", probability=100),
            StageDef("kickoff", "Kick-off", kind="after_won", probability=100),
            StageDef("renewal", "Renewal", kind="after_won", probability=100),
        ]),
    ]


_MOMENTS = ["", "2025-03-01T09:00:00Z", "2025-06-30T23:59:59Z", "2026-01-15T12:00:00Z"]


def _import_row(pipeline) -> st.SearchStrategy:
    """A CSV row in pipectl's own form for ``pipeline`` (None: the default one): stage and
    status cells that agree, the usual times, amounts and percentages."""
    from pipectl.domain.pipeline import DEFAULT

    p = pipeline or DEFAULT
    opens = [s for s in p.line if s.kind == "open"]
    wons = [s for s in p.line if s.kind != "open"]
    open_names = [n for s in opens for n in (s.key, s.label.upper())]
    won_names = [n for s in wons for n in (s.key, s.label)]
    stage_status = st.one_of(
        st.tuples(st.sampled_from(open_names), st.sampled_from(["", "open", "won", "lost"])),
        st.tuples(st.sampled_from(won_names), st.sampled_from(["", "won"])),
        st.tuples(st.sampled_from(["lost", "Closed Lost"]), st.sampled_from(["", "lost"])),
        st.tuples(st.just(""), st.sampled_from(["", "open", "won", "lost"])),
    )
    return st.fixed_dictionaries({
        "stage_status": stage_status,
        "lost_at_stage": st.sampled_from(["", *(s.key for s in opens)]),
        "value": st.sampled_from(["", "0", "12", "1200"]),
        "currency": st.sampled_from(["", "EUR", "JPY"]),
        "probability": st.sampled_from(["", "0", "40", "100"]),
        "close_date": st.sampled_from(["", "2025-05-05", "2026-02-28"]),
        "created_at": st.sampled_from(_MOMENTS),
        "closed_at": st.sampled_from(_MOMENTS),
        "updated_at": st.sampled_from(_MOMENTS),
        "prequalified": st.sampled_from(["", "referral"]),
        "note": st.sampled_from(["", "called"]),
        "has_ref": st.booleans(),
    })


def test_bulk_import_writes_what_the_projection_makes_of_its_events(engine, tmp_path_factory):
    # on PostgreSQL a fifth of the examples (engines.settings_for)
    @settings(**engines.settings_for(engine, 150), deadline=None)
    @given(st.integers(0, 2).flatmap(
        lambda k: st.tuples(st.just(k), st.lists(_import_row(_import_targets()[k]), min_size=1,
                                                 max_size=25))))
    def run(case) -> None:
        _bulk_case(engine, tmp_path_factory, case)

    run()


def _bulk_case(engine, tmp_path_factory, case) -> None:
    import csv

    from pipectl.domain.pipeline import LOST

    which, rows = case
    target = _import_targets()[which]
    base = tmp_path_factory.mktemp("bulk")
    f = base / "in.csv"
    header = ["ref", "name", "stage", "status", "lost_at_stage", "value", "currency",
              "probability", "close_date", "created_at", "closed_at", "updated_at",
              "prequalified", "note"]
    with f.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i, r in enumerate(rows):
            stage, status = r["stage_status"]
            lost_at = r["lost_at_stage"] if LOST in (stage.lower(), status) else ""
            out.writerow([f"R{i}" if r["has_ref"] else "", f"Deal {i}", stage, status, lost_at,
                          *(r[h] for h in header[5:])])
    with engines.scratch(engine, "b.db") as db:
        _bulk_run(engines.connect(db), f, target, rows)


def _bulk_run(conn, f, target, rows) -> None:
    from pipectl.domain import projection
    from pipectl.store import bulk as bulk_sql
    from pipectl.store import deals as deal_store
    from pipectl.store import pipelines as pipeline_store
    from pipectl.store.db import transaction
    from pipectl.transfer import common, importer
    from pipectl.values import iso

    left: list[int] = []
    real_leftover, real_bulk = bulk_sql.leftover_rows, common.BULK_BYTES

    def counting(*args, **kwargs):
        found = list(real_leftover(*args, **kwargs))
        left.append(len(found))
        return iter(found)

    try:
        if target is not None:
            with transaction(conn):
                pipeline_store.create(conn, target, iso(T0))
        bulk_sql.leftover_rows, common.BULK_BYTES = counting, 0
        summary = importer.run(conn, f, importer.Options(
            pipeline=target.name if target is not None else None), T0 + timedelta(days=400))
        assert left == [0]  # every row went through the SQL
        assert summary.added == len(rows)
        defs = pipeline_store.all_in_force(conn)
        pid = 1 if target is None else 2
        for row in deal_store.list_deals(conn, status="all"):
            events = deal_store.events(conn, row["id"])
            assert {e["pipeline_id"] for e in events if "to_stage" in e} == {pid}
            given = projection.blank_deal()  # what the events do not say
            given.update({k: row[k] for k in ("id", "ref", *projection.DEAL_TEXTS)})
            made = projection.project(events, defs, given)
            assert {k: row[k] for k in projection.DEAL_FIELDS} == made, events
    finally:
        bulk_sql.leftover_rows, common.BULK_BYTES = real_leftover, real_bulk
        conn.close()
