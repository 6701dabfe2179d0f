"""`pipectl report`: every number of domain.md over a window, as of a moment, in SQL.

Each figure is an aggregate over the snapshot table (``snapshot.build``) or, for time in
stage, over the deals' moves; Python only combines a handful of aggregates (a ratio, a
velocity) with exact integer arithmetic. See docs/metrics.md for each formula.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import count, pairwise

from pipectl import stages
from pipectl.reports import snapshot
from pipectl.reports.money import Money
from pipectl.reports.periods import Window
from pipectl.stages import Stage
from pipectl.values import weighted_minor

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
    from_stage: Stage
    to_stage: Stage
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
class StageTime:
    stage: Stage
    stays: Days  # completed stays that ended in the window
    now: Days  # deals sitting in the stage at the as-of moment (their age in it)


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
        return _round(Fraction(self.won_value, self.won_deals))


@dataclass(slots=True)
class LostGroup:
    key: str
    count: int = 0
    value: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    as_of: str
    window: Window
    owner: str | None
    status: dict[str, int]
    flow: dict[str, int]
    pipeline: dict[Stage, Money]
    pipeline_total: Money
    close_rate: Ratio
    win_rate: Ratio
    conversion: list[Step]
    cycle: Days
    time_in_stage: list[StageTime]
    velocity: list[Velocity]
    lost_by_reason: list[LostGroup]
    lost_by_stage: list[LostGroup]
    deals: dict[str, list[int]] | None = None  # --explain: the deals behind each figure
    deal_counts: dict[str, int] | None = None


def _round(x: Fraction) -> int:
    """Half-even rounding of an exact fraction to an integer."""
    return round(x)  # Fraction.__round__ rounds half to even


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 2)


def _durations(
    conn: sqlite3.Connection, source: str, params: dict, grouped: bool
) -> dict[str | None, Days]:
    """Count, median, mean and max (in days) of the seconds in ``source`` per group.

    ``source`` yields ``grp, s`` rows (``grp`` NULL when not ``grouped``). The values go to a
    TEMP table indexed by (grp, s); the median is then read by offset along that index, so no
    value ever reaches Python, only the few aggregates per group.
    """
    table = f"dur_{next(_tables)}"
    conn.execute(
        f"CREATE TEMP TABLE {table} AS SELECT grp, s FROM ({source}) WHERE s IS NOT NULL", params
    )
    try:
        conn.execute(f"CREATE INDEX temp.{table}_gs ON {table} (grp, s)")
        out: dict[str | None, Days] = {}
        groups = conn.execute(
            f"SELECT grp, count(*), avg(s), max(s) FROM {table} GROUP BY grp"
        ).fetchall()
        for grp, n, mean, top in groups:
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
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _in(column: str) -> str:
    return f"({column} >= :ws AND {column} < :we)"


def build(
    conn: sqlite3.Connection,
    as_of: str,
    window: Window,
    owner: str | None = None,
    explain: bool = False,
) -> Report:
    p = {"ws": window.start_iso(), "we": window.end_iso(), "as_of": as_of}
    stays = _InBackground(conn, p, owner)  # starts now, on the other core
    try:
        table = snapshot.build(conn, as_of, owner)
        try:
            return _report(conn, table, p, window, owner, explain, stays)
        finally:
            snapshot.drop(conn, table)
    finally:
        if stays.thread is not None:
            stays.thread.join()


def _report(
    conn: sqlite3.Connection, t: str, p: dict, window: Window, owner: str | None,
    explain: bool, stays: _InBackground,
) -> Report:
    as_of = p["as_of"]
    q = conn.execute

    won_in = f"(status = 'won' AND {_in('won_at')})"
    lost_in = f"(status = 'lost' AND {_in('decided_at')})"
    qualified_in = _in("qualified_at")
    created_in = _in("created_at")
    line = list(stages.LINE)
    # One pass for the counts: status, flows, close rate, conversion and the cycle total.
    reached_sums = ", ".join(
        f"sum({created_in} AND reached >= {stages.order(s)})" for s in line
    )
    row = q(
        f"""SELECT count(*), sum(status = 'open'), sum(status = 'won'), sum(status = 'lost'),
                   sum({created_in}), sum({qualified_in}),
                   sum({qualified_in} AND status = 'won'), sum({won_in}), sum({lost_in}),
                   sum(CASE WHEN {won_in}
                       THEN round((julianday(won_at) - julianday(created_at)) * 86400) END),
                   {reached_sums}
            FROM {t}""",
        p,
    ).fetchone()
    row = [v or 0 for v in row]
    status = {"open": row[1], "won": row[2], "lost": row[3], "total": row[0]}
    flow = {"created": row[4], "qualified": row[5], "won": row[7], "lost": row[8]}
    close_rate = Ratio(row[6], row[5])
    win_rate = Ratio(row[7], row[7] + row[8])
    cycle_seconds = int(row[9])
    reached = row[10:]
    conversion = [
        Step(a, b, reached[i], reached[i + 1]) for i, (a, b) in enumerate(pairwise(line))
    ]

    # Pipeline: open deals at the as-of moment, per stage and currency.
    prob = f"coalesce(probability, {snapshot.default_probability_sql('stage')})"
    pipeline = {s: Money() for s in stages.OPEN_STAGES}
    total = Money()
    raw_total: dict[str, int] = {}
    for stage, cur, n, value, weighted, none in q(
        f"""SELECT stage, currency, count(*), sum(value_minor), sum(value_minor * {prob}),
                   sum(value_minor IS NULL)
            FROM {t} WHERE status = 'open' GROUP BY stage, currency"""
    ):
        m = pipeline[Stage(stage)]
        m.count += n
        total.count += n
        m.without_value += none
        total.without_value += none
        if value is not None:
            m.value[cur] = m.value.get(cur, 0) + value
            m.weighted[cur] = weighted_minor(weighted)
            total.value[cur] = total.value.get(cur, 0) + value
            raw_total[cur] = raw_total.get(cur, 0) + weighted
    total.weighted = {c: weighted_minor(v) for c, v in raw_total.items()}

    # Sales cycle: creation to win, deals won in the window.
    cycle_src = (
        f"SELECT NULL AS grp, (julianday(won_at) - julianday(created_at)) * 86400 AS s FROM {t}"
        f" WHERE {won_in}"
    )
    cycle = _durations(conn, cycle_src, p, grouped=False).get(None, NO_DAYS)

    time_in_stage = _time_in_stage(conn, t, p, stays.result())

    # Sales velocity, per currency.
    by_cur = q(
        f"""SELECT currency, sum(status = 'open'), sum({won_in}),
                   sum(CASE WHEN {won_in} THEN value_minor END)
            FROM {t} WHERE value_minor IS NOT NULL AND (status = 'open' OR {won_in})
            GROUP BY currency""",
        p,
    ).fetchall()
    open_by_cur = {r[0]: r[1] for r in by_cur if r[1]}
    won_by_cur = {r[0]: (r[2], r[3]) for r in by_cur if r[2]}
    velocity = [
        _velocity(cur, open_by_cur.get(cur, 0), win_rate, *won_by_cur.get(cur, (0, 0)),
                  flow["won"], cycle_seconds)
        for cur in sorted(set(open_by_cur) | set(won_by_cur))
    ]

    lost_by_reason, lost_by_stage = _lost(q, t, p, lost_in)

    report = Report(
        as_of=as_of, window=window, owner=owner, status=status, flow=flow,
        pipeline=pipeline, pipeline_total=total, close_rate=close_rate, win_rate=win_rate,
        conversion=conversion, cycle=cycle, time_in_stage=time_in_stage, velocity=velocity,
        lost_by_reason=lost_by_reason, lost_by_stage=lost_by_stage,
    )
    if explain:
        conditions = {
            "open": "status = 'open'",
            "created_in_window": created_in,
            "qualified_in_window": qualified_in,
            "qualified_and_won": f"{qualified_in} AND status = 'won'",
            "won_in_window": won_in,
            "lost_in_window": lost_in,
        }
        for s in stages.OPEN_STAGES:
            conditions[f"open_{s}"] = f"status = 'open' AND stage = '{s}'"
        report.deals, report.deal_counts = {}, {}
        for key, cond in conditions.items():
            report.deals[key] = _ids(q, t, cond, p)
            report.deal_counts[key] = q(f"SELECT count(*) FROM {t} WHERE {cond}", p).fetchone()[0]
    return report


def _ids(q, t: str, cond: str, p: dict) -> list[int]:
    return [r[0] for r in q(f"SELECT id FROM {t} WHERE {cond} ORDER BY id LIMIT {EXPLAIN_IDS}", p)]


def _stays(conn: sqlite3.Connection, p: dict, owner: str | None) -> dict[str | None, Days]:
    """Completed stays per open stage that ended in the window.

    A stay runs from a move into the stage to the deal's next move (forward, back, lost or
    won); a deal's moves follow each other in id order (see pipectl.reports.snapshot).
    """
    only = "AND e.deal_id IN (SELECT id FROM deals WHERE owner = :owner)" if owner else ""
    moves = f"""
        SELECT e.to_stage AS stage, julianday(e.at) AS j,
               lead(julianday(e.at)) OVER (PARTITION BY e.deal_id ORDER BY e.id) AS left_j
        FROM events e INDEXED BY events_moves
        WHERE e.to_stage IS NOT NULL AND e.at <= :as_of {only}
    """
    # The window's ends as Julian days (an unbounded end is not a date: no limit there).
    stays_src = f"""
        SELECT stage AS grp, (left_j - j) * 86400 AS s FROM ({moves})
        WHERE left_j IS NOT NULL AND stage IN {snapshot.OPEN}
          AND left_j >= coalesce(julianday(:ws), 0) AND left_j < coalesce(julianday(:we), 1e12)
    """
    return _durations(conn, stays_src, {**p, "owner": owner}, grouped=True)


class _InBackground:
    """Run ``_stays`` on a second, read-only connection in a thread.

    It is the heaviest pass after the snapshot itself and independent of it; sqlite3 releases
    the GIL while a statement runs, so the two use both cores. An in-memory database (no file)
    runs it inline at ``result()``.
    """

    def __init__(self, conn: sqlite3.Connection, p: dict, owner: str | None) -> None:
        import threading

        self.conn, self.p, self.owner = conn, p, owner
        self.value: dict[str | None, Days] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
        if path:
            self.thread = threading.Thread(target=self._run, args=(path,), daemon=True)
            self.thread.start()

    def _run(self, path: str) -> None:
        from urllib.parse import quote

        try:
            other = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5)
            try:
                other.execute("PRAGMA temp_store = FILE")
                other.execute("PRAGMA cache_size = -16384")
                self.value = _stays(other, self.p, self.owner)
            finally:
                other.close()
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self.error = exc

    def result(self) -> dict[str | None, Days]:
        if self.thread is None:
            return _stays(self.conn, self.p, self.owner)
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def _time_in_stage(
    conn: sqlite3.Connection, t: str, p: dict, stays: dict[str | None, Days]
) -> list[StageTime]:
    """Completed stays per open stage, and the deals sitting in it at the as-of moment."""
    now_src = f"""
        SELECT stage AS grp, (julianday(:as_of) - julianday(entered_at)) * 86400 AS s
        FROM {t} WHERE status = 'open'
    """
    now = _durations(conn, now_src, p, grouped=True)
    return [StageTime(s, stays.get(s.value, NO_DAYS), now.get(s.value, NO_DAYS))
            for s in stages.OPEN_STAGES]


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
        per_day = _round(open_deals * rate * Fraction(won_value, won) / mean_days)
    return Velocity(
        currency=cur, open_deals=open_deals, win_rate=win_rate, won_deals=won,
        won_value=won_value, cycle_days=None if mean_days is None else round(float(mean_days), 2),
        per_day=per_day,
    )


def _lost(q, t: str, p: dict, lost_in: str) -> tuple[list[LostGroup], list[LostGroup]]:
    """Deals lost in the window, per reason and per stage lost at (one grouped pass)."""
    reasons: dict[str, LostGroup] = {}
    at_stage: dict[str, LostGroup] = {}
    for reason, stage, cur, n, value in q(
        f"SELECT lost_reason, lost_stage, currency, count(*), sum(value_minor) FROM {t}"
        f" WHERE {lost_in} GROUP BY lost_reason, lost_stage, currency",
        p,
    ):
        for groups, key in ((reasons, reason), (at_stage, stage)):
            g = groups.setdefault(key, LostGroup(key))
            g.count += n
            if value is not None:
                g.value[cur] = g.value.get(cur, 0) + value
    by_reason = sorted(reasons.values(), key=lambda g: (-g.count, g.key))
    by_stage = sorted(at_stage.values(), key=lambda g: stages.order(Stage(g.key)))
    return by_reason, by_stage
