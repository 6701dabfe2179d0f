"""Property: `pipectl forecast`, which builds all its snapshots from one pass over the history
(``snapshot.build_many``), gives exactly the figures of the way it was computed before: one
full snapshot (``snapshot.build``) per moment, given to it as the oracle. Random histories in two
pipelines (moves between them, a new version of one with other probabilities), with values,
currencies, close dates and probabilities changing, deals won, lost and reopened; every
--owner and --pipeline, several as-of moments, by month and by quarter."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.domain.pipeline import DEFAULT, Pipeline, StageDef
from pipectl.errors import PipectlError
from pipectl.models import DealEdit, NewDeal
from pipectl.reports import forecast, snapshot
from pipectl.services import deals as svc
from pipectl.services.reports import forecast_periods
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import transaction
from pipectl.values import iso
from tests import engines

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def partners(probabilities: tuple[int, int, int]) -> Pipeline:
    a, b, c = probabilities
    return Pipeline.of("Partners", [
        StageDef("intro", "Introduction", probability=a),
        StageDef("pilot", "Pilot", probability=b, gate=True),
        StageDef("contract", "Contract", probability=c, skippable=True),
        StageDef("signed", "Signed", kind="won", probability=100),
    ], ("fit",))


def one_per_moment(conn: sqlite3.Connection, in_force: dict[str, dict], owner: str | None,
                   since: str) -> dict[str, str]:
    """How ``forecast.build_all`` built its snapshots before ``snapshot.build_many``: one full
    snapshot (``snapshot.build``) per moment, every deal in it."""
    return {moment: snapshot.build(conn, moment, owner, funnel=False,
                                   pipelines=defs) for moment, defs in in_force.items()}


# mostly "the next stage" (a deal may skip none but skippable ones): some deals get won
STAGES = st.sampled_from([None] * 12 + [*DEFAULT.keys, "intro", "pilot", "contract", "signed"])
DEAL = st.integers(1, 4)
CLOSE = st.one_of(st.none(), st.integers(0, 420).map(lambda d: date(2026, 1, 1)
                                                      + timedelta(days=d)))
ADD = st.tuples(st.just("add"), st.booleans(), st.sampled_from(["USD", "EUR"]),
                st.one_of(st.none(), st.integers(1, 10**7)), CLOSE,
                st.one_of(st.none(), st.integers(0, 100)), st.sampled_from([None, "Anna", "Ben"]),
                st.sampled_from([None, None, None, "negotiation", "won", "pilot", "signed"]))
ADVANCE = st.tuples(st.just("advance"), DEAL, STAGES, st.sampled_from([True, True, False]))
OPS = st.lists(
    st.tuples(
        st.sampled_from([1, 5, 24, 72, 240]),  # hours since the previous operation
        st.one_of(
            ADD, ADD, ADVANCE, ADVANCE, ADVANCE, ADVANCE, ADVANCE, ADVANCE,
            st.tuples(st.just("lose"), DEAL),
            st.tuples(st.just("reopen"), DEAL),
            st.tuples(st.just("value"), DEAL, st.one_of(st.none(), st.integers(1, 10**7)),
                      st.sampled_from([None, "USD", "EUR"])),
            st.tuples(st.just("close"), DEAL, CLOSE),
            st.tuples(st.just("probability"), DEAL, st.one_of(st.none(), st.integers(0, 100))),
            st.tuples(st.just("move"), DEAL, st.booleans()),
            st.tuples(st.just("version"), st.tuples(st.integers(0, 100), st.integers(0, 100),
                                                    st.integers(0, 100))),
        ),
    ),
    min_size=10,
    max_size=60,
)


def play(conn: sqlite3.Connection, first: list, ops: list) -> datetime:
    """Add the ``first`` deals, then apply the operations, each some hours after the previous
    one (a refused one changes nothing); returns the moment of the last."""
    with transaction(conn):
        pid = pipeline_store.create(conn, partners((20, 50, 75)), "2025-01-01T00:00:00Z")
    when = T0
    for hours, op in [(24, add) for add in first] + ops:
        when += timedelta(hours=hours)
        kind, *args = op
        try:
            if kind == "add":
                in_partners, currency, value, close, probability, owner, stage = args
                svc.add(conn, NewDeal(
                    f"D{when:%m%d%H}", stage=stage, prequalified="known" if stage else None,
                    pipeline="Partners" if in_partners else None,
                    currency=currency, value_minor=value, close_date=close,
                    probability=probability, owner=owner), at=when)
            elif kind == "advance":
                deal, to, known = args
                svc.advance(conn, deal, to=to, prequalified="known" if known else None, at=when)
            elif kind == "lose":
                svc.lose(conn, args[0], "price", at=when)
            elif kind == "reopen":
                svc.reopen(conn, args[0], at=when)
            elif kind == "value":
                deal, value, currency = args
                change = (DealEdit(clear_value=True) if value is None
                          else DealEdit(value_minor=value, currency=currency))
                svc.edit(conn, deal, change, at=when)
            elif kind == "close":
                deal, close = args
                svc.edit(conn, deal, DealEdit(clear_close=True) if close is None
                         else DealEdit(close_date=close), at=when)
            elif kind == "probability":
                deal, probability = args
                svc.edit(conn, deal, DealEdit(clear_probability=True) if probability is None
                         else DealEdit(probability=probability), at=when)
            elif kind == "move":
                svc.move_to(conn, args[0], "Partners" if args[1] else DEFAULT.name, at=when)
            else:
                with transaction(conn):
                    pipeline_store.add_version(conn, pid, partners(args[0]), iso(when))
        except PipectlError:
            pass
    return when


def test_forecast_equals_one_snapshot_per_moment(engine: str) -> None:
    # on PostgreSQL a fifth of the examples (engines.settings_for): each makes its database anew
    @settings(**engines.settings_for(engine, 40), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(first=st.lists(ADD, min_size=2, max_size=4), ops=OPS,
           as_of_hours=st.lists(st.integers(-200, 2400), min_size=1, max_size=3))
    def run(first: list, ops: list, as_of_hours: list[int]) -> None:
        _forecast_equals(engine, first, ops, as_of_hours)

    run()


def _forecast_equals(engine: str, first: list, ops: list, as_of_hours: list[int]) -> None:
    with engines.scratch(engine, "p.db") as db:
        conn = engines.connect(db)
        try:
            last = play(conn, first, ops)
            for hours in as_of_hours:
                as_of = iso(max(T0, last + timedelta(hours=hours)))
                for unit in ("month", "quarter"):
                    periods = forecast_periods(unit, as_of)
                    for owner in (None, "Anna"):
                        for pipeline in (None, "Partners", DEFAULT.name):
                            new = forecast.build_all(conn, as_of, periods, owner, pipeline)
                            old = forecast.build_all(conn, as_of, periods, owner, pipeline,
                                                     snapshots=one_per_moment)
                            assert new == old, (as_of, unit, owner, pipeline)
            # no scratch table is left behind
            assert engines.temp_tables(conn) == 0
        finally:
            conn.close()
