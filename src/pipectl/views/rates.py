"""Exchange rates for people (a table) and programs (JSON), and the line that says which rates
converted a figure."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pipectl.domain.rates import pair_text
from pipectl.localtime import shown
from pipectl.localtime import shown_day_or_moment as moment_text
from pipectl.views.table import Column, Table, echo

if TYPE_CHECKING:
    from pipectl.domain.rates import Converter
    from pipectl.services.rates import Listed


def listing_json(rows: list[Listed]) -> list[dict[str, Any]]:
    return [{"from": r.rate.source, "to": r.rate.target, "rate": r.rate.rate,
             "at": r.rate.at, "until": r.until, "recorded_at": r.rate.recorded_at,
             "state": r.state} for r in rows]


def listing(rows: list[Listed], every: bool = False) -> None:
    if not rows:
        echo("No rates recorded (pipectl rate set USD EUR 0.92 records one)")
        return
    columns = [Column("Pair", flexible=False), Column("Rate", justify="right", flexible=False),
               Column("From", flexible=False), Column("Until", flexible=False),
               Column("Recorded", flexible=False)]
    if every:
        columns.append(Column("State", flexible=False))
    table = Table(*columns)
    for r in rows:
        cells = [pair_text(r.rate.source, r.rate.target),
                 "-" if r.rate.rate is None else r.rate.rate, moment_text(r.rate.at),
                 moment_text(r.until) if r.until else "",
                 shown(r.rate.recorded_at)]
        if every:
            cells.append(r.state)
        table.add_row(*cells)
    table.write()


def heading(conv: Converter, when: str | None = None) -> str:
    """The converter's line, as a sentence on its own: 'Values in EUR at rates of ...'."""
    text = conv.heading(when)
    return text[:1].upper() + text[1:]


def converted_row(row: dict[str, Any], conv: Converter) -> dict[str, Any]:
    """A deal's row with its value in the target currency, when it has a rate (else as it
    is: in its own currency)."""
    value = conv.one(row["value_minor"], row["currency"])
    if value is None:
        return row
    return {**row, "value_minor": value, "currency": conv.target}


def board_in(columns: list[dict[str, Any]], conv: Converter) -> list[dict[str, Any]]:
    """The board's columns (``views.deals.board_data``) with their values converted: each
    stage's value and weighted value summed exactly and rounded once, amounts without a rate
    kept in their own currency; ``_value_exact`` lets the board's total round once too."""
    from pipectl.values import round_half_even, weighted_minor
    from pipectl.views.common import money

    out = []
    for col in columns:
        exact_values = conv.sums(col["_value"])
        weighted = conv.sums(col["_exact"])  # value x percent, not yet divided by 100
        values = {c: round_half_even(Fraction(v)) for c, v in exact_values.items()}  # once
        rounded = {c: weighted_minor(v) for c, v in weighted.items()}
        out.append({
            **col,
            "value": {c: money(v, c) for c, v in sorted(values.items())},
            "weighted_value": {c: money(v, c) for c, v in sorted(rounded.items())},
            "_rows": [converted_row(r, conv) for r in col["_rows"]],
            "_value": values,
            "_value_exact": exact_values,
            "_weighted": rounded,
            "_exact": weighted,
        })
    return out


def value_in(row: dict[str, Any], conv: Converter) -> dict[str, Any]:
    """A deal's "value_in" (--in): its value in the target, exact decimal text, or null with
    the note why (no value; no rate in force)."""
    from pipectl.views.common import money

    out: dict[str, Any] = {"currency": conv.target,
                           "value": money(conv.one(row["value_minor"], row["currency"]),
                                          conv.target)}
    if out["value"] is None and row["value_minor"] is not None:
        out["note"] = conv.missing[row["currency"]].text
    return out


def deal_json_in(row: dict[str, Any], pipeline: Any, conv: Converter) -> dict[str, Any]:
    """``views.deals.deal_json`` and the deal's "value_in"."""
    from pipectl.views.deals import deal_json

    return {**deal_json(row, pipeline), "value_in": value_in(row, conv)}


def _converted(totals: list[Any], conv: Converter) -> dict[str, int]:
    amounts = {t.currency: t.value_minor for t in totals if t.value_minor is not None}
    return conv.totals(amounts).as_totals()


def totals_json_in(totals: list[Any], conv: Converter) -> dict[str, Any]:
    """"totals_in": every deal's value in the target (summed exactly, rounded once), amounts
    without a rate in their own currency; "values_in": the rates used and missing."""
    from pipectl.views.common import money

    return {"totals_in": {c: money(v, c) for c, v in sorted(_converted(totals, conv).items())},
            "values_in": conv.as_json()}


def totals_in(totals: list[Any], conv: Converter) -> list[str]:
    """The list's last lines with --in: the total converted, and the rates that made it."""
    from pipectl.views.common import totals_cell

    shown = totals_cell(_converted(totals, conv))
    return [f"in {conv.target}: {shown}", heading(conv, "at the rates in force now")]


def forecast_heading(periods: list[Any], convs: list[Converter], now: Converter) -> list[str]:
    """The forecast's lines with --in: the rates of each run of periods that used the same
    ones, and those of the deals with no close date (the as-of moment's)."""
    lines = [f"Values in {now.target} at the rates in force when each period's forecast was "
             "read (its start; a future period's: the as-of moment):"]
    runs: list[tuple[str, str, str]] = []  # (first period, last period, what was used)
    for p, conv in zip(periods, convs, strict=True):
        used = _used(conv)
        if runs and runs[-1][2] == used:
            runs[-1] = (runs[-1][0], p.period.label, used)
        else:
            runs.append((p.period.label, p.period.label, used))
    for first, last, used in runs:
        span = first if first == last else f"{first} to {last}"
        lines.append(f"  {span}: {used}")
    if now.used or now.missing:
        lines.append(f"  no close date: {_used(now)}")
    return lines


def _used(conv: Converter) -> str:
    parts = [a.text for _, a in sorted(conv.used.items())]
    parts += [f"{m.text}: {c} kept in {c}" for c, m in sorted(conv.missing.items())]
    return "; ".join(parts) or "nothing to convert"


def forecast_json_in(periods: list[Any], convs: list[Converter], now: Converter
                     ) -> dict[str, Any]:
    """The forecast's "values_in": per period, the rates used and missing."""
    return {"currency": now.target,
            "periods": [{"period": p.period.label, **conv.as_json()}
                        for p, conv in zip(periods, convs, strict=True)],
            "no_close_date": now.as_json()}
