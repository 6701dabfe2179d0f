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
-- How (the fastest we found, each choice measured at 100k deals; SQLite's cost here is mostly
-- per aggregate call and per expression evaluated, per event and per deal):
-- * one pass over the covering partial index events_moves (deal_id, at, to_stage, ...) WHERE
--   to_stage IS NOT NULL: already in deal order, so GROUP BY deal_id needs no sort and no
--   table row is read. Per deal it yields the first move (the `created` event's id), the
--   latest move AND its stage in one integer (max(id * 8 + order): a deal's events are
--   appended in time order, so the largest id is the latest), the furthest stage, the last
--   move's time (a lost deal's loss), the first qualifying move and the first win. The two
--   "first" moves test the stage with CASE rather than IN lists (10 % of the pass). Tried
--   and slower: the stage's order computed once in a subquery that SQLite may not flatten (a
--   co-routine: +15 %); the lost deals' loss time read by primary key instead of max(at)
--   (one aggregate less, but 59k lookups cost more than it saves);
-- * one small pass over events_kind_at for the rare `value` / `probability` events, joined
--   to the open deals only (a closed deal's value counts in no figure here);
-- * the `created` event read by primary key (its time, value, currency, probability, the
--   pre-qualification reason and what an import could not tell), the latest value /
--   probability event likewise when there is one;
-- * one narrow TEMP table of one row per deal that holds what the figures test, each test
--   made once (in the window or not: 0/1 flags; the cycle's length only for the deals it
--   counts), so the counts are 17 sums of small integers (was: the same moment compared
--   with the window in up to 8 sums, 1.8x slower), the pipeline one GROUP BY of the open deals
--   whose total per currency adds up its few stage rows (not a second GROUP BY), and the
--   median one sort of the won deals, read with LIMIT / OFFSET (no window functions).
--   Tried and slower: counting GROUP BY the flags (a sort of every deal: 1.4x the 17 sums).
-- A full scan of `events` with GROUP BY deal_id must sort every event (2-3x the pass over
-- events_moves); reading events through events_deal costs a table lookup per event.

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
           min(CASE to_stage WHEN 'prospecting' THEN NULL WHEN 'qualification' THEN NULL
                             WHEN 'lost' THEN NULL ELSE at END) AS q_at,
           min(CASE to_stage WHEN 'won' THEN at WHEN 'post_purchase' THEN at END) AS won_at
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
),
ch AS (
    SELECT deal_id,
           max(CASE WHEN kind = 'value' THEN id END) AS k_value,
           max(CASE WHEN kind = 'probability' THEN id END) AS k_prob
    FROM events INDEXED BY events_kind_at
    WHERE kind IN ('value', 'probability') AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
)
SELECT m.o, m.reached,
       cr.at >= :ws AND cr.at < :we AS created_in,
       coalesce(CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE m.q_at END >= :ws
                AND CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE m.q_at END < :we, 0)
           AS qualified_in,
       m.o >= 6 AND m.won_at >= :ws AND m.won_at < :we AS won_in,
       m.o = 0 AND m.last_move_at >= :ws AND m.last_move_at < :we AS lost_in,
       CASE WHEN m.o >= 6 AND m.won_at >= :ws AND m.won_at < :we
             AND (cr.field IS NOT 'unknown' OR cr.new IS NULL
                  OR (instr(cr.new, 'created_at') = 0 AND instr(cr.new, 'closed_at') = 0))
            THEN (julianday(m.won_at) - julianday(cr.at)) * 86400 END AS cycle,
       CASE WHEN ch.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
       CASE WHEN ch.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
       coalesce(CASE WHEN ch.k_prob IS NULL THEN cr.probability ELSE p.probability END,
                CASE m.o WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40 WHEN 4 THEN 60
                         ELSE 80 END) AS pct
FROM m
JOIN events cr ON cr.id = m.k_created
LEFT JOIN ch ON ch.deal_id = m.deal_id AND m.o BETWEEN 1 AND 5
LEFT JOIN events v ON v.id = ch.k_value
LEFT JOIN events p ON p.id = ch.k_prob;

-- Deals by status, flows, close rate, win rate and the funnel, in one pass.
SELECT 'counts' AS figure,
       count(*) AS total,
       sum(o BETWEEN 1 AND 5) AS open,
       sum(o >= 6) AS won,
       sum(o = 0) AS lost,
       sum(created_in) AS created,
       sum(qualified_in) AS qualified,
       sum(qualified_in AND o >= 6) AS qualified_won,
       sum(won_in) AS won_in_window,
       sum(lost_in) AS lost_in_window,
       sum(created_in AND reached >= 1) AS reached_1,
       sum(created_in AND reached >= 2) AS reached_2,
       sum(created_in AND reached >= 3) AS reached_3,
       sum(created_in AND reached >= 4) AS reached_4,
       sum(created_in AND reached >= 5) AS reached_5,
       sum(created_in AND reached >= 6) AS reached_6,
       sum(created_in AND reached >= 7) AS reached_7
FROM baseline_report;

-- Pipeline per open stage and currency (stage 'total': every open deal), weighted value
-- rounded half-to-even once from the exact sum of value x percent.
WITH s AS (
    SELECT o, currency, count(*) AS deals, sum(value_minor IS NULL) AS without_value,
           sum(value_minor) AS value, sum(value_minor * pct) AS w
    FROM baseline_report WHERE o BETWEEN 1 AND 5
    GROUP BY o, currency
)
SELECT 'pipeline' AS figure, stage, currency, deals, without_value, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted
FROM (
    SELECT CASE o WHEN 1 THEN 'prospecting' WHEN 2 THEN 'qualification' WHEN 3 THEN 'meeting'
                  WHEN 4 THEN 'proposal' ELSE 'negotiation' END AS stage,
           currency, deals, without_value, value, w
    FROM s
    UNION ALL
    SELECT 'total', currency, sum(deals), sum(without_value), sum(value), sum(w)
    FROM s GROUP BY currency
);

-- Sales cycle of the deals won in the window (those whose import could not tell when they
-- began or closed left out): median and mean, in days.
WITH n AS (SELECT count(cycle) AS n, avg(cycle) AS mean FROM baseline_report)
SELECT 'cycle' AS figure, n AS deals,
       (SELECT avg(cycle) FROM (
            SELECT cycle FROM baseline_report WHERE cycle IS NOT NULL ORDER BY cycle
            LIMIT 2 - (SELECT n FROM n) % 2 OFFSET ((SELECT n FROM n) - 1) / 2)) / 86400
           AS median_days,
       mean / 86400 AS mean_days
FROM n;
