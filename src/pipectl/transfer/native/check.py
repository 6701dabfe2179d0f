"""Checking a deal of pipectl's export: its shape (pydantic models of formats 1 and 2), its
times, the pipelines it names, and that its events make a history pipectl could have written
whose projection (``domain.projection``) is the deal as the file gives it.

A bad deal is reported (row, field, reason) and written nowhere; a pipeline the database lacks
is created from the file's definition of it, and without one (or with a bad one) is an error
for the whole file (``MissingPipeline``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pipectl.domain import projection
from pipectl.domain.checklist import decode, encode
from pipectl.domain.pipeline import LOST, Pipeline, in_force
from pipectl.errors import UsageError
from pipectl.transfer.common import Summary
from pipectl.transfer.formats import V1_CRITERIA
from pipectl.transfer.history import DEAL_TEXTS, MOVES, UNKNOWN, UNKNOWN_FACTS
from pipectl.transfer.rows import error_place, pydantic_reason
from pipectl.values import (
    DATE_RANGE,
    FUTURE_SLACK,
    clean_text,
    format_money,
    from_iso,
    in_range,
    parse_money,
)

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
DAY = r"^\d{4}-\d{2}-\d{2}$"


def _clean(value: str | None, multiline: bool) -> str | None:
    """A text of the file as pipectl stores texts (what the CSV import and the commands do):
    NFC, no surrounding space; a control character is refused."""
    if value is None:
        return None
    try:
        return clean_text(value, "it", multiline=multiline) or None
    except UsageError as exc:
        raise ValueError(exc.message) from None


Text = Annotated[str | None, AfterValidator(lambda v: _clean(v, multiline=False))]
LongText = Annotated[str | None, AfterValidator(lambda v: _clean(v, multiline=True))]  # a note


def _name(value: str) -> str:
    cleaned = _clean(value, multiline=False)
    if not cleaned:
        raise ValueError("a deal needs a name")
    return cleaned


Name = Annotated[str, AfterValidator(_name)]
# an id is a whole number JSON readers hold exactly (2**53), far below SQLite's limit, so the
# next new deal's id (the largest + 1) always fits
DbId = Annotated[int | None, Field(default=None, ge=1, le=2**53)]
Kinds = Literal["created", "stage", "lost", "reopened", "pipeline", "checklist", "value",
                "close_date", "probability", "edit", "note"]
Marks = dict[str, bool] | None  # a checklist: criterion -> met


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DbId = None
    at: str = Field(pattern=ISO)
    kind: Kinds
    from_stage: str | None = None
    to_stage: str | None = None
    value: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    close_date: str | None = Field(default=None, pattern=DAY)
    probability: int | None = Field(default=None, ge=0, le=100)
    reason: Text = None
    text: LongText = None
    next_action: Text = None
    due: str | None = Field(default=None, pattern=DAY)
    field: Text = None
    old: Text = None
    new: Text = None


class EventV1(_Event):
    location: bool | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None


class EventV2(_Event):
    pipeline: Text = None  # on move events: the pipeline it happened in
    checklist: Marks = None  # on checklist events: the criteria it changed


class _Deal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DbId = None
    ref: Text = None
    name: Name
    company: Text = None
    contact: Text = None
    email: Text = None
    phone: Text = None
    owner: Text = None
    source: Text = None
    stage: str
    lost_at_stage: str | None = None
    lost_reason: Text = None
    value: str | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    probability: int | None = Field(default=None, ge=0, le=100)
    close_date: str | None = Field(default=None, pattern=DAY)
    qualified_at: str | None = Field(default=None, pattern=ISO)
    prequalified_reason: Text = None
    next_action: Text = None
    next_due: str | None = Field(default=None, pattern=DAY)
    created_at: str = Field(pattern=ISO)
    updated_at: str = Field(pattern=ISO)
    closed_at: str | None = Field(default=None, pattern=ISO)


class DealV1(_Deal):
    location: bool | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    events: list[EventV1] | None = None


class DealV2(_Deal):
    pipeline: Text = None  # None: the import's target pipeline
    checklist: Marks = None
    events: list[EventV2] | None = None


NativeDeal = DealV1 | DealV2
NativeEvent = EventV1 | EventV2


class MissingPipeline(UsageError):
    """The file names a pipeline the database lacks and does not define it (or defines it
    wrong): the whole file is refused."""


Definitions = Callable[[str], Pipeline | None]  # a pipeline as the file defines it, if it does
# every version of a pipeline the file carries, oldest first, with its moment ([]: none)
Histories = Callable[[str], list[tuple[str, Pipeline]]]


class Pipelines:
    """The pipelines a file's deals go into: by name (format 2) or the target (format 1, or a
    deal that names none), with their definitions.

    A pipeline a deal names that the database lacks is created from the file's own definition
    of it (``definitions``: the JSON export carries them), at ``at``, in the import's
    transaction, and told in ``made``; without one the whole file is refused.
    """

    def __init__(self, conn: Any, target: Pipeline, version: int, path: Any,
                 created: bool = False, definitions: Definitions | None = None,
                 at: str = "", histories: Histories | None = None) -> None:
        from pipectl.store import pipelines as store

        self._store, self.conn, self.target = store, conn, target
        self.version, self.path = version, path
        # the target was made from the file's stage names: it has no gate, whatever the one
        # the deals were exported from had, so when they qualified follows from their events
        self.created = target.id if created else None
        assert target.id is not None
        self._by_id: dict[int, Pipeline] = {target.id: target}
        self._ids: dict[str, int] = {}
        self.definitions, self.at, self.histories = definitions, at, histories
        self.made: list[str] = []  # the pipelines created from the file's definitions
        self._versions: dict[int, list[tuple[str, Pipeline]]] = {}

    def id_of(self, name: str | None) -> int:
        assert self.target.id is not None
        if self.version == 1 or name is None:
            return self.target.id
        if name not in self._ids:
            found = self._store.find_id(self.conn, name)
            if found is None:
                found = self._create(name)
            self._ids[name] = found
        return self._ids[name]

    def _create(self, name: str) -> int:
        from pipectl.store import transfer as store

        removed = store.removed_pipeline_id(self.conn, name)
        if removed is not None:  # its deals' history names it: the same pipeline
            return removed
        try:
            made = self.definitions(name) if self.definitions is not None else None
        except UsageError as exc:  # a bad definition: a bad file
            raise MissingPipeline(exc.message, hint=exc.hint) from None
        if made is None:
            raise MissingPipeline(
                f"{self.path}: its deals are in pipeline {name!r}, which this database "
                "does not have; nothing was imported",
                hint=f"create it (pipectl pipeline apply FILE), or import with "
                f"--create-pipeline {name!r}",
            )
        history = self.histories(name) if self.histories is not None else []
        if history and history[-1][1] == made:  # every version, in force from its moment
            (first_at, first), *later = history
            pid = self._store.create(self.conn, first, first_at)
            for at, version in later:
                self._store.add_version(self.conn, pid, version, at)
        else:
            pid = self._store.create(self.conn, made, self.at)
        self.made.append(made.name)
        return pid

    def forget_made(self) -> None:
        """The pipelines made in an attempt that was rolled back are gone: made again if
        needed."""
        if self.made:
            self.made.clear()
            self._ids.clear()
            self._by_id = {k: v for k, v in self._by_id.items() if k == self.target.id}
            self._versions.clear()

    def __call__(self, pipeline_id: int) -> Pipeline:
        if pipeline_id not in self._by_id:
            self._by_id[pipeline_id] = self._store.load(self.conn, pipeline_id)
        return self._by_id[pipeline_id]

    def in_force(self, pipeline_id: int, at: str) -> Pipeline:
        """The definition in force at ``at``: an event of the history is checked, and
        projected, as the pipeline stood when it happened (a stage a later version dropped
        was a stage then)."""
        if pipeline_id not in self._versions:
            self._versions[pipeline_id] = [
                (since, self._store.load_version(self.conn, pipeline_id, v))
                for v, since in self._store.versions(self.conn, pipeline_id)
            ]
        versions = self._versions[pipeline_id]
        if len(versions) == 1:
            return self(pipeline_id)
        return in_force(versions, at)


@dataclass
class Checked:
    """A deal of the file that passed every check, with its row and its events' rows (sorted
    as they are stored) in the store's columns."""

    number: int  # its row in the report
    deal: NativeDeal
    row: dict[str, Any]
    events: list[dict[str, Any]]
    pipeline: Pipeline


def _minor(text: str | None, currency: str | None) -> int | None:
    if text is None:
        return None
    return parse_money(text, currency or "USD")


def v1_marks(obj: Any) -> dict[str, bool]:
    """Format 1's four checklist columns as a checklist."""
    return {c: getattr(obj, c) for c in V1_CRITERIA if getattr(obj, c) is not None}


def _deal_row(d: NativeDeal, pipeline_id: int) -> dict[str, Any]:
    row = d.model_dump(exclude={"events", "value", "pipeline", "checklist", *V1_CRITERIA})
    row["value_minor"] = _minor(d.value, d.currency)
    row["pipeline_id"] = pipeline_id
    marks = v1_marks(d) if isinstance(d, DealV1) else d.checklist or {}
    row["checklist"] = encode(marks)
    return row


def _event_row(e: NativeEvent, pipeline_id: Callable[[str | None], int]) -> dict[str, Any]:
    dumped = e.model_dump(exclude={"value", "pipeline", "checklist", *V1_CRITERIA})
    row = {k: v for k, v in dumped.items() if v is not None}
    marks = v1_marks(e) if isinstance(e, EventV1) else e.checklist or {}
    if marks:
        row["checks"] = encode(marks)
    if e.kind in MOVES:
        row["pipeline_id"] = pipeline_id(e.pipeline if isinstance(e, EventV2) else None)
    if e.value is not None:
        row["value_minor"] = _minor(e.value, e.currency)
    return row


def as_import_row(number: int, d: NativeDeal) -> Any:
    """A native deal's current state as an ImportRow (for a deal without events, or one the
    database has)."""
    from pipectl.transfer.rows import ImportRow

    def moment(text: str | None) -> datetime | None:
        return from_iso(text) if text else None

    return ImportRow(
        row=number, ref=d.ref, name=d.name, company=d.company, contact=d.contact,
        email=d.email, phone=d.phone, owner=d.owner, source=d.source,
        value_minor=_minor(d.value, d.currency), currency=d.currency,
        probability=d.probability, stage=d.stage, their_stage=d.stage,
        before_close=d.lost_at_stage, created_at=moment(d.created_at),
        closed_at=moment(d.closed_at), updated_at=moment(d.updated_at),
        close_date=date.fromisoformat(d.close_date) if d.close_date else None,
        lost_reason=d.lost_reason, prequalified=d.prequalified_reason,
    )


# ---------------------------------------------------------------- times

_MOMENTS = ("created_at", "updated_at", "closed_at", "qualified_at")
_DAYS = ("close_date", "next_due")


def _times(d: NativeDeal, now: datetime) -> list[tuple[str, str]]:
    """The deal's and its events' times: real moments (days), none of them in the future.
    [(where, what is wrong), ...]"""
    latest = now + FUTURE_SLACK
    out: list[tuple[str, str]] = []

    def moment(where: str, text: str | None) -> None:
        if text is None:
            return
        try:
            when = from_iso(text)
        except ValueError as exc:
            out.append((where, str(exc) if "out of range" in str(exc)
                        else f"{text!r} is not a real moment"))
            return
        if when > latest:
            out.append((where, f"{text} is in the future"))

    def day(where: str, text: str | None) -> None:
        if text is None:
            return
        try:
            if not in_range(date.fromisoformat(text)):
                out.append((where, f"{text!r} is out of range: {DATE_RANGE}"))
        except ValueError:
            out.append((where, f"{text!r} is not a real date"))

    for f in _MOMENTS:
        moment(f, getattr(d, f))
    for f in _DAYS:
        day(f, getattr(d, f))
    for i, e in enumerate(d.events or ()):
        moment(f"events.{i}.at", e.at)
        day(f"events.{i}.close_date", e.close_date)
        day(f"events.{i}.due", e.due)
    return out


# ---------------------------------------------------------------- the stages of a deal alone


def _stages(d: NativeDeal, p: Pipeline) -> list[tuple[str, str]]:
    """A deal without events: its stages are its pipeline's (its history is made from them)."""
    out: list[tuple[str, str]] = []
    if not p.has(d.stage):
        out.append(("stage", f"{d.stage!r} is not a stage of pipeline {p.name!r}"))
    if d.lost_at_stage is not None and not (p.has(d.lost_at_stage)
                                            and p.is_open(d.lost_at_stage)):
        out.append(("lost_at_stage",
                    f"{d.lost_at_stage!r} is not an open stage of pipeline {p.name!r}"))
    return out


# ---------------------------------------------------------------- the history

# the deal's fields that its events make (the texts start from what the first edit of each
# found, or the deal's own when never edited)
_PROJECTED = ("pipeline_id", "stage", "lost_at_stage", "lost_reason", "value_minor", "currency",
              "probability", "close_date", "qualified_at", "prequalified_reason", "checklist",
              "next_action", "next_due", "created_at", "updated_at", "closed_at", *DEAL_TEXTS)

# the fields each kind of event carries (beyond id, at, kind), as pipectl's commands and its
# import write them: (required, also allowed); format 2's names ("pipeline", "checklist")
# The text of a created or value event: an import's note of the amount its file wrote, when
# it was rounded ("amount in file: 9225.225 USD, rounded to 9225.22").
_STAGES = ("from_stage", "to_stage")
_EVENT_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "created": ({"to_stage", "currency", "pipeline"},
                {"value", "close_date", "probability", "reason", "field", "new", "text"}),
    "stage": ({*_STAGES, "pipeline"}, {"reason", "text"}),
    "lost": ({*_STAGES, "reason", "pipeline"}, {"text"}),
    "reopened": ({*_STAGES, "pipeline"}, {"reason", "text"}),
    "pipeline": ({*_STAGES, "pipeline"}, {"reason", "text", "old", "new"}),
    "checklist": (set(), {"checklist", "text"}),
    "note": ({"text"}, {"next_action", "due", "field", "old"}),  # field: a step cleared
    "value": ({"currency"}, {"value", "text"}),
    "close_date": (set(), {"close_date"}),
    "probability": (set(), {"probability"}),
    "edit": ({"field"}, {"old", "new"}),
}


def _v1(fields: set[str]) -> set[str]:
    """Format 1's names: no pipeline, four checklist columns."""
    out = fields - {"pipeline", "checklist"}
    return out | set(V1_CRITERIA) if "checklist" in fields else out


_FIELDS = {
    2: _EVENT_FIELDS,
    1: {k: (_v1(need), _v1(may)) for k, (need, may) in _EVENT_FIELDS.items()},
}
_CARRIED = {v: sorted({f for need, may in fs.values() for f in need | may})
            for v, fs in _FIELDS.items()}


def _shape(e: NativeEvent) -> list[tuple[str, str]]:
    """[(field, what is wrong)] when the event carries a field its kind never has, or lacks
    one it always has."""
    version = 1 if isinstance(e, EventV1) else 2
    need, may = _FIELDS[version][e.kind]
    given = {f for f in _CARRIED[version] if getattr(e, f) is not None}
    out = [(f, f"a {e.kind!r} event has no {f}") for f in sorted(given - need - may)]
    out += [(f, f"a {e.kind!r} event needs its {f}") for f in sorted(need - given)]
    return out


def _move(e: dict[str, Any], deal: dict[str, Any], pipelines: Pipelines
          ) -> tuple[str, str] | None:
    """What is wrong with a move (an event that carries a stage), given the deal before it."""
    kind, to, src = e["kind"], e.get("to_stage"), e.get("from_stage")
    p = pipelines.in_force(e["pipeline_id"], e["at"])
    if to is None:
        return "to_stage", f"a {kind!r} event needs its stage"
    if not p.has(to):
        return "to_stage", f"{to!r} is not a stage of pipeline {p.name!r}"
    if kind == "created":
        return ("to_stage", f"a 'created' event cannot go to {to!r}") if to == LOST else None
    if src != deal["stage"]:
        return "from_stage", f"{src!r} is not the stage the deal was in ({deal['stage']!r})"
    here = pipelines.in_force(deal["pipeline_id"], e["at"])
    if kind == "pipeline":
        if e["pipeline_id"] == deal["pipeline_id"]:
            return "pipeline", f"the deal is in pipeline {p.name!r} already"
        if to == LOST:
            return "to_stage", "a 'pipeline' event cannot go to 'lost'"
        if src == LOST and not p.is_open(to):
            return "to_stage", f"a lost deal lands on an open stage, not {to!r}"
        if src != LOST and here.is_won(src) != p.is_won(to):
            return "to_stage", f"a deal moved from {src!r} cannot land on {to!r}"
        return None
    if e["pipeline_id"] != deal["pipeline_id"]:
        return "pipeline", (f"a {kind!r} event happens in the deal's pipeline "
                            f"({here.name!r}), not in {p.name!r}")
    if kind == "lost" and not here.is_open(src):
        return "from_stage", f"a deal is lost from an open stage, not {src!r}"
    if (kind == "lost") != (to == LOST):
        return "to_stage", f"a {kind!r} event cannot go to {to!r}"
    if (kind == "reopened") != (src == LOST):
        return "kind", (f"a deal leaves {LOST!r} by a 'reopened' event (this one is "
                        f"{kind!r}, from {src!r})")
    return None


def _history(d: NativeDeal, row: dict[str, Any], evs: list[dict[str, Any]],
             pipelines: Pipelines) -> list[tuple[str, str]]:
    """The events, in the order they are stored (time, then id: the file may list them in
    any order), make a history pipectl could have written, and the deal's fields are what they
    make of it; else [(where, what is wrong), ...] (where: the event as the file numbers it)."""
    index = {id(e): i for i, e in enumerate(evs)}
    out = [(f"events.{i}.{f}", why) for i, e in enumerate(d.events or ()) for f, why in _shape(e)]
    if out:
        return out
    deal = projection.blank_deal()
    for f in DEAL_TEXTS:  # each text as it was before its first edit
        first = next((e for e in evs if e["kind"] == "edit" and e.get("field") == f), None)
        deal[f] = first.get("old") if first is not None else row[f]
    for n, e in enumerate(evs):
        where = f"events.{index[id(e)]}"
        kind = e["kind"]
        if (kind == "created") != (n == 0):
            out.append((f"{where}.kind", "a deal's first event, and only that one, is "
                        f"'created' (this one is {kind!r})"))
            break
        if kind in MOVES:
            wrong = _move(e, deal, pipelines)
            if wrong is not None:
                out.append((f"{where}.{wrong[0]}", wrong[1]))
                break
        if kind == "created" and (e.get("field") is not None or e.get("new") is not None):
            # what the deal's first file left unknown (transfer.history.mark_unknown)
            facts = (e.get("new") or "").split()
            if e.get("field") != UNKNOWN or not facts or any(
                    f not in UNKNOWN_FACTS for f in facts):
                out.append((f"{where}.field", "a 'created' event's field is 'unknown', with "
                            f"new naming some of: {' '.join(UNKNOWN_FACTS)}"))
                break
        if kind == "note" and e.get("field") not in (None, "next_action"):
            out.append((f"{where}.field", "a 'note' event's field is 'next_action' (the next "
                        "step it clears) or none"))
            break
        if kind == "edit":
            fld = e.get("field")
            if fld not in DEAL_TEXTS:
                out.append((f"{where}.field", f"{fld!r} is not a text field of a deal"))
                break
            if e.get("old") != deal[fld]:
                out.append((f"{where}.old", f"{e.get('old')!r} is not the deal's {fld} "
                            f"then ({deal[fld]!r})"))
                break
            if fld == "name" and not e.get("new"):
                out.append((f"{where}.new", "a deal's name may not be empty"))
                break
        projection.apply(deal, e, lambda pid, at=e["at"]: pipelines.in_force(pid, at))
    if out:
        return out
    return _agrees(d, row, deal, pipelines)


def _agrees(d: NativeDeal, row: dict[str, Any], made_deal: dict[str, Any],
            pipelines: Pipelines) -> list[tuple[str, str]]:
    """[(field, what is wrong)] for each field of the deal that is not what its events make."""
    out: list[tuple[str, str]] = []
    if pipelines.created is not None and row["pipeline_id"] == pipelines.created:
        row["qualified_at"] = made_deal["qualified_at"]

    def wrong(f: str, given: Any, made: Any) -> None:
        out.append((f, f"{given!r} is not what its events make of it ({made!r}); a "
                    "deal's fields follow from its events"))

    for f in _PROJECTED:
        given, made = row[f], made_deal[f]
        if f == "value_minor":  # as written: the same digits in another currency are told
            made = None if made is None else format_money(made, made_deal["currency"]
                                                          or d.currency)
            if d.value != made:
                wrong("value", d.value, made)
        elif f == "pipeline_id":
            if given != made:
                wrong("pipeline", pipelines(given).name, made and pipelines(made).name)
        elif f == "checklist":
            given_marks, made_marks = decode(given), decode(made)
            if isinstance(d, DealV1):
                for c in V1_CRITERIA:
                    if given_marks.get(c) != made_marks.get(c):
                        wrong(c, given_marks.get(c), made_marks.get(c))
            elif given_marks != made_marks:
                wrong("checklist", given_marks or None, made_marks or None)
        elif given != made:
            wrong(f, given, made)
    return out


def ids_in_time_order(evs: list[dict[str, Any]]) -> bool:
    """Reports read a deal's history in id order: kept ids must follow the times."""
    ids = [e.get("id") for e in evs]
    return all(a is not None and b is not None and a < b for a, b in pairwise(ids))


# ---------------------------------------------------------------- one deal


def check(number: int, raw: Any, summary: Summary, now: datetime, pipelines: Pipelines
          ) -> Checked | None:
    """A deal of the file validated, with its row and event rows; None if bad (reported).
    Raises MissingPipeline when it names a pipeline the database lacks."""
    model = DealV1 if pipelines.version == 1 else DealV2
    try:
        deal = model.model_validate(raw)
        pid = pipelines.id_of(deal.pipeline if isinstance(deal, DealV2) else None)
        row = _deal_row(deal, pid)
        evs = [_event_row(e, pipelines.id_of) for e in deal.events or ()]
        problems = _times(deal, now)
        if not problems and evs:
            evs = sorted(evs, key=lambda e: (e["at"], e.get("id") or 0))
            problems = _history(deal, row, evs, pipelines)
        elif not problems:
            problems = _stages(deal, pipelines(pid))
        if not problems:
            return Checked(number, deal, row, evs, pipelines(pid))
        summary.bad(number, problems)
    except ValidationError as exc:
        summary.bad(number, [(error_place(err["loc"]), pydantic_reason(err))
                             for err in exc.errors()])
    except MissingPipeline:
        raise
    except UsageError as exc:
        summary.bad(number, [("value", exc.message)])
    return None
