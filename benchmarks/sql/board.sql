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
-- How (the fastest we found, measured at 100k deals):
-- * the totals: one range of the index deals_board (pipeline_id, stage, currency,
--   value_minor DESC) over the open deals, already in (stage, currency) order, so the
--   GROUP BY needs no sort; each deal's row is read for its probability only (count and value
--   alone come from the index in 3 ms; the probability lookups are the rest, about as costly
--   as a full scan of `deals`, which is no faster);
-- * the top deals: a deal placed among its stage's first :per_stage is among the first
--   :per_stage of its currency there (each deal before it in its currency's turn is placed
--   before it), so only those are read: per stage and currency, the first :per_stage entries
--   of deals_board (value descending, NULLs last, then id: the index's own order, no sort),
--   then ranked by two small windows over at most 5 x currencies x :per_stage rows. Sorting
--   every open deal of a stage (the obvious query) cost 3x the whole board.

WITH totals AS (
    SELECT stage, currency, count(*) AS deals, sum(value_minor) AS value,
           sum(value_minor * coalesce(probability, CASE stage WHEN 'prospecting' THEN 10
               WHEN 'qualification' THEN 20 WHEN 'meeting' THEN 40 WHEN 'proposal' THEN 60
               ELSE 80 END)) AS w
    FROM deals INDEXED BY deals_board
    WHERE pipeline_id = (SELECT id FROM pipelines WHERE is_default = 1)
      AND stage IN ('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')
    GROUP BY stage, currency
),
firsts AS (  -- each stage's and currency's first :per_stage deals, along deals_board
    SELECT t.stage, t.currency, d.id, d.value_minor,
           row_number() OVER (PARTITION BY t.stage, t.currency
                              ORDER BY d.value_minor DESC, d.id) AS turn
    FROM totals t
    JOIN deals d ON d.id IN (
        SELECT x.id FROM deals x INDEXED BY deals_board
        WHERE x.pipeline_id = (SELECT id FROM pipelines WHERE is_default = 1)
          AND x.stage = t.stage AND x.currency = t.currency
        ORDER BY x.value_minor DESC, x.id
        LIMIT :per_stage)
),
ranked AS (
    SELECT stage, id,
           row_number() OVER (PARTITION BY stage ORDER BY value_minor IS NULL, turn, currency,
                                                          value_minor DESC, id) AS place
    FROM firsts
)
SELECT 'stage' AS figure, stage, currency, deals, value,
       w / 100 + (w % 100 > 50 OR (w % 100 = 50 AND (w / 100) % 2 = 1)) AS weighted,
       NULL AS id, NULL AS place
FROM totals
UNION ALL
SELECT 'top', stage, NULL, NULL, NULL, NULL, id, place
FROM ranked WHERE place <= :per_stage;
