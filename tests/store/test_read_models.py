"""Property: the read models (``store.readmodel``: each deal's states over time, its completed
stays) give exactly what a replay of the events gives, at any moment the definitions allow.

Random histories in two pipelines (moves between them, deals won, lost, reopened, values,
currencies, close dates, probabilities and next actions changing, a new version of a
pipeline with other probabilities, and one that moves its gate: other facts, so every deal
that was in it is recomputed). At moments between events, on events' own moments, before
the first and after the last: every snapshot the reports build (with and without owner,
activity, names, pipeline) and the completed stays per stage, read from the read models and
replayed, are the same rows; and the stored rows equal a recomputation from scratch.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.errors import PipectlError
from pipectl.models import NewDeal
from pipectl.reports import forecast, learning, snapshot, summary
from pipectl.reports.periods import Window
from pipectl.reports.scope import scope
from pipectl.services import deals as svc
from pipectl.services.reports import forecast_periods
from pipectl.store import figures, outcomes, readmodel
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import transaction
from pipectl.values import iso
from tests import engines
from tests.store.test_forecast_property import ADD, OPS, T0, partners, play


def rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    try:
        return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        snapshot.drop(conn, table)


def regate(conn: sqlite3.Connection, when) -> None:
    """A new version of Partners whose gate is its first stage: other facts."""
    base = partners((20, 50, 75))
    stages = [replace(s, gate=s.key == "intro") for s in base.line]
    moved = base.__class__.of("Partners", stages, ("fit",))
    pid = pipeline_store.find_id(conn, "Partners")
    with transaction(conn):
        pipeline_store.add_version(conn, pid, moved, iso(when))


def _outcomes(conn: sqlite3.Connection, table: str) -> list[tuple]:
    return sorted((tuple(r) for r in conn.execute(f"SELECT * FROM {table}")), key=repr)


def stored(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    return (conn.execute("SELECT * FROM deal_states ORDER BY deal_id, since_id").fetchall(),
            conn.execute("SELECT * FROM deal_stays ORDER BY deal_id, entered_id").fetchall(),
            _outcomes(conn, "deal_outcomes"))


def recomputed(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The rows computed from scratch (``readmodel.fill`` into scratch tables)."""
    conn.execute("CREATE TEMP TABLE every_deal AS SELECT id AS deal_id FROM deals")
    conn.execute("CREATE TEMP TABLE st AS SELECT * FROM deal_states WHERE 1 = 0")
    conn.execute("CREATE TEMP TABLE sy AS SELECT * FROM deal_stays WHERE 1 = 0")
    conn.execute("CREATE TEMP TABLE so AS SELECT * FROM deal_outcomes WHERE 1 = 0")
    try:
        readmodel.fill(conn, readmodel.definitions(conn), "temp.every_deal", "temp.st",
                       "temp.sy", outcomes_table="temp.so")
        return (conn.execute("SELECT * FROM temp.st ORDER BY deal_id, since_id").fetchall(),
                conn.execute("SELECT * FROM temp.sy ORDER BY deal_id, entered_id").fetchall(),
                _outcomes(conn, "temp.so"))
    finally:
        for t in ("every_deal", "st", "sy", "so"):
            conn.execute(f"DROP TABLE temp.{t}")


def test_read_models_equal_a_replay(engine: str) -> None:
    # on PostgreSQL a fifth of the examples (engines.settings_for): each makes its database anew
    @settings(**engines.settings_for(engine, 60), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(first=st.lists(ADD, min_size=2, max_size=4), ops=OPS, more=OPS,
           regated=st.booleans(),
           hours=st.lists(st.integers(-300, 2400), min_size=1, max_size=3),
           picks=st.lists(st.integers(0, 10**6), min_size=2, max_size=5))
    def run(first: list, ops: list, more: list, regated: bool, hours: list[int],
            picks: list[int]) -> None:
        _read_models_equal(engine, first, ops, more, regated, hours, picks)

    run()


def _read_models_equal(engine: str, first: list, ops: list, more: list, regated: bool,
                       hours: list[int], picks: list[int]) -> None:
    with engines.scratch(engine, "p.db") as db:
        conn = engines.connect(db)
        try:
            last = play(conn, first, ops)
            if regated:
                last += timedelta(hours=1)
                regate(conn, last)
                when = last
                for hours_later, op in more:  # a few more moves after the change
                    when += timedelta(hours=hours_later)
                    if op[0] == "advance":
                        with contextlib.suppress(PipectlError):
                            svc.advance(conn, op[1], to=op[2], prequalified="known", at=when)
                    elif op[0] == "add":
                        with contextlib.suppress(PipectlError):
                            svc.add(conn, NewDeal(f"Late {when:%H%M}", pipeline="Partners"),
                                    at=when)
                last = when
            # with every write settled, nothing waits and the rows are the events' function
            assert conn.execute("SELECT count(*) FROM read_dirty").fetchone()[0] == 0
            assert stored(conn) == recomputed(conn)
            assert not figures.differ(conn)  # the counts kept at write time, as recounted
            assert not outcomes.differ(conn)

            moments = {iso(max(T0, last + timedelta(hours=h))) for h in hours}
            ats = [a for (a,) in conn.execute("SELECT DISTINCT at FROM events ORDER BY at")]
            for i in picks if ats else ():  # on an event's own moment, a second before
                at = ats[i % len(ats)]
                moments.add(at)
                moments.add(iso(snapshot_moment(at) - timedelta(seconds=1)))
            partners_id = pipeline_store.find_id(conn, "Partners")
            fast_seen = 0
            for moment in sorted(moments):
                defs = pipeline_store.all_in_force(conn, moment)
                if not readmodel.usable(conn, defs):
                    continue  # before the change of facts: the reports replay
                fast_seen += 1
                for kwargs in ({}, {"owner": "Anna"}, {"activity": True, "names": True},
                               {"pipeline_id": partners_id, "group": "owner"},
                               {"funnel": False, "owner": "Ben"}):
                    fast = rows(conn, snapshot.build(conn, moment, pipelines=defs, **kwargs))
                    with readmodel.replaying():
                        slow = rows(conn, snapshot.build(conn, moment, pipelines=defs,
                                                         **kwargs))
                    assert fast == slow, (moment, kwargs)
                for unit, owner, pipeline in (("month", None, None),
                                              ("quarter", "Anna", "Partners")):
                    periods = forecast_periods(unit, moment)
                    fast_fc = forecast.build_all(conn, moment, periods, owner, pipeline)
                    with readmodel.replaying():
                        slow_fc = forecast.build_all(conn, moment, periods, owner, pipeline)
                    assert fast_fc == slow_fc, (moment, unit, owner, pipeline)
                after_all = not ats or moment >= ats[-1]
                # what calibrate and the forecast range learn: kept at write time after
                # every event, else read from the events; the same either way
                assert learning.kept(conn, moment, defs) == after_all, moment
                windows = [("a", iso(T0), iso(T0 + timedelta(days=40)), iso(T0)),
                           ("b", iso(T0 + timedelta(days=10)), "9999-12-31T23:59:59Z",
                            iso(T0 + timedelta(days=5)))]
                for kwargs in ({}, {"pipeline_id": partners_id, "slips": False},
                               {"owner": "Anna", "fresh_pipeline": partners_id}):
                    fast_l = learning.learn(conn, moment, defs, fresh=windows, **kwargs)
                    with readmodel.replaying():
                        slow_l = learning.learn(conn, moment, defs, fresh=windows, **kwargs)
                    assert fast_l == slow_l, (moment, kwargs)
                for kwargs in ({}, {"owner": "Anna"}, {"pipeline_id": partners_id}):
                    fast_o = learning.open_deals(conn, moment, defs, **kwargs)
                    with readmodel.replaying():
                        slow_o = learning.open_deals(conn, moment, defs, **kwargs)
                    assert [tuple(r) for r in fast_o] == [tuple(r) for r in slow_o], kwargs
                for pipeline in (None, "Partners"):
                    # over all time, after every event: from the figures kept at write time
                    sc = scope(conn, moment, pipeline)
                    assert summary._figures_usable(conn, sc) == after_all, moment
                    fast_report = summary.build(conn, moment, Window(), pipeline=pipeline)
                    with readmodel.replaying():
                        slow_report = summary.build(conn, moment, Window(), pipeline=pipeline)
                    assert fast_report == slow_report, (moment, pipeline)
                for pipeline in (None, "Partners"):
                    sc = scope(conn, moment, pipeline)
                    for window in (Window(None, None), Window(T0.date() + timedelta(days=20),
                                                              T0.date() + timedelta(days=60))):
                        p = {"ws": window.start_iso(), "we": window.end_iso(), "as_of": moment,
                             "pipeline_id": sc.pipeline_id}
                        for owner in (None, "Anna"):
                            fast_stays = summary._stays(conn, p, owner, sc)
                            with readmodel.replaying():
                                slow_stays = summary._stays(conn, p, owner, sc)
                            assert fast_stays == slow_stays, (moment, pipeline, window, owner)
            if not regated:
                assert fast_seen == len(moments)  # no change of facts: every moment is fast
        finally:
            conn.close()


def snapshot_moment(at: str):
    from datetime import datetime

    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def test_marked_picks_the_marked_deals_from_the_sorted_stream() -> None:
    """``fill``'s one pass over every deal keeps exactly the marked ones: marks before,
    between and after the deals, marks of deals without events (deleted), none at all."""
    deals = [(2, ["a"]), (3, ["b"]), (5, ["c"]), (9, ["d"])]
    for marks, kept in (
        ([], []),
        ([1, 4, 10], []),
        ([2, 3, 5, 9], [2, 3, 5, 9]),
        ([1, 3, 4, 9, 12], [3, 9]),
        ([5], [5]),
        ([2, 9], [2, 9]),
    ):
        got = [d for d, _ in readmodel._marked(iter(deals), [(m,) for m in marks])]
        assert got == kept, marks


def test_the_one_pass_and_the_index_give_the_same_rows_for_some_marked_deals(
        db_path: engines.Target) -> None:
    """A share of the deals marked, read by the one sorted pass (``many``) and through the
    index: the same rows."""
    conn = engines.connect(db_path)
    for i in range(12):
        svc.add(conn, NewDeal(name=f"Deal {i}", value_minor=100 * i, currency="EUR"),
                T0 + timedelta(hours=i))
        if i % 2:
            svc.advance(conn, i + 1, at=T0 + timedelta(days=1, hours=i))
    # (not "some": a reserved word of PostgreSQL's)
    conn.execute("CREATE TEMP TABLE some_deals AS SELECT id AS deal_id FROM deals "
                 "WHERE id % 3 = 1")
    conn.execute("INSERT INTO temp.some_deals VALUES (999)")  # a deal with no events
    out = {}
    for many in (True, False):
        conn.execute("CREATE TEMP TABLE st AS SELECT * FROM deal_states WHERE 1 = 0")
        conn.execute("CREATE TEMP TABLE sy AS SELECT * FROM deal_stays WHERE 1 = 0")
        readmodel.fill(conn, readmodel.definitions(conn), "temp.some_deals", "temp.st",
                       "temp.sy",
                       many=many)
        out[many] = (conn.execute("SELECT * FROM temp.st ORDER BY deal_id").fetchall(),
                     conn.execute("SELECT * FROM temp.sy ORDER BY deal_id").fetchall())
        conn.execute("DROP TABLE temp.st")
        conn.execute("DROP TABLE temp.sy")
    assert sorted({r[0] for r in out[True][0]}) == [1, 4, 7, 10]
    assert {r[0] for r in out[True][1]} == {4, 10}  # the two advanced: a stay each
    assert out[True] == out[False]
    conn.close()
