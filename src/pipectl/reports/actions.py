"""`pipectl stale` and `pipectl next`: what needs attention, from the snapshot at a moment.

``next`` ranks open deals by what needs attention first (documented in docs/metrics.md):

1. an overdue logged next action (due before today), most overdue first;
2. a logged next action due today;
3. stale: no event for longer than the stale threshold, longest idle first;
4. expected close date within ``near_days`` (or already past), soonest first;
5. everything else.

Within a tier, larger value first (amounts compared as written, whatever the currency), then
id. A logged next action (from ``pipectl note --next``) counts when it was logged since the
deal entered its current stage; otherwise the deal needs what its stage calls for
(``stages.PIPELINE[*].action``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pipectl import stages
from pipectl.errors import UsageError
from pipectl.reports import snapshot
from pipectl.stages import Stage

DEFAULT_STALE_DAYS = 14
DEFAULT_NEAR_DAYS = 14


@dataclass(frozen=True, slots=True)
class StaleDeal:
    id: int
    name: str
    owner: str | None
    stage: Stage
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
    stage: Stage
    value_minor: int | None
    currency: str
    close_date: str | None
    action: str
    source: str  # "logged" (pipectl note --next) or "stage" (what the stage calls for)
    due: str | None
    why: str  # overdue, due_today, stale, closing, open
    idle_days: float


def thresholds(default: int, per_stage: dict[Stage, int] | None = None) -> dict[Stage, int]:
    if default < 0 or any(v < 0 for v in (per_stage or {}).values()):
        raise UsageError("--days may not be negative")
    return {s: (per_stage or {}).get(s, default) for s in stages.OPEN_STAGES}


def _threshold_sql(limits: dict[Stage, int]) -> str:
    return "(CASE stage " + " ".join(f"WHEN '{s}' THEN {d}" for s, d in limits.items()) + " END)"


def stale(
    conn: sqlite3.Connection,
    as_of: str,
    limits: dict[Stage, int],
    owner: str | None = None,
    limit: int | None = None,
) -> tuple[list[StaleDeal], int]:
    """The stale deals, oldest first (at most ``limit``), and how many there are in all."""
    t = snapshot.build(conn, as_of, owner, activity=True, names=True)
    try:
        rows = conn.execute(
            f"""SELECT id, name, owner, stage, value_minor, currency, last_event_at,
                       round(julianday(:as_of) - julianday(last_event_at), 2) AS idle,
                       {_threshold_sql(limits)} AS limit_days,
                       count(*) OVER () AS total
                FROM {t}
                WHERE status = 'open'
                  AND julianday(:as_of) - julianday(last_event_at) > {_threshold_sql(limits)}
                ORDER BY last_event_at, id
                LIMIT :limit""",
            {"as_of": as_of, "limit": -1 if limit is None else limit},
        ).fetchall()
    finally:
        snapshot.drop(conn, t)
    total = rows[0][-1] if rows else 0
    return [StaleDeal(r[0], r[1], r[2], Stage(r[3]), *r[4:-1]) for r in rows], total


def next_steps(
    conn: sqlite3.Connection,
    as_of: str,
    owner: str | None = None,
    stale_days: int = DEFAULT_STALE_DAYS,
    near_days: int = DEFAULT_NEAR_DAYS,
    limit: int | None = None,
) -> tuple[list[NextStep], int]:
    """The open deals, most urgent first (at most ``limit``), and how many there are in all."""
    t = snapshot.build(conn, as_of, owner, activity=True, names=True)
    stage_action = "(CASE s.stage " + " ".join(
        f"WHEN '{i.key}' THEN '{i.action.replace(chr(39), chr(39) * 2)}'" for i in stages.PIPELINE
    ) + " END)"
    sql = f"""
        WITH s AS (
            SELECT s.*,
                   CASE WHEN n.id IS NOT NULL AND n.at >= s.entered_at THEN 1 ELSE 0 END AS logged,
                   n.next_action AS logged_action, n.due AS logged_due,
                   julianday(:as_of) - julianday(s.last_event_at) AS idle
            FROM {t} s LEFT JOIN events n ON n.id = s.next_event
            WHERE s.status = 'open'
        ),
        r AS (
            SELECT s.*,
                   CASE WHEN logged AND logged_due < :today THEN 0
                        WHEN logged AND logged_due = :today THEN 1
                        WHEN idle > :stale THEN 2
                        WHEN close_date IS NOT NULL AND close_date <= :near THEN 3
                        ELSE 4 END AS tier
            FROM s
        )
        SELECT id, name, owner, stage, value_minor, currency, close_date,
               CASE WHEN logged THEN coalesce(logged_action, '{stages.DUE_ONLY}')
                    ELSE {stage_action} END AS action,
               CASE WHEN logged THEN 'logged' ELSE 'stage' END AS source,
               CASE WHEN logged THEN logged_due END AS due,
               tier, round(idle, 2), count(*) OVER () AS total
        FROM r s
        ORDER BY tier,
                 CASE tier WHEN 0 THEN logged_due WHEN 2 THEN last_event_at
                           WHEN 3 THEN close_date ELSE '' END,
                 value_minor IS NULL, value_minor DESC, id
    """
    today = as_of[:10]
    from datetime import date, timedelta

    near = (date.fromisoformat(today) + timedelta(days=near_days)).isoformat()
    params = {"as_of": as_of, "today": today, "stale": stale_days, "near": near}
    sql += " LIMIT :limit"
    params["limit"] = -1 if limit is None else limit
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        snapshot.drop(conn, t)
    why = ("overdue", "due_today", "stale", "closing", "open")
    steps = [
        NextStep(i, r[0], r[1], r[2], Stage(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                 why[r[10]], r[11])
        for i, r in enumerate(rows, 1)
    ]
    return steps, rows[0][-1] if rows else 0
