"""The pipeline as it stood at a moment, reconstructed from ``events`` alone.

``build(conn, as_of)`` fills a TEMP table with one row per deal that existed at ``as_of``: its
stage, value, currency, close date and probability as of then (the latest event of each kind at
or before ``as_of``; the ``created`` event carries the initial ones), when it became qualified,
was won or lost, the furthest stage it had reached, and its last event. Nothing later than
``as_of`` is read. One pass over ``events`` (GROUP BY deal) finds, per deal, the id of the last
event of each kind, then those events are read by primary key. The reports aggregate this table
in SQL.

"Last" is the largest id: a deal's events are appended in time order (``rules.check_time``
refuses an event dated before the deal's latest one, and an import must write each deal's
history oldest first), so within one deal id order is time order. This keeps the pass cheap
(comparing ``at || id`` strings costs ~0.2 s per event kind at 100,000 deals).

The ``deals`` table (the current-state projection) is used only for the name and the owner.
"""

from __future__ import annotations

import sqlite3
from itertools import count

from pipectl import stages
from pipectl.stages import Kind

MOVE_KINDS = "('created', 'stage', 'lost', 'reopened')"
OPEN = "(" + ", ".join(f"'{s}'" for s in stages.OPEN_STAGES) + ")"
WON = "(" + ", ".join(f"'{s.key}'" for s in stages.PIPELINE if s.kind is Kind.WON) + ")"
QUALIFIED = "(" + ", ".join(f"'{s}'" for s in stages.LINE if stages.is_qualified_stage(s)) + ")"


def order_sql(column: str) -> str:
    """The stage's position on the line (lost and NULL: 0)."""
    whens = " ".join(f"WHEN '{s.key}' THEN {s.order}" for s in stages.PIPELINE)
    return f"(CASE {column} {whens} ELSE 0 END)"


def kind_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{s.key}' THEN '{s.kind.value}'" for s in stages.PIPELINE)
    return f"(CASE {column} {whens} END)"


def default_probability_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{s.key}' THEN {s.probability}" for s in stages.PIPELINE)
    return f"(CASE {column} {whens} END)"


def _id(key: str) -> str:
    return f"a.{key}"


SNAPSHOT_SQL = f"""
WITH m AS (
    SELECT
        deal_id,
        min(id) AS k_created,
        max(id) AS k_stage,
        min(CASE WHEN to_stage IN {WON} THEN at END) AS won_at{{funnel_aggregates}}
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND at <= :as_of
    GROUP BY deal_id
),
ch AS (
    SELECT
        deal_id,
        max(CASE WHEN kind = 'value' THEN id END) AS k_value,
        max(CASE WHEN kind = 'close_date' THEN id END) AS k_close,
        max(CASE WHEN kind = 'probability' THEN id END) AS k_prob
    FROM events INDEXED BY events_kind_at
    WHERE kind IN ('value', 'close_date', 'probability') AND at <= :as_of
    GROUP BY deal_id
)
SELECT
    m.deal_id AS id,
    {{deal_columns}}
    cr.at AS created_at,
    s.to_stage AS stage,
    {kind_sql("s.to_stage")} AS status,
    s.at AS entered_at,
    CASE WHEN s.to_stage = 'lost' THEN s.from_stage END AS lost_stage,
    CASE WHEN s.to_stage = 'lost' THEN s.reason END AS lost_reason,
    CASE WHEN s.to_stage = 'lost' THEN s.at
         WHEN s.to_stage IN {WON} THEN m.won_at END AS decided_at,
    CASE WHEN s.to_stage IN {WON} THEN m.won_at END AS won_at,{{funnel_columns}}
    CASE WHEN ch.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
    CASE WHEN ch.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
    CASE WHEN ch.k_close IS NULL THEN cr.close_date ELSE c.close_date END AS close_date,
    CASE WHEN ch.k_prob IS NULL THEN cr.probability ELSE p.probability END AS probability
FROM m
{{deal_join}}
JOIN events cr ON cr.id = m.k_created
JOIN events s ON s.id = m.k_stage
LEFT JOIN ch ON ch.deal_id = m.deal_id
LEFT JOIN events v ON v.id = ch.k_value
LEFT JOIN events c ON c.id = ch.k_close
LEFT JOIN events p ON p.id = ch.k_prob
"""

# When each deal became qualified and the furthest stage it reached: the report's funnel and
# close rate need them; the forecast does not (two CASEs per move less: ~25 % of a snapshot).
FUNNEL_AGGREGATES = f""",
        min(CASE WHEN to_stage IN {QUALIFIED} THEN at END) AS qualified_at,
        max({order_sql("to_stage")}) AS reached"""
FUNNEL_COLUMNS = """
    CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE m.qualified_at END AS qualified_at,
    m.reached AS reached,"""

# Added to a snapshot for `stale` and `next` only: each deal's latest event (any kind) and its
# latest logged next action, as of the moment.
ACTIVITY_SQL = """
UPDATE {table} SET
    last_event_at = (
        SELECT max(e.at) FROM events e INDEXED BY events_deal
        WHERE e.deal_id = {table}.id AND e.at <= :as_of
    ),
    next_event = (
        SELECT max(e.id) FROM events e INDEXED BY events_deal
        WHERE e.deal_id = {table}.id AND e.at <= :as_of AND e.kind = 'note'
          AND (e.next_action IS NOT NULL OR e.due IS NOT NULL)
    )
WHERE status = 'open'
"""

_names = count(1)


def build(
    conn: sqlite3.Connection,
    as_of: str,
    owner: str | None = None,
    activity: bool = False,
    names: bool = False,
    funnel: bool = True,
) -> str:
    """Create a TEMP table with the snapshot at ``as_of`` (ISO UTC); returns its name.

    The table lives in the connection's temp schema (never in the database file) until
    ``drop`` or the connection closes. ``activity`` adds ``last_event_at`` and
    ``next_event`` (the id of the latest note with a next action) to the open deals;
    ``names`` adds each deal's ``name`` and ``owner`` (from ``deals``); ``funnel=False``
    leaves out ``qualified_at`` and ``reached``.
    """
    table = f"snap_{next(_names)}"
    # Scratch tables go to a temp file (the OS caches it): as fast as in memory, and the
    # process stays small (1M deals: 92 MB against 560 MB; docs/performance.md, issue 6).
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute("PRAGMA cache_size = -16384")  # KiB: 16 MiB for this connection
    params = {"as_of": as_of, "owner": owner}
    join = "JOIN deals d ON d.id = m.deal_id" if names or owner is not None else ""
    if owner is not None:
        join += " AND d.owner = :owner"
    sql = SNAPSHOT_SQL.format(
        deal_columns="d.name AS name, d.owner AS owner," if names else "",
        deal_join=join,
        funnel_aggregates=FUNNEL_AGGREGATES if funnel else "",
        funnel_columns=FUNNEL_COLUMNS if funnel else "",
    )
    conn.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
    conn.execute(f"CREATE UNIQUE INDEX temp.{table}_id ON {table} (id)")
    if activity:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN last_event_at TEXT")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN next_event INTEGER")
        conn.execute(ACTIVITY_SQL.format(table=table), {"as_of": as_of})
    return table


def drop(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
