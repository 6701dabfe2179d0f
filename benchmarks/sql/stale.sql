-- Baseline: `pipectl stale` (default thresholds), as fast as hand-written SQL computes it.
--
-- Parameters: :as_of, :limit (-1 for all). Figures (docs/metrics.md, "pipectl stale"): the
-- deals open at :as_of whose latest event of any kind at or before it is more than 14 days
-- (every default stage's rot_days is unset: 14) before :as_of, oldest first, then by id, at
-- most :limit of them, each with its stage, value and currency as of :as_of, its last event,
-- idle days (rounded to 2 decimals, as pipectl's SQL rounds them) and threshold; and `total`,
-- how many are stale in all (on every row).
--
-- Scope: the DEFAULT PIPELINE ONLY, its 7 stages as literals (see report.sql); no --owner, no
-- --days.
--
-- How: one GROUP BY over the covering index events_moves (deal order, no table rows read)
-- gives each deal's stage at :as_of (max(id * 8 + order): the latest move's id and its
-- stage's order in one integer) and its `created` event; for the open deals only, the latest
-- event of any kind is one seek into the covering index events_deal (deal_id, at, id) (a
-- min/max lookup, no table row). Value and currency are read for the listed deals only.

WITH m AS (
    SELECT deal_id,
           min(id) AS k_created,
           max(id * 8 + CASE to_stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2
               WHEN 'meeting' THEN 3 WHEN 'proposal' THEN 4 WHEN 'negotiation' THEN 5
               WHEN 'won' THEN 6 WHEN 'post_purchase' THEN 7 ELSE 0 END) & 7 AS o
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND at <= :as_of
    GROUP BY deal_id
),
open AS (
    SELECT deal_id, k_created, o,
           (SELECT max(e.at) FROM events e INDEXED BY events_deal
            WHERE e.deal_id = m.deal_id AND e.at <= :as_of) AS last_at
    FROM m WHERE o BETWEEN 1 AND 5
),
stale AS (
    SELECT deal_id, k_created, o, last_at, count(*) OVER () AS total
    FROM open
    WHERE julianday(:as_of) - julianday(last_at) > 14
    ORDER BY last_at, deal_id
    LIMIT :limit
),
listed AS (
    SELECT s.*,
           (SELECT max(e.id) FROM events e INDEXED BY events_deal
            WHERE e.deal_id = s.deal_id AND e.at <= :as_of AND e.kind = 'value') AS k_value
    FROM stale s
)
SELECT 'stale' AS figure, l.deal_id AS id, d.name, d.owner,
       CASE l.o WHEN 1 THEN 'prospecting' WHEN 2 THEN 'qualification' WHEN 3 THEN 'meeting'
                WHEN 4 THEN 'proposal' ELSE 'negotiation' END AS stage,
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
