-- Baseline: `pipectl stale` (default thresholds), as fast as hand-written SQL computes it.
--
-- Parameters: :as_of, :limit (-1 for all). Figures (docs/metrics.md, "pipectl stale"): the
-- deals open at :as_of whose latest event of any kind at or before it is more than 14 days
-- (every default stage's rot_days is unset: 14) before :as_of, oldest first, then by id, at
-- most :limit of them, each with its stage, value and currency as of :as_of, its last event,
-- idle days (rounded to 2 decimals, as pipectl's SQL rounds them) and threshold; and `total`,
-- how many are stale in all (on every row).
--
-- Scope: the DEFAULT PIPELINE ONLY, its 5 open stages as literals (see report.sql); no
-- --owner, no --days.
--
-- How (the fastest we found, measured at 100k deals):
-- * each deal's stage at :as_of is its latest move's: one GROUP BY over the covering partial
--   index events_moves (deal_id, at, to_stage, ...), already in deal order (no sort, no table
--   row), with ONE aggregate, max(id), and to_stage as a bare column: SQLite documents that
--   with a single max() a bare column takes its value from the row holding the maximum (a
--   deal's events are appended in time order, so its largest id is its latest). Each further
--   aggregate of that pass costs about a fifth of it: as this file did before, the `created`
--   event's min(id) and the stage's order packed into max(id * 8 + order) made the pass
--   58 -> 71 ms (CPU, 100k deals);
-- * for the open deals only, the latest event of any kind is one seek into the covering
--   index events_deal (deal_id, at, id): a max() lookup, no table row, done once per deal
--   (the CTE is MATERIALIZED: flattened, SQLite ran the seek twice per deal, -10 %). A
--   GROUP BY over all of events_deal instead reads every deal's events (3x the seeks);
-- * the `created` event (for the value and currency, unless a `value` event changed them) and
--   the latest `value` event are looked up for the :limit listed deals only.

WITH latest AS (
    SELECT deal_id, max(id) AS k_latest, to_stage AS stage
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
),
open AS MATERIALIZED (  -- once: the filter and the sort below read last_at, which a
    -- flattened CTE would seek again for each (SQLite copies the subquery into both)
    SELECT deal_id, stage,
           (SELECT max(e.at) FROM events e INDEXED BY events_deal
            WHERE e.deal_id = latest.deal_id AND e.at <= :as_of AND e.voided_by IS NULL) AS last_at
    FROM latest
    WHERE stage IN ('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')
),
stale AS (
    SELECT deal_id, stage, last_at, count(*) OVER () AS total
    FROM open
    WHERE julianday(:as_of) - julianday(last_at) > 14
    ORDER BY last_at, deal_id
    LIMIT :limit
),
listed AS (
    SELECT s.*,
           (SELECT min(e.id) FROM events e INDEXED BY events_moves
            WHERE e.deal_id = s.deal_id AND e.to_stage IS NOT NULL AND e.voided_by IS NULL) AS k_created,
           (SELECT max(e.id) FROM events e INDEXED BY events_deal
            WHERE e.deal_id = s.deal_id AND e.at <= :as_of AND e.kind = 'value'
              AND e.voided_by IS NULL) AS k_value
    FROM stale s
)
SELECT 'stale' AS figure, l.deal_id AS id, d.name, d.owner, l.stage,
       CASE WHEN l.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
       CASE WHEN l.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
       l.last_at AS last_event_at,
       round(julianday(:as_of) - julianday(l.last_at), 2) AS idle_days,
       14 AS threshold_days,
       l.total
FROM listed l
JOIN deals d ON d.id = l.deal_id
JOIN events cr ON cr.id = l.k_created
LEFT JOIN events v ON v.id = l.k_value
ORDER BY l.last_at, l.deal_id;
