"""domain.forecasting against closed forms: the Wilson interval, day samples and their
nearest-rank quantiles, the Brier score and calibration bands, the timing thresholds and the
Monte Carlo draws of the forecast range.

The statistical checks draw seeded futures, so each is deterministic; their tolerances are
still chosen so that a correct implementation passes for any seed with overwhelming
probability: K_SE = 5 standard errors of a (near) normal estimate, two-sided tail
2 * Phi(-5) = 5.7e-7 per comparison. Where one test makes m comparisons the chance of a false
failure is at most m * 5.7e-7 (said at each). Every statistical test runs with several seeds.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.domain import forecasting as f
from pipectl.domain.forecasting import (
    RESOLUTION,
    Z90,
    Band,
    OpenDeals,
    Predictions,
    Sample,
    bands,
    brier,
    quantile,
    simulate,
    thresholds,
    wilson,
)

# 5 standard errors: a normal estimate strays that far with probability 5.7e-7 (two-sided).
K_SE = 5.0
SEEDS = (1, 2, 20260917)
FEW = settings(max_examples=50, deadline=None)


def _quantized(p: float) -> float:
    """The chance simulate actually uses for ``p``: rint(p * 65,536) / 65,536."""
    return float(np.rint(min(max(p, 0.0), 1.0) * RESOLUTION)) / RESOLUTION


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- wilson


def _textbook_wilson(won: int, n: int, z: float = Z90) -> tuple[float, float]:
    """The Wilson bounds in their other textbook form, (2np + z^2 -+ z sqrt(z^2 + 4np(1-p)))
    / (2(n + z^2)), in 50-digit decimals: an independent computation of the same interval."""
    getcontext().prec = 50
    zd, nd = Decimal(z), Decimal(n)
    p = Decimal(won) / nd
    z2 = zd * zd
    root = zd * (z2 + 4 * nd * p * (1 - p)).sqrt()
    denominator = 2 * (nd + z2)
    return float((2 * nd * p + z2 - root) / denominator), float((2 * nd * p + z2 + root)
                                                                 / denominator)


@pytest.mark.parametrize(
    ("won", "n", "low", "high"),
    [
        # pinned from the 50-digit form above (printed once, rounded to 16 digits)
        (5, 10, 0.26927182113826723, 0.73072817886173277),
        (1, 20, 0.011234816850851652, 0.19600723677401638),
        (37, 40, 0.82651982126309962, 0.96962974738826099),
        (120, 400, 0.26375814226866649, 0.33892922421840926),
        (0, 7, 0.0, 0.27876269545254208),
        (7, 7, 0.72123730454745792, 1.0),
    ],
)
def test_wilson_known_values(won: int, n: int, low: float, high: float) -> None:
    # 1e-12: the float64 formula's rounding error is ~1e-16 per operation; 1e-12 leaves room
    # for a dozen operations while still catching any wrong term (e.g. z instead of z^2 moves
    # the bounds by more than 1e-3)
    got = wilson(won, n)
    assert got == pytest.approx((low, high), abs=1e-12)
    assert got == pytest.approx(_textbook_wilson(won, n), abs=1e-12)


@FEW
@given(n=st.integers(1, 10_000), data=st.data())
def test_wilson_matches_the_textbook_form(n: int, data: st.DataObject) -> None:
    won = data.draw(st.integers(0, n))
    low, high = wilson(won, n)
    # 1e-12 as above
    assert (low, high) == pytest.approx(_textbook_wilson(won, n), abs=1e-12)
    assert 0.0 <= low <= high <= 1.0


@pytest.mark.parametrize("n", [0, -1, -50])
def test_wilson_without_trials_is_the_whole_range(n: int) -> None:
    assert wilson(0, n) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 2, 5, 15, 19, 100, 1_000])
def test_wilson_at_none_and_all_won_touches_the_edge(n: int) -> None:
    # the exact bounds are 0 and 1 (the square root equals z^2/2n there); 1e-15 allows the
    # float64 cancellation centre - half, which is of the order of 2**-53
    assert wilson(0, n)[0] == pytest.approx(0.0, abs=1e-15)
    assert wilson(n, n)[1] == pytest.approx(1.0, abs=1e-15)
    assert wilson(0, n)[1] < 1.0 and wilson(n, n)[0] > 0.0


def test_wilson_at_none_and_all_won_is_exactly_0_and_1() -> None:
    for n in range(1, 200):
        assert wilson(0, n)[0] == 0.0, n
        assert wilson(n, n)[1] == 1.0, n


@FEW
@given(n=st.integers(2, 100_000), data=st.data())
def test_wilson_contains_the_observed_share(n: int, data: st.DataObject) -> None:
    won = data.draw(st.integers(1, n - 1))  # 0 and n: see the two tests above
    low, high = wilson(won, n)
    assert low < won / n < high


@FEW
@given(a=st.integers(0, 20), b=st.integers(1, 20), t=st.integers(1, 500))
def test_wilson_narrows_as_n_grows(a: int, b: int, t: int) -> None:
    # the same share a/b seen over b*t and b*(t+1) trials: more trials, a narrower interval
    # (the width 2z sqrt(n p(1-p) + z^2/4) / (n + z^2) decreases in n for every p)
    a = min(a, b)
    low1, high1 = wilson(a * t, b * t)
    low2, high2 = wilson(a * (t + 1), b * (t + 1))
    assert high2 - low2 < high1 - low1


def test_wilson_wider_for_a_higher_confidence() -> None:
    z95 = 1.959963984540054
    low90, high90 = wilson(30, 100)
    low95, high95 = wilson(30, 100, z=z95)
    assert low95 < low90 < 0.3 < high90 < high95
    assert (low95, high95) == pytest.approx(_textbook_wilson(30, 100, z95), abs=1e-12)


def _exact_coverage(p: float, n: int) -> float:
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)
               if wilson(k, n)[0] <= p <= wilson(k, n)[1])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.3, 0.37, 0.5, 0.61, 0.7])
def test_wilson_covers_the_true_share_about_90_percent_of_the_time(p: float, seed: int) -> None:
    n, draws = 50, 2_000
    # The exact coverage (a binomial sum) is not exactly 90 %: the binomial is discrete, so
    # the Wilson interval's coverage at n = 50 oscillates with p; on a grid of 401 values of p
    # over [0.3, 0.7] it ranges from 0.869 (p = 0.33) to 0.926 (p = 0.35), hence +- 0.035.
    exact = _exact_coverage(p, n)
    assert abs(exact - 0.90) < 0.035
    rng = random.Random(seed)
    covered = 0
    for _ in range(draws):
        won = sum(rng.random() < p for _ in range(n))
        low, high = wilson(won, n)
        covered += low <= p <= high
    # the simulated share against the exact one: K_SE binomial standard errors,
    # sqrt(0.9 * 0.1 / 2,000) = 0.0067, so about +- 0.034
    assert abs(covered / draws - exact) < K_SE * _binomial_se(exact, draws)


# ---------------------------------------------------------------- Sample


@FEW
@given(st.lists(st.integers(-30, 400), max_size=60))
def test_sample_of_a_histogram_and_of_a_list_agree(days: list[int]) -> None:
    from_list = Sample.of(days)
    from_histogram = Sample.of(dict(Counter(days)))
    assert from_list == from_histogram
    assert list(from_list.days) == sorted(set(days))
    assert from_list.n == len(days)
    assert all(c > 0 for c in from_list.counts)


def test_sample_of_drops_empty_and_negative_counts() -> None:
    assert Sample.of({5: 0, 3: -2, 9: 2, 1: 1}) == Sample((1, 9), (1, 2))
    assert Sample.of({5: 0}) == Sample() == Sample.of([])
    assert Sample().n == 0


@pytest.mark.parametrize(
    ("seen", "q", "expected"),
    [
        ([1, 2, 3, 4], 0.5, 2),  # even n: rank ceil(2) = 2, the lower middle
        ([1, 2, 3, 4], 0.51, 3),
        ([1, 2, 3, 4], 1.0, 4),
        ([1, 2, 3, 4], 0.25, 1),
        ([1, 2, 3, 4], 0.26, 2),
        ([1, 2, 3, 4], 0.75, 3),
        ([1, 2, 3, 4], 0.01, 1),
        ([3, 1, 2], 0.5, 2),  # odd n: the middle
        ([7], 0.01, 7),
        ([7], 0.5, 7),
        ([7], 1.0, 7),
        ({0: 1, 10: 3}, 0.25, 0),
        ({0: 1, 10: 3}, 0.26, 10),
        ({-5: 2, 0: 2}, 0.5, -5),
        (list(range(1, 11)), 0.1, 1),
        (list(range(1, 11)), 0.7, 7),  # 0.7 * 10 = 7.000000000000001 in floats: still rank 7
        (list(range(1, 11)), 0.9, 9),
        (list(range(1, 101)), 0.1, 10),
        ([], 0.5, None),
        ({4: 0}, 0.5, None),
    ],
)
def test_sample_quantile_is_nearest_rank(seen: list[int] | dict[int, int], q: float,
                                         expected: int | None) -> None:
    assert Sample.of(seen).quantile(q) == expected


@FEW
@given(days=st.lists(st.integers(-10, 100), min_size=1, max_size=50),
       percent=st.integers(1, 100))
def test_sample_quantile_against_sorting(days: list[int], percent: int) -> None:
    rank = math.ceil(Fraction(percent, 100) * len(days))
    assert Sample.of(days).quantile(percent / 100) == sorted(days)[rank - 1]


# ---------------------------------------------------------------- brier and bands


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([Predictions(0.5, 3, 7)], 0.25),
        ([Predictions(0.5, 1, 0), Predictions(0.5, 0, 1)], 0.25),
        ([Predictions(1.0, 4, 0), Predictions(0.0, 0, 6)], 0.0),  # perfect
        ([Predictions(0.0, 4, 0), Predictions(1.0, 0, 6)], 1.0),  # perfectly wrong
        ([Predictions(0.3, 3, 7)], (3 * 0.49 + 7 * 0.09) / 10),
        ([Predictions(0.3, 3, 7), Predictions(0.9, 1, 1)],
         (3 * 0.49 + 7 * 0.09 + 1 * 0.01 + 1 * 0.81) / 12),
        ([Predictions(0.2, 0, 0), Predictions(0.8, 1, 0)], 0.04),  # an empty group adds nothing
    ],
)
def test_brier_closed_forms(groups: list[Predictions], expected: float) -> None:
    # 1e-12: a handful of float64 products and sums, each rounding at ~1e-16
    assert brier(groups) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("groups", [[], [Predictions(0.4, 0, 0)]])
def test_brier_without_decided_deals_is_none(groups: list[Predictions]) -> None:
    assert brier(groups) is None


@FEW
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 5), st.integers(0, 5)),
                max_size=10))
def test_brier_is_the_mean_over_the_deals(rows: list[tuple[int, int, int]]) -> None:
    groups = [Predictions(p / 100, w, lo) for p, w, lo in rows]
    deals = [(g.p, 1) for g in groups for _ in range(g.won)]
    deals += [(g.p, 0) for g in groups for _ in range(g.lost)]
    if not deals:
        assert brier(groups) is None
        return
    # 1e-12 as above
    assert brier(groups) == pytest.approx(
        sum((p - o) ** 2 for p, o in deals) / len(deals), abs=1e-12)


def _band_of(p: float, width: int = 10) -> Band:
    (band,) = [b for b in bands([Predictions(p, 1, 0)], width) if b.n]
    return band


@pytest.mark.parametrize(
    ("p", "width", "low", "high"),
    [
        (0.0, 10, 0, 10),
        (0.05, 10, 0, 10),
        (0.1, 10, 10, 20),
        (0.15, 10, 10, 20),
        (0.2, 10, 20, 30),
        (0.29, 10, 20, 30),  # 0.29 * 100 = 28.999999999999996: still the 20-30 band
        (0.57, 10, 50, 60),  # 56.99999999999999
        (1 - 0.9, 10, 10, 20),  # 0.09999999999999998: a float error under 10 % is still 10 %
        (0.3 - 0.1, 10, 20, 30),  # 0.19999999999999998
        (0.7, 10, 70, 80),
        (0.95, 10, 90, 100),
        (1.0, 10, 90, 100),  # 100 % belongs to the last band
        (0.5, 25, 50, 75),
        (1.0, 25, 75, 100),
        (0.99, 30, 90, 100),  # 30 does not divide 100: the last band is 90-100
    ],
)
def test_the_band_of_a_probability(p: float, width: int, low: int, high: int) -> None:
    b = _band_of(p, width)
    assert (b.low, b.high) == (low, high)


def test_bands_mean_predicted_and_share_won() -> None:
    got = bands([Predictions(0.1, 1, 3), Predictions(0.15, 2, 2), Predictions(1.0, 3, 1),
                 Predictions(0.9, 0, 0), Predictions(0.0, 0, 2)])
    assert [(b.low, b.high) for b in got] == [(k, k + 10) for k in range(0, 100, 10)]
    by_low = {b.low: b for b in got}
    # 10-20: 8 deals at 0.1 and 0.15 (4 each), 3 won
    assert (by_low[10].n, by_low[10].won) == (8, 3)
    # 1e-12: a few float64 sums and a division
    assert by_low[10].predicted == pytest.approx((0.1 * 4 + 0.15 * 4) / 8, abs=1e-12)
    assert by_low[10].actual == pytest.approx(3 / 8, abs=1e-12)
    # 90-100: the 100 % group (the 0.9 group has no deal: it weighs nothing)
    assert by_low[90] == Band(90, 100, 4, 1.0, 0.75, 3)
    assert by_low[0] == Band(0, 10, 2, 0.0, 0.0, 0)
    for low in (20, 30, 40, 50, 60, 70, 80):
        assert by_low[low] == Band(low, low + 10, 0, None, None, 0)


# ---------------------------------------------------------------- thresholds

ANCHOR = 1_000
EVEN = Sample.of({0: 1, 10: 1, 20: 1, 30: 1})  # closes at anchor + 0, 10, 20 or 30


def _deals(probability: list[float], anchor: list[int], timing: list[int],
           samples: list[Sample]) -> OpenDeals:
    d = len(probability)
    return OpenDeals([100] * d, ["USD"] * d, probability, anchor, timing, samples)


@pytest.mark.parametrize(
    ("today", "ends", "p", "expected", "timed"),
    [
        # all four observations are on or after today: close < 1005 is day 0 only, < 1010 too
        # (the ends are exclusive: a close on day 10 is on 1010), < 1011 adds day 10
        (1_000, [1_005, 1_010, 1_011, 1_031], 1.0, [1 / 4, 1 / 4, 2 / 4, 1.0], True),
        # today 1015: days 0 and 10 are in the past; conditioned on close >= today, days 20
        # and 30 remain, each with chance 1/2
        (1_015, [1_020, 1_021, 1_030, 1_031], 1.0, [0.0, 1 / 2, 1 / 2, 1.0], True),
        # ... times the probability of winning
        (1_015, [1_021, 1_031], 0.6, [0.3, 0.6], True),
        # a close on today counts as not before today: days 10, 20, 30 remain
        (1_010, [1_011, 1_021, 1_100], 1.0, [1 / 3, 2 / 3, 1.0], True),
        (1_030, [1_031], 0.5, [0.5], True),
        # a period ending before today has nothing
        (1_015, [1_005, 1_012, 1_025], 1.0, [0.0, 0.0, 1 / 2], True),
        # every observation before today: not timed, a row of zeros
        (1_031, [1_040, 1_100], 1.0, [0.0, 0.0], False),
        # the probability is clipped to 0..1
        (1_000, [1_031], 1.5, [1.0], True),
        (1_000, [1_031], -0.2, [0.0], True),
    ],
)
def test_thresholds_one_deal(today: int, ends: list[int], p: float, expected: list[float],
                             timed: bool) -> None:
    out, ok = thresholds(_deals([p], [ANCHOR], [0], [EVEN]), today, ends)
    assert out.shape == (1, len(ends)) and out.dtype == np.float64
    # 1e-12: one division and one product in float64
    assert out[0] == pytest.approx(expected, abs=1e-12)
    assert ok.tolist() == [timed]


def test_thresholds_weigh_observations_by_count() -> None:
    out, _ = thresholds(_deals([1.0], [ANCHOR], [0], [Sample.of({0: 3, 20: 1})]), ANCHOR,
                        [1_001, 1_021])
    assert out[0] == pytest.approx([3 / 4, 1.0], abs=1e-12)  # 1e-12 as above


def test_thresholds_several_deals_and_untimed_ones() -> None:
    late = Sample.of([5, 5, 15])
    deals = _deals(
        probability=[0.5, 0.8, 0.9, 0.7, 0.4, 1.0],
        anchor=[ANCHOR, 990, ANCHOR, ANCHOR, 900, ANCHOR],
        # -1: nothing times it; 7: no such sample; 2: an empty sample; 900 + 5/15 is past
        timing=[0, 1, -1, 7, 1, 2],
        samples=[EVEN, late, Sample()],
    )
    out, ok = thresholds(deals, 1_000, [1_010, 1_020])
    assert ok.tolist() == [True, True, False, False, False, False]
    expected = [
        [0.5 * 1 / 4, 0.5 * 2 / 4],
        # anchor 990: closes on 995, 995, 1005; today 1000 leaves 1005 only, before 1010
        [0.8, 0.8],
        [0.0, 0.0],
        [0.0, 0.0],
        [0.0, 0.0],
        [0.0, 0.0],
    ]
    assert out == pytest.approx(np.array(expected), abs=1e-12)  # 1e-12 as above


def test_thresholds_without_deals_or_periods() -> None:
    out, ok = thresholds(_deals([], [], [], []), 1_000, [1_010])
    assert out.shape == (0, 1) and ok.shape == (0,)
    out, ok = thresholds(_deals([0.5], [ANCHOR], [0], [EVEN]), 1_000, [])
    assert out.shape == (1, 0) and ok.tolist() == [True]


@FEW
@given(
    samples=st.lists(st.dictionaries(st.integers(-20, 60), st.integers(0, 3), max_size=6),
                     min_size=1, max_size=3),
    rows=st.lists(st.tuples(st.integers(0, 100), st.integers(970, 1_030), st.integers(-1, 3)),
                  min_size=1, max_size=6),
    today=st.integers(980, 1_040),
    ends=st.lists(st.integers(960, 1_100), min_size=1, max_size=4).map(sorted),
)
def test_thresholds_against_counting(samples: list[dict[int, int]],
                                     rows: list[tuple[int, int, int]], today: int,
                                     ends: list[int]) -> None:
    parsed = [Sample.of(s) for s in samples]
    deals = _deals([p / 100 for p, _, _ in rows], [a for _, a, _ in rows],
                   [t for _, _, t in rows], parsed)
    out, ok = thresholds(deals, today, ends)
    for i, (percent, anchor, t) in enumerate(rows):
        closes = [] if not 0 <= t < len(samples) else [
            anchor + d for d, c in samples[t].items() for _ in range(max(c, 0))]
        remaining = [c for c in closes if c >= today]
        assert ok[i] == bool(remaining)
        for k, end in enumerate(ends):
            share = Fraction(sum(c < end for c in remaining), len(remaining) or 1)
            # 1e-12 as above
            assert out[i, k] == pytest.approx(float(share * Fraction(percent, 100)), abs=1e-12)


# ---------------------------------------------------------------- simulate


def _workers(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(f, "_workers", lambda: n)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.0, 1e-6, 0.05, 0.3, 0.5, 0.77, 0.999, 1.0])
def test_one_deal_is_won_with_its_probability(p: float, seed: int) -> None:
    runs = 20_000
    out = simulate([7], np.array([[p]]), runs, seed)
    assert out.shape == (runs, 1) and out.dtype == np.int64
    assert set(np.unique(out).tolist()) <= {0, 7}
    share = float((out[:, 0] == 7).mean())
    q = _quantized(p)  # 1e-6 is below half a step of 1/65,536: never won
    if q in (0.0, 1.0):
        assert share == q  # certain either way: no randomness
    else:
        # K_SE binomial standard errors, e.g. p = 0.5: sqrt(0.25 / 20,000) = 0.0035, +- 0.018;
        # the quantization is taken out by comparing with the quantized chance
        assert abs(share - q) < K_SE * _binomial_se(q, runs)


def test_within_half_a_step_of_1_is_certain() -> None:
    # deterministic: rounds to 65,536 / 65,536 (a floor would lose 1 run in 65,536)
    out = simulate([1] * 256, np.full((256, 1), 1 - 0.4 / RESOLUTION), 16_384, 1)
    assert (out == 256).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("steps", "rounded"),
    [(0.4, 0), (0.6, 1), (1.0, 1), (1.4, 1), (1.6, 2), (3.0, 3)],
)
def test_a_chance_is_rounded_to_1_in_65536(steps: float, rounded: int, seed: int) -> None:
    # 256 deals x 16,384 runs = 2**22 draws of a chance of ``steps`` / 65,536, which is
    # resolved to the nearest whole number of steps: won rounded * 64 times on average
    trials = 256 * 16_384
    won = int(simulate([1] * 256, np.full((256, 1), steps / RESOLUTION), 16_384, seed).sum())
    mean = trials * rounded / RESOLUTION
    if rounded == 0:
        assert won == 0  # a limit of 0: no 16-bit draw is below it
    else:
        # K_SE binomial standard errors sqrt(n q (1 - q)) = 8 sqrt(rounded): 64 +- 40 for one
        # step, 128 +- 57 for two; a floor (0 for 0.6) or a ceiling (128 for 1.4) falls out
        assert abs(won - mean) < K_SE * math.sqrt(mean * (1 - rounded / RESOLUTION))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_deal_spread_over_periods(seed: int) -> None:
    runs = 20_000
    out = simulate([7], np.array([[0.2, 0.5, 0.9]]), runs, seed)
    assert set(np.unique(out).tolist()) <= {0, 7}
    # won in one period at most: each run's total is 0 or the value
    assert set(np.unique(out.sum(axis=1)).tolist()) <= {0, 7}
    assert ((out > 0).sum(axis=1) <= 1).all()
    shares = (out == 7).mean(axis=0)
    # 3 comparisons of K_SE binomial standard errors (at most sqrt(0.4 * 0.6 / 20,000) =
    # 0.0035): a false failure about 3 * 5.7e-7
    for share, q in zip(shares, [0.2, 0.3, 0.4], strict=True):
        assert abs(share - q) < K_SE * _binomial_se(q, runs)


@pytest.mark.parametrize(
    ("cumulative", "period"),
    [
        ([0.0, 0.0, 1.0], 2),
        ([1.0, 1.0, 1.0], 0),
        ([0.0, 1.0, 1.0, 1.0], 1),
    ],
)
def test_a_certain_deal_is_won_in_its_period(cumulative: list[float], period: int) -> None:
    out = simulate([5], np.array([cumulative]), 3_000, 1)
    expected = np.zeros_like(out)
    expected[:, period] = 5
    assert np.array_equal(out, expected)


def test_periods_outside_a_deals_span_get_nothing() -> None:
    out = simulate([5], np.array([[0.0, 0.5, 0.5, 0.5]]), 5_000, 3)
    assert not out[:, [0, 2, 3]].any()
    assert out[:, 1].any() and not out[:, 1].all()  # 5,000 runs at 1/2: both, surely


# Values 2**i: any run's total in a period has deal i's bit set exactly when deal i was won in
# that period (no carries), so the totals say which deal was won when.
def _bits(values: list[int], out: np.ndarray) -> np.ndarray:
    """won[r, i, k]: deal i (of value 2**e) was won in run r, period k."""
    exps = np.array([v.bit_length() - 1 for v in values], dtype=np.uint64)
    return ((out.astype(np.uint64)[:, None, :] >> exps[None, :, None]) & np.uint64(1)) == 1


def _random_cumulative(rng: np.random.Generator, d: int, k: int) -> np.ndarray:
    """Non-decreasing rows in 0..1 with some zeros, ones and flat stretches."""
    steps = rng.choice([0.0, 0.0, 0.1, 0.25, 0.4, 1.0], size=(d, k))
    return np.minimum(np.cumsum(steps, axis=1), 1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("exponents", "block_deals", "workers"),
    [
        (range(45), f.BLOCK_DEALS, 1),  # every value < 2**45: the float64 path
        (range(63), f.BLOCK_DEALS, 1),  # values up to 2**62 (sum 2**63 - 1): the integer path
        (range(45), 8, 2),  # several blocks, shared among threads
        (range(63), 8, 2),
    ],
)
def test_each_deal_is_won_with_its_own_chances(exponents: range, block_deals: int,
                                               workers: int, seed: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f, "BLOCK_DEALS", block_deals)
    _workers(monkeypatch, workers)
    values = [1 << e for e in exponents]
    k, runs = 4, 10_000
    # shuffled, so the sort by first and last period inside simulate reorders the deals
    cumulative = _random_cumulative(np.random.default_rng(seed), len(values), k)
    out = simulate(values, cumulative, runs, seed)
    assert out.dtype == np.int64
    won = _bits(values, out)
    # nothing but the deals' bits, and each deal won in one period at most
    assert (out.sum(axis=1) == (won.sum(axis=2) * np.array(values)).sum(axis=1)).all()
    assert (won.sum(axis=2) <= 1).all()
    q = np.rint(cumulative * RESOLUTION) / RESOLUTION
    per_period = np.diff(np.concatenate([np.zeros((len(values), 1)), q], axis=1), axis=1)
    shares = won.mean(axis=0)
    se = np.sqrt(per_period * (1 - per_period) / runs)
    # up to 63 x 4 = 252 comparisons of K_SE standard errors: a false failure at most
    # 252 * 5.7e-7 = 1.4e-4; a chance of 0 or 1 must be met exactly (se = 0)
    assert (np.abs(shares - per_period) <= K_SE * se).all()


def _cumulants(values: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Mean, variance and fourth cumulant of sum v_i B_i with independent B_i ~ Bernoulli(p_i):
    cumulants add over independent terms; v B has v p, v^2 p(1-p), v^4 p(1-p)(1-6p(1-p))."""
    pq = p * (1 - p)
    return (float((values * p).sum()), float((values**2 * pq).sum()),
            float((values**4 * pq * (1 - 6 * pq)).sum()))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("block_deals", [f.BLOCK_DEALS, 1])
def test_independent_deals_mean_and_variance(seed: int, block_deals: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # block_deals 1: every deal its own generator; identical deals in blocks that shared draws
    # would be perfectly correlated and the variance up to 4x too large
    monkeypatch.setattr(f, "BLOCK_DEALS", block_deals)
    values = np.array([100, 250, 1_000, 40, 5_000, 1_000, 1_000, 3], dtype=np.float64)
    p = np.array([0.1, 0.5, 0.9, 0.3, 0.05, 0.5, 0.5, 1.0])
    # the same deals spread over two periods: the total over the periods is what is won
    cumulative = np.column_stack([p * 0.5, p])
    runs = 20_000
    out = simulate(values.astype(np.int64), cumulative, runs, seed)
    totals = out.sum(axis=1)
    assert totals.dtype == np.int64
    mean, var, kappa4 = _cumulants(values, np.rint(p * RESOLUTION) / RESOLUTION)
    # the mean: K_SE standard errors sqrt(var / runs) (= 9.7 of a mean of 2,243.5)
    assert abs(totals.mean() - mean) < K_SE * math.sqrt(var / runs)
    # the sample variance: its standard error is sqrt((mu4 - var^2) / runs) with
    # mu4 = kappa4 + 3 var^2, i.e. sqrt((kappa4 + 2 var^2) / runs) (about 5 % of var here)
    assert abs(totals.var(ddof=1) - var) < K_SE * math.sqrt((kappa4 + 2 * var**2) / runs)


@pytest.mark.parametrize("seed", SEEDS)
def test_totals_are_exact_subset_sums(seed: int) -> None:
    values = [2**60, 1, 2**52 + 1, 3]  # none of 2**60 + 1, 2**60 + 4 is a float64
    runs = 5_000
    out = simulate(values, np.array([[1.0], [0.5], [0.5], [0.5]]), runs, seed)
    subset_sums = {2**60 + a + b + c for a in (0, 1) for b in (0, 2**52 + 1) for c in (0, 3)}
    assert set(out[:, 0].tolist()) <= subset_sums
    # 8 equally likely sums over 5,000 runs: each seen (missing one has chance 8 (7/8)^5000)
    assert set(out[:, 0].tolist()) == subset_sums


def test_big_values_take_the_integer_path_exactly() -> None:
    out = simulate([2**50], np.array([[0.0, 1.0]]), 4_000, 5)
    assert (out[:, 0] == 0).all() and (out[:, 1] == 2**50).all()
    out = simulate([2**62, 2**62 - 1], np.array([[1.0], [1.0]]), 1_000, 5)
    assert (out[:, 0] == 2**63 - 1).all()


def test_float_path_sums_are_exact_up_to_the_limit() -> None:
    # 256 deals just under 2**45 (one block): the float64 sum reaches 2**53 - 256, exact
    v = (1 << 45) - 1
    out = simulate([v] * 256, np.ones((256, 1)), 100, 1)
    assert (out[:, 0] == 256 * v).all()
    # at 1/2 each, every total is m v + b (m <= 255 of the big deals, b the deal of 1)
    out = simulate([v] * 255 + [1], np.full((256, 1), 0.5), 2_000, 1)[:, 0]
    assert ((out % v <= 1) & (out // v <= 255)).all()


@pytest.mark.parametrize(
    ("values", "cumulative", "runs", "shape"),
    [
        ([], np.zeros((0, 3)), 10, (10, 3)),
        ([5], np.zeros((1, 0)), 10, (10, 0)),
        ([5], np.array([[0.5]]), 0, (0, 1)),
        ([5, 6], np.zeros((2, 2)), 10, (10, 2)),  # no chance at all
        ([5], np.array([[1e-9]]), 10, (10, 1)),  # rounds to no chance
    ],
)
def test_simulate_nothing_to_win(values: list[int], cumulative: np.ndarray, runs: int,
                                 shape: tuple[int, int]) -> None:
    out = simulate(values, cumulative, runs, 1)
    assert out.shape == shape and out.dtype == np.int64 and not out.any()


def _many_deals(d: int = 600, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(99)
    return rng.integers(1, 10_000, d), _random_cumulative(rng, d, k)


def test_same_seed_same_output_whatever_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    values, cumulative = _many_deals()  # 600 deals: 3 blocks of 256
    runs = 3_000  # not a multiple of BLOCK_RUNS: a partial last chunk
    got = []
    for n in (1, 2, 4):
        _workers(monkeypatch, n)
        got.append(simulate(values, cumulative, runs, 11))
    assert all(np.array_equal(got[0], g) for g in got[1:])
    assert np.array_equal(got[0], simulate(values, cumulative, runs, 11))
    assert np.array_equal(got[0], simulate(values, cumulative, runs, (11,)))  # (seed...,)
    assert not np.array_equal(got[0], simulate(values, cumulative, runs, 12))
    assert not np.array_equal(got[0], simulate(values, cumulative, runs, (11, 12)))


def test_many_blocks_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    _workers(monkeypatch, 2)
    d, runs = 600, 3_000
    out = simulate(np.ones(d, dtype=np.int64), np.full((d, 1), 0.5), runs, 4)
    # Binomial(600, 1/2) per run: mean 300, variance 150; K_SE standard errors of the mean,
    # sqrt(150 / 3,000) = 0.22
    assert abs(out[:, 0].mean() - 300) < K_SE * math.sqrt(150 / runs)


def test_draws_differ_between_chunks_of_runs() -> None:
    # each chunk of BLOCK_RUNS runs continues the block's generator; a restart would repeat
    # the first chunk (equal by chance: 2**-1024)
    chunk = f.BLOCK_RUNS
    out = simulate([1], np.array([[0.5]]), 3 * chunk, 8)[:, 0]
    assert not np.array_equal(out[:chunk], out[chunk:2 * chunk])
    assert not np.array_equal(out[chunk:2 * chunk], out[2 * chunk:])


def test_distinct_seeds_give_distinct_draws() -> None:
    cumulative = np.full((3, 1), 0.5)
    assert not np.array_equal(simulate([1, 2, 4], cumulative, 2_000, 7),
                              simulate([1, 2, 4], cumulative, 2_000, (7, 0)))


def _reference(values: list[int], cumulative: np.ndarray, runs: int, seed: int) -> np.ndarray:
    """simulate's draws and sums spelled out deal by deal: the deals with a chance, ordered by
    their first and last period with one; in blocks of BLOCK_DEALS, each block's stream of
    64-bit words from ``generator(seed, (BLOCKS_KEY, block))`` cut into 16-bit draws, run by
    run (runs x deals); a deal won by the end of period k when its draw is below
    rint(cumulative x 65,536). Python integers, taken modulo 2**64 at the end as int64."""
    d, k = cumulative.shape
    limits = np.rint(np.clip(cumulative, 0.0, 1.0) * RESOLUTION).astype(np.int64)
    chance = [i for i in range(d) if limits[i, -1] > 0]
    first = {i: int(np.argmax(limits[i] > 0)) for i in chance}
    last = {i: max(int(np.argmax(limits[i] == limits[i, -1])), first[i]) for i in chance}
    order = sorted(chance, key=lambda i: (first[i], last[i], i))
    won_by = [[0] * k for _ in range(runs)]
    for block, a in enumerate(range(0, len(order), f.BLOCK_DEALS)):
        deals = order[a:a + f.BLOCK_DEALS]
        n = runs * len(deals)
        words = f.generator(seed, (f.BLOCKS_KEY, block)).bit_generator.random_raw(-(-n // 4))
        u = words.view(np.uint16)[:n].reshape(runs, len(deals))
        for c, i in enumerate(deals):
            for r in range(runs):
                for j in range(k):
                    if u[r, c] < limits[i, j]:
                        won_by[r][j] += values[i]
    out = [[row[0], *(row[j] - row[j - 1] for j in range(1, k))] for row in won_by]
    return np.array([[(x + 2**63) % 2**64 - 2**63 for x in row] for row in out], dtype=np.int64)


@pytest.mark.parametrize(
    ("block_deals", "block_runs", "chunk_entries", "segment", "workers"),
    [
        (f.BLOCK_DEALS, f.BLOCK_RUNS, f._CHUNK_ENTRIES, f._SEGMENT_RUNS, 1),  # as shipped
        (256, 4, f._CHUNK_ENTRIES, f._SEGMENT_RUNS, 2),  # 4 runs at a time
        (5, 12, 40, 24, 3),  # tiny blocks, chunks and segments, not dividing the runs
        (3, 1024, 1, 8, 2),
    ],
)
def test_simulate_is_the_reference_draw_by_draw(block_deals: int, block_runs: int,
                                                chunk_entries: int, segment: int,
                                                workers: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # how many runs a block draws at a time, how its sums are taken and how many threads
    # share the blocks change nothing: the same draws, the same exact sums
    monkeypatch.setattr(f, "BLOCK_DEALS", block_deals)
    monkeypatch.setattr(f, "BLOCK_RUNS", block_runs)
    monkeypatch.setattr(f, "_CHUNK_ENTRIES", chunk_entries)
    monkeypatch.setattr(f, "_SEGMENT_RUNS", segment)
    _workers(monkeypatch, workers)
    rng = np.random.default_rng(17)
    d, k, runs = 23, 4, 103  # runs not a multiple of 4: the last word is cut
    values = [int(x) for x in rng.integers(0, 10**9, d)]
    values[:6] = [2**45 + 1, 2**62, -(2**40), 0, 3 * 10**15, -7]  # beyond float64, negative
    cumulative = _random_cumulative(rng, d, k)
    cumulative[6] = [0.0, 0.0, 1.0, 1.0]  # certain from period 2
    cumulative[7] = [0.0, 0.0, 0.0, 0.0]  # no chance: no draw
    cumulative[8] = [1e-6, 0.3, 0.3, 0.9999999]  # rounds to 0, then certain at the end
    got = simulate(values, cumulative, runs, 5)
    assert got.dtype == np.int64
    assert np.array_equal(got, _reference(values, cumulative, runs, 5))


@pytest.mark.parametrize("seed", SEEDS)
def test_simulate_is_the_reference_for_a_shared_divisor(seed: int) -> None:
    # values with a common divisor (taken out of the sums and put back) and one block of 256
    # deals at values up to 2**45 (parts of 16 bits: three)
    rng = np.random.default_rng(seed)
    values = [int(x) * 1_000 for x in rng.integers(1, 10**8, 256)]
    values[0] = 2**45 // 1_000 * 1_000
    cumulative = np.sort(rng.random((256, 2)) * 0.6, axis=1)
    assert np.array_equal(simulate(values, cumulative, 40, seed),
                          _reference(values, cumulative, 40, seed))


def test_deals_of_no_value_and_blocks_of_certain_deals(monkeypatch: pytest.MonkeyPatch) -> None:
    # blocks of 2 deals: one of values 0 only, one certain in every period it has a chance
    # in (no draw counts in either), one drawn; the draws are each block's own all the same
    monkeypatch.setattr(f, "BLOCK_DEALS", 2)
    values = [0, 0, 4, 9, 5, 6]
    cumulative = np.array([[0.2, 0.5, 0.5], [0.1, 0.1, 0.1],
                           [0.0, 1.0, 1.0], [0.0, 1.0, 1.0],
                           [0.0, 0.0, 0.5], [0.0, 0.0, 0.25]])
    out = simulate(values, cumulative, 1_001, 3)
    assert np.array_equal(out, _reference(values, cumulative, 1_001, 3))
    assert (out[:, 1] == 13).all() and not out[:, 0].any()


# ---------------------------------------------------------------- quantile of the runs


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        (np.arange(1, 11), 0.1, 1),
        (np.arange(1, 11), 0.5, 5),
        (np.arange(1, 11), 0.9, 9),
        (np.arange(1, 11), 1.0, 10),
        (np.arange(1, 101), 0.1, 10),
        (np.arange(1, 101), 0.9, 90),
        (np.arange(100, 0, -1), 0.1, 10),  # order does not matter
        (np.array([5, 5, 5, 9]), 0.75, 5),
        (np.array([2**62, 3, 2**62 + 1]), 1.0, 2**62 + 1),  # exact beyond float64
        (np.array([42]), 0.01, 42),
    ],
)
def test_quantile_of_runs_is_nearest_rank(values: np.ndarray, q: float, expected: int) -> None:
    before = values.copy()
    got = quantile(values, q)
    assert got == expected and type(got) is int
    assert np.array_equal(values, before)  # the runs are not reordered


@FEW
@given(values=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=200),
       percent=st.integers(1, 100))
def test_quantile_of_runs_against_sorting(values: list[int], percent: int) -> None:
    rank = math.ceil(Fraction(percent, 100) * len(values))
    got = quantile(np.array(values, dtype=np.int64), percent / 100)
    assert got == sorted(values)[rank - 1]
    assert got in values
