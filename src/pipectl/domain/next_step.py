"""What a deal needs next: the step a salesperson logged (pipectl note --next), while it still
holds, else what its stage calls for. ``pipectl show`` and ``pipectl next`` read it; the SQL of
``reports/actions.py`` applies the same rule to every open deal."""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.domain.pipeline import Pipeline

DUE_ONLY = "Do what is due"  # the action of a next step logged with a due date alone


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
    logged = [e for e in events if e["kind"] == "note" and ("next_action" in e or "due" in e)]
    entered = max((e["at"] for e in events if "to_stage" in e), default="")
    if logged and logged[-1]["at"] >= entered:
        last = logged[-1]
        return NextStep(last.get("next_action") or DUE_ONLY, True, last.get("due"), False)
    if not pipeline.has(stage) or not pipeline.is_open(stage):
        return None
    return NextStep(pipeline.stage(stage).action, False, None, bool(logged))
