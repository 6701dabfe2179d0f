"""The daily commands' work: add, advance, qualify, lose, reopen, edit, note, move, remove.

Each function is one transaction: the clock is read under the write lock (so "now" is never
earlier than an event another process committed while we waited), the deal and its pipeline
are loaded, the domain rules decide, and the events are appended with the deal's new state as
``domain.projection`` makes it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipectl.domain import projection
from pipectl.domain.checklist import Checklist, decode
from pipectl.domain.pipeline import Pipeline
from pipectl.domain.rules import DealState, Direction, Move
from pipectl.errors import MoveRefused, UsageError
from pipectl.services import clock
from pipectl.store import deals as store
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import transaction
from pipectl.values import iso

if TYPE_CHECKING:  # the request models load with the commands that take them (add, edit)
    from pipectl.models import DealEdit, NewDeal

Row = dict[str, Any]
When = str | datetime | None


class Moved:
    """What a move did, for the caller to tell. (Plain classes here and below: a dataclass
    costs ~0.6 ms to define, on every write command's start-up; docs/performance.md.)"""

    __slots__ = ("deal_id", "move", "pipeline")

    def __init__(self, deal_id: int, move: Move, pipeline: Pipeline) -> None:
        self.deal_id, self.move, self.pipeline = deal_id, move, pipeline


def state_of(conn: sqlite3.Connection, row: Row, pipeline: Pipeline) -> DealState:
    return DealState(
        id=row["id"],
        stage=row["stage"],
        last_event_at=store.last_event_at(conn, row["id"]),
        qualified=row["qualified_at"] is not None,
        prequalified=row["prequalified_reason"] is not None,
        lost_at=row["lost_at_stage"],
        checklist=Checklist.of(pipeline.checklist, decode(row["checklist"])),
    )


def _loaded(conn: sqlite3.Connection, deal_id: int, when: datetime
            ) -> tuple[Row, Pipeline, DealState]:
    """The deal, its pipeline as defined at ``when`` (the moment of the event about to be
    written: a backdated event follows the definition in force then) and its state."""
    row = store.get(conn, deal_id)
    pipeline = pipeline_store.load(conn, int(row["pipeline_id"]), iso(when))
    return row, pipeline, state_of(conn, row, pipeline)


def _record(conn: sqlite3.Connection, row: Row, events: list[Row],
            pipelines: dict[int, Pipeline]) -> list[int]:
    def pipeline(pid: int) -> Pipeline:
        if pid not in pipelines:
            pipelines[pid] = pipeline_store.load(conn, pid)
        return pipelines[pid]

    after = dict(row)
    for event in events:
        projection.apply(after, event, pipeline)
    return store.record(conn, row, after, events)


# ---------------------------------------------------------------- use cases


def add(conn: sqlite3.Connection, new: NewDeal, at: When = None,
        told: list[tuple[str, str]] | None = None) -> tuple[int, Pipeline, str]:
    """A new deal and its 'created' event. Returns its id, its pipeline and its stage.
    ``told``: where to add what the caller should tell (("note", text), ("warning", text)):
    an owner new but close to one there is; an open deal of the same name and company."""
    from pipectl.domain import rules
    from pipectl.services import names

    with transaction(conn):
        when = clock.moment(at)
        pipeline = pipeline_store.by_name(conn, new.pipeline, iso(when))
        stage = pipeline.parse_stage(new.stage) if new.stage else pipeline.first
        qualified = rules.plan_create(pipeline, stage, new.prequalified)
        if new.ref is not None and store.ref_exists(conn, new.ref):
            raise MoveRefused(f"a deal with ref {new.ref!r} exists already")
        stamp = iso(when)
        created = {
            "at": stamp, "kind": "created", "pipeline_id": pipeline.id, "to_stage": stage,
            "value_minor": new.value_minor, "currency": new.currency,
            "close_date": new.close_date.isoformat() if new.close_date else None,
            "probability": new.probability, "reason": new.prequalified,
        }
        events = [created]
        if new.note:
            events.append({"at": stamp, "kind": "note", "text": new.note})
        deal = projection.blank_deal()
        from pipectl.models import TEXT_FIELDS

        deal.update({k: getattr(new, k) for k in TEXT_FIELDS}, ref=new.ref,
                    currency=new.currency)
        for event in events:
            projection.apply(deal, event, {pipeline.id: pipeline})  # type: ignore[dict-item]
        assert (deal["qualified_at"] is not None) == qualified
        owner_note = names.new_owner_note(conn, new.owner) if told is not None else None
        deal_id = store.insert_deal(conn, deal, events)
        if told is not None:
            _tell(told, "note", owner_note)
            _tell(told, "warning", names.duplicate_warning(conn, new.name, new.company, deal_id))
    return deal_id, pipeline, stage


def _tell(told: list[tuple[str, str]], kind: str, text: str | None) -> None:
    if text is not None:
        told.append((kind, text))


def _move_event(move: Move, pipeline: Pipeline, stamp: str, note: str | None) -> Row:
    kind = {Direction.LOST: "lost", Direction.REOPEN: "reopened",
            Direction.PIPELINE: "pipeline"}.get(move.direction, "stage")
    return {
        "at": stamp, "kind": kind, "pipeline_id": pipeline.id, "from_stage": move.from_stage,
        "to_stage": move.to_stage, "reason": move.reason or move.prequalified, "text": note,
    }


def advance(
    conn: sqlite3.Connection,
    deal_id: int,
    to: str | None = None,
    prequalified: str | None = None,
    note: str | None = None,
    at: When = None,
) -> Moved:
    """One stage forward, or to ``to`` (a stage name of the deal's pipeline) where the rules
    allow."""
    from pipectl.domain import rules

    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        target = pipeline.parse_stage(to) if to is not None else None
        move = rules.plan_advance(pipeline, state, when, target, prequalified)
        _record(conn, row, [_move_event(move, pipeline, iso(when), note)],
                {pipeline.id: pipeline})  # type: ignore[dict-item]
    return Moved(deal_id, move, pipeline)


def lose(conn: sqlite3.Connection, deal_id: int, reason: str, at: When = None,
         told: list[tuple[str, str]] | None = None) -> Moved:
    """Close as lost. ``told`` (see ``add``): a reason new but close to one there is."""
    from pipectl.domain import rules

    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        move = rules.plan_lose(pipeline, state, when, reason)
        if told is not None:
            from pipectl.services.names import new_reason_note

            _tell(told, "note", new_reason_note(conn, reason))
        _record(conn, row, [_move_event(move, pipeline, iso(when), None)],
                {pipeline.id: pipeline})  # type: ignore[dict-item]
    return Moved(deal_id, move, pipeline)


def reopen(conn: sqlite3.Connection, deal_id: int, at: When = None, stage: str | None = None
           ) -> Moved:
    """Back to the stage it was lost at (to ``stage`` only when that one is gone)."""
    from pipectl.domain import rules

    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        to = pipeline.parse_stage(stage) if stage is not None else None
        move = rules.plan_reopen(pipeline, state, when, to)
        _record(conn, row, [_move_event(move, pipeline, iso(when), None)],
                {pipeline.id: pipeline})  # type: ignore[dict-item]
    return Moved(deal_id, move, pipeline)


def move_to(
    conn: sqlite3.Connection, deal_id: int, pipeline_name: str, stage: str | None = None,
    note: str | None = None, at: When = None, prequalified: str | None = None,
) -> Moved:
    """Into another pipeline, as an event: the deal's history stays where it happened."""
    from pipectl.domain import rules

    with transaction(conn):
        when = clock.moment(at)
        row, source, state = _loaded(conn, deal_id, when)
        target = pipeline_store.by_name(conn, pipeline_name, iso(when))
        key = target.parse_stage(stage) if stage is not None else None
        move = rules.plan_switch(source, target, state, when, key, prequalified)
        event = _move_event(move, target, iso(when), note)
        event["old"] = source.name
        event["new"] = target.name
        _record(conn, row, [event], {source.id: source, target.id: target})  # type: ignore[dict-item]
    return Moved(deal_id, move, target)


class Qualified:
    """The checklist after a qualify, what changed in it, and the deal's pipeline."""

    __slots__ = ("changed", "checklist", "pipeline")

    def __init__(self, checklist: Checklist, changed: dict[str, bool | None],
                 pipeline: Pipeline) -> None:
        self.checklist, self.changed, self.pipeline = checklist, changed, pipeline


def qualify(
    conn: sqlite3.Connection, deal_id: int, changes: dict[str, bool], note: str | None = None,
    at: When = None,
) -> Qualified:
    """Record checklist marks (criteria of the deal's pipeline, met or not met).

    Once assessed a criterion is never "unknown" again.
    """
    from pipectl.domain import rules
    from pipectl.domain.checklist import encode

    if any(not isinstance(v, bool) for v in changes.values()):
        raise UsageError("a checklist criterion is recorded as met or not met")
    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        unknown = [c for c in changes if c not in pipeline.checklist]
        if unknown:
            known = ", ".join(pipeline.checklist) or "none"
            raise UsageError(
                f"pipeline {pipeline.name!r} has no criterion {unknown[0]!r}",
                hint=f"its checklist: {known}",
            )
        rules.check_time(state, when)
        after = state.checklist.apply(changes)
        changed = state.checklist.diff(after)
        stamp = iso(when)
        if changed:
            event = {"at": stamp, "kind": "checklist", "text": note,
                     "checks": encode(changed)}
            _record(conn, row, [event], {pipeline.id: pipeline})  # type: ignore[dict-item]
        elif note:
            _record(conn, row, [{"at": stamp, "kind": "note", "text": note}],
                    {pipeline.id: pipeline})  # type: ignore[dict-item]
    return Qualified(after, changed, pipeline)


def edit(conn: sqlite3.Connection, deal_id: int, change: DealEdit, at: When = None,
         told: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply an edit; value, close-date and probability changes are their own events.

    Returns the names of the fields that changed (empty when nothing did). ``told`` (see
    ``add``): a new owner close to one there is.
    """
    from pipectl.domain import rules
    from pipectl.models import TEXT_FIELDS

    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        rules.check_time(state, when)
        stamp = iso(when)
        events: list[Row] = []
        changed: list[str] = []
        for field, new in change.texts.items():
            if field not in TEXT_FIELDS:
                raise UsageError(f"{field} cannot be edited")
            if field == "name" and not new:
                raise UsageError("name may not be empty")
            if new != row[field]:
                events.append({"at": stamp, "kind": "edit", "field": field, "old": row[field],
                               "new": new})
                changed.append(field)
        value, currency = row["value_minor"], row["currency"]
        if change.clear_value:
            value = None
        elif change.value_minor is not None:
            value = change.value_minor
        if change.currency:
            currency = change.currency
        if (value, currency) != (row["value_minor"], row["currency"]):
            events.append({"at": stamp, "kind": "value", "value_minor": value,
                           "currency": currency})
            if value != row["value_minor"]:
                changed.append("value_minor")
            if currency != row["currency"]:
                changed.append("currency")
        if change.clear_close or change.close_date:
            close = None if change.clear_close else change.close_date.isoformat()  # type: ignore[union-attr]
            if close != row["close_date"]:
                events.append({"at": stamp, "kind": "close_date", "close_date": close})
                changed.append("close_date")
        if change.clear_probability or change.probability is not None:
            prob = None if change.clear_probability else change.probability
            if prob != row["probability"]:
                events.append({"at": stamp, "kind": "probability", "probability": prob})
                changed.append("probability")
        if told is not None and "owner" in changed:
            from pipectl.services.names import new_owner_note

            _tell(told, "note", new_owner_note(conn, change.texts["owner"], row))
        if events:
            _record(conn, row, events, {pipeline.id: pipeline})  # type: ignore[dict-item]
    return changed


def note(
    conn: sqlite3.Connection,
    deal_id: int,
    text: str,
    next_action: str | None = None,
    due: str | None = None,
    at: When = None,
    clear_next: bool = False,
) -> int:
    """A note on a deal; with ``next_action`` (and ``due``, an ISO date, not before the note's
    day) the next step; ``due`` alone moves the due date of the deal's logged step;
    ``clear_next`` clears the step (note --next "", done)."""
    from pipectl.domain import rules

    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, state = _loaded(conn, deal_id, when)
        event = {"at": iso(when), "kind": "note", "text": text, "next_action": next_action,
                 "due": due}
        event.update(_next_fields(conn, row, pipeline, when, next_action, due, clear_next))
        # a note that changes no state may be logged at an earlier time (issue 16)
        rules.check_note_time(state, row["created_at"], when, changes_state=any(
            event.get(k) is not None for k in ("next_action", "due", "field")))
        (event_id,) = _record(conn, row, [event], {pipeline.id: pipeline})  # type: ignore[dict-item]
    return event_id


def logged_step(conn: sqlite3.Connection, row: Row, pipeline: Pipeline) -> str | None:
    """The deal's logged next step while it holds (domain.next_step), else None."""
    from pipectl.domain.next_step import next_step

    step = next_step(pipeline, row["stage"], [  # (a voided event, undo, says nothing)
        e for e in store.events(conn, int(row["id"])) if e.get("voided_by") is None])
    return step.action if step is not None and step.logged else None


def _next_fields(conn: sqlite3.Connection, row: Row, pipeline: Pipeline, when: datetime,
                 next_action: str | None, due: str | None, clear: bool) -> Row:
    """What a note says of the next step, checked: a due day not before the note's day; a due
    alone keeps the logged step's action (and needs one); a clear names the step it clears."""
    if clear:
        if next_action is not None or due is not None:
            raise UsageError('--next "" clears the next step: it takes no --due')
        return {"field": "next_action", "old": logged_step(conn, row, pipeline)}
    if due is None:
        return {}
    current = logged_step(conn, row, pipeline) if next_action is None else None
    if next_action is None and current is None:
        raise UsageError(f"--due needs --next: deal {row['id']} has no next step logged to "
                         "move the due date of",
                         hint=f'pipectl note {row["id"]} "..." --next "what is due" --due ...')
    today = clock.day(when)
    if due < today.isoformat():
        raise UsageError(
            f"--due {due} is in the past (the note's day is {today})",
            hint="give a day from then on (today, tomorrow, friday, +3d, a date); "
            "a step already done: pipectl done ID")
    return {} if current is None else {"next_action": current}


def done(
    conn: sqlite3.Connection,
    deal_id: int,
    text: str | None = None,
    next_action: str | None = None,
    due: str | None = None,
    at: When = None,
) -> tuple[str, int]:
    """Complete the deal's logged next step: a note "done: STEP" (then ``text`` on the lines
    after) that clears it, or sets the step after it (``next_action``, ``due``). Refused
    (MoveRefused) when no logged step holds. Returns the step done and the note's id."""
    if due is not None and next_action is None:
        raise UsageError("done --due needs --next: the due date of the step after this one")
    with transaction(conn):
        when = clock.moment(at)
        row, pipeline, _ = _loaded(conn, deal_id, when)
        step = logged_step(conn, row, pipeline)
        if step is None:
            stage = pipeline.stage(row["stage"]) if pipeline.has(row["stage"]) else None
            if stage is not None and pipeline.is_open(row["stage"]):
                hint = (f"what {stage.label} calls for ({stage.action}) is done by moving the "
                        f"deal: pipectl advance {deal_id}; log a step with pipectl note "
                        f'{deal_id} "..." --next "..."')
            else:
                hint = f'log what happened with pipectl note {deal_id} "..."'
            raise MoveRefused(f"deal {deal_id} has no next step logged to mark done", hint=hint)
        body = f"done: {step}" + (f"\n{text}" if text else "")
        event_id = note(conn, deal_id, body, next_action, due, when,
                        clear_next=next_action is None)
    return step, event_id


def remove(conn: sqlite3.Connection, deal_id: int) -> Row:
    """Delete a deal and its history for good (the only way an event disappears)."""
    with transaction(conn):
        row = store.get(conn, deal_id)
        store.remove(conn, deal_id)
    return row


def get(conn: sqlite3.Connection, deal_id: int) -> tuple[Row, list[Row], Pipeline]:
    """A deal, its events oldest first, and its pipeline (one read transaction)."""
    from pipectl.store.db import snapshot

    with snapshot(conn):
        row = store.get(conn, deal_id)
        return row, store.events(conn, deal_id), pipeline_store.of_deal(conn, row)
