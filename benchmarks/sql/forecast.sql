-- Baseline: `pipectl forecast` (by month, its default six periods), as fast as hand-written
-- SQL computes it.
--
-- Parameters: :as_of, and :p0 ... :p6, the starts of seven consecutive months as ISO moments
-- ('2026-09-01T00:00:00Z', ...): the periods are [:p0, :p1) ... [:p5, :p6), the current one
-- is [:p3, :p4) (it holds :as_of), three are over and two in the future, as pipectl's default.
-- Figures (docs/metrics.md, "pipectl forecast"), per period and currency: the forecast (deals
-- open just before the period began whose close date then lay in it: count, without a value,
-- value and weighted value as of then; a future period's from the pipeline at :as_of), the
-- actual (deals won in the period, value as of the period's end or :as_of), the part of the
-- actual that was in the forecast, and the open deals without a close date at :as_of.
--
-- Scope: the DEFAULT PIPELINE ONLY, its 7 stages as literals (see report.sql); no --owner, no
-- --pipeline, no --in; the slipped and added deal lists are not computed (their sets follow
-- from the same columns). Money in minor units, weighted values rounded half-to-even once per
-- period and currency.
--
-- How (the fastest we found, each choice measured at 100k deals): the five snapshots
-- pipectl builds one after the other (before each begun period, and at :as_of) are one pass
-- here. A period's end snapshot is the next period's start one, so five moments cover every
-- figure. One GROUP BY over the covering index events_moves gives, per deal, its stage at
-- each moment as conditional aggregates (max(id * 8 + order) of the moves before the moment:
-- the latest move's id and its stage's order in one integer) and its first win (tested on
-- the stage's key, not on the order, whose CASE SQLite would evaluate once more per move);
-- one pass over events_kind_at gives, per deal and moment, the latest value, close-date and
-- probability events (rare); those events and the `created` event are then read by primary
-- key, for the deals that count somewhere only (open at one of the moments, or won since the
-- first period began). The figures then read that narrow table once per period, each scan
-- keeping the deals in that period's forecast or won in it and testing that period's columns
-- only (was: every deal crossed with the six periods, each row picking its period's columns
-- with CASE: 5x slower), and aggregate the few rows kept.
-- Tried and slower: the stage's order computed once per move in a subquery SQLite may not
-- flatten (a co-routine: +7 %). Aggregate FILTER clauses instead of CASE: within 4 %, noise.

DROP TABLE IF EXISTS temp.baseline_forecast;

CREATE TEMP TABLE baseline_forecast AS
WITH m AS (
    SELECT deal_id,
           min(id) AS k_created,
           max(CASE WHEN at < :p0 THEN id * 8 + o END) & 7 AS o0,
           max(CASE WHEN at < :p1 THEN id * 8 + o END) & 7 AS o1,
           max(CASE WHEN at < :p2 THEN id * 8 + o END) & 7 AS o2,
           max(CASE WHEN at < :p3 THEN id * 8 + o END) & 7 AS o3,
           max(id * 8 + o) & 7 AS o4,
           min(CASE to_stage WHEN 'won' THEN at WHEN 'post_purchase' THEN at END) AS won_at
    FROM (SELECT deal_id, id, at, to_stage,
                 CASE to_stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2
                     WHEN 'meeting' THEN 3 WHEN 'proposal' THEN 4 WHEN 'negotiation' THEN 5
                     WHEN 'won' THEN 6 WHEN 'post_purchase' THEN 7 ELSE 0 END AS o
          FROM events INDEXED BY events_moves
          WHERE to_stage IS NOT NULL AND voided_by IS NULL AND at <= :as_of)
    GROUP BY deal_id
),
ch AS (
    SELECT deal_id,
           max(CASE WHEN kind = 'value' AND at < :p0 THEN id END) AS v0,
           max(CASE WHEN kind = 'value' AND at < :p1 THEN id END) AS v1,
           max(CASE WHEN kind = 'value' AND at < :p2 THEN id END) AS v2,
           max(CASE WHEN kind = 'value' AND at < :p3 THEN id END) AS v3,
           max(CASE WHEN kind = 'value' THEN id END) AS v4,
           max(CASE WHEN kind = 'close_date' AND at < :p0 THEN id END) AS c0,
           max(CASE WHEN kind = 'close_date' AND at < :p1 THEN id END) AS c1,
           max(CASE WHEN kind = 'close_date' AND at < :p2 THEN id END) AS c2,
           max(CASE WHEN kind = 'close_date' AND at < :p3 THEN id END) AS c3,
           max(CASE WHEN kind = 'close_date' THEN id END) AS c4,
           max(CASE WHEN kind = 'probability' AND at < :p0 THEN id END) AS q0,
           max(CASE WHEN kind = 'probability' AND at < :p1 THEN id END) AS q1,
           max(CASE WHEN kind = 'probability' AND at < :p2 THEN id END) AS q2,
           max(CASE WHEN kind = 'probability' AND at < :p3 THEN id END) AS q3,
           max(CASE WHEN kind = 'probability' THEN id END) AS q4
    FROM events INDEXED BY events_kind_at
    WHERE kind IN ('value', 'close_date', 'probability') AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
)
SELECT m.deal_id AS id, m.o0, m.o1, m.o2, m.o3, m.o4,
       CASE WHEN m.o4 >= 6 THEN m.won_at END AS won_at,
       CASE WHEN ch.v0 IS NULL THEN cr.value_minor ELSE v0.value_minor END AS val0,
       CASE WHEN ch.v1 IS NULL THEN cr.value_minor ELSE v1.value_minor END AS val1,
       CASE WHEN ch.v2 IS NULL THEN cr.value_minor ELSE v2.value_minor END AS val2,
       CASE WHEN ch.v3 IS NULL THEN cr.value_minor ELSE v3.value_minor END AS val3,
       CASE WHEN ch.v4 IS NULL THEN cr.value_minor ELSE v4.value_minor END AS val4,
       CASE WHEN ch.v0 IS NULL THEN cr.currency ELSE v0.currency END AS cur0,
       CASE WHEN ch.v1 IS NULL THEN cr.currency ELSE v1.currency END AS cur1,
       CASE WHEN ch.v2 IS NULL THEN cr.currency ELSE v2.currency END AS cur2,
       CASE WHEN ch.v3 IS NULL THEN cr.currency ELSE v3.currency END AS cur3,
       CASE WHEN ch.v4 IS NULL THEN cr.currency ELSE v4.currency END AS cur4,
       CASE WHEN ch.c0 IS NULL THEN cr.close_date ELSE c0.close_date END AS close0,
       CASE WHEN ch.c1 IS NULL THEN cr.close_date ELSE c1.close_date END AS close1,
       CASE WHEN ch.c2 IS NULL THEN cr.close_date ELSE c2.close_date END AS close2,
       CASE WHEN ch.c3 IS NULL THEN cr.close_date ELSE c3.close_date END AS close3,
       CASE WHEN ch.c4 IS NULL THEN cr.close_date ELSE c4.close_date END AS close4,
       CASE WHEN ch.q0 IS NULL THEN cr.probability ELSE q0.probability END AS prob0,
       CASE WHEN ch.q1 IS NULL THEN cr.probability ELSE q1.probability END AS prob1,
       CASE WHEN ch.q2 IS NULL THEN cr.probability ELSE q2.probability END AS prob2,
       CASE WHEN ch.q3 IS NULL THEN cr.probability ELSE q3.probability END AS prob3,
       CASE WHEN ch.q4 IS NULL THEN cr.probability ELSE q4.probability END AS prob4
FROM m
JOIN events cr ON cr.id = m.k_created
LEFT JOIN ch ON ch.deal_id = m.deal_id
LEFT JOIN events v0 ON v0.id = ch.v0 LEFT JOIN events v1 ON v1.id = ch.v1
LEFT JOIN events v2 ON v2.id = ch.v2 LEFT JOIN events v3 ON v3.id = ch.v3
LEFT JOIN events v4 ON v4.id = ch.v4
LEFT JOIN events c0 ON c0.id = ch.c0 LEFT JOIN events c1 ON c1.id = ch.c1
LEFT JOIN events c2 ON c2.id = ch.c2 LEFT JOIN events c3 ON c3.id = ch.c3
LEFT JOIN events c4 ON c4.id = ch.c4
LEFT JOIN events q0 ON q0.id = ch.q0 LEFT JOIN events q1 ON q1.id = ch.q1
LEFT JOIN events q2 ON q2.id = ch.q2 LEFT JOIN events q3 ON q3.id = ch.q3
LEFT JOIN events q4 ON q4.id = ch.q4
-- a deal neither open at one of the five moments nor won since :p0 counts in no figure
WHERE m.o0 BETWEEN 1 AND 5 OR m.o1 BETWEEN 1 AND 5 OR m.o2 BETWEEN 1 AND 5
   OR m.o3 BETWEEN 1 AND 5 OR m.o4 BETWEEN 1 AND 5 OR m.won_at >= :p0;

-- Each deal's place in each period: snapshot j (0-3: before period j began; 4: :as_of) gives
-- its forecast (periods 4 and 5 are forecast from :as_of); the actual of period j is valued at
-- its end, snapshot j + 1 (the current period, 3: :as_of). One SELECT per period, each a scan
-- of the narrow table that keeps only the deals in its forecast or won in it, so that each
-- test runs once per deal and period on the columns of that period alone.
WITH marked AS MATERIALIZED (
    SELECT 0 AS j, :p0 AS ps, val0 AS val, cur0 AS cur, val1 AS end_val,
           cur1 AS end_cur, won_at >= :p0 AND won_at < :p1 AS won,
           o0 BETWEEN 1 AND 5 AND close0 >= substr(:p0, 1, 10)
               AND close0 < substr(:p1, 1, 10) AS fc,
           val0 * coalesce(prob0, CASE o0 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
    UNION ALL
    SELECT 1 AS j, :p1 AS ps, val1 AS val, cur1 AS cur, val2 AS end_val,
           cur2 AS end_cur, won_at >= :p1 AND won_at < :p2 AS won,
           o1 BETWEEN 1 AND 5 AND close1 >= substr(:p1, 1, 10)
               AND close1 < substr(:p2, 1, 10) AS fc,
           val1 * coalesce(prob1, CASE o1 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
    UNION ALL
    SELECT 2 AS j, :p2 AS ps, val2 AS val, cur2 AS cur, val3 AS end_val,
           cur3 AS end_cur, won_at >= :p2 AND won_at < :p3 AS won,
           o2 BETWEEN 1 AND 5 AND close2 >= substr(:p2, 1, 10)
               AND close2 < substr(:p3, 1, 10) AS fc,
           val2 * coalesce(prob2, CASE o2 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
    UNION ALL
    SELECT 3 AS j, :p3 AS ps, val3 AS val, cur3 AS cur, val4 AS end_val,
           cur4 AS end_cur, won_at >= :p3 AND won_at < :p4 AS won,
           o3 BETWEEN 1 AND 5 AND close3 >= substr(:p3, 1, 10)
               AND close3 < substr(:p4, 1, 10) AS fc,
           val3 * coalesce(prob3, CASE o3 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
    UNION ALL
    SELECT 4 AS j, :p4 AS ps, val4 AS val, cur4 AS cur, NULL AS end_val,
           NULL AS end_cur, 0 AS won,
           o4 BETWEEN 1 AND 5 AND close4 >= substr(:p4, 1, 10)
               AND close4 < substr(:p5, 1, 10) AS fc,
           val4 * coalesce(prob4, CASE o4 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
    UNION ALL
    SELECT 5 AS j, :p5 AS ps, val4 AS val, cur4 AS cur, NULL AS end_val,
           NULL AS end_cur, 0 AS won,
           o4 BETWEEN 1 AND 5 AND close4 >= substr(:p5, 1, 10)
               AND close4 < substr(:p6, 1, 10) AS fc,
           val4 * coalesce(prob4, CASE o4 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                   WHEN 4 THEN 60 ELSE 80 END) AS w
    FROM baseline_forecast WHERE fc OR won
),
agg AS (
    SELECT 'forecast' AS figure, j, ps, cur AS currency, count(*) AS deals,
           sum(val IS NULL) AS without_value, sum(val) AS value, sum(w) AS w
    FROM marked WHERE fc GROUP BY j, cur
    UNION ALL
    SELECT 'actual', j, ps, end_cur, count(*), sum(end_val IS NULL), sum(end_val), NULL
    FROM marked WHERE won GROUP BY j, end_cur
    UNION ALL
    SELECT 'from_forecast', j, ps, end_cur, count(*), sum(end_val IS NULL), sum(end_val), NULL
    FROM marked WHERE won AND fc GROUP BY j, end_cur
)
SELECT figure, substr(ps, 1, 7) AS period, currency, deals, without_value, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted
FROM agg;

-- The open deals without a close date at :as_of.
SELECT 'no_close_date' AS figure, NULL AS period, currency, deals, without_value, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted
FROM (
    SELECT cur4 AS currency, count(*) AS deals, sum(val4 IS NULL) AS without_value,
           sum(val4) AS value,
           sum(val4 * coalesce(prob4, CASE o4 WHEN 1 THEN 10 WHEN 2 THEN 20 WHEN 3 THEN 40
                                              WHEN 4 THEN 60 ELSE 80 END)) AS w
    FROM baseline_forecast WHERE o4 BETWEEN 1 AND 5 AND close4 IS NULL
    GROUP BY cur4
);
