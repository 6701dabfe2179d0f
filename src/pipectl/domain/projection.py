"""The one projection: a deal's events, oldest first, folded into its current state.

``apply`` is the only code that knows how an event changes a deal. Daily commands append an
event and store what ``apply`` makes of the deal; an import builds a history and stores what
``project`` makes of it; ``pipectl db check`` compares the stored deals with ``project`` of their
events. The SQL that must do the same over millions of rows (a bulk import, a report's as-of
snapshot) is proven equal to this function by property-based tests
(tests/store/test_projection_property.py).

A deal and an event are plain dicts with the column names of the store (``deals`` and
``events``); an event's absent or None fields mean "not said". ``pipelines`` maps a pipeline id
to its definition: a stage's kind and whether it is past the qualification gate come from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipectl.domain.checklist import Checklist, decode
from pipectl.domain.pipeline import LOST, Pipeline

Row = dict[str, Any]
Pipelines = Mapping[int, Pipeline] | Callable[[int], Pipeline]

DEAL_TEXTS = ("name", "company", "contact", "email", "phone", "owner", "source")
DEAL_FIELDS = (
    "id", "ref", *DEAL_TEXTS, "pipeline_id", "stage", "lost_at_stage", "lost_reason",
    "value_minor", "currency", "probability", "close_date", "qualified_at",
    "prequalified_reason", "checklist", "next_action", "next_due", "created_at", "updated_at",
    "closed_at",
)


def blank_deal() -> Row:
    return dict.fromkeys(DEAL_FIELDS)


def _pipeline(pipelines: Pipelines, pipeline_id: int) -> Pipeline:
    return pipelines(pipeline_id) if callable(pipelines) else pipelines[pipeline_id]


def apply(deal: Row, event: Row, pipelines: Pipelines) -> Row:
    """Change ``deal`` (in place, and returned) as ``event`` says."""
    at, kind = event["at"], event["kind"]
    if deal.get("updated_at") is None or at > deal["updated_at"]:
        deal["updated_at"] = at  # its latest event's (a note may be logged at an earlier time)
    get = event.get
    if kind == "created":
        pid = int(event["pipeline_id"])
        pipeline = _pipeline(pipelines, pid)
        to = event["to_stage"]
        deal.update(
            pipeline_id=pid, stage=to, created_at=at, value_minor=get("value_minor"),
            currency=get("currency") or deal.get("currency"),
            close_date=get("close_date"), probability=get("probability"),
            prequalified_reason=get("reason"),
            closed_at=None if pipeline.is_open(to) else at,
            qualified_at=at if (get("reason") or pipeline.is_qualified_stage(to)) else None,
        )
    elif kind in ("stage", "reopened", "pipeline"):
        pid = int(event["pipeline_id"])
        pipeline = _pipeline(pipelines, pid)
        to = event["to_stage"]
        deal["pipeline_id"] = pid
        if kind == "pipeline":
            if deal.get("stage") == LOST:
                deal["lost_at_stage"] = to
            else:
                deal["stage"] = to
        else:
            deal["stage"] = to
        if kind == "reopened":
            deal.update(lost_at_stage=None, lost_reason=None, closed_at=None)
        elif deal["stage"] == LOST:
            pass
        elif to == pipeline.won_key and kind == "stage":
            deal["closed_at"] = at
        elif pipeline.is_open(to):
            deal["closed_at"] = None
        if deal.get("qualified_at") is None and deal["stage"] != LOST \
                and pipeline.is_qualified_stage(to):
            deal["qualified_at"] = at
        if get("reason") and kind in ("stage", "pipeline"):
            deal["prequalified_reason"] = event["reason"]
    elif kind == "lost":
        deal.update(
            stage=LOST, lost_at_stage=event["from_stage"], lost_reason=get("reason"),
            closed_at=at,
        )
    elif kind == "value":
        deal["value_minor"] = get("value_minor")
        deal["currency"] = get("currency") or deal["currency"]
    elif kind == "close_date":
        deal["close_date"] = get("close_date")
    elif kind == "probability":
        deal["probability"] = get("probability")
    elif kind == "checklist":
        # stored in the order of the pipeline's criteria (then any it no longer has)
        marks = {**decode(deal.get("checklist")), **decode(get("checks"))}
        criteria = _pipeline(pipelines, int(deal["pipeline_id"])).checklist
        deal["checklist"] = Checklist.of(criteria, marks).to_json()
    elif kind == "edit":
        deal[event["field"]] = get("new")
    elif kind == "note" and (get("next_action") is not None or get("due") is not None
                             or get("field") == "next_action"):
        # a next step set, or cleared (field "next_action" alone: pipectl done, note --next "")
        deal["next_action"] = get("next_action")
        deal["next_due"] = get("due")
    return deal


def project(events: Iterable[Row], pipelines: Pipelines, deal: Row | None = None) -> Row:
    """A deal's state from its whole history (``deal`` gives the fields events do not carry:
    id, ref, and the texts of its creation)."""
    out = blank_deal() if deal is None else dict(deal)
    for event in events:
        if event.get("voided_by") is None:  # a voided event (undo) changes nothing
            apply(out, event, pipelines)
    return out
