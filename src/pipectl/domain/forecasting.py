"""The arithmetic of learning from history and of forecast ranges, on plain data.

No SQL, no clock, no I/O: the reports read the history (``reports.learning``) and pass in
counts, day offsets and day numbers; this module turns them into figures.

- ``wilson``: the 90 % interval of a share (the learned stage probabilities).
- ``Sample``: a distribution of whole days seen in the history (time to close, slips), with
  its quantiles (median and spread).
- ``brier`` and ``bands``: how good a set of probabilities was on the deals decided since.
- ``thresholds`` and ``simulate``: the Monte Carlo forecast range. Each open deal wins with its
  probability and, when it wins, closes on a day drawn from its timing sample (days from an
  anchor: its expected close date, or its entry into its stage), conditioned on not closing
  before today. ``thresholds`` turns that into, per deal and period, the chance of having won
  by the period's end; ``simulate`` draws the futures.

numpy is imported only by the functions that need it (``forecast --range`` and
``calibrate``), never at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# The standard normal's 95th percentile: a two-sided 90 % interval.
Z90 = 1.6448536269514722

# Draws are 16-bit integers: a chance is resolved to 1/65,536 (its error at most 1/131,072).
RESOLUTION = 1 << 16


def wilson(won: int, n: int, z: float = Z90) -> tuple[float, float]:
    """The Wilson score interval of ``won`` successes in ``n`` trials (90 % by default): the
    interval that stays inside 0..1 and behaves at 0 of n and n of n, unlike p +- z*se."""
    if n <= 0:
        return 0.0, 1.0
    p = won / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # at 0 of n and n of n the bound is exactly 0 or 1 (the float difference is not)
    low = 0.0 if won <= 0 else max(0.0, centre - half)
    high = 1.0 if won >= n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True, slots=True)
class Sample:
    """Whole days observed in the history (e.g. from entering a stage to the win), sorted, with
    how many times each was seen."""

    days: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, seen: Mapping[int, int] | Iterable[int]) -> Sample:
        """From a histogram {days: count} or from the days themselves."""
        if not isinstance(seen, Mapping):
            histogram: dict[int, int] = {}
            for d in seen:
                histogram[d] = histogram.get(d, 0) + 1
            seen = histogram
        pairs = sorted((int(d), int(c)) for d, c in seen.items() if c > 0)
        return cls(tuple(d for d, _ in pairs), tuple(c for _, c in pairs))

    @property
    def n(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> int | None:
        """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest day that at least
        ceil(q * n) of the observations do not exceed; None when empty."""
        n = self.n
        if n == 0:
            return None
        rank = max(1, math.ceil(q * n - 1e-9))
        seen = 0
        for d, c in zip(self.days, self.counts, strict=True):
            seen += c
            if seen >= rank:
                return d
        return self.days[-1]  # pragma: no cover - rank <= n


@dataclass(frozen=True, slots=True)
class Predictions:
    """Decided deals that carried the same probability ``p`` (0..1): how many were won and
    lost."""

    p: float
    won: int
    lost: int

    @property
    def n(self) -> int:
        return self.won + self.lost


def brier(predictions: Iterable[Predictions]) -> float | None:
    """The mean of (p - outcome)^2 over the decided deals (outcome 1 won, 0 lost): 0 is
    perfect, 0.25 is what always saying 50 % scores. None without any decided deal."""
    total = 0.0
    n = 0
    for g in predictions:
        total += g.won * (g.p - 1) ** 2 + g.lost * g.p**2
        n += g.n
    return total / n if n else None


@dataclass(frozen=True, slots=True)
class Band:
    """Predictions with a probability from ``low`` % up to ``high`` % (the last band includes
    100 %): how many, their mean probability and the share that was won."""

    low: int
    high: int
    n: int
    predicted: float | None
    actual: float | None
    won: int


def bands(predictions: Iterable[Predictions], width: int = 10) -> list[Band]:
    """The calibration table: the predictions by band of probability, each band's mean
    predicted probability against the share actually won (equal when calibrated)."""
    edges = list(range(0, 100, width))
    n = dict.fromkeys(edges, 0)
    won = dict.fromkeys(edges, 0)
    p_sum = dict.fromkeys(edges, 0.0)
    for g in predictions:
        low = min(int(round(g.p * 100, 9)) // width * width, edges[-1])
        n[low] += g.n
        won[low] += g.won
        p_sum[low] += g.p * g.n
    return [
        Band(low, min(low + width, 100), n[low], p_sum[low] / n[low] if n[low] else None,
             won[low] / n[low] if n[low] else None, won[low])
        for low in edges
    ]


# ---------------------------------------------------------------- the forecast range


@dataclass(slots=True)
class OpenDeals:
    """The open deals of a forecast, as columns (one entry per deal, in a fixed order: the
    same inputs give the same draws).

    ``probability``: its chance to win (0..1). ``anchor``: the day number (date.toordinal) its
    timing counts from. ``timing``: the index in ``samples`` of its timing sample (days from
    the anchor to the win), or -1 when nothing times it.
    """

    value_minor: list[int]
    currency: list[str]
    probability: list[float]
    anchor: list[int]
    timing: list[int]
    samples: list[Sample]


def thresholds(deals: OpenDeals, today: int, ends: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per deal (rows) and period (columns, ending on the day numbers ``ends``, exclusive):
    the chance it has been won by the period's end, p x P(close < end | close >= today), and
    per deal whether it could be timed at all (False: no timing sample, or every day of it
    lies before today: a deal older than any win its sample saw)."""
    import numpy as np

    d = len(deals.value_minor)
    out = np.zeros((d, len(ends)), dtype=np.float64)
    timed = np.zeros(d, dtype=bool)
    if d == 0:
        return out, timed
    anchor = np.asarray(deals.anchor, dtype=np.int64)
    timing = np.asarray(deals.timing, dtype=np.int64)
    prob = np.clip(np.asarray(deals.probability, dtype=np.float64), 0.0, 1.0)
    end = np.asarray(ends, dtype=np.int64)
    for j, sample in enumerate(deals.samples):
        rows = np.flatnonzero(timing == j)
        if rows.size == 0 or not sample.days:
            continue
        days = np.asarray(sample.days, dtype=np.int64)
        cum = np.concatenate(([0], np.cumsum(np.asarray(sample.counts, dtype=np.int64))))
        lo = np.searchsorted(days, today - anchor[rows], side="left")
        left = cum[-1] - cum[lo]  # observations not before today
        ok = left > 0
        hi = np.searchsorted(days, end[None, :] - anchor[rows][:, None], side="left")
        hi = np.maximum(hi, lo[:, None])
        share = (cum[hi] - cum[lo][:, None]) / np.where(ok, left, 1)[:, None]
        out[rows] = np.where(ok[:, None], share * prob[rows][:, None], 0.0)
        timed[rows] = ok
    return out, timed


def generator(seed: int | Sequence[int], key: tuple[int, ...]) -> np.random.Generator:
    """A generator for one use (``key``) of a seed (a number or a tuple of numbers), whose
    stream no other seed or key shares. SeedSequence pads its entropy with zeros ([7] and
    [7, 0] would be one stream), so the entropy starts with the seed's length; the use goes
    in the spawn key."""
    import numpy as np

    seeds = [seed] if isinstance(seed, int) else list(seed)
    return np.random.Generator(np.random.SFC64(
        np.random.SeedSequence([len(seeds), *seeds], spawn_key=key)))


def _workers() -> int:
    import os

    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


BLOCK_DEALS = 256
BLOCK_RUNS = 1024
# The first spawn key of the deals' blocks' generators; other draws seeded from the same
# entropy (services.forecasting's new deals) take another.
BLOCKS_KEY = 0


def simulate(values: Sequence[int] | np.ndarray, cumulative: np.ndarray, runs: int,
             seed: int | Sequence[int]) -> np.ndarray:
    """Draw ``runs`` futures of the deals: per run (rows) and period (columns), the value won
    in that period (minor units, exact integers).

    ``cumulative[i, k]``: the chance deal i has been won by the end of period k (from
    ``thresholds``; non-decreasing along k). One 16-bit uniform draw u per deal and run decides
    both whether and when: the deal is won in the first period k with u < cumulative[i, k] x
    65,536, and not in any period when there is none.

    The deals are taken in blocks of ``BLOCK_DEALS``; each block draws from its own generator,
    seeded by the seed with the block number as its spawn key (``generator``), so the result
    does not depend on how the blocks are shared among threads: same inputs and seed, same
    output.
    """
    import numpy as np

    d, k = cumulative.shape
    total = np.zeros((runs, k), dtype=np.int64)
    if d == 0 or k == 0 or runs <= 0:
        return total
    v = np.asarray(values, dtype=np.int64)
    limits = np.rint(np.clip(cumulative, 0.0, 1.0) * RESOLUTION).astype(np.int64)
    keep = limits[:, -1] > 0
    v, limits = v[keep], limits[keep]
    if v.size == 0:
        return total
    # float64 sums of whole numbers are exact while they stay below 2**53: with every value
    # below 2**45 a block's sum is (BLOCK_DEALS <= 256); else the slower integer path
    exact_float = int(v.max()) < (1 << 45)
    weights = v.astype(np.float64) if exact_float else v
    # the periods each deal can be won in: from its first to its last with any chance
    first = np.argmax(limits > 0, axis=1)
    last = np.maximum(np.argmax(limits == limits[:, -1:], axis=1), first)
    order = np.lexsort((last, first))
    v, weights, limits, first, last = v[order], weights[order], limits[order], first[order], \
        last[order]
    certain = limits >= RESOLUTION
    small = np.where(certain, 0, limits).astype(np.uint16)
    blocks = range(0, v.size, BLOCK_DEALS)

    def block(index: int) -> np.ndarray:
        a = index * BLOCK_DEALS
        b = min(a + BLOCK_DEALS, v.size)
        k0, k1 = int(first[a:b].min()), int(last[a:b].max())
        out = np.zeros((runs, k), dtype=np.int64)
        rng = generator(seed, (BLOCKS_KEY, index))
        w = weights[a:b]
        width = b - a
        buffer = np.empty((min(runs, BLOCK_RUNS), width), dtype=np.float64)
        for r0 in range(0, runs, BLOCK_RUNS):
            r1 = min(runs, r0 + BLOCK_RUNS)
            n = (r1 - r0) * width
            raw = rng.bit_generator.random_raw((n + 3) // 4)
            u = raw.view(np.uint16)[:n].reshape(r1 - r0, width)
            for j in range(k0, k1 + 1):
                if exact_float:  # BLAS: 0/1 as float64 times the values
                    hit = np.less(u, small[a:b, j], out=buffer[:r1 - r0], casting="unsafe")
                    out[r0:r1, j] = np.rint(hit @ w).astype(np.int64)
                else:
                    out[r0:r1, j] = np.einsum("ij,j->i", u < small[a:b, j], w)
        for j in range(k0, k1 + 1):  # the deals certain to have been won by the period's end
            out[:, j] += int(v[a:b][certain[a:b, j]].sum())
        # a deal won by the end of its last period is won by every later period's end
        if k1 < k - 1:
            out[:, k1 + 1:] = out[:, k1:k1 + 1]
        return out

    jobs = len(blocks)
    workers = min(_workers(), jobs)
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(block, range(jobs)))
    else:
        parts = [block(i) for i in range(jobs)]
    for part in parts:
        total += part
    # cumulative (won by the end of k) to per period (won in k)
    total[:, 1:] -= total[:, :-1].copy()
    return total


def quantile(values: np.ndarray, q: float) -> int:
    """The nearest-rank ``q`` quantile of the runs: a value one of them took."""
    import numpy as np

    n = values.shape[0]
    rank = max(1, math.ceil(q * n - 1e-9))
    return int(np.partition(values, rank - 1)[rank - 1])
