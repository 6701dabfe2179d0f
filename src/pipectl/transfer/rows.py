"""One row of an import file, validated: the ImportRow model (pydantic v2) and its parser.

``parse_row`` turns the cells of one row into an ImportRow, or into the list of what is wrong
with it (column and reason), so that the report names every bad cell of every bad row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.transfer import parsing
from pipectl.transfer.fields import TEXT_FIELDS, Preset
from pipectl.transfer.stage_map import StageMap
from pipectl.values import FUTURE_SLACK, MAX_TEXT, clean_text, currency_code

Status = Literal["open", "won", "lost"]


class ImportRow(BaseModel):
    """A row as pipectl understands it: texts NFC, money in minor units, times UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int = Field(ge=1)
    ref: str | None = Field(default=None, max_length=MAX_TEXT)
    name: str = Field(min_length=1, max_length=MAX_TEXT)
    name_given: bool = True  # False: the name is the company's or the ref (no name in the file)
    company: str | None = None
    contact: str | None = None
    email: str | None = None
    phone: str | None = None
    owner: str | None = None
    source: str | None = None
    value_minor: int | None = Field(default=None, ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    probability: int | None = Field(default=None, ge=0, le=100)
    stage: str  # where the deal is now (won/lost included): a key of the target pipeline
    their_stage: str | None = None  # the file's own word for it
    before_close: str | None = None  # open stage a closed deal was in, when the file says
    created_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    close_date: date | None = None
    lost_reason: str | None = None
    note: str | None = None
    prequalified: str | None = None
    closed_now: bool = False  # closed at the import's now: the close date is still to come
    closed_from_close_date: bool = False  # closed_at is the close_date (no close time column)
    # the value as the file wrote it, when it had more decimals than the currency: kept on the
    # event that sets the value ("amount in file: 9225.225 USD, rounded to 9225.22"), and by
    # how much rounding changed it (a Decimal): the import counts it when an event sets it
    value_note: str | None = None
    value_off: Any = None


MOST_TWO_WAYS = 50  # amounts with two readings listed in a refusal; all are counted


@dataclass
class Amounts:
    """What the amount cells of one file said: the amounts with two readings ('1.500' in
    USD: values.two_readings), and whether any amount showed the point to be the decimal point
    (or the comma to group thousands: '100000.0', '1,234', '9225.225'). (The amounts rounded
    are counted as their events are written: history.Flags.rounded.)"""

    two_ways: list[tuple[int, str, str, str]] = field(default_factory=list)  # row, column,
    n_two_ways: int = 0  # cell, currency (the first MOST_TWO_WAYS); and how many in all
    pointed: bool = False

    def clear(self) -> None:
        self.two_ways.clear()
        self.n_two_ways = 0
        self.pointed = False


@dataclass
class RowContext:
    """What parsing a row needs besides its cells."""

    fields: dict[str, int]  # field -> column index
    header: list[str]
    preset: Preset | None
    stages: StageMap  # their stage -> a stage of the target pipeline
    currency: str
    dayfirst: bool = False
    unknown_stages: dict[str, int] = field(default_factory=dict)  # their stage -> first row
    text_fields: tuple[str, ...] = ()
    fallbacks: dict[str, list[int]] = field(default_factory=dict)  # field -> more columns
    now: datetime | None = None  # the import's moment: facts after it (and the slack) are bad
    # how the file writes decimals: "point" (1,234.50), "comma" (1.234,50), or None: the point,
    # and amounts with two readings ('1.500') are told in ``amounts`` for the file to be judged
    # whole (importer: refused when no amount shows the point to be the decimal point)
    decimal: str | None = None
    amounts: Amounts = field(default_factory=Amounts)
    # ref -> the currency of a deal whose currency cell is empty, when not ``currency``: the
    # one its --history rows name (importer._history_currencies)
    currencies: dict[str, str] = field(default_factory=dict)
    # ref -> the currency of a deal the database already holds, when not ``currency`` and no
    # --currency was given: a deal seen again whose currency cell is empty keeps it (rows of
    # new deals never find theirs here, so the bulk road may still take them)
    held: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.text_fields = tuple(
            f for f in (*TEXT_FIELDS, "lost_reason", "note") if f in self.fields
        )

    def column(self, fld: str) -> str:
        """The file's column that feeds ``fld`` (the field's own name when none does)."""
        i = self.fields.get(fld)
        return fld if i is None else self.header[i]

    @property
    def pipeline(self) -> Pipeline:
        return self.stages.pipeline


def map_stage(text: str, ctx: RowContext) -> str | None:
    return ctx.stages.key(text)


def _status(text: str) -> Status | None:
    raw = text.strip().casefold()
    if not raw:
        return None
    for status in ("open", "won", "lost"):
        if raw == status:
            return status  # type: ignore[return-value]
    if raw in ("closed won", "closed-won"):
        return "won"
    if raw in ("closed lost", "closed-lost", "deleted"):
        return "lost"
    raise ValueError(f"{text!r} is not a status (open, won or lost)")


def parse_row(number: int, cells: list[str], ctx: RowContext) -> ImportRow | list[tuple[str, str]]:
    """An ImportRow, or [(column, reason), ...] for every bad cell of the row."""
    errors: list[tuple[str, str]] = []
    n = len(cells)
    raw: dict[str, str] = {}
    for fld, i in ctx.fields.items():
        cell = cells[i] if i < n else ""
        if not cell and fld in ctx.fallbacks:
            cell = next((cells[j] for j in ctx.fallbacks[fld] if j < n and cells[j]), "")
        raw[fld] = parsing.restore(cell) if cell[:1] == "'" else cell
    out: dict[str, object] = {"row": number}

    def bad(fld: str, reason: str) -> None:
        errors.append((ctx.column(fld), reason))

    for fld in ctx.text_fields:
        value = raw[fld]
        if not value:
            continue
        if value.isascii() and value.isprintable() and len(value) <= MAX_TEXT and (
            value[0] != " " and value[-1] != " "
        ):
            out[fld] = value  # the usual cell: nothing to normalise
            continue
        try:
            text = clean_text(value, fld, multiline=fld == "note")
        except Exception as exc:  # UsageError: control character, too long
            bad(fld, str(exc))
            continue
        if text:
            out[fld] = text
    currency = ctx.currency
    if (ctx.currencies or ctx.held) and "ref" in out:
        ref: str = out["ref"]  # type: ignore[assignment]
        currency = ctx.currencies.get(ref) or ctx.held.get(ref) or currency
    if raw.get("currency", "").strip():
        try:
            currency = currency_code(raw["currency"])
        except Exception as exc:
            bad("currency", str(exc))
    out["currency"] = currency
    moments: dict[str, tuple[datetime, bool] | None] = {}
    for fld in ("created_at", "closed_at", "updated_at", "close_date"):
        if fld in raw:
            try:
                moments[fld] = parsing.parse_when(raw[fld], dayfirst=ctx.dayfirst)
            except ValueError as exc:
                bad(fld, str(exc))
    latest = ctx.now + FUTURE_SLACK if ctx.now is not None else None
    for fld in ("created_at", "closed_at", "updated_at"):
        if moments.get(fld):
            out[fld] = moments[fld][0]  # type: ignore[index]
            if latest is not None and moments[fld][0] > latest:  # type: ignore[index]
                bad(fld, f"{raw[fld].strip()} is in the future")
    if moments.get("close_date"):
        out["close_date"] = moments["close_date"][0].date()  # type: ignore[index]
    if raw.get("value"):
        _amount(raw["value"], currency, ctx, number, out, bad)
    if "probability" in raw:
        try:
            if ctx.preset is not None and ctx.preset.probability_fraction:
                out["probability"] = fraction_percent(raw["probability"])
            else:
                out["probability"] = parsing.parse_percent(raw["probability"])
        except ValueError as exc:
            bad("probability", str(exc))
    # ---- stage and status
    facts = stage_facts(raw, number, ctx)
    errors.extend(facts.errors)
    final = facts.stage
    out["stage"] = final
    if facts.their_stage is not None:
        out["their_stage"] = facts.their_stage
    if facts.before_close is not None:
        out["before_close"] = facts.before_close
    if (
        ctx.preset is not None
        and ctx.preset.zero_value_lost_is_unknown
        and final == LOST
        and out.get("value_minor") == 0
    ):
        out.pop("value_minor")
        out.pop("value_note", None)
        out.pop("value_off", None)
    if not ctx.pipeline.is_open(final) and "closed_at" not in out and moments.get("close_date"):
        closed = moments["close_date"][0]  # type: ignore[index]
        if ctx.now is not None and closed > ctx.now:
            # an expected close date still to come: the deal is closed, so it closed by now
            closed = max(ctx.now, out.get("created_at") or ctx.now)  # type: ignore[type-var]
            out["closed_now"] = True
        out["closed_at"] = closed
        out["closed_from_close_date"] = True
    if final == LOST and "lost_reason" not in out:
        out["lost_reason"] = facts.lost_reason
    if "name" not in out:
        fallback = out.get("company") or out.get("ref")
        if fallback:
            out["name"] = fallback
            out["name_given"] = False
        else:
            errors.append((ctx.column("name") if "name" in ctx.fields else "name",
                           "the deal has no name, company or ref"))
    if errors:
        return errors
    try:
        return ImportRow.model_validate(out)
    except ValidationError as exc:
        for err in exc.errors():
            fld = str(err["loc"][0]) if err["loc"] else "row"
            fld = {"value_minor": "value"}.get(fld, fld)
            col = ctx.column(fld) if fld in ctx.fields else fld
            errors.append((col, pydantic_reason(err)))
        return errors


def _amount(cell: str, currency: str, ctx: RowContext, number: int, out: dict[str, object],
            bad: Any) -> None:
    """The value cell into ``out`` (rounded to the currency's minor unit, the cell kept in
    ``value_note`` and the change in ``value_off`` when that changed it), its reading told in
    ``ctx.amounts``; a bad cell into ``bad``."""
    try:
        read = parsing.read_amount(cell, currency, comma=ctx.decimal == "comma")
    except ValueError as exc:
        bad("value", str(exc))
        return
    if read is None:
        return
    minor, off = read
    out["value_minor"] = minor
    amounts = ctx.amounts
    if off is not None:
        from pipectl.values import format_money

        out["value_off"] = off
        out["value_note"] = (f"amount in file: {cell.strip()} {currency}, rounded to "
                             f"{format_money(minor, currency)}")
    if ctx.decimal is None:
        said = parsing.separators(cell, currency)
        if said > 0:
            amounts.n_two_ways += 1
            if len(amounts.two_ways) < MOST_TWO_WAYS:
                amounts.two_ways.append((number, ctx.column("value"), cell.strip(), currency))
        elif said < 0:
            amounts.pointed = True


def fraction_percent(text: str) -> int | None:
    """A probability written as a fraction (HubSpot's 'Deal probability': ``0.4``, ``1.0``,
    ``0``) -> whole percent (40, 100, 0); empty -> None."""
    from decimal import Decimal, InvalidOperation

    raw = text.strip()
    if not raw:
        return None
    try:
        percent = Decimal(raw) * 100 if _FRACTION.fullmatch(raw) else None
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        percent = None
    if percent is None or not 0 <= percent <= 100 or percent != percent.to_integral_value():
        raise ValueError(f"{text!r} is not a probability from 0 to 1 in whole percents "
                         "(0.4 for 40%)")
    return int(percent)


_FRACTION = re.compile(r"[0-9]{1,3}(?:\.[0-9]{0,20})?")


_FORMS = {  # what a pattern asks for, in words
    r"^[A-Z]{3}$": "three capital letters, e.g. EUR",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$": "a UTC moment, YYYY-MM-DDTHH:MM:SSZ",
    r"^\d{4}-\d{2}-\d{2}$": "a date, YYYY-MM-DD",
}
_REASONS = {  # pydantic error type -> pipectl's words
    "missing": "missing",
    "string_type": "should be text, in quotes",
    "int_type": "should be a whole number", "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "bool_type": "should be true or false", "bool_parsing": "should be true or false",
    "extra_forbidden": "is not a field of pipectl's export",
    "model_type": "should be a JSON object", "dict_type": "should be a JSON object",
    "model_attributes_type": "should be a JSON object",
    "list_type": "should be a JSON array",
}


def pydantic_reason(err: Any) -> str:
    """A validation error's reason in pipectl's words, not pydantic's ('Field required',
    'Input should be ...', 'Value error, ...', its patterns and class names)."""
    kind = err["type"]
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern", "")
        return f"{err.get('input')!r} is not {_FORMS.get(pattern, 'in the form pipectl writes')}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg.replace("Input should be", "should be", 1)


def error_place(loc: Any) -> str:
    """Where in a deal of pipectl's export a validation error is ('events.0.at'), or 'deal'."""
    return ".".join(str(x) for x in loc) or "deal"


@dataclass(frozen=True)
class StageFacts:
    """What the stage, status, won, closed and lost-at cells of a row say, together."""

    stage: str  # where the deal is now
    before_close: str | None  # the open stage a closed deal was in, when the file says
    their_stage: str | None  # the file's own word for the stage
    lost_reason: str  # the reason of a loss when the file gives none
    errors: tuple[tuple[str, str], ...] = ()  # (column, reason)


def stage_facts(raw: dict[str, str], number: int, ctx: RowContext) -> StageFacts:
    """The stage facts of a row's cells (field -> cell). Depends on those cells only, so a bulk
    import asks it once per distinct combination of them."""
    errors: list[tuple[str, str]] = []
    p = ctx.pipeline

    def bad(fld: str, reason: str) -> None:
        errors.append((ctx.column(fld), reason))

    their = raw.get("stage", "").strip()
    stage: str | None = None
    if their:
        stage = map_stage(their, ctx)
        if stage is None:
            ctx.unknown_stages.setdefault(their, number)
            stage = p.first  # reported once for the whole file
    status: Status | None = None
    if raw.get("status", "").strip():
        try:
            status = _status(raw["status"])
        except ValueError as exc:
            bad("status", str(exc))
    elif "won" in raw or "closed" in raw:
        # each flag on its own: a bad cell is told in its own column (a file may have either)
        flags: dict[str, bool | None] = {}
        for fld in ("won", "closed"):
            try:
                flags[fld] = parsing.parse_flag(raw.get(fld, ""))
            except ValueError as exc:
                bad(fld, str(exc))
                flags[fld] = None
        won, closed = flags["won"], flags["closed"]
        if won:
            status = "won"
        elif closed:
            status = "lost"
        elif closed is False or won is False:
            status = "open"
    lost_at: str | None = None
    if raw.get("lost_at_stage", "").strip():
        lost_at = map_stage(raw["lost_at_stage"], ctx)
        if lost_at is None or not p.is_open(lost_at):
            bad("lost_at_stage", f"{raw['lost_at_stage']!r} is not an open stage")
    final, before = _final(p, stage, status, lost_at)
    if final is None:
        bad("status" if "status" in raw else "stage", f"a {status} deal cannot be in {stage}")
        final = p.first
    # a CRM's own word for the loss says something ("Closed: abandoned"); "Lost" does not
    telling = their and map_stage(their, ctx) == LOST and not ctx.stages.own_name(their)
    return StageFacts(final, before, their or None, their if telling else "no reason recorded",
                      tuple(errors))


def _final(
    p: Pipeline, stage: str | None, status: Status | None, lost_at: str | None
) -> tuple[str | None, str | None]:
    """(where the deal is now, the open stage it was in before closing if known)."""
    if status is None:
        if stage is None:
            return p.first, None
        if stage == LOST:
            return LOST, lost_at
        return stage, None
    if status == "open":
        if stage is None:
            return p.first, None
        return (stage, None) if p.is_open(stage) else (None, None)
    if status == "won":
        if stage == LOST:
            return None, None
        if stage is not None and p.is_won(stage):
            return stage, None
        return p.won_key, stage
    # lost
    if stage is None or stage == LOST:
        return LOST, lost_at
    if not p.is_open(stage):
        return None, None
    return LOST, stage
