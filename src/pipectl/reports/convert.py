"""Figures converted into one currency (``--in``): the report's, the breakdown's and the
forecast's money, each a copy of the figures with its amounts per currency replaced by one
amount in the target currency (and, for a currency with no rate in force, its own amount, kept
as it is). Counts never change.

Every converted amount is summed exactly (as fractions) from the exact amounts per currency and
rounded half-to-even once, to the target's minor unit (``domain.rates``): a weighted value from
its exact sum of value x percent, an average from its exact total. Which rate: ``report`` and
``report --by`` convert at the rates in force at the as-of moment (states and flows alike);
``forecast`` converts each period at the rates in force at the moment its forecast is read from
(just before the period began; a future period's: the as-of moment), its actual too, so that a
period's forecast and actual are compared at one rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pipectl.reports.money import Money
from pipectl.values import round_half_even, weighted_minor

if TYPE_CHECKING:
    from pipectl.domain.rates import Converter, RateBook
    from pipectl.reports.breakdown import Breakdown, Group
    from pipectl.reports.forecast import PeriodForecast
    from pipectl.reports.summary import Outcome, Report

Exact = dict[str, Fraction | int]


def exact(amounts: dict[str, int], conv: Converter) -> Exact:
    """Per currency, the amounts that have a rate as one exact sum in the target; the others
    as they are."""
    return conv.sums(amounts)


def rounded(amounts: Exact) -> dict[str, int]:
    return {c: round_half_even(Fraction(v)) for c, v in amounts.items()}


def amounts(values: dict[str, int], conv: Converter) -> dict[str, int]:
    """An amount per currency, converted (one sum, rounded once)."""
    return rounded(exact(values, conv))


def money(m: Money, conv: Converter, raw: dict[str, int] | None = None) -> Money:
    """Count, value and weighted value, converted. ``raw``: the exact value x percent per
    currency (default ``m.exact``); without it the rounded weighted values are converted."""
    raw = m.exact if raw is None and m.exact else raw
    if raw is None:
        raw = {c: w * 100 for c, w in m.weighted.items()}
    weighted = exact(raw, conv)
    return Money(count=m.count, without_value=m.without_value, value=amounts(m.value, conv),
                 weighted={c: weighted_minor(v) for c, v in weighted.items()},  # type: ignore
                 exact={c: v for c, v in weighted.items()})  # type: ignore[misc]


def outcome(o: Outcome, conv: Converter) -> Outcome:
    """Deals won (or lost) with their value converted; the deals with a value of the
    currencies converted counted together, the average from the exact total."""
    total = exact(o.value, conv)
    with_value: dict[str, int] = {}
    for cur, n in o.with_value.items():
        key = conv.target if conv.factor(cur) is not None else cur
        with_value[key] = with_value.get(key, 0) + n
    made = _converted_outcome()(count=o.count, without_value=o.without_value,
                                with_value=with_value, value=rounded(total))
    made.exact_total = total
    return made


@functools.cache
def _converted_outcome() -> type:
    """An ``Outcome`` whose average comes from its exact converted total (made when first
    used: the report's module is loaded then, never by the forecast)."""
    from pipectl.reports.summary import Outcome

    @dataclass(slots=True)
    class ConvertedOutcome(Outcome):
        exact_total: Exact = field(default_factory=dict)

        @property
        def average(self) -> dict[str, int]:
            return {c: round_half_even(Fraction(v) / self.with_value[c])
                    for c, v in sorted(self.exact_total.items()) if self.with_value.get(c)}

    return ConvertedOutcome


def report(r: Report, conv: Converter) -> Report:
    """The report with its money converted at ``conv``'s rates (the as-of moment's). Sales
    velocity stays per currency (its factors are per currency)."""
    from pipectl.reports.summary import LostGroup, StageMoney

    def lost(groups: list[LostGroup]) -> list[LostGroup]:
        return [replace(g, value=amounts(g.value, conv)) for g in groups]

    conv.note(sorted({c for s in r.pipeline for c in s.money.value} | set(r.won.value)
                     | set(r.lost.value)
                     | {c for g in r.lost_by_reason for c in g.value}))
    return replace(
        r,
        pipeline=[StageMoney(s.pipeline, s.stage, money(s.money, conv)) for s in r.pipeline],
        pipeline_total=money(r.pipeline_total, conv),
        won=outcome(r.won, conv),
        lost=outcome(r.lost, conv),
        lost_by_reason=lost(r.lost_by_reason),
        lost_by_stage=lost(r.lost_by_stage),
    )


def group(g: Group, conv: Converter) -> Group:
    """One row of ``report --by``, converted."""
    m = money(g.open, conv, g.raw_weighted)
    with_value: dict[str, int] = {}
    for cur, n in g.open_with_value.items():
        key = conv.target if conv.factor(cur) is not None else cur
        with_value[key] = with_value.get(key, 0) + n
    return replace(g, won=outcome(g.won, conv), open=m, open_with_value=with_value,
                   raw_weighted={c: v for c, v in m.exact.items()})  # type: ignore[misc]


def breakdown(b: Breakdown, conv: Converter) -> Breakdown:
    """``report --by`` converted at the as-of moment's rates, the rows ordered again (by won
    value, now in one currency where every won amount has a rate)."""
    from pipectl.reports.breakdown import _order

    groups = [group(g, conv) for g in b.groups]
    ordered, sorted_by = _order(groups)
    return replace(b, groups=ordered, total=group(b.total, conv), sorted_by=sorted_by)


def _deal(item: Any, conv: Converter) -> Any:
    """A listed deal (slipped, added) with its value converted, when it has a rate."""
    value = conv.one(item.value_minor, item.currency)
    if value is None:
        return item
    return replace(item, value_minor=value, currency=conv.target)


def period(p: PeriodForecast, conv: Converter) -> PeriodForecast:
    """One period of the forecast converted at ``conv``'s rates."""
    out = replace(p)
    for f in fields(p):
        v = getattr(p, f.name)
        if isinstance(v, Money):
            setattr(out, f.name, money(v, conv))
    if p.slipped is not None:
        out.slipped = [_deal(s, conv) for s in p.slipped]
    if p.added_deals is not None:
        out.added_deals = [_deal(a, conv) for a in p.added_deals]
    conv.note(sorted({c for f in fields(p) if isinstance(m := getattr(p, f.name), Money)
                      for c in m.value}))
    return out


def forecast(periods: list[PeriodForecast], no_close_date: Money | None, book: RateBook,
             target: str, as_of: str
             ) -> tuple[list[PeriodForecast], Money | None, list[Converter], Converter]:
    """The forecast converted: each period at the rates in force when its forecast was read
    (``PeriodForecast.forecast_as_of``), the deals with no close date at the as-of moment's.
    Returns the periods and those deals converted, each period's converter and the as-of
    one."""
    out, convs = [], []
    for p in periods:
        conv = book.converter(target, p.forecast_as_of)
        out.append(period(p, conv))
        convs.append(conv)
    now = book.converter(target, as_of)
    undated = None
    if no_close_date is not None:
        undated = money(no_close_date, now)
        now.note(sorted(no_close_date.value))
    return out, undated, convs, now
