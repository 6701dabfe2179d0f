"""Exchange rates and conversion (domain.rates): table-driven, plus properties (exactness,
half-to-even rounding done once, the rate in force at a moment)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipectl.domain.rates import (
    Rate,
    RateBook,
    parse_rate,
    round_half_even,
    to_target,
    valid,
)
from pipectl.errors import UsageError

T0 = "2026-01-01T00:00:00Z"


def _book(*rows: tuple[str, str, str, str | None], recorded: str = T0) -> RateBook:
    """Rates (from, to, at date, rate), recorded in this order."""
    return RateBook(Rate(s, t, f"{d}T00:00:00Z", r, recorded, i)
                    for i, (s, t, d, r) in enumerate(rows, 1))


@pytest.mark.parametrize(("text", "canonical"), [
    ("0.92", "0.92"), ("0.920", "0.92"), (" 1.0865 ", "1.0865"), ("1.", "1"), (".5", "0.5"),
    ("25000", "25000"), ("007.50", "7.5"), ("1", "1"), ("0.000001", "0.000001"),
    ("27500.000", "27500"), ("1" * 24, "1" * 24),
])
def test_parse_rate_keeps_the_exact_decimal_in_one_form(text, canonical) -> None:
    assert parse_rate(text) == canonical
    assert Fraction(parse_rate(text)) == Fraction(text.strip())


@pytest.mark.parametrize(("text", "message"), [
    ("0", "zero"), ("0.000", "zero"), ("0,92", "never a comma"), ("1,234.5", "never a comma"),
    ("-1", "not a rate"), ("1e5", "not a rate"), ("", "not a rate"), ("abc", "not a rate"),
    ("1.2.3", "not a rate"), (".", "not a rate"), ("1" * 25, "more than 24 digits"),
    ("1/2", "not a rate"), ("nan", "not a rate"),
])
def test_parse_rate_refuses(text, message) -> None:
    with pytest.raises(UsageError, match=message):
        parse_rate(text)


@pytest.mark.parametrize(("amount", "rounded"), [
    (Fraction(5, 2), 2), (Fraction(7, 2), 4), (Fraction(-5, 2), -2), (Fraction(1, 3), 0),
    (Fraction(2, 3), 1), (Fraction(9, 2), 4), (Fraction(11, 2), 6), (Fraction(0), 0),
    (Fraction(1000001, 2), 500000), (Fraction(1000003, 2), 500002),
])
def test_round_half_even(amount, rounded) -> None:
    assert round_half_even(amount) == rounded


@pytest.mark.parametrize(("minor", "source", "target", "rate", "converted"), [
    (10000, "USD", "EUR", "0.92", 9200),  # 100.00 USD -> 92.00 EUR
    (3250000, "EUR", "USD", "1.0865", 3531125),  # 32,500.00 EUR -> 35,311.25 USD
    (1000, "JPY", "EUR", "0.0062", 620),  # 1,000 JPY (no minor unit) -> 6.20 EUR
    (100, "EUR", "JPY", "162.5", 162),  # 1.00 EUR -> 162.5 yen: to the even whole yen
    (1, "USD", "EUR", "0.5", 0),  # half a cent: to the even cent, 0
    (3, "USD", "EUR", "0.5", 2),  # a cent and a half: to the even cent, 2
    (12345, "EUR", "KWD", "0.33", 40738),  # 123.45 x 0.33 = 40.7385 KWD (3 decimals): even
    (350_000_000, "VND", "EUR", "0.000036", 1260000),  # 350,000,000 VND -> 12,600.00 EUR
])
def test_one_amount_converted_and_rounded_once(minor, source, target, rate, converted) -> None:
    conv = _book((source, target, "2026-01-01", rate)).converter(target, "2026-06-01T00:00:00Z")
    assert conv.one(minor, source) == converted
    assert conv.used[source].text == f"{source}→{target} {rate}"
    assert conv.one(None, source) is None


def test_a_sum_is_rounded_once_not_item_by_item() -> None:
    conv = _book(("USD", "EUR", "2026-01-01", "0.5")).converter("EUR", "2026-02-01T00:00:00Z")
    # three amounts of 1 cent: 0.5 cent each; item by item that is 0 + 0 + 0, exactly 1.5
    assert [conv.one(1, "USD") for _ in range(3)] == [0, 0, 0]
    assert conv.totals({"USD": 3}).minor == 2
    # the weighted sum is a fraction too (value x percent / 100): summed exactly first
    out = conv.totals({"USD": Fraction(101, 100), "EUR": Fraction(1, 2)})
    assert out.minor == 1  # 0.505 + 0.5 = 1.005 cents -> 1
    assert out.kept == {}


@pytest.mark.parametrize(("at", "rate"), [
    ("2025-12-31", None), ("2026-01-05", "0.91"), ("2026-03-31", "0.91"),
    ("2026-04-01", "0.93"), ("2026-11-30", "0.93"), ("2026-12-01", "0.95"),
    ("2030-01-01", "0.95"),
])
def test_the_rate_in_force_at_a_moment(at, rate) -> None:
    book = _book(("USD", "EUR", "2026-04-01", "0.93"), ("USD", "EUR", "2026-01-05", "0.91"),
                 ("USD", "EUR", "2026-12-01", "0.95"))
    found = book.find("USD", "EUR", f"{at}T00:00:00Z")
    assert (found.rate if found else None) == rate


def test_the_inverse_is_used_when_it_is_the_latest_quote() -> None:
    book = _book(("USD", "EUR", "2026-01-01", "0.92"), ("EUR", "USD", "2026-06-01", "1.08"))
    early = book.find("EUR", "USD", "2026-03-01T00:00:00Z")
    assert (early.rate, early.inverse, early.factor) == ("1/0.92", True, Fraction(25, 23))
    late = book.find("USD", "EUR", "2026-07-01T00:00:00Z")
    assert (late.text, late.factor) == ("USD→EUR 1/1.08", Fraction(25, 27))
    same = _book(("USD", "EUR", "2026-01-01", "0.92"), ("EUR", "USD", "2026-01-01", "1.1"))
    assert same.find("USD", "EUR", "2026-02-01T00:00:00Z").rate == "0.92"  # a tie: direct
    assert same.find("EUR", "USD", "2026-02-01T00:00:00Z").rate == "1.1"
    # never through a third currency
    assert _book(("USD", "EUR", "2026-01-01", "0.92"), ("EUR", "VND", "2026-01-01", "27500")
                 ).find("USD", "VND", "2026-02-01T00:00:00Z") is None


def test_a_correction_supersedes_and_a_withdrawal_brings_back_the_earlier_rate() -> None:
    rows = [Rate("USD", "EUR", "2026-01-01T00:00:00Z", "0.9", "2026-01-01T10:00:00Z", 1),
            Rate("USD", "EUR", "2026-06-01T00:00:00Z", "0.29", "2026-06-01T10:00:00Z", 2),
            Rate("USD", "EUR", "2026-06-01T00:00:00Z", "0.92", "2026-06-02T10:00:00Z", 3)]
    at = "2026-07-01T00:00:00Z"
    assert RateBook(rows).find("USD", "EUR", at).rate == "0.92"
    assert [r.rate for r in RateBook(rows).in_force] == ["0.9", "0.92"]
    withdrawn = [*rows, Rate("USD", "EUR", "2026-06-01T00:00:00Z", None,
                             "2026-06-03T10:00:00Z", 4)]
    assert RateBook(withdrawn).find("USD", "EUR", at).rate == "0.9"
    # order of recording decides, not the order rows come in
    assert RateBook(reversed(rows)).find("USD", "EUR", at).rate == "0.92"


def test_an_amount_without_a_rate_stays_in_its_currency_with_a_note() -> None:
    book = _book(("USD", "EUR", "2026-01-05", "0.92"))
    conv = book.converter("EUR", "2026-01-01T00:00:00Z")
    out = conv.totals({"USD": 3250000, "EUR": 100, "VND": 350_000_000})
    assert (out.minor, out.kept) == (100, {"USD": 3250000, "VND": 350_000_000})
    assert out.as_totals() == {"EUR": 100, "USD": 3250000, "VND": 350_000_000}
    assert [m.text for m in conv.missing.values()] == ["no USD→EUR rate before 2026-01-05",
                                                       "no VND→EUR rate"]
    assert conv.heading() == (
        "values in EUR at rates of 2026-01-01; no USD→EUR rate before 2026-01-05: USD amounts "
        "kept in USD; no VND→EUR rate: VND amounts kept in VND")
    later = book.converter("EUR", "2026-11-30T00:00:00Z")
    assert later.totals({"USD": 3250000}).minor == 2990000
    assert later.heading() == "values in EUR at rates of 2026-11-30 (USD→EUR 0.92)"
    assert later.as_json() == {
        "currency": "EUR", "at": "2026-11-30T00:00:00Z",
        "rates": [{"from": "USD", "to": "EUR", "rate": "0.92", "since": "2026-01-05T00:00:00Z",
                   "inverse": False}],
        "missing": []}


@pytest.mark.parametrize(("row", "ok"), [
    (Rate("USD", "EUR", T0, "0.92", T0), True), (Rate("USD", "EUR", T0, None, T0), True),
    (Rate("USD", "EUR", T0, "0.920", T0), False), (Rate("USD", "EUR", T0, "abc", T0), False),
    (Rate("USD", "USD", T0, "1", T0), False), (Rate("usd", "EUR", T0, "1", T0), False),
    (Rate("USD", "EUR", T0, "0", T0), False),
])
def test_valid_rows(row, ok) -> None:
    assert valid(row) is ok
    assert bool(RateBook([row]).in_force) is (ok and row.rate is not None)


# ---------------------------------------------------------------- properties

minors = st.integers(min_value=0, max_value=10**15)
rates = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6,
                    allow_nan=False, allow_infinity=False).map(lambda d: parse_rate(str(d)))
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD", "VND", "CLF"])


@given(minors, rates, currencies, currencies)
def test_conversion_is_exact_and_rounded_half_even_once(minor, rate, source, target) -> None:
    if source == target:
        return
    conv = _book((source, target, "2026-01-01", rate)).converter(target, "2026-02-01T00:00:00Z")
    exact = conv.exact(minor, source)
    # independently, in Decimal with enough digits for any of these amounts exactly
    with localcontext() as ctx:
        ctx.prec = 80
        major = Decimal(minor).scaleb(-_exp(source)) * Decimal(rate)
        expected = major.scaleb(_exp(target)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert exact == Fraction(minor) * Fraction(rate) * Fraction(10) ** (_exp(target)
                                                                          - _exp(source))
    assert conv.one(minor, source) == int(expected)


def _exp(currency: str) -> int:
    from pipectl.values import exponent

    return exponent(currency)


@given(st.lists(st.tuples(minors, currencies), max_size=20), rates, rates)
def test_a_total_is_the_exact_sum_rounded_once(amounts, usd, jpy) -> None:
    book = _book(("USD", "EUR", "2026-01-01", usd), ("JPY", "EUR", "2026-01-01", jpy))
    conv = book.converter("EUR", "2026-01-02T00:00:00Z")
    per: dict[str, int] = {}
    for minor, cur in amounts:
        per[cur] = per.get(cur, 0) + minor
    out = conv.totals(per)
    factors = {"EUR": Fraction(1), "USD": to_target(1, "USD", "EUR", Fraction(usd)),
               "JPY": to_target(1, "JPY", "EUR", Fraction(jpy))}
    exact = sum((Fraction(m) * factors[c] for m, c in amounts if c in factors), Fraction(0))
    converted = any(c in factors for _, c in amounts)
    assert out.minor == (round_half_even(exact) if converted else None)
    assert abs(Fraction(out.minor or 0) - exact) <= Fraction(1, 2)
    assert out.kept == {c: m for c, m in per.items() if c not in factors}


days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@given(st.lists(st.tuples(days, rates, st.booleans()), min_size=1, max_size=12), days)
def test_the_rate_in_force_is_the_latest_quote_not_after_the_moment(quotes, day) -> None:
    """Brute force: of the quotes (either direction) at or before the moment, the one of the
    latest moment, the last recorded of that moment (direct before inverse on a tie)."""
    rows = [Rate(*(("USD", "EUR") if direct else ("EUR", "USD")), f"{d}T00:00:00Z", r,
                 T0, i) for i, (d, r, direct) in enumerate(quotes, 1)]
    at = f"{day}T00:00:00Z"
    found = RateBook(rows).find("USD", "EUR", at)
    before = [r for r in rows if r.at <= at]
    if not before:
        assert found is None
        return
    last = max(r.at for r in before)
    direct = [r for r in before if r.at == last and r.source == "USD"]
    inverse = [r for r in before if r.at == last and r.source == "EUR"]
    latest_direct = max((r for r in rows if r.source == "USD" and r.at <= at),
                        key=lambda r: (r.at, r.id), default=None)
    if direct:
        assert (found.rate, found.at) == (direct[-1].rate, last)
    else:
        assert found.inverse and (found.recorded, found.at) == (inverse[-1].rate, last)
        assert found.factor == 1 / Fraction(inverse[-1].rate)
    assert latest_direct is None or found.at >= latest_direct.at
