"""What the history teaches, as of a moment: per pipeline and open stage, how the deals that
were in it ended and how long they took, and how far won deals landed from the close dates
promised for them. Read from ``events`` alone, nothing later than the moment (a backtest at a
past moment sees only what was known then).

A deal is **decided** at the moment when its latest move (as of then) is into a won stage of
its pipeline (won at its first such move) or into lost. For each decided deal and each open
stage of its pipeline it was ever in before being decided (a ``created``, ``stage``,
``reopened`` or ``pipeline`` event into it), one record: won or lost, the days from its latest
entry into the stage to the decision, and the probability the deal carried itself when it
entered (its own, NULL when it had none: the stage's then applies), and whether it had a
value (above 0) when decided: the forecast range, which is about money, learns its chances
from the deals that had one (a file that gives lost deals no value, as Maven's does, would
otherwise count each loss twice: once in the chance, once in the value).

A **promise** is an expected close date a deal that was later won carried at some time before
the win (its ``created`` event's, or a ``close_date`` event's); its **slip** is the days from
the promised date to the day it was won (negative: early).

The days of a deal whose import could not tell when it began or closed (``unknown``) are left
out of the times and slips; its outcome still counts.

Everything is aggregated in SQL: the Python side reads a few thousand rows at 1M deals. As of a
moment after every event, under the definitions the read models were computed with, the same
is read from what the writes kept (``store.outcomes``: ``KEPT_*``), without a pass over the
history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from pipectl.domain.pipeline import LOST
from pipectl.reports import snapshot
from pipectl.store import sql

_names = count(1)

# ``pe`` is grouped, not DISTINCT: SQLite (3.40) joins a grouped CTE through an automatic
# index, but scans a DISTINCT one whole for every decided deal (quadratic: 40 s at 100k
# deals; docs/performance.md).
DECIDED_SQL = """
WITH d AS (
    SELECT deal_id, min(id) AS k_created, max(id) AS k_last,
           min(CASE WHEN {won_move} THEN at END) AS won_at
    FROM events {hint_moves}
    WHERE to_stage IS NOT NULL AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
),
pe AS (
    SELECT deal_id FROM events {hint_kind_at}
    WHERE kind = 'probability' AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
),
v AS (
    SELECT deal_id, max(id) AS k_value FROM events {hint_kind_at}
    WHERE kind = 'value' AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
)
SELECT d.deal_id AS id, s.pipeline_id AS pipeline_id,
       CASE WHEN {won_now} THEN 1 ELSE 0 END AS won,
       CASE WHEN {won_now} THEN d.won_at ELSE s.at END AS decided_at,
       CASE WHEN cr.field = 'unknown' AND cr.new <> 'qualified_at' THEN 1 ELSE 0 END AS untimed,
       cr.probability AS p_created,
       CASE WHEN pe.deal_id IS NULL THEN 0 ELSE 1 END AS has_prob,
       cr.at AS created_at,
       CASE WHEN v.k_value IS NULL THEN cr.value_minor ELSE ve.value_minor END AS value_minor,
       CASE WHEN v.k_value IS NULL THEN cr.currency ELSE ve.currency END AS currency
FROM d
JOIN events s ON s.id = d.k_last
JOIN events cr ON cr.id = d.k_created
LEFT JOIN pe ON pe.deal_id = d.deal_id
LEFT JOIN v ON v.deal_id = d.deal_id
LEFT JOIN events ve ON ve.id = v.k_value
WHERE ({won_now} OR s.to_stage = '{lost}' OR (s.kind = 'pipeline' AND s.from_stage = '{lost}'))
{where}
"""

# One row per (pipeline, stage, outcome, days, own probability) with how many records.
STAGES_SQL = """
WITH e AS (
    SELECT o.id, o.pipeline_id, o.won, o.decided_at, o.untimed, o.p_created, o.has_prob,
           CASE WHEN o.value_minor > 0 THEN 1 ELSE 0 END AS valued,
           x.to_stage AS stage, max(x.at) AS entered_at, max(x.id) AS k_entry
    FROM {decided} o JOIN events x {hint_moves} ON x.deal_id = o.id
    WHERE x.to_stage IS NOT NULL AND x.voided_by IS NULL AND x.at <= o.decided_at
      AND x.pipeline_id = o.pipeline_id AND {open_stage}
    GROUP BY o.id, o.pipeline_id, o.won, o.decided_at, o.untimed, o.p_created, o.has_prob,
             o.value_minor, x.to_stage
),
e2 AS (
    SELECT pipeline_id, stage, won, valued,
           CASE WHEN untimed = 0 THEN CAST(julianday(substr(decided_at, 1, 10))
                                           - julianday(substr(entered_at, 1, 10)) AS INTEGER)
           END AS days,
           CASE WHEN has_prob = 0 THEN p_created
                WHEN EXISTS (SELECT 1 FROM events y {hint_deal} WHERE y.deal_id = e.id
                             AND y.kind = 'probability' AND y.id < e.k_entry
                             AND y.voided_by IS NULL)
                THEN (SELECT y.probability FROM events y {hint_deal} WHERE y.deal_id = e.id
                      AND y.kind = 'probability' AND y.id < e.k_entry
                      AND y.voided_by IS NULL ORDER BY y.id DESC LIMIT 1)
                ELSE p_created END AS p_own
    FROM e
)
SELECT pipeline_id, stage, won, valued, days, p_own, count(*) AS n
FROM e2
GROUP BY pipeline_id, stage, won, valued, days, p_own
"""

# CROSS JOIN: SQLite reads the won deals first and their events by deal; left to itself,
# without the (won, decided_at) index, it read every event and looked its deal up (1M deals:
# 10.6 s against 3.0 s; docs/performance.md).
SLIPS_SQL = """
SELECT o.pipeline_id,
       CAST(julianday(substr(o.decided_at, 1, 10)) - julianday(x.close_date) AS INTEGER) AS slip,
       count(*) AS n
FROM {decided} o CROSS JOIN events x {hint_deal}
WHERE x.deal_id = o.id AND o.won = 1 AND o.untimed = 0 AND x.kind IN ('created', 'close_date')
  AND x.close_date IS NOT NULL AND x.at <= o.decided_at AND x.voided_by IS NULL
GROUP BY 1, 2
"""

# The value won in a window by deals created at or after a moment (new business), per currency.
FRESH_SQL = """
SELECT currency, sum(value_minor) FROM {decided}
WHERE won = 1 AND decided_at >= :start AND decided_at < :end AND created_at >= :after
  AND value_minor IS NOT NULL{mine}
GROUP BY currency
"""


# The same from the read model (``store.outcomes``), as of now.
KEPT_STAGES_SQL = """
SELECT pipeline_id, stage, won, valued, days, p_own, n FROM outcome_figures
WHERE kind = 'stage'{where}
"""
KEPT_SLIPS_SQL = """
SELECT pipeline_id, days, n FROM outcome_figures WHERE kind = 'slip'{where}
"""
KEPT_FRESH_SQL = """
SELECT currency, sum(value_minor) FROM deal_outcomes {hint}
WHERE kind = 'won' AND decided_at >= :start AND decided_at < :end AND created_at >= :after
  AND value_minor IS NOT NULL{mine}
GROUP BY currency
"""


@dataclass(slots=True)
class StageRecord:
    """How the decided deals that were in one open stage of one pipeline ended."""

    pipeline_id: int
    stage: str
    won: int = 0
    lost: int = 0
    days_won: dict[int, int] = field(default_factory=dict)  # days to the win: how many
    days_lost: dict[int, int] = field(default_factory=dict)
    untimed: int = 0  # decided, with no days (an import that could not tell)
    own: dict[int | None, list[int]] = field(default_factory=dict)  # own p: [won, lost]
    won_valued: int = 0  # of which had a value (above 0) when decided
    lost_valued: int = 0

    @property
    def decided(self) -> int:
        return self.won + self.lost

    @property
    def decided_valued(self) -> int:
        return self.won_valued + self.lost_valued


@dataclass(slots=True)
class History:
    as_of: str
    stages: dict[tuple[int, str], StageRecord]
    slips: dict[int, dict[int, int]]  # pipeline id -> {slip days: how many promises}
    fresh: dict[Any, dict[str, int]] = field(default_factory=dict)  # see ``learn``


def learn(conn: sqlite3.Connection, as_of: str, pipelines: snapshot.Pipelines,
          pipeline_id: int | None = None, since: str | None = None,
          fresh: Sequence[tuple[Any, str, str, str]] = (), owner: str | None = None,
          fresh_pipeline: int | None = None, slips: bool = True) -> History:
    """The history known at ``as_of`` (every event at or before it), under the pipelines'
    definitions in force then (``pipelines``: id -> definition, as ``all_in_force``).
    ``pipeline_id``: only the deals decided in that pipeline; ``since``: only the deals
    decided at or after that moment; ``slips=False`` leaves the promises out (calibrate does
    not show them: 3 s of its 22 s at 1M deals).

    ``fresh``: (key, start, end, after) windows: for each, the value won from ``start`` up to
    ``end`` by deals created at or after ``after`` (``History.fresh[key]``, per currency), of
    ``owner`` only when given, and of the pipeline ``fresh_pipeline`` when given."""
    sql.tune_for_reports(conn)
    if since is None and kept(conn, as_of, pipelines):
        return _learn_kept(conn, as_of, pipeline_id, fresh, owner, fresh_pipeline, slips)
    where = []
    if pipeline_id is not None:
        where.append("s.pipeline_id = :pipeline_id")
    if since is not None:
        where.append(f"(CASE WHEN {_won_now(pipelines)} THEN d.won_at ELSE s.at END) >= :since")
    hints = {"hint_moves": sql.indexed_by("events_moves"),
             "hint_kind_at": sql.indexed_by("events_kind_at"),
             "hint_deal": sql.indexed_by("events_deal")} if sql.on_sqlite(conn) else {
        "hint_moves": "", "hint_kind_at": "", "hint_deal": ""}
    select = DECIDED_SQL.format(
        won_move=snapshot.member(pipelines, snapshot.won_keys, "to_stage", "pipeline_id"),
        won_now=_won_now(pipelines), lost=LOST,
        where="".join(f"  AND {w}\n" for w in where), **hints)
    params = {"as_of": as_of, "pipeline_id": pipeline_id, "since": since, "owner": owner}
    decided = sql.scratch(conn, f"learn_{next(_names)}", select, params, index=("id",),
                          unique=True)
    if fresh:
        where_ix = "temp." if sql.on_sqlite(conn) else ""
        conn.execute(f"CREATE INDEX {where_ix}{decided}_won ON {decided} (won, decided_at)")
    try:
        open_stage = snapshot.member(pipelines, snapshot.open_keys, "x.to_stage",
                                     "x.pipeline_id")
        stages = _records(conn.execute(STAGES_SQL.format(decided=decided,
                                                         open_stage=open_stage, **hints)))
        promised: dict[int, dict[int, int]] = {}
        if slips:  # only the forecast range times deals by them
            for pid, slip, n in conn.execute(SLIPS_SQL.format(decided=decided, **hints)):
                promised.setdefault(pid, {})[slip] = n
        new: dict[Any, dict[str, int]] = {}
        mine = _mine("id", owner, fresh_pipeline)
        for key, start, end, after in fresh:
            rows = conn.execute(FRESH_SQL.format(decided=decided, mine=mine),
                                {"start": start, "end": end, "after": after, "owner": owner,
                                 "fp": fresh_pipeline})
            new[key] = {c: int(v) for c, v in rows}
    finally:
        sql.drop_scratch(conn, decided)
    return History(as_of, stages, promised, new)


def kept(conn: sqlite3.Connection, as_of: str, pipelines: snapshot.Pipelines) -> bool:
    """Whether the read model (``store.outcomes``) gives the history as of ``as_of``: the
    database has it, the read models are usable under ``pipelines`` (``readmodel.usable``),
    and no event is later than ``as_of``."""
    from pipectl.store import figures, outcomes, readmodel

    return (outcomes.present(conn) and readmodel.usable(conn, pipelines)
            and not figures.event_after(conn, as_of))


def _records(rows: Any) -> dict[tuple[int, str], StageRecord]:
    """``StageRecord``s from rows of (pipeline, stage, won, valued, days, own p, how many)."""
    stages: dict[tuple[int, str], StageRecord] = {}
    for pid, stage, won, valued, days, p_own, n in rows:
        record = stages.get((pid, stage))
        if record is None:
            record = stages[(pid, stage)] = StageRecord(pid, stage)
        if won:
            record.won += n
            record.won_valued += n if valued else 0
        else:
            record.lost += n
            record.lost_valued += n if valued else 0
        if days is None:
            record.untimed += n
        else:
            histogram = record.days_won if won else record.days_lost
            histogram[days] = histogram.get(days, 0) + n
        tally = record.own.setdefault(p_own, [0, 0])
        tally[0 if won else 1] += n
    return stages


def _learn_kept(conn: sqlite3.Connection, as_of: str, pipeline_id: int | None,
                fresh: Sequence[tuple[Any, str, str, str]], owner: str | None,
                fresh_pipeline: int | None, slips: bool) -> History:
    """``learn`` from the read model (``kept`` said it may)."""
    where = "" if pipeline_id is None else "\n  AND pipeline_id = :pipeline_id"
    p: dict[str, Any] = {"pipeline_id": pipeline_id, "owner": owner, "fp": fresh_pipeline}
    stages = _records(conn.execute(KEPT_STAGES_SQL.format(where=where), p))
    promised: dict[int, dict[int, int]] = {}
    if slips:
        for pid, slip, n in conn.execute(KEPT_SLIPS_SQL.format(where=where), p):
            promised.setdefault(pid, {})[slip] = n
    mine = where + _mine("deal_id", owner, fresh_pipeline)
    hint = sql.indexed_by("deal_outcomes_won") if sql.on_sqlite(conn) else ""
    new: dict[Any, dict[str, int]] = {}
    for key, start, end, after in fresh:
        rows = conn.execute(KEPT_FRESH_SQL.format(mine=mine, hint=hint),
                            {**p, "start": start, "end": end, "after": after})
        new[key] = {c: int(v) for c, v in rows}
    return History(as_of, stages, promised, new)


def _mine(deal: str, owner: str | None, fresh_pipeline: int | None) -> str:
    """The new-business windows' conditions: the deals (column ``deal``) of ``owner`` only
    (``:owner``), of the pipeline ``fresh_pipeline`` only (``:fp``)."""
    out = "" if owner is None else f"\n  AND {deal} IN (SELECT id FROM deals WHERE owner = :owner)"
    return out + ("" if fresh_pipeline is None else "\n  AND pipeline_id = :fp")


def first_created(conn: sqlite3.Connection) -> str | None:
    """When the history begins: the earliest ``created`` event (None: no deal yet)."""
    hint = sql.indexed_by("events_kind_at") if sql.on_sqlite(conn) else ""
    return conn.execute(
        f"SELECT min(at) FROM events {hint} WHERE kind = 'created' AND voided_by IS NULL"
    ).fetchone()[0]


def open_deals(conn: sqlite3.Connection, as_of: str, pipelines: snapshot.Pipelines,
               owner: str | None = None, pipeline_id: int | None = None) -> list[tuple]:
    """The deals open at ``as_of``, in id order: (id, pipeline id, stage, entered_at,
    value_minor, currency, close_date, own probability), from ``reports.snapshot``."""
    return snapshot.open_rows(conn, as_of, "id, pipeline_id, stage, entered_at, value_minor, "
                              "currency, close_date, probability", pipelines, owner,
                              pipeline_id)


def _won_now(pipelines: snapshot.Pipelines) -> str:
    return snapshot.member(pipelines, snapshot.won_keys, "s.to_stage", "s.pipeline_id")
