"""Every allowed and every refused transition, written out as a table.

Each row: the deal's situation, the requested move, and the expected outcome: a direction
("forward", "skip", "back", "lost", "reopen") or "refused: <words the refusal must contain>".
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pytest

from pipectl.domain import rules
from pipectl.domain.checklist import Checklist
from pipectl.domain.pipeline import DEFAULT, DEFAULT_CHECKLIST
from pipectl.domain.rules import DealState
from pipectl.errors import MoveRefused


class S(StrEnum):
    """The default pipeline's stage keys, and lost."""

    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    MEETING = "meeting"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    POST_PURCHASE = "post_purchase"
    LOST = "lost"


def test_the_stage_keys_here_are_the_default_pipelines() -> None:
    assert [*DEFAULT.keys, "lost"] == [s.value for s in S]

T0 = "2026-03-01T09:00:00Z"
LATER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSING = Checklist.of(DEFAULT_CHECKLIST, dict.fromkeys(DEFAULT_CHECKLIST, True))
PARTIAL = Checklist.of(DEFAULT_CHECKLIST, {"location": True, "budget": True, "authority": False})

QUALIFIED_STAGES = {S.MEETING, S.PROPOSAL, S.NEGOTIATION, S.WON, S.POST_PURCHASE}


def state(stage: S, **kw) -> DealState:
    kw.setdefault("checklist", Checklist.of(DEFAULT_CHECKLIST))
    kw.setdefault("qualified", stage in QUALIFIED_STAGES)
    if stage is S.LOST:
        kw.setdefault("lost_at", S.PROPOSAL)
        kw.setdefault("qualified", True)
    return DealState(id=7, stage=stage, last_event_at=T0, **kw)


# (from stage, state overrides, --to, --prequalified, expected)
ADVANCE_TABLE = [
    # prospecting, not qualified
    (S.PROSPECTING, {}, S.QUALIFICATION, None, "forward"),
    (S.PROSPECTING, {}, S.MEETING, None, "refused: cannot skip qualification"),
    (S.PROSPECTING, {}, S.PROPOSAL, None, "refused: cannot skip qualification"),
    (S.PROSPECTING, {}, S.NEGOTIATION, None, "refused: cannot skip qualification"),
    (S.PROSPECTING, {}, S.WON, None, "refused: cannot skip qualification"),
    (S.PROSPECTING, {}, S.POST_PURCHASE, None, "refused: must be won before post_purchase"),
    (S.PROSPECTING, {}, S.LOST, None, "refused: lost with its own command"),
    (S.PROSPECTING, {}, S.PROSPECTING, None, "refused: already in prospecting"),
    # prospecting, pre-qualified now or earlier
    (S.PROSPECTING, {}, S.MEETING, "knows us", "skip"),
    (S.PROSPECTING, {"qualified": True, "prequalified": True}, S.MEETING, None, "skip"),
    (S.PROSPECTING, {}, S.PROPOSAL, "knows us", "refused: cannot skip meeting"),
    (S.PROSPECTING, {}, S.WON, "knows us", "refused: cannot skip meeting"),
    (S.PROSPECTING, {}, S.NEGOTIATION, "knows us", "refused: cannot skip meeting"),
    # qualification: the gate
    (S.QUALIFICATION, {}, S.MEETING, None,
     "refused: checklist is missing location, budget, authority, need"),
    (S.QUALIFICATION, {"checklist": PARTIAL}, S.MEETING, None,
     "refused: pipectl qualify 7 authority need"),
    (S.QUALIFICATION, {"checklist": PASSING}, S.MEETING, None, "forward"),
    (S.QUALIFICATION, {}, S.MEETING, "verified on LinkedIn", "forward"),
    (S.QUALIFICATION, {"prequalified": True}, S.MEETING, None, "forward"),
    (S.QUALIFICATION, {"checklist": PASSING}, S.PROPOSAL, None, "refused: cannot skip meeting"),
    (S.QUALIFICATION, {"checklist": PASSING}, S.WON, None, "refused: cannot skip meeting"),
    (S.QUALIFICATION, {}, S.PROSPECTING, None, "back"),
    (S.QUALIFICATION, {}, S.POST_PURCHASE, None, "refused: must be won"),
    (S.QUALIFICATION, {}, S.QUALIFICATION, None, "refused: already in"),
    (S.QUALIFICATION, {"checklist": PASSING}, S.NEGOTIATION, None, "refused: cannot skip meeting"),
    (S.QUALIFICATION, {}, S.LOST, None, "refused: lost with its own command"),
    # meeting
    (S.MEETING, {}, S.PROPOSAL, None, "forward"),
    (S.MEETING, {}, S.NEGOTIATION, None, "refused: cannot skip proposal"),
    (S.MEETING, {}, S.WON, None, "refused: cannot skip proposal"),
    (S.MEETING, {}, S.QUALIFICATION, None, "back"),
    (S.MEETING, {}, S.PROSPECTING, None, "back"),
    (S.MEETING, {}, S.POST_PURCHASE, None, "refused: must be won"),
    (S.MEETING, {}, S.LOST, None, "refused: lose 7 --reason"),
    (S.MEETING, {}, S.MEETING, None, "refused: already in meeting"),
    # proposal: negotiation may be skipped
    (S.PROPOSAL, {}, S.NEGOTIATION, None, "forward"),
    (S.PROPOSAL, {}, S.WON, None, "skip"),
    (S.PROPOSAL, {}, S.MEETING, None, "back"),
    (S.PROPOSAL, {}, S.QUALIFICATION, None, "back"),
    (S.PROPOSAL, {}, S.PROSPECTING, None, "back"),
    (S.PROPOSAL, {}, S.POST_PURCHASE, None, "refused: must be won"),
    (S.PROPOSAL, {}, S.PROPOSAL, None, "refused: already in"),
    (S.PROPOSAL, {}, S.LOST, None, "refused: lost with its own command"),
    # negotiation
    (S.NEGOTIATION, {}, S.WON, None, "forward"),
    (S.NEGOTIATION, {}, S.PROPOSAL, None, "back"),
    (S.NEGOTIATION, {}, S.MEETING, None, "back"),
    (S.NEGOTIATION, {}, S.QUALIFICATION, None, "back"),
    (S.NEGOTIATION, {}, S.PROSPECTING, None, "back"),
    (S.NEGOTIATION, {}, S.POST_PURCHASE, None, "refused: must be won"),
    (S.NEGOTIATION, {}, S.NEGOTIATION, None, "refused: already in negotiation"),
    (S.NEGOTIATION, {}, S.LOST, None, "refused: lost with its own command"),
    # won: only on to post_purchase
    (S.WON, {}, S.POST_PURCHASE, None, "forward"),
    *[(S.WON, {}, to, None, "refused: only moves on to post_purchase")
      for to in (S.PROSPECTING, S.QUALIFICATION, S.MEETING, S.PROPOSAL, S.NEGOTIATION)],
    (S.WON, {}, S.WON, None, "refused: already in won"),
    (S.WON, {}, S.LOST, None, "refused: lost with its own command"),
    # post_purchase: terminal
    *[(S.POST_PURCHASE, {}, to, None, "refused: last stage; a won deal does not move back")
      for to in S if to not in (S.POST_PURCHASE, S.LOST)],
    (S.POST_PURCHASE, {}, S.POST_PURCHASE, None, "refused: already in post_purchase"),
    (S.POST_PURCHASE, {}, S.LOST, None, "refused: lost with its own command"),
    # lost: reopen first
    *[(S.LOST, {}, to, None, "refused: reopen it first: pipectl reopen 7") for to in S],
]


@pytest.mark.parametrize(
    ("here", "overrides", "to", "prequal", "expected"),
    ADVANCE_TABLE,
    ids=[f"{r[0]}->{r[2]}{'+prequal' if r[3] else ''}{'+' + ','.join(r[1]) if r[1] else ''}"
         for r in ADVANCE_TABLE],
)
def test_advance_table(here, overrides, to, prequal, expected) -> None:
    s = state(here, **overrides)
    if expected.startswith("refused: "):
        with pytest.raises(MoveRefused) as info:
            rules.plan_advance(DEFAULT, s, LATER, to, prequal)
        assert expected.removeprefix("refused: ") in str(info.value)
    else:
        move = rules.plan_advance(DEFAULT, s, LATER, to, prequal)
        assert (move.from_stage, move.to_stage, move.direction.value) == (here, to, expected)


def test_every_pair_is_in_the_table() -> None:
    """Every (from, to) pair of stages appears at least once: nothing is left untested."""
    pairs = {(r[0], r[2]) for r in ADVANCE_TABLE}
    missing = [(a.value, b.value) for a in S for b in S if (a, b) not in pairs]
    assert missing == []


# Plain `advance` (no --to): where it goes, or why it cannot.
NEXT_TABLE = [
    (S.PROSPECTING, {}, None, S.QUALIFICATION),
    (S.PROSPECTING, {}, "knows us", S.MEETING),
    (S.PROSPECTING, {"qualified": True}, None, S.MEETING),
    (S.QUALIFICATION, {"checklist": PASSING}, None, S.MEETING),
    (S.MEETING, {}, None, S.PROPOSAL),
    (S.PROPOSAL, {}, None, S.NEGOTIATION),
    (S.NEGOTIATION, {}, None, S.WON),
    (S.WON, {}, None, S.POST_PURCHASE),
    (S.POST_PURCHASE, {}, None, "last stage"),
    (S.LOST, {}, None, "reopen it first"),
]


@pytest.mark.parametrize(("here", "overrides", "prequal", "expected"), NEXT_TABLE)
def test_plain_advance(here, overrides, prequal, expected) -> None:
    s = state(here, **overrides)
    if isinstance(expected, str) and expected not in set(S):
        with pytest.raises(MoveRefused, match=expected):
            rules.plan_advance(DEFAULT, s, LATER, None, prequal)
    else:
        assert rules.plan_advance(DEFAULT, s, LATER, None, prequal).to_stage == expected


@pytest.mark.parametrize(
    ("here", "overrides", "to", "prequal", "qualifies"),
    [
        (S.QUALIFICATION, {"checklist": PASSING}, S.MEETING, None, True),
        (S.PROSPECTING, {}, S.MEETING, "knows us", True),
        (S.PROSPECTING, {"qualified": True}, S.MEETING, None, False),  # an SQL once only
        (S.QUALIFICATION, {"checklist": PASSING, "qualified": True}, S.MEETING, None, False),
        (S.MEETING, {}, S.PROPOSAL, None, False),
        (S.PROSPECTING, {}, S.QUALIFICATION, None, False),
    ],
)
def test_when_a_deal_becomes_qualified(here, overrides, to, prequal, qualifies) -> None:
    move = rules.plan_advance(DEFAULT, state(here, **overrides), LATER, to, prequal)
    assert move.qualifies is qualifies


def test_skip_records_the_skipped_stages() -> None:
    assert rules.plan_advance(DEFAULT, state(S.PROPOSAL), LATER, S.WON).skipped == (S.NEGOTIATION,)
    move = rules.plan_advance(DEFAULT, state(S.PROSPECTING), LATER, S.MEETING, "knows us")
    assert move.skipped == (S.QUALIFICATION,)
    assert move.prequalified == "knows us"


@pytest.mark.parametrize(
    ("here", "expected"),
    [
        (S.PROSPECTING, "lost"), (S.QUALIFICATION, "lost"), (S.MEETING, "lost"),
        (S.PROPOSAL, "lost"), (S.NEGOTIATION, "lost"),
        (S.WON, "refused: only open deals can be lost"),
        (S.POST_PURCHASE, "refused: only open deals can be lost"),
        (S.LOST, "refused: already lost"),
    ],
)
def test_lose_table(here, expected) -> None:
    s = state(here)
    if expected.startswith("refused: "):
        with pytest.raises(MoveRefused, match=expected.removeprefix("refused: ")):
            rules.plan_lose(DEFAULT, s, LATER, "price")
    else:
        move = rules.plan_lose(DEFAULT, s, LATER, "price")
        assert (move.from_stage, move.to_stage, move.reason) == (here, S.LOST, "price")


def test_lose_needs_a_reason() -> None:
    with pytest.raises(MoveRefused, match="needs a reason"):
        rules.plan_lose(DEFAULT, state(S.MEETING), LATER, "  ")


@pytest.mark.parametrize("lost_at", [S.PROSPECTING, S.QUALIFICATION, S.MEETING, S.PROPOSAL,
                                     S.NEGOTIATION])
def test_reopen_returns_to_the_stage_it_was_lost_at(lost_at) -> None:
    move = rules.plan_reopen(DEFAULT, state(S.LOST, lost_at=lost_at), LATER)
    assert (move.from_stage, move.to_stage, move.direction.value) == (S.LOST, lost_at, "reopen")


@pytest.mark.parametrize("here", [s for s in S if s is not S.LOST])
def test_reopen_refused_unless_lost(here) -> None:
    with pytest.raises(MoveRefused, match="only a lost deal can be reopened"):
        rules.plan_reopen(DEFAULT, state(here), LATER)


CREATE_TABLE = [
    (S.PROSPECTING, None, False),
    (S.PROSPECTING, "knows us", True),
    (S.QUALIFICATION, None, False),
    (S.QUALIFICATION, "knows us", True),
    (S.MEETING, None, "refused: only if it is pre-qualified"),
    (S.MEETING, "knows us", True),
    (S.PROPOSAL, None, "refused: only if it is pre-qualified"),
    (S.PROPOSAL, "knows us", True),
    (S.NEGOTIATION, None, "refused: only if it is pre-qualified"),
    (S.NEGOTIATION, "knows us", True),
    (S.WON, None, "refused: only if it is pre-qualified"),
    (S.WON, "knows us", True),
    (S.POST_PURCHASE, None, "refused: only if it is pre-qualified"),
    (S.POST_PURCHASE, "knows us", True),
    (S.LOST, None, "refused: cannot start lost"),
    (S.LOST, "knows us", "refused: cannot start lost"),
]


@pytest.mark.parametrize(("stage", "prequal", "expected"), CREATE_TABLE)
def test_create_table(stage, prequal, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(MoveRefused, match=expected.removeprefix("refused: ")):
            rules.plan_create(DEFAULT, stage, prequal)
    else:
        assert rules.plan_create(DEFAULT, stage, prequal) is expected


@pytest.mark.parametrize(
    "call",
    [
        lambda s, t: rules.plan_advance(DEFAULT, s, t),
        lambda s, t: rules.plan_lose(DEFAULT, s, t, "price"),
        lambda s, t: rules.plan_reopen(DEFAULT, s, t),
    ],
)
def test_no_event_before_the_previous_one(call) -> None:
    s = DealState(id=7, stage=S.MEETING, last_event_at=T0, qualified=True, lost_at=S.MEETING)
    if "plan_reopen" in call.__code__.co_names:
        s = DealState(id=7, stage=S.LOST, last_event_at=T0, lost_at=S.MEETING)
    with pytest.raises(MoveRefused, match="before its latest event"):
        call(s, datetime(2026, 2, 28, tzinfo=UTC))
    # the same moment as the latest event is fine
    call(s, datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
