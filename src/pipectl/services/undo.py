"""Undo (issue 16): void a deal's newest change without rewriting its history.

``plan`` says what an undo would void (a read); ``undo`` voids it in one transaction: the
events it voids stay in the history, marked with the undo that voided them (``store.undo``),
the deal's stored state is what ``domain.projection`` makes of the events left (as ``db check``
computes it: ``services.check.expected``), and the read models follow at the COMMIT
(``store.readmodel.settle``), so every report ignores the voided events. Only a deal's newest
change can be voided (repeat to walk back): what is left is always a history the rules could
have written. A deal's creation is not undone (``pipectl rm`` deletes a deal).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from pipectl.errors import MoveRefused, NotFound

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

Row = dict[str, Any]


class Plan:
    """What an undo voids: the deal, the events of its newest change, and them in words."""

    __slots__ = ("deal", "events", "summary")

    def __init__(self, deal: Row, events: list[Row], summary: str) -> None:
        self.deal, self.events, self.summary = deal, events, summary

    @property
    def deal_id(self) -> int:
        return int(self.deal["id"])

    @property
    def event_ids(self) -> list[int]:
        return [int(e["id"]) for e in self.events]

    def headline(self) -> str:
        return f"Undo on deal {self.deal_id} ({self.deal['name']}): {self.summary}"


class Undone:
    """What an undo did: its plan, the deal's state after it, and the undo's id."""

    __slots__ = ("after", "plan", "undo_id")

    def __init__(self, plan: Plan, after: Row, undo_id: int) -> None:
        self.plan, self.after, self.undo_id = plan, after, undo_id

    def message(self) -> str:
        before, after = self.plan.deal, self.after
        stage = after["stage"]
        where = (f"lost at {after['lost_at_stage']}" if after.get("lost_at_stage")
                 else f"in {stage}")
        again = " again" if (before["stage"], before["pipeline_id"]) != (
            after["stage"], after["pipeline_id"]) else ""
        return f"Undone: {self.plan.summary}; deal {self.plan.deal_id} is {where}{again}"


def _money(minor: Any, currency: Any) -> str:
    if minor is None:
        return "no value"
    from pipectl.values import format_money

    whole, _, frac = format_money(int(minor), str(currency)).partition(".")
    return f"{int(whole):,}" + (f".{frac}" if frac else "") + f" {currency}"


def describe(event: Row, pipeline: Pipeline | None = None) -> str:
    """One event in a few words, as an undo names it (a move forward or back along the deal's
    ``pipeline``: "advance", "move back")."""
    kind = event["kind"]
    get = event.get
    if kind == "stage":
        a, b = get("from_stage"), get("to_stage")
        verb = "move"
        if pipeline is not None and pipeline.has(a) and pipeline.has(b):
            verb = "move back" if pipeline.order(b) < pipeline.order(a) else "advance"
        return f"{verb} {a} -> {b}"
    if kind == "lost":
        why = f" ({get('reason')})" if get("reason") else ""
        return f"lose at {get('from_stage')}{why}"
    if kind == "reopened":
        return f"reopen -> {get('to_stage')}"
    if kind == "pipeline":
        return f"move into pipeline {get('new')} ({get('to_stage')})"
    if kind == "checklist":
        import json

        marks = json.loads(get("checks") or "{}")
        said = ", ".join(f"{k} {'met' if v else 'not met'}" for k, v in marks.items())
        return f"qualify: {said}" if said else "checklist"
    if kind == "value":
        return f"value -> {_money(get('value_minor'), get('currency'))}"
    if kind == "close_date":
        return f"close date -> {get('close_date') or 'none'}"
    if kind == "probability":
        p = get("probability")
        return f"probability -> {'none' if p is None else f'{p}%'}"
    if kind == "edit":
        return f"edit {get('field')}: {get('old') or '-'} -> {get('new') or '-'}"
    if kind == "note":
        text = " ".join(str(get("text") or "").split())
        if len(text) > 40:
            text = text[:39] + "…"
        extra = f", next: {get('next_action')}" if get("next_action") else ""
        extra += f", due {get('due')}" if get("due") else ""
        return f'note "{text}"{extra}'
    return kind


def summary(events: list[Row], pipeline: Pipeline | None = None) -> str:
    """The events of one change in one line, with its moment (UTC)."""
    at = str(events[-1]["at"])
    return "; ".join(describe(e, pipeline) for e in events) + f", {at[:10]} {at[11:16]} UTC"


def _plan(conn: sqlite3.Connection, deal_id: int | None) -> Plan:
    from pipectl.store import deals as deal_store
    from pipectl.store import undo as store

    if deal_id is None:
        newest = store.newest_deal(conn)
        if newest is None:
            raise NotFound("nothing to undo: no deal has a change",
                           hint="pipectl add logs a deal")
        deal_id = newest
    deal = deal_store.get(conn, deal_id)
    events = store.newest_change(conn, deal_id)
    if not events or events[0]["kind"] == "created":
        raise MoveRefused(
            f"nothing to undo on deal {deal_id}: its last change is its creation",
            hint=f"pipectl rm {deal_id} deletes it")
    from pipectl.store import pipelines as pipeline_store

    return Plan(deal, events, summary(events, pipeline_store.of_deal(conn, deal)))


def _still_defined(conn: sqlite3.Connection, deal_id: int, after: Row) -> None:
    """Refuse an undo that would put the deal back in a pipeline removed since, or in a stage
    its pipeline no longer has (a stage dropped by ``pipeline apply``, whose forced move is
    the change undone, or dropped after the deal left it): nothing could move it out again."""
    from pipectl.domain.pipeline import LOST
    from pipectl.store import pipelines as pipeline_store

    pid = int(after["pipeline_id"])
    pipeline = pipeline_store.load(conn, pid)
    hint = "a new change (advance, move, edit) corrects the deal instead"
    if pipeline.name not in pipeline_store.names(conn):  # removed pipelines are not named
        raise MoveRefused(
            f"undo would put deal {deal_id} back in pipeline {pipeline.name!r}, which was "
            "removed; nothing undone", hint=hint)
    if after["stage"] != LOST and not pipeline.has(str(after["stage"])):
        raise MoveRefused(
            f"undo would put deal {deal_id} back in stage {after['stage']!r}, which pipeline "
            f"{pipeline.name!r} no longer has; nothing undone", hint=hint)


def plan(conn: sqlite3.Connection, deal_id: int | None = None) -> Plan:
    """What ``undo`` would void now: the newest change of ``deal_id`` (of any deal: the
    newest command, when None). Refused when it is a creation, or there is nothing."""
    from pipectl.store.db import snapshot

    with snapshot(conn):
        return _plan(conn, deal_id)


def undo(conn: sqlite3.Connection, deal_id: int | None = None,
         expected: list[int] | None = None) -> Undone:
    """Void the newest change of ``deal_id`` (or the newest command) in one transaction.
    ``expected``: the event ids a ``plan`` shown to the user named; if the newest change is
    another by now (someone wrote meanwhile), nothing is undone."""
    from pipectl.services import clock
    from pipectl.services.check import Definitions
    from pipectl.services.check import expected as projected
    from pipectl.store import check as store_check
    from pipectl.store import deals as deal_store
    from pipectl.store import undo as store
    from pipectl.store.db import transaction
    from pipectl.values import iso

    with transaction(conn):
        when = iso(clock.now())
        the_plan = _plan(conn, deal_id)
        if expected is not None and the_plan.event_ids != list(expected):
            raise MoveRefused(
                f"deal {the_plan.deal_id} changed since the undo was shown; nothing undone",
                hint="run pipectl undo again to see its newest change")
        undo_id = store.void(conn, the_plan.deal_id, the_plan.event_ids, when,
                             the_plan.summary)
        before = the_plan.deal
        history = store.history(conn, the_plan.deal_id)
        after = projected(before, history,
                          Definitions(store_check.pipeline_history(conn)))
        _still_defined(conn, the_plan.deal_id, after)
        changes = {k: v for k, v in after.items()
                   if k in before and k not in ("id", "search") and before[k] != v}
        store.restate(conn, the_plan.deal_id, changes)
        # the search text holds the deal's notes: a voided one no longer
        deal_store.refresh_search(conn, [the_plan.deal_id])
    return Undone(the_plan, after, undo_id)
