"""`pipectl report --by owner|source|pipeline`: the money answers per owner, source or pipeline.

One as-of snapshot (``reports.snapshot``, with each deal's owner or source as ``grp``; its
pipeline is already there), then one GROUP BY (group, currency) pass over it for every count
and sum: deals won and their value, lost, qualified and qualified-and-won (close rate), open
deals, their value and weighted value. The median sales cycle per group is read along an index
as the report's is (``summary._durations``): one pass for the groups, one for the total. Python
receives a few rows per group, never one per deal; there is no report per group.

The figures are those of ``pipectl report`` (docs/metrics.md), restricted to a group's deals:
the groups partition the deals, so the counts and sums of the groups add up to the report's,
and the total row is the report's own figures. A deal's owner and source are the ones it has
now (the ``deals`` table), as ``--owner`` reads them; its pipeline is the one it was in at the
as-of moment.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipectl.reports import snapshot
from pipectl.reports.money import Money
from pipectl.reports.summary import (
    CYCLE_KNOWN,
    EXPLAIN_IDS,
    NO_DAYS,
    UNKNOWN_CLOSE,
    UNKNOWN_QUALIFICATION,
    UNKNOWN_START,
    Days,
    Outcome,
    Ratio,
    Unknowns,
    _durations,
    _in,
)
from pipectl.store import sql
from pipectl.values import fold, weighted_minor

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline
    from pipectl.reports.periods import Window
    from pipectl.reports.scope import Scope

BY = ("owner", "source", "pipeline")

# The deal sets --explain lists per group (and for the total), as the report names them.
SETS = ("won_in_window", "lost_in_window", "qualified_in_window", "qualified_and_won", "open")


@dataclass(slots=True)
class Group:
    """One row of the breakdown: a group's deals (or, for the total, every deal)."""

    key: str | None  # the owner or source as written, the pipeline's name; None: none
    won: Outcome = field(default_factory=Outcome)  # deals won in the window
    lost: int = 0  # deals lost in the window and still lost at the as-of moment
    qualified: int = 0  # deals that became qualified in the window
    qualified_won: int = 0  # of those, the ones won by the as-of moment
    cycle: Days = NO_DAYS  # creation to win, deals won in the window (cycle known)
    unknown: list[int] = field(default_factory=lambda: [0, 0, 0])  # see ``left_out``
    open: Money = field(default_factory=Money)  # deals open at the as-of moment
    open_with_value: dict[str, int] = field(default_factory=dict)  # currency -> open deals
    raw_weighted: dict[str, int] = field(default_factory=dict)  # Σ value x percent
    deals: dict[str, list[int]] | None = None  # --explain: first ids of each set
    deal_counts: dict[str, int] | None = None

    @property
    def win_rate(self) -> Ratio:
        return Ratio(self.won.count, self.won.count + self.lost)

    @property
    def close_rate(self) -> Ratio:
        return Ratio(self.qualified_won, self.qualified)

    @property
    def left_out(self) -> Unknowns:
        """The deals left out of close rate and sales cycle, as the report counts them: their
        import could not tell whether they were qualified, when they began or closed."""
        return Unknowns(*self.unknown)

    @property
    def empty(self) -> bool:
        """Nothing won, lost or qualified in the window, nothing open: not shown."""
        return not (self.won.count or self.lost or self.qualified or self.open.count)


@dataclass(slots=True)
class Breakdown:
    as_of: str
    window: Window
    by: str  # owner, source or pipeline
    owner: str | None  # --owner
    only: Pipeline | None  # --pipeline
    groups: list[Group]  # sorted: see ``_order``
    total: Group  # every deal the report covers
    sorted_by: str  # "won_value" (one currency won in all) or "deals_won"
    explain: bool = False


def build(
    conn: sqlite3.Connection,
    as_of: str,
    window: Window,
    by: str,
    owner: str | None = None,
    explain: bool = False,
    pipeline: str | None = None,
) -> Breakdown:
    """The figures per ``by`` (owner, source or pipeline) as of ``as_of`` over ``window``;
    ``owner`` and ``pipeline`` restrict the deals as they do for the report."""
    from pipectl.reports.scope import scope as scope_of

    if by not in BY:
        raise ValueError(f"no breakdown by {by!r}")
    sc = scope_of(conn, as_of, pipeline)
    p = {"ws": window.start_iso(), "we": window.end_iso(), "as_of": as_of,
         "pipeline_id": sc.pipeline_id}
    table = snapshot.build(conn, as_of, owner, pipelines=sc.pipelines,
                           pipeline_id=sc.pipeline_id,
                           group=None if by == "pipeline" else by)
    try:
        groups, total = _figures(conn, table, p, by, sc, explain)
    finally:
        snapshot.drop(conn, table)
    shown = [g for g in groups if not g.empty]
    ordered, sorted_by = _order(shown)
    return Breakdown(as_of, window, by, owner, sc.only, ordered, total, sorted_by, explain)


def _figures(conn: sqlite3.Connection, t: str, p: dict, by: str, sc: Scope,
             explain: bool) -> tuple[list[Group], Group]:
    q = conn.execute
    g = "pipeline_id" if by == "pipeline" else "grp"
    won_in = f"(status = 'won' AND {_in('won_at')})"
    lost_in = f"(status = 'lost' AND {_in('decided_at')})"
    qualified_in = _in("qualified_at")
    created_in = _in("created_at")
    default = snapshot.stage_case(sc.in_sql, "probability", "stage", "pipeline_id")
    prob = f"coalesce(probability, {default})"
    is_open = "status = 'open'"
    groups: dict[Any, Group] = {}
    total = Group(None)
    for (grp, cur, won, won_valued, wv_hi, wv_lo, lost, qualified, qualified_won, opened,
         open_valued, ov_hi, ov_lo, ow_hi, ow_lo, *unknown) in q(
        f"""SELECT {g} AS grp, currency,
                   sum({won_in}), count(CASE WHEN {won_in} THEN value_minor END),
                   {sql.exact_sum(f'CASE WHEN {won_in} THEN value_minor END')},
                   sum({lost_in}), sum({qualified_in}), sum({qualified_in} AND status = 'won'),
                   sum({is_open}), count(CASE WHEN {is_open} THEN value_minor END),
                   {sql.exact_sum(f'CASE WHEN {is_open} THEN value_minor END')},
                   {sql.exact_sum(f'CASE WHEN {is_open} THEN value_minor * {prob} END')},
                   sum({created_in} AND {UNKNOWN_QUALIFICATION}),
                   sum({won_in} AND {UNKNOWN_START}), sum({won_in} AND {UNKNOWN_CLOSE})
            FROM {t} GROUP BY {g}, currency""",
        p,
    ):
        group = groups.setdefault(grp, Group(_name(by, grp, sc)))
        value, weighted = sql.joined(ov_hi, ov_lo), sql.joined(ow_hi, ow_lo)
        for x in (group, total):
            x.won.add(cur, won or 0, won_valued, sql.joined(wv_hi, wv_lo))
            x.lost += lost or 0
            x.qualified += qualified or 0
            x.qualified_won += qualified_won or 0
            x.unknown = [a + (b or 0) for a, b in zip(x.unknown, unknown, strict=True)]
            x.open.count += opened or 0
            x.open.without_value += (opened or 0) - open_valued
            if open_valued and value is not None:
                x.open.value[cur] = x.open.value.get(cur, 0) + value
                x.open_with_value[cur] = x.open_with_value.get(cur, 0) + open_valued
                x.raw_weighted[cur] = x.raw_weighted.get(cur, 0) + (weighted or 0)
    for x in (*groups.values(), total):
        # rounded half-even once per group and currency (the total: once per currency)
        x.open.weighted = {c: weighted_minor(v) for c, v in x.raw_weighted.items()}

    seconds = sql.seconds_between("won_at", "created_at")
    # deals whose import could not tell when they began or closed have no cycle (as report's)
    cycles = _durations(conn, f"SELECT {g} AS grp, {seconds} AS s FROM {t} WHERE {won_in}"
                        f" AND {CYCLE_KNOWN}", p, grouped=True)
    for grp, days in cycles.items():
        groups[grp].cycle = days
    total.cycle = _durations(conn, f"SELECT NULL AS grp, {seconds} AS s FROM {t} "
                                   f"WHERE {won_in} AND {CYCLE_KNOWN}", p,
                             grouped=False).get(None, NO_DAYS)

    if explain:
        conditions = {
            "won_in_window": won_in,
            "lost_in_window": lost_in,
            "qualified_in_window": qualified_in,
            "qualified_and_won": f"{qualified_in} AND status = 'won'",
            "open": is_open,
        }
        for x in (*groups.values(), total):
            x.deals = {key: [] for key in conditions}
            x.deal_counts = dict.fromkeys(conditions, 0)
        for key, cond in conditions.items():
            for grp, deal_id, n in q(
                f"""SELECT grp, id, n FROM (
                        SELECT {g} AS grp, id,
                               row_number() OVER (PARTITION BY {g} ORDER BY id) AS rn,
                               count(*) OVER (PARTITION BY {g}) AS n
                        FROM {t} WHERE {cond}) AS ranked
                    WHERE rn <= {EXPLAIN_IDS} ORDER BY id""",
                p,
            ):
                x = groups[grp]
                assert x.deals is not None and x.deal_counts is not None
                x.deals[key].append(deal_id)
                x.deal_counts[key] = n
            assert total.deals is not None and total.deal_counts is not None
            total.deals[key] = sorted(i for x in groups.values() for i in (x.deals or {})[key]
                                      )[:EXPLAIN_IDS]
            total.deal_counts[key] = sum((x.deal_counts or {})[key] for x in groups.values())
    return list(groups.values()), total


def _name(by: str, grp: Any, sc: Scope) -> str | None:
    """The label of a group: the owner or source as written (None: none), or the pipeline's
    name as defined at the as-of moment."""
    if by != "pipeline":
        return grp
    pipeline = sc.pipeline(grp)
    return pipeline.name if pipeline is not None else f"pipeline {grp}"


def _order(groups: list[Group]) -> tuple[list[Group], str]:
    """Most won first: by won value when every deal won in the window (in every group) with a
    value is in one currency, else by the number of deals won (amounts in different
    currencies are never compared); then by deals won, then by name (case-folded). The group
    without an owner or source comes last."""
    won_in = {c for x in groups for c in x.won.value}
    single = next(iter(won_in)) if len(won_in) == 1 else None

    def key(x: Group) -> tuple[bool, int, int, str, str]:
        value = x.won.value.get(single, 0) if single is not None else 0
        name = x.key or ""
        return (x.key is None, -value, -x.won.count, fold(name), name)

    return sorted(groups, key=key), "won_value" if single is not None else "deals_won"
