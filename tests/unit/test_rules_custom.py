"""The rules on pipelines of one's own: 4 stages, 12 stages, a gate that is not the second
stage, skippable stages, several after-won stages. Table-driven, as test_rules.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipectl.domain import rules
from pipectl.domain.checklist import Checklist
from pipectl.domain.pipeline import Pipeline, StageDef
from pipectl.domain.rules import DealState
from pipectl.errors import MoveRefused

LATER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

FOUR = Pipeline.of("four", [
    StageDef("lead", "Lead", probability=10),
    StageDef("call", "Call", probability=50),
    StageDef("signed", "Signed", kind="won", probability=100),
    StageDef("live", "Live", kind="after_won", probability=100),
])

# 12 stages: the gate is the fourth, two stages may be skipped, three after-won stages
TWELVE = Pipeline.of("twelve", [
    StageDef("s1", "S1", probability=5),
    StageDef("s2", "S2", probability=10, skippable=True),
    StageDef("s3", "S3", probability=15),
    StageDef("gate", "Gate", probability=20, gate=True),
    StageDef("s5", "S5", probability=30),
    StageDef("s6", "S6", probability=40, skippable=True),
    StageDef("s7", "S7", probability=50),
    StageDef("s8", "S8", probability=70),
    StageDef("won", "Won", kind="won", probability=100),
    StageDef("a1", "A1", kind="after_won", probability=100),
    StageDef("a2", "A2", kind="after_won", probability=100),
    StageDef("a3", "A3", kind="after_won", probability=100),
], checklist=("budget", "timing"))

PASS = {"budget": True, "timing": True}


def state(p: Pipeline, stage: str, marks: dict | None = None, **kw) -> DealState:
    return DealState(id=3, stage=stage, last_event_at="2026-03-01T09:00:00Z",
                     checklist=Checklist.of(p.checklist, marks or {}), **kw)


TABLE = [
    # (pipeline, here, state overrides, marks, --to, --prequalified, expected)
    (FOUR, "lead", {}, None, None, None, "forward call"),
    (FOUR, "lead", {}, None, "signed", None, "refused: cannot skip call"),
    (FOUR, "call", {}, None, None, None, "forward signed"),
    (FOUR, "call", {}, None, "live", None, "refused: must be won before live"),
    (FOUR, "signed", {}, None, None, None, "forward live"),
    (FOUR, "signed", {}, None, "call", None, "refused: a won deal only moves on to live"),
    (FOUR, "live", {}, None, None, None, "refused: the last stage"),
    (FOUR, "call", {}, None, "lead", None, "back lead"),
    (TWELVE, "s1", {}, None, "s3", None, "skip s3"),  # s2 may be skipped
    (TWELVE, "s1", {}, None, "gate", None, "refused: cannot skip s3"),
    (TWELVE, "s3", {}, None, None, None, "forward gate"),
    (TWELVE, "s3", {}, None, "s5", None, "refused: cannot skip gate unless it is pre-qualified"),
    (TWELVE, "s3", {}, None, "s5", "known", "skip s5"),
    (TWELVE, "s3", {}, None, None, "known", "skip s5"),  # plain advance passes the gate
    (TWELVE, "gate", {}, None, "s5", None, "refused: the checklist is missing budget, timing"),
    (TWELVE, "gate", {}, {"budget": True}, "s5", None, "refused: pipectl qualify 3 timing"),
    (TWELVE, "gate", {}, PASS, "s5", None, "forward s5"),
    (TWELVE, "gate", {}, PASS, "s6", None, "refused: cannot skip s5"),
    (TWELVE, "s5", {"qualified": True}, None, "s7", None, "skip s7"),  # s6 skippable
    (TWELVE, "s5", {"qualified": True}, None, "won", None, "refused: cannot skip s7"),
    (TWELVE, "s8", {"qualified": True}, None, "won", None, "forward won"),
    (TWELVE, "s8", {"qualified": True}, None, "a1", None, "refused: must be won before a1"),
    (TWELVE, "won", {"qualified": True}, None, "a2", None, "refused: only moves on to a1"),
    (TWELVE, "a1", {"qualified": True}, None, None, None, "forward a2"),
    (TWELVE, "a2", {"qualified": True}, None, "a1", None, "refused: it moves on to a3 only"),
    (TWELVE, "a3", {"qualified": True}, None, "a1", None, "refused: does not move back"),
]


@pytest.mark.parametrize(("p", "here", "kw", "marks", "to", "prequal", "expected"), TABLE)
def test_custom_advance(p, here, kw, marks, to, prequal, expected) -> None:
    s = state(p, here, marks, **kw)
    if expected.startswith("refused: "):
        with pytest.raises(MoveRefused) as info:
            rules.plan_advance(p, s, LATER, to, prequal)
        assert expected.removeprefix("refused: ") in str(info.value)
    else:
        move = rules.plan_advance(p, s, LATER, to, prequal)
        assert f"{move.direction.value} {move.to_stage}" == expected


@pytest.mark.parametrize(("p", "stage", "prequal", "expected"), [
    (FOUR, "lead", None, True),  # no gate: every deal is qualified as it is created
    (FOUR, "signed", None, True),
    (TWELVE, "s3", None, False),
    (TWELVE, "gate", None, False),
    (TWELVE, "s5", None, "only if it is pre-qualified"),
    (TWELVE, "s5", "known", True),
    (TWELVE, "nowhere", None, "has no stage 'nowhere'"),
])
def test_custom_create(p, stage, prequal, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises((MoveRefused, Exception), match=expected):
            rules.plan_create(p, stage, prequal)
    else:
        assert rules.plan_create(p, stage, prequal) is expected


def test_lose_and_reopen_in_a_custom_pipeline() -> None:
    move = rules.plan_lose(TWELVE, state(TWELVE, "s6", qualified=True), LATER, "price")
    assert (move.from_stage, move.to_stage) == ("s6", "lost")
    with pytest.raises(MoveRefused, match="only open deals"):
        rules.plan_lose(TWELVE, state(TWELVE, "a2"), LATER, "price")
    back = rules.plan_reopen(TWELVE, state(TWELVE, "lost", lost_at="s6"), LATER)
    assert back.to_stage == "s6"
    # lost at a stage a later version dropped: reopen says how to get out
    with pytest.raises(MoveRefused, match="no longer has"):
        rules.plan_reopen(FOUR, state(FOUR, "lost", lost_at="pitch"), LATER)


@pytest.mark.parametrize(("here", "to", "expected"), [
    ("s5", None, "pipeline lead"),
    ("s5", "call", "pipeline call"),
    ("won", None, "pipeline signed"),  # a won deal lands on the won stage
    ("won", "lead", "refused: is won: it moves to a stage that is won too"),
    ("s5", "signed", "refused: is not won"),
    ("lost", "call", "pipeline call"),  # stays lost, at call
])
def test_switch_pipeline(here, to, expected) -> None:
    s = state(TWELVE, here, lost_at="s5" if here == "lost" else None)
    if expected.startswith("refused: "):
        with pytest.raises(MoveRefused, match=expected.removeprefix("refused: ")):
            rules.plan_switch(TWELVE, FOUR, s, LATER, to)
    else:
        move = rules.plan_switch(TWELVE, FOUR, s, LATER, to)
        assert f"{move.direction.value} {move.to_stage}" == expected


def test_describe_says_this_pipelines_rules() -> None:
    text = "\n".join(rules.describe(TWELVE))
    assert "Leaving gate forward needs the checklist to pass: budget, timing." in text
    assert ("s1 may go straight to s3 (s2 skipped); s5 may go straight to s7 (s6 skipped); no "
            "other stage may be skipped.") in text
    assert "a1, a2, a3 follow only won" in text
    assert "No stage may be skipped." in "\n".join(rules.describe(FOUR))
