"""`pipectl stale` and `pipectl next`: what needs attention, from the snapshot at a moment.

``next`` ranks open deals by what needs attention first (documented in docs/metrics.md):

1. an overdue logged next action (due before today), most overdue first;
2. a logged next action due today;
3. stale: no event for longer than the stale threshold (the stage's rot days), longest idle
   first;
4. close overdue: the expected close date has passed (before today), the oldest first;
5. closing: the expected close date is today or within ``near_days``, soonest first;
6. everything else.

Within a tier (and the same date, for the tiers ordered by one), larger value first, amounts of
two currencies never compared: the largest of each currency in turn (currencies in code order),
then the second largest of each, ..., then id. A logged next action (from ``pipectl note
--next``) counts when it was logged since the deal entered its current stage; otherwise the
deal needs what its stage calls for (its ``action`` in the pipeline's definition in force at the
as-of moment): the rule of ``domain.rules.next_step``, in SQL.

``stale`` lists the open deals idle for longer than their stage's threshold: its rot days
(``rot_days`` of the definition, 14 by default) unless ``--days`` says otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipectl.domain.next_step import DUE_ONLY
from pipectl.errors import UsageError
from pipectl.reports import snapshot
from pipectl.reports.scope import Scope
from pipectl.store import sql

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline, StageDef

DEFAULT_NEAR_DAYS = 14

Limits = dict[int, dict[str, int]]  # pipeline id -> open stage -> days


@dataclass(frozen=True, slots=True)
class StaleDeal:
    id: int
    name: str
    owner: str | None
    pipeline: str  # the name of the deal's pipeline (as defined at the as-of moment)
    stage: str
    value_minor: int | None
    currency: str
    last_event_at: str
    idle_days: float
    threshold_days: int


@dataclass(frozen=True, slots=True)
class NextStep:
    rank: int
    id: int
    name: str
    owner: str | None
    pipeline: str
    stage: str
    value_minor: int | None
    currency: str
    close_date: str | None
    action: str
    source: str  # "logged" (pipectl note --next) or "stage" (what the stage calls for)
    due: str | None
    why: str  # overdue, due_today, stale, close_overdue, closing, open
    idle_days: float


def thresholds(
    pipelines: dict[int, Pipeline] | Scope,
    default: int | None = None,
    per_stage: dict[tuple[int, str], int] | None = None,
) -> Limits:
    """The stale threshold of every open stage: ``per_stage`` (pipeline id, stage key) first,
    else ``default`` (``--days N``), else the stage's own rot days (14 unless its pipeline
    says otherwise)."""
    if isinstance(pipelines, Scope):
        pipelines = pipelines.pipelines
    given = per_stage or {}
    if (default is not None and default < 0) or any(v < 0 for v in given.values()):
        raise UsageError("--days may not be negative")
    return {
        pid: {
            s.key: given.get((pid, s.key), s.rot if default is None else default)
            for s in p.line if s.kind == "open"
        }
        for pid, p in pipelines.items()
    }


def _threshold_sql(limits: Limits, pipelines: dict[int, Pipeline], column: str = "stage",
                   pipeline_column: str = "pipeline_id") -> str:
    """SQL: the threshold of the stage in ``column`` (NULL for a stage without one)."""
    defs = {pid: p for pid, p in pipelines.items() if pid in limits}

    def days(p: Pipeline, s: StageDef) -> str | None:
        mine = limits[p.id]  # type: ignore[index]
        return str(int(mine[s.key])) if s.key in mine else None

    return snapshot.per_stage(defs, days, column, pipeline_column)


def _names_sql(sc: Scope) -> str:
    """SQL: the name of the deal's pipeline (as defined at the as-of moment)."""
    if not sc.split:
        only = next(iter(sc.in_sql.values()))
        return snapshot.quote(only.name)
    whens = " ".join(f"WHEN {pid} THEN {snapshot.quote(p.name)}"
                     for pid, p in sorted(sc.pipelines.items()))
    return f"(CASE pipeline_id {whens} END)"


def stale(
    conn: sqlite3.Connection,
    as_of: str,
    limits: Limits | None = None,
    owner: str | None = None,
    limit: int | None = None,
    sc: Scope | None = None,
    stream: bool = False,
) -> tuple[list[StaleDeal] | Iterator[StaleDeal], int]:
    """The stale deals, oldest first (at most ``limit``), and how many there are in all;
    ``stream``: one at a time (read them before the connection's next report).

    ``limits``: ``thresholds(...)`` (default: each stage's rot days); ``sc``: the pipelines
    (``reports.scope``; default: all of them, as in force at ``as_of``)."""
    if sc is None:
        from pipectl.reports.scope import scope

        sc = scope(conn, as_of)
    if limits is None:
        limits = thresholds(sc.pipelines)
    t = snapshot.build(conn, as_of, owner, activity=True, pipelines=sc.pipelines,
                       pipeline_id=sc.pipeline_id, only_open=True)
    threshold = _threshold_sql(limits, sc.in_sql)
    stale_now = (f"status = 'open' AND {sql.days_between(':as_of', 'last_event_at')}"
                 f" > {threshold}")
    params = {"as_of": as_of, "limit": NO_LIMIT if limit is None else limit}
    try:
        # the deals listed, ranked without their names; names only for those (a million-deal
        # table carries no names: at 1M, 271k open deals, copying them cost ~0.3 s)
        out = sql.scratch(conn, f"{t}_out", f"""
            SELECT row_number() OVER (ORDER BY s.last_event_at, s.id) AS rank,
                   s.id, d.name, d.owner, s.pipeline, s.stage, s.value_minor, s.currency,
                   s.last_event_at, s.idle, s.limit_days
            FROM (SELECT id, {_names_sql(sc)} AS pipeline, stage, value_minor, currency,
                         last_event_at,
                         round({sql.days_between(':as_of', 'last_event_at')}, 2) AS idle,
                         {threshold} AS limit_days
                  FROM {t} WHERE {stale_now}
                  ORDER BY last_event_at, id LIMIT :limit) s
            JOIN deals d ON d.id = s.id
            ORDER BY s.last_event_at, s.id""", params)
        (listed,) = conn.execute(f"SELECT count(*) FROM {out}").fetchone()
        total = (listed if limit is None or listed < limit else
                 conn.execute(f"SELECT count(*) FROM {t} WHERE {stale_now}", params).fetchone()[0])
    finally:
        snapshot.drop(conn, t)
    rows = _listed(conn, out, _stale_deal)
    return (rows if stream else list(rows)), total


def _stale_deal(rank: int, *columns: Any) -> StaleDeal:
    return StaleDeal(*columns)


def _listed(conn: sqlite3.Connection, out: str, make: Callable[..., Any]) -> Iterator[Any]:
    """The rows of the scratch table ``out``, by their rank (its first column), each made by
    ``make``, one at a time (flat memory however many); the table is dropped at the end.
    It holds the list as the report's read transaction saw it: reading it after that
    transaction ended sees the same rows."""
    try:
        for r in conn.execute(f"SELECT * FROM {out} ORDER BY rank"):
            yield make(*r)
    finally:
        snapshot.drop(conn, out)


def next_steps(
    conn: sqlite3.Connection,
    as_of: str,
    owner: str | None = None,
    stale_days: int | None = None,
    near_days: int = DEFAULT_NEAR_DAYS,
    limit: int | None = None,
    sc: Scope | None = None,
    stream: bool = False,
    today: str | None = None,
) -> tuple[list[NextStep] | Iterator[NextStep], int]:
    """The open deals, most urgent first (at most ``limit``), and how many there are in all.
    ``today``: the user's date at ``as_of`` (YYYY-MM-DD), which due and close dates are
    overdue before; default: the UTC date of ``as_of``.

    A deal is stale after ``stale_days`` without an event (default: its stage's rot days).
    ``stream``: the deals one at a time (read them before the connection's next report)."""
    if sc is None:
        from pipectl.reports.scope import scope

        sc = scope(conn, as_of)
    t = snapshot.build(conn, as_of, owner, activity=True, pipelines=sc.pipelines,
                       pipeline_id=sc.pipeline_id, only_open=True)
    defs = sc.in_sql
    # What the stage calls for: the same rule as domain.rules.next_step, for every open deal.
    stage_action = snapshot.per_stage(
        defs, lambda p, s: snapshot.quote(s.action), "stage", "pipeline_id")
    stale_after = _threshold_sql(thresholds(defs, stale_days), defs, "s.stage",
                                 "s.pipeline_id")
    today = today or as_of[:10]
    from datetime import date, timedelta

    near = (date.fromisoformat(today) + timedelta(days=near_days)).isoformat()
    params: dict[str, object] = {"as_of": as_of, "today": today, "near": near}
    # Each open deal's tier and the date it ranks by within it (the most overdue, longest
    # idle, soonest first), once, into a scratch table.
    ranked = sql.scratch(conn, f"{t}_next", f"""
        WITH s AS (
            SELECT s.*,
                   CASE WHEN n.id IS NOT NULL AND n.at >= s.entered_at
                             AND (n.next_action IS NOT NULL OR n.due IS NOT NULL)
                        THEN 1 ELSE 0 END AS logged,  -- a step cleared (done) is none
                   n.next_action AS logged_action, n.due AS logged_due,
                   {sql.days_between(':as_of', 's.last_event_at')} AS idle,
                   {stale_after} AS stale_after
            FROM {t} s LEFT JOIN events n ON n.id = s.next_event
            WHERE s.status = 'open'
        ),
        r AS (
            SELECT s.*,
                   CASE WHEN logged = 1 AND logged_due < :today THEN 0
                        WHEN logged = 1 AND logged_due = :today THEN 1
                        WHEN idle > stale_after THEN 2
                        WHEN close_date < :today THEN 3
                        WHEN close_date <= :near THEN 4
                        ELSE 5 END AS tier
            FROM s
        )
        SELECT id, pipeline_id, stage, value_minor, currency, close_date, logged,
               logged_action, logged_due, idle, tier,
               CASE tier WHEN 0 THEN logged_due WHEN 2 THEN last_event_at
                         WHEN 3 THEN close_date WHEN 4 THEN close_date ELSE '' END AS rank_at
        FROM r""", params)
    try:
        per_tier = dict(conn.execute(f"SELECT tier, count(*) FROM {ranked} GROUP BY tier"))
        total = sum(per_tier.values())
        # Only the first ``limit`` deals are listed, and deals rank by tier, then by their
        # date: the ranking below needs only the tiers before the one where the limit falls,
        # and in that tier the deals up to the limit's date (whole groups of a tier and a
        # date, which the ranking's partitions are).
        cut = ""
        if limit is not None and limit < total:
            before = 0
            for tier in sorted(per_tier):
                if before + per_tier[tier] >= limit:
                    break
                before += per_tier[tier]
            last = conn.execute(
                f"SELECT rank_at FROM {ranked} WHERE tier = :tier ORDER BY rank_at "
                "LIMIT 1 OFFSET :k", {"tier": tier, "k": max(limit - before - 1, 0)}
            ).fetchone()[0]
            cut = "WHERE tier < :tier OR (tier = :tier AND rank_at <= :last)"
            params.update(tier=tier, last=last)
        params["limit"] = NO_LIMIT if limit is None else limit
        out = sql.scratch(conn, f"{t}_out", f"""
            SELECT row_number() OVER (ORDER BY r.tier, r.rank_at, r.value_minor IS NULL, r.nth,
                                               r.currency, r.id) AS rank,
                   r.id, d.name, d.owner, r.pipeline, r.stage, r.value_minor, r.currency,
                   r.close_date, r.action, r.source, r.due, r.tier, r.idle
            FROM (SELECT id, {_names_sql(sc)} AS pipeline, stage, value_minor, currency,
                         close_date,
                         CASE WHEN logged = 1
                              THEN coalesce(logged_action, {snapshot.quote(DUE_ONLY)})
                              ELSE {stage_action} END AS action,
                         CASE WHEN logged = 1 THEN 'logged' ELSE 'stage' END AS source,
                         CASE WHEN logged = 1 THEN logged_due END AS due,
                         tier, round(idle, 2) AS idle, rank_at,
                         row_number() OVER (PARTITION BY tier, rank_at, currency
                                            ORDER BY value_minor IS NULL, value_minor DESC, id)
                             AS nth
                  FROM {ranked} {cut}
                  ORDER BY tier, rank_at, value_minor IS NULL, nth, currency, id
                  LIMIT :limit) r
            JOIN deals d ON d.id = r.id
            ORDER BY r.tier, r.rank_at, r.value_minor IS NULL, r.nth, r.currency, r.id""",
            params)
    finally:
        snapshot.drop(conn, ranked)
        snapshot.drop(conn, t)
    rows = _listed(conn, out, _next_step)
    return (rows if stream else list(rows)), total


NO_LIMIT = 1 << 62  # a LIMIT that cuts nothing, on every engine (SQLite's -1 is its own)

_WHY = ("overdue", "due_today", "stale", "close_overdue", "closing", "open")


def _next_step(*r: Any) -> NextStep:
    return NextStep(*r[:12], _WHY[r[12]], r[13])
