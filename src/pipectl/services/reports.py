"""The reads: the deal list (and one deal's row), the board, a pipeline and its stages, and
the reports (report, forecast, stale, next).

Each function reads one consistent state: its queries run in one read transaction
(``store.db.snapshot``), so a write another process commits meanwhile is seen by all of them or
by none (inside a caller's own transaction, they join it). Nothing is written; the reports'
scratch tables live in the connection's temp schema. ``report``'s time-in-stage pass runs on a
second, read-only connection in a thread (``reports.summary``): that connection has its own read
transaction, begun just after this one's first query.

The report code (``pipectl.reports``) is imported by the functions that need it, so the list
and the board do not load it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipectl.errors import UsageError
from pipectl.services import clock
from pipectl.store import deals as deal_store
from pipectl.store import pipelines as pipeline_store
from pipectl.store.db import snapshot

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline
    from pipectl.domain.rates import Converter
    from pipectl.reports.breakdown import Breakdown
    from pipectl.reports.forecast import PeriodForecast
    from pipectl.reports.money import Money
    from pipectl.reports.periods import Window
    from pipectl.reports.summary import Report

Row = dict[str, Any]

STATUSES = ("open", "won", "lost", "closed", "all")
SORTS = tuple(deal_store.SORTS)


@contextmanager
def _one_state(conn: sqlite3.Connection, for_reports: bool = False) -> Iterator[None]:
    """One read transaction (or the caller's own transaction, when one is open)."""
    if for_reports:
        # Scratch tables go to a temp file: set before the read transaction begins, since
        # SQLite refuses to change temp storage inside one once the temp schema is open.
        from pipectl.store import sql

        if not sql.prepare_for_reports(conn):
            raise UsageError(
                "a report cannot begin inside this transaction: the store cannot set up its "
                "scratch storage there",
                hint="run the report outside the transaction (it reads in one of its own), or "
                "run one report on the connection before the transaction",
            )
    if conn.in_transaction:
        yield
        return
    with snapshot(conn):
        yield


def as_of(text: str | None, option: str = "--as-of") -> str:
    """The as-of moment of a report (ISO UTC): ``text`` (a date means the start of that local
    day, a time without an offset is local: ``localtime.zone``), else now (``services.clock``)."""
    from pipectl.localtime import zone
    from pipectl.values import iso, parse_moment

    return iso(parse_moment(text, option, zone()) if text else clock.now())


# ---------------------------------------------------------------- the deal list


def listing_status(status: str | None, sort: str = "stage", closed: bool = False) -> str:
    """``status`` lower-cased, once it and ``sort`` are known (UsageError otherwise). None:
    ``open``, or ``closed`` (won and lost) when the list is filtered by close date
    (``closed``), which ``open`` contradicts."""
    if status is None:
        status = "closed" if closed else "open"
    status = status.lower()
    if status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    if sort not in SORTS:
        raise UsageError(f"--sort {sort!r} is not one of {', '.join(SORTS)}")
    if closed and status == "open":
        raise UsageError("--closed lists deals that closed, and --status open has none",
                         hint="leave --status out (won and lost deals), or say won or lost")
    return status


class DateRange:
    """Dates ``[start, end)`` (UTC), either side open (None): ``list --closed/--created``."""

    __slots__ = ('end', 'start')

    def __init__(self, start: date | None, end: date | None) -> None:
        self.start = start
        self.end = end

    def span(self) -> tuple[str | None, str | None]:
        """The range as stored moments: [start's midnight, end's midnight)."""
        return (None if self.start is None else f"{self.start.isoformat()}T00:00:00Z",
                None if self.end is None else f"{self.end.isoformat()}T00:00:00Z")

    @property
    def label(self) -> str:
        """As the report names its window: '2026-10-01 to 2027-01-01 (excluded)'."""
        if self.start and self.end:
            return f"{self.start} to {self.end} (excluded)"
        return f"from {self.start}" if self.start else f"before {self.end}"


RANGE_HINT = ("give FROM..TO as dates, TO excluded: 2026-10-01..2027-01-01 is the fourth "
              "quarter; either end may be left out (2026-10-01.., ..2027-01-01)")


def date_range(text: str, option: str) -> DateRange:
    """``FROM..TO`` (``--closed``, ``--created``): half-open UTC dates ``[FROM, TO)`` as
    report windows are; ``FROM..`` and ``..TO`` leave a side open. UsageError otherwise."""
    from pipectl.values import DATE_RANGE, in_range

    given = text.strip()
    first, sep, last = given.partition("..")
    if not sep or ".." in last:
        raise UsageError(f"{option} {text!r} is not a range FROM..TO", hint=RANGE_HINT)
    ends: list[date | None] = []
    for part in (first.strip(), last.strip()):
        if not part:
            ends.append(None)
            continue
        try:
            day = date.fromisoformat(part)
        except ValueError as exc:
            raise UsageError(f"{option} {text!r}: {part!r} is not a date (YYYY-MM-DD)",
                             hint=RANGE_HINT) from exc
        if not in_range(day):
            raise UsageError(f"{option} {text!r}: {part} is out of range: {DATE_RANGE}")
        ends.append(day)
    start, end = ends
    if start is None and end is None:
        raise UsageError(f"{option} {text!r} gives neither end", hint=RANGE_HINT)
    if start is not None and end is not None and end <= start:
        raise UsageError(
            f"{option} {text!r}: {end} is not after {start}",
            hint=f"the range is [FROM, TO): TO is excluded ({start}..{start + timedelta(days=1)}"
            " is the one day)")
    return DateRange(start, end)


class CurrencyTotal:
    # value_minor: the exact sum of the known values (None: no deal of it has a value)
    __slots__ = ('count', 'currency', 'value_minor', 'without_value')

    def __init__(self, currency: str, count: int, value_minor: int | None,
                 without_value: int) -> None:
        self.currency = currency
        self.count = count
        self.value_minor = value_minor
        self.without_value = without_value


class Listing:
    # rows: the deals, one at a time (read inside the ``with`` block)
    # pipelines: every pipeline as in force now: each row's own is here
    # pipeline: the pipeline asked for (the default one for a stage alone)
    # total: how many deals match (rows holds at most the limit); None unless asked for
    # totals: per currency (in code order), of every deal matching; None unless asked for
    # converter: with ``into``, the rates in force now into that currency; None otherwise
    __slots__ = ('converter', 'pipeline', 'pipelines', 'rows', 'total', 'totals')

    def __init__(
        self, rows: Iterator[Row], pipelines: dict[int, Pipeline], pipeline: Pipeline | None,
        totals: list[CurrencyTotal] | None = None, converter: Converter | None = None,
    ) -> None:
        self.rows = rows
        self.pipelines = pipelines
        self.pipeline = pipeline
        self.totals = totals
        self.converter = converter
        self.total = None if totals is None else sum(t.count for t in totals)


@contextmanager
def deals(
    conn: sqlite3.Connection,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    status: str | None = "open",
    owner: str | None = None,
    search: str | None = None,
    sort: str = "stage",
    limit: int | None = None,
    columns: tuple[str, ...] | None = None,
    closed: DateRange | None = None,
    created: DateRange | None = None,
    with_totals: bool = False,
    into: str | None = None,
) -> Iterator[Listing]:
    """The deals matching the filters, streamed: read ``rows`` inside the ``with`` block.

    ``pipeline``: only the deals of the pipeline so named ('': the default one; None: every
    pipeline). ``stage``: only the deals in that stage of ``pipeline`` (of the default one for
    None or ''). ``status``: None means open, or won and lost with ``closed``.
    ``closed``: only the deals that were won or lost in that range (their ``closed_at``);
    ``created``: only those created in it (``created_at``).
    ``columns``: only these columns of each deal (all by default). ``limit``: at most this many
    (None: all). ``with_totals``: also the count and the value per currency of every deal
    matching (the limit aside), read in the same state as the rows. ``into``: a currency to
    convert into at the rates in force now (``Listing.converter``; the totals are read too): a
    sort by value then compares converted values (those without a rate after, by currency).

        with reports.deals(conn, status="all", owner="Anna") as found:
            for row in found.rows: ...
    """
    status = listing_status(status, sort, closed is not None)
    with _one_state(conn):
        chosen = None
        if pipeline is not None or stage is not None:
            chosen = pipeline_store.by_name(conn, pipeline or None)
        known = pipeline_store.all_in_force(conn)
        filters: dict[str, Any] = dict(
            pipeline_id=chosen.id if chosen else None,
            stage=chosen.parse_stage(stage) if chosen and stage is not None else None,
            status=status,
            owner=owner,
            search=search,
            pipelines=known,
            closed=closed.span() if closed is not None else None,
            created=created.span() if created is not None else None,
        )
        totals = None
        if with_totals or into is not None:
            totals = [CurrencyTotal(t["currency"], t["count"], t["value"], t["without_value"])
                      for t in deal_store.totals(conn, **filters)]
        conv = None
        if into is not None:
            conv = converter(conn, into, as_of(None))
            conv.note(t.currency for t in totals or () if t.value_minor is not None)
        rows = deal_store.iter_deals(conn, sort=sort, limit=limit, columns=columns,
                                     factors=conv.factors() if conv else None, **filters)
        yield Listing(rows, known, chosen, totals, conv)


def deal(conn: sqlite3.Connection, deal_id: int) -> Row:
    """One deal's row (NotFound when there is none with that id); ``services.deals.get`` gives
    its events and pipeline too."""
    return deal_store.get(conn, deal_id)


# ---------------------------------------------------------------- the board and the stages


class Board:
    # top: the largest deals of each open stage
    # totals: per (stage, currency): count, value, value_x_percent
    # several: does the database hold more than one pipeline (say which one this is)?
    # converter: with --in, the rates in force now into that currency (domain.rates), which
    # ranked the top deals and converts the figures; None otherwise
    __slots__ = ('converter', 'pipeline', 'several', 'top', 'totals')

    def __init__(
        self, pipeline: Pipeline, top: dict[str, list[Row]], totals: list[Row], several: bool,
        converter: Converter | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.top = top
        self.totals = totals
        self.several = several
        self.converter = converter


def board(
    conn: sqlite3.Connection,
    pipeline: str | None = None,
    owner: str | None = None,
    per_stage: int | None = 8,
    into: str | None = None,
) -> Board:
    """The open deals of one pipeline (the default one for None), aggregated per stage:
    ``store.deals.board`` (at most ``per_stage`` deals of each stage; None for all). ``into``:
    a currency to convert into, at the rates in force now (the top deals then ranked by
    converted value)."""
    with _one_state(conn):
        shown = pipeline_store.by_name(conn, pipeline)
        conv = converter(conn, into, as_of(None)) if into is not None else None
        top, totals = deal_store.board(conn, shown, owner=owner, per_stage=per_stage,
                                       factors=conv.factors() if conv else None)
        several = len(pipeline_store.names(conn)) > 1
    if conv is not None:
        conv.note(sorted({t["currency"] for t in totals if t["value"] is not None}))
    return Board(shown, top, totals, several, conv)


def converter(conn: sqlite3.Connection, into: str, at: str) -> Converter:
    """Conversions into the currency ``into`` at the rates in force at ``at`` (ISO UTC), from
    every rate recorded (read in the caller's state)."""
    from pipectl.services import rates

    return rates.book(conn).converter(into, at)


def owner_known(conn: sqlite3.Connection, owner: str) -> tuple[bool, list[str]]:
    """Does any deal have this owner; if not, the owners there are (at most 500), for a
    note that names the ones meant."""
    from pipectl.store import deals as store

    if store.has_owner(conn, owner):
        return True, []
    return False, store.owners(conn)


def deal_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many deals are open, won and lost."""
    return deal_store.counts_by_status(conn)


def pipeline_named(conn: sqlite3.Connection, name: str | None = None, at: str | None = None
                   ) -> Pipeline:
    """The pipeline called ``name`` (the default one for None), as defined now or at ``at``;
    UsageError when there is none so named."""
    with _one_state(conn):
        return pipeline_store.by_name(conn, name, at)


class Stages:
    # rules: its rules in words (domain.rules.describe)
    __slots__ = ('pipeline', 'rules',)

    def __init__(self, pipeline: Pipeline, rules: list[str]) -> None:
        self.pipeline = pipeline
        self.rules = rules


def stages(conn: sqlite3.Connection, name: str | None = None) -> Stages:
    """A pipeline's stages (the default pipeline for None) and its rules in words."""
    from pipectl.domain.rules import describe

    shown = pipeline_named(conn, name)
    return Stages(shown, describe(shown))


# ---------------------------------------------------------------- report


def window(start: date | None = None, end: date | None = None) -> Window:
    """A window ``[start, end)`` (either side may be open; both None: all time)."""
    from pipectl.reports import periods

    return periods.window(start, end)


def period(unit: str, day: date) -> Window:
    """The week (Monday-based), month, quarter or year containing ``day``."""
    from pipectl.reports import periods

    return periods.period(unit, day)


def report(
    conn: sqlite3.Connection,
    as_of: str,
    window: Window,
    owner: str | None = None,
    explain: bool = False,
    pipeline: str | None = None,
) -> Report:
    """Every figure of ``pipectl report`` as of ``as_of`` (ISO UTC) over ``window``
    (``reports.summary.build``); ``pipeline``: only that pipeline's deals."""
    from pipectl.reports import summary

    with _one_state(conn, for_reports=True):
        return summary.build(conn, as_of, window, owner, explain=explain, pipeline=pipeline)


def report_by(by: str, owner: str | None = None, pipeline: str | None = None,
              pipeline_option: str = "--pipeline") -> str:
    """``report --by``'s dimension, lower-cased, once it is known and it makes sense with the
    filters (UsageError otherwise): one owner broken down by owner, or one pipeline by
    pipeline, would be a single row: the plain report says that already.
    ``pipeline_option``: how the user gave ``pipeline`` (the option, or its variable)."""
    from pipectl.reports.breakdown import BY

    chosen = by.strip().lower()
    if chosen not in BY:
        raise UsageError(f"--by {by!r} is not one of {', '.join(BY)}",
                         hint="pipectl report --quarter --by owner")
    if chosen == "owner" and owner is not None:
        raise UsageError(
            "--by owner and --owner exclude each other: one owner's deals by owner is one row",
            hint=f"pipectl report --owner {owner!r} gives that owner's figures; --by source "
            "or --by pipeline breaks them down")
    if chosen == "pipeline" and pipeline is not None:
        raise UsageError(
            f"--by pipeline and {pipeline_option} exclude each other: one pipeline's deals by "
            "pipeline is one row",
            hint=("unset PIPECTL_PIPELINE to break every pipeline down"
                  if pipeline_option != "--pipeline" else
                  "leave --pipeline out to break every pipeline down; --by owner or "
                  "--by source breaks one pipeline's deals down"))
    return chosen


def breakdown(
    conn: sqlite3.Connection,
    as_of: str,
    window: Window,
    by: str,
    owner: str | None = None,
    explain: bool = False,
    pipeline: str | None = None,
) -> Breakdown:
    """``pipectl report --by``: the report's money answers per owner, source or pipeline
    (``reports.breakdown.build``); ``by`` is checked by ``report_by``."""
    from pipectl.reports import breakdown as grouped

    chosen = report_by(by, owner, pipeline)
    with _one_state(conn, for_reports=True):
        return grouped.build(conn, as_of, window, chosen, owner, explain=explain,
                             pipeline=pipeline)


# ---------------------------------------------------------------- forecast

MOST_PERIODS = 120


def forecast_periods(unit: str, as_of: str, first: date | None = None,
                     last: date | None = None) -> list[Window]:
    """The months or quarters (``unit``) from the one containing ``first`` to the one containing
    ``last``; by default from three periods before the one containing ``as_of`` to two after,
    as far as the accepted calendar reaches (``values.FIRST_DAY`` to ``values.LAST_DAY``)."""
    from datetime import timedelta

    from pipectl.reports import periods
    from pipectl.values import FIRST_DAY, LAST_DAY

    if unit not in ("month", "quarter"):
        raise UsageError(f"--by {unit!r} is not month or quarter")
    here = periods.period_start(unit, date.fromisoformat(as_of[:10]))
    if first is None:
        first = here
        for _ in range(3):
            if first > FIRST_DAY:
                first = max(periods.period_start(unit, first - timedelta(days=1)), FIRST_DAY)
    if last is None:
        last = here
        for _ in range(2):
            last = min(periods.next_start(unit, last), LAST_DAY)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    chosen = periods.periods(unit, first, last)
    if len(chosen) > MOST_PERIODS:
        raise UsageError(f"{len(chosen)} periods is too many (at most {MOST_PERIODS})")
    return chosen


class Forecast:
    # pipeline: the pipeline asked for, as it calls itself (not as typed)
    # no_close_date, no_close_date_ids: the deals open at the as-of moment without an
    # expected close date (reports.money.Money), in no period's forecast
    __slots__ = ('no_close_date', 'no_close_date_ids', 'periods', 'pipeline')

    def __init__(self, periods: list[PeriodForecast], pipeline: str | None,
                 no_close_date: Money | None = None,
                 no_close_date_ids: list[int] | None = None) -> None:
        self.periods = periods
        self.pipeline = pipeline
        self.no_close_date = no_close_date
        self.no_close_date_ids = no_close_date_ids or []


def forecast(
    conn: sqlite3.Connection,
    as_of: str,
    periods: list[Window],
    owner: str | None = None,
    pipeline: str | None = None,
) -> Forecast:
    """Forecast versus actual for each period (``reports.forecast.build``)."""
    from pipectl.reports import forecast as fc

    with _one_state(conn, for_reports=True):
        built = fc.build_all(conn, as_of, periods, owner, pipeline=pipeline)
        name = None if pipeline is None else pipeline_store.by_name(conn, pipeline).name
    return Forecast(built.periods, name, built.no_close_date, built.no_close_date_ids)


# ---------------------------------------------------------------- stale and next


class StageDays:
    """A stale threshold for one stage: ``stage`` as the user names it (key, label, alias or
    prefix) in each pipeline covered that has it; ``given``: how the user wrote it (errors
    quote it)."""

    __slots__ = ('days', 'given', 'stage')

    def __init__(self, stage: str, days: int, given: str | None = None) -> None:
        self.stage = stage
        self.days = days
        self.given = given


class Attention:
    # rows: reports.actions.StaleDeal or NextStep
    # total: how many there are in all (rows holds at most the limit)
    # several: do the rows span more than one pipeline (name each row's)?
    __slots__ = ('rows', 'several', 'total')

    def __init__(self, rows: Iterable[Any], total: int, several: bool) -> None:
        self.rows = rows
        self.total = total
        self.several = several


def stale(
    conn: sqlite3.Connection,
    as_of: str,
    days: int | None = None,
    stage_days: Sequence[StageDays] = (),
    owner: str | None = None,
    limit: int | None = None,
    pipeline: str | None = None,
    stream: bool = False,
) -> Attention:
    """Open deals idle for longer than their threshold, oldest first: ``stage_days`` for the
    stages they name, else ``days``, else each stage's rot days. ``stream``: ``rows`` one at
    a time, in flat memory (as the read transaction saw them; read them before the
    connection's next report)."""
    from pipectl.reports import actions
    from pipectl.reports.scope import scope

    with _one_state(conn, for_reports=True):
        sc = scope(conn, as_of, pipeline)
        per_stage = {}
        for wanted in stage_days:
            given = wanted.given or f"{wanted.stage}={wanted.days}"
            for pid, key in _open_stage(sc, given, wanted.stage):
                per_stage[(pid, key)] = wanted.days
        rows, total = actions.stale(conn, as_of, actions.thresholds(sc, days, per_stage), owner,
                                    limit=limit, sc=sc, stream=stream)
    return Attention(rows, total, sc.several)


def _open_stage(sc: Any, item: str, text: str) -> list[tuple[int, str]]:
    """The open stage ``text`` names (key, label, alias or prefix) in each pipeline covered
    that has it: [(pipeline id, stage key)]. Pipelines with a stage of that very key come
    first: only they are meant then."""
    found: list[tuple[int, str]] = []
    errors: list[UsageError] = []
    key = text.strip()
    having = [p for p in sc.shown if key in p.keys]  # a stage's key names it before any alias
    for p in having or sc.shown:
        try:
            stage = p.parse_stage(text)
        except UsageError as exc:
            errors.append(exc)
            continue
        if not p.is_open(stage):
            raise UsageError(f"--days {item!r}: {stage} is not an open stage")
        found.append((p.id, stage))
    if not found and len(errors) == 1:
        raise errors[0]
    if not found:
        have = "; ".join(f"{p.name}: {', '.join(p.open_keys)}" for p in sc.shown)
        raise UsageError(f"--days {item!r}: no pipeline has an open stage {text!r}",
                         hint=f"open stages of {have}")
    return found


def next_steps(
    conn: sqlite3.Connection,
    as_of: str,
    owner: str | None = None,
    limit: int | None = None,
    pipeline: str | None = None,
    stream: bool = False,
) -> Attention:
    """What each open deal needs next, most urgent first (``reports.actions.next_steps``);
    ``stream`` as for ``stale``. Overdue and due today go by the user's date at ``as_of``
    (``localtime``: TZ, else the system's zone; UTC under --utc)."""
    from pipectl.localtime import today
    from pipectl.reports import actions
    from pipectl.reports.scope import scope

    day = today(as_of).isoformat()
    with _one_state(conn, for_reports=True):
        sc = scope(conn, as_of, pipeline)
        rows, total = actions.next_steps(conn, as_of, owner, limit=limit, sc=sc, stream=stream,
                                         today=day)
    return Attention(rows, total, sc.several)
