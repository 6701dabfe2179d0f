"""Property: whatever users do, the deals table is exactly a replay of the event history,
refused moves change nothing, and no deal is won without having been qualified."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl import stages
from pipectl.errors import MoveRefused, NotFound
from pipectl.models import DealEdit, NewDeal
from pipectl.qualification import CRITERIA
from pipectl.stages import Stage
from pipectl.store import deals
from pipectl.store.db import connect

T0 = datetime(2026, 1, 1, tzinfo=UTC)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(list(Stage)), st.booleans()),
        st.tuples(st.just("advance"), st.integers(1, 4),
                  st.one_of(st.none(), st.sampled_from(list(Stage))), st.booleans()),
        st.tuples(st.just("qualify"), st.integers(1, 4),
                  st.dictionaries(st.sampled_from(CRITERIA), st.booleans(),
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


def replay(events: list[dict]) -> dict:
    """The current state of one deal, computed from its events alone."""
    s: dict = {c: None for c in CRITERIA}
    s |= {"qualified_at": None, "closed_at": None, "lost_at_stage": None, "lost_reason": None,
          "probability": None, "next_action": None, "next_due": None}
    for e in events:
        kind, when = e["kind"], e["at"]
        if kind == "created":
            s |= {"stage": e["to_stage"], "value_minor": e.get("value_minor"),
                  "currency": e["currency"], "close_date": e.get("close_date"),
                  "probability": e.get("probability"), "prequalified_reason": e.get("reason"),
                  "created_at": when}
            if e.get("reason") or stages.is_qualified_stage(Stage(e["to_stage"])):
                s["qualified_at"] = when
            if not stages.is_open(Stage(e["to_stage"])):
                s["closed_at"] = when  # logged already won
        if kind in ("stage", "lost", "reopened"):
            to = Stage(e["to_stage"])
            s["stage"] = to.value
            if kind == "lost":
                s |= {"lost_at_stage": e["from_stage"], "lost_reason": e["reason"],
                      "closed_at": when}
            elif kind == "reopened":
                s |= {"lost_at_stage": None, "lost_reason": None, "closed_at": None}
            elif to is Stage.WON:
                s["closed_at"] = when
            elif stages.is_open(to):
                s["closed_at"] = None
            if s["qualified_at"] is None and stages.is_qualified_stage(to):
                s["qualified_at"] = when
            if kind == "stage" and e.get("reason"):
                s["prequalified_reason"] = e["reason"]
        if kind == "checklist":
            for c in CRITERIA:
                if c in e:
                    s[c] = e[c]
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


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_deals_table_is_a_replay_of_events(tmp_path_factory, sequence) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.db"
    conn = connect(path)
    t = T0
    try:
        for op in sequence:
            t += timedelta(hours=5)
            before = snapshot(conn)
            try:
                match op:
                    case ("add", stage, prequal):
                        deals.add(conn, NewDeal(name="D", stage=stage,
                                                prequalified="known" if prequal else None,
                                                value_minor=1000, currency="EUR"), t)
                    case ("advance", i, to, prequal):
                        deals.advance(conn, i, t, to, "known" if prequal else None)
                    case ("qualify", i, changes):
                        deals.qualify(conn, i, changes, t)
                    case ("lose", i):
                        deals.lose(conn, i, t, "price")
                    case ("reopen", i):
                        deals.reopen(conn, i, t)
                    case ("edit", i, value, days):
                        deals.edit(conn, i, DealEdit(value_minor=value,
                                                     close_date=date(2026, 1, 1)
                                                     + timedelta(days=days)), t)
                    case ("note", i):
                        deals.note(conn, i, "hi", t, next_action="call", due="2026-05-01")
            except (MoveRefused, NotFound) as refused:
                assert snapshot(conn) == before, f"refused {op} changed the database"
                del refused
        for row in deals.list_deals(conn, status="all"):
            events = deals.events(conn, row["id"])
            expected = replay(events)
            for key, value in expected.items():
                assert row[key] == value, (key, row[key], value, events)
            times = [e["at"] for e in events]
            assert times == sorted(times)
            if row["stage"] in ("won", "post_purchase"):
                assert row["qualified_at"] is not None and row["qualified_at"] <= row["closed_at"]
            for e in events:
                if e["kind"] == "stage":
                    a, b = Stage(e["from_stage"]), Stage(e["to_stage"])
                    gap = stages.order(b) - stages.order(a)
                    if gap > 1:  # the only skips the domain allows
                        assert (a, b) in ((Stage.PROSPECTING, Stage.MEETING),
                                          (Stage.PROPOSAL, Stage.WON)), e
    finally:
        conn.close()
