-- Baseline: `pipectl next` (its ranking, the top :limit deals), as fast as hand-written SQL
-- computes it.
--
-- Parameters: :as_of, :today (the as-of date, 'YYYY-MM-DD'), :near (:today + 14 days),
-- :limit (-1 for all). Figures (docs/metrics.md, "pipectl next"): every deal open at :as_of,
-- ranked in tiers: 0 overdue (its logged next action, logged since it entered its stage, is
-- due before today), 1 due_today, 2 stale (no event for more than 14 days: the default
-- stages set no rot_days), 3 close_overdue (expected close date before today), 4 closing
-- (close date within 14 days), 5 open; within a tier by its date, then the largest value of
-- each currency in turn, deals without a value last, then id. Each with its action (the
-- logged one, or its stage's), source, due date, idle days (rounded to 2 decimals, as
-- pipectl's SQL rounds them) and `total`, the number of open deals (on every row).
--
-- Scope: the DEFAULT PIPELINE ONLY, its 7 stages and their actions as literals (see
-- report.sql); no --owner.
--
-- How (the fastest we found, each choice measured at 100k deals): one GROUP BY over the
-- covering index events_moves gives each deal's latest move with ONE aggregate, max(id), and
-- its stage and time (when the deal entered that stage) as bare columns: SQLite documents
-- that with a single max() a bare column takes its value from the row holding the maximum (a
-- deal's events are appended in time order, so its largest id is its latest). Then, for the
-- open deals only, one GROUP BY over their events read through events_deal gives the
-- `created` event (the first move), the latest event, the latest note with a next action or
-- due date, and the latest value and close-date events; those are read by primary key; the
-- ranking is one sort (with one window for the currencies' turns). Was: the `created` event,
-- the stage's order and the entry time as three more aggregates of the pass over every
-- deal's moves (12 % slower in all). Tried: the total as a count over a materialized table
-- instead of count(*) OVER () (9 % slower); the ranking's turn computed in a subquery first
-- (12 % slower). Measured but not kept: a pass over events_kind_at for every deal's notes,
-- values and close dates (94 ms) plus a seek per open deal for its latest event (about
-- 35 ms), against about 150 ms for the walk through the open deals' events: within the
-- noise, and one more join.

WITH m AS (  -- each deal's latest move: max(id) and its row's bare columns
    SELECT deal_id, max(id) AS k_latest, to_stage AS stage, at AS entered_at
    FROM events INDEXED BY events_moves
    WHERE to_stage IS NOT NULL AND voided_by IS NULL AND at <= :as_of
    GROUP BY deal_id
),
a AS (
    SELECT m.deal_id, m.stage, m.entered_at,
           min(CASE WHEN e.to_stage IS NOT NULL THEN e.id END) AS k_created,
           max(e.at) AS last_at,
           max(CASE WHEN e.kind = 'note' AND (e.next_action IS NOT NULL OR e.due IS NOT NULL)
                    THEN e.id END) AS k_note,
           max(CASE WHEN e.kind = 'value' THEN e.id END) AS k_value,
           max(CASE WHEN e.kind = 'close_date' THEN e.id END) AS k_close
    FROM m JOIN events e INDEXED BY events_deal ON e.deal_id = m.deal_id AND e.at <= :as_of
        AND e.voided_by IS NULL
    WHERE m.stage IN ('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')
    GROUP BY m.deal_id
),
s AS (
    SELECT a.deal_id AS id, a.stage, a.last_at,
           CASE WHEN a.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
           CASE WHEN a.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
           CASE WHEN a.k_close IS NULL THEN cr.close_date ELSE c.close_date END AS close_date,
           n.id IS NOT NULL AND n.at >= a.entered_at AS logged,
           n.next_action AS logged_action, n.due AS logged_due,
           julianday(:as_of) - julianday(a.last_at) AS idle
    FROM a
    JOIN events cr ON cr.id = a.k_created
    LEFT JOIN events v ON v.id = a.k_value
    LEFT JOIN events c ON c.id = a.k_close
    LEFT JOIN events n ON n.id = a.k_note
),
r AS (
    SELECT s.*,
           CASE WHEN logged AND logged_due < :today THEN 0
                WHEN logged AND logged_due = :today THEN 1
                WHEN idle > 14 THEN 2
                WHEN close_date < :today THEN 3
                WHEN close_date <= :near THEN 4
                ELSE 5 END AS tier
    FROM s
),
k AS (
    SELECT r.*,
           CASE tier WHEN 0 THEN logged_due WHEN 2 THEN last_at WHEN 3 THEN close_date
                     WHEN 4 THEN close_date ELSE '' END AS tier_date
    FROM r
)
SELECT 'next' AS figure, id,
       stage,
       value_minor, currency, close_date,
       CASE WHEN logged THEN coalesce(logged_action, 'Do what is due')
            ELSE CASE stage
                WHEN 'prospecting' THEN 'Make first contact: send the planned email or LinkedIn message.'
                WHEN 'qualification' THEN 'Learn their business and pain points; confirm location, budget, authority and need.'
                WHEN 'meeting' THEN 'Hold the demo or needs assessment; agree price and the proposal''s parameters.'
                WHEN 'proposal' THEN 'Send the written proposal and make the prospect comfortable committing.'
                ELSE 'Settle final terms with every stakeholder and get the contract signed.'
            END END AS action,
       CASE WHEN logged THEN 'logged' ELSE 'stage' END AS source,
       CASE WHEN logged THEN logged_due END AS due,
       CASE tier WHEN 0 THEN 'overdue' WHEN 1 THEN 'due_today' WHEN 2 THEN 'stale'
                 WHEN 3 THEN 'close_overdue' WHEN 4 THEN 'closing' ELSE 'open' END AS why,
       round(idle, 2) AS idle_days,
       count(*) OVER () AS total
FROM k
ORDER BY tier, tier_date, value_minor IS NULL,
         row_number() OVER (PARTITION BY tier, tier_date, currency
                            ORDER BY value_minor IS NULL, value_minor DESC, id),
         currency, id
LIMIT :limit;
