"""Forecasting from the team's own history: ``pipectl calibrate``, ``pipectl forecast --range``
(with ``--target``) and ``pipectl forecast --backtest``.

The history and the open deals are read by ``reports.learning`` (the latter from a snapshot), as
of a moment; the arithmetic is ``domain.forecasting``'s. docs/forecasting.md says what every
number means.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipectl.errors import UsageError
from pipectl.services.reports import _one_state
from pipectl.store import pipelines as pipeline_store

if TYPE_CHECKING:
    from pipectl.domain.forecasting import Band, OpenDeals, Sample
    from pipectl.domain.pipeline import Pipeline
    from pipectl.reports.learning import History
    from pipectl.reports.periods import Window

# A stage's learned probability (and a timing sample) needs at least this many decided deals.
MIN_DECIDED = 10
RUNS = 10_000
MOST_RUNS = 1_000_000
SEED = 1
QUANTILES = (0.1, 0.5, 0.9)


# ---------------------------------------------------------------- calibrate


@dataclass(slots=True)
class StageFit:
    key: str
    label: str
    configured: int  # percent, in the definition in force at the as-of moment
    won: int
    lost: int
    learned: float | None  # won / decided; None when too few decided
    low: float | None  # the 90 % interval
    high: float | None
    days_median: int | None  # from entering the stage to the win or loss (decided deals)
    days_p25: int | None
    days_p75: int | None
    days_won_median: int | None
    untimed: int
    won_valued: int = 0  # of the decided deals, those with a value (above 0) when decided
    lost_valued: int = 0

    @property
    def learned_valued(self) -> float | None:
        """The share won among the decided deals that had a value: the chance the forecast
        range uses (None when fewer than the minimum)."""
        n = self.won_valued + self.lost_valued
        return self.won_valued / n if n and self.learned is not None else None

    @property
    def decided(self) -> int:
        return self.won + self.lost

    @property
    def suggested(self) -> int | None:
        """The learned probability as a pipeline stores it (whole percent), when learned."""
        return None if self.learned is None else round(self.learned * 100)


@dataclass(slots=True)
class PipelineFit:
    pipeline: Pipeline
    stages: list[StageFit]
    predictions: int  # (deal, stage) records scored
    brier_configured: float | None
    brier_learned: float | None  # in-sample: the learned probabilities on the deals they came from
    bands: list[Band]


@dataclass(slots=True)
class Calibration:
    as_of: str
    since: str | None
    min_decided: int
    pipelines: list[PipelineFit]


def _chosen(conn: sqlite3.Connection, name: str | None, at: str,
            learned: set[int] | None = None) -> dict[int, Pipeline]:
    """The pipelines a command covers at ``at``: the one named; else each that existed then
    (created by then, not removed by then) or that has decided deals in the history known then
    (an import dates deals before the pipeline was made). Later ones do not change a past
    figure."""
    in_force = pipeline_store.all_in_force(conn, at)
    if name is not None:
        p = pipeline_store.by_name(conn, name, at)
        return {p.id: in_force.get(p.id, p)}  # type: ignore[dict-item]
    existed = pipeline_store.existed_at(conn, at)
    return {pid: p for pid, p in in_force.items() if pid in existed or pid in (learned or ())}


def _fits(pipeline: Pipeline, history: History, min_decided: int) -> PipelineFit:
    from pipectl.domain import forecasting as f

    stages: list[StageFit] = []
    configured_preds: list[f.Predictions] = []
    learned_preds: list[f.Predictions] = []
    for s in pipeline.line:
        if not pipeline.is_open(s.key):
            continue
        r = history.stages.get((pipeline.id, s.key))  # type: ignore[arg-type]
        won, lost = (r.won, r.lost) if r else (0, 0)
        n = won + lost
        learned = low = high = None
        if n >= min_decided:
            learned = won / n
            low, high = f.wilson(won, n)
        days = f.Sample.of({}) if r is None else f.Sample.of(
            {d: r.days_won.get(d, 0) + r.days_lost.get(d, 0)
             for d in set(r.days_won) | set(r.days_lost)})
        days_won = f.Sample.of(r.days_won if r else {})
        stages.append(StageFit(
            s.key, s.label, s.probability, won, lost, learned, low, high,
            days.quantile(0.5), days.quantile(0.25), days.quantile(0.75),
            days_won.quantile(0.5), r.untimed if r else 0,
            r.won_valued if r else 0, r.lost_valued if r else 0))
        if r is None:
            continue
        for own, (w, lo) in r.own.items():
            p = s.probability if own is None else own
            configured_preds.append(f.Predictions(p / 100, w, lo))
        fitted = learned if learned is not None else s.probability / 100
        learned_preds.append(f.Predictions(fitted, won, lost))
    return PipelineFit(pipeline, stages, sum(g.n for g in configured_preds),
                       f.brier(configured_preds), f.brier(learned_preds),
                       f.bands(configured_preds))


def calibrate(conn: sqlite3.Connection, as_of: str, pipeline: str | None = None,
              since: str | None = None, min_decided: int = MIN_DECIDED) -> Calibration:
    """Per pipeline and open stage: the configured probability against the share of the deals
    that were in the stage and are decided that was won, with its 90 % interval and the days
    to close; and how good the configured probabilities were (Brier score, calibration
    table), as of ``as_of``."""
    from pipectl.reports import learning

    if min_decided < 1:
        raise UsageError(f"--min-decided {min_decided} must be at least 1")
    with _one_state(conn, for_reports=True):
        in_force = pipeline_store.all_in_force(conn, as_of)
        only = None if pipeline is None else pipeline_store.by_name(conn, pipeline, as_of).id
        history = learning.learn(conn, as_of, in_force, only, since, slips=False)
        chosen = _chosen(conn, pipeline, as_of, {pid for pid, _ in history.stages})
    fits = [_fits(p, history, min_decided) for _, p in sorted(chosen.items())]
    return Calibration(as_of, since, min_decided, fits)


@dataclass(slots=True)
class Applied:
    pipeline: str
    version: int | None  # the new version, None when nothing changed
    changes: list[tuple[str, int, int]]  # stage, configured, learned


def learned_changes(fit: PipelineFit) -> list[tuple[str, int, int]]:
    return [(s.key, s.configured, s.suggested) for s in fit.stages
            if s.suggested is not None and s.suggested != s.configured]


def apply_calibration(conn: sqlite3.Connection, calibration: Calibration,
                      at: str | None = None) -> list[Applied]:
    """Write the learned probabilities into each pipeline's definition, as a new version (the
    old stays in force for every moment before), in one transaction. A pipeline changed since
    the calibration was read is refused."""
    from pipectl.services import clock
    from pipectl.store.db import transaction
    from pipectl.values import iso

    out = []
    with transaction(conn):
        when = iso(clock.moment(at))
        for fit in calibration.pipelines:
            changes = learned_changes(fit)
            if not changes:
                out.append(Applied(fit.pipeline.name, None, []))
                continue
            current = pipeline_store.load(conn, fit.pipeline.id)  # type: ignore[arg-type]
            if current.version != fit.pipeline.version:
                raise UsageError(
                    f"pipeline {fit.pipeline.name!r} changed while it was calibrated "
                    f"(version {fit.pipeline.version}, now {current.version}); nothing was "
                    "changed", hint="run pipectl calibrate --apply again")
            new = {key: learned for key, _, learned in changes}
            line = tuple(replace(s, probability=new[s.key]) if s.key in new else s
                         for s in current.line)
            version = pipeline_store.add_version(conn, current.id,  # type: ignore[arg-type]
                                                 replace(current, line=line), when)
            out.append(Applied(fit.pipeline.name, version, changes))
    return out


# ---------------------------------------------------------------- the range


@dataclass(slots=True)
class Figures:
    """One period and currency of a range: quantiles and means of the value won, in minor
    units."""

    currency: str
    p10: int
    p50: int
    p90: int
    expected: int
    new_deals: int = 0  # of which expected from deals not yet open (their mean in the past)
    won_so_far: int = 0
    target: int | None = None
    chance: float | None = None  # of reaching the target


@dataclass(slots=True)
class RangePeriod:
    period: Window
    state: str  # current or future
    figures: list[Figures]


@dataclass(slots=True)
class Basis:
    """What the range stood on."""

    deals: int = 0  # open deals simulated
    without_value: int = 0
    learned: int = 0  # deals whose probability was learned from their stage
    own: int = 0  # their own probability
    configured: int = 0  # their stage's configured probability
    by_close_date: int = 0  # timed by their close date and the team's slips
    by_stage: int = 0  # timed by their stage's time to win
    as_promised: int = 0  # on their close date (too little history to time them)
    untimed: int = 0  # not timed: left out of every period
    untimed_value: dict[str, int] = field(default_factory=dict)
    analogs: int = 0  # past periods the new business is drawn from


@dataclass(slots=True)
class Range:
    as_of: str
    unit: str
    runs: int
    seed: int
    periods: list[RangePeriod]
    basis: Basis
    pipeline: str | None = None


def _ordinal(text: str) -> int:
    return date.fromisoformat(text[:10]).toordinal()


@dataclass(slots=True)
class _Simulated:
    # per currency: runs x periods, value won in each period; and the expected values
    runs: dict[str, Any]
    expected: dict[str, list[int]]  # from the open deals
    basis: Basis
    new_expected: dict[str, list[int]]  # the mean of the past periods' new business
    so_far: dict[str, int]  # won since ``so_far_from``, per currency


# New business: how many past periods the value won from deals not yet open is drawn from.
ANALOGS = 12
# The spawn key of the new business's generator (the open deals' blocks use another:
# domain.forecasting.BLOCKS_KEY), so the two never share a stream.
NEW_DEALS_KEY = 1


def _analogs(conn: sqlite3.Connection, unit: str, moment: str, windows: Sequence[Window]
             ) -> list[tuple[Any, str, str, str]]:
    """For each window to forecast (index k), the past periods like it: the ``ANALOGS`` latest
    periods over at ``moment`` that began after the history did, each with the moment that lay
    as long before it as ``moment`` lies before the window (inside it, for the current one).
    (key (k, j), start, end, after) as ``reports.learning.learn`` takes them."""
    from datetime import datetime

    from pipectl.reports import learning
    from pipectl.reports import periods as per
    from pipectl.values import from_iso, iso

    first = learning.first_created(conn)
    if first is None:
        return []
    t = from_iso(moment)
    out = []
    for k, w in enumerate(windows):
        offset = per.midnight(w.start) - t  # type: ignore[arg-type]
        start = per.period_start(unit, t.date())
        j = 0
        while j < ANALOGS:
            start = per.period_start(unit, start - timedelta(days=1))
            end = per.next_start(unit, start)
            after: datetime = per.midnight(start) - offset
            if iso(after) < first:
                break
            if iso(per.midnight(end)) <= moment:
                out.append(((k, j), per.moment_iso(start), per.moment_iso(end), iso(after)))
                j += 1
    return out


def _simulate_at(conn: sqlite3.Connection, unit: str, moment: str, today: int,
                 windows: Sequence[Window], owner: str | None, pipeline_id: int | None,
                 runs: int, seed: tuple[int, ...], min_decided: int,
                 so_far_from: str | None = None) -> _Simulated:
    """The open deals at ``moment`` and what the history known then says of them, drawn
    ``runs`` times over the periods ``windows``; no deal closes before the day ``today``.
    Each run adds, per period, the value won from deals not yet open in one of the past
    periods like it (``_analogs``), drawn at random. ``so_far_from``: also read the value won
    from then up to ``moment`` (the current period's), per currency."""
    import numpy as np

    from pipectl.domain import forecasting as f
    from pipectl.reports import learning

    in_force = pipeline_store.all_in_force(conn, moment)
    analogs = _analogs(conn, unit, moment, windows)
    windows_read = list(analogs)
    if so_far_from is not None:  # every deal won since then, new or not
        windows_read.append(("so_far", so_far_from, "9999-12-31T23:59:59Z", ""))
    history = learning.learn(conn, moment, in_force, fresh=windows_read, owner=owner,
                             fresh_pipeline=pipeline_id)
    rows = learning.open_deals(conn, moment, in_force, owner, pipeline_id)
    basis = Basis(deals=len(rows))
    deals = _open_deals(rows, in_force, history, today, min_decided, basis)
    ends = [w.end.toordinal() for w in windows]  # type: ignore[union-attr]
    # a first window after today: the wins before it make a column of their own, dropped
    before = bool(windows) and windows[0].start.toordinal() > today  # type: ignore[union-attr]
    if before:
        ends.insert(0, windows[0].start.toordinal())  # type: ignore[union-attr]
    cumulative, _ = f.thresholds(deals, today, ends)
    codes = {c: i for i, c in enumerate(dict.fromkeys(deals.currency))}
    currencies = np.fromiter(map(codes.__getitem__, deals.currency), np.int64,
                             len(deals.currency))
    values = np.asarray(deals.value_minor, dtype=np.int64)
    fresh: dict[int, list[dict[str, int]]] = {}
    for (k, _j), *_ in analogs:
        fresh.setdefault(k, []).append(history.fresh.get((k, _j), {}))
    basis.analogs = min((len(v) for v in fresh.values()), default=0)
    out: dict[str, Any] = {}
    expected: dict[str, list[int]] = {}
    new_expected: dict[str, list[int]] = {}
    names = set(deals.currency) | {c for v in history.fresh.values() for c in v}
    for c in sorted(names):
        rows_c = np.flatnonzero(currencies == codes.get(c, -1))
        part = cumulative[rows_c]
        won = f.simulate(values[rows_c], part, runs, (*seed, _currency_number(c)))
        if rows_c.size == 0:
            won = np.zeros((runs, len(ends)), dtype=np.int64)
        gained = np.diff(np.concatenate([np.zeros((len(rows_c), 1)), part], axis=1), axis=1)
        sums = (gained * values[rows_c][:, None]).sum(axis=0)
        if before:
            won, sums = won[:, 1:], sums[1:]
        expected[c] = [round(x) for x in sums]
        new_expected[c] = [0] * len(windows)
        rng = f.generator((*seed, _currency_number(c)), (NEW_DEALS_KEY,))
        for k in range(len(windows)):
            past = np.asarray([a.get(c, 0) for a in fresh.get(k, [])], dtype=np.int64)
            if past.size:
                won[:, k] += past[rng.integers(0, past.size, runs)]
                new_expected[c][k] = round(past.mean())
        out[c] = won
    return _Simulated(out, expected, basis, new_expected, history.fresh.get("so_far", {}))


def _open_deals(rows: Sequence[Any], in_force: dict[int, Pipeline], history: History,
                today: int, min_decided: int, basis: Basis) -> OpenDeals:
    """The open deals ``rows`` (as ``reports.learning.open_deals`` reads them) as
    ``domain.forecasting.OpenDeals`` (numpy columns), in their order: those with a value and
    a timing, each with its chance (its stage's learned one, else its own, else its stage's
    configured one) and its timing (the team's slips from its close date, else its stage's
    time to win from its entry, else its close date itself while still ahead); ``basis``
    counts what the deals stood on. The decisions of a loop deal by deal, column by column."""
    from itertools import compress, count
    from operator import itemgetter

    import numpy as np

    from pipectl.domain import forecasting as f

    samples: list[Sample] = [f.Sample.of({0: 1})]  # 0: on the close date itself
    ceiling: list[int] = [0]  # each sample's largest day
    promised = 0

    def sample(seen: dict[int, int]) -> int:
        """The index of the timing sample of ``seen``; -1 when it has too few days."""
        s = f.Sample.of(seen)
        if s.n < min_decided:
            return -1
        samples.append(s)
        ceiling.append(s.days[-1])
        return len(samples) - 1

    valued = [r[4] is not None for r in rows]
    rows = list(compress(rows, valued))
    basis.without_value += len(valued) - len(rows)
    n = len(rows)
    pids, stages, value, currency, close = (
        list(map(itemgetter(i), rows)) for i in (1, 2, 4, 5, 6))
    # per (pipeline, stage), at the index of its first deal: its learned chance (NaN: none),
    # its configured one and its time to win's sample; per pipeline, its slips' sample
    keys: dict[tuple[int, str], int] = {}
    group = np.fromiter(map(keys.setdefault, zip(pids, stages, strict=True), count()),
                        np.intp, n)
    learned_p = np.full(n, np.nan)
    configured_p = np.zeros(n)
    stage_sample = np.full(n, -1, dtype=np.intp)
    slips: dict[int, int] = {}
    for (pid, stage), i in keys.items():
        record = history.stages.get((pid, stage))
        definition = in_force.get(pid)
        if record is not None and record.decided_valued >= min_decided:
            learned_p[i] = record.won_valued / record.decided_valued
        configured_p[i] = (definition.stage(stage).probability
                           if definition is not None and definition.has(stage) else 0) / 100
        stage_sample[i] = sample(record.days_won if record else {})
        if pid not in slips:
            slips[pid] = sample(history.slips.get(pid, {}))
    by_slips = np.fromiter(map(slips.__getitem__, pids), np.intp, n)
    by_time_to_win = stage_sample[group]
    ceilings = np.asarray(ceiling, dtype=np.int64)

    # the chance: learned, else the deal's own, else configured
    chance = learned_p[group]
    learned = ~np.isnan(chance)
    has_own = np.zeros(n, dtype=bool)
    some = np.flatnonzero(~learned)
    own_p = np.array([rows[i][7] for i in some.tolist()], dtype=np.float64) / 100  # None: NaN
    has_own[some] = ~np.isnan(own_p)
    chance[has_own] = own_p[~np.isnan(own_p)]
    configured = ~learned & ~has_own
    chance[configured] = configured_p[group[configured]]
    basis.learned += int(learned.sum())
    basis.own += int(has_own.sum())
    basis.configured += int(configured.sum())

    # the timing, from day numbers (date.toordinal): of the close dates (0: none), else of
    # the entries into the stage (read for the deals that come to them)
    days = dict.fromkeys(close, 0)
    for c in days:
        if c is not None:
            days[c] = _ordinal(c)
    close_day = np.fromiter(map(days.__getitem__, close), np.int64, n)
    has_close = close_day != 0
    by_close = has_close & (by_slips >= 0) & (ceilings[by_slips] >= today - close_day)
    by_entry = ~by_close & (by_time_to_win >= 0)
    entry_day = np.zeros(n, dtype=np.int64)
    some = np.flatnonzero(by_entry)
    entered = [e[:10] if e is not None else None
               for e in (rows[i][3] for i in some.tolist())]
    days = dict.fromkeys(entered, today - max(ceiling) - 1)  # None: not timed by it
    for e in days:
        if e is not None:
            days[e] = _ordinal(e)
    entry_day[some] = np.fromiter(map(days.__getitem__, entered), np.int64, some.size)
    by_entry &= ceilings[by_time_to_win] >= today - entry_day
    as_promised = ~by_close & ~by_entry & has_close & (close_day >= today)
    timed = by_close | by_entry | as_promised
    basis.by_close_date += int(by_close.sum())
    basis.by_stage += int(by_entry.sum())
    basis.as_promised += int(as_promised.sum())
    basis.untimed += n - int(timed.sum())
    untimed = (~timed).tolist()
    for c, v in zip(compress(currency, untimed), compress(value, untimed), strict=True):
        basis.untimed_value[c] = basis.untimed_value.get(c, 0) + v
    return f.OpenDeals(
        np.array(value, dtype=np.int64)[timed], list(compress(currency, timed.tolist())),
        chance[timed], np.where(by_entry, entry_day, close_day)[timed],
        np.where(by_close, by_slips, np.where(by_entry, by_time_to_win, promised))[timed],
        samples)


def _currency_number(code: str) -> int:
    """A currency as a number for the seed (stable: its three letters)."""
    return int.from_bytes(code.encode("ascii", "replace"), "big")


def _check_runs(runs: int) -> None:
    if not 100 <= runs <= MOST_RUNS:
        raise UsageError(f"--runs {runs} must be from 100 to {MOST_RUNS:,}")


def forecast_range(conn: sqlite3.Connection, as_of: str, unit: str, periods: list[Window],
                   owner: str | None = None, pipeline: str | None = None, runs: int = RUNS,
                   seed: int = SEED, target: tuple[int, str | None] | None = None,
                   min_decided: int = MIN_DECIDED) -> Range:
    """P10 / P50 / P90 and the expected value won in each period not over yet, per currency,
    over ``runs`` simulated futures of the deals open at ``as_of``; the current period's
    value already won is added to each. ``target``: (minor units, currency or None for the
    only one) whose chance of being reached each period gives."""
    import numpy as np

    from pipectl.domain import forecasting as f

    _check_runs(runs)
    ahead = [p for p in periods if p.end_iso() > as_of]
    if not ahead:
        raise UsageError("--range forecasts periods not over yet; these are all over",
                         hint="pipectl forecast --backtest scores the past periods")
    if len(ahead) < len(periods):
        raise UsageError(f"--from {periods[0].start}: --range forecasts periods not over yet",
                         hint="pipectl forecast --backtest scores the past periods")
    today = _ordinal(as_of)
    with _one_state(conn, for_reports=True):
        pid = None if pipeline is None else pipeline_store.by_name(conn, pipeline, as_of).id
        name = None if pipeline is None else pipeline_store.by_name(conn, pipeline).name
        current = ahead[0] if ahead[0].start_iso() <= as_of else None
        sim = _simulate_at(conn, unit, as_of, today, ahead, owner, pid, runs, (seed,),
                           min_decided, None if current is None else current.start_iso())
        so_far = sim.so_far
    currencies = sorted(set(sim.runs) | set(so_far))
    if target is not None and target[1] is None and len(currencies) > 1:
        raise UsageError(f"--target {target[0]}: the forecast has {len(currencies)} "
                         f"currencies ({', '.join(currencies)})",
                         hint="name one, e.g. --target '250000 EUR'")
    if target is not None and target[1] is not None and target[1] not in currencies:
        raise UsageError(f"--target in {target[1]}: no open deal and no past win is in "
                         f"{target[1]}", hint=f"the forecast's currencies: "
                         f"{', '.join(currencies) or 'none'}")
    out = []
    for k, period in enumerate(ahead):
        state = "current" if period is current else "future"
        figures = []
        for c in currencies:
            base = so_far.get(c, 0) if state == "current" else 0
            won = sim.runs[c][:, k] + base if c in sim.runs else np.full(runs, base, np.int64)
            new = sim.new_expected[c][k] if c in sim.new_expected else 0
            expected = base + new + (sim.expected[c][k] if c in sim.expected else 0)
            fig = Figures(c, *(f.quantile(won, q) for q in QUANTILES), expected, new, base)
            if target is not None and (target[1] is None or target[1] == c):
                fig.target = target[0] if target[1] is not None else _minor(target[0], c)
                fig.chance = float((won >= fig.target).mean())
            figures.append(fig)
        out.append(RangePeriod(period, state, figures))
    return Range(as_of, unit, runs, seed, out, sim.basis, name)


def _minor(major_text: Any, currency: str) -> int:
    from pipectl.values import parse_typed_money

    return major_text if isinstance(major_text, int) else parse_typed_money(
        str(major_text), currency, "--target", "--target")


def parse_target(text: str) -> tuple[Any, str | None]:
    """'250000', '250000 EUR' or 'EUR 250000': the amount (minor units when the currency is
    given; else the text, read once the forecast's currency is known) and the currency."""
    from pipectl.values import currency_code, parse_typed_money

    parts = text.replace(",", ",").split()
    if len(parts) == 2:
        a, b = parts
        code, amount = (a, b) if a.isalpha() else (b, a)
        if not code.isalpha():
            raise UsageError(f"--target {text!r} is not an amount and a currency",
                             hint="e.g. --target 250000 or --target '250000 EUR'")
        code = currency_code(code)
        return parse_typed_money(amount, code, "--target", "--target"), code
    if len(parts) != 1:
        raise UsageError(f"--target {text!r} is not an amount",
                         hint="e.g. --target 250000 or --target '250000 EUR'")
    parse_typed_money(parts[0], "USD", "--target", "--target")  # what no currency accepts
    return parts[0], None


# ---------------------------------------------------------------- the backtest


@dataclass(slots=True)
class Scored:
    """One past period and currency: what was forecast at its start and what was won."""

    currency: str
    weighted: int  # the weighted forecast (close date in the period) as it stood then
    p10: int
    p50: int
    p90: int
    expected: int
    actual: int

    @property
    def inside(self) -> bool:
        return self.p10 <= self.actual <= self.p90

    @property
    def scored(self) -> bool:
        """Whether the period says anything: something was forecast or won."""
        return bool(self.weighted or self.p90 or self.actual)


@dataclass(slots=True)
class BacktestPeriod:
    period: Window
    forecast_as_of: str
    figures: list[Scored]


@dataclass(slots=True)
class Score:
    currency: str
    periods: int  # scored
    inside: int
    mae_weighted: int
    mae_p50: int
    mae_expected: int

    @property
    def coverage(self) -> float | None:
        return self.inside / self.periods if self.periods else None


@dataclass(slots=True)
class Backtest:
    as_of: str
    unit: str
    runs: int
    seed: int
    periods: list[BacktestPeriod]
    scores: list[Score]
    pipeline: str | None = None


def backtest(conn: sqlite3.Connection, as_of: str, unit: str, periods: list[Window],
             owner: str | None = None, pipeline: str | None = None, runs: int = RUNS,
             seed: int = SEED, min_decided: int = MIN_DECIDED) -> Backtest:
    """For each period over at ``as_of``: the weighted forecast and the range as they would
    have been computed at its start, from the events known then, against the value won in
    it."""
    from pipectl.reports import forecast as fc

    _check_runs(runs)
    over = [p for p in periods if p.end_iso() <= as_of]
    if not over:
        raise UsageError("--backtest scores periods that are over; none of these is",
                         hint="give --from an earlier date")
    with _one_state(conn, for_reports=True):
        pid = None if pipeline is None else pipeline_store.by_name(conn, pipeline, as_of).id
        name = None if pipeline is None else pipeline_store.by_name(conn, pipeline).name
        built = fc.build_all(conn, as_of, over, owner, pipeline)
        out = []
        for number, (period, then) in enumerate(zip(over, built.periods, strict=True)):
            start = period.start
            sim = _simulate_at(conn, unit, then.forecast_as_of, start.toordinal(),  # type: ignore[union-attr]
                               [period], owner, pid, runs, (seed, number), min_decided)
            from pipectl.domain import forecasting as f

            won = then.won.value if then.won else {}
            currencies = sorted(set(sim.runs) | set(then.forecast.weighted) | set(won))
            figures = []
            for c in currencies:
                if c in sim.runs:
                    q = [f.quantile(sim.runs[c][:, 0], x) for x in QUANTILES]
                    exp = sim.expected[c][0] + sim.new_expected[c][0]
                else:
                    q, exp = [0, 0, 0], 0
                figures.append(Scored(c, then.forecast.weighted.get(c, 0), *q, exp,
                                      won.get(c) or 0))
            out.append(BacktestPeriod(period, then.forecast_as_of, figures))
    return Backtest(as_of, unit, runs, seed, out, _scores(out), name)


def _scores(periods: list[BacktestPeriod]) -> list[Score]:
    by: dict[str, list[Scored]] = {}
    for p in periods:
        for s in p.figures:
            if s.scored:
                by.setdefault(s.currency, []).append(s)
    out = []
    for c, items in sorted(by.items()):
        n = len(items)
        out.append(Score(
            c, n, sum(s.inside for s in items),
            round(sum(abs(s.actual - s.weighted) for s in items) / n),
            round(sum(abs(s.actual - s.p50) for s in items) / n),
            round(sum(abs(s.actual - s.expected) for s in items) / n)))
    return out


def range_periods(unit: str, as_of: str, first: date | None, last: date | None,
                  ahead: int = 2) -> list[Window]:
    """--range's periods: from the current one (or ``first``) to ``ahead`` after it (or
    ``last``)."""
    from pipectl.reports import periods as per
    from pipectl.services.reports import forecast_periods

    here = per.period_start(unit, date.fromisoformat(as_of[:10]))
    if last is None:
        last = here if first is None else per.period_start(unit, first)
        for _ in range(ahead):
            last = per.next_start(unit, last)
    return forecast_periods(unit, as_of, first or here, last)


def backtest_periods(unit: str, as_of: str, first: date | None, last: date | None,
                     back: int = 24) -> list[Window]:
    """--backtest's periods: ``back`` periods before the current one (or from ``first``) to
    the last one over (or ``last``)."""
    from pipectl.reports import periods as per
    from pipectl.services.reports import forecast_periods

    here = per.period_start(unit, date.fromisoformat(as_of[:10]))
    if last is None:
        last = here - timedelta(days=1)
        if first is not None and first > last:
            raise UsageError(f"--backtest scores periods that are over; --from {first} is not "
                             f"before the current {unit} (it began on {here})",
                             hint="give an earlier --from")
    if first is None:
        first = here
        for _ in range(back):
            first = per.period_start(unit, first - timedelta(days=1))
    return forecast_periods(unit, as_of, first, last)
