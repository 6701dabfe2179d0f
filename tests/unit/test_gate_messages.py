"""The qualification gate's refusal: a criterion never recorded is asked for; one recorded as
"no" means the prospect does not qualify, and the message says so (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipectl.domain import rules
from pipectl.domain.checklist import Checklist
from pipectl.domain.pipeline import DEFAULT, DEFAULT_CHECKLIST
from pipectl.domain.rules import DealState
from pipectl.errors import MoveRefused

LATER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALL_BUT_NEED = {"location": True, "budget": True, "authority": True}

# (the deal's marks, the whole one-line refusal as the CLI prints it after "error: ")
TABLE = [
    ({}, "deal 2 cannot leave qualification: the checklist is missing location, budget, "
         "authority, need (record them with: pipectl qualify 2 location budget authority need)"),
    (ALL_BUT_NEED,
     "deal 2 cannot leave qualification: the checklist is missing need "
     "(record it with: pipectl qualify 2 need)"),
    ({**ALL_BUT_NEED, "need": False},
     'deal 2 does not qualify: need recorded as no (lose it (pipectl lose 2 --reason "...") '
     "or record new information (pipectl qualify 2 need))"),
    ({"location": True, "budget": False, "authority": True, "need": False},
     "deal 2 does not qualify: budget, need recorded as no (lose it (pipectl lose 2 --reason "
     '"...") or record new information (pipectl qualify 2 budget need))'),
    # a "no" outweighs the gaps: the deal does not qualify whatever the others say
    ({"location": True, "need": False},
     "deal 2 does not qualify: need recorded as no; budget, authority not recorded yet "
     '(lose it (pipectl lose 2 --reason "...") or record new information '
     "(pipectl qualify 2 need budget authority))"),
]


@pytest.mark.parametrize(("marks", "message"), TABLE)
def test_the_gate_says_why(marks: dict[str, bool], message: str) -> None:
    state = DealState(id=2, stage="qualification", last_event_at="2026-03-01T09:00:00Z",
                      checklist=Checklist.of(DEFAULT_CHECKLIST, marks))
    with pytest.raises(MoveRefused) as info:
        rules.plan_advance(DEFAULT, state, LATER, None, None)
    assert str(info.value) == message


def test_a_passing_checklist_or_a_prequalification_opens_the_gate() -> None:
    state = DealState(id=2, stage="qualification", last_event_at="2026-03-01T09:00:00Z",
                      checklist=Checklist.of(DEFAULT_CHECKLIST, {**ALL_BUT_NEED, "need": False}))
    move = rules.plan_advance(DEFAULT, state, LATER, None, "met at a fair; all confirmed")
    assert move.to_stage == "meeting"
