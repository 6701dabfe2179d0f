"""How a deal may move: pure functions from a pipeline, a deal's state and a request to a Move
or a refusal.

No I/O and no clock: the moment of every move is passed in, and so is the deal's pipeline, whose
stages say which may be skipped, which is the qualification gate and which are won. A refusal
raises MoveRefused with a message that says why and a hint that says what to do next (often
the exact command).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pipectl.domain.checklist import Checklist, qualify_command
from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.errors import MoveRefused, UsageError
from pipectl.values import iso


class Direction(StrEnum):
    FORWARD = "forward"  # one stage on
    SKIP = "skip"  # forward past a stage the rules let it skip
    BACK = "back"  # to an earlier open stage
    LOST = "lost"
    REOPEN = "reopen"
    PIPELINE = "pipeline"  # into another pipeline


@dataclass(frozen=True, slots=True)
class DealState:
    """What the rules need to know about a deal."""

    id: int
    stage: str
    last_event_at: str  # ISO UTC of the deal's latest event
    qualified: bool = False  # passed the gate once, or pre-qualified
    prequalified: bool = False  # a pre-qualification reason is on record
    lost_at: str | None = None
    checklist: Checklist = field(default_factory=Checklist)


@dataclass(frozen=True, slots=True)
class Move:
    from_stage: str
    to_stage: str
    direction: Direction
    qualifies: bool  # the deal becomes an SQL with this move
    prequalified: str | None = None  # the reason, when the move relies on pre-qualification
    reason: str | None = None  # loss reason
    skipped: tuple[str, ...] = ()  # the stages a skip passed over


def check_time(state: DealState, at: datetime) -> None:
    when = iso(at)
    if when < state.last_event_at:
        raise MoveRefused(
            f"deal {state.id}: {when} is before its latest event ({state.last_event_at})",
            hint="events are appended in time order; give a later --at",
        )


def check_note_time(state: DealState, created_at: str, at: datetime, changes_state: bool
                    ) -> None:
    """May a note be logged at ``at``? One that changes no state (no next step set, moved or
    cleared) may be logged at an earlier time than the deal's later events (a forgotten call),
    not before the deal was created; one that does follows ``check_time``."""
    when = iso(at)
    if changes_state:
        if when < state.last_event_at:
            raise MoveRefused(
                f"deal {state.id}: {when} is before its latest event ({state.last_event_at}), "
                "and a note with --next or --due sets the deal's next step as of then",
                hint="log the note alone at that time, and the next step now",
            )
        return
    if when < created_at:
        raise MoveRefused(
            f"deal {state.id}: {when} is before the deal was created ({created_at})",
            hint="give an --at after its creation",
        )


def plan_create(pipeline: Pipeline, stage: str, prequalified: str | None) -> bool:
    """May a new deal start in ``stage``? Returns whether it starts qualified."""
    if stage == LOST:
        raise MoveRefused(
            "a deal cannot start lost",
            hint="add it, then record the loss with: pipectl lose ID --reason TEXT",
        )
    pipeline.stage(stage)
    beyond_gate = pipeline.gate is not None and pipeline.order(stage) > pipeline.gate.order
    if beyond_gate and not prequalified:
        raise MoveRefused(
            f"a new deal may start in {stage} only if it is pre-qualified",
            hint='add --prequalified "REASON", e.g. "met at a conference; budget confirmed"',
        )
    return bool(prequalified) or pipeline.is_qualified_stage(stage)


def next_stage(pipeline: Pipeline, state: DealState, prequalified: str | None = None) -> str:
    """Where a plain ``advance`` takes the deal: the next stage, past the gate for a deal that
    is qualified already."""
    if state.stage == LOST:
        raise MoveRefused(
            f"deal {state.id} is lost (at {state.lost_at})",
            hint=f"reopen it first: pipectl reopen {state.id}",
        )
    here = pipeline.order(state.stage)
    if here == len(pipeline.line):
        raise MoveRefused(f"deal {state.id} is in {state.stage}, the last stage")
    following = pipeline.line[here]  # order is 1-based: line[here] is the next stage
    if following.gate and (state.qualified or prequalified) and here + 1 < len(pipeline.line):
        return pipeline.line[here + 1].key
    return following.key


def plan_advance(
    pipeline: Pipeline,
    state: DealState,
    at: datetime,
    to: str | None = None,
    prequalified: str | None = None,
) -> Move:
    check_time(state, at)
    here = state.stage
    if here == LOST:
        next_stage(pipeline, state)  # raises the "reopen first" refusal
    if to == LOST:
        raise MoveRefused(
            "a deal is lost with its own command",
            hint=f'pipectl lose {state.id} --reason "WHY"',
        )
    target = to or next_stage(pipeline, state, prequalified)
    pipeline.stage(target)
    if target == here:
        raise MoveRefused(f"deal {state.id} is already in {here}")
    if not pipeline.is_open(here):
        return _plan_after_won(pipeline, state, target)
    if not pipeline.is_open(target) and target != pipeline.won_key:
        raise MoveRefused(
            f"deal {state.id} must be won before {target}",
            hint=f"pipectl advance {state.id} --to {pipeline.won_key}",
        )
    if pipeline.order(target) < pipeline.order(here):
        return Move(here, target, Direction.BACK, qualifies=False)
    return _plan_forward(pipeline, state, target, prequalified)


def _plan_after_won(pipeline: Pipeline, state: DealState, target: str) -> Move:
    """A won deal moves on through the after-won stages, one at a time, and never back."""
    here = state.stage
    if pipeline.order(target) == pipeline.order(here) + 1:
        return Move(here, target, Direction.FORWARD, qualifies=False)
    after = pipeline.line[pipeline.order(here)].key if pipeline.order(here) < len(
        pipeline.line) else None
    if here == pipeline.won_key and after is not None:
        raise MoveRefused(
            f"deal {state.id} is won; a won deal only moves on to {after}",
            hint=f"pipectl advance {state.id} --to {after}",
        )
    if after is None:
        raise MoveRefused(
            f"deal {state.id} is won and in {here}, the last stage; a won deal does not "
            "move back"
        )
    raise MoveRefused(
        f"deal {state.id} is won and in {here}; it moves on to {after} only",
        hint=f"pipectl advance {state.id} --to {after}",
    )


def _plan_forward(
    pipeline: Pipeline, state: DealState, target: str, prequalified: str | None
) -> Move:
    here = state.stage
    between = pipeline.between(here, target)
    gate = pipeline.gate
    crosses_gate = gate is not None and (
        pipeline.order(here) <= gate.order < pipeline.order(target)
    )
    for skipped in between:
        if skipped.gate and (state.qualified or prequalified):
            continue
        if skipped.skippable:
            continue
        if skipped.gate:
            raise MoveRefused(
                f"deal {state.id} cannot skip {skipped.key} unless it is pre-qualified",
                hint=f'qualify it (pipectl advance {state.id}) or pass --prequalified "REASON"',
            )
        raise MoveRefused(
            f"deal {state.id} cannot skip {skipped.key} on the way to {target}",
            hint=f"advance one stage at a time: pipectl advance {state.id}",
        )
    used_prequal: str | None = None
    if crosses_gate and gate is not None and here == gate.key:
        if not state.checklist.passes():
            if prequalified:
                used_prequal = prequalified
            elif not state.prequalified:
                raise _not_qualified(state.id, here, state.checklist)
    elif crosses_gate and not state.qualified:
        used_prequal = prequalified
    direction = Direction.SKIP if between else Direction.FORWARD
    qualifies = crosses_gate and not state.qualified
    return Move(here, target, direction, qualifies=qualifies, prequalified=used_prequal,
                skipped=tuple(s.key for s in between))


def _not_qualified(deal_id: int, here: str, checklist: Checklist) -> MoveRefused:
    """Why a deal may not leave the gate stage. A criterion recorded as not met is a fact
    about the prospect, not a gap: the deal does not qualify, and the way on is to lose it
    or to record what has changed; only criteria never recorded are asked for."""
    items = checklist.items()
    refused = [c for c, v in items.items() if v is False]
    unknown = [c for c, v in items.items() if v is None]
    if refused:
        also = f"; {', '.join(unknown)} not recorded yet" if unknown else ""
        return MoveRefused(
            f"deal {deal_id} does not qualify: {', '.join(refused)} recorded as no{also}",
            hint=f'lose it (pipectl lose {deal_id} --reason "...") or record new information '
            f"({qualify_command(deal_id, refused + unknown)})",
        )
    them = "it" if len(unknown) == 1 else "them"
    return MoveRefused(
        f"deal {deal_id} cannot leave {here}: the checklist is missing " + ", ".join(unknown),
        hint=f"record {them} with: {qualify_command(deal_id, unknown)}",
    )


def plan_lose(pipeline: Pipeline, state: DealState, at: datetime, reason: str) -> Move:
    check_time(state, at)
    if not reason.strip():
        raise MoveRefused("a lost deal needs a reason", hint='--reason "WHY"')
    if state.stage == LOST:
        raise MoveRefused(f"deal {state.id} is already lost (at {state.lost_at})")
    if not pipeline.is_open(state.stage):
        raise MoveRefused(f"deal {state.id} is {state.stage}; only open deals can be lost")
    return Move(state.stage, LOST, Direction.LOST, qualifies=False, reason=reason)


def plan_reopen(pipeline: Pipeline, state: DealState, at: datetime, to: str | None = None
                ) -> Move:
    """Back to the stage it was lost at; to ``to`` only when its pipeline no longer has that
    stage (a later version dropped it)."""
    check_time(state, at)
    if state.stage != LOST or state.lost_at is None:
        raise MoveRefused(f"deal {state.id} is not lost; only a lost deal can be reopened")
    gone = not pipeline.has(state.lost_at) or not pipeline.is_open(state.lost_at)
    if to is None or to == state.lost_at:
        if gone:
            raise MoveRefused(
                f"deal {state.id} was lost at {state.lost_at}, which pipeline "
                f"{pipeline.name!r} no longer has as an open stage",
                hint=f"reopen it in another: pipectl reopen {state.id} --stage STAGE",
            )
        return Move(LOST, state.lost_at, Direction.REOPEN, qualifies=False)
    if not gone:
        raise MoveRefused(
            f"deal {state.id} reopens in {state.lost_at}, where it was lost; --stage is only "
            "where the stage it was lost at is gone",
            hint=f"pipectl reopen {state.id}",
        )
    if not pipeline.is_open(to):
        raise MoveRefused(f"deal {state.id} reopens in an open stage; {to} is not one")
    if pipeline.is_qualified_stage(to) and not state.qualified:
        raise MoveRefused(f"deal {state.id} was never qualified: it may not reopen beyond "
                          f"{pipeline.gate.key if pipeline.gate else 'the gate'}")
    return Move(LOST, to, Direction.REOPEN, qualifies=False)


def plan_switch(
    source: Pipeline, target: Pipeline, state: DealState, at: datetime, stage: str | None,
    prequalified: str | None = None,
) -> Move:
    """Move a deal into another pipeline, at ``stage`` (default: its first stage). A lost deal
    stays lost, at that stage; a won one must land on a won stage. Landing beyond the target's
    gate needs the deal qualified already, or a pre-qualification reason."""
    check_time(state, at)
    if source.name == target.name:
        raise MoveRefused(f"deal {state.id} is in pipeline {target.name!r} already",
                          hint=f"move it within it: pipectl advance {state.id} --to STAGE")
    to = stage or (target.won_key if state.stage != LOST and source.is_won(state.stage)
                   else target.first)
    if to == LOST:
        raise UsageError("--stage names a stage of the pipeline; lost is not one",
                         hint=f"a lost deal stays lost: name the open stage it died at; to lose "
                         f"an open deal: pipectl lose {state.id} --reason WHY")
    target.stage(to)
    if state.stage != LOST and source.is_won(state.stage) != target.is_won(to):
        what = "won" if source.is_won(state.stage) else "not won"
        raise MoveRefused(
            f"deal {state.id} is {what}: it moves to a stage that is {what} too",
            hint=f"e.g. --stage {target.won_key if what == 'won' else target.first}",
        )
    if state.stage == LOST and not target.is_open(to):
        raise MoveRefused(f"deal {state.id} is lost: --stage names the open stage it died at")
    beyond_gate = target.gate is not None and target.order(to) > target.gate.order
    if beyond_gate and not state.qualified and not prequalified:
        raise MoveRefused(
            f"deal {state.id} is not qualified: it may land in {to}, beyond "
            f"{target.gate.key if target.gate else 'the gate'}, only if it is pre-qualified",
            hint='add --prequalified "REASON"',
        )
    used = prequalified if beyond_gate and not state.qualified else None
    return Move(state.stage, to, Direction.PIPELINE, qualifies=bool(used), prequalified=used)


def describe(pipeline: Pipeline) -> list[str]:
    """The rules above, in words, for this pipeline (``pipectl stages``)."""
    first, won = pipeline.first, pipeline.won_key
    gate = pipeline.gate
    out = []
    if gate is not None:
        after = pipeline.line[gate.order].key
        out.append(f"A new deal starts in {first}; starting in {after} or later needs "
                   "--prequalified REASON.")
    else:
        out.append(f"A new deal starts in {first} unless --stage says otherwise.")
    out.append("advance moves one stage forward; --to STAGE moves further only where a skip is "
               "allowed.")
    if gate is not None:
        criteria = ", ".join(pipeline.checklist)
        out.append(f"Leaving {gate.key} forward needs the checklist to pass: {criteria}.")
        if gate.order > 1:
            before, after = pipeline.line[gate.order - 2].key, pipeline.line[gate.order].key
            out.append(f"A pre-qualified deal may go from {before} straight to {after}.")
    skippable = [s for s in pipeline.line if s.skippable]
    if skippable:
        said = "; ".join(
            f"{pipeline.line[s.order - 2].key if s.order > 1 else 'a new deal'} may go straight "
            f"to {pipeline.line[s.order].key} ({s.key} skipped)" for s in skippable)
        out.append(f"{said}; no other stage may be skipped.")
    else:
        out.append("No stage may be skipped" + (" but by pre-qualification." if gate else "."))
    out.append("Moving back to an earlier open stage is allowed and recorded.")
    out.append("lose works from any open stage and needs --reason; reopen returns to the stage "
               "it was lost at.")
    after_won = [s.key for s in pipeline.line if s.kind == "after_won"]
    tail = f"{', '.join(after_won)} follow{'s' if len(after_won) == 1 else ''} only {won}. " \
        if after_won else ""
    out.append(f"{tail}Events are appended, never rewritten.")
    return out
