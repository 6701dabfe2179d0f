"""Exchange rates and the conversion of money between currencies: exact, never a float.

A rate says that one unit of ``source`` is worth ``rate`` units of ``target`` from the moment
``at`` on (until the next rate of that pair). It is kept as the exact decimal text the user gave
(``parse_rate``), and read as a ``Fraction``. A figure is converted only when the user asks
(``--in``): at the rate in force at the figure's moment, the exact amounts summed as fractions
and rounded half-to-even once, to the target currency's minor unit. An amount in a currency with
no rate in force is never dropped: it stays in its own currency, with a note saying why.

Which rate is in force for ``source -> target`` at a moment: the latest rate of that pair whose
moment is not after it; or, when the user recorded the other direction more recently (or only
that one), the inverse of that rate (1 / rate). Never a chain through a third currency. Among
several rates recorded for one pair and moment, the latest recorded is the one in force (a
correction); one recorded without a rate withdraws that moment's rate (``pipectl rate rm``).

Pure: no I/O, no clock, no SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from pipectl.errors import UsageError
from pipectl.values import exponent, round_half_even

MAX_DIGITS = 24  # digits in a rate, before and after the point together

_RATE = re.compile(r"([0-9]*)(?:\.([0-9]*))?")  # ASCII digits: \d takes ١ (Arabic)


def parse_rate(text: str, field: str = "rate") -> str:
    """A rate as typed -> its canonical exact decimal text ('0.920' -> '0.92', '1.' -> '1').

    Digits with at most one decimal point, more than zero. A comma is refused, not guessed at
    ('0,92' would be 0.92 to one reader and 92 to another)."""
    raw = text.strip()
    m = _RATE.fullmatch(raw)
    if not raw or m is None or not (m.group(1) or m.group(2)):
        comma = "," in raw
        raise UsageError(
            f"{field} {text!r} is not a rate"
            + (" (a rate is written with a decimal point, never a comma)" if comma else ""),
            hint="write it like 0.92 or 25000: how many units of the second currency one unit "
            "of the first is worth",
        )
    whole = (m.group(1) or "0").lstrip("0") or "0"
    frac = (m.group(2) or "").rstrip("0")
    if len(whole.lstrip("0")) + len(frac) > MAX_DIGITS:
        raise UsageError(f"{field} {text!r} has more than {MAX_DIGITS} digits")
    canonical = f"{whole}.{frac}" if frac else whole
    if Fraction(canonical) == 0:
        raise UsageError(f"{field} {text!r} is zero: a rate must be more than zero")
    return canonical


def valid(rate: Rate) -> bool:
    """Is this row one ``pipectl rate set`` or ``rate rm`` records: two distinct currency
    codes, a rate in its canonical text (or none: a withdrawal)?"""
    codes = all(len(c) == 3 and c.isascii() and c.isalpha() and c.isupper()
                for c in (rate.source, rate.target))
    if not codes or rate.source == rate.target:
        return False
    if rate.rate is None:
        return True
    try:
        return parse_rate(rate.rate) == rate.rate
    except UsageError:
        return False


def pair_text(source: str, target: str) -> str:
    return f"{source}→{target}"


@dataclass(frozen=True)
class Rate:
    """One recorded row: ``rate`` None withdraws the rate of that pair and moment."""

    source: str
    target: str
    at: str  # in force from (ISO UTC)
    rate: str | None
    recorded_at: str
    id: int = 0


@dataclass(frozen=True)
class Applied:
    """The rate a conversion from ``source`` to ``target`` used."""

    source: str
    target: str
    at: str  # the moment the rate is in force from
    recorded: str  # the rate as recorded (for target -> source when ``inverse``)
    inverse: bool  # the user recorded target -> source; this is 1 / that rate

    @property
    def factor(self) -> Fraction:
        """Units of ``target`` per unit of ``source``, exactly."""
        r = Fraction(self.recorded)
        return 1 / r if self.inverse else r

    @property
    def rate(self) -> str:
        """The rate source -> target as text: the recorded decimal, or 1/that decimal."""
        return f"1/{self.recorded}" if self.inverse else self.recorded

    @property
    def text(self) -> str:
        """'USD→EUR 0.92' (or 'USD→EUR 1/1.08' from a recorded EUR→USD 1.08)."""
        return f"{pair_text(self.source, self.target)} {self.rate}"

    def as_json(self) -> dict[str, object]:
        return {"from": self.source, "to": self.target, "rate": self.rate, "since": self.at,
                "inverse": self.inverse}


@dataclass(frozen=True)
class Missing:
    """No rate for ``source -> target`` is in force at ``at``; ``first``: the earliest moment
    one is (None: none recorded at all)."""

    source: str
    target: str
    at: str
    first: str | None

    @property
    def text(self) -> str:
        """'no USD→EUR rate before 2026-01-05' / 'no USD→EUR rate'."""
        pair = pair_text(self.source, self.target)
        if self.first is None:
            return f"no {pair} rate"
        return f"no {pair} rate before {moment_text(self.first)}"

    def as_json(self) -> dict[str, object]:
        return {"from": self.source, "to": self.target, "first_rate_at": self.first,
                "note": self.text}


def moment_text(at: str) -> str:
    """A moment as people read it: its date alone at midnight UTC, else the ISO moment."""
    return at[:10] if at.endswith("T00:00:00Z") else at


class RateBook:
    """Every rate recorded, answering which one is in force for a pair at a moment."""

    def __init__(self, rows: Iterable[Rate]) -> None:
        latest: dict[tuple[str, str, str], Rate] = {}
        for r in sorted(rows, key=lambda r: (r.recorded_at, r.id)):
            if not valid(r):  # written around pipectl (db check names it): left out
                continue
            latest[(r.source, r.target, r.at)] = r  # the latest recorded for a pair and moment
        self._pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for (s, t, at), r in sorted(latest.items()):
            if r.rate is not None:
                self._pairs.setdefault((s, t), []).append((at, r.rate))
        self.in_force = [r for _, r in sorted(latest.items()) if r.rate is not None]

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def _latest(self, source: str, target: str, at: str) -> tuple[str, str] | None:
        found = None
        for when, rate in self._pairs.get((source, target), ()):
            if when > at:
                break
            found = (when, rate)
        return found

    def find(self, source: str, target: str, at: str) -> Applied | None:
        """The rate in force for ``source -> target`` at ``at`` (see the module's docstring)."""
        direct = self._latest(source, target, at)
        other = self._latest(target, source, at)
        if direct is not None and (other is None or direct[0] >= other[0]):
            return Applied(source, target, direct[0], direct[1], inverse=False)
        if other is not None:
            return Applied(source, target, other[0], other[1], inverse=True)
        return None

    def partners(self, currency: str) -> set[str]:
        """The currencies with a rate recorded to or from ``currency`` (either direction)."""
        return {t if s == currency else s for s, t in self._pairs if currency in (s, t)}

    def first(self, source: str, target: str) -> str | None:
        """The earliest moment a rate of the pair (either direction) is in force from."""
        found = [w for p in ((source, target), (target, source))
                 for w, _ in self._pairs.get(p, ())[:1]]
        return min(found) if found else None

    def converter(self, target: str, at: str) -> Converter:
        return Converter(self, target, at)


def to_target(minor: int | Fraction, source: str, target: str, factor: Fraction) -> Fraction:
    """An amount in ``source``'s minor units, in ``target``'s minor units, exactly."""
    return Fraction(minor) * factor * Fraction(10) ** (exponent(target) - exponent(source))


@dataclass
class Converted:
    """Amounts per currency in one target currency: ``minor`` the converted part (rounded once;
    None when nothing could be converted), ``kept`` the amounts in currencies with no rate in
    force, in their own currency."""

    target: str
    minor: int | None
    kept: dict[str, int]

    def as_totals(self) -> dict[str, int]:
        """Converted and kept together, one amount per currency (never added across)."""
        out = dict(self.kept)
        if self.minor is not None:
            out[self.target] = out.get(self.target, 0) + self.minor
        return out


class Converter:
    """Conversions into ``target`` at the rates in force at ``at``; remembers the rates it used
    and the currencies it had none for, to say so beside the figures."""

    def __init__(self, book: RateBook, target: str, at: str) -> None:
        self.book, self.target, self.at = book, target, at
        self.used: dict[str, Applied] = {}
        self.missing: dict[str, Missing] = {}

    def factor(self, currency: str) -> Fraction | None:
        """Minor units of the target per minor unit of ``currency``; None without a rate."""
        if currency == self.target:
            return Fraction(1)
        applied = self.book.find(currency, self.target, self.at)
        if applied is None:
            self.missing.setdefault(currency, Missing(currency, self.target, self.at,
                                                      self.book.first(currency, self.target)))
            return None
        self.used.setdefault(currency, applied)
        return to_target(1, currency, self.target, applied.factor)

    def factors(self) -> dict[str, Fraction]:
        """The factor (see ``factor``) of every currency that has a rate in force, the target's
        own included, without noting any as used: what a query that sorts by converted value
        needs before it knows which currencies its rows hold."""
        out = {self.target: Fraction(1)}
        for cur in self.book.partners(self.target):
            applied = self.book.find(cur, self.target, self.at)
            if applied is not None:
                out[cur] = to_target(1, cur, self.target, applied.factor)
        return out

    def note(self, currencies: Iterable[str]) -> None:
        """Note the rate used, or missing, for each of ``currencies`` (those the figures
        hold)."""
        for cur in currencies:
            self.factor(cur)

    def exact(self, minor: int | Fraction, currency: str) -> Fraction | None:
        """``minor`` units of ``currency`` in the target's minor units, exactly (None: no
        rate)."""
        f = self.factor(currency)
        return None if f is None else Fraction(minor) * f

    def one(self, minor: int | None, currency: str) -> int | None:
        """One amount converted and rounded (None: unknown, or no rate)."""
        if minor is None:
            return None
        exact = self.exact(minor, currency)
        return None if exact is None else round_half_even(exact)

    def sums(self, amounts: Mapping[str, int | Fraction]) -> dict[str, int | Fraction]:
        """Per currency: the amounts that have a rate as one exact sum in the target (not
        rounded), the others as they are."""
        out: dict[str, int | Fraction] = {}
        for cur, v in sorted(amounts.items()):
            e = self.exact(v, cur)
            key = cur if e is None else self.target
            out[key] = out.get(key, 0) + (v if e is None else e)
        return out

    def totals(self, amounts: Mapping[str, int | Fraction]) -> Converted:
        """Amounts per currency (exact minor units; a weighted sum may be a fraction) as one
        sum in the target, rounded once, and the amounts that have no rate, kept as they
        are (rounded, when a fraction)."""
        total = Fraction(0)
        converted = False
        kept: dict[str, int] = {}
        for cur, amount in sorted(amounts.items()):
            exact = self.exact(amount, cur)
            if exact is None:
                kept[cur] = round_half_even(Fraction(amount))
            else:
                total += exact
                converted = True
        return Converted(self.target, round_half_even(total) if converted else None, kept)

    def rates_text(self) -> str:
        """'USD→EUR 0.92, VND→EUR 1/27000' (the rates used), or '' when none was."""
        return ", ".join(a.text for _, a in sorted(self.used.items()))

    def heading(self, when: str | None = None) -> str:
        """The line said with converted figures: 'values in EUR at rates of 2026-11-30
        (USD→EUR 0.92); no VND→EUR rate: VND amounts kept in VND'."""
        at = when or f"at rates of {moment_text(self.at)}"
        used = self.rates_text()
        out = f"values in {self.target} {at}" + (f" ({used})" if used else "")
        for cur, m in sorted(self.missing.items()):
            out += f"; {m.text}: {cur} amounts kept in {cur}"
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "currency": self.target,
            "at": self.at,
            "rates": [a.as_json() for _, a in sorted(self.used.items())],
            "missing": [m.as_json() for _, m in sorted(self.missing.items())],
        }


def currency_arg(text: str) -> str:
    """--in's currency, checked as every currency code is."""
    from pipectl.values import currency_code

    try:
        return currency_code(text)
    except UsageError as exc:
        raise UsageError(f"--in: {exc.message}") from None
