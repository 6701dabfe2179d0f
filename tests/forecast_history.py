"""A generated sales history whose truth is known, for the forecasting tests
(tests/services/test_forecasting_truth.py).

The process is stationary and simple enough that every number ``pipectl calibrate`` and
``pipectl forecast --range/--backtest`` learn has a known true value:

- deals arrive as a Poisson process (``Flow.per_day`` a day), each in stage ``a`` of the
  pipeline ``Truth`` (``TRUTH``) with a value drawn uniformly from ``Flow.value`` (whole
  dollars, USD);
- after ``days_in_a`` days (uniform, inclusive) a deal moves on to ``b`` with probability
  ``p_advance``, else it is lost at ``a``; after ``days_in_b`` more days a deal in ``b`` is won
  with probability ``p_win``, else lost at ``b``. Outcome and delays are independent;
- so the true P(won | ever in a) is ``p_advance * p_win`` and P(won | ever in b) ``p_win``;
- every deal is created with an expected close date: the day it would be won (after its days
  in ``a`` and in ``b``, whatever its outcome) minus a slip drawn uniformly from ``slip``
  (positive: it is won later than promised); on entering ``b``, a share ``repromise`` of the
  deals changes its close date to that day minus a smaller slip drawn from ``reslip`` (a
  ``close_date`` event).

Everything is written through pipectl's own services (``services.deals`` add / advance /
lose / edit, each with its ``at``), in time order, exactly as a team recording it day by day
would; ``Writer.until`` stops at a moment and can carry on later (the tests that prove the
past stays the past).
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pipectl.models import DealEdit, NewDeal
from pipectl.services import deals as svc
from pipectl.services import pipelines
from pipectl.store.db import transaction

# Service calls written in one transaction: each still runs every rule (clock, order of
# events, the pipeline's moves); the read models settle once a batch, as after an import
# (``pipectl db check`` finds them what the events make: test_forecasting_truth checks).
# One commit per call would spend most of a test's time in fsync.
BATCH = 200

PIPELINE = "Truth"
# Configured probabilities deliberately wrong (20 % and 50 % against the true 30 % and 70 %):
# calibrate has something to find, and the Brier scores of both are known.
TRUTH = """\
name = "Truth"
stages = [
  { key = "a", label = "Stage A", probability = 20 },
  { key = "b", label = "Stage B", probability = 50 },
  { key = "won", label = "Won", kind = "won" },
]
"""


@dataclass(frozen=True, slots=True)
class Flow:
    """The generating process (see the module's docstring)."""

    per_day: float = 1.0
    p_advance: float = 3 / 7  # a -> b; with p_win 0.7: P(won | ever in a) = 0.3
    p_win: float = 0.7
    days_in_a: tuple[int, int] = (3, 45)
    days_in_b: tuple[int, int] = (5, 60)
    value: tuple[int, int] = (1_000, 20_000)  # whole USD
    slip: tuple[int, int] = (-10, 30)  # the day it would be won - the promise at creation
    repromise: float = 0.5
    reslip: tuple[int, int] = (0, 5)

    @property
    def p_win_from_a(self) -> float:
        return self.p_advance * self.p_win


@dataclass(slots=True)
class Deal:
    """One generated deal: what happens to it, and when."""

    number: int
    created: datetime
    value_minor: int
    promise: date
    days_in_a: int
    advanced: bool
    days_in_b: int | None  # None when lost at a
    won: bool
    repromise: date | None = None  # the close date set on entering b, if it is changed

    @property
    def entered_b(self) -> datetime | None:
        return None if not self.advanced else self.created + timedelta(days=self.days_in_a)

    @property
    def decided(self) -> datetime:
        return self.created + timedelta(days=self.days_in_a + (self.days_in_b or 0))

    def stage_at(self, moment: datetime) -> str | None:
        """Its stage at ``moment`` while it is open then (``a`` or ``b``), else None."""
        if not self.created <= moment < self.decided:
            return None
        entered = self.entered_b
        return "b" if entered is not None and entered <= moment else "a"


@dataclass(order=True, slots=True)
class Step:
    at: datetime
    order: int  # the order of one deal's steps at the same moment
    number: int = field(compare=False)
    kind: str = field(compare=False)  # add, advance, repromise, win, lose


def plan(flow: Flow, start: datetime, end: datetime, seed: int) -> list[Deal]:
    """The deals created from ``start`` up to ``end`` (their later steps may lie beyond it)."""
    rnd = random.Random(seed)
    out: list[Deal] = []
    t = start
    while True:
        t += timedelta(seconds=round(rnd.expovariate(flow.per_day) * 86_400))
        if t >= end:
            return out
        # keep every step of a deal within working hours of its days: whole-day delays
        created = t.replace(hour=8 + rnd.randrange(9), minute=rnd.randrange(60), second=0)
        da = rnd.randint(*flow.days_in_a)
        db = rnd.randint(*flow.days_in_b)  # in b, had it got there (the promise counts it)
        advanced = rnd.random() < flow.p_advance
        won = advanced and rnd.random() < flow.p_win
        value = rnd.randint(*flow.value) * 100
        # the promise is about the win: the day it would be won, less a slip (whatever the
        # outcome: no one promises a loss)
        would_win = created.date() + timedelta(days=da + db)
        promise = max(created.date() + timedelta(days=1),
                      would_win - timedelta(days=rnd.randint(*flow.slip)))
        deal = Deal(len(out), created, value, promise, da, advanced,
                    db if advanced else None, won)
        if advanced and rnd.random() < flow.repromise:
            entered = deal.entered_b.date()  # type: ignore[union-attr]
            deal.repromise = max(entered,
                                 would_win - timedelta(days=rnd.randint(*flow.reslip)))
        out.append(deal)


def steps(deals: list[Deal]) -> list[Step]:
    """Every deal's steps, in the order a team would record them (time, then per deal)."""
    out: list[Step] = []
    for d in deals:
        out.append(Step(d.created, 0, d.number, "add"))
        if d.advanced:
            out.append(Step(d.entered_b, 1, d.number, "advance"))  # type: ignore[arg-type]
            if d.repromise is not None:
                out.append(Step(d.entered_b, 2, d.number, "repromise"))  # type: ignore[arg-type]
        out.append(Step(d.decided, 3, d.number, "win" if d.won else "lose"))
    out.sort()
    return out


class Writer:
    """Writes the planned deals through the services, in time order, up to a moment; then on
    from there (``until`` again, later)."""

    def __init__(self, conn: sqlite3.Connection, deals: list[Deal]) -> None:
        self.conn = conn
        self.deals = deals
        self.ids: dict[int, int] = {}  # deal number -> pipectl id
        self._steps: Iterator[Step] = iter(steps(deals))
        self._next: Step | None = next(self._steps, None)
        self.written = 0
        self.dropped: set[int] = set()  # deals whose later steps a test writes itself

    def drop(self, number: int) -> int:
        """Write none of deal ``number``'s later steps (a test takes it over); its id."""
        self.dropped.add(number)
        return self.ids[number]

    def until(self, moment: datetime, batch: int = BATCH) -> int:
        """Write every step at or before ``moment``, ``batch`` steps to a transaction (each
        service call joins it, as a command joins the one it is called in); returns how many
        were written."""
        n = 0
        while self._next is not None and self._next.at <= moment:
            with transaction(self.conn):
                for _ in range(batch):
                    if self._next.number not in self.dropped:
                        self._write(self._next)
                        n += 1
                    self._next = next(self._steps, None)
                    if self._next is None or self._next.at > moment:
                        break
        self.written += n
        return n

    def _write(self, step: Step) -> None:
        d = self.deals[step.number]
        if step.kind == "add":
            new = NewDeal(f"Deal {d.number}", pipeline=PIPELINE, currency="USD",
                          value_minor=d.value_minor, close_date=d.promise)
            self.ids[d.number] = svc.add(self.conn, new, at=step.at)[0]
            return
        deal_id = self.ids[d.number]
        if step.kind == "advance":
            svc.advance(self.conn, deal_id, at=step.at)
        elif step.kind == "repromise":
            svc.edit(self.conn, deal_id, DealEdit(close_date=d.repromise), at=step.at)
        elif step.kind == "win":
            svc.advance(self.conn, deal_id, to="won", at=step.at)
        else:
            svc.lose(self.conn, deal_id, "no budget", at=step.at)


def apply_pipeline(conn: sqlite3.Connection, at: datetime) -> None:
    pipelines.apply(conn, TRUTH, at=at)


def write(conn: sqlite3.Connection, flow: Flow, start: datetime, end: datetime, seed: int,
          created_until: datetime | None = None) -> Writer:
    """The pipeline (in force from a day before ``start``) and the deals created from ``start``
    up to ``created_until`` (default ``end``), with every step up to ``end``."""
    apply_pipeline(conn, start - timedelta(days=1))
    writer = Writer(conn, plan(flow, start, created_until or end, seed))
    writer.until(end)
    return writer


def utc(text: str) -> datetime:
    """A moment in UTC from ISO text, with or without its Z."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def nearest_rank(values: list[int], q: float) -> int:
    """The nearest-rank ``q`` quantile: the smallest value that at least ceil(q * n) of them do
    not exceed (docs: the medians and spreads of days)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def within(n: int, p: float, low: int, high: int) -> float:
    """P(low <= X <= high) for X ~ binomial(n, p), exactly."""
    return math.fsum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(low, high + 1))
