"""Parsing and formatting of the values users type: text, money, dates and moments.

Pure functions. Bad input raises UsageError with a message a user understands.
Money is integer minor units per currency; time is UTC, stored as ISO 8601 text
``YYYY-MM-DDTHH:MM:SSZ`` (fixed width, so text order is time order).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fractions import Fraction
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from pipectl.errors import UsageError

MAX_TEXT = 2000  # characters in any one text field (name, note, reason, ...)
# Values lie below a quadrillion minor units (9,999,999,999,999.99 USD): far beyond any deal.
# Sums of them may not fit SQLite's int64 (100 deals at the most, weighted at 100%, pass
# 2**63); every money sum is exact all the same (store.sql.exact_sum). A limit low enough for
# int64 to hold 10 million deals x 100% would be 9.2 * 10**9 minor units: 92,233.72 in a
# currency of cents such as IDR, too small for real deals.
MAX_MINOR = 10**15
DEFAULT_CURRENCY = "USD"

# ISO 4217 currencies whose minor unit is not the cent.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}

# The calendar pipectl accepts, for every date and moment a user or a file gives (--at, --as-of,
# PIPECTL_NOW, --close, --due, --in, --from, --to, the dates of an import), in UTC. Wide enough
# for any deal; narrow enough that nothing computed from it (a timezone shift, a week's or a
# year's end, a forecast's periods before and after, +1 day) leaves Python's calendar (years 1
# to 9999) or the fixed four-digit-year text moments are stored and compared as.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
DATE_RANGE = f"dates and times must lie between {FIRST_DAY} and {LAST_DAY} (UTC)"

# how far after now a moment stated as a fact may lie (--at, an import's times): clocks
# differ a little; anything later is in the future
FUTURE_SLACK = timedelta(minutes=5)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# ---------------------------------------------------------------- text


def clean_text(value: str, field: str, *, required: bool = False, multiline: bool = False) -> str:
    """NFC-normalise, strip, reject control characters and overlong text."""
    text = unicodedata.normalize("NFC", value).strip()
    if not multiline:
        text = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    if _CONTROL.search(text):
        raise UsageError(f"{field} contains a control character")
    if _SURROGATE.search(text):  # half of a UTF-16 pair: no text can hold it (nor can UTF-8)
        raise UsageError(f"{field} contains a character that is not text (a lone surrogate)")
    if required and not text:
        raise UsageError(f"{field} may not be empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"{field} is too long ({len(text)} characters; at most {MAX_TEXT})")
    return text


def optional_text(value: str | None, field: str, *, multiline: bool = False) -> str | None:
    if value is None:
        return None
    text = clean_text(value, field, multiline=multiline)
    return text or None


def fold(text: str) -> str:
    """The form text is searched and names are matched in, as a person types them: without
    accents and case. "Nguyễn Thị Hằng" -> "nguyen thi hang", "Łódź" -> "lodz", "Straße" ->
    "strasse", "Øre" -> "ore". NFKD, the diacritics of Latin, Greek, Cyrillic, Hebrew and
    Arabic letters dropped, case-folded, the letters that do not decompose (ł, đ, ø, æ, ...)
    spelt in ASCII, then NFC (so Hangul and kana stay composed). ASCII is only lower-cased."""
    if text.isascii():
        return text.lower()
    bare = _MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()
    return unicodedata.normalize("NFC", bare.translate(_LETTERS))


# Combining marks that fold() drops: the diacritical marks (and their supplements and
# extensions), Hebrew points and Arabic harakat. Other scripts' combining signs (Indic vowel
# signs, Thai vowels, kana voicing) are part of the letter and are kept.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
                    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
                    "\u064b-\u065f\u0670]")
# Lower-case letters that NFKD leaves whole, as a person without the key types them.
_LETTERS = str.maketrans({
    "ł": "l", "đ": "d", "ð": "d", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th",
    "ħ": "h", "ŧ": "t", "ŋ": "n", "ĸ": "k", "ƀ": "b", "ɓ": "b", "ƈ": "c", "ȼ": "c",
    "ɗ": "d", "ƌ": "d", "ɖ": "d", "ɇ": "e", "ǝ": "e", "ə": "e", "ɛ": "e", "ƒ": "f",
    "ɠ": "g", "ǥ": "g", "ɨ": "i", "ɉ": "j", "ƙ": "k", "ƚ": "l", "ɲ": "n", "ƞ": "n",
    "ɵ": "o", "ɔ": "o", "ƥ": "p", "ɍ": "r", "ƭ": "t", "ʈ": "t", "ʉ": "u", "ʋ": "v",
    "ƴ": "y", "ɏ": "y", "ƶ": "z", "ȥ": "z",
})


# ---------------------------------------------------------------- money


def currency_code(value: str) -> str:
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise UsageError(f"currency {value!r} is not a three-letter ISO 4217 code (e.g. EUR)")
    return code


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


# digits, or digits grouped by three with one separator throughout (',' '_' or ' '); then the
# decimals after a point. A comma is never a decimal point: '12,50' and '1.500,00' are refused,
# not read as 1,250 and 1.5; nor is '0,500' read as 500 (no number's first group is a 0).
_AMOUNT = re.compile(
    r"\+?(?:\d+|[1-9]\d{0,2}(?:,\d{3})+|\d{1,3}(?:_\d{3})+|\d{1,3}(?: \d{3})+)(?:\.\d*)?|\+?\.\d+"
)
# one '.' or ',' after one to three digits (not a lone 0), then exactly three digits: '1.500',
# '12,345'. A reader who writes the decimal point as '.' takes it one way, a reader who writes
# it as ',' (most of Europe) the other: 1.500 is one and a half, or fifteen hundred.
_TWO_WAYS = re.compile(r"\+?([1-9]\d{0,2})([.,])(\d{3})")


def _decimal(text: str, field: str, comma: bool) -> Any:
    """The amount ``text`` writes, as an exact Decimal (UsageError when it is none). With
    ``comma``, the decimal separator is the comma and '.' (or ' ', '_') groups thousands."""
    raw = text.strip()
    if comma:
        raw = raw.translate(_SWAP)
    if not _AMOUNT.fullmatch(raw):
        grouped = ("." if comma else ",") in raw
        shown = "a point only groups thousands, as in 1.234,50" if comma else \
            "a comma only groups thousands, as in 1,234.50"
        raise UsageError(
            f"{field} {text!r} is not an amount" + (f" ({shown})" if grouped else ""),
            hint="write it like 12000 or 12000,50; it may not be negative" if comma else
            "write it like 12000 or 12000.50; it may not be negative",
        )
    raw = raw.replace(",", "").replace("_", "").replace(" ", "")
    from decimal import Decimal  # here: reads never need it (~1 ms)

    return Decimal(raw)  # exact: the regex admits only decimals


_SWAP = str.maketrans(".,", ",.")
_PLAIN = re.compile(r"([0-9]{1,16})(?:\.([0-9]*))?")  # digits, a point, digits: most cells


def _too_large(text: str, currency: str, field: str) -> UsageError:
    most = format_money(MAX_MINOR - 1, currency)
    return UsageError(f"{field} {text!r} is too large (at most {most} {currency})")


def parse_money(text: str, currency: str, field: str = "value") -> int:
    """'12000.50' in EUR -> 1200050. Accepts thousands separators (',', '_' or ' ', in
    groups of three: '1,234.50'); the decimal separator is the point. More decimals than the
    currency has are refused (see ``round_money`` for an import's amounts)."""
    from decimal import localcontext

    amount = _decimal(text, field, False)
    exp = exponent(currency)
    with localcontext() as ctx:
        ctx.prec = len(text) + exp + 2  # exact: the default 28 digits would round
        minor = amount.scaleb(exp)
    if minor != minor.to_integral_value():
        raise UsageError(f"{field} {text!r} has more than {exp} decimals for {currency}")
    if minor >= MAX_MINOR:
        raise _too_large(text, currency, field)
    return int(minor)


def round_money(text: str, currency: str, field: str = "value", *,
                comma: bool = False) -> tuple[int, Any]:
    """An amount of a file: minor units, rounded half to even to the currency's minor unit
    ('9225.225' USD -> 922522, '7564.6845' -> 756468, '0.5' JPY -> 0); and by how much that
    changed it (an exact Decimal in the currency's units: 0.005, 0.0045, 0.5), None when it
    did not. ``comma``: the file writes the decimal separator as a comma ('1.234,50')."""
    exp = exponent(currency)
    plain = None if comma else _PLAIN.fullmatch(text)
    if plain is not None and len(plain.group(2) or "") <= exp:  # the usual cell: no Decimal
        minor = int(plain.group(1)) * 10**exp + int((plain.group(2) or "").ljust(exp, "0") or 0)
        if minor >= MAX_MINOR:
            raise _too_large(text, currency, field)
        return minor, None
    from decimal import ROUND_HALF_EVEN, localcontext

    amount = _decimal(text, field, comma)
    with localcontext() as ctx:
        ctx.prec = len(text) + exp + 20  # exact: the default 28 digits would round
        exact = amount.scaleb(exp)
        minor = exact.to_integral_value(rounding=ROUND_HALF_EVEN)
        off = None if minor == exact else abs(exact - minor).scaleb(-exp)
    if minor >= MAX_MINOR:
        raise _too_large(text, currency, field)
    return int(minor), off


def money_text(amount: Any, currency: str) -> str:
    """An amount as pipectl shows money ('1,500.00 PLN'), or as written when the currency
    cannot hold it ('1.234 PLN')."""
    exp = exponent(currency)
    minor = amount.scaleb(exp)
    if minor != minor.to_integral_value():
        return f"{amount.normalize():f} {currency}"
    whole, part = divmod(int(minor), 10**exp)
    return f"{whole:,}" + (f".{part:0{exp}d}" if exp else "") + f" {currency}"


def two_readings(text: str, currency: str) -> tuple[Any, Any] | None:
    """The two amounts ``text`` may mean in ``currency`` ('1.500': 1.5 or 1500), as pipectl
    reads it first (the point a decimal point, the comma a thousands separator) and as a
    European reader does second; None when it means one amount only.

    One '.' or ',' between one to three digits (not a lone 0) and exactly three digits has two
    readings, except '.' in a currency of three or more decimals (1.500 KWD is how KWD writes
    one and a half, and how pipectl shows it) and ',' in one of none (1,500 JPY: there is no
    1.5 JPY)."""
    m = _TWO_WAYS.fullmatch(text.strip())
    if m is None:
        return None
    whole, sep, part = m.groups()
    exp = exponent(currency)
    if (sep == "." and exp >= 3) or (sep == "," and exp == 0):
        return None
    from decimal import Decimal

    point, thousands = Decimal(f"{whole}.{part}"), Decimal(whole + part)
    return (point, thousands) if sep == "." else (thousands, point)


def parse_typed_money(text: str, currency: str, option: str = "--value",
                      field: str = "value") -> int:
    """An amount a user types (``option``): ``parse_money`` (its errors name ``field``), but an
    amount with two readings ('1.500' PLN: 1.50 or 1,500.00) is refused with both, never
    guessed."""
    both = two_readings(text, currency)
    if both is not None:
        first, second = both
        spelled = [_spelling(a, currency) for a in both]
        said = " or ".join(s for s in spelled if s is not None)
        raise UsageError(
            f"{option} {text.strip()} is ambiguous: {money_text(first, currency)} or "
            f"{money_text(second, currency)}?",
            hint=f"write {said}",
        )
    return parse_money(text, currency, field)


def _spelling(amount: Any, currency: str) -> str | None:
    """How to type ``amount`` with one reading (None: the currency cannot hold it)."""
    exp = exponent(currency)
    minor = amount.scaleb(exp)
    if minor != minor.to_integral_value():
        return None
    if amount == amount.to_integral_value():
        return str(int(amount))
    return format_money(int(minor), currency)


def format_money(minor: int, currency: str) -> str:
    """Exact decimal string: 1200050 EUR -> '12000.50'."""
    exp = exponent(currency)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 10**exp)
    return f"{sign}{q}.{r:0{exp}d}"


def round_half_even(amount: Fraction) -> int:
    """An exact fraction to the nearest whole number (of minor units); a half goes to the even
    one (as Decimal's ROUND_HALF_EVEN)."""
    return round(amount)  # Fraction.__round__: exact, ties to even


def weighted_minor(value_x_percent: int) -> int:
    """Sum of value x probability-percent -> minor units, rounded half-even once (exact
    integer arithmetic: the same result as Decimal's ROUND_HALF_EVEN)."""
    q, r = divmod(value_x_percent, 100)  # floor division: 0 <= r < 100, also below zero
    if r > 50 or (r == 50 and q % 2):
        q += 1
    return q


def parse_probability(value: int | str) -> int:
    try:
        p = int(str(value).strip().rstrip("%"))
    except ValueError as exc:
        raise UsageError(f"probability {value!r} is not a whole number of percent") from exc
    if not 0 <= p <= 100:
        raise UsageError(f"probability {p} is not between 0 and 100")
    return p


# ---------------------------------------------------------------- dates and moments


def in_range(day: date) -> bool:
    """Does ``day`` lie in the calendar pipectl accepts (``FIRST_DAY`` to ``LAST_DAY``)?"""
    return FIRST_DAY <= day <= LAST_DAY


def _out_of_range(field: str, text: str, utc: str | None = None) -> UsageError:
    shown = f" ({utc} in UTC)" if utc else ""
    return UsageError(f"{field} {text!r}{shown} is out of range: {DATE_RANGE}")


def parse_date(text: str, field: str = "date") -> date:
    """An ISO date (YYYY-MM-DD) in the accepted range (``FIRST_DAY`` to ``LAST_DAY``)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"{field} {text!r} is not a valid date", hint="use YYYY-MM-DD") from exc
    if not in_range(day):
        raise _out_of_range(field, text)
    return day


def parse_moment(text: str, field: str = "--at", zone: tzinfo | None = UTC) -> datetime:
    """An ISO date or datetime, in UTC. A date means the start of that day in ``zone`` (its
    midnight, or the end of the clocks' jump where midnight does not exist); a time without
    an offset is ``zone``'s local time (UTC by default; None: the system's local zone). A local
    time the clocks skip or pass twice (a DST change) is refused, with the offsets to write."""
    raw = text.strip()
    day = re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw) is not None
    try:
        if day:
            moment = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        else:
            moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError as exc:
        raise UsageError(
            f"{field} {text!r} is not a valid date or time",
            hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
        ) from exc
    if moment.tzinfo is None and zone is not UTC:
        moment = in_zone(moment, zone, field, text, day_start=day)
    return utc_moment(moment, field, text)


def in_zone(naive: datetime, zone: tzinfo | None, field: str = "--at", text: str | None = None,
            *, day_start: bool = False) -> datetime:
    """A wall-clock time in ``zone`` (None: the system's) as an aware moment. Where the clocks
    skip it (spring forward) or pass it twice (fall back) it is refused (UsageError), unless
    ``day_start``: a day then begins at its first moment (the jump's end, the first pass)."""
    def attach(fold: int) -> datetime:
        if zone is None:
            return naive.replace(fold=fold).astimezone()
        return naive.replace(tzinfo=zone, fold=fold)

    try:
        first, second = attach(0), attach(1)
        back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None, fold=0)
    except (OverflowError, ValueError, OSError) as exc:  # beyond what the zone can say
        raise _out_of_range(field, text or naive.isoformat()) from exc
    if day_start or (back == naive and first.utcoffset() == second.utcoffset()):
        return first
    given = text.strip() if text else naive.isoformat()
    where = getattr(zone, "key", None) or "your local time zone"
    spelled = [f"{naive.isoformat()}{_offset(m.utcoffset())}" for m in (first, second)]
    if back != naive:  # in the gap
        raise UsageError(
            f"{field} {given!r} does not exist in {where}: the clocks skip it (a DST change)",
            hint=f"write it with an offset, e.g. {spelled[0]} or {spelled[1]}")
    raise UsageError(
        f"{field} {given!r} happens twice in {where} (the clocks go back): which one?",
        hint=f"write {spelled[0]} (the first) or {spelled[1]} (the second)")


def _offset(offset: timedelta | None) -> str:
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    hours, mins = divmod(abs(minutes), 60)
    return f"{'+' if minutes >= 0 else '-'}{hours:02d}:{mins:02d}"


def utc_moment(moment: datetime, field: str = "--at", text: str | None = None) -> datetime:
    """``moment`` in UTC (no offset means UTC), to the second, in the accepted range
    (``FIRST_DAY`` to ``LAST_DAY``); UsageError naming ``field`` (and ``text``, as given)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    given = moment.isoformat() if text is None else text
    shifted = bool(moment.utcoffset())
    try:
        moment = moment.astimezone(UTC).replace(microsecond=0)
    except OverflowError as exc:  # an offset that shifts it before year 1 or after 9999
        raise _out_of_range(field, given) from exc
    if not in_range(moment.date()):
        raise _out_of_range(field, given, iso(moment) if shifted else None)
    return moment


def iso(moment: datetime) -> str:
    """The stored form of a moment: UTC, seconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str) -> datetime:
    """A moment in the stored form, as a file gives it (ValueError when it is not one, or lies
    outside the accepted range)."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if not in_range(moment.date()):
        raise ValueError(f"{text!r} is out of range: {DATE_RANGE}")
    return moment

