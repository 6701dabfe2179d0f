"""How a deal may move: pure functions from a deal's state and a request to a Move or a refusal.

No I/O and no clock: the moment of every move is passed in. A refusal raises MoveRefused with a
message that says why and a hint that says what to do next (often the exact command).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pipectl import stages
from pipectl.errors import MoveRefused
from pipectl.qualification import Checklist, qualify_command
from pipectl.stages import Stage
from pipectl.values import iso


class Direction(StrEnum):
    FORWARD = "forward"  # one stage on
    SKIP = "skip"  # forward past a stage the rules let it skip
    BACK = "back"  # to an earlier open stage
    LOST = "lost"
    REOPEN = "reopen"


@dataclass(frozen=True, slots=True)
class DealState:
    """What the rules need to know about a deal."""

    id: int
    stage: Stage
    last_event_at: str  # ISO UTC of the deal's latest event
    qualified: bool = False  # passed the gate once, or pre-qualified
    prequalified: bool = False  # a pre-qualification reason is on record
    lost_at: Stage | None = None
    checklist: Checklist = field(default_factory=Checklist)


@dataclass(frozen=True, slots=True)
class Move:
    from_stage: Stage
    to_stage: Stage
    direction: Direction
    qualifies: bool  # the deal becomes an SQL with this move
    prequalified: str | None = None  # the reason, when the move relies on pre-qualification
    reason: str | None = None  # loss reason

    @property
    def skipped(self) -> tuple[Stage, ...]:
        if self.direction is not Direction.SKIP:
            return ()
        lo, hi = stages.order(self.from_stage), stages.order(self.to_stage)
        return tuple(s for s in stages.LINE if lo < stages.order(s) < hi)


def check_time(state: DealState, at: datetime) -> None:
    when = iso(at)
    if when < state.last_event_at:
        raise MoveRefused(
            f"deal {state.id}: {when} is before its latest event ({state.last_event_at})",
            hint="events are appended in time order; give a later --at",
        )


def plan_create(stage: Stage, prequalified: str | None) -> bool:
    """May a new deal start in ``stage``? Returns whether it starts qualified."""
    if stage is Stage.LOST:
        raise MoveRefused(
            "a deal cannot start lost",
            hint="add it, then record the loss with: pipectl lose ID --reason TEXT",
        )
    if stages.is_qualified_stage(stage) and not prequalified:
        raise MoveRefused(
            f"a new deal may start in {stage} only if it is pre-qualified",
            hint='add --prequalified "REASON", e.g. "met at a conference; budget confirmed"',
        )
    return bool(prequalified) or stages.is_qualified_stage(stage)


def next_stage(state: DealState, prequalified: str | None = None) -> Stage:
    """Where a plain ``advance`` takes the deal."""
    if state.stage is Stage.LOST:
        raise MoveRefused(
            f"deal {state.id} is lost (at {state.lost_at})",
            hint=f"reopen it first: pipectl reopen {state.id}",
        )
    if state.stage is Stage.POST_PURCHASE:
        raise MoveRefused(f"deal {state.id} is in post_purchase, the last stage")
    if state.stage is Stage.PROSPECTING and (state.qualified or prequalified):
        return Stage.MEETING
    return stages.LINE[stages.LINE.index(state.stage) + 1]


def plan_advance(
    state: DealState, at: datetime, to: Stage | None = None, prequalified: str | None = None
) -> Move:
    check_time(state, at)
    target = to or next_stage(state, prequalified)
    here = state.stage
    if here is Stage.LOST:
        next_stage(state)  # raises the "reopen first" refusal
    if target is Stage.LOST:
        raise MoveRefused(
            "a deal is lost with its own command",
            hint=f'pipectl lose {state.id} --reason "WHY"',
        )
    if target is here:
        raise MoveRefused(f"deal {state.id} is already in {here}")
    if not stages.is_open(here):
        if here is Stage.WON and target is Stage.POST_PURCHASE:
            return Move(here, target, Direction.FORWARD, qualifies=False)
        if here is Stage.WON:
            raise MoveRefused(
                f"deal {state.id} is won; a won deal only moves on to post_purchase",
                hint=f"pipectl advance {state.id} --to post_purchase",
            )
        raise MoveRefused(
            f"deal {state.id} is won and in post_purchase, the last stage; a won deal does not "
            "move back"
        )
    if target is Stage.POST_PURCHASE:
        raise MoveRefused(
            f"deal {state.id} must be won before post_purchase",
            hint=f"pipectl advance {state.id} --to won",
        )
    if stages.order(target) < stages.order(here):
        return Move(here, target, Direction.BACK, qualifies=False)
    return _plan_forward(state, target, prequalified)


def _plan_forward(state: DealState, target: Stage, prequalified: str | None) -> Move:
    here = state.stage
    lo, hi = stages.order(here), stages.order(target)
    between = [s for s in stages.LINE if lo < stages.order(s) < hi]
    crosses_gate = stages.is_qualified_stage(target) and not stages.is_qualified_stage(here)
    for skipped in between:
        if skipped is Stage.QUALIFICATION and (state.qualified or prequalified):
            continue
        if skipped is Stage.NEGOTIATION and target is Stage.WON:
            continue
        if skipped is Stage.QUALIFICATION:
            raise MoveRefused(
                f"deal {state.id} cannot skip qualification unless it is pre-qualified",
                hint=f'qualify it (pipectl advance {state.id}) or pass --prequalified "REASON"',
            )
        raise MoveRefused(
            f"deal {state.id} cannot skip {skipped} on the way to {target}",
            hint=f"advance one stage at a time: pipectl advance {state.id}",
        )
    used_prequal: str | None = None
    if crosses_gate and here is Stage.QUALIFICATION:
        if not state.checklist.passes():
            if prequalified:
                used_prequal = prequalified
            elif not state.prequalified:
                missing = state.checklist.missing()
                raise MoveRefused(
                    f"deal {state.id} cannot leave qualification: the checklist is missing "
                    + ", ".join(missing),
                    hint=f"record them with: {qualify_command(state.id, missing)}",
                )
    elif crosses_gate and not state.qualified:
        used_prequal = prequalified
    direction = Direction.SKIP if between else Direction.FORWARD
    qualifies = crosses_gate and not state.qualified
    return Move(here, target, direction, qualifies=qualifies, prequalified=used_prequal)


def plan_lose(state: DealState, at: datetime, reason: str) -> Move:
    check_time(state, at)
    if not reason.strip():
        raise MoveRefused("a lost deal needs a reason", hint='--reason "WHY"')
    if state.stage is Stage.LOST:
        raise MoveRefused(f"deal {state.id} is already lost (at {state.lost_at})")
    if not stages.is_open(state.stage):
        raise MoveRefused(f"deal {state.id} is {state.stage}; only open deals can be lost")
    return Move(state.stage, Stage.LOST, Direction.LOST, qualifies=False, reason=reason)


def plan_reopen(state: DealState, at: datetime) -> Move:
    check_time(state, at)
    if state.stage is not Stage.LOST or state.lost_at is None:
        raise MoveRefused(f"deal {state.id} is not lost; only a lost deal can be reopened")
    return Move(Stage.LOST, state.lost_at, Direction.REOPEN, qualifies=False)
