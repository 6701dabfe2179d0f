-- Baseline: `pipectl board` (the default pipeline's board), as fast as hand-written SQL
-- computes it.
--
-- Parameters: :per_stage (the top deals listed per stage; pipectl's default 8). Figures:
-- per open stage of the default pipeline, and per currency, the open deals' count, value and
-- weighted value (value x the deal's own probability, else its stage's, summed exactly and
-- rounded half-to-even once per stage and currency), and the stage's top :per_stage deals:
-- the largest of each currency in turn (currencies in code order), deals without a value
-- last, then id (rank = `place`).
--
-- The board is the current state, not an as-of figure: like pipectl it reads the `deals`
-- table (the projection of the events that every write keeps up to date), never the history.
--
-- Scope: the DEFAULT PIPELINE ONLY, its 5 open stages and their probabilities as literals;
-- no --owner, no --in.
--
-- How: one range of the index deals_stage_owner (pipeline_id, stage, ...) over the open
-- deals, each row read once into a materialized CTE; the totals are one GROUP BY over it and
-- the ranking one sort with a window for the currencies' turns.

WITH o AS MATERIALIZED (
    SELECT id, stage, currency, value_minor,
           value_minor * coalesce(probability, CASE stage WHEN 'prospecting' THEN 10
               WHEN 'qualification' THEN 20 WHEN 'meeting' THEN 40 WHEN 'proposal' THEN 60
               ELSE 80 END) AS w
    FROM deals INDEXED BY deals_stage_owner
    WHERE pipeline_id = (SELECT id FROM pipelines WHERE is_default = 1)
      AND stage IN ('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')
),
totals AS (
    SELECT stage, currency, count(*) AS deals, sum(value_minor) AS value, sum(w) AS w
    FROM o GROUP BY stage, currency
),
turns AS (
    SELECT stage, id, value_minor, currency,
           row_number() OVER (PARTITION BY stage, currency ORDER BY value_minor DESC, id) AS turn
    FROM o
),
ranked AS (
    SELECT stage, id,
           row_number() OVER (PARTITION BY stage ORDER BY value_minor IS NULL, turn, currency,
                                                          value_minor DESC, id) AS place
    FROM turns
)
SELECT 'stage' AS figure, stage, currency, deals, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted,
       NULL AS id, NULL AS place
FROM totals
UNION ALL
SELECT 'top', stage, NULL, NULL, NULL, NULL, id, place
FROM ranked WHERE place <= :per_stage;
