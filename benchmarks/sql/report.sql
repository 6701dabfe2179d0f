-- Baseline: `pipectl report`'s core figures, as fast as hand-written SQL computes them.
--
-- Figures (docs/metrics.md, "pipectl report"): deals by status; pipeline value and weighted
-- value per open stage and currency, and in total; close rate; win rate; stage conversion
-- (the funnel's reached counts); sales cycle (median and mean). As of :as_of, over the window
-- [:ws, :we) (ISO moments; all time: '0000-00-00T00:00:00Z' and '9999-99-99T99:99:99Z', as
-- pipectl binds them).
--
-- Scope: the DEFAULT PIPELINE ONLY, with its 7 stages written in as literals (order 1-7:
-- prospecting, qualification, meeting, proposal, negotiation, won, post_purchase; lost = 0;
-- the gate is qualification, so meeting and later are qualified; probabilities 10/20/40/60/80).
-- A database with other pipelines, or a changed default pipeline, needs other literals. No
-- --owner, no --in. Sums are SQLite's sum(): an integer overflow is an error, never a wrong
-- figure (pipectl sums in two halves to go past 2^63).
--
-- Money is in minor units; weighted values are rounded half-to-even once (per stage, and the
-- total from its exact sum); days are unrounded (pipectl's JSON shows them rounded to 2
-- decimals). Every row starts with `figure`.
--
-- How (why this is the fastest we found):
-- * one pass over the covering partial index events_moves (deal_id, at, to_stage, ...) WHERE
--   to_stage IS NOT NULL: already in deal order, so GROUP BY deal_id needs no sort and no
--   table row is read. Per deal it yields the first move (the `created` event's id), the
--   latest move AND its stage in one integer (max(id * 8 + order): a deal's events are
--   appended in time order, so the largest id is the latest), the furthest stage, the last
--   move's time (a lost deal's loss), the first qualifying move and the first win;
-- * one small pass over events_kind_at for the rare `value` / `probability` events;
-- * the `created` event read by primary key (its value, currency, probability, and the
--   pre-qualification reason), the latest value / probability event likewise when there is one;
-- * one narrow TEMP table of one row per deal, then a few aggregates over it (the median along
--   one sort of the deals won in the window).
-- A full scan of `events` with GROUP BY deal_id must sort every event (3-4x slower at 100k
-- deals); reading events through events_deal costs a table lookup per event (about as slow).

DROP TABLE IF EXISTS temp.baseline_report;

CREATE TEMP TABLE baseline_report AS
WITH m AS (
    SELECT deal_id,
           min(id) AS k_created,
           max(id * 8 + CASE to_stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2
               WHEN 'meeting' THEN 3 WHEN 'proposal' THEN 4 WHEN 'negotiation' THEN 5
               WHEN 'won' THEN 6 WHEN 'post_purchase' THEN 7 ELSE 0 END) & 7 AS o,
           max(CASE to_stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2
               WHEN 'meeting' THEN 3 WHEN 'proposal' THEN 4 WHEN 'negotiation' THEN 5
               WHEN 'won' THEN 6 WHEN 'post_purchase' THEN 7 ELSE 0 END) AS reached,
           max(at) AS last_move_at,
           min(CASE WHEN to_stage IN ('meeting', 'proposal', 'negotiation', 'won',
                                      'post_purchase') THEN at END) AS q_at,
           min(CASE WHEN to_stage IN ('won', 'post_purchase') THEN at END) AS won_at
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND at <= :as_of
    GROUP BY deal_id
),
ch AS (
    SELECT deal_id,
           max(CASE WHEN kind = 'value' THEN id END) AS k_value,
           max(CASE WHEN kind = 'probability' THEN id END) AS k_prob
    FROM events INDEXED BY events_kind_at
    WHERE kind IN ('value', 'probability') AND at <= :as_of
    GROUP BY deal_id
)
SELECT m.o AS o,
       m.reached AS reached,
       cr.at AS created_at,
       CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE m.q_at END AS qualified_at,
       CASE WHEN m.o >= 6 THEN m.won_at END AS won_at,
       CASE WHEN m.o = 0 THEN m.last_move_at END AS lost_at,
       CASE WHEN cr.field = 'unknown' THEN cr.new END AS unknown,
       CASE WHEN ch.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
       CASE WHEN ch.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
       CASE WHEN m.o BETWEEN 1 AND 5 THEN
           coalesce(CASE WHEN ch.k_prob IS NULL THEN cr.probability ELSE p.probability END,
                    CASE m.o WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40 WHEN 4 THEN 60
                             ELSE 80 END) END AS pct
FROM m
JOIN events cr ON cr.id = m.k_created
LEFT JOIN ch ON ch.deal_id = m.deal_id
LEFT JOIN events v ON v.id = ch.k_value
LEFT JOIN events p ON p.id = ch.k_prob;

-- Deals by status, flows, close rate, win rate and the funnel, in one pass.
SELECT 'counts' AS figure,
       count(*) AS total,
       sum(o BETWEEN 1 AND 5) AS open,
       sum(o >= 6) AS won,
       sum(o = 0) AS lost,
       sum(created_at >= :ws AND created_at < :we) AS created,
       sum(qualified_at >= :ws AND qualified_at < :we) AS qualified,
       sum(qualified_at >= :ws AND qualified_at < :we AND o >= 6) AS qualified_won,
       sum(won_at >= :ws AND won_at < :we) AS won_in_window,
       sum(lost_at >= :ws AND lost_at < :we) AS lost_in_window,
       sum(created_at >= :ws AND created_at < :we AND reached >= 1) AS reached_1,
       sum(created_at >= :ws AND created_at < :we AND reached >= 2) AS reached_2,
       sum(created_at >= :ws AND created_at < :we AND reached >= 3) AS reached_3,
       sum(created_at >= :ws AND created_at < :we AND reached >= 4) AS reached_4,
       sum(created_at >= :ws AND created_at < :we AND reached >= 5) AS reached_5,
       sum(created_at >= :ws AND created_at < :we AND reached >= 6) AS reached_6,
       sum(created_at >= :ws AND created_at < :we AND reached >= 7) AS reached_7
FROM baseline_report;

-- Pipeline per open stage and currency (stage 'total': every open deal), weighted value
-- rounded half-to-even once from the exact sum of value x percent.
SELECT 'pipeline' AS figure, stage, currency, deals, without_value, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted
FROM (
    SELECT CASE o WHEN 1 THEN 'prospecting' WHEN 2 THEN 'qualification' WHEN 3 THEN 'meeting'
                  WHEN 4 THEN 'proposal' ELSE 'negotiation' END AS stage,
           currency, count(*) AS deals, sum(value_minor IS NULL) AS without_value,
           sum(value_minor) AS value, sum(value_minor * pct) AS w
    FROM baseline_report WHERE o BETWEEN 1 AND 5
    GROUP BY o, currency
    UNION ALL
    SELECT 'total', currency, count(*), sum(value_minor IS NULL), sum(value_minor),
           sum(value_minor * pct)
    FROM baseline_report WHERE o BETWEEN 1 AND 5
    GROUP BY currency
);

-- Sales cycle of the deals won in the window (those whose import could not tell when they
-- began or closed left out): median and mean, in days.
WITH c AS (
    SELECT (julianday(won_at) - julianday(created_at)) * 86400 AS s
    FROM baseline_report
    WHERE won_at >= :ws AND won_at < :we
      AND (unknown IS NULL OR (instr(unknown, 'created_at') = 0
                               AND instr(unknown, 'closed_at') = 0))
),
r AS (
    SELECT s, row_number() OVER (ORDER BY s) AS k, count(*) OVER () AS n,
           avg(s) OVER () AS mean
    FROM c
)
SELECT 'cycle' AS figure, coalesce(max(n), 0) AS deals, avg(s) / 86400 AS median_days,
       max(mean) / 86400 AS mean_days
FROM r WHERE k IN ((n + 1) / 2, (n + 2) / 2);
