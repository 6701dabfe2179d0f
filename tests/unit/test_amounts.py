"""Amounts with more decimals than their currency (rounded half to even in an import), and
amounts that read two ways ('1.500': 1.50 or 1,500.00), refused where typed and judged per
file in an import (issue 12)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipectl import values
from pipectl.errors import UsageError
from pipectl.transfer.parsing import parse_amount, read_amount, separators

# ---------------------------------------------------------------- rounding an import's amounts


@pytest.mark.parametrize(
    ("text", "currency", "minor", "off"),
    [
        # the real exports' discounts: three and four decimals in a two-decimal currency
        ("9225.225", "USD", 922522, "0.005"),  # half to even: ...22|5 stays at 22
        ("9225.235", "USD", 922524, "0.005"),  # ...23|5 goes up to 24
        ("7564.6845", "USD", 756468, "0.0045"),
        ("7564.6851", "USD", 756469, "0.0049"),
        ("11760000.000000002", "USD", 1176000000, "0.000000002"),  # HubSpot's float noise
        ("0.004", "EUR", 0, "0.004"),
        # no decimals (JPY, VND)
        ("0.5", "JPY", 0, "0.5"), ("1.5", "JPY", 2, "0.5"), ("2.5", "JPY", 2, "0.5"),
        ("150000.49", "JPY", 150000, "0.49"), ("25000000.7", "VND", 25000001, "0.3"),
        # three decimals (KWD, BHD)
        ("1.2345", "KWD", 1234, "0.0005"), ("1.2355", "KWD", 1236, "0.0005"),
        ("99.99999", "BHD", 100000, "0.00001"),
        # exact amounts are what they were: nothing rounded
        ("100000.0", "USD", 10_000_000, None), ("1,234.50", "USD", 123_450, None),
        ("1.500", "KWD", 1500, None), ("1.50000", "USD", 150, None), ("1234", "JPY", 1234, None),
    ],
)
def test_round_money_half_to_even(text: str, currency: str, minor: int, off: str | None) -> None:
    got, by = values.round_money(text, currency)
    assert got == minor
    assert (None if by is None else f"{by.normalize():f}") == off


@pytest.mark.parametrize(
    ("text", "minor", "off"),
    [("1.234,50", 123450, None), ("12,50", 1250, None), ("1.500", 150000, None),
     ("1 500,5", 150050, None), ("9225,225", 922522, "0.005"), ("0,5", 50, None)],
)
def test_round_money_with_a_decimal_comma(text: str, minor: int, off: str | None) -> None:
    got, by = values.round_money(text, "EUR", comma=True)
    assert (got, None if by is None else f"{by.normalize():f}") == (minor, off)


@pytest.mark.parametrize(
    ("text", "comma", "message"),
    [("1,234.50", True, "a point only groups thousands"), ("12,50", False,
     "a comma only groups thousands"), ("-1.5", False, "not an amount"),
     ("9" * 16 + ".5", False, "too large")],
)
def test_round_money_refuses(text: str, comma: bool, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        values.round_money(text, "EUR", comma=comma)


def test_the_largest_amount_rounds_into_range_or_is_refused() -> None:
    """Rounding up may carry an amount past the largest value: refused, not stored."""
    assert values.round_money("9999999999999.994", "USD")[0] == values.MAX_MINOR - 1
    with pytest.raises(UsageError, match="too large"):
        values.round_money("9999999999999.995", "USD")


@given(
    whole=st.integers(min_value=0, max_value=10**10),  # within the largest value of CLF
    decimals=st.text(alphabet="0123456789", min_size=0, max_size=40),
    currency=st.sampled_from(["USD", "JPY", "KWD", "CLF", "VND", "BHD"]),
)
def test_round_money_is_decimal_half_even(whole: int, decimals: str, currency: str) -> None:
    """Whatever the number of decimals: Decimal's ROUND_HALF_EVEN, and the change is exactly
    the distance between the amount written and the amount kept."""
    text = f"{whole}.{decimals}" if decimals else str(whole)
    exp = values.exponent(currency)
    written = Decimal(text)
    want = written.quantize(Decimal(1).scaleb(-exp), rounding=ROUND_HALF_EVEN)
    minor, off = values.round_money(text, currency)
    assert Decimal(minor).scaleb(-exp) == want
    if off is None:
        assert written == want
        assert values.parse_money(text, currency) == minor  # the strict reading agrees
    else:
        with localcontext() as exact:
            exact.prec = 100  # the default 28 digits would round the difference
            assert off == abs(written - want) and off > 0
        assert off <= Decimal(5).scaleb(-exp - 1)  # at most half a minor unit


def test_read_amount_drops_symbols_and_empty_is_none() -> None:
    assert read_amount("$9,225.225", "USD") == (922522, Decimal("0.005"))
    assert read_amount("  ", "USD") is None
    assert parse_amount("€1.234,567", "EUR", comma=True) == 123457
    with pytest.raises(ValueError, match="'ten' is not an amount"):
        read_amount("ten", "USD")


# ---------------------------------------------------------------- two readings, typed


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("1.500", "PLN", "--value 1.500 is ambiguous: 1.50 PLN or 1,500.00 PLN? "
                         "(write 1.50 or 1500)"),
        ("1,500", "PLN", "--value 1,500 is ambiguous: 1,500.00 PLN or 1.50 PLN? "
                         "(write 1500 or 1.50)"),
        ("12.345", "EUR", "--value 12.345 is ambiguous: 12.345 EUR or 12,345.00 EUR? "
                          "(write 12345)"),
        ("999,999", "USD", "--value 999,999 is ambiguous: 999,999.00 USD or 999.999 USD? "
                           "(write 999999)"),
        ("+1.500", "PLN", "--value +1.500 is ambiguous: 1.50 PLN or 1,500.00 PLN? "
                          "(write 1.50 or 1500)"),
        # a currency without decimals: 1.000 was read as 1 yen
        ("1.000", "JPY", "--value 1.000 is ambiguous: 1 JPY or 1,000 JPY? (write 1 or 1000)"),
        ("1.500", "JPY", "--value 1.500 is ambiguous: 1.5 JPY or 1,500 JPY? (write 1500)"),
        # three decimals: the comma still reads two ways
        ("1,500", "KWD", "--value 1,500 is ambiguous: 1,500.000 KWD or 1.500 KWD? "
                         "(write 1500 or 1.500)"),
        ("1,500", "CLF", "--value 1,500 is ambiguous: 1,500.0000 CLF or 1.5000 CLF? "
                         "(write 1500 or 1.5000)"),
    ],
)
def test_typed_amounts_with_two_readings_are_refused(text: str, currency: str,
                                                     message: str) -> None:
    with pytest.raises(UsageError) as caught:
        values.parse_typed_money(text, currency)
    assert str(caught.value) == message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1.50", "PLN", 150), ("1500", "PLN", 150000), ("1.5", "PLN", 150),
        ("0.500", "PLN", 50),  # a lone 0 groups no thousands: one reading
        ("1,500.00", "PLN", 150000), ("1,500,000", "PLN", 150000000),  # the point decides
        ("1234.500", "PLN", 123450), ("12.3456", "CLF", 123456),  # no group of four digits
        ("1 500", "PLN", 150000), ("1_500", "PLN", 150000),  # never a decimal separator
        ("1.500", "KWD", 1500), ("0.500", "KWD", 500),  # KWD's own form, as pipectl shows it
        ("1.500", "CLF", 15000),  # four decimals: no thousands either
        ("1,500", "JPY", 1500),  # no 1.5 JPY: the comma can only group thousands
        ("12000", "EUR", 1200000), ("12000.50", "EUR", 1200050),
    ],
)
def test_typed_amounts_with_one_reading(text: str, currency: str, minor: int) -> None:
    assert values.parse_typed_money(text, currency) == minor


@given(
    whole=st.integers(min_value=1, max_value=999),
    part=st.integers(min_value=0, max_value=999),
    sep=st.sampled_from([".", ","]),
    currency=st.sampled_from(["PLN", "EUR", "USD", "JPY", "VND", "KWD", "BHD", "CLF"]),
)
def test_one_separator_before_three_digits(whole: int, part: int, sep: str,
                                           currency: str) -> None:
    """'W.PPP' or 'W,PPP' is refused unless the currency leaves one reading: '.' in a currency
    of three or more decimals, ',' in one of none (then it groups thousands)."""
    text = f"{whole}{sep}{part:03d}"
    exp = values.exponent(currency)
    if sep == "," and exp == 0:
        assert values.parse_typed_money(text, currency) == whole * 1000 + part
    elif sep == "." and exp >= 3:
        assert values.parse_typed_money(text, currency) == (whole * 1000 + part) * 10 ** (exp - 3)
    else:
        with pytest.raises(UsageError, match=f"^--value {text} is ambiguous: "):
            values.parse_typed_money(text, currency)
        assert values.two_readings(text, currency) is not None


def test_a_comma_group_that_starts_with_zero_is_no_amount() -> None:
    """'0,500' was read as 500: a European's half."""
    with pytest.raises(UsageError, match="comma only groups thousands"):
        values.parse_money("0,500", "EUR")


# ---------------------------------------------------------------- two readings, in a file


@pytest.mark.parametrize(
    ("cell", "currency", "said"),
    [
        ("1.500", "USD", 1), ("12.345", "EUR", 1), ("$999.999", "USD", 1), ("1,500", "PLN", 1),
        ("1.000", "JPY", 1),
        ("100000.0", "USD", -1), ("30.0", "USD", -1), ("9225.225", "USD", -1),
        ("7564.6845", "USD", -1), ("1,234.50", "USD", -1), ("0.500", "USD", -1),
        ("1,500", "JPY", -1), ("1.5", "KWD", -1), ("11760000.000000002", "USD", -1),
        ("1500", "USD", 0), ("", "USD", 0), ("1.500", "KWD", 0), ("1.500", "CLF", 0),
    ],
)
def test_what_a_cell_says_of_the_decimal_separator(cell: str, currency: str, said: int) -> None:
    assert separators(cell, currency) == said
