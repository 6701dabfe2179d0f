"""Reports as JSON, CSV and terminal tables (a one-screen summary with a funnel chart).

Pure rendering: the numbers come from pipectl.reports; money goes out as exact decimal strings
per currency, rates as numbers in [0, 1] or null. Every stage-keyed entry names its pipeline
(JSON "pipeline"); the text and CSV forms name it only when the figures span several
pipelines, so that a database of one pipeline reads as it always did.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from pipectl.localtime import shown, shown_date
from pipectl.views.common import count, money, money_cell, totals_cell
from pipectl.views.table import (
    UNLIMITED,
    Column,
    Styled,
    Table,
    echo,
    plain_output,
    plain_text,
    terminal_width,
    width,
)

FORMULAS: dict[str, str] = {
    "deals": "each deal's status (open / won / lost) at the as-of moment, from its last move",
    "pipeline": "sum of value of the deals open at the as-of moment, per stage, per currency",
    "weighted_value": "sum(value x probability) / 100 over open deals (own probability, else "
    "the stage's), per currency, rounded half-even once",
    "close_rate": "won / qualified, over deals that became qualified in the window, won by "
    "the as-of moment; deals created in the window whose import could not tell whether they "
    "were qualified are left out and counted",
    "win_rate": "won / (won + lost), over deals won or lost in the window",
    "conversion": "reached(B) / reached(A) for consecutive stages A, B, over deals created in "
    "the window; reached = the furthest stage ever entered (skipped stages count as passed)",
    "sales_cycle": "days from creation to win, median and mean over deals won in the window; "
    "deals whose import could not tell when they began or closed are left out and counted",
    "time_in_stage": "days from entering a stage to leaving it, median over stays that ended "
    "in the window; plus the deals in the stage now and their age in it",
    "velocity": "open deals x win rate x average won value / mean sales cycle (days), per "
    "currency; null when a factor is missing",
    "lost_reasons": "count and value of deals lost in the window, per reason and per stage "
    "they were lost at",
    "won_value": "sum of value of the deals won in the window, per currency",
    "lost_value": "sum of value of the deals lost in the window and still lost at the as-of "
    "moment, per currency",
    "average_won": "won value / deals won with a value, per currency, exact, rounded "
    "half-even once",
}


def _money_map(values: dict[str, int]) -> dict[str, str]:
    return {c: money(v, c) for c, v in sorted(values.items())}  # type: ignore[misc]


def _money_json(m: Any, weighted: bool = True) -> dict[str, Any]:
    out = {"count": m.count, "without_value": m.without_value, "value": _money_map(m.value)}
    if weighted:
        out["weighted_value"] = _money_map(m.weighted)
    return out


def _outcome_json(o: Any, average: bool = False) -> dict[str, Any]:
    """Deals won or lost: count, without value, per currency the deals with a value and their
    value (and the average won deal)."""
    out = {"count": o.count, "without_value": o.without_value,
           "with_value": dict(sorted(o.with_value.items())), "value": _money_map(o.value)}
    if average:
        out["average"] = _money_map(o.average)
    return out


def _days(d: Any) -> dict[str, Any]:
    return {"count": d.count, "median_days": d.median, "mean_days": d.mean}


def _window(w: Any) -> dict[str, Any]:
    return {
        "from": w.start.isoformat() if w.start else None,
        "to": w.end.isoformat() if w.end else None,
        "label": w.label,
    }


# ---------------------------------------------------------------- report


def _close_rate(x: Any) -> dict[str, Any]:
    return {"rate": x.value, "won": x.numerator, "qualified": x.denominator}


def _win_rate(x: Any) -> dict[str, Any]:
    return {"rate": x.value, "won": x.numerator, "lost": x.denominator - x.numerator}


def report_json(r: Any) -> dict[str, Any]:
    """The report as JSON (docs/metrics.md). Stage entries name their pipeline; with several
    pipelines, close and win rate have a ``by_pipeline`` list; with --pipeline, its name is
    ``pipeline_name`` (``pipeline`` is the pipeline's value)."""
    close_rate = _close_rate(r.close_rate)
    win_rate = _win_rate(r.win_rate)
    if r.by_pipeline is not None:
        close_rate["by_pipeline"] = [
            {"pipeline": x.pipeline.name, **_close_rate(x.close_rate)} for x in r.by_pipeline]
        win_rate["by_pipeline"] = [
            {"pipeline": x.pipeline.name, **_win_rate(x.win_rate)} for x in r.by_pipeline]
    out: dict[str, Any] = {
        "as_of": r.as_of,
        "window": _window(r.window),
        "owner": r.owner,
        **({"pipeline_name": r.only.name} if r.only is not None else {}),
        "deals": dict(r.status),
        "flow": dict(r.flow),
        "won": _outcome_json(r.won, average=True),
        "lost": _outcome_json(r.lost),
        "pipeline": {
            **_money_json(r.pipeline_total),
            "stages": [{"pipeline": s.pipeline.name, "stage": s.stage, **_money_json(s.money)}
                       for s in r.pipeline],
        },
        "close_rate": close_rate,
        "win_rate": win_rate,
        "conversion": [
            {
                "pipeline": s.pipeline.name,
                "from": s.from_stage,
                "to": s.to_stage,
                "reached_from": s.reached_from,
                "reached_to": s.reached_to,
                "rate": s.rate.value,
            }
            for s in r.conversion
        ],
        "sales_cycle": _days(r.cycle),
        # deals left out of close rate and sales cycle: their import could not tell the fact
        "left_out": {"unknown_qualification": r.unknown.qualification,
                     "unknown_start": r.unknown.no_start, "unknown_close": r.unknown.no_close},
        "time_in_stage": [
            {
                "pipeline": t.pipeline.name,
                "stage": t.stage,
                "completed_stays": t.stays.count,
                "median_days": t.stays.median,
                "now": t.now.count,
                "now_median_age_days": t.now.median,
                "now_oldest_age_days": t.now.maximum,
            }
            for t in r.time_in_stage
        ],
        "velocity": {
            v.currency: {
                "per_day": money(v.per_day, v.currency),
                "open_deals": v.open_deals,
                "win_rate": v.win_rate.value,
                "won_deals": v.won_deals,
                "average_won_value": money(v.average_won, v.currency),
                "mean_cycle_days": v.cycle_days,
            }
            for v in r.velocity
        },
        "lost_reasons": {
            "by_reason": [
                {"reason": g.key, "count": g.count, "value": _money_map(g.value)}
                for g in r.lost_by_reason
            ],
            "by_stage": [
                {"pipeline": g.pipeline.name if g.pipeline else None, "stage": g.key,
                 "count": g.count, "value": _money_map(g.value)}
                for g in r.lost_by_stage
            ],
        },
    }
    if r.deals is not None:
        out["explain"] = explain_json(r)
    return out


_EXPLAIN_DEALS = {
    "deals": "open",
    "pipeline": "open",
    "weighted_value": "open",
    "close_rate": "qualified_in_window",
    "win_rate": "won_in_window",
    "conversion": "created_in_window",
    "sales_cycle": "won_in_window",
    "time_in_stage": "open",
    "velocity": "open",
    "lost_reasons": "lost_in_window",
    "won_value": "won_in_window",
    "lost_value": "lost_in_window",
    "average_won": "won_in_window",
}


def explain_json(r: Any) -> dict[str, Any]:
    """Per figure: its formula and the deal sets it was computed from (ids, first 20)."""
    sets = {
        key: {"deals": r.deals[key], "count": r.deal_counts[key]} for key in r.deals
    }
    return {
        "formulas": dict(FORMULAS),
        "deal_sets": sets,
        "figures": {name: key for name, key in _EXPLAIN_DEALS.items()},
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _d(x: float | None) -> str:
    return "n/a" if x is None else f"{x:g} d"


_MONEY = ("Value", "Weighted", "Forecast", "Won")


def _figures(*headers: str, title: str, caption: str | None = None) -> Table:
    """A table of figures: the first column is text, the others right-justified numbers.

    Money columns (several currencies are never added: "12.00 EUR + 3.00 USD") wrap at spaces
    when the table is too wide, rather than cut an amount; the others keep their width.
    """
    return Table(
        Column(headers[0]),
        *(Column(h, justify="right", flexible=h in _MONEY, wrap=h in _MONEY)
          for h in headers[1:]),
        title=title, caption=caption,
    )


def _stage_rows(table: Table, several: bool) -> Table:
    """With several pipelines, a first column names each row's pipeline; on a terminal too
    narrow for it whole, it heads the rows of its pipeline instead (never "de…", "pro…")."""
    if several:
        table.columns.insert(0, Column("Pipeline", drop=1, heading=True))
    return table


def _whole_names(table: Table, several: bool) -> Table:
    """Pipeline and stage names are never cut: the columns that hold them keep their
    longest (a column is left out, or becomes headings, first)."""
    for i in range(2 if several else 1):
        table.columns[i].min_width = max(
            [0, *(width(plain_text(row[i])) for row in table.rows)])
    return table


def _in_pipeline(several: bool, pipeline: Any) -> list[str]:
    return [pipeline.name if pipeline is not None else ""] if several else []


def report(r: Any, explain: bool = False) -> None:
    who = f", owner {r.owner}" if r.owner else ""
    which = f"Pipeline report: {r.only.name}" if r.only is not None else "Pipeline report"
    _say(which, f"as of {shown(r.as_of)}; window: {r.window.label}{who}")
    several = r.several
    s = r.status
    f = r.flow
    _say("", f"Deals: {s['open']} open, {s['won']} won, {s['lost']} lost ({s['total']} in all). "
         f"In the window: {f['created']} created, {f['qualified']} qualified, "
         f"{f['won']} won, {f['lost']} lost.")
    won_and_lost(r)
    pipe = _stage_rows(_figures("Stage", "Deals", "Value", "Weighted",
                                title=f"Pipeline (open deals as of {shown(r.as_of)})"), several)
    for x in r.pipeline:
        m = x.money
        pipe.add_row(*_in_pipeline(several, x.pipeline), x.stage, str(m.count),
                     totals_cell(m.value), totals_cell(m.weighted))
    t = r.pipeline_total
    pipe.add_row(*(["all" if plain_output() else ""] if several else []),
                 Styled(("total", "bold")), str(t.count), totals_cell(t.value),
                 totals_cell(t.weighted))
    pipe.columns[-1].drop = 2  # Weighted: after the pipeline names, before a stage's
    _whole_names(pipe, several).write()
    _say_rates(_rates(r.close_rate, r.win_rate, r.unknown.qualification))
    for x in r.by_pipeline or []:
        _say_rates(_rates(x.close_rate, x.win_rate), indent="  ", name=f"{x.pipeline.name}: ")
    _say("", _cycle(r.cycle, r.unknown))
    vel = "; ".join(
        f"{money_cell(v.per_day, v.currency)}/day" if v.per_day is not None
        else f"n/a ({v.currency})"
        for v in r.velocity
    ) or "n/a"
    echo(f"Sales velocity: {vel}")
    for pipeline in r.pipelines:
        funnel([s for s in r.conversion if s.pipeline is pipeline],
               pipeline.name if several else None)
    tis = _stage_rows(_figures("Stage", "Stays", "Median", "Now", "Median age", "Oldest",
                               title="Time in stage"), several)
    for x in r.time_in_stage:
        tis.add_row(*_in_pipeline(several, x.pipeline), x.stage, str(x.stays.count),
                    _d(x.stays.median), str(x.now.count), _d(x.now.median), _d(x.now.maximum))
    tis.columns[-1].drop = 2  # Oldest
    _whole_names(tis, several).write()
    if r.lost_by_reason:
        by_stage = ", ".join(f"{_stage_name(several, g.pipeline, g.key)} {g.count}"
                             for g in r.lost_by_stage)
        # with several pipelines the line is longer than the table: a line of its own
        lost = _figures("Reason", "Deals", "Value", title="Lost reasons",
                        caption=None if several else f"Lost at: {by_stage}")
        for g in r.lost_by_reason:
            lost.add_row(g.key, str(g.count), totals_cell(g.value))
        lost.write()
        if several:
            _say("", f"Lost at: {by_stage}")
    else:
        echo("Lost reasons: no deal lost in the window.")
    if explain:
        explain_text(r)


def _amount(minor: int | None, currency: str) -> str:
    """An amount with thousands separators, without its currency (a column names it)."""
    return "-" if minor is None else money_cell(minor, currency).removesuffix(f" {currency}")


def won_and_lost(r: Any) -> None:
    """Won value, average won deal and lost value: one row per currency, its amounts without
    the currency code (the first column names it), so that it fits 80 columns."""
    won, lost = r.won, r.lost
    currencies = sorted(set(won.value) | set(lost.value))
    if not currencies:
        echo("Won and lost in the window: "
             + (f"{count(won.count, 'deal')} won, {count(lost.count, 'deal')} lost, none with a "
                "value." if won.count or lost.count else "no deal won or lost."))
        return
    without = [f"{count(n, 'deal')} {what}" for n, what in
               ((won.without_value, "won"), (lost.without_value, "lost")) if n]
    number = {"justify": "right", "flexible": False}
    table = Table(
        Column("Currency", flexible=False), Column("Won", **number),
        Column("Won value", **number), Column("Average won", **number, drop=1),
        Column("Lost", **number), Column("Lost value", **number),
        title="Won and lost in the window, per currency",
        caption=f"Without a value (not in the amounts): {', '.join(without)}" if without
        else None,
    )
    average = won.average
    for cur in currencies:
        table.add_row(cur, str(won.with_value.get(cur, 0)), _amount(won.value.get(cur), cur),
                      _amount(average.get(cur), cur), str(lost.with_value.get(cur, 0)),
                      _amount(lost.value.get(cur), cur))
    table.write()


def _valued(o: Any) -> str:
    """'25,000.00 EUR (1 deal); 10,000.00 USD (2 deals)' (and the deals without a value)."""
    parts = [f"{money_cell(v, c)} ({count(o.with_value[c], 'deal')})"
             for c, v in sorted(o.value.items())]
    if o.without_value:
        parts.append(f"{count(o.without_value, 'deal')} without a value, not in it")
    return "; ".join(parts) or "none"


_RATES_GAP = "   "


def _rates(cr: Any, wr: Any, unknown: int = 0) -> str:
    left_out = (f"; {count(unknown, 'deal')} of unknown qualification left out"
                if unknown else "")
    return (f"Close rate: {_pct(cr.value)} ({cr.numerator} won of {cr.denominator} qualified"
            f"{left_out}){_RATES_GAP}Win rate: {_pct(wr.value)} ({wr.numerator} won of "
            f"{wr.denominator} decided)")


def _say_rates(text: str, indent: str = "", name: str = "") -> None:
    """The close and win rate line; on a terminal too narrow for it, the win rate on a line
    of its own (each wrapped at spaces), never a word cut in two."""
    close, _, win = text.partition(_RATES_GAP)
    if width(indent + name + text) <= terminal_width() or not win:
        _say("", name + text, indent)
        return
    _say("", f"{name}{close}", indent)
    _say("", f"{' ' * len(name)}{win}", indent)


def _cycle(d: Any, unknown: Any) -> str:
    """The sales cycle line: deals won without a known start or close time (their import
    could not tell) are left out, and said so; n/a when no deal is left."""
    start, close = unknown.no_start, unknown.no_close
    what = ("start or close time" if start and close else "close time" if close
            else "start")
    if not d.count and (start or close):
        if not start:
            return "Sales cycle: n/a (no close times in the import)"
        return (f"Sales cycle: n/a (no known {what} for the "
                f"{count(start + close, 'deal')} won)")
    left_out = (f"; {count(start + close, 'deal')} without a known {what} left out"
                if start or close else "")
    return (f"Sales cycle: median {_d(d.median)}, mean {_d(d.mean)} "
            f"({count(d.count, 'deal')} won{left_out})")


def _stage_name(several: bool, pipeline: Any, stage: str) -> str:
    """A stage as the text names it: with several pipelines, "pipeline/stage"."""
    if several and pipeline is not None:
        return f"{pipeline.name}/{stage}"
    return stage


_BAR_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, top: float, cells: int) -> str:
    """A horizontal bar ``cells`` wide at full scale (``top``), drawn to an eighth of a cell."""
    eighths = round(cells * 8 * value / top) if top > 0 else 0
    eighths = max(0, min(eighths, cells * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_BAR_EIGHTHS[part] if part else "")


def funnel(steps: list[Any], pipeline: str | None = None, bar_width: int = 40) -> None:
    """Stage conversion as a funnel: one bar per stage, as long as its share of the first.
    ``pipeline``: the name the title gives (when the report covers several)."""
    counts = [steps[0].reached_from, *(s.reached_to for s in steps)] if steps else []
    line = [steps[0].from_stage, *(s.to_stage for s in steps)] if steps else []
    top = max(counts[0] if counts else 0, 1)
    rates = ["" if i == 0 else _pct(steps[i - 1].rate.value) for i in range(len(line))]
    # the bar takes what the other columns leave of the width, between 10 and bar_width cells
    others = (max([width("Stage"), *(width(s) for s in line)])
              + max([width("Reached"), *(len(str(n)) for n in counts)])
              + max([width("From previous"), *(len(x) for x in rates)]))
    cells = max(10, min(bar_width, terminal_width() - others - 2 * 4))
    plain = plain_output()  # tab-separated: the figures, no bars, each row names its pipeline
    named = [pipeline] if plain and pipeline else []
    table = Table(
        *(Column("Pipeline") for _ in named), Column("Stage"), Column("Reached", justify="right"),
        *([] if plain else [Column("", width=cells)]),
        Column("From previous", justify="right"),
        title=f"Stage conversion{f' in {pipeline}' if pipeline else ''} "
        "(deals created in the window, furthest stage reached)",
        box=False,
    )
    for stage, n, rate in zip(line, counts, rates, strict=True):
        table.add_row(*named, stage, str(n), *([] if plain else [bar(n, top, cells)]), rate)
    table.write()


def explain_text(r: Any) -> None:
    from pipectl.reports.scope import open_set

    echo("\n", ("How each figure was computed", "bold"))
    several = r.several

    def ids(key: str) -> str:
        shown = ", ".join(f"#{i}" for i in r.deals[key]) or "none"
        more = r.deal_counts[key] - len(r.deals[key])
        return shown + (f" and {more} more" if more > 0 else "")

    cr, wr = r.close_rate, r.win_rate
    t = r.pipeline_total
    average = r.won.average
    lines = [
        ("Won value", FORMULAS["won_value"],
         f"{_valued(r.won)}; won deals: {ids('won_in_window')}"),
        ("Average won deal", FORMULAS["average_won"],
         "; ".join(f"{money_cell(r.won.value[c], c)} / {r.won.with_value[c]} = "
                   f"{money_cell(a, c)}" for c, a in average.items()) or "n/a (no deal won "
         "with a value)"),
        ("Lost value", FORMULAS["lost_value"],
         f"{_valued(r.lost)}; lost deals: {ids('lost_in_window')}"),
        ("Pipeline value", FORMULAS["pipeline"],
         f"{totals_cell(t.value)} ({count(t.count, 'deal')}"
         + (f", {t.without_value} without a value" if t.without_value else "")
         + f"); open deals: {ids('open')}"),
        ("Weighted value", FORMULAS["weighted_value"],
         f"{totals_cell(t.weighted)}; open deals: {ids('open')}"),
        ("Close rate", FORMULAS["close_rate"],
         f"{cr.numerator} / {cr.denominator} = {_pct(cr.value)}; qualified: "
         f"{ids('qualified_in_window')}; of which won: {ids('qualified_and_won')}"
         f"; left out: {count(r.unknown.qualification, 'deal')} of unknown qualification"),
        ("Win rate", FORMULAS["win_rate"],
         f"{wr.numerator} / {wr.denominator} = {_pct(wr.value)}; won: "
         f"{ids('won_in_window')}; lost: {ids('lost_in_window')}"),
        ("Stage conversion", FORMULAS["conversion"],
         "; ".join(f"{_stage_name(several, s.pipeline, s.to_stage)}: "
                   f"{s.reached_to}/{s.reached_from}" for s in r.conversion)
         + f"; deals: {ids('created_in_window')}"),
        ("Sales cycle", FORMULAS["sales_cycle"],
         f"won deals: {ids('won_in_window')}; left out: {r.unknown.no_start} without a known "
         f"start, {r.unknown.no_close} without a known close time"),
        ("Time in stage", FORMULAS["time_in_stage"],
         "; ".join(f"{_stage_name(several, t.pipeline, t.stage)}: "
                   f"{ids(open_set(several, t.pipeline, t.stage))}" for t in r.time_in_stage)),
        ("Sales velocity", FORMULAS["velocity"],
         "; ".join(
             f"{v.currency}: {v.open_deals} x {_pct(v.win_rate.value)} x "
             f"{money_cell(v.average_won, v.currency)} / {_d(v.cycle_days)} = "
             + (f"{money_cell(v.per_day, v.currency)}/day" if v.per_day is not None else "n/a")
             for v in r.velocity
         ) or "n/a"),
        ("Lost reasons", FORMULAS["lost_reasons"], f"lost deals: {ids('lost_in_window')}"),
    ]
    for name, formula, detail in lines:
        echo((name, "bold"), f" = {formula}")
        echo(f"  {detail}")


def _writer():
    return csv.writer(sys.stdout, lineterminator="\n")


def report_csv(r: Any) -> None:
    """One figure per row: metric, stage, currency, value (a tidy table for spreadsheets).

    With several pipelines a fifth column, ``pipeline``, names the pipeline of each
    per-stage row and of each pipeline's close and win rate (empty for the totals)."""
    several = r.several
    out = _writer()

    def row(metric: str, stage: str, currency: str, value: Any, pipeline: Any = None) -> None:
        cells = [metric, stage, currency, value]
        if several:
            cells.append(pipeline.name if pipeline is not None else "")
        out.writerow(cells)

    out.writerow(["metric", "stage", "currency", "value", *(["pipeline"] if several else [])])
    for k, v in r.status.items():
        row("deals_" + k, "", "", v)
    for k, v in r.flow.items():
        row(f"{k}_in_window", "", "", v)
    average = r.won.average
    for name, o in (("won", r.won), ("lost", r.lost)):
        for cur, v in sorted(o.value.items()):
            row(f"{name}_deals_with_value", "", cur, o.with_value[cur])
            row(f"{name}_value", "", cur, money(v, cur))
            if cur in average and o is r.won:
                row("average_won_value", "", cur, money(average[cur], cur))
        row(f"{name}_without_value", "", "", o.without_value)
    for pipeline, name, m in [*((x.pipeline, x.stage, x.money) for x in r.pipeline),
                              (None, "total", r.pipeline_total)]:
        row("pipeline_deals", name, "", m.count, pipeline)
        for cur, v in sorted(m.value.items()):
            row("pipeline_value", name, cur, money(v, cur), pipeline)
        for cur, v in sorted(m.weighted.items()):
            row("weighted_value", name, cur, money(v, cur), pipeline)
    row("close_rate", "", "", _num(r.close_rate.value))
    row("win_rate", "", "", _num(r.win_rate.value))
    for x in r.by_pipeline or []:
        row("close_rate", "", "", _num(x.close_rate.value), x.pipeline)
        row("win_rate", "", "", _num(x.win_rate.value), x.pipeline)
    for s in r.conversion:
        row("conversion", f"{s.from_stage}>{s.to_stage}", "", _num(s.rate.value), s.pipeline)
    row("sales_cycle_median_days", "", "", _num(r.cycle.median))
    row("sales_cycle_mean_days", "", "", _num(r.cycle.mean))
    u = r.unknown  # deals left out: their import could not tell the fact
    row("left_out_unknown_qualification", "", "", u.qualification)
    row("left_out_unknown_start", "", "", u.no_start)
    row("left_out_unknown_close", "", "", u.no_close)
    for t in r.time_in_stage:
        row("time_in_stage_median_days", t.stage, "", _num(t.stays.median), t.pipeline)
        row("deals_in_stage_now", t.stage, "", t.now.count, t.pipeline)
    for v in r.velocity:
        row("velocity_per_day", "", v.currency, _num(money(v.per_day, v.currency)))
    for g in r.lost_by_reason:
        row(f"lost_reason:{g.key}", "", "", g.count)
    for g in r.lost_by_stage:
        row("lost_at_stage", g.key, "", g.count, g.pipeline)


def _num(x: Any) -> str:
    return "" if x is None else str(x)


# ---------------------------------------------------------------- forecast


def forecast_json(items: list[Any], as_of: str, by: str, owner: str | None,
                  pipeline: str | None = None, no_close_date: Any = None,
                  no_close_date_ids: list[int] | None = None) -> dict[str, Any]:
    """``pipeline``: the name given to --pipeline (``pipeline_name``, only then);
    ``no_close_date`` (Money) and its ids: the open deals without an expected close date
    (``"no_close_date"``, after the periods; `pipectl forecast` always gives it)."""
    periods = []
    for p in items:
        actual = None
        if p.won is not None:
            actual = {
                **_money_json(p.won, weighted=False),
                "deals": p.won_ids,
                "from_forecast": _money_json(p.won_forecast, weighted=False),
            }
        periods.append({
            "period": p.period.label,
            "from": p.period.start.isoformat(),
            "to": p.period.end.isoformat(),
            "state": p.state,
            "forecast_as_of": p.forecast_as_of,
            "forecast": {**_money_json(p.forecast), "deals": p.forecast_ids},
            "actual": actual,
            "slipped": None if p.slipped is None else [
                {
                    "id": s.id,
                    "name": s.name,
                    "owner": s.owner,
                    "value": money(s.value_minor, s.currency),
                    "currency": s.currency,
                    "close_date_then": s.close_date_then,
                    "status_after": s.status_after,
                    "close_date_after": s.close_date_after,
                }
                for s in p.slipped
            ],
            "added": None if p.added is None else {
                **_money_json(p.added),
                "deals": [
                    {
                        "id": a.id,
                        "name": a.name,
                        "owner": a.owner,
                        "value": money(a.value_minor, a.currency),
                        "currency": a.currency,
                        "close_date": a.close_date,
                        "close_date_then": a.close_date_then,
                        "was": a.was,
                    }
                    for a in p.added_deals or []
                ],
            },
        })
    only = {"pipeline_name": pipeline} if pipeline is not None else {}
    out = {"as_of": as_of, "by": by, "owner": owner, **only, "periods": periods}
    if no_close_date is not None:
        out["no_close_date"] = {**_money_json(no_close_date), "deals": no_close_date_ids or []}
    return out


def _moved(then: str | None, after: str | None) -> str:
    """'close 2026-10-04 -> 2026-11-20' when the expected close date moved, 'close 2026-10-04,
    not moved' when it did not, and 'none' for a date the deal did not have."""
    if then == after and then is not None:
        return f"close {then}, not moved"
    return f"close {then or 'none'} -> {after or 'none'}"


_WAS = {  # what an added deal was when the period began, as the terminal says it
    "moved": "moved in",
    "undated": "had none",
    "new": "new",
    "closed": "reopened",
    "other_pipeline": "other pipeline",
}


def _deals_money(m: Any, noun: str = "deal") -> str:
    """'2 deals, 30,000.00 USD (weighted 12,000.00 USD)' (plus any without a value)."""
    text = count(m.count, noun)
    if m.value:
        text += f", {totals_cell(m.value)} (weighted {totals_cell(m.weighted)})"
    if m.without_value:
        text += f", {m.without_value} without a value"
    return text


def _say(title: str, text: str, indent: str = "") -> None:
    """``title`` (bold) and ``text`` on one line, wrapped at spaces to the terminal's width
    (piped: one line, for grep); the lines after the first are indented two more spaces."""
    import textwrap

    room = terminal_width()
    full = f"{indent}{title} {text}" if title else f"{indent}{text}"
    lines = [full] if room >= UNLIMITED else textwrap.wrap(
        full, max(40, room), subsequent_indent=indent + "  ", break_long_words=False,
        break_on_hyphens=False) or [""]
    if title:
        echo(indent, (title, "bold"), lines[0][len(indent) + len(title):])
    else:
        echo(lines[0])
    for line in lines[1:]:
        echo(line)


def forecast_table(items: list[Any], as_of: str, pipeline: str | None = None,
                   no_close_date: Any = None) -> None:
    """``no_close_date`` (Money): the open deals without an expected close date."""
    which = f", pipeline {pipeline}" if pipeline is not None else ""
    table = _figures("Period", "Deals", "Forecast", "Weighted", "Won", "Slipped",
                     title=f"Forecast versus actual (as of {shown(as_of)}{which})")
    # the period and its state are short and never cut: the amounts wrap instead
    table.columns[0] = Column("Period", flexible=False)
    table.columns.insert(1, Column("State", flexible=False, drop=1))
    # on a narrow terminal the state, the slipped count (listed below) and the weighted
    # value are left out, rather than split an amount from its currency
    for col in table.columns:
        col.drop = {"State": 1, "Slipped": 2, "Weighted": 3}.get(col.header, 0)
    for p in items:
        table.add_row(
            p.period.label, p.state, str(p.forecast.count), totals_cell(p.forecast.value),
            totals_cell(p.forecast.weighted),
            totals_cell(p.won.value) if p.won is not None else "",
            str(len(p.slipped)) if p.slipped is not None else "",
        )
    table.write()
    for p in items:
        if p.slipped:
            title = f"{p.period.label}: {len(p.slipped)} forecast deals slipped"
            echo((title, "bold"))
            for s in p.slipped[:20]:
                _say("", f"#{s.id} {s.name}  {money_cell(s.value_minor, s.currency)}  "
                     f"{_moved(s.close_date_then, s.close_date_after)} ({s.status_after})",
                     indent="  ")
            if len(p.slipped) > 20:
                echo(f"  ... and {len(p.slipped) - 20} more (--json lists them all)")
    for p in items:
        if p.added is not None:
            _say(f"{p.period.label}: added since the period began:",
                 _deals_money(p.added) if p.added.count else "no deal")
            for a in (p.added_deals or [])[:20]:
                _say("", f"#{a.id} {a.name}  {money_cell(a.value_minor, a.currency)}  "
                     f"{_moved(a.close_date_then, a.close_date)} ({_WAS[a.was]})",
                     indent="  ")
            if len(p.added_deals or []) > 20:
                echo(f"  ... and {len(p.added_deals) - 20} more (--json lists them all)")
    if no_close_date is not None:
        _say("No close date:",
             f"{_deals_money(no_close_date, 'open deal')}; in no period's forecast"
             if no_close_date.count else "every open deal has one")
    _say("", "Forecast: deals open when the period began, expected to close in it. "
         "Won: all deals won in the period.")


def forecast_csv(items: list[Any], no_close_date: Any = None) -> None:
    w = _writer()
    w.writerow(["period", "from", "to", "state", "currency", "forecast_value", "weighted_value",
                "won_value", "won_from_forecast_value", "forecast_deals", "won_deals",
                "slipped_deals", "added_value", "added_deals"])
    for p in items:
        added = p.added.value if p.added is not None else {}
        currencies = (set(p.forecast.value) | set(p.won.value if p.won else {}) | set(added)
                      or {""})
        for cur in sorted(currencies):
            w.writerow([
                p.period.label, p.period.start.isoformat(), p.period.end.isoformat(), p.state,
                cur,
                _num(money(p.forecast.value.get(cur), cur)) if cur else "",
                _num(money(p.forecast.weighted.get(cur), cur)) if cur else "",
                _num(money(p.won.value.get(cur, 0), cur)) if p.won and cur else "",
                _num(money(p.won_forecast.value.get(cur, 0), cur)) if p.won and cur else "",
                p.forecast.count,
                p.won.count if p.won else "",
                len(p.slipped) if p.slipped is not None else "",
                _num(money(added.get(cur, 0), cur)) if p.added is not None and cur else "",
                p.added.count if p.added is not None else "",
            ])
    if no_close_date is not None:  # one row per currency (a row without one when none has)
        for cur in sorted(no_close_date.value) or [""]:
            w.writerow([
                "no_close_date", "", "", "", cur,
                _num(money(no_close_date.value.get(cur), cur)) if cur else "",
                _num(money(no_close_date.weighted.get(cur), cur)) if cur else "",
                "", "", no_close_date.count, "", "", "", "",
            ])


# ---------------------------------------------------------------- stale and next


def _pipeline_key(r: Any, several: bool) -> dict[str, Any]:
    return {"pipeline": r.pipeline} if several else {}


def stale_json(rows: Iterable[Any], total: int, as_of: str, several: bool = False
               ) -> dict[str, Any]:
    """``several``: the deals may be in several pipelines (each deal names its own)."""
    return {"as_of": as_of, "total": total, "deals": list(stale_items(rows, several))}


def stale_items(rows: Iterable[Any], several: bool = False) -> Iterator[dict[str, Any]]:
    """The deals of ``stale_json``, one at a time."""
    for r in rows:
        yield {
            "id": r.id, "name": r.name, "owner": r.owner, **_pipeline_key(r, several),
            "stage": r.stage, "value": money(r.value_minor, r.currency),
            "currency": r.currency, "last_event_at": r.last_event_at,
            "idle_days": r.idle_days, "threshold_days": r.threshold_days,
        }


def _stage_cell(r: Any, several: bool) -> str:
    return f"{r.pipeline}/{r.stage}" if several else r.stage


def stale_table(rows: list[Any], total: int, as_of: str, several: bool = False) -> None:
    table = Table(
        Column("ID", justify="right", flexible=False), Column("Deal", min_width=20),
        Column("Stage", min_width=13, drop=3), Column("Value", justify="right", flexible=False),
        Column("Last event", flexible=False, drop=2),
        Column("Idle", justify="right", flexible=False), Column("Owner", min_width=10, drop=1),
        title=f"Stale deals (as of {shown(as_of)}), oldest first",
    )
    for r in rows:
        table.add_row(str(r.id), r.name, _stage_cell(r, several),
                      money_cell(r.value_minor, r.currency), shown_date(r.last_event_at),
                      f"{r.idle_days:g} d", r.owner or "")
    if rows:
        table.write()
    echo(f"{count(total, 'stale deal')}"
              + (f" (the oldest {len(rows)} shown; --limit 0 shows all)" if total > len(rows)
                 else ""))


def next_json(rows: Iterable[Any], total: int, as_of: str, several: bool = False
              ) -> dict[str, Any]:
    return {"as_of": as_of, "total": total, "deals": list(next_items(rows, several))}


def next_items(rows: Iterable[Any], several: bool = False) -> Iterator[dict[str, Any]]:
    """The deals of ``next_json``, one at a time."""
    for r in rows:
        yield {
            "rank": r.rank, "id": r.id, "name": r.name, "owner": r.owner,
            **_pipeline_key(r, several), "stage": r.stage,
            "value": money(r.value_minor, r.currency),
            "currency": r.currency, "close_date": r.close_date, "action": r.action,
            "source": r.source, "due": r.due, "why": r.why, "idle_days": r.idle_days,
        }


_WHY = {  # label and style of each reason a deal is ranked where it is
    "overdue": ("overdue", "red"),
    "due_today": ("due today", "yellow"),
    "stale": ("stale", "yellow"),
    "close_overdue": ("close overdue", "red"),  # the expected close date has passed
    "closing": ("closing soon", ""),
    "open": ("", ""),
}


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(day: str | None, today: Any) -> str:
    """A date as a person says it, from ``today``: 'today', 'tomorrow', 'in 3 days', 'Fri 11
    Dec' (within about ten months), '3 days ago'; else the ISO date."""
    from datetime import date

    try:
        d = date.fromisoformat(str(day)[:10])
    except ValueError:
        return str(day or "")
    n = (d - today).days
    if n == 0:
        return "today"
    if n == 1:
        return "tomorrow"
    if 1 < n < 7:
        return f"in {n} days"
    if n < 0:
        return f"{count(-n, 'day')} ago"
    if n < 300:
        return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]}"
    return d.isoformat()


def why_cell(r: Any, today: Any) -> Styled:
    """Why a deal ranks where it does, its dates in words, on one line: 'overdue 3 days',
    'due today', 'due in 3 days', 'due Fri 11 Dec', 'stale; due tomorrow', 'close 5 days ago'
    (the expected close date passed), 'closing in 4 days'."""
    label, style = _WHY[r.why]
    if r.why == "overdue" and r.due:
        label = f"overdue {when(r.due, today).removesuffix(' ago')}"
    elif r.why in ("close_overdue", "closing") and r.close_date:
        rel = when(r.close_date, today)
        label = f"close {rel}" if rel.endswith(" ago") else f"closing {rel}"
    elif r.due and r.why != "due_today":
        label = f"{label}; due {when(r.due, today)}" if label else f"due {when(r.due, today)}"
    return Styled((label, style))


def _today(as_of: str) -> Any:
    """The user's date at the as-of moment (``localtime``), which 'today' and 'ago' count from."""
    from pipectl.localtime import today

    return today(as_of)


def next_table(rows: list[Any], total: int, as_of: str, several: bool = False) -> None:
    # one line a deal; on a narrow terminal the rank, then the stage, then the value are left
    # out before the name is cut below 20 cells (the dates say themselves in words)
    table = Table(
        Column("#", justify="right", flexible=False, drop=1),
        Column("ID", justify="right", flexible=False),
        Column("Deal", min_width=20), Column("Stage", min_width=13, drop=2),
        Column("Value", justify="right", flexible=False, drop=3),
        Column("Why", flexible=False),
        Column("Next", min_width=12),
        title=f"Next steps (as of {shown(as_of)}), most urgent first",
    )
    today = _today(as_of)
    for r in rows:
        why = why_cell(r, today)
        table.add_row(str(r.rank), str(r.id), r.name, _stage_cell(r, several),
                      money_cell(r.value_minor, r.currency), why, r.action)
    if rows:
        table.write()
    echo(f"{count(total, 'open deal')}"
              + (f" (the first {len(rows)} shown; --limit 0 shows all)" if total > len(rows)
                 else ""))
