"""Property: what the writes keep for the forecast (``store.outcomes``, computed per deal by
``domain.states.outcomes``) is what ``reports.learning`` reads from the events, on histories
the services would not write: events whose moments go back in time (``--at`` earlier than
the deal's latest), values of 0, deals won, reopened, won again and lost, probabilities set and
cleared, and ``created`` events of imports that could not tell when a deal began.

The events go straight into the table (as a write around pipectl's services could), in one
transaction whose COMMIT computes the read models (``readmodel.settle``); then ``learn`` as of
a moment after every event, from the read model and replaying the events, must be equal, and
the stored rows and counts equal a recomputation from scratch (what ``db check`` does).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipectl.reports import learning
from pipectl.store import check, outcomes, readmodel
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import transaction
from pipectl.values import iso
from tests import engines

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OPEN = ("prospecting", "qualification", "meeting", "proposal", "negotiation")
# few stages, so that a deal enters one several times (its latest entry counts)
TO = st.sampled_from(("prospecting", "meeting", "meeting", "proposal", "won", "won",
                      "post_purchase", "lost", "lost"))
HOURS = st.integers(-400, 2000)  # from T0: not in order, as backdated events are
VALUE = st.one_of(st.none(), st.just(0), st.integers(1, 10**6))
CLOSE = st.one_of(st.none(), st.integers(-60, 200).map(
    lambda d: (T0.date() + timedelta(days=d)).isoformat()))
PROB = st.one_of(st.none(), st.integers(0, 100))
CREATED = st.tuples(st.sampled_from(OPEN), HOURS, VALUE, st.sampled_from(["EUR", "USD"]),
                    CLOSE, PROB, st.sampled_from([None, "created_at", "qualified_at"]))
EVENT = st.one_of(
    st.tuples(st.just("stage"), TO, HOURS),
    st.tuples(st.just("reopened"), st.sampled_from(("meeting", "proposal")), HOURS),
    st.tuples(st.just("value"), VALUE, HOURS),
    st.tuples(st.just("close_date"), CLOSE, HOURS),
    st.tuples(st.just("probability"), PROB, HOURS),
)
DEAL = st.tuples(CREATED, st.lists(EVENT, max_size=12), st.sampled_from([None, "Anna", "Ben"]))


def _at(hours: int) -> str:
    return iso(T0 + timedelta(hours=hours))


def _write(conn, deals: list) -> str:
    """The deals and their events, as given; returns the latest moment among them."""
    latest = _at(0)
    with transaction(conn):
        for n, ((stage, hours, value, currency, close, prob, unknown), events, owner) in \
                enumerate(deals, 1):
            conn.execute("INSERT INTO deals (id, name, owner, pipeline_id, stage, currency, "
                         "created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                         (n, f"Deal {n}", owner, stage, currency, _at(hours), _at(hours)))
            conn.execute("INSERT INTO events (deal_id, at, kind, pipeline_id, to_stage, "
                         "value_minor, currency, close_date, probability, field, new) "
                         "VALUES (?, ?, 'created', 1, ?, ?, ?, ?, ?, ?, ?)",
                         (n, _at(hours), stage, value, currency, close, prob,
                          None if unknown is None else "unknown", unknown))
            latest = max(latest, _at(hours))
            current = stage
            for kind, what, h in events:
                at = _at(h)
                latest = max(latest, at)
                if kind in ("stage", "reopened"):
                    real = "lost" if what == "lost" else kind
                    conn.execute("INSERT INTO events (deal_id, at, kind, pipeline_id, "
                                 "from_stage, to_stage) VALUES (?, ?, ?, 1, ?, ?)",
                                 (n, at, real, current, what))
                    current = what
                elif kind == "value":
                    conn.execute("INSERT INTO events (deal_id, at, kind, value_minor, "
                                 "currency) VALUES (?, ?, 'value', ?, ?)",
                                 (n, at, what, None if what is None else currency))
                elif kind == "close_date":
                    conn.execute("INSERT INTO events (deal_id, at, kind, close_date) "
                                 "VALUES (?, ?, 'close_date', ?)", (n, at, what))
                else:
                    conn.execute("INSERT INTO events (deal_id, at, kind, probability) "
                                 "VALUES (?, ?, 'probability', ?)", (n, at, what))
    return latest


def test_kept_outcomes_equal_the_events(engine: str) -> None:
    @settings(**engines.settings_for(engine, 80), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(deals=st.lists(DEAL, min_size=1, max_size=5))
    # a stage entered again by an event dated before the first entry (rare in the random
    # lists): its latest moment counts for the days, its latest event for the probability
    @example(deals=[(("prospecting", 0, 100, "EUR", None, 30, None),
                     [("stage", "meeting", 100), ("probability", 70, 110),
                      ("stage", "proposal", 120), ("stage", "meeting", 30),
                      ("stage", "lost", 300)], "Anna"),
                    (("meeting", 5, 0, "USD", "2026-01-20", None, "created_at"),
                     [("stage", "won", 400), ("stage", "won", 50)], None)])
    def run(deals: list) -> None:
        with engines.scratch(engine, "o.db") as db:
            conn = engines.connect(db)
            try:
                latest = _write(conn, deals)
                assert not check.read_model_differences(conn)
                assert not outcomes.differ(conn)
                moment = iso(datetime.fromisoformat(latest.replace("Z", "+00:00"))
                             + timedelta(seconds=1))
                defs = pipeline_store.all_in_force(conn, moment)
                assert learning.kept(conn, moment, defs)
                windows = [("all", "0000", "9999", "0000"),
                           ("late", _at(200), _at(1500), _at(100))]
                for kwargs in ({}, {"pipeline_id": 1}, {"owner": "Anna"},
                               {"fresh_pipeline": 1, "slips": False}):
                    fast = learning.learn(conn, moment, defs, fresh=windows, **kwargs)
                    with readmodel.replaying():
                        slow = learning.learn(conn, moment, defs, fresh=windows, **kwargs)
                    assert fast == slow, kwargs
            finally:
                conn.close()

    run()


def test_a_deal_at_each_step_of_its_life() -> None:
    """Table-driven: one deal's rows after each event (``domain.states.outcomes``)."""
    from pipectl.domain.pipeline import DEFAULT
    from pipectl.domain.states import EVENT_COLUMNS, facts_of
    from pipectl.domain.states import outcomes as rows_of

    facts = facts_of({1: DEFAULT})

    def ev(i: int, at: str, kind: str, **kw: object) -> tuple:
        values = {"id": i, "at": at, "kind": kind, **kw}
        if kind in ("created", "stage", "lost", "reopened"):
            values.setdefault("pipeline_id", 1)
        return tuple(values.get(c) for c in EVENT_COLUMNS)

    created = ev(1, "2026-01-01T10:00:00Z", "created", to_stage="prospecting",
                 value_minor=500, currency="EUR", close_date="2026-02-01", probability=20)
    meeting = ev(2, "2026-01-05T10:00:00Z", "stage", to_stage="meeting")
    prob = ev(3, "2026-01-06T10:00:00Z", "probability", probability=60)
    proposal = ev(4, "2026-01-10T10:00:00Z", "stage", to_stage="proposal")
    slipped = ev(5, "2026-01-11T10:00:00Z", "close_date", close_date="2026-02-20")
    won = ev(6, "2026-02-25T10:00:00Z", "stage", to_stage="won")
    lost = ev(7, "2026-01-08T10:00:00Z", "lost", to_stage="lost")
    cases = [
        ([created, meeting, prob, proposal], []),  # open: nothing learned yet
        ([created, meeting, prob, proposal, slipped, won], [
            (9, "stage", 1, "prospecting", 1, 1, 55, 20, None, None, None, None),
            (9, "stage", 1, "meeting", 1, 1, 51, 20, None, None, None, None),
            (9, "stage", 1, "proposal", 1, 1, 46, 60, None, None, None, None),
            (9, "slip", 1, None, None, None, 24, None, None, None, None, None),
            (9, "slip", 1, None, None, None, 5, None, None, None, None, None),
            (9, "won", 1, None, None, None, None, None, "2026-02-25T10:00:00Z",
             "2026-01-01T10:00:00Z", 500, "EUR"),
        ]),
        # lost (backdated before the proposal): the proposal came after the decision
        ([created, meeting, proposal, lost], [
            (9, "stage", 1, "prospecting", 0, 1, 7, 20, None, None, None, None),
            (9, "stage", 1, "meeting", 0, 1, 3, 20, None, None, None, None),
        ]),
        # meeting entered again by an event dated before the first entry: its latest
        # moment (the 5th) counts for the days, its latest event (4) for the own probability
        ([created, meeting, ev(3, "2026-01-06T10:00:00Z", "probability", probability=60),
          ev(4, "2026-01-03T10:00:00Z", "stage", to_stage="meeting"),
          ev(5, "2026-01-12T10:00:00Z", "lost", to_stage="lost")], [
            (9, "stage", 1, "prospecting", 0, 1, 11, 20, None, None, None, None),
            (9, "stage", 1, "meeting", 0, 1, 7, 60, None, None, None, None),
        ]),
        # value 0 when decided: not valued
        ([created, ev(2, "2026-01-03T10:00:00Z", "value", value_minor=0, currency="EUR"),
          ev(3, "2026-01-04T10:00:00Z", "lost", to_stage="lost")], [
            (9, "stage", 1, "prospecting", 0, 0, 3, 20, None, None, None, None),
        ]),
    ]
    for events, expected in cases:
        got = sorted(rows_of(9, events, facts), key=lambda r: (r[1] != "stage", r[1], repr(r)))
        want = sorted(expected, key=lambda r: (r[1] != "stage", r[1], repr(r)))
        assert got == want, events
