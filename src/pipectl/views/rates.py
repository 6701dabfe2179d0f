"""Exchange rates for people (a table) and programs (JSON), and the line that says which rates
converted a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipectl.domain.rates import moment_text, pair_text
from pipectl.views.table import Column, Table, echo

if TYPE_CHECKING:
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
                 r.rate.recorded_at.replace("T", " ").rstrip("Z")]
        if every:
            cells.append(r.state)
        table.add_row(*cells)
    table.write()
