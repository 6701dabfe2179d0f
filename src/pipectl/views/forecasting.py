"""Views of ``pipectl calibrate``, ``pipectl forecast --range`` and ``forecast --backtest``:
tables and bars for the terminal, JSON and CSV. They take ``services.forecasting``'s results
and print; they compute nothing."""

from __future__ import annotations

import csv
import sys
from typing import Any

from pipectl.localtime import shown, shown_date
from pipectl.values import format_money
from pipectl.views.common import money, print_json
from pipectl.views.table import Column, Table, plain_output, terminal_width


def _line(text: str) -> None:
    """A line of prose, wrapped at spaces to the terminal (piped: one line, for grep)."""
    from pipectl.views.reports import _say

    _say("", text)


def _pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f} %"


def _whole(minor: int, currency: str) -> str:
    """An amount in whole units with thousands separators (a range is an estimate: its cents
    say nothing); JSON and CSV keep the exact minor units."""
    text = format_money(minor, currency)
    whole, _, frac = text.partition(".")
    n = int(whole)
    if frac and int(frac) * 2 >= 10 ** len(frac):  # half up, as a person rounds
        n += 1 if n >= 0 else 0
    return f"{n:,}"


def _days(s: Any) -> str:
    if s.days_median is None:
        return "-"
    return f"{s.days_median} ({s.days_p25}-{s.days_p75})"


# ---------------------------------------------------------------- calibrate


def calibrate_table(cal: Any) -> None:
    since = f", deals decided since {shown_date(cal.since)}" if cal.since else ""
    plain = plain_output()  # the titles go to stderr: each row names its pipeline
    for fit in cal.pipelines:
        p = fit.pipeline
        named = [p.name] if plain else []
        table = Table(
            *(Column("Pipeline") for _ in named), Column("Stage"),
            Column("Set", justify="right", flexible=False),
            Column("Learned (90 %)", justify="right", flexible=False),
            Column("Won/decided", justify="right", flexible=False),
            Column("Days (P25-P75)", justify="right", flexible=False),
            title=f"Calibration of {p.name} (as of {shown(cal.as_of)}{since})",
        )
        for s in fit.stages:
            if s.learned is None:
                learned = f"too few (<{cal.min_decided})" if s.decided else "none"
            else:
                learned = f"{_pct(s.learned)} ({s.low * 100:.0f}-{s.high * 100:.0f})"
            table.add_row(*named, s.label, f"{s.configured} %", learned, f"{s.won}/{s.decided}",
                          _days(s))
        table.write()
        apart = [s for s in fit.stages if s.learned is not None
                 and s.won_valued + s.lost_valued >= cal.min_decided
                 and abs((s.learned_valued or 0) - s.learned) >= 0.05]
        if apart:
            _line("Among the deals that had a value when decided (the chance forecast --range "
                  "uses): " + ", ".join(
                      f"{s.label} {_pct(s.learned_valued)} ({s.won_valued}/"
                      f"{s.won_valued + s.lost_valued})" for s in apart)
                  + "; the lost deals had no value more often than the won ones.")
        if fit.brier_configured is None:
            _line("No decided deal yet: nothing to score the probabilities on.")
            continue
        _line(f"Brier score of the set probabilities: {fit.brier_configured:.3f} over "
             f"{fit.predictions:,} stage records of decided deals; the learned ones "
             f"{fit.brier_learned:.3f} (on the same deals); 0.250 is a coin toss, 0 perfect.")
        bands = Table(
            *(Column("Pipeline") for _ in named), Column("Set probability"),
            Column("Records", justify="right", flexible=False),
            Column("Mean set", justify="right", flexible=False),
            Column("Won", justify="right", flexible=False),
            title="Calibration: set probability against share won",
        )
        for b in fit.bands:
            if b.n:
                top = "100" if b.high == 100 else f"<{b.high}"
                bands.add_row(*named, f"{b.low}-{top} %", f"{b.n:,}", _pct(b.predicted),
                              _pct(b.actual))
        bands.write()
        changes = [(s.label, s.configured, s.suggested) for s in fit.stages
                   if s.suggested is not None and s.suggested != s.configured]
        if changes:
            _line(f"pipectl calibrate --apply{_pipeline_flag(cal, p.name)} would set: "
                 + ", ".join(f"{label} {old} % -> {new} %" for label, old, new in changes))


def _pipeline_flag(cal: Any, name: str) -> str:
    return f" --pipeline {_quoted(name)}" if len(cal.pipelines) > 1 else ""


def _quoted(name: str) -> str:
    import shlex

    return shlex.quote(name)


def calibrate_json(cal: Any, applied: list[Any] | None = None) -> None:
    out: dict[str, Any] = {
        "as_of": cal.as_of,
        "since": cal.since,
        "min_decided": cal.min_decided,
        "pipelines": [
            {
                "pipeline": fit.pipeline.name,
                "version": fit.pipeline.version,
                "stages": [
                    {
                        "stage": s.key, "label": s.label, "configured": s.configured,
                        "won": s.won, "lost": s.lost, "decided": s.decided,
                        "learned": None if s.learned is None else round(s.learned, 6),
                        "interval_90": None if s.low is None else
                        [round(s.low, 6), round(s.high, 6)],
                        "suggested": s.suggested,
                        "with_value": {"won": s.won_valued, "lost": s.lost_valued,
                                       "learned": None if s.learned_valued is None else
                                       round(s.learned_valued, 6)},
                        "days_to_close": {"median": s.days_median, "p25": s.days_p25,
                                          "p75": s.days_p75, "won_median": s.days_won_median},
                        "untimed": s.untimed,
                    }
                    for s in fit.stages
                ],
                "records": fit.predictions,
                "brier": {
                    "configured": None if fit.brier_configured is None else
                    round(fit.brier_configured, 6),
                    "learned_in_sample": None if fit.brier_learned is None else
                    round(fit.brier_learned, 6),
                },
                "calibration": [
                    {"from": b.low, "to": b.high, "records": b.n, "won": b.won,
                     "mean_probability": None if b.predicted is None else round(b.predicted, 6),
                     "share_won": None if b.actual is None else round(b.actual, 6)}
                    for b in fit.bands if b.n
                ],
            }
            for fit in cal.pipelines
        ],
    }
    if applied is not None:
        out["applied"] = [
            {"pipeline": a.pipeline, "version": a.version,
             "changes": [{"stage": k, "from": old, "to": new} for k, old, new in a.changes]}
            for a in applied
        ]
    print_json(out)


def calibrate_csv(cal: Any) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["pipeline", "stage", "configured", "won", "lost", "learned", "low_90",
                "high_90", "days_median", "days_p25", "days_p75"])
    for fit in cal.pipelines:
        for s in fit.stages:
            w.writerow([fit.pipeline.name, s.key, s.configured, s.won, s.lost,
                        "" if s.learned is None else f"{s.learned:.6f}",
                        "" if s.low is None else f"{s.low:.6f}",
                        "" if s.high is None else f"{s.high:.6f}",
                        _n(s.days_median), _n(s.days_p25), _n(s.days_p75)])


def _n(x: Any) -> str:
    return "" if x is None else str(x)


def apply_preview(cal: Any) -> list[str]:
    """The lines that say what --apply changes."""
    from pipectl.services.forecasting import learned_changes

    lines = []
    for fit in cal.pipelines:
        for key, old, new in learned_changes(fit):
            lines.append(f"{fit.pipeline.name}: {fit.pipeline.stage(key).label} ({key}) "
                         f"{old} % -> {new} %")
    return lines


# ---------------------------------------------------------------- the range


def _bar(f: Any, scale: int, width: int) -> str:
    """P10 to P90 as a line, P50 as a dot, the target as a bar, on 0..scale."""
    if width <= 0 or scale <= 0:
        return ""

    def at(x: int) -> int:
        return min(width - 1, max(0, round(x / scale * (width - 1))))

    cells = [" "] * width
    for i in range(at(f.p10), at(f.p90) + 1):
        cells[i] = "─"
    cells[at(f.p50)] = "●"
    if f.target is not None:
        cells[at(f.target)] = "│" if cells[at(f.target)] == " " else "┼"
    return "".join(cells)


def _deals(n: int) -> str:
    return f"{n:,} deal{'' if n == 1 else 's'}"


def _basis_lines(basis: Any) -> list[str]:
    lines = [
        f"{_deals(basis.deals)} open: chance learned for {basis.learned:,}, own "
        f"{basis.own:,}, stage's set {basis.configured:,}; timed by close date and the "
        f"team's slips {basis.by_close_date:,}, by their stage's time to win "
        f"{basis.by_stage:,}, on their close date {basis.as_promised:,}.",
    ]
    if basis.analogs:
        n = basis.analogs
        lines.append(f"Deals not open yet: each run adds the value won from deals new in one "
                     f"of the {n} latest past period{'s' if n != 1 else ''} (drawn at random).")
    if basis.untimed:
        from pipectl.views.common import totals_cell

        lines.append(f"Left out: {_deals(basis.untimed)} nothing in the history can time (no "
                     f"close date ahead, and no win from their stage took as long as they "
                     f"have waited, or too few wins to tell): "
                     f"{totals_cell(basis.untimed_value)}.")
    if basis.without_value:
        lines.append(f"Left out: {_deals(basis.without_value)} without a value.")
    return lines


def range_table(r: Any) -> None:
    which = f", pipeline {r.pipeline}" if r.pipeline else ""
    target = any(f.target is not None for p in r.periods for f in p.figures)
    headers = ["Period", "Cur", "P10", "P50", "P90", "Expected"] + (["Chance"] if target else [])
    plain = plain_output()  # tab-separated: no chart, and every row names its period
    rows: list[list[str]] = []
    figures = []
    for p in r.periods:
        label = p.period.label + ("*" if p.state == "current" else "")
        for f in p.figures:
            row = [label, f.currency, *(_whole(x, f.currency)
                                        for x in (f.p10, f.p50, f.p90, f.expected))]
            if target:
                row.append("" if f.chance is None else _pct(f.chance))
            rows.append(row)
            figures.append(f)
            label = label if plain else ""
    # the bar takes the room the figures leave (columns two spaces apart), at most 30 cells
    used = sum(max([len(h)] + [len(row[i]) for row in rows]) + 2
               for i, h in enumerate(headers))
    bar = 0 if plain else max(0, min(30, terminal_width() - used - 2))
    columns = [Column("Period", flexible=False), Column("Cur", flexible=False)]
    columns += [Column(h, justify="right", flexible=False) for h in headers[2:]]
    if bar >= 8:
        columns.append(Column("P10 ─●─ P90", width=bar, flexible=False))
    table = Table(*columns, box=False,
                  title=f"Forecast range as of {shown(r.as_of)}{which}")
    scale: dict[str, int] = {}
    for f in figures:
        scale[f.currency] = max(scale.get(f.currency, 0), f.p90, f.target or 0)
    for row, f in zip(rows, figures, strict=True):
        table.add_row(*row, *([_bar(f, scale[f.currency], bar)] if bar >= 8 else []))
    table.write()
    current = next((p for p in r.periods if p.state == "current"), None)
    if current is not None:
        so_far = ", ".join(f"{_whole(f.won_so_far, f.currency)} {f.currency}"
                           for f in current.figures if f.won_so_far)
        _line(f"* {current.period.label} is under way: its figures include what was won in it "
             f"so far ({so_far or 'nothing yet'}).")
    if target:
        t = next(f for p in r.periods for f in p.figures if f.target is not None)
        _line(f"Chance: the share of runs in which the period's won value reaches the target "
             f"{_whole(t.target, t.currency)} {t.currency}.")
    for line in _basis_lines(r.basis):
        _line(line)
    _line(f"{r.runs:,} runs, seed {r.seed}: the same seed gives the same figures.")


def _range_item(f: Any) -> dict[str, Any]:
    c = f.currency
    out = {"currency": c, "p10": money(f.p10, c), "p50": money(f.p50, c),
           "p90": money(f.p90, c), "expected": money(f.expected, c),
           "expected_from_new_deals": money(f.new_deals, c),
           "won_so_far": money(f.won_so_far, c)}
    if f.target is not None:
        out["target"] = money(f.target, c)
        out["chance_of_target"] = round(f.chance, 6)
    return out


def _basis_json(b: Any) -> dict[str, Any]:
    return {
        "open_deals": b.deals, "without_value": b.without_value,
        "probability": {"learned": b.learned, "own": b.own, "configured": b.configured},
        "timing": {"close_date_and_slips": b.by_close_date, "stage_time_to_win": b.by_stage,
                   "on_close_date": b.as_promised, "untimed": b.untimed},
        "untimed_value": {c: money(v, c) for c, v in sorted(b.untimed_value.items())},
        "new_deal_periods": b.analogs,
    }


def _head(r: Any, owner: str | None) -> dict[str, Any]:
    """What a range or a backtest was computed from, first in its JSON."""
    return {"as_of": r.as_of, "by": r.unit, "runs": r.runs, "seed": r.seed, "owner": owner,
            "pipeline": r.pipeline}


def range_json(r: Any, owner: str | None) -> None:
    print_json({
        **_head(r, owner),
        "periods": [
            {"period": p.period.label, "from": p.period.start.isoformat(),
             "to": p.period.end.isoformat(), "state": p.state,
             "figures": [_range_item(f) for f in p.figures]}
            for p in r.periods
        ],
        "basis": _basis_json(r.basis),
    })


def range_csv(r: Any) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["period", "from", "to", "state", "currency", "p10", "p50", "p90", "expected",
                "expected_from_new_deals", "won_so_far", "target", "chance_of_target"])
    for p in r.periods:
        for f in p.figures:
            c = f.currency
            w.writerow([p.period.label, p.period.start.isoformat(), p.period.end.isoformat(),
                        p.state, c, money(f.p10, c), money(f.p50, c), money(f.p90, c),
                        money(f.expected, c), money(f.new_deals, c), money(f.won_so_far, c),
                        "" if f.target is None else money(f.target, c),
                        "" if f.chance is None else f"{f.chance:.6f}"])


# ---------------------------------------------------------------- the backtest


def backtest_table(b: Any) -> None:
    which = f", pipeline {b.pipeline}" if b.pipeline else ""
    table = Table(
        Column("Period", flexible=False), Column("Cur", flexible=False),
        *(Column(h, justify="right", flexible=False)
          for h in ("Weighted", "P10", "P50", "P90", "Won")),
        Column("In", flexible=False),
        box=False,
        title=f"Backtest as of {shown(b.as_of)}{which}",
    )
    for p in b.periods:
        label = p.period.label
        for s in p.figures:
            if not s.scored:
                continue
            c = s.currency
            table.add_row(label, c, *(_whole(x, c) for x in (s.weighted, s.p10, s.p50, s.p90,
                                                             s.actual)),
                          "yes" if s.inside else ("low" if s.actual < s.p10 else "high"))
            label = ""
    if not table.rows:
        _line("No period in this span had anything forecast or won.")
        return
    table.write()
    _line(f"Each period's forecast at its start, from the events known then, against what was "
          f"won in it ({b.runs:,} runs, seed {b.seed}).")
    for s in b.scores:
        c = s.currency
        _line(f"{c}: inside P10-P90 in {s.inside} of {s.periods} "
              f"period{'' if s.periods == 1 else 's'} "
             f"({_pct(s.coverage)}; honest ranges: about 80 %). Mean absolute error: weighted "
             f"{_whole(s.mae_weighted, c)}, P50 {_whole(s.mae_p50, c)}, expected "
             f"{_whole(s.mae_expected, c)} {c}.")


def backtest_json(b: Any, owner: str | None) -> None:
    print_json({
        **_head(b, owner),
        "periods": [
            {"period": p.period.label, "from": p.period.start.isoformat(),
             "to": p.period.end.isoformat(), "forecast_as_of": p.forecast_as_of,
             "figures": [
                 {"currency": s.currency, "weighted": money(s.weighted, s.currency),
                  "p10": money(s.p10, s.currency), "p50": money(s.p50, s.currency),
                  "p90": money(s.p90, s.currency), "expected": money(s.expected, s.currency),
                  "won": money(s.actual, s.currency), "inside": s.inside, "scored": s.scored}
                 for s in p.figures]}
            for p in b.periods
        ],
        "scores": [
            {"currency": s.currency, "periods": s.periods, "inside": s.inside,
             "coverage": None if s.coverage is None else round(s.coverage, 6),
             "mean_absolute_error": {"weighted": money(s.mae_weighted, s.currency),
                                     "p50": money(s.mae_p50, s.currency),
                                     "expected": money(s.mae_expected, s.currency)}}
            for s in b.scores
        ],
    })


def backtest_csv(b: Any) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["period", "from", "to", "currency", "weighted", "p10", "p50", "p90",
                "expected", "won", "inside", "scored"])
    for p in b.periods:
        for s in p.figures:
            c = s.currency
            w.writerow([p.period.label, p.period.start.isoformat(), p.period.end.isoformat(),
                        c, money(s.weighted, c), money(s.p10, c), money(s.p50, c),
                        money(s.p90, c), money(s.expected, c), money(s.actual, c),
                        int(s.inside), int(s.scored)])
