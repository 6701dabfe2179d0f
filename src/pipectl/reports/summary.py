"""`pipectl report`: every number of domain.md over a window, as of a moment, in SQL.

Each figure is an aggregate over the snapshot table (``snapshot.build``) or, for time in
stage, over the deals' moves; Python only combines a handful of aggregates (a ratio, a
velocity) with exact integer arithmetic. See docs/metrics.md for each formula.

Counts and money span every pipeline the report covers (``reports.scope``); the stage-keyed
figures (pipeline per stage, stage conversion, time in stage, lost by stage) are per pipeline,
each pipeline's stages in its own order, and close rate and win rate are given per pipeline
too when there are several.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import count, pairwise
from typing import TYPE_CHECKING

from pipectl.reports import snapshot
from pipectl.reports.money import Money
from pipectl.reports.periods import Window
from pipectl.reports.scope import Scope, open_set
from pipectl.store import sql
from pipectl.values import round_half_even, weighted_minor

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

_tables = count(1)
EXPLAIN_IDS = 20  # deal ids listed per figure by --explain (with the full count)


@dataclass(frozen=True, slots=True)
class Ratio:
    """numerator / denominator; ``value`` is None when the denominator is 0."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        if not self.denominator:
            return None
        return round(self.numerator / self.denominator, 4)

    def exact(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None


@dataclass(frozen=True, slots=True)
class Step:
    pipeline: Pipeline
    from_stage: str
    to_stage: str
    reached_from: int
    reached_to: int

    @property
    def rate(self) -> Ratio:
        return Ratio(self.reached_to, self.reached_from)


@dataclass(frozen=True, slots=True)
class Days:
    """Median and mean of a set of durations, in days (None when the set is empty)."""

    count: int
    median: float | None
    mean: float | None
    maximum: float | None = None


NO_DAYS = Days(0, None, None, None)


@dataclass(frozen=True, slots=True)
class StageMoney:
    pipeline: Pipeline
    stage: str
    money: Money


@dataclass(frozen=True, slots=True)
class StageTime:
    pipeline: Pipeline
    stage: str
    stays: Days  # completed stays that ended in the window
    now: Days  # deals sitting in the stage at the as-of moment (their age in it)


@dataclass(frozen=True, slots=True)
class PipelineRates:
    pipeline: Pipeline
    close_rate: Ratio
    win_rate: Ratio


@dataclass(frozen=True, slots=True)
class Unknowns:
    """Deals a figure leaves out because their import could not tell a fact it needs
    (``transfer.history.mark_unknown``; the snapshot's ``unknown``)."""

    qualification: int = 0  # created in the window, qualification unknown: not in close rate
    no_start: int = 0  # won in the window, when it began unknown: not in the sales cycle
    no_close: int = 0  # won in the window, when it closed unknown (start known or not): idem


# A deal's sales cycle is known unless its import could not tell when it began or closed
# (SQL over a snapshot table; every figure that reads cycles keeps to these deals).
CYCLE_KNOWN = ("(unknown IS NULL OR (instr(unknown, 'created_at') = 0"
                " AND instr(unknown, 'closed_at') = 0))")
# The deals each count of Unknowns holds, among the deals created (qualification) or won
# (start, close) in the window: SQL over a snapshot table (``report --by`` counts them per group).
UNKNOWN_QUALIFICATION = "(qualified_at IS NULL AND instr(unknown, 'qualified_at') > 0)"
UNKNOWN_START = "(instr(unknown, 'created_at') > 0 AND instr(unknown, 'closed_at') = 0)"
UNKNOWN_CLOSE = "(instr(unknown, 'closed_at') > 0)"


@dataclass(frozen=True, slots=True)
class Velocity:
    currency: str
    open_deals: int  # open deals with a value in this currency
    win_rate: Ratio
    won_deals: int  # deals won in the window with a value in this currency
    won_value: int  # their total value, minor units
    cycle_days: float | None  # mean sales cycle (all currencies)
    per_day: int | None  # minor units per day; None when a factor is missing

    @property
    def average_won(self) -> int | None:
        if not self.won_deals:
            return None
        return round_half_even(Fraction(self.won_value, self.won_deals))


@dataclass(slots=True)
class Outcome:
    """Deals won (or lost) in the window: how many, how many without a value, and per currency
    the deals with a value in it and their total value (minor units)."""

    count: int = 0
    without_value: int = 0
    with_value: dict[str, int] = field(default_factory=dict)  # currency -> deals
    value: dict[str, int] = field(default_factory=dict)  # currency -> total

    @property
    def average(self) -> dict[str, int]:
        """Per currency: value / deals with a value in it, exact, rounded half-to-even to the
        minor unit once."""
        return {cur: round_half_even(Fraction(v, self.with_value[cur]))
                for cur, v in sorted(self.value.items()) if self.with_value.get(cur)}

    def add(self, currency: str | None, deals: int, valued: int, value: int | None) -> None:
        """``deals`` more deals, ``valued`` of them with a value in ``currency`` summing to
        ``value``."""
        self.count += deals
        self.without_value += deals - valued
        if valued and currency is not None and value is not None:
            self.with_value[currency] = self.with_value.get(currency, 0) + valued
            self.value[currency] = self.value.get(currency, 0) + value


@dataclass(slots=True)
class LostGroup:
    key: str  # the reason, or the stage lost at
    count: int = 0
    value: dict[str, int] = field(default_factory=dict)
    pipeline: Pipeline | None = None  # by stage: the stage's pipeline


@dataclass(slots=True)
class Report:
    as_of: str
    window: Window
    owner: str | None
    status: dict[str, int]
    flow: dict[str, int]
    pipeline: list[StageMoney]  # per open stage of each pipeline covered
    pipeline_total: Money
    close_rate: Ratio
    win_rate: Ratio
    conversion: list[Step]
    cycle: Days
    time_in_stage: list[StageTime]
    velocity: list[Velocity]
    lost_by_reason: list[LostGroup]
    lost_by_stage: list[LostGroup]
    pipelines: tuple[Pipeline, ...] = ()  # the pipelines covered, in the order shown
    only: Pipeline | None = None  # --pipeline
    by_pipeline: list[PipelineRates] | None = None  # close and win rate, when several
    deals: dict[str, list[int]] | None = None  # --explain: the deals behind each figure
    deal_counts: dict[str, int] | None = None
    unknown: Unknowns = Unknowns()  # deals left out of close rate and sales cycle
    won: Outcome = field(default_factory=Outcome)  # deals won in the window, per currency
    lost: Outcome = field(default_factory=Outcome)  # lost in it and still lost at as_of

    @property
    def several(self) -> bool:
        return len(self.pipelines) > 1

    def stage_money(self, pipeline: str, stage: str) -> Money:
        """The open deals of one stage (a pipeline's name and a stage key)."""
        return next(s.money for s in self.pipeline
                    if s.pipeline.name == pipeline and s.stage == stage)


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 2)


def _durations(
    conn: sqlite3.Connection, source: str, params: dict, grouped: bool,
    rounded: dict[str | None, int] | None = None,
) -> dict[str | None, Days]:
    """Count, median, mean and max (in days) of the seconds in ``source`` per group.

    ``source`` yields ``grp, s`` rows (``grp`` NULL when not ``grouped``). The values go to a
    TEMP table indexed by (grp, s); the median is then read by offset along that index, so no
    value ever reaches Python, only the few aggregates per group. ``rounded``, when given,
    receives per group the sum of the seconds each rounded to a whole second.
    """
    table = sql.scratch(conn, f"dur_{next(_tables)}",
                        f"SELECT grp, s FROM ({source}) AS src WHERE s IS NOT NULL", params,
                        index=("grp", "s"))
    try:
        out: dict[str | None, Days] = {}
        groups = conn.execute(
            f"SELECT grp, count(*), avg(s), max(s), sum(round(s)) FROM {table} GROUP BY grp"
        ).fetchall()
        for grp, n, mean, top, whole in groups:
            if rounded is not None:
                rounded[grp] = int(whole)
            middle = [
                r[0]
                for r in conn.execute(
                    f"SELECT s FROM {table} WHERE grp IS ? ORDER BY s LIMIT ? OFFSET ?",
                    (grp, 2 - n % 2, (n - 1) // 2),
                )
            ]
            out[grp] = Days(n, _days(sum(middle) / len(middle)), _days(mean), _days(top))
        return out
    finally:
        sql.drop_scratch(conn, table)


def _in(column: str) -> str:
    return f"({column} >= :ws AND {column} < :we)"


def _known(column: str) -> str:
    """``_in`` for the window of all time (where NULL and false count alike)."""
    return f"({column} IS NOT NULL)"


def build(
    conn: sqlite3.Connection,
    as_of: str,
    window: Window,
    owner: str | None = None,
    explain: bool = False,
    pipeline: str | None = None,
) -> Report:
    """The report as of ``as_of`` over ``window``; ``pipeline``: only that pipeline's deals
    (a name; UsageError when there is none so named)."""
    from pipectl.reports.scope import scope as scope_of

    sc = scope_of(conn, as_of, pipeline)
    p = {"ws": window.start_iso(), "we": window.end_iso(), "as_of": as_of,
         "pipeline_id": sc.pipeline_id}
    kept = window == Window() and owner is None and not explain and _figures_usable(conn, sc)
    stays = _InBackground(conn, p, owner, sc)  # starts now, on the other core
    try:
        if kept:
            return _from_figures(conn, p, window, stays, sc)
        table = snapshot.build(conn, as_of, owner, pipelines=sc.pipelines,
                               pipeline_id=sc.pipeline_id)
        try:
            return _report(conn, table, p, window, owner, explain, stays, sc)
        finally:
            snapshot.drop(conn, table)
    finally:
        if stays.thread is not None:
            stays.thread.join()


def _report(
    conn: sqlite3.Connection, t: str, p: dict, window: Window, owner: str | None,
    explain: bool, stays: _InBackground, sc: Scope,
) -> Report:
    q = conn.execute
    several, split = sc.several, sc.split
    shown = sc.shown
    defs = sc.in_sql

    # all time: a moment is in the window when there is one (the same truth for every sum,
    # CASE and WHERE below, with no comparison per row); --explain shows the window's test
    inside = _known if window == Window() and not explain else _in
    won_in = f"(status = 'won' AND {inside('won_at')})"
    lost_in = f"(status = 'lost' AND {inside('decided_at')})"
    qualified_in = inside("qualified_at")
    created_in = inside("created_at")
    # One pass for the counts: status, flows, close rate, conversion, the cycle total and the
    # deals left out of them (per pipeline when there are several). reached is the order of
    # the furthest stage of the deal's pipeline it reached: reached(S) counts the deals with
    # reached >= order(S).
    longest = max((len(x.line) for x in shown), default=0)
    reached_sums = "".join(
        f", sum({created_in} AND reached >= {k})" for k in range(1, longest + 1)
    )
    rows = q(
        f"""SELECT {"pipeline_id" if split else "NULL"},
                   count(*), sum(status = 'open'), sum(status = 'won'), sum(status = 'lost'),
                   sum({created_in}), sum({qualified_in}),
                   sum({qualified_in} AND status = 'won'), sum({won_in}), sum({lost_in}),
                   sum(CASE WHEN {won_in} AND {CYCLE_KNOWN}
                       THEN round({sql.seconds_between('won_at', 'created_at')}) END),
                   sum({created_in} AND {UNKNOWN_QUALIFICATION}),
                   sum({won_in} AND {UNKNOWN_START}), sum({won_in} AND {UNKNOWN_CLOSE})
                   {reached_sums}
            FROM {t}{" GROUP BY pipeline_id" if split else ""}""",
        p,
    ).fetchall()
    per: dict[int | None, list[int]] = {r[0]: [v or 0 for v in r[1:]] for r in rows}

    # Pipeline: open deals at the as-of moment, per stage and currency.
    default = snapshot.stage_case(defs, "probability", "stage", "pipeline_id")
    prob = f"coalesce(probability, {default})"
    pid = "pipeline_id" if split else "NULL"
    open_groups = [
        (pipeline_id, stage, cur, n, none, sql.joined(v_hi, v_lo), sql.joined(w_hi, w_lo))
        for pipeline_id, stage, cur, n, v_hi, v_lo, w_hi, w_lo, none in q(
            f"""SELECT {pid}, stage, currency, count(*), {sql.exact_sum('value_minor')},
                       {sql.exact_sum(f'value_minor * {prob}')}, sum(value_minor IS NULL)
                FROM {t} WHERE status = 'open' GROUP BY 1, 2, 3""")
    ]

    # Sales cycle: creation to win, deals won in the window.
    cycle_src = (
        f"SELECT NULL AS grp, {sql.seconds_between('won_at', 'created_at')} AS s FROM {t}"
        f" WHERE {won_in} AND {CYCLE_KNOWN}"
    )
    cycle = _durations(conn, cycle_src, p, grouped=False).get(None, NO_DAYS)

    time_in_stage = _time_in_stage(conn, t, p, stays.result(), sc)

    # Won and lost value, per currency: the deals won in the window, and those lost in it and
    # still lost (win rate's deals); and the open deals with a value per currency (velocity's),
    # in one grouped pass.
    outcomes = [
        (outcome, cur, n, valued, sql.joined(v_hi, v_lo))
        for outcome, cur, n, valued, v_hi, v_lo in q(
            f"""SELECT CASE WHEN {won_in} THEN 'won' WHEN {lost_in} THEN 'lost' ELSE 'open' END
                       AS outcome, currency, count(*), count(value_minor),
                       {sql.exact_sum('value_minor')}
                FROM {t} WHERE {won_in} OR {lost_in} OR status = 'open'
                GROUP BY outcome, currency""",
            p,
        )
    ]
    report = _assemble(p, window, owner, sc, per, _FIXED + longest, open_groups, cycle,
                       time_in_stage, outcomes, _lost(q, t, p, lost_in, sc))
    if explain:
        conditions = {
            "open": "status = 'open'",
            "created_in_window": created_in,
            "qualified_in_window": qualified_in,
            "qualified_and_won": f"{qualified_in} AND status = 'won'",
            "won_in_window": won_in,
            "lost_in_window": lost_in,
        }
        for x in shown:
            for key in x.open_keys:
                mine = f" AND pipeline_id = {int(x.id or 0)}" if split else ""
                conditions[open_set(several, x, key)] = (
                    f"status = 'open' AND stage = {snapshot.quote(key)}{mine}")
        report.deals, report.deal_counts = {}, {}
        for key, cond in conditions.items():
            report.deals[key] = _ids(q, t, cond, p)
            report.deal_counts[key] = q(f"SELECT count(*) FROM {t} WHERE {cond}", p).fetchone()[0]
    return report


def _figures_usable(conn: sqlite3.Connection, sc: Scope) -> bool:
    """Whether the figures kept at write time (``store.figures``: every deal's state now,
    counted) give the report as of ``sc.as_of``: the read models may be used under the
    definitions in force then, and no event is later than that moment (every deal's state
    then is its state now)."""
    from pipectl.store import figures, readmodel

    return (figures.present(conn) and readmodel.usable(conn, sc.pipelines)
            and not figures.event_after(conn, sc.as_of))


def _from_figures(conn: sqlite3.Connection, p: dict, window: Window, stays: _InBackground,
                  sc: Scope) -> Report:
    """``_report`` over all time as of a moment after every event, from the figures kept at
    write time (``store.figures``) instead of a pass over every deal: the same numbers (the
    states' stages read through the same SQL of the definitions), with only the won deals'
    cycles and the open deals' ages read deal by deal, from the states now."""
    from pipectl.domain.pipeline import LOST
    from pipectl.domain.states import STILL

    split = sc.split
    shown = sc.shown
    defs = sc.in_sql
    status_sql = snapshot.stage_case(sc.pipelines, "status", "stage", "pipeline_id")
    won_now_sql = snapshot.member(sc.pipelines, snapshot.won_keys, "stage", "pipeline_id")
    default_sql = snapshot.stage_case(defs, "probability", "stage", "pipeline_id")
    mine = " AND pipeline_id = :pipeline_id" if sc.pipeline_id is not None else ""
    rows = conn.execute(
        f"""SELECT {status_sql}, {won_now_sql}, {default_sql}, pipeline_id, stage, currency,
                   valued, own_probability, reached, qualified, won, lost, unknown,
                   lost_reason, lost_stage, deals, value_hi, value_lo, weighted_hi, weighted_lo
            FROM deal_figures WHERE 1 = 1{mine}""", p).fetchall()

    longest = max((len(x.line) for x in shown), default=0)
    width = _FIXED + longest
    per: dict[int | None, list[int]] = {}
    pipe_groups: dict[tuple, list] = {}  # (pid, stage, currency) -> [n, none, value, weighted]
    outcomes: dict[tuple[str, str | None], list] = {}  # (outcome, currency) -> [n, valued, v]
    lost_groups: dict[tuple, list] = {}  # (reason, pid, stage, currency) -> [n, value]
    for (status, won_now, default, pid, stage, cur, valued, own, reached, qualified, won,
         lost, unknown, reason, lost_stage, n, v_hi, v_lo, w_hi, w_lo) in rows:
        value = sql.joined(v_hi, v_lo) if valued else None
        own_weighted = sql.joined(w_hi, w_lo) if valued and own else None
        key = pid if split else None
        c = per.setdefault(key, [0] * width)
        won_in = status == "won" and bool(won_now) and bool(won)
        decided = lost if stage == LOST else (won if won_now else 0)
        lost_in = status == "lost" and bool(decided)
        unknown = unknown or ""
        c[0] += n
        c[1] += n if status == "open" else 0
        c[2] += n if status == "won" else 0
        c[3] += n if status == "lost" else 0
        c[4] += n  # created in the window: all time, every deal
        c[5] += n if qualified else 0
        c[6] += n if qualified and status == "won" else 0
        c[7] += n if won_in else 0
        c[8] += n if lost_in else 0
        c[10] += n if not qualified and "qualified_at" in unknown else 0
        c[11] += n if won_in and "created_at" in unknown and "closed_at" not in unknown else 0
        c[12] += n if won_in and "closed_at" in unknown else 0
        for k in range(1, longest + 1):
            c[_FIXED + k - 1] += n if reached is not None and reached >= k else 0
        if status == "open":
            g = pipe_groups.setdefault((key, stage, cur), [0, 0, None, None])
            g[0] += n
            g[1] += 0 if valued else n
            if valued:
                g[2] = (g[2] or 0) + value
                if own:
                    g[3] = (g[3] or 0) + own_weighted
                elif default is not None:
                    g[3] = (g[3] or 0) + value * default
        outcome = "won" if won_in else "lost" if lost_in else "open" if status == "open" else None
        if outcome is not None:
            o = outcomes.setdefault((outcome, cur), [0, 0, None])
            o[0] += n
            if valued:
                o[1] += n
                o[2] = (o[2] or 0) + value
        if lost_in:
            lg = lost_groups.setdefault((reason, key, lost_stage, cur), [0, None])
            lg[0] += n
            if valued:
                lg[1] = (lg[1] or 0) + value

    # the won deals' cycles and the open deals' ages, deal by deal, from the states now
    now_rows = f"FROM deal_states {sql.indexed_by('deal_states_now')} WHERE until_at = '{STILL}'"
    won_in_sql = (f"({status_sql} = 'won' AND CASE WHEN {won_now_sql} THEN won_at END "
                  "IS NOT NULL)")
    won_stages = sorted({k for x in sc.pipelines.values() for k in x.won_keys})
    open_stages = sorted({k for x in sc.pipelines.values() for k in x.open_keys})
    cycle_src = (
        f"SELECT NULL AS grp, {sql.seconds_between('won_at', 'created_at')} AS s {now_rows}"
        f" AND stage IN ({', '.join(map(snapshot.quote, won_stages)) or 'NULL'}){mine}"
        f" AND {won_in_sql} AND {CYCLE_KNOWN}")
    whole: dict[str | None, int] = {}
    cycle = _durations(conn, cycle_src, p, grouped=False, rounded=whole).get(None, NO_DAYS)
    for c in per.values():
        c[9] = 0
    if per:  # the counts' cycle total: carried by one of them, summed over all below
        next(iter(per.values()))[9] = whole.get(None, 0)

    now_src = f"""
        SELECT {_group(sc, "stage", "pipeline_id")} AS grp,
               {sql.seconds_between(':as_of', 'entered_at')} AS s
        {now_rows} AND stage IN ({', '.join(map(snapshot.quote, open_stages)) or 'NULL'}){mine}
          AND {status_sql} = 'open'
    """
    time_in_stage = _stage_times(sc, stays.result(), _durations(conn, now_src, p, grouped=True))

    def ordered(groups: dict[tuple, list]) -> list[tuple]:
        """The groups in SQLite's GROUP BY order (NULL first), as the replay's pass gives
        them (the order money first meets each currency in)."""
        return [(*key, *values) for key, values in sorted(
            groups.items(), key=lambda item: tuple((v is not None, v if v is not None else 0)
                                                   for v in item[0]))]

    return _assemble(p, window, None, sc, per, width, ordered(pipe_groups), cycle,
                     time_in_stage, ordered(outcomes), ordered(lost_groups))


def _assemble(
    p: dict, window: Window, owner: str | None, sc: Scope, per: dict[int | None, list[int]],
    width: int, open_groups: list[tuple], cycle: Days, time_in_stage: list[StageTime],
    outcomes: list[tuple], lost_rows: list[tuple],
) -> Report:
    """The report from what either road (a pass over the snapshot, or the figures kept at
    write time) counted: ``per`` the counts per pipeline (``None`` when not split), in the
    counts pass's columns; ``open_groups`` the open deals per (pipeline, stage, currency):
    count, without a value, value, weighted value x 100; ``outcomes`` per (won / lost /
    open, currency): count, with a value, value; ``lost_rows`` per (reason, pipeline, stage
    lost at, currency): count, value. Groups in SQL's GROUP BY order."""
    shown, split = sc.shown, sc.split
    row = [sum(col) for col in zip(*per.values(), strict=True)] if per else [0] * width
    status = {"open": row[1], "won": row[2], "lost": row[3], "total": row[0]}
    flow = {"created": row[4], "qualified": row[5], "won": row[7], "lost": row[8]}
    close_rate = Ratio(row[6], row[5])
    win_rate = Ratio(row[7], row[7] + row[8])
    cycle_seconds = int(row[9])
    conversion: list[Step] = []
    for x in shown:
        reached = per.get(x.id if split else None, [0] * width)[_FIXED:]
        conversion += [
            Step(x, a.key, b.key, reached[i], reached[i + 1])
            for i, (a, b) in enumerate(pairwise(x.line))
        ]
    by_pipeline = None
    if sc.several:
        by_pipeline = []
        for x in shown:
            c = per.get(x.id, [0] * width)
            by_pipeline.append(PipelineRates(x, Ratio(c[6], c[5]), Ratio(c[7], c[7] + c[8])))

    pipeline = {(x.id, key): StageMoney(x, key, Money()) for x in shown for key in x.open_keys}
    total = Money()
    raw_total: dict[str, int] = {}
    for pipeline_id, stage, cur, n, none, value, weighted in open_groups:
        total.count += n
        total.without_value += none
        if value is not None:
            total.value[cur] = total.value.get(cur, 0) + value
            if weighted is not None:
                raw_total[cur] = raw_total.get(cur, 0) + weighted
        if not split:
            pipeline_id = shown[0].id if shown else None
        entry = pipeline.get((pipeline_id, stage))
        if entry is None:  # a stage its pipeline no longer has, or a removed pipeline
            continue
        m = entry.money
        m.count += n
        m.without_value += none
        if value is not None:
            m.value[cur] = m.value.get(cur, 0) + value
            m.weighted[cur] = weighted_minor(weighted or 0)
            m.exact[cur] = weighted or 0
    total.weighted = {c: weighted_minor(v) for c, v in raw_total.items()}
    total.exact = raw_total

    won, lost = Outcome(), Outcome()
    open_valued: dict[str, int] = {}
    for outcome, cur, n, valued, value in outcomes:
        if outcome == "open":
            if valued:
                open_valued[cur] = valued
        else:
            (won if outcome == "won" else lost).add(cur, n, valued, value)
    velocity = [
        _velocity(cur, open_valued.get(cur, 0), win_rate, won.with_value.get(cur, 0),
                  won.value.get(cur, 0), cycle.count, cycle_seconds)
        for cur in sorted(set(open_valued) | set(won.with_value))
    ]
    lost_by_reason, lost_by_stage = _lost_groups(lost_rows, sc)
    report = Report(
        as_of=p["as_of"], window=window, owner=owner, status=status, flow=flow,
        pipeline=list(pipeline.values()), pipeline_total=total, close_rate=close_rate,
        win_rate=win_rate, conversion=conversion, cycle=cycle, time_in_stage=time_in_stage,
        velocity=velocity, lost_by_reason=lost_by_reason, lost_by_stage=lost_by_stage,
        pipelines=shown, only=sc.only, by_pipeline=by_pipeline, won=won, lost=lost,
    )
    # the deals left out of close rate and sales cycle for what their import could not tell
    # (transfer.history.mark_unknown), over every pipeline covered
    report.unknown = Unknowns(row[10], row[11], row[12])
    return report


_FIXED = 13  # the counts query's columns before its reached(S) sums


def _ids(q, t: str, cond: str, p: dict) -> list[int]:
    return [r[0] for r in q(f"SELECT id FROM {t} WHERE {cond} ORDER BY id LIMIT {EXPLAIN_IDS}", p)]


def _group(sc: Scope, stage: str, pipeline: str) -> str:
    """SQL: the group of a stage in the duration passes (its key, with its pipeline when the
    report covers several)."""
    return f"({pipeline} || ':' || {stage})" if len(sc.pipelines) > 1 else stage


def _group_key(sc: Scope, pipeline: Pipeline, stage: str) -> str:
    return f"{pipeline.id}:{stage}" if len(sc.pipelines) > 1 else stage


def _stays(conn: sqlite3.Connection, p: dict, owner: str | None,
           sc: Scope) -> dict[str | None, Days]:
    """Completed stays per open stage (of each pipeline) that ended in the window.

    A stay runs from a move into the stage to the deal's next move (forward, back, lost, won
    or into another pipeline); a deal's moves follow each other in id order (see
    pipectl.reports.snapshot). Like every per-pipeline figure, a pipeline's stays are those of
    the deals in it as of the moment (a deal that moved out of it took its stays along: they
    count nowhere), so that its section is what --pipeline shows.
    """
    only = "AND e.deal_id IN (SELECT id FROM deals WHERE owner = :owner)" if owner else ""
    defs = sc.pipelines
    if snapshot.from_read_models(conn, defs):
        if len(defs) == 1 and owner is None and _every_stay(conn, p):
            return _every_stay_by_stage(conn, next(iter(defs.values())))
        return _durations(conn, _stays_from_read_models(sc, owner), {**p, "owner": owner},
                          grouped=True)
    mine = ""
    latest = ""  # one pipeline: no pipeline column to carry through the window's sort
    if len(defs) > 1:
        latest = (", e.pipeline_id AS pid, last_value(e.pipeline_id) OVER (PARTITION BY "
                  "e.deal_id ORDER BY e.id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
                  "FOLLOWING) AS now_pid")
        mine = "AND pid = now_pid"
        if sc.pipeline_id is not None:
            mine += " AND pid = :pipeline_id"
    moves = f"""
        SELECT e.to_stage AS stage, {sql.day('e.at')} AS j,
               lead({sql.day('e.at')}) OVER (PARTITION BY e.deal_id ORDER BY e.id) AS left_j
               {latest}
        FROM events e {sql.indexed_by('events_moves')}
        WHERE e.to_stage IS NOT NULL AND e.voided_by IS NULL AND e.at <= :as_of {only}
    """
    is_open = snapshot.member(defs, snapshot.open_keys, "stage", "pid")
    # The window's ends as Julian days (an unbounded end is not a date: no limit there).
    stays_src = f"""
        SELECT {_group(sc, "stage", "pid")} AS grp, (left_j - j) * 86400 AS s FROM ({moves}) AS m
        WHERE left_j IS NOT NULL AND {is_open} {mine}
          AND left_j >= coalesce({sql.day(':ws')}, 0) AND left_j < coalesce({sql.day(':we')}, 1e12)
    """
    return _durations(conn, stays_src, {**p, "owner": owner}, grouped=True)


def _every_stay(conn: sqlite3.Connection, p: dict) -> bool:
    """Whether the figure counts every completed stay: all time, as of a moment at or after
    the last one ended."""
    if p["ws"] != Window().start_iso() or p["we"] != Window().end_iso():
        return False
    (last,) = conn.execute(
        f"SELECT max(left_at) FROM deal_stays {sql.indexed_by('deal_stays_left')}").fetchone()
    return last is None or last <= p["as_of"]


def _every_stay_by_stage(conn: sqlite3.Connection, pipeline: Pipeline) -> dict[str | None, Days]:
    """``_durations`` of every completed stay per open stage of the one pipeline, read along
    the read model's index of stays by stage and length: the median by offset, nothing
    copied."""
    hint = sql.indexed_by("deal_stays_stage")
    out: dict[str | None, Days] = {}
    for key in pipeline.open_keys:
        n, mean, top = conn.execute(
            f"SELECT count(*), avg(seconds), max(seconds) FROM deal_stays {hint} "
            "WHERE pipeline_id = ? AND stage = ? AND seconds IS NOT NULL",
            (pipeline.id, key)).fetchone()
        if not n:
            continue
        middle = [r[0] for r in conn.execute(
            f"SELECT seconds FROM deal_stays {hint} WHERE pipeline_id = ? AND stage = ? "
            "AND seconds IS NOT NULL ORDER BY seconds LIMIT ? OFFSET ?",
            (pipeline.id, key, 2 - n % 2, (n - 1) // 2))]
        out[key] = Days(n, _days(sum(middle) / len(middle)), _days(mean), _days(top))
    return out


def _stays_from_read_models(sc: Scope, owner: str | None) -> str:
    """``_stays``'s rows from the read model of completed stays (``deal_stays``): the same
    stays, ended by the as-of moment and in the window, of the deals in the same pipeline
    as of the moment."""
    defs = sc.pipelines
    mine = ""
    if len(defs) > 1:
        mine = ("AND st.pipeline_id = (SELECT r.pipeline_id FROM deal_states r "
                "WHERE r.deal_id = st.deal_id AND r.until_at > :as_of AND r.since_at <= :as_of)")
        if sc.pipeline_id is not None:
            mine += " AND st.pipeline_id = :pipeline_id"
    only = "AND st.deal_id IN (SELECT id FROM deals WHERE owner = :owner)" if owner else ""
    is_open = snapshot.member(defs, snapshot.open_keys, "st.stage", "st.pipeline_id")
    return f"""
        SELECT {_group(sc, "st.stage", "st.pipeline_id")} AS grp, st.seconds AS s
        FROM deal_stays st {sql.indexed_by('deal_stays_left')}
        WHERE st.left_at <= :as_of AND st.left_at >= coalesce(:ws, '')
          AND st.left_at < coalesce(:we, '~') AND {is_open} {mine} {only}
    """


class _InBackground:
    """Run ``_stays`` on a second, read-only connection in a thread.

    It is the heaviest pass after the snapshot itself and independent of it; sqlite3 releases
    the GIL while a statement runs, so the two use both cores. An in-memory database (no file)
    runs it inline at ``result()``.
    """

    def __init__(self, conn: sqlite3.Connection, p: dict, owner: str | None,
                 sc: Scope) -> None:
        import threading

        self.conn, self.p, self.owner, self.sc = conn, p, owner, sc
        self.value: dict[str | None, Days] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        other = sql.second_reader(conn)
        if other is not None:
            self.thread = threading.Thread(target=self._run, args=(other,), daemon=True)
            self.thread.start()

    def _run(self, other: sqlite3.Connection) -> None:
        try:
            try:
                self.value = _stays(other, self.p, self.owner, self.sc)
            finally:
                other.close()
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self.error = exc

    def result(self) -> dict[str | None, Days]:
        if self.thread is None:
            return _stays(self.conn, self.p, self.owner, self.sc)
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def _time_in_stage(
    conn: sqlite3.Connection, t: str, p: dict, stays: dict[str | None, Days], sc: Scope
) -> list[StageTime]:
    """Completed stays per open stage, and the deals sitting in it at the as-of moment."""
    now_src = f"""
        SELECT {_group(sc, "stage", "pipeline_id")} AS grp,
               {sql.seconds_between(':as_of', 'entered_at')} AS s
        FROM {t} WHERE status = 'open'
    """
    return _stage_times(sc, stays, _durations(conn, now_src, p, grouped=True))


def _stage_times(sc: Scope, stays: dict[str | None, Days], now: dict[str | None, Days]
                 ) -> list[StageTime]:
    """Per open stage of each pipeline shown: its completed stays and its deals' ages now."""
    out = []
    for x in sc.shown:
        for key in x.open_keys:
            g = _group_key(sc, x, key)
            out.append(StageTime(x, key, stays.get(g, NO_DAYS), now.get(g, NO_DAYS)))
    return out


def _velocity(
    cur: str, open_deals: int, win_rate: Ratio, won: int, won_value: int,
    cycles: int, cycle_seconds: int,
) -> Velocity:
    rate = win_rate.exact()
    mean_days = None
    per_day = None
    if cycles:
        mean_days = Fraction(cycle_seconds, cycles * 86400)
    # n/a, never 0, when a factor is missing: no decided deal (win rate), no won value in
    # this currency, a zero cycle, or no open deal with a value in this currency (open deals
    # without a value have an unknown one; an empty pipeline's velocity is n/a too).
    if rate is not None and won and mean_days and open_deals:
        per_day = round_half_even(open_deals * rate * Fraction(won_value, won) / mean_days)
    return Velocity(
        currency=cur, open_deals=open_deals, win_rate=win_rate, won_deals=won,
        won_value=won_value, cycle_days=None if mean_days is None else round(float(mean_days), 2),
        per_day=per_day,
    )


def _lost(q, t: str, p: dict, lost_in: str, sc: Scope) -> list[tuple]:
    """Deals lost in the window, per reason, pipeline, stage lost at and currency (one
    grouped pass): count and value."""
    pid = "pipeline_id" if sc.split else "NULL"
    return [(reason, pipeline_id, stage, cur, n, sql.joined(v_hi, v_lo))
            for reason, pipeline_id, stage, cur, n, v_hi, v_lo in q(
                f"SELECT lost_reason, {pid}, lost_stage, currency, count(*),"
                f" {sql.exact_sum('value_minor')} FROM {t}"
                f" WHERE {lost_in} GROUP BY 1, 2, 3, 4",
                p)]


def _lost_groups(rows: list[tuple], sc: Scope) -> tuple[list[LostGroup], list[LostGroup]]:
    """The lost deals per reason (by count) and per stage lost at (along the line), from
    ``_lost``'s rows."""
    reasons: dict[str, LostGroup] = {}
    at_stage: dict[tuple[int | None, str], LostGroup] = {}
    for reason, pipeline_id, stage, cur, n, value in rows:
        if not sc.split:
            pipeline_id = sc.shown[0].id if sc.shown else None
        pipeline = sc.pipeline(pipeline_id) if pipeline_id is not None else None
        for g in (reasons.setdefault(reason, LostGroup(reason)),
                  at_stage.setdefault((pipeline_id, stage), LostGroup(stage, pipeline=pipeline))):
            g.count += n
            if value is not None:
                g.value[cur] = g.value.get(cur, 0) + value
    by_reason = sorted(reasons.values(), key=lambda g: (-g.count, g.key))
    place = {x.id: i for i, x in enumerate(sc.shown)}

    def where(item: tuple[tuple[int | None, str], LostGroup]) -> tuple[int, int, str]:
        (pipeline_id, stage), g = item
        x = g.pipeline
        order = x.order(stage) if x is not None and x.has(stage) else 1_000
        return (place.get(pipeline_id, len(place)), order, stage)

    by_stage = [g for _, g in sorted(at_stage.items(), key=where)]
    return by_reason, by_stage
