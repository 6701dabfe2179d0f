"""`pipectl report --by owner|source|pipeline` as JSON, CSV and terminal tables.

Pure rendering of ``reports.breakdown.Breakdown``. Money goes out per currency, never added
across currencies: in JSON as exact decimal strings, in the terminal one line per currency in a
cell (a row per group, its money cells as tall as its currencies), in CSV one row per group and
currency. The terminal form is two tables with the groups in the same order, so that each fits
80 columns: what was won in the window (deals, value, win rate, close rate, median cycle), and
the open pipeline at the as-of moment (deals, value, weighted value).
"""

from __future__ import annotations

import csv
import sys
from typing import Any

from pipectl.localtime import shown
from pipectl.views.common import count, money, money_cell
from pipectl.views.reports import (
    _close_rate,
    _d,
    _days,
    _money_json,
    _num,
    _outcome_json,
    _pct,
    _win_rate,
)
from pipectl.views.reports import _window as window_json
from pipectl.views.table import Column, Styled, Table, echo

FORMULAS: dict[str, str] = {
    "won": "deals won in the window; their value summed per currency",
    "win_rate": "won / (won + lost), over the group's deals won or lost in the window (lost: "
    "and still lost at the as-of moment)",
    "close_rate": "won / qualified, over the group's deals that became qualified in the "
    "window, won by the as-of moment",
    "sales_cycle": "days from creation to win, median over the group's deals won in the window",
    "pipeline": "sum of value of the group's deals open at the as-of moment, per currency",
    "weighted_value": "sum(value x probability) / 100 over those open deals (own probability, "
    "else the stage's), per currency, rounded half-even once",
}

FIGURES = {  # figure -> the deal set it is computed from (per group)
    "won": "won_in_window",
    "win_rate": "won_in_window",
    "close_rate": "qualified_in_window",
    "sales_cycle": "won_in_window",
    "pipeline": "open",
    "weighted_value": "open",
}

_NONE = {"owner": "(no owner)", "source": "(no source)", "pipeline": "(no pipeline)"}


def _label(b: Any, key: str | None) -> str:
    return _NONE[b.by] if key is None else key


# ---------------------------------------------------------------- JSON


def _figures_json(g: Any, explain: bool) -> dict[str, Any]:
    out = {
        "won": _outcome_json(g.won, average=True),
        "win_rate": _win_rate(g.win_rate),
        "close_rate": _close_rate(g.close_rate),
        "sales_cycle": _days(g.cycle),
        "pipeline": _money_json(g.open),
        # deals left out of close rate and sales cycle: their import could not tell the fact
        "left_out": {"unknown_qualification": g.left_out.qualification,
                     "unknown_start": g.left_out.no_start, "unknown_close": g.left_out.no_close},
    }
    if explain:
        out["deal_sets"] = {k: {"deals": g.deals[k], "count": g.deal_counts[k]}
                            for k in g.deals}
    return out


def breakdown_json(b: Any) -> dict[str, Any]:
    """docs/metrics.md, "pipectl report --by"."""
    out: dict[str, Any] = {
        "as_of": b.as_of,
        "window": window_json(b.window),
        "owner": b.owner,
        **({"pipeline_name": b.only.name} if b.only is not None else {}),
        "by": b.by,
        "sorted_by": b.sorted_by,
        "groups": [{"group": g.key, **_figures_json(g, b.explain)} for g in b.groups],
        "total": _figures_json(b.total, b.explain),
    }
    if b.explain:
        out["explain"] = {"formulas": dict(FORMULAS), "figures": dict(FIGURES)}
    return out


# ---------------------------------------------------------------- CSV

CSV_HEAD = ("currency", "deals_won", "won_value", "average_won_value", "win_rate", "close_rate",
            "median_cycle_days", "open_deals", "open_value", "weighted_value")


def breakdown_csv(b: Any) -> None:
    """One row per group and currency; the first column is the group (empty: no owner or
    source). A row counts the group's deals with a value in its currency; a row with an empty
    currency, the group's deals without a value (only when it has some). The rates and the
    median cycle are the group's, over every currency, on each of its rows. No total rows:
    they are ``pipectl report --csv``'s figures."""
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow([b.by, *CSV_HEAD])
    for g in b.groups:
        common = (_num(g.win_rate.value), _num(g.close_rate.value), _num(g.cycle.median))
        average = g.won.average
        for cur in sorted(set(g.won.value) | set(g.open.value)):
            w.writerow([
                g.key or "", cur, g.won.with_value.get(cur, 0),
                _num(money(g.won.value.get(cur), cur)), _num(money(average.get(cur), cur)),
                *common, g.open_with_value.get(cur, 0),
                _num(money(g.open.value.get(cur), cur)),
                _num(money(g.open.weighted.get(cur), cur)),
            ])
        if g.won.without_value or g.open.without_value or not (g.won.value or g.open.value):
            w.writerow([g.key or "", "", g.won.without_value, "", "", *common,
                        g.open.without_value, "", ""])


# ---------------------------------------------------------------- terminal


def _money_lines(values: dict[str, int]) -> list[str] | str:
    """One line per currency (never added together); '-' for none."""
    return [money_cell(v, c) for c, v in sorted(values.items())] or "-"


_SORTED = {"won_value": "most won value first", "deals_won": "most deals won first"}


def breakdown(b: Any) -> None:
    header = b.by.capitalize()
    who = f", owner {b.owner}" if b.owner else ""
    which = f" in {b.only.name}" if b.only is not None else ""
    echo((f"Pipeline report by {b.by}{which}", "bold"),
         f" as of {shown(b.as_of)}; window: {b.window.label}{who}")
    if not b.groups:
        echo("No deal won, lost or qualified in the window, and none open.")
        return
    number = {"justify": "right", "flexible": False}
    # a rule between rows when some rows are several lines tall (several currencies)
    tall = any(len(g.won.value) > 1 or len(g.open.value) > 1 for g in (*b.groups, b.total))
    won = Table(
        Column(header), Column("Won", **number), Column("Won value", **number),
        Column("Win rate", **number), Column("Close rate", **number),
        Column("Median cycle", **number),
        title=f"Won in the window, by {b.by} ({_SORTED[b.sorted_by]})", lines=tall,
    )
    for g, name in [*((g, _label(b, g.key)) for g in b.groups), (b.total, None)]:
        won.add_row(name if name is not None else Styled(("total", "bold")), str(g.won.count),
                    _money_lines(g.won.value), _pct(g.win_rate.value), _pct(g.close_rate.value),
                    _d(g.cycle.median))
    won.write()
    pipe = Table(
        Column(header), Column("Open", **number), Column("Value", **number),
        Column("Weighted", **number),
        title=f"Open pipeline as of {shown(b.as_of)}, by {b.by}", lines=tall,
    )
    for g, name in [*((g, _label(b, g.key)) for g in b.groups), (b.total, None)]:
        pipe.add_row(name if name is not None else Styled(("total", "bold")), str(g.open.count),
                     _money_lines(g.open.value), _money_lines(g.open.weighted))
    pipe.write()
    without = [f"{count(n, 'deal')} {what}" for n, what in
               ((b.total.won.without_value, "won"), (b.total.open.without_value, "open")) if n]
    if without:
        echo(f"Without a value (counted, not in the amounts): {', '.join(without)}.")
    left = b.total.left_out  # what the deals' import could not tell (--json: per group)
    if left.qualification:
        echo(f"Left out of close rate: {count(left.qualification, 'deal')} of unknown "
             "qualification.")
    cycle = [f"{count(n, 'deal')} without a known {what}" for n, what in (
        (left.no_start, "start"), (left.no_close, "close time")) if n]
    if cycle:
        echo(f"Left out of the median cycle: {', '.join(cycle)}.")
    if b.explain:
        explain_text(b)


def explain_text(b: Any) -> None:
    echo("\n", ("How each figure was computed", "bold"))
    for name, key in (("Won value", "won"), ("Win rate", "win_rate"),
                      ("Close rate", "close_rate"), ("Median cycle", "sales_cycle"),
                      ("Open pipeline", "pipeline"), ("Weighted", "weighted_value")):
        echo((name, "bold"), f" = {FORMULAS[key]}")
    for g, name in [*((g, _label(b, g.key)) for g in b.groups), (b.total, "total")]:

        def ids(key: str, g: Any = g) -> str:
            shown = ", ".join(f"#{i}" for i in g.deals[key]) or "none"
            more = g.deal_counts[key] - len(g.deals[key])
            return shown + (f" and {more} more" if more > 0 else "")

        wr, cr = g.win_rate, g.close_rate
        echo((name, "bold"),
             f": won {ids('won_in_window')}; lost {ids('lost_in_window')}; win rate "
             f"{wr.numerator} / {wr.denominator} = {_pct(wr.value)}; qualified "
             f"{ids('qualified_in_window')}, of which won {ids('qualified_and_won')}: close rate "
             f"{cr.numerator} / {cr.denominator} = {_pct(cr.value)}; open {ids('open')}")
