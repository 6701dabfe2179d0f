"""What a deal needs next: the step a salesperson logged (pipectl note --next), while it still
holds, else what its stage calls for. ``pipectl show`` and ``pipectl next`` read it; the SQL of
``reports/actions.py`` applies the same rule to every open deal."""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.domain.pipeline import Pipeline

DUE_ONLY = "Do what is due"  # the action of a next step logged with a due date alone


# A note that clears the logged next step (pipectl done, note --next ""): field "next_action",
# old the step it cleared, no next_action and no due. ``NOTE_STATES_STEP`` is the SQL test
# of a note that sets or clears it (the latest such note is the deal's logged step).
CLEARS = "next_action"
NOTE_STATES_STEP = "(e.next_action IS NOT NULL OR e.due IS NOT NULL OR e.field = 'next_action')"


def cleared(event: dict) -> bool:
    """Does this note clear the next step (rather than set one)?"""
    return (event.get("field") == CLEARS and event.get("next_action") is None
            and event.get("due") is None)


@dataclass(frozen=True, slots=True)
class NextStep:
    action: str
    logged: bool  # logged with pipectl note --next (else what the stage calls for)
    due: str | None
    superseded: bool  # a step was logged, before the deal's latest move: it counts as done


def next_step(pipeline: Pipeline, stage: str, events: list[dict]) -> NextStep | None:
    """What a deal needs next, from its events in time order (dicts without None values):
    the latest logged next step while it was logged in the current stage; else, for an open
    deal, what its stage calls for. docs/metrics.md ("pipectl next"); reports/actions.py
    applies the same rule in SQL to every open deal."""
    logged = [e for e in events if e["kind"] == "note" and (
        "next_action" in e or "due" in e or e.get("field") == CLEARS)]
    entered = max((e["at"] for e in events if "to_stage" in e), default="")
    if logged and logged[-1]["at"] >= entered and not cleared(logged[-1]):
        last = logged[-1]
        return NextStep(last.get("next_action") or DUE_ONLY, True, last.get("due"), False)
    if not pipeline.has(stage) or not pipeline.is_open(stage):
        return None
    # a step done (cleared) is not one a move superseded
    return NextStep(pipeline.stage(stage).action, False, None,
                    bool(logged) and not cleared(logged[-1]))
