"""Every report figure against a hand-computed scenario, built through the store API.

Seven deals in two currencies, all moments explicit (UTC midnight unless a time is given):

D1 Alpha    USD 10,000  created 01-01 prospecting; qualification 01-05; checklist passes 01-06;
                        meeting 01-10 (qualified); proposal 01-20; won 02-01 (skips
                        negotiation). Cycle 31 days.
D2 Beta     EUR 20,000  created 01-02 prospecting; meeting 01-12 pre-qualified (skips
                        qualification); proposal 01-22; BACK to meeting 02-01; proposal 02-11;
                        value -> 25,000 on 02-15; negotiation 02-21; won 03-03. Cycle 60 days.
D3 Gamma    USD 5,000   created 01-03; qualification 01-08; lost there 01-18 ("no budget").
D4 Delta    USD 8,000   created 02-01, close 2026-05-31; qualification 02-05; checklist 02-06;
                        meeting 02-10 (qualified); LOST at meeting 02-20 ("price"); REOPENED
                        03-01 (meeting); proposal 03-10; close date -> 2026-07-15 on 05-10.
D5 Epsilon  EUR 40,000  created 03-01 in negotiation, pre-qualified, own probability 50 %,
                        close 2026-07-31.
D6 Zeta     USD 12,000  created 04-01 prospecting; lost there 04-10 ("price").
D7 Eta      no value    created 05-01 prospecting; note 06-25 "call back" due 06-28.
D8 Theta    USD 1,000   created 07-05 (after the usual as-of moment 06-30: must not exist then).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date

import pytest

from pipectl.domain.pipeline import DEFAULT, Pipeline, StageDef
from pipectl.errors import UsageError
from pipectl.models import DealEdit, NewDeal
from pipectl.reports import actions, forecast, periods, summary
from pipectl.reports.scope import scope
from pipectl.services import deals as svc
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import transaction
from pipectl.store.pipelines import all_in_force
from pipectl.views.reports import forecast_json, report_json
from tests.conftest import at

ALL = {"location": True, "budget": True, "authority": True, "need": True}


class _Deals:
    """The services' deal commands, each at an explicit moment (the scenario's shorthand)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, new: NewDeal, when) -> int:
        return svc.add(self.conn, new, at=when)[0]

    def advance(self, deal_id: int, when, to: str | None = None,
                prequalified: str | None = None) -> None:
        svc.advance(self.conn, deal_id, to=to, prequalified=prequalified, at=when)

    def qualify(self, deal_id: int, changes: dict, when) -> None:
        svc.qualify(self.conn, deal_id, changes, at=when)

    def lose(self, deal_id: int, when, reason: str) -> None:
        svc.lose(self.conn, deal_id, reason, at=when)

    def reopen(self, deal_id: int, when) -> None:
        svc.reopen(self.conn, deal_id, at=when)

    def edit(self, deal_id: int, change: DealEdit, when) -> None:
        svc.edit(self.conn, deal_id, change, at=when)

    def note(self, deal_id: int, text: str, when, next_action=None, due=None) -> None:
        svc.note(self.conn, deal_id, text, next_action, due, at=when)


def build(conn: sqlite3.Connection) -> None:
    d = _Deals(conn)
    d1 = d.add(NewDeal("Alpha", currency="USD", value_minor=1_000_000, owner="Anna"),
               at("2026-01-01"))
    d2 = d.add(NewDeal("Beta", currency="EUR", value_minor=2_000_000, owner="Ben"),
               at("2026-01-02"))
    d3 = d.add(NewDeal("Gamma", currency="USD", value_minor=500_000, owner="Anna"),
               at("2026-01-03"))
    d.advance(d1, at("2026-01-05"))
    d.qualify(d1, ALL, at("2026-01-06"))
    d.advance(d3, at("2026-01-08"))
    d.advance(d1, at("2026-01-10"))
    d.advance(d2, at("2026-01-12"), to="meeting", prequalified="known customer")
    d.lose(d3, at("2026-01-18"), "no budget")
    d.advance(d1, at("2026-01-20"))
    d.advance(d2, at("2026-01-22"))
    d4 = d.add(NewDeal("Delta", currency="USD", value_minor=800_000, owner="Anna",
                       close_date=date(2026, 5, 31)), at("2026-02-01"))
    d.advance(d1, at("2026-02-01"), to="won")
    d.advance(d2, at("2026-02-01"), to="meeting")
    d.advance(d4, at("2026-02-05"))
    d.qualify(d4, ALL, at("2026-02-06"))
    d.advance(d4, at("2026-02-10"))
    d.advance(d2, at("2026-02-11"))
    d.edit(d2, DealEdit(value_minor=2_500_000), at("2026-02-15"))
    d.lose(d4, at("2026-02-20"), "price")
    d.advance(d2, at("2026-02-21"))
    d.reopen(d4, at("2026-03-01"))
    d5 = d.add(NewDeal("Epsilon", stage="negotiation", currency="EUR",
                       value_minor=4_000_000, probability=50, owner="Ben",
                       close_date=date(2026, 7, 31), prequalified="referral"),
               at("2026-03-01"))
    d.advance(d2, at("2026-03-03"), to="won")
    d.advance(d4, at("2026-03-10"))
    d6 = d.add(NewDeal("Zeta", currency="USD", value_minor=1_200_000), at("2026-04-01"))
    d.lose(d6, at("2026-04-10"), "price")
    d7 = d.add(NewDeal("Eta", currency="USD", owner="Anna"), at("2026-05-01"))
    d.edit(d4, DealEdit(close_date=date(2026, 7, 15)), at("2026-05-10"))
    d.note(d7, "left a voicemail", at("2026-06-25"), "call back", "2026-06-28")
    d8 = d.add(NewDeal("Theta", currency="USD", value_minor=100_000), at("2026-07-05"))
    assert (d1, d2, d3, d4, d5, d6, d7, d8) == (1, 2, 3, 4, 5, 6, 7, 8)


# ---------------------------------------------------------------- the tests

AS_OF = "2026-06-30T00:00:00Z"


@pytest.fixture
def scenario(conn: sqlite3.Connection) -> sqlite3.Connection:
    build(conn)
    return conn


def _report(conn, as_of=AS_OF, start=None, end=None, owner=None, explain=False):
    return summary.build(conn, as_of, periods.window(start, end), owner, explain)


def test_status_and_flow_as_of(scenario):
    r = _report(scenario)
    # D8 is created after the as-of moment: it does not exist yet.
    assert r.status == {"open": 3, "won": 2, "lost": 2, "total": 7}  # open D4 D5 D7
    # qualified: D1 01-10, D2 01-12 (pre-qualified skip), D4 02-10, D5 03-01 (created so)
    assert r.flow == {"created": 7, "qualified": 4, "won": 2, "lost": 2}


def test_close_rate_and_win_rate(scenario):
    r = _report(scenario)
    assert (r.close_rate.numerator, r.close_rate.denominator) == (2, 4)  # D1, D2 of 4 SQLs
    assert r.close_rate.value == 0.5
    # decided: won D1, D2; lost D3, D6 (D4's loss was undone by its reopening)
    assert (r.win_rate.numerator, r.win_rate.denominator) == (2, 4)
    assert r.win_rate.value == 0.5


def test_pipeline_and_weighted_value(scenario):
    r = _report(scenario)
    p = r.stage_money
    prospecting = p("default", "prospecting")
    assert (prospecting.count, prospecting.without_value) == (1, 1)  # D7
    assert p("default", "prospecting").value == {}
    assert p("default", "qualification").count == 0 and p("default", "meeting").count == 0
    assert p("default", "proposal").value == {"USD": 800_000}  # D4, 60 % by stage
    assert p("default", "proposal").weighted == {"USD": 480_000}
    assert p("default", "negotiation").value == {"EUR": 4_000_000}  # D5, its own 50 %
    assert p("default", "negotiation").weighted == {"EUR": 2_000_000}
    t = r.pipeline_total
    assert (t.count, t.without_value) == (3, 1)
    assert t.value == {"USD": 800_000, "EUR": 4_000_000}
    assert t.weighted == {"USD": 480_000, "EUR": 2_000_000}


def test_stage_conversion_uses_furthest_stage_reached(scenario):
    r = _report(scenario)
    # reached: D1 won(6; negotiation skipped counts), D2 won(6), D3 qualification(2),
    # D4 proposal(4), D5 negotiation(5), D6 prospecting(1), D7 prospecting(1)
    got = [(s.from_stage, s.reached_from, s.reached_to, s.rate.value) for s in r.conversion]
    assert got == [
        ("prospecting", 7, 5, 0.7143),
        ("qualification", 5, 4, 0.8),
        ("meeting", 4, 4, 1.0),
        ("proposal", 4, 3, 0.75),
        ("negotiation", 3, 2, 0.6667),
        ("won", 2, 0, 0.0),
    ]


def test_sales_cycle_median_and_mean(scenario):
    r = _report(scenario)
    # D1 01-01 -> 02-01 = 31 days; D2 01-02 -> 03-03 = 60 days
    assert (r.cycle.count, r.cycle.median, r.cycle.mean) == (2, 45.5, 45.5)


def test_time_in_stage(scenario):
    r = _report(scenario)
    got = {
        t.stage: (t.stays.count, t.stays.median, t.now.count, t.now.median, t.now.maximum)
        for t in r.time_in_stage
    }
    assert got == {
        # D1 4, D2 10, D3 5, D4 4, D6 9 (left by its loss) -> 4 4 5 9 10; D7 there 60 days
        "prospecting": (5, 5.0, 1, 60.0, 60.0),
        # D1 5, D3 10 (lost), D4 5
        "qualification": (3, 5.0, 0, None, None),
        # D1 10, D2 10 and 10 (twice: it moved back), D4 10 (lost), D4 9 (after reopening)
        "meeting": (5, 10.0, 0, None, None),
        # D1 12, D2 10, D2 10; D4 there since 03-10: 112 days
        "proposal": (3, 10.0, 1, 112.0, 112.0),
        # D2 10; D5 there since 03-01: 121 days
        "negotiation": (1, 10.0, 1, 121.0, 121.0),
    }


def test_sales_velocity_per_currency(scenario):
    r = _report(scenario)
    v = {x.currency: x for x in r.velocity}
    # USD: 1 open (D4) x 2/4 x 10,000.00 (D1) / 45.5 days = 109.8901... -> 109.89
    assert (v["USD"].open_deals, v["USD"].won_deals, v["USD"].per_day) == (1, 1, 10_989)
    # EUR: 1 open (D5) x 2/4 x 25,000.00 (D2, after its value change) / 45.5 = 274.725...
    assert (v["EUR"].open_deals, v["EUR"].won_value, v["EUR"].per_day) == (1, 2_500_000, 27_473)
    assert v["EUR"].cycle_days == 45.5


def test_lost_reasons(scenario):
    r = _report(scenario)
    assert [(g.key, g.count, g.value) for g in r.lost_by_reason] == [
        ("no budget", 1, {"USD": 500_000}),  # D3
        ("price", 1, {"USD": 1_200_000}),  # D6 (D4's lost-for-price was reopened)
    ]
    assert [(g.key, g.count) for g in r.lost_by_stage] == [("prospecting", 1),
                                                           ("qualification", 1)]


def test_won_and_lost_value_and_average_won(scenario):
    r = _report(scenario)
    # won in the window: D1 10,000 USD, D2 25,000 EUR (its value when won, after the change)
    assert (r.won.count, r.won.without_value) == (2, 0)
    assert r.won.value == {"USD": 1_000_000, "EUR": 2_500_000}
    assert r.won.with_value == {"USD": 1, "EUR": 1}
    assert r.won.average == {"EUR": 2_500_000, "USD": 1_000_000}
    # lost in the window and still lost: D3 5,000 and D6 12,000 USD (D4 was reopened)
    assert (r.lost.count, r.lost.without_value) == (2, 0)
    assert (r.lost.value, r.lost.with_value) == ({"USD": 1_700_000}, {"USD": 2})
    # the same deals as the win rate, and the lost value is the lost reasons' total
    assert (r.won.count, r.won.count + r.lost.count) == (
        r.win_rate.numerator, r.win_rate.denominator)
    assert sum(g.value["USD"] for g in r.lost_by_reason) == r.lost.value["USD"]
    # average won value: velocity's, per currency
    assert {v.currency: v.average_won for v in r.velocity} == r.won.average
    out = report_json(r)
    assert out["won"] == {"count": 2, "without_value": 0, "with_value": {"EUR": 1, "USD": 1},
                          "value": {"EUR": "25000.00", "USD": "10000.00"},
                          "average": {"EUR": "25000.00", "USD": "10000.00"}}
    assert out["lost"] == {"count": 2, "without_value": 0, "with_value": {"USD": 2},
                           "value": {"USD": "17000.00"}}


def test_won_and_lost_value_follow_the_window_and_the_as_of_moment(scenario):
    feb = _report(scenario, start=date(2026, 2, 1), end=date(2026, 3, 1))
    assert (feb.won.count, feb.won.value) == (1, {"USD": 1_000_000})  # D1, won 02-01
    # D4 was lost on 02-20 but is open again (reopened 03-01): not lost
    assert (feb.lost.count, feb.lost.value) == (0, {})
    then = _report(scenario, as_of="2026-02-25")  # D4 still lost then
    assert (then.lost.count, then.lost.value) == (2, {"USD": 1_300_000})  # D3 5,000, D4 8,000
    assert then.won.value == {"USD": 1_000_000}  # D2 not won yet
    anna = _report(scenario, owner="Anna")
    assert (anna.won.value, anna.lost.value) == ({"USD": 1_000_000}, {"USD": 500_000})
    empty = _report(scenario, start=date(2025, 1, 1), end=date(2025, 2, 1))
    assert (empty.won.count, empty.won.value, empty.won.average) == (0, {}, {})


def test_average_won_rounds_half_to_even_once():
    o = summary.Outcome()
    o.add("USD", 2, 2, 5)  # 0.01 + 0.04 USD: 0.025 -> 0.02 (half to even; half up: 0.03)
    o.add("EUR", 2, 2, 3)  # 0.01 + 0.02 EUR: 0.015 -> 0.02
    o.add("VND", 3, 2, 1_000_001)  # one of the three without a value: 500,000.5 -> 500,000
    assert o.average == {"EUR": 2, "USD": 2, "VND": 500_000}
    assert (o.count, o.without_value, o.with_value) == (7, 1, {"USD": 2, "EUR": 2, "VND": 2})


def test_window_february(scenario):
    r = _report(scenario, start=date(2026, 2, 1), end=date(2026, 3, 1))
    assert r.flow == {"created": 1, "qualified": 1, "won": 1, "lost": 0}  # D4; D1 won 02-01
    assert (r.close_rate.numerator, r.close_rate.denominator, r.close_rate.value) == (0, 1, 0.0)
    assert r.win_rate.value == 1.0
    # only D4 was created in February; it reached proposal
    assert [s.rate.value for s in r.conversion] == [1.0, 1.0, 1.0, 0.0, None, None]
    assert (r.cycle.count, r.cycle.median) == (1, 31.0)
    assert r.lost_by_reason == []
    # stays that ended in February (the window's first day included, its end excluded):
    # D4 prospecting 4; D4 qualification 5; meeting: D2 10 (02-01 to 02-11), D4 10 (lost
    # 02-20); proposal: D1 12 (left 02-01), D2 10 (left 02-01, moved back), D2 10 (02-11 to
    # 02-21); D2's negotiation stay ended 03-03, after the window.
    stays = {t.stage: (t.stays.count, t.stays.median) for t in r.time_in_stage}
    assert stays == {"prospecting": (1, 4.0), "qualification": (1, 5.0), "meeting": (2, 10.0),
                     "proposal": (3, 10.0), "negotiation": (0, None)}


def test_empty_window_gives_null_rates_not_zero(scenario):
    r = _report(scenario, start=date(2025, 1, 1), end=date(2025, 2, 1))
    assert r.close_rate.value is None and r.win_rate.value is None
    assert all(s.rate.value is None for s in r.conversion)
    assert r.cycle.median is None and r.cycle.mean is None
    v = {x.currency: x for x in r.velocity}
    assert v["USD"].per_day is None and v["EUR"].per_day is None  # no win: n/a, never 0


def test_as_of_reconstructs_stage_value_and_close_date(scenario):
    r = _report(scenario, as_of="2026-02-15T12:00:00Z")
    assert r.status == {"open": 2, "won": 1, "lost": 1, "total": 4}  # D2 D4 open; D1; D3
    assert r.stage_money("default", "meeting").value == {"USD": 800_000}  # D4 not yet lost
    assert r.stage_money("default", "proposal").value == {"EUR": 2_500_000}  # D2 after 02-15 00:00
    before = _report(scenario, as_of="2026-02-14T23:59:59Z")
    assert before.stage_money("default", "proposal").value == {"EUR": 2_000_000}
    assert before.stage_money("default", "proposal").weighted == {"EUR": 1_200_000}
    lost = _report(scenario, as_of="2026-02-25")
    assert lost.status["lost"] == 2 and lost.stage_money("default", "meeting").count == 0  # D4 lost
    assert [g.key for g in lost.lost_by_reason] == ["no budget", "price"]


def test_owner_filter(scenario):
    r = _report(scenario, owner="Anna")  # D1 D3 D4 D7
    assert r.status == {"open": 2, "won": 1, "lost": 1, "total": 4}
    assert r.pipeline_total.value == {"USD": 800_000}


def test_forecast_close_date_change_and_slip(scenario):
    months = periods.periods("month", date(2026, 5, 1), date(2026, 7, 1))
    items = {p.period.label: p for p in forecast.build(scenario, AS_OF, months)}
    may = items["2026-05"]
    assert may.state == "over"
    # As May began, D4 (proposal, 60 %) was expected to close 05-31; its close date moved to
    # 07-15 on 05-10, so it slipped, still open.
    assert (may.forecast.count, may.forecast.value, may.forecast.weighted) == (
        1, {"USD": 800_000}, {"USD": 480_000})
    assert may.won.count == 0 and may.won.value == {}
    assert [(s.id, s.status_after, s.close_date_then, s.close_date_after)
            for s in may.slipped] == [(4, "open", "2026-05-31", "2026-07-15")]
    july = items["2026-07"]
    assert july.state == "future" and july.won is None and july.slipped is None
    assert july.forecast_ids == [4, 5]
    assert july.forecast.weighted == {"USD": 480_000, "EUR": 2_000_000}
    june = items["2026-06"]  # as of 06-30 00:00, June is not over: no slip list yet
    assert (june.state, june.forecast.count, june.slipped) == ("current", 0, None)


def test_stale_oldest_first_with_stage_threshold(scenario):
    pipes = all_in_force(scenario, AS_OF)
    rows, total = actions.stale(scenario, AS_OF)  # each stage's rot days: 14 by default
    assert ([r.id for r in rows], total) == ([5, 4], 2)
    rows, total = actions.stale(scenario, AS_OF, actions.thresholds(pipes, 14))
    assert total == 2
    # D5 idle since 03-01 (121 days), D4 since 05-10 (51); D7 had a note on 06-25 (5 days)
    assert [(r.id, r.idle_days) for r in rows] == [(5, 121.0), (4, 51.0)]
    rows, _ = actions.stale(scenario, AS_OF, actions.thresholds(pipes, 14, {(1, "proposal"): 60}))
    assert [r.id for r in rows] == [5]
    rows, total = actions.stale(scenario, AS_OF, actions.thresholds(pipes, 0), limit=1)
    assert ([r.id for r in rows], total) == ([5], 3)  # D5, then D4 and D7 (idle 5 days)


def test_next_ranking(scenario):
    rows, total = actions.next_steps(scenario, AS_OF)
    assert total == 3
    assert [(r.rank, r.id, r.why, r.source, r.due) for r in rows] == [
        (1, 7, "overdue", "logged", "2026-06-28"),  # "call back" was due 06-28
        (2, 5, "stale", "stage", None),  # idle 121 days
        (3, 4, "stale", "stage", None),  # idle 51 days
    ]
    assert rows[0].action == "call back"
    assert rows[1].action == DEFAULT.stage("negotiation").action
    # On 05-12, D4 (edited 05-10) is not stale; the rest are ranked by value, no value last.
    soon, _ = actions.next_steps(scenario, "2026-05-12T00:00:00Z")
    assert [(r.id, r.why) for r in soon] == [(5, "stale"), (4, "open"), (7, "open")]
    # With a 70-day horizon D4's close date (07-15) is near: it ranks as "closing".
    soon, _ = actions.next_steps(scenario, "2026-05-12T00:00:00Z", near_days=70)
    top, total = actions.next_steps(scenario, "2026-05-12T00:00:00Z", limit=1)
    assert ([r.id for r in top], total) == ([5], 3)
    assert [(r.id, r.why) for r in soon] == [(5, "stale"), (4, "closing"), (7, "open")]


def test_report_json_shape_is_stable(scenario):
    out = report_json(_report(scenario))
    assert list(out) == [
        "as_of", "window", "owner", "deals", "flow", "won", "lost", "pipeline", "close_rate",
        "win_rate", "conversion", "sales_cycle", "left_out", "time_in_stage", "velocity",
        "lost_reasons",
    ]
    assert out["pipeline"]["value"] == {"EUR": "40000.00", "USD": "8000.00"}
    assert out["velocity"]["USD"]["per_day"] == "109.89"
    assert out["velocity"]["EUR"]["average_won_value"] == "25000.00"
    assert forecast_json([], AS_OF, "month", None) == {
        "as_of": AS_OF, "by": "month", "owner": None, "periods": []}


def test_explain_lists_the_deals(scenario):
    r = _report(scenario, explain=True)
    assert r.deals["qualified_in_window"] == [1, 2, 4, 5]
    assert r.deals["qualified_and_won"] == [1, 2]
    assert r.deals["lost_in_window"] == [3, 6]
    assert r.deals["open_proposal"] == [4]
    assert r.deal_counts["open"] == 3


# ---------------------------------------------------------------- several pipelines
#
# The default pipeline and "Partners", four stages of its own: intro (20 %, stale after 7
# days) -> pilot (the gate: its checklist is "fit") -> contract (may be skipped) -> signed (won).
#
# default   A1 USD 10,000  created 01-01 prospecting; lost there 01-10 ("price").
#           A2 USD 20,000  created 01-02 in meeting, pre-qualified; proposal 01-05; won 01-20.
#           A3 EUR  8,000  created 01-10 in qualification; open.
# Partners  P1 USD 30,000  created 01-03 intro; pilot 01-06; fit 01-07; contract 01-08 (SQL);
#                          signed 01-15 (won).
#           P2 EUR 40,000  created 01-04 intro; pilot 01-09; fit 01-10; contract 01-11 (SQL);
#                          lost there 01-12 ("timing").
#           P3 USD  5,000  created 01-05 intro, close 2026-02-20; note 01-22; open.
#           P4 USD  1,000  created 01-06 intro; lost there 01-07 ("no fit").
# moved     M1 USD  2,000  created 01-11 in default's prospecting; moved into Partners' pilot
#                          01-13; note 01-22; open.

PARTNERS = Pipeline.of("Partners", [
    StageDef("intro", "Introduction", probability=20, rot_days=7,
             action="Book the introduction call."),
    StageDef("pilot", "Pilot", probability=50, gate=True, action="Run the pilot."),
    StageDef("contract", "Contract", probability=75, skippable=True,
             action="Agree the partner contract."),
    StageDef("signed", "Signed", kind="won", probability=100),
], ("fit",))
TWO_AS_OF = "2026-02-01T00:00:00Z"


def build_two(conn: sqlite3.Connection) -> int:
    """The scenario above; returns the id of the Partners pipeline."""
    with transaction(conn):
        partners = pipeline_store.create(conn, PARTNERS, "2026-01-01T00:00:00Z")
    d = _Deals(conn)

    def new(name: str, cur: str, value: int, pipeline: str | None = None, **kw) -> NewDeal:
        return NewDeal(name, currency=cur, value_minor=value * 100, pipeline=pipeline, **kw)

    a1 = d.add(new("A1", "USD", 10_000), at("2026-01-01"))
    a2 = d.add(new("A2", "USD", 20_000, stage="meeting", prequalified="known"),
               at("2026-01-02"))
    p1 = d.add(new("P1", "USD", 30_000, "Partners"), at("2026-01-03"))
    p2 = d.add(new("P2", "EUR", 40_000, "Partners"), at("2026-01-04"))
    p3 = d.add(new("P3", "USD", 5_000, "Partners", close_date=date(2026, 2, 20)),
               at("2026-01-05"))
    d.advance(a2, at("2026-01-05"))
    p4 = d.add(new("P4", "USD", 1_000, "Partners"), at("2026-01-06"))
    d.advance(p1, at("2026-01-06"))
    d.qualify(p1, {"fit": True}, at("2026-01-07"))
    d.lose(p4, at("2026-01-07"), "no fit")
    d.advance(p1, at("2026-01-08"))
    d.advance(p2, at("2026-01-09"))
    d.lose(a1, at("2026-01-10"), "price")
    a3 = d.add(new("A3", "EUR", 8_000, stage="qualification"), at("2026-01-10"))
    d.qualify(p2, {"fit": True}, at("2026-01-10"))
    d.advance(p2, at("2026-01-11"))
    m1 = d.add(new("M1", "USD", 2_000), at("2026-01-11"))
    d.lose(p2, at("2026-01-12"), "timing")
    svc.move_to(conn, m1, "Partners", "pilot", at=at("2026-01-13"))
    d.advance(p1, at("2026-01-15"), to="signed")
    d.advance(a2, at("2026-01-20"), to="won")
    d.note(p3, "sent the deck", at("2026-01-22"))
    d.note(m1, "pilot started", at("2026-01-22"))
    assert (a1, a2, p1, p2, p3, p4, a3, m1) == (1, 2, 3, 4, 5, 6, 7, 8)
    return partners


@pytest.fixture
def two(conn: sqlite3.Connection) -> sqlite3.Connection:
    build_two(conn)
    return conn


def test_money_and_counts_span_the_pipelines(two):
    r = _report(two, as_of=TWO_AS_OF)
    assert [x.name for x in r.pipelines] == ["default", "Partners"]
    assert r.status == {"open": 3, "won": 2, "lost": 3, "total": 8}  # open A3, P3, M1
    assert r.flow == {"created": 8, "qualified": 3, "won": 2, "lost": 3}
    t = r.pipeline_total
    assert (t.count, t.value) == (3, {"USD": 700_000, "EUR": 800_000})
    # P3 5,000 x 20 % + M1 2,000 x 50 % (Partners); A3 8,000 x 20 % (default's qualification)
    assert t.weighted == {"USD": 200_000, "EUR": 160_000}
    got = [(s.pipeline.name, s.stage, s.money.count, s.money.value, s.money.weighted)
           for s in r.pipeline if s.money.count]
    assert got == [
        ("default", "qualification", 1, {"EUR": 800_000}, {"EUR": 160_000}),
        ("Partners", "intro", 1, {"USD": 500_000}, {"USD": 100_000}),
        ("Partners", "pilot", 1, {"USD": 200_000}, {"USD": 100_000}),  # M1, moved there
    ]
    assert [(s.pipeline.name, s.stage) for s in r.pipeline] == [
        *(("default", k) for k in DEFAULT.open_keys),
        ("Partners", "intro"), ("Partners", "pilot"), ("Partners", "contract")]


def test_funnel_and_conversion_per_pipeline(two):
    r = _report(two, as_of=TWO_AS_OF)
    got = [(s.pipeline.name, s.from_stage, s.to_stage, s.reached_from, s.reached_to,
            s.rate.value) for s in r.conversion]
    assert got == [
        # A1 prospecting, A3 qualification, A2 won (meeting, proposal, then won: negotiation
        # skipped counts as passed). M1 is in Partners now: it counts there.
        ("default", "prospecting", "qualification", 3, 2, 0.6667),
        ("default", "qualification", "meeting", 2, 1, 0.5),
        ("default", "meeting", "proposal", 1, 1, 1.0),
        ("default", "proposal", "negotiation", 1, 1, 1.0),
        ("default", "negotiation", "won", 1, 1, 1.0),
        ("default", "won", "post_purchase", 1, 0, 0.0),
        # P1 signed, P2 contract (lost there), P3 and P4 intro, M1 pilot (moved in there:
        # intro counts as passed)
        ("Partners", "intro", "pilot", 5, 3, 0.6),
        ("Partners", "pilot", "contract", 3, 2, 0.6667),
        ("Partners", "contract", "signed", 2, 1, 0.5),
    ]
    # close rate: A2 of A2; P1 of P1, P2. Win rate: A2 of A2, A1; P1 of P1, P2, P4.
    assert (r.close_rate.numerator, r.close_rate.denominator) == (2, 3)
    assert (r.win_rate.numerator, r.win_rate.denominator) == (2, 5)
    assert [(x.pipeline.name, x.close_rate.value, x.win_rate.value) for x in r.by_pipeline] == [
        ("default", 1.0, 0.5), ("Partners", 0.5, 0.3333)]
    assert [(g.pipeline.name, g.key, g.count, g.value) for g in r.lost_by_stage] == [
        ("default", "prospecting", 1, {"USD": 1_000_000}),
        ("Partners", "intro", 1, {"USD": 100_000}),
        ("Partners", "contract", 1, {"EUR": 4_000_000}),
    ]


def test_time_in_stage_per_pipeline(two):
    r = _report(two, as_of=TWO_AS_OF)
    got = {(t.pipeline.name, t.stage): (t.stays.count, t.stays.median, t.now.count,
                                         t.now.median) for t in r.time_in_stage}
    # A1 9 days (lost); not M1's 2 days: it is in Partners now, and takes its stays along
    assert got["default", "prospecting"] == (1, 9.0, 0, None)
    assert got["default", "qualification"] == (0, None, 1, 22.0)  # A3 since 01-10
    assert got["Partners", "intro"] == (3, 3.0, 1, 27.0)  # P1 3, P2 5, P4 1; P3 since 01-05
    assert got["Partners", "pilot"] == (2, 2.0, 1, 19.0)  # P1 2, P2 2; M1 since 01-13
    assert got["Partners", "contract"] == (2, 4.0, 0, None)  # P1 7, P2 1


def test_pipeline_option_restricts_every_figure(two):
    r = summary.build(two, TWO_AS_OF, periods.window(None, None), pipeline="partners")
    assert r.only is not None and r.only.name == "Partners" and r.by_pipeline is None
    assert r.status == {"open": 2, "won": 1, "lost": 2, "total": 5}
    assert r.flow == {"created": 5, "qualified": 2, "won": 1, "lost": 2}
    assert r.pipeline_total.value == {"USD": 700_000}
    assert [(s.from_stage, s.rate.value) for s in r.conversion] == [
        ("intro", 0.6), ("pilot", 0.6667), ("contract", 0.5)]
    assert [(t.stage, t.stays.count, t.now.count) for t in r.time_in_stage] == [
        ("intro", 3, 1), ("pilot", 2, 1), ("contract", 2, 0)]
    out = report_json(r)
    assert out["pipeline_name"] == "Partners"
    assert "by_pipeline" not in out["close_rate"]
    default = summary.build(two, TWO_AS_OF, periods.window(None, None), pipeline="default")
    assert default.status == {"open": 1, "won": 1, "lost": 1, "total": 3}
    # prospecting: A1's stay. M1's was in default, but M1 is in Partners now: per-pipeline
    # figures count the deals in the pipeline as of the moment.
    assert default.time_in_stage[0].stays.count == 1
    with pytest.raises(UsageError, match="no pipeline named 'Nope'"):
        summary.build(two, TWO_AS_OF, periods.window(None, None), pipeline="Nope")


def test_each_pipelines_section_is_what_the_pipeline_option_shows(two):
    for as_of in ("2026-01-12T12:00:00Z", TWO_AS_OF):
        whole = report_json(_report(two, as_of=as_of))
        for name in ("default", "Partners"):
            alone = report_json(summary.build(two, as_of, periods.window(None, None),
                                              pipeline=name))
            for section in ("conversion", "time_in_stage"):
                assert [x for x in whole[section] if x["pipeline"] == name] == alone[section]
            assert [x for x in whole["pipeline"]["stages"] if x["pipeline"] == name] == (
                alone["pipeline"]["stages"])
            assert [x for x in whole["lost_reasons"]["by_stage"] if x["pipeline"] == name] == (
                alone["lost_reasons"]["by_stage"])
            mine = next(x for x in whole["close_rate"]["by_pipeline"] if x["pipeline"] == name)
            assert {**alone["close_rate"], "pipeline": name} == mine


def test_report_json_of_several_pipelines(two):
    out = report_json(_report(two, as_of=TWO_AS_OF))
    assert "pipeline_name" not in out
    assert out["pipeline"]["value"] == {"EUR": "8000.00", "USD": "7000.00"}
    assert out["pipeline"]["stages"][-2] == {
        "pipeline": "Partners", "stage": "pilot", "count": 1, "without_value": 0,
        "value": {"USD": "2000.00"}, "weighted_value": {"USD": "1000.00"}}
    assert out["close_rate"] == {"rate": 0.6667, "won": 2, "qualified": 3, "by_pipeline": [
        {"pipeline": "default", "rate": 1.0, "won": 1, "qualified": 1},
        {"pipeline": "Partners", "rate": 0.5, "won": 1, "qualified": 2}]}
    assert out["win_rate"]["by_pipeline"] == [
        {"pipeline": "default", "rate": 0.5, "won": 1, "lost": 1},
        {"pipeline": "Partners", "rate": 0.3333, "won": 1, "lost": 2}]
    assert out["conversion"][6] == {"pipeline": "Partners", "from": "intro", "to": "pilot",
                                    "reached_from": 5, "reached_to": 3, "rate": 0.6}
    assert out["lost_reasons"]["by_stage"][2] == {
        "pipeline": "Partners", "stage": "contract", "count": 1, "value": {"EUR": "40000.00"}}


def test_explain_names_each_pipelines_stages(two):
    r = _report(two, as_of=TWO_AS_OF, explain=True)
    assert r.deals["open_Partners:intro"] == [5]
    assert r.deals["open_Partners:pilot"] == [8]
    assert r.deals["open_default:qualification"] == [7]


def test_the_snapshot_as_of_before_the_move(two):
    r = _report(two, as_of="2026-01-12T12:00:00Z")  # M1 still in default's prospecting
    assert r.stage_money("default", "prospecting").value == {"USD": 200_000}
    assert r.stage_money("Partners", "pilot").count == 0


def test_a_new_probability_counts_from_its_version_on(two):
    partners = pipeline_store.find_id(two, "Partners")
    assert partners is not None
    line = [replace(s, probability=30) if s.key == "intro" else s for s in PARTNERS.line]
    with transaction(two):
        pipeline_store.add_version(two, partners, Pipeline.of("Partners", line, ("fit",)),
                                   "2026-02-10T00:00:00Z")
    before = _report(two, as_of="2026-02-05")
    after = _report(two, as_of="2026-02-15")
    # P3: 5,000 USD in intro, 20 % before the new version, 30 % from 02-10 on
    assert before.stage_money("Partners", "intro").weighted == {"USD": 100_000}
    assert after.stage_money("Partners", "intro").weighted == {"USD": 150_000}
    assert after.pipeline_total.weighted == {"USD": 250_000, "EUR": 160_000}
    # The forecast of February (P3 closes 02-20) is the pipeline as it stood when February
    # began: the 20 % of the definition in force then, even when read on 02-15.
    (feb,) = forecast.build(two, "2026-02-15T00:00:00Z",
                            periods.periods("month", date(2026, 2, 1), date(2026, 2, 1)))
    assert (feb.state, feb.forecast_ids, feb.forecast.weighted) == (
        "current", [5], {"USD": 100_000})
    (feb,) = forecast.build(two, "2026-02-15T00:00:00Z",
                            periods.periods("month", date(2026, 2, 1), date(2026, 2, 1)),
                            pipeline="default")
    assert feb.forecast_ids == []


def test_a_renamed_stage_keeps_its_history(two):
    partners = pipeline_store.find_id(two, "Partners")
    assert partners is not None
    line = [replace(s, label="Trial run") if s.key == "pilot" else s for s in PARTNERS.line]
    with transaction(two):
        pipeline_store.add_version(two, partners, Pipeline.of("Partners", line, ("fit",)),
                                   "2026-01-25T00:00:00Z")
    r = _report(two, as_of=TWO_AS_OF)
    assert r.pipelines[1].stage("pilot").label == "Trial run"
    tis = {(t.pipeline.name, t.stage): (t.stays.count, t.now.count) for t in r.time_in_stage}
    assert tis["Partners", "pilot"] == (2, 1)
    assert [(s.from_stage, s.reached_from, s.reached_to) for s in r.conversion][6:] == [
        ("intro", 5, 3), ("pilot", 3, 2), ("contract", 2, 1)]


def test_stale_uses_each_stages_rot_days(two):
    rows, total = actions.stale(two, TWO_AS_OF)
    # A3 idle 22 days (qualification: 14); P3 idle 10 days (intro: 7). M1 idle 10 days in
    # pilot (14): not stale.
    assert [(r.id, r.pipeline, r.stage, r.idle_days, r.threshold_days) for r in rows] == [
        (7, "default", "qualification", 22.0, 14), (5, "Partners", "intro", 10.0, 7)]
    assert total == 2
    pipes = all_in_force(two, TWO_AS_OF)
    rows, _ = actions.stale(two, TWO_AS_OF, actions.thresholds(pipes, 5))  # --days 5
    assert [r.id for r in rows] == [7, 5, 8]
    rows, _ = actions.stale(two, TWO_AS_OF, actions.thresholds(pipes, None, {(2, "intro"): 12}))
    assert [r.id for r in rows] == [7]


def test_next_uses_each_pipelines_actions(two):
    rows, total = actions.next_steps(two, TWO_AS_OF)
    assert total == 3
    got = [(r.id, r.pipeline, r.stage, r.why, r.action) for r in rows]
    assert got == [
        (7, "default", "qualification", "stale", DEFAULT.stage("qualification").action),
        (5, "Partners", "intro", "stale", "Book the introduction call."),
        (8, "Partners", "pilot", "open", "Run the pilot."),
    ]
    rows, total = actions.next_steps(two, TWO_AS_OF, sc=scope(two, TWO_AS_OF, "Partners"))
    assert ([r.id for r in rows], total) == ([5, 8], 2)


def test_one_pipeline_sql_does_not_switch_on_the_pipeline():
    """With one pipeline the snapshot's CASEs are over the stage alone (as fast as before
    pipelines); with several they switch on pipeline_id first."""
    from pipectl.reports.snapshot import _sql

    one = _sql({1: DEFAULT}, funnel=True)
    assert "pipeline_id" not in one["funnel_aggregates"] + one["won_move"] + one["status"]
    assert one["won_move"] == "(to_stage IN ('won', 'post_purchase'))"
    two = _sql({1: DEFAULT, 2: replace(PARTNERS, id=2)}, funnel=True)
    assert two["won_move"].startswith("(CASE pipeline_id WHEN 1 THEN to_stage IN ('won'")


# ---------------------------------------------------------------- report --by


def _by(conn, by, as_of=AS_OF, start=None, end=None, owner=None, pipeline=None, explain=False):
    from pipectl.reports import breakdown

    return breakdown.build(conn, as_of, periods.window(start, end), by, owner,
                           explain=explain, pipeline=pipeline)


def _row(g) -> tuple:
    return (g.key, g.won.count, g.won.value, (g.win_rate.numerator, g.win_rate.denominator),
            (g.close_rate.numerator, g.close_rate.denominator), g.cycle.median,
            g.open.count, g.open.without_value, g.open.value, g.open.weighted)


def test_by_owner(scenario):
    b = _by(scenario, "owner")
    # D6 has no owner; D8 does not exist yet. Wins in two currencies (USD, EUR): sorted by
    # deals won (one each), then by name; the deals without an owner last.
    assert b.sorted_by == "deals_won"
    assert [_row(g) for g in b.groups] == [
        # D1 won (31 days), D3 lost; qualified D1, D4; open D4 (proposal, 60 %) and D7 (no value)
        ("Anna", 1, {"USD": 1_000_000}, (1, 2), (1, 2), 31.0, 2, 1, {"USD": 800_000},
         {"USD": 480_000}),
        # D2 won (60 days); qualified D2, D5; open D5 (its own 50 %)
        ("Ben", 1, {"EUR": 2_500_000}, (1, 1), (1, 2), 60.0, 1, 0, {"EUR": 4_000_000},
         {"EUR": 2_000_000}),
        # D6 lost; never qualified: close rate n/a (0 / 0), no cycle
        (None, 0, {}, (0, 1), (0, 0), None, 0, 0, {}, {}),
    ]
    assert b.groups[2].close_rate.value is None and b.groups[2].win_rate.value == 0.0
    # the total is the report's own figures
    r = _report(scenario)
    t = b.total
    assert (t.won, t.cycle) == (r.won, r.cycle)
    assert (t.win_rate, t.close_rate) == (r.win_rate, r.close_rate)
    assert (t.open.count, t.open.without_value, t.open.value, t.open.weighted) == (
        r.pipeline_total.count, r.pipeline_total.without_value, r.pipeline_total.value,
        r.pipeline_total.weighted)


def test_each_owners_row_is_the_report_of_that_owner(scenario):
    for as_of, start, end in ((AS_OF, None, None), ("2026-02-25", None, None),
                              (AS_OF, date(2026, 2, 1), date(2026, 4, 1))):
        b = _by(scenario, "owner", as_of, start, end)
        for g in b.groups:
            if g.key is None:
                continue
            r = _report(scenario, as_of, start, end, owner=g.key)
            assert (g.won, g.cycle, g.win_rate, g.close_rate) == (
                r.won, r.cycle, r.win_rate, r.close_rate), (as_of, g.key)
            assert (g.open.count, g.open.value, g.open.weighted) == (
                r.pipeline_total.count, r.pipeline_total.value, r.pipeline_total.weighted)


def test_by_window_and_as_of(scenario):
    feb = _by(scenario, "owner", start=date(2026, 2, 1), end=date(2026, 3, 1))
    # One currency won in the window (D1's USD): sorted by won value. Ben won nothing in
    # February and lost nothing (win rate n/a), D5 (created 03-01) is not qualified in it.
    # D6 (no owner) was lost on 04-10, outside February, and is not open: its group is left
    # out.
    assert feb.sorted_by == "won_value"
    assert [(g.key, g.won.value, g.win_rate.value, g.close_rate.value) for g in feb.groups] == [
        ("Anna", {"USD": 1_000_000}, 1.0, 0.0),  # D4 qualified 02-10, not won
        ("Ben", {}, None, None),  # D5 open as of 06-30
    ]
    early = _by(scenario, "owner", as_of="2026-01-15")  # D1 D2 D3 open; nothing decided
    assert [(g.key, g.won.count, g.open.count, g.open.value) for g in early.groups] == [
        ("Anna", 0, 2, {"USD": 1_500_000}), ("Ben", 0, 1, {"EUR": 2_000_000})]


def test_by_owner_restricted_and_explained(scenario):
    b = _by(scenario, "source", owner="Anna", explain=True)
    # no deal has a source: one group, Anna's deals
    (g,) = b.groups
    assert (g.key, g.won.count, g.open.count) == (None, 1, 2)
    assert g.deals == {"won_in_window": [1], "lost_in_window": [3],
                       "qualified_in_window": [1, 4], "qualified_and_won": [1], "open": [4, 7]}
    assert g.deal_counts == {"won_in_window": 1, "lost_in_window": 1, "qualified_in_window": 2,
                             "qualified_and_won": 1, "open": 2}
    assert b.total.deals == g.deals
    every = _by(scenario, "owner", explain=True)
    assert every.total.deals == {"won_in_window": [1, 2], "lost_in_window": [3, 6],
                                 "qualified_in_window": [1, 2, 4, 5],
                                 "qualified_and_won": [1, 2], "open": [4, 5, 7]}
    assert [g.deals["open"] for g in every.groups] == [[4, 7], [5], []]


def test_by_pipeline_is_each_pipelines_report(two):
    b = _by(two, "pipeline", as_of=TWO_AS_OF)
    # wins in USD only (A2 20,000, P1 30,000): sorted by won value
    assert b.sorted_by == "won_value"
    assert [_row(g) for g in b.groups] == [
        ("Partners", 1, {"USD": 3_000_000}, (1, 3), (1, 2), 12.0, 2, 0, {"USD": 700_000},
         {"USD": 200_000}),
        ("default", 1, {"USD": 2_000_000}, (1, 2), (1, 1), 18.0, 1, 0, {"EUR": 800_000},
         {"EUR": 160_000}),
    ]
    for g in b.groups:
        r = summary.build(two, TWO_AS_OF, periods.window(None, None), pipeline=g.key)
        assert (g.won, g.cycle, g.win_rate, g.close_rate) == (
            r.won, r.cycle, r.win_rate, r.close_rate)
        assert (g.open.value, g.open.weighted) == (r.pipeline_total.value,
                                                   r.pipeline_total.weighted)
    # --by owner within one pipeline: no deal has an owner there
    (alone,) = _by(two, "owner", as_of=TWO_AS_OF, pipeline="Partners").groups
    assert (alone.key, alone.won.value) == (None, {"USD": 3_000_000})
