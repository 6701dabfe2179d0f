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
    the anchor to the win), or -1 when nothing times it. The numbers may come as lists or as
    numpy arrays.
    """

    value_minor: Sequence[int] | np.ndarray
    currency: Sequence[str]
    probability: Sequence[float] | np.ndarray
    anchor: Sequence[int] | np.ndarray
    timing: Sequence[int] | np.ndarray
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
        lo = _before(days, today - anchor[rows])
        left = cum[-1] - cum[lo]  # observations not before today
        ok = left > 0
        hi = _before(days, end[None, :] - anchor[rows][:, None])
        hi = np.maximum(hi, lo[:, None])
        share = (cum[hi] - cum[lo][:, None]) / np.where(ok, left, 1)[:, None]
        out[rows] = np.where(ok[:, None], share * prob[rows][:, None], 0.0)
        timed[rows] = ok
    return out, timed


def _before(days: np.ndarray, x: np.ndarray) -> np.ndarray:
    """How many of the sorted ``days`` lie before each of ``x``: ``np.searchsorted``, from a
    table of every whole number x spans when there are fewer of them than of x (many deals
    share an anchor)."""
    import numpy as np

    low, high = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if high - low >= x.size:
        return np.searchsorted(days, x, side="left")
    return np.searchsorted(days, np.arange(low, high + 1), side="left")[x - low]


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
# A block draws its runs at most BLOCK_RUNS at a time, each chunk continuing its generator's
# stream of 64-bit words, cut into four 16-bit draws each. With a multiple of 4 runs per chunk
# no chunk leaves part of a word unused, so the draws do not depend on the chunks (only the
# last chunk of a block may end inside a word, and the draws it leaves were nobody's).
BLOCK_RUNS = 1024
# The first spawn key of the deals' blocks' generators; other draws seeded from the same
# entropy (services.forecasting's new deals) take another.
BLOCKS_KEY = 0
# At most this many deal x run x period 0/1 entries per chunk (a float32 matrix of 1.5 MB, in
# the CPU's cache). Larger steps hand the GIL over less often between the threads, but from
# about 2**19 entries OpenBLAS shares a matrix-vector product among threads of its own, which
# then compete with ours (measured on 2 CPUs: 3x slower at 3 x 768 x 256).
_CHUNK_ENTRIES = 3 * 512 * 256
# A block's sums are added up this many runs at a time (what it holds: runs x periods).
_SEGMENT_RUNS = 1 << 16


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

    The sums: per block and period, the runs x deals matrix of 0/1 (won by the end of the
    period) as float32, times the deals' values (BLAS). float32 adds whole numbers exactly
    below 2**24, so the values (divided by the block's greatest common divisor) go in as
    parts of 16 bits, whose sums over a block of 256 deals stay below 2**24, and the parts'
    sums are put together as 64-bit integers: every sum is exact, whatever the values (modulo
    2**64, as int64 arithmetic is).
    """
    import numpy as np

    d, k = cumulative.shape
    if d == 0 or k == 0 or runs <= 0:
        return np.zeros((max(runs, 0), k), dtype=np.int64)
    v = np.asarray(values, dtype=np.int64)
    limits = np.rint(np.clip(cumulative, 0.0, 1.0) * RESOLUTION).astype(np.int64)
    keep = limits[:, -1] > 0
    v, limits = v[keep], limits[keep]
    if v.size == 0:
        return np.zeros((runs, k), dtype=np.int64)
    # the periods each deal can be won in: from its first to its last with any chance
    first = np.argmax(limits > 0, axis=1)
    last = np.maximum(np.argmax(limits == limits[:, -1:], axis=1), first)
    order = np.lexsort((last, first))
    v, limits, first, last = v[order], limits[order], first[order], last[order]
    certain = limits >= RESOLUTION
    small = np.where(certain, 0, limits).astype(np.uint16)
    size = BLOCK_DEALS
    jobs = -(-v.size // size)
    # bits per part: ``size`` deals of values below 2**bits sum below 2**24
    bits = 24 - (min(size, v.size) - 1).bit_length()
    chunk = max(4, BLOCK_RUNS // 4 * 4)
    segment = max(4, _SEGMENT_RUNS // 4 * 4)

    class Sums:
        """One thread's sums, as 64-bit integers: ``won`` (periods x runs), the value won by
        the end of each period in the blocks' periods with draws; ``after``, by the end of a
        block's last period, to add to every later one; ``sure`` and ``sure_after``, the same
        for the deals certain by then (the same in every run); and its working memory."""

        def __init__(self) -> None:
            self.won = np.zeros((k, runs), dtype=np.uint64)
            self.after: np.ndarray | None = None  # made when a block needs it
            self.sure = np.zeros(k, dtype=np.uint64)
            self.sure_after = np.zeros(k, dtype=np.uint64)
            self.memory: dict[str, np.ndarray] = {}

        def scratch(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            """A working array, kept from one block to the next (no new pages to fault)."""
            n = math.prod(shape)
            held = self.memory.get(name)
            if held is None or held.size < n:
                held = self.memory[name] = np.empty(n, dtype=dtype)
            return held[:n].reshape(shape)

    def block(index: int, into: Sums) -> None:
        """Add block ``index``'s value won by the end of its periods to ``into``."""
        a, b = index * size, min(index * size + size, v.size)
        k0, k1 = int(first[a:b].min()), int(last[a:b].max())
        # the deals certain by the end of each period k0..k1
        sure = (v[a:b] @ certain[a:b, k0:k1 + 1]).view(np.uint64)
        into.sure[k0:k1 + 1] += sure
        if k1 < k - 1:
            into.sure_after[k1:k1 + 1] += sure[-1:]
        # and those whose draw is below their limit, in the periods with a limit below 1
        drawn = [j for j in range(k0, k1 + 1) if small[a:b, j].any()]
        w = v[a:b]
        divisor = int(np.gcd.reduce(w)) if int(w.min()) >= 0 else 1
        uw = (w // divisor if divisor > 1 else w).view(np.uint64)
        if not drawn or not uw.any():  # no draw counts (nothing drawn, or values of 0)
            return
        targets = [[into.won[j]] for j in drawn]
        if drawn[-1] == k1 < k - 1:  # also won by the end of every later period
            if into.after is None:
                into.after = np.zeros((k, runs), dtype=np.uint64)
            targets[-1].append(into.after[k1])
        draw(generator(seed, (BLOCKS_KEY, index)).bit_generator, small[a:b, drawn], uw,
             divisor, targets, into)

    def draw(source: np.random.BitGenerator, limit_: np.ndarray, uw: np.ndarray,
             divisor: int, targets: list[list[np.ndarray]], into: Sums) -> None:
        """Add to the ``targets`` (arrays of the runs) of each period drawn the value of the
        deals whose draw is below their limit (``limit_``: deals x periods, 16-bit)."""
        width, n = limit_.shape
        n_parts = max(1, -(-int(uw.max()).bit_length() // bits))
        mask = np.uint64((1 << bits) - 1)
        parts = [((uw >> np.uint64(bits * p)) & mask).astype(np.float32)
                 for p in range(n_parts)]
        rows = max(4, min(chunk, _CHUNK_ENTRIES // (n * width)) // 4 * 4)
        rows = min(rows, -(-min(runs, segment) // 4) * 4)
        limit = into.scratch("limit", (n, rows, width), np.uint16)
        limit[...] = limit_.T[:, None, :]
        below = into.scratch("below", (n, rows, width), bool)
        hits = into.scratch("hits", (n, rows, width), np.float32)
        flat = hits.reshape(n * rows, width)
        for s0 in range(0, runs, segment):
            s1 = min(runs, s0 + segment)
            full, rest = divmod(s1 - s0, rows)
            chunks = full + (rest > 0)
            sums = into.scratch("sums", (n_parts, chunks, n * rows), np.float32)
            for c in range(full):  # ``rows`` runs at a time: whole 64-bit words
                u = source.random_raw(rows * width // 4).view(np.uint16)
                np.less(u.reshape(1, rows, width), limit, out=below)
                np.copyto(hits, below, casting="unsafe")  # (two steps: faster than one)
                for p in range(n_parts):  # BLAS: the 0/1 times the values' part p
                    np.matmul(flat, parts[p], out=sums[p, c])
            if rest:  # the last runs
                sums[:, full] = 0
                m = rest * width
                u = source.random_raw((m + 3) // 4).view(np.uint16)[:m]
                hit = hits.reshape(-1)[:n * m].reshape(n, rest, width)
                np.less(u.reshape(1, rest, width), limit[:, :rest], out=hit, casting="unsafe")
                for p in range(n_parts):
                    sums[p, full].reshape(n, rows)[:, :rest] = (
                        hit.reshape(n * rest, width) @ parts[p]).reshape(n, rest)
            # each part's sums (below 2**24) as 64-bit integers, times 2**(bits x p) and the
            # divisor, added to the targets' runs s0..s1
            part = into.scratch("part", (chunks, rows), np.uint64)
            by_chunk = sums.reshape(n_parts, chunks, n, rows)
            for i, target in enumerate(targets):
                for p in range(n_parts):
                    np.copyto(part, by_chunk[p, :, i], casting="unsafe")
                    if p:
                        part <<= np.uint64(bits * p)
                    if divisor > 1:
                        part *= np.uint64(divisor)
                    for t in target:
                        t[s0:s0 + full * rows].reshape(full, rows)[...] += part[:full]
                        if rest:
                            t[s0 + full * rows:s1] += part[full, :rest]

    workers = min(_workers(), jobs)
    if workers > 1:
        import itertools
        from concurrent.futures import ThreadPoolExecutor

        counter = itertools.count()

        def work() -> Sums:
            into = Sums()
            while (i := next(counter)) < jobs:
                block(i, into)
            into.memory.clear()
            return into

        with ThreadPoolExecutor(workers) as pool:
            done = [sums.result() for sums in [pool.submit(work) for _ in range(workers)]]
    else:
        done = [Sums()]
        for i in range(jobs):
            block(i, done[0])
    # won by the end of each period (integer sums: the same whatever thread added what)
    won, sure, sure_after = done[0].won, done[0].sure, done[0].sure_after
    for other in done[1:]:
        won += other.won
        sure += other.sure
        sure_after += other.sure_after
    won += sure[:, None]
    # what blocks won by the end of their last period, won by the end of every later one
    later = [each.after for each in done if each.after is not None]
    if later or sure_after.any():
        after = later[0] if later else np.zeros((k, runs), dtype=np.uint64)
        for other in later[1:]:
            after += other
        after += sure_after[:, None]
        won[1:] += np.cumsum(after[:-1], axis=0, dtype=np.uint64)
    # per period: won by its end less won by the end of the period before
    won[1:] -= won[:-1].copy()
    return np.ascontiguousarray(won.view(np.int64).T)


def quantile(values: np.ndarray, q: float) -> int:
    """The nearest-rank ``q`` quantile of the runs: a value one of them took."""
    import numpy as np

    n = values.shape[0]
    rank = max(1, math.ceil(q * n - 1e-9))
    return int(np.partition(values, rank - 1)[rank - 1])
