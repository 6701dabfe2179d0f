"""pipectl calibrate and forecast --range / --target / --backtest through the CLI.

One small history, written with fixed --at times while PIPECTL_NOW is 2026-05-15 12:00 UTC: the
default pipeline (USD and EUR, owners Anna and Ben, wins and losses at several stages, some
deals with their own probability, most with a close date) and a second pipeline, Partners. It
is built once per engine (about a hundred commands) and read by the tests that only read; the
exact JSON expected below is the same on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist
from typing import Any

import click
import click.testing
import pytest

from tests import engines
from tests.conftest import Cli

NOW = "2026-05-15T12:00:00Z"
START = "2025-01-02T09:00:00Z"  # the database and the Partners pipeline are made then

PARTNERS = """\
name = "Partners"
stages = [
  { key = "intro", label = "Introduction", probability = 30 },
  { key = "talks", label = "Talks", probability = 60 },
  { key = "signed", label = "Signed", kind = "won" },
]
"""


@dataclass(frozen=True)
class Deal:
    """A deal of the history: added at ``at`` into ``stage``, then ``moves``: (stage, when)
    pairs, a stage key (advance --to), "lost" (lose), or "close=DATE" (edit --close)."""

    name: str
    at: str
    stage: str
    value: str | None
    currency: str
    owner: str
    close: str | None = None
    own: int | None = None
    moves: tuple[tuple[str, str], ...] = ()
    pipeline: str = "default"


def _w(name: str, at: str, stage: str, value: str, currency: str, owner: str, close: str,
       *moves: tuple[str, str], own: int | None = None) -> Deal:
    return Deal(name, at, stage, value, currency, owner, close, own, moves)


HISTORY: tuple[Deal, ...] = (
    # won in the default pipeline: 13, each with a promised close date
    _w("W1", "2025-02-03", "meeting", "12000", "USD", "Anna", "2025-03-15",
       ("proposal", "2025-02-20"), ("won", "2025-03-20"), own=70),
    _w("W2", "2025-03-10", "meeting", "20000", "USD", "Ben", "2025-04-30",
       ("proposal", "2025-03-25"), ("won", "2025-05-12")),
    _w("W3", "2025-05-05", "meeting", "8000", "USD", "Anna", "2025-06-15",
       ("proposal", "2025-05-20"), ("won", "2025-06-10"), own=70),
    _w("W4", "2025-06-02", "meeting", "15000", "USD", "Ben", "2025-07-10",
       ("proposal", "2025-06-16"), ("close=2025-07-20", "2025-07-01"), ("won", "2025-07-25")),
    _w("W5", "2025-08-04", "meeting", "30000", "USD", "Anna", "2025-09-15",
       ("proposal", "2025-08-18"), ("won", "2025-10-15")),
    _w("W6", "2025-10-06", "meeting", "10000", "USD", "Ben", "2025-11-20",
       ("proposal", "2025-10-27"), ("won", "2025-11-18")),
    _w("W7", "2025-11-03", "proposal", "25000", "USD", "Anna", "2025-12-10",
       ("won", "2025-12-15")),
    _w("W8", "2025-12-01", "proposal", "18000", "USD", "Ben", "2026-01-20",
       ("won", "2026-02-05")),
    _w("W9", "2025-09-01", "proposal", "9000", "EUR", "Anna", "2025-10-01",
       ("won", "2025-10-06")),
    _w("W10", "2026-01-12", "proposal", "14000", "EUR", "Ben", "2026-02-20",
       ("won", "2026-02-18")),
    _w("W11", "2026-02-02", "proposal", "20000", "EUR", "Anna", "2026-03-15",
       ("negotiation", "2026-03-02"), ("won", "2026-03-25"), own=70),
    _w("W12", "2026-03-02", "proposal", "11000", "EUR", "Ben", "2026-04-10",
       ("negotiation", "2026-03-30"), ("won", "2026-04-20")),
    _w("W13", "2026-04-13", "proposal", "7000", "USD", "Anna", "2026-05-10",
       ("won", "2026-05-05")),
    # lost in the default pipeline: 12, and 3 at prospecting
    Deal("L1", "2025-02-10", "meeting", "10000", "USD", "Anna", None, 30,
         (("lost", "2025-03-01"),)),
    Deal("L2", "2025-04-07", "meeting", "6000", "USD", "Ben", None, None,
         (("lost", "2025-04-28"),)),
    Deal("L3", "2025-06-09", "meeting", "5000", "EUR", "Anna", None, None,
         (("lost", "2025-07-07"),)),
    Deal("L4", "2025-07-14", "meeting", "9000", "USD", "Ben", None, None,
         (("lost", "2025-08-11"),)),
    Deal("L5", "2025-09-08", "meeting", "12000", "USD", "Anna", None, None,
         (("lost", "2025-10-20"),)),
    Deal("L6", "2025-12-08", "meeting", "7000", "EUR", "Ben", None, None,
         (("lost", "2026-01-12"),)),
    Deal("L7", "2025-04-14", "proposal", "16000", "USD", "Anna", "2025-05-30", 50,
         (("lost", "2025-06-02"),)),
    Deal("L8", "2025-10-13", "proposal", "22000", "USD", "Ben", "2025-11-28", None,
         (("lost", "2025-12-01"),)),
    Deal("L9", "2025-07-01", "meeting", "14000", "USD", "Anna", "2025-08-29", None,
         (("proposal", "2025-07-21"), ("lost", "2025-09-01"))),
    Deal("L10", "2026-01-05", "meeting", "10000", "EUR", "Ben", None, None,
         (("proposal", "2026-01-26"), ("lost", "2026-02-23"))),
    Deal("L11", "2025-08-25", "negotiation", "40000", "USD", "Anna", "2025-09-30", None,
         (("lost", "2025-10-06"),)),
    Deal("L12", "2026-02-09", "negotiation", "30000", "EUR", "Ben", None, None,
         (("lost", "2026-03-09"),)),
    Deal("P1", "2025-03-03", "prospecting", "3000", "USD", "Anna", None, None,
         (("lost", "2025-03-17"),)),
    Deal("P2", "2025-08-04", "prospecting", None, "USD", "Ben", None, None,
         (("lost", "2025-08-25"),)),
    Deal("P3", "2026-01-19", "prospecting", "2000", "EUR", "Anna", None, None,
         (("lost", "2026-02-02"),)),
    # open in the default pipeline at NOW
    Deal("O1", "2026-04-01", "meeting", "10000", "USD", "Anna", "2026-05-28"),
    Deal("O2", "2026-03-16", "meeting", "25000", "USD", "Ben", "2026-06-20", None,
         (("proposal", "2026-04-08"),)),
    Deal("O3", "2026-03-23", "proposal", "8000", "EUR", "Anna", "2026-05-05"),  # overdue
    Deal("O4", "2026-04-15", "negotiation", "40000", "USD", "Ben", "2026-07-10", 90),
    Deal("O5", "2026-04-20", "proposal", "12000", "EUR", "Anna"),  # no close date
    Deal("O6", "2026-02-16", "prospecting", "5000", "USD", "Ben"),  # nothing times it
    Deal("O7", "2026-05-04", "meeting", None, "USD", "Anna", "2026-06-30"),  # no value
    Deal("O8", "2026-02-02", "meeting", "20000", "USD", "Anna", "2026-04-15", None,
         (("close=2026-06-05", "2026-04-14"),)),
    # the Partners pipeline: 3 won, 2 lost, 2 open
    Deal("Q1", "2025-03-05", "intro", "5000", "EUR", "Anna", "2025-04-30", None,
         (("talks", "2025-03-26"), ("signed", "2025-04-28")), "Partners"),
    Deal("Q2", "2025-06-04", "intro", "8000", "USD", "Ben", None, None,
         (("lost", "2025-06-30"),), "Partners"),
    Deal("Q3", "2025-09-03", "intro", "6000", "EUR", "Anna", None, 50,
         (("talks", "2025-09-24"), ("lost", "2025-10-29")), "Partners"),
    Deal("Q4", "2025-11-05", "talks", "12000", "USD", "Ben", "2025-12-15", None,
         (("signed", "2025-12-22"),), "Partners"),
    Deal("Q5", "2026-01-07", "intro", "4000", "EUR", "Anna", None, None,
         (("talks", "2026-02-04"), ("signed", "2026-03-18")), "Partners"),
    Deal("PO1", "2026-04-06", "intro", "6000", "EUR", "Anna", "2026-06-10",
         pipeline="Partners"),
    Deal("PO2", "2026-04-20", "talks", "15000", "USD", "Ben", "2026-05-25",
         pipeline="Partners"),
)


_APP: list[click.Command] = []


class Run(Cli):
    """``Cli`` with the app's click command built once: Typer builds it anew at each invoke
    (every command's parameters from its signature), most of a command's time in-process."""

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Any:
        if not _APP:
            import typer.main

            from pipectl.cli import app

            _APP.append(typer.main.get_command(app))
        result = click.testing.CliRunner().invoke(_APP[0], ["--db", str(self.db), *args],
                                                  input=input)
        if result.exit_code != code:
            raise AssertionError(
                f"pipectl {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
                f"exception: {result.exception!r}")
        return result


def _commands(deals: tuple[Deal, ...]) -> list[list[str]]:
    """Every command of the history, in the order of their --at times (ids: by creation)."""
    ids = {d.name: i for i, d in enumerate(sorted(deals, key=lambda d: d.at), start=1)}
    timed: list[tuple[str, int, list[str]]] = []
    for d in deals:
        add = ["add", d.name, "--stage", d.stage, "--currency", d.currency, "--owner",
               d.owner, "--at", d.at]
        if d.pipeline != "default":
            add += ["--pipeline", d.pipeline]
        elif d.stage not in ("prospecting", "qualification"):
            add += ["--prequalified", "referred"]
        if d.value is not None:
            add += ["--value", d.value]
        if d.close is not None:
            add += ["--close", d.close]
        if d.own is not None:
            add += ["--probability", str(d.own)]
        timed.append((d.at, 0, add))
        for n, (what, at) in enumerate(d.moves, start=1):
            deal = str(ids[d.name])
            if what == "lost":
                args = ["lose", deal, "--reason", "price", "--at", at]
            elif what.startswith("close="):
                args = ["edit", deal, "--close", what.partition("=")[2], "--at", at]
            else:
                args = ["advance", deal, "--to", what, "--at", at]
            timed.append((at, n, args))
    return [args for _, _, args in sorted(timed, key=lambda t: (t[0], t[1]))]


def build(cli: Cli, folder: Path, monkeypatch: pytest.MonkeyPatch,
          deals: tuple[Deal, ...] = HISTORY) -> None:
    monkeypatch.setenv("PIPECTL_NOW", START)
    toml = folder / "partners.toml"
    toml.write_text(PARTNERS)
    cli("pipeline", "apply", str(toml))
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    for args in _commands(deals):
        cli(*args)


@pytest.fixture(scope="module")
def _built() -> Iterator[dict[str, engines.Target]]:
    """The history's database per engine, built on first asking; the server's is dropped at
    the module's end."""
    made: dict[str, engines.Target] = {}
    yield made
    for db in made.values():
        if engines.is_url(db):
            engines.drop_database(str(db).rsplit("/", 1)[1])


@pytest.fixture
def hist(engine: str, _built: dict[str, engines.Target],
         tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A Cli on the history (read only: the tests that write build their own)."""
    if engine not in _built:
        folder = tmp_path_factory.mktemp("history")
        db: engines.Target = (folder / "pipeline.db" if engine == "sqlite"
                              else engines.url_of(engines.new_database()))
        _built[engine] = db
        try:
            build(Run(db), folder, monkeypatch)
        except BaseException:
            del _built[engine]
            if engines.is_url(db):
                engines.drop_database(str(db).rsplit("/", 1)[1])
            raise
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    return Run(_built[engine])


# ---------------------------------------------------------------- the history, counted by hand

SET = {"default": {"prospecting": 10, "qualification": 20, "meeting": 40, "proposal": 60,
                   "negotiation": 80},
       "Partners": {"intro": 30, "talks": 60}}
WON = {"default": "won", "Partners": "signed"}
EVER = "9999-12-31"


@dataclass(frozen=True)
class Record:
    """A decided deal and one open stage it was in: what calibrate counts."""

    stage: str
    won: bool
    days: int  # from its entry into the stage to the win or loss
    p: int  # the probability it carried: its own, else the stage's set one
    valued: bool


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def outcome(d: Deal, as_of: str = EVER) -> tuple[bool, str] | None:
    """(won, on which day) of a deal decided by ``as_of`` (a day: its midnight), else None."""
    moves = [(w, at) for w, at in d.moves if not w.startswith("close=") and at <= as_of]
    if not moves or moves[-1][0] not in ("lost", WON[d.pipeline]):
        return None
    return moves[-1][0] != "lost", moves[-1][1]


def records(pipeline: str, since: str = "", as_of: str = EVER) -> list[Record]:
    out = []
    for d in HISTORY:
        end = outcome(d, as_of) if d.pipeline == pipeline else None
        if end is None or end[1] < since:
            continue
        won, when = end
        entered = {d.stage: d.at}
        entered.update((w, at) for w, at in d.moves if w in SET[pipeline] and at <= when)
        out += [Record(s, won, (_day(when) - _day(at)).days,
                       SET[pipeline][s] if d.own is None else d.own, d.value is not None)
                for s, at in entered.items()]
    return out


def nearest_rank(days: list[int], q: float) -> int | None:
    return sorted(days)[max(1, math.ceil(q * len(days))) - 1] if days else None


def wilson(won: int, n: int) -> list[float]:
    z = NormalDist().inv_cdf(0.95)
    p = won / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 6), round(centre + half, 6)]


def won_in(start: str, end: str, owner: str | None = None,
           pipeline: str | None = None) -> dict[str, str]:
    """The value won in [start, end) per currency, of an owner or pipeline when given."""
    out: dict[str, Decimal] = {}
    for d in HISTORY:
        end_of = outcome(d)
        if (end_of is None or not end_of[0] or not start <= end_of[1] < end or d.value is None
                or owner not in (None, d.owner) or pipeline not in (None, d.pipeline)):
            continue
        out[d.currency] = out.get(d.currency, Decimal(0)) + Decimal(d.value)
    return {c: f"{v:.2f}" for c, v in sorted(out.items())}


def open_at(as_of: str, owner: str | None = None, pipeline: str | None = None) -> list[Deal]:
    return [d for d in HISTORY if d.at <= as_of and outcome(d, as_of) is None
            and owner in (None, d.owner) and pipeline in (None, d.pipeline)]


def test_the_history_is_as_described() -> None:
    """The figures the tests below check by hand rest on these counts."""
    assert len(HISTORY) == 43
    assert [d.name for d in open_at(NOW[:10])] == [
        "O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8", "PO1", "PO2"]
    assert len(records("default")) == 38 and len(records("Partners")) == 8
    assert won_in("2026-05-01", "2026-06-01") == {"USD": "7000.00"}  # W13


# ---------------------------------------------------------------- calibrate


def _stage(key: str, label: str, configured: int, won: int, lost: int,
           learned: float | None, interval: list[float] | None, suggested: int | None,
           with_value: tuple[int, int, float | None], days: tuple[int | None, ...]) -> dict:
    return {"stage": key, "label": label, "configured": configured, "won": won, "lost": lost,
            "decided": won + lost, "learned": learned, "interval_90": interval,
            "suggested": suggested,
            "with_value": dict(zip(("won", "lost", "learned"), with_value, strict=True)),
            "days_to_close": dict(zip(("median", "p25", "p75", "won_median"), days,
                                      strict=True)),
            "untimed": 0}


def _band(low: int, records_: int, won: int, mean: float, share: float) -> dict:
    return {"from": low, "to": low + 10, "records": records_, "won": won,
            "mean_probability": mean, "share_won": share}


NONE4 = (None, None, None, None)


def test_calibrate_json_exact(hist: Cli) -> None:
    assert hist.json("calibrate") == {
        "as_of": NOW, "since": None, "min_decided": 10,
        "pipelines": [
            {"pipeline": "default", "version": 1,
             "stages": [
                 # P1, P2 (no value), P3: all lost
                 _stage("prospecting", "Prospecting", 10, 0, 3, None, None, None,
                        (0, 2, None), (14, 14, 21, None)),
                 _stage("qualification", "Lead qualification", 20, 0, 0, None, None, None,
                        (0, 0, None), NONE4),
                 # W1-W6 won; L1-L6, L9, L10 lost
                 _stage("meeting", "Demo or meeting", 40, 6, 8, 0.428571, [0.24065, 0.63963],
                        43, (6, 8, 0.428571), (42, 28, 53, 45)),
                 # W1-W13 won; L7-L10 lost
                 _stage("proposal", "Proposal", 60, 13, 4, 0.764706, [0.567039, 0.889685],
                        76, (13, 4, 0.764706), (42, 28, 49, 39)),
                 # W11, W12 won; L11, L12 lost: too few
                 _stage("negotiation", "Negotiation and commitment", 80, 2, 2, None, None,
                        None, (2, 2, None), (23, 21, 28, 21)),
             ],
             "records": 38,
             "brier": {"configured": 0.196579, "learned_in_sample": 0.2073},
             "calibration": [
                 _band(10, 3, 0, 0.1, 0.0), _band(30, 1, 0, 0.3, 0.0),
                 _band(40, 11, 4, 0.4, 0.363636), _band(50, 1, 0, 0.5, 0.0),
                 _band(60, 13, 10, 0.6, 0.769231), _band(70, 6, 6, 0.7, 1.0),
                 _band(80, 3, 1, 0.8, 0.333333),
             ]},
            {"pipeline": "Partners", "version": 1,
             "stages": [
                 _stage("intro", "Introduction", 30, 2, 2, None, None, None, (2, 2, None),
                        (54, 26, 56, 54)),
                 _stage("talks", "Talks", 60, 3, 1, None, None, None, (3, 1, None),
                        (35, 33, 42, 42)),
             ],
             "records": 8,
             "brier": {"configured": 0.25625, "learned_in_sample": 0.25},
             "calibration": [_band(30, 3, 2, 0.3, 0.666667), _band(50, 2, 0, 0.5, 0.0),
                             _band(60, 3, 3, 0.6, 1.0)]},
        ],
    }


@pytest.mark.parametrize(("since", "as_of"), [("", ""), ("2026-01-01", ""),
                                              ("", "2025-10-01"), ("2025-06-01", "2026-03-01")])
def test_calibrate_figures_by_hand(hist: Cli, since: str, as_of: str) -> None:
    """Every stage's counts, learned share, Wilson interval and days, and the Brier scores,
    counted from the history's own description (--min-decided 3, so that Partners learns)."""
    args = ["calibrate", "--min-decided", "3"]
    args += ["--since", since] if since else []
    args += ["--as-of", as_of] if as_of else []
    out = hist.json(*args)
    assert out["since"] == (f"{since}T00:00:00Z" if since else None)
    assert [p["pipeline"] for p in out["pipelines"]] == ["default", "Partners"]
    for fit in out["pipelines"]:
        name = fit["pipeline"]
        every = records(name, since, as_of or EVER)
        assert fit["records"] == len(every)
        fitted = []
        for s in fit["stages"]:
            mine = [r for r in every if r.stage == s["stage"]]
            won = sum(r.won for r in mine)
            assert (s["won"], s["lost"], s["configured"]) == (won, len(mine) - won,
                                                              SET[name][s["stage"]])
            assert s["with_value"]["won"] + s["with_value"]["lost"] == sum(r.valued
                                                                         for r in mine)
            if len(mine) >= 3:
                assert s["learned"] == round(won / len(mine), 6)
                assert s["interval_90"] == wilson(won, len(mine))
                assert s["suggested"] == round(100 * won / len(mine))
                fitted += [((won / len(mine)), r.won) for r in mine]
            else:
                assert s["learned"] is s["interval_90"] is s["suggested"] is None
                fitted += [(SET[name][s["stage"]] / 100, r.won) for r in mine]
            days = [r.days for r in mine]
            assert s["days_to_close"] == {
                "median": nearest_rank(days, 0.5), "p25": nearest_rank(days, 0.25),
                "p75": nearest_rank(days, 0.75),
                "won_median": nearest_rank([r.days for r in mine if r.won], 0.5)}
        if every:
            brier = sum((r.p / 100 - r.won) ** 2 for r in every) / len(every)
            in_sample = sum((p - won) ** 2 for p, won in fitted) / len(fitted)
            assert fit["brier"] == {"configured": round(brier, 6),
                                    "learned_in_sample": round(in_sample, 6)}
            assert sum(b["records"] for b in fit["calibration"]) == len(every)
        else:
            assert fit["brier"] == {"configured": None, "learned_in_sample": None}


def test_calibrate_csv_and_table(hist: Cli) -> None:
    assert hist("calibrate", "--csv").stdout.splitlines() == [
        "pipeline,stage,configured,won,lost,learned,low_90,high_90,days_median,days_p25,"
        "days_p75",
        "default,prospecting,10,0,3,,,,14,14,21",
        "default,qualification,20,0,0,,,,,,",
        "default,meeting,40,6,8,0.428571,0.240650,0.639630,42,28,53",
        "default,proposal,60,13,4,0.764706,0.567039,0.889685,42,28,49",
        "default,negotiation,80,2,2,,,,23,21,28",
        "Partners,intro,30,2,2,,,,54,26,56",
        "Partners,talks,60,3,1,,,,35,33,42",
    ]
    out = hist("calibrate").stdout
    lines = out.splitlines()
    assert "Calibration of default (as of 2026-05-15 12:00 UTC)" in lines
    row = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
           for line in lines if line.startswith("│") and "│" in line[1:]}
    assert row["Prospecting"] == ["10 %", "too few (<10)", "0/3", "14 (14-21)"]
    assert row["Lead qualification"] == ["20 %", "none", "0/0", "-"]
    assert row["Demo or meeting"] == ["40 %", "43 % (24-64)", "6/14", "42 (28-53)"]
    assert row["Negotiation and commitment"] == ["80 %", "too few (<10)", "2/4", "23 (21-28)"]
    assert row["Talks"] == ["60 %", "too few (<10)", "3/4", "35 (33-42)"]
    assert ("Brier score of the set probabilities: 0.197 over 38 stage records of decided "
            "deals; the learned ones 0.207") in " ".join(out.split())
    assert ("pipectl calibrate --apply --pipeline default would set: Demo or meeting 40 % -> "
            "43 %, Proposal 60 % -> 76 %") in lines
    assert "│ 60-<70 %        │      13 │     60 % │  77 % │" in lines
    # with --min-decided 3 Partners learns both stages; one pipeline: no --pipeline in the hint
    partners = hist("calibrate", "--pipeline", "partners", "--min-decided", "3").stdout
    assert "too few" not in partners
    assert "Calibration of Partners (as of 2026-05-15 12:00 UTC)" in partners
    assert ("pipectl calibrate --apply would set: Introduction 30 % -> 50 %, Talks 60 % -> "
            "75 %") in partners.splitlines()


# ---------------------------------------------------------------- forecast --range


def _fig(currency: str, p10: str, p50: str, p90: str, expected: str, new: str = "0.00",
         so_far: str = "0.00") -> dict:
    return {"currency": currency, "p10": p10, "p50": p50, "p90": p90, "expected": expected,
            "expected_from_new_deals": new, "won_so_far": so_far}


def _period(label: str, start: str, end: str, state: str, *figures: dict) -> dict:
    return {"period": label, "from": start, "to": end, "state": state, "figures": list(figures)}


def test_range_json_exact(hist: Cli) -> None:
    out = hist.json("forecast", "--range", "--seed", "7", "--runs", "1000")
    assert out == {
        "as_of": NOW, "by": "month", "runs": 1000, "seed": 7, "owner": None, "pipeline": None,
        "periods": [
            _period("2026-05", "2026-05-01", "2026-06-01", "current",
                    _fig("EUR", "0.00", "8000.00", "20000.00", "8768.63"),
                    # W13, won on 2026-05-05, is in every run
                    _fig("USD", "7000.00", "22000.00", "32000.00", "18448.98",
                         so_far="7000.00")),
            _period("2026-06", "2026-06-01", "2026-07-01", "future",
                    _fig("EUR", "0.00", "8000.00", "18000.00", "8325.49"),
                    _fig("USD", "0.00", "25000.00", "45000.00", "23451.38")),
            # new deals: test_range_new_deals_by_hand
            _period("2026-07", "2026-07-01", "2026-08-01", "future",
                    _fig("EUR", "0.00", "0.00", "14000.00", "4500.00", new="4500.00"),
                    _fig("USD", "10000.00", "40000.00", "77000.00", "45336.33",
                         new="5833.33")),
        ],
        "basis": {
            "open_deals": 10, "without_value": 1,  # O7
            # learned: in meeting (14 decided) O1, O8 and proposal (17) O2, O3, O5; own: O4
            # (negotiation: 4 decided); set: O6 and Partners' PO1, PO2
            "probability": {"learned": 5, "own": 1, "configured": 3},
            # the default pipeline has 14 promises of won deals (slips -5 to 30 days): O1, O2,
            # O3 (10 days late), O4, O8 by close date; O5 (no close date) by proposal's 13
            # times to win; Partners (3 promises) on their close dates; O6 not at all
            "timing": {"close_date_and_slips": 5, "stage_time_to_win": 1, "on_close_date": 2,
                       "untimed": 1},
            "untimed_value": {"USD": "5000.00"},  # O6: no close date, no win from prospecting
            "new_deal_periods": 12,
        },
    }


def _month_start(d: date, back: int = 0) -> date:
    n = d.year * 12 + d.month - 1 - back
    return date(n // 12, n % 12 + 1, 1)


def test_range_new_deals_by_hand(hist: Cli) -> None:
    """Each period's value from deals not open yet is the mean, over the 12 months before the
    current one, of the value won in the month by deals created after the moment that lay as
    far before that month's start as now lies before the period's."""
    out = hist.json("forecast", "--range", "--runs", "100")
    now = datetime.fromisoformat(NOW)
    for period in out["periods"]:
        offset = datetime.fromisoformat(period["from"] + "T00:00:00+00:00") - now
        total: dict[str, Decimal] = {}
        for back in range(1, 13):
            start = _month_start(now.date(), back)
            after = (datetime.combine(start, datetime.min.time(), UTC) - offset).isoformat()
            for d in HISTORY:
                end = outcome(d)
                if (end and end[0] and d.value is not None and d.at + "T00:00:00+00:00" >= after
                        and start.isoformat() <= end[1] < _month_start(start, -1).isoformat()):
                    total[d.currency] = total.get(d.currency, Decimal(0)) + Decimal(d.value)
        assert {f["currency"]: f["expected_from_new_deals"] for f in period["figures"]} == {
            c: f"{total.get(c, Decimal(0)) / 12:.2f}" for c in ("EUR", "USD")}
    # July: EUR W9, W10, W11, W12 (54,000 / 12); USD W3, W4, W6, W7 and Partners' Q4
    assert out["periods"][2]["figures"][1]["expected_from_new_deals"] == "5833.33"


def test_range_partners_by_hand(hist: Cli) -> None:
    """Partners' two open deals are timed on their close dates (three promises are too few to
    learn slips from) with their stages' set probabilities (four decided deals are too few):
    PO2, 15,000 USD at 60 % on 2026-05-25; PO1, 6,000 EUR at 30 % on 2026-06-10. Its one new
    deal in the months like July: Q4, 12,000 USD in 2025-12 (/ 12)."""
    out = hist.json("forecast", "--range", "--pipeline", "partners", "--runs", "1000")
    assert out["pipeline"] == "Partners"
    figures = {(p["period"], f["currency"]): (f["p10"], f["p50"], f["p90"], f["expected"])
               for p in out["periods"] for f in p["figures"]}
    zero = ("0.00", "0.00", "0.00", "0.00")
    assert figures == {
        # won in 60 % of the runs: P10 0, P50 and P90 all of it
        ("2026-05", "USD"): ("0.00", "15000.00", "15000.00", "9000.00"),
        ("2026-05", "EUR"): zero,
        # won in 30 % of the runs: P10 and P50 0, P90 all of it
        ("2026-06", "EUR"): ("0.00", "0.00", "6000.00", "1800.00"),
        ("2026-06", "USD"): zero,
        ("2026-07", "EUR"): zero,
        ("2026-07", "USD"): ("0.00", "0.00", "0.00", "1000.00"),
    }
    assert out["basis"]["probability"] == {"learned": 0, "own": 0, "configured": 2}
    assert out["basis"]["timing"] == {"close_date_and_slips": 0, "stage_time_to_win": 0,
                                      "on_close_date": 2, "untimed": 0}


def test_range_csv_and_table(hist: Cli) -> None:
    common = ("forecast", "--range", "--seed", "7", "--runs", "1000")
    assert hist(*common, "--csv").stdout.splitlines() == [
        "period,from,to,state,currency,p10,p50,p90,expected,expected_from_new_deals,"
        "won_so_far,target,chance_of_target",
        "2026-05,2026-05-01,2026-06-01,current,EUR,0.00,8000.00,20000.00,8768.63,0.00,0.00,,",
        "2026-05,2026-05-01,2026-06-01,current,USD,7000.00,22000.00,32000.00,18448.98,0.00,"
        "7000.00,,",
        "2026-06,2026-06-01,2026-07-01,future,EUR,0.00,8000.00,18000.00,8325.49,0.00,0.00,,",
        "2026-06,2026-06-01,2026-07-01,future,USD,0.00,25000.00,45000.00,23451.38,0.00,0.00,,",
        "2026-07,2026-07-01,2026-08-01,future,EUR,0.00,0.00,14000.00,4500.00,4500.00,0.00,,",
        "2026-07,2026-07-01,2026-08-01,future,USD,10000.00,40000.00,77000.00,45336.33,"
        "5833.33,0.00,,",
    ]
    lines = hist(*common).stdout.splitlines()
    assert lines[0] == "Forecast range as of 2026-05-15 12:00 UTC"
    assert lines[-1] == "1,000 runs, seed 7: the same seed gives the same figures."
    assert lines[1].split() == ["Period", "Cur", "P10", "P50", "P90", "Expected", "P10",
                                "─●─", "P90"]  # the bar column
    rows = lines[2:8]
    # the figures in whole units; then the bar (P10 to P90, P50 a dot)
    assert [r.split()[:-1] for r in rows] == [
        ["2026-05*", "EUR", "0", "8,000", "20,000", "8,769"],
        ["USD", "7,000", "22,000", "32,000", "18,449"],
        ["2026-06", "EUR", "0", "8,000", "18,000", "8,325"],
        ["USD", "0", "25,000", "45,000", "23,451"],
        ["2026-07", "EUR", "0", "0", "14,000", "4,500"],
        ["USD", "10,000", "40,000", "77,000", "45,336"],
    ]
    assert all(r.count("●") == 1 for r in rows)
    assert ("* 2026-05 is under way: its figures include what was won in it so far (7,000 "
            "USD).") in lines
    with_target = hist(*common, "--target", "30000 USD").stdout
    assert "Chance" in with_target.splitlines()[1]
    assert ("Chance: the share of runs in which the period's won value reaches the target "
            "30,000 USD.") in with_target.splitlines()
    csv_target = hist(*common, "--target", "USD 30000", "--csv").stdout.splitlines()
    assert [r.split(",")[4:] for r in csv_target[1:]][:2] == [
        ["EUR", "0.00", "8000.00", "20000.00", "8768.63", "0.00", "0.00", "", ""],
        ["USD", "7000.00", "22000.00", "32000.00", "18448.98", "0.00", "7000.00", "30000.00",
         csv_target[2].split(",")[-1]],
    ]


# ---------------------------------------------------------------- forecast --backtest


def _scored(currency: str, weighted: str, p10: str, p50: str, p90: str, expected: str,
            won: str, inside: bool, scored: bool = True) -> dict:
    return {"currency": currency, "weighted": weighted, "p10": p10, "p50": p50, "p90": p90,
            "expected": expected, "won": won, "inside": inside, "scored": scored}


def _past(label: str, start: str, end: str, then: str, *figures: dict) -> dict:
    return {"period": label, "from": start, "to": end, "forecast_as_of": then,
            "figures": list(figures)}


def test_backtest_json_exact(hist: Cli) -> None:
    out = hist.json("forecast", "--backtest", "--runs", "500", "--from", "2025-11-01",
                    "--to", "2026-02-28")
    assert out == {
        "as_of": NOW, "by": "month", "runs": 500, "seed": 1, "owner": None, "pipeline": None,
        "periods": [
            # W6 and L8 due, in proposal at 60 % (8 decided there: too few to learn from);
            # W6 and Partners' Q4 won
            _past("2025-11", "2025-11-01", "2025-12-01", "2025-10-31T23:59:59Z",
                  _scored("USD", "19200.00", "0.00", "22000.00", "32000.00", "19200.00",
                          "10000.00", True)),
            _past("2025-12", "2025-12-01", "2026-01-01", "2025-11-30T23:59:59Z",
                  _scored("USD", "22200.00", "0.00", "25000.00", "37000.00", "22200.00",
                          "37000.00", True)),
            # proposal learned by then: 8 won of 11 decided; 18,000 x 8/11 = 13,090.91
            _past("2026-01", "2026-01-01", "2026-02-01", "2025-12-31T23:59:59Z",
                  _scored("USD", "10800.00", "0.00", "18000.00", "18000.00", "13090.91",
                          "0.00", True)),
            # W8 (USD) was late, and nothing timed it then: won above the range
            _past("2026-02", "2026-02-01", "2026-03-01", "2026-01-31T23:59:59Z",
                  _scored("EUR", "8400.00", "0.00", "14000.00", "14000.00", "10181.82",
                          "14000.00", True),
                  _scored("USD", "0.00", "0.00", "0.00", "0.00", "0.00", "18000.00", False)),
        ],
        "scores": [
            {"currency": "EUR", "periods": 1, "inside": 1, "coverage": 1.0,
             "mean_absolute_error": {"weighted": "5600.00", "p50": "0.00",
                                     "expected": "3818.18"}},
            {"currency": "USD", "periods": 4, "inside": 3, "coverage": 0.75,
             "mean_absolute_error": {"weighted": "13200.00", "p50": "15000.00",
                                     "expected": "13772.73"}},
        ],
    }


def _mean_error(figures: list[dict], key: str) -> str:
    errors = [abs(Decimal(f["won"]) - Decimal(f[key])) for f in figures]
    return f"{sum(errors) / len(errors):.2f}"


def test_backtest_by_hand(hist: Cli) -> None:
    """Over the 24 months before now: each period's weighted forecast is plain `forecast`'s
    for the same period, its value won the history's, the range its bounds, and the scores
    the mean errors of the scored periods; its expected value is what `--range` prints as of
    the moment before the period."""
    out = hist.json("forecast", "--backtest", "--runs", "200")
    assert [p["period"] for p in out["periods"]] == [
        _month_start(date(2026, 5, 1), back).isoformat()[:7] for back in range(24, 0, -1)]
    plain = hist.json("forecast", "--from", "2024-05-01", "--to", "2026-04-30")
    by: dict[str, list[dict]] = {}
    for past, then in zip(out["periods"], plain["periods"], strict=True):
        assert (past["period"], past["forecast_as_of"]) == (then["period"],
                                                            then["forecast_as_of"])
        figures = {f["currency"]: f for f in past["figures"]}
        weighted = then["forecast"]["weighted_value"]
        won = won_in(past["from"], past["to"])
        assert set(weighted) | set(won) <= set(figures)
        for c, f in figures.items():
            assert f["weighted"] == weighted.get(c, "0.00")
            assert f["won"] == won.get(c, "0.00")
            assert f["inside"] == (Decimal(f["p10"]) <= Decimal(f["won"]) <= Decimal(f["p90"]))
            assert Decimal(f["p10"]) <= Decimal(f["p50"]) <= Decimal(f["p90"])
            assert f["scored"] == any(Decimal(f[k]) for k in ("weighted", "p90", "won"))
            if f["scored"]:
                by.setdefault(c, []).append(f)
    assert out["scores"] == [
        {"currency": c, "periods": len(fs), "inside": sum(f["inside"] for f in fs),
         "coverage": round(sum(f["inside"] for f in fs) / len(fs), 6),
         "mean_absolute_error": {k: _mean_error(fs, k) for k in ("weighted", "p50",
                                                                 "expected")}}
        for c, fs in sorted(by.items())]
    # the periods before the first deal (2025-02-03) forecast and won nothing
    assert [p["figures"] for p in out["periods"][:9]] == [[]] * 9
    for month in ("2025-09", "2026-01", "2026-04"):
        start = date.fromisoformat(f"{month}-01")
        before = f"{(start - timedelta(days=1)).isoformat()}T23:59:59Z"
        ahead = hist.json("forecast", "--range", "--runs", "100", "--as-of", before,
                          "--from", start.isoformat(), "--to", start.isoformat())
        past = next(p for p in out["periods"] if p["period"] == month)
        assert {f["currency"]: f["expected"] for f in ahead["periods"][0]["figures"]} == {
            f["currency"]: f["expected"] for f in past["figures"]}


def test_backtest_csv_and_table(hist: Cli) -> None:
    rows = hist("forecast", "--backtest", "--csv", "--runs", "500", "--from", "2025-11-01",
                "--to", "2026-02-28").stdout.splitlines()
    assert rows == [
        "period,from,to,currency,weighted,p10,p50,p90,expected,won,inside,scored",
        "2025-11,2025-11-01,2025-12-01,USD,19200.00,0.00,22000.00,32000.00,19200.00,"
        "10000.00,1,1",
        "2025-12,2025-12-01,2026-01-01,USD,22200.00,0.00,25000.00,37000.00,22200.00,"
        "37000.00,1,1",
        "2026-01,2026-01-01,2026-02-01,USD,10800.00,0.00,18000.00,18000.00,13090.91,0.00,1,1",
        "2026-02,2026-02-01,2026-03-01,EUR,8400.00,0.00,14000.00,14000.00,10181.82,"
        "14000.00,1,1",
        "2026-02,2026-02-01,2026-03-01,USD,0.00,0.00,0.00,0.00,0.00,18000.00,0,1",
    ]
    lines = hist("forecast", "--backtest", "--runs", "500", "--from", "2025-11-01",
                 "--to", "2026-02-28").stdout.splitlines()
    assert lines[0] == "Backtest as of 2026-05-15 12:00 UTC"
    assert [line.split() for line in lines[1:7]] == [
        ["Period", "Cur", "Weighted", "P10", "P50", "P90", "Won", "In"],
        ["2025-11", "USD", "19,200", "0", "22,000", "32,000", "10,000", "yes"],
        ["2025-12", "USD", "22,200", "0", "25,000", "37,000", "37,000", "yes"],
        ["2026-01", "USD", "10,800", "0", "18,000", "18,000", "0", "yes"],
        ["2026-02", "EUR", "8,400", "0", "14,000", "14,000", "14,000", "yes"],
        ["USD", "0", "0", "0", "0", "18,000", "high"],
    ]
    text = " ".join(" ".join(lines[7:]).split())
    assert ("Each period's forecast at its start, from the events known then, against what "
            "was won in it (500 runs, seed 1).") in text
    assert ("EUR: inside P10-P90 in 1 of 1 period (100 %; honest ranges: about 80 %). Mean "
            "absolute error: weighted 5,600, P50 0, expected 3,818 EUR.") in text
    assert ("USD: inside P10-P90 in 3 of 4 periods (75 %; honest ranges: about 80 %). Mean "
            "absolute error: weighted 13,200, P50 15,000, expected 13,773 USD.") in text
    # by quarter, a quarter without a forecast or a win is not listed
    quarters = hist("forecast", "--backtest", "--quarter", "--runs", "100", "--from",
                    "2024-10-01").stdout
    assert [line.split()[0] for line in quarters.splitlines()[2:]
            if line.startswith(" 20")] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4",
                                           "2026-Q1"]
    nothing = hist("forecast", "--backtest", "--owner", "Nobody", "--runs", "100", "--from",
                   "2026-01-01")
    assert nothing.stdout == "No period in this span had anything forecast or won.\n"


# ---------------------------------------------------------------- refusals

NOT_AN_AMOUNT = "(write it like 12000 or 12000.50; it may not be negative)"


REFUSALS: list[tuple[tuple[str, ...], str]] = [
    (("forecast", "--range", "--runs", "5"), "--runs 5 must be from 100 to 1,000,000"),
    (("forecast", "--backtest", "--runs", "1000001"),
     "--runs 1000001 must be from 100 to 1,000,000"),
    (("forecast", "--range", "--seed", "-1"), "--seed -1 must be 0 or more"),
    (("forecast", "--target", "250000"),
     "--target 250000: the forecast has 2 currencies (EUR, USD) (name one, e.g. "
     "--target '250000 EUR')"),
    (("forecast", "--target", "abc"), f"--target 'abc' is not an amount {NOT_AN_AMOUNT}"),
    (("forecast", "--target", "250000 GBP"),
     "--target in GBP: no open deal and no past win is in GBP (the forecast's currencies: "
     "EUR, USD)"),
    (("forecast", "--backtest", "--range"),
     "--backtest scores the past; --range and --target forecast the future: run them one at "
     "a time"),
    (("forecast", "--backtest", "--target", "5 USD"),
     "--backtest scores the past; --range and --target forecast the future: run them one at "
     "a time"),
    (("forecast", "--range", "--in", "EUR"),
     "--in converts the weighted forecast; the range and the backtest are per currency "
     "(leave out --in)"),
    (("forecast", "--range", "--quarter", "--by", "month"), "--quarter and --by month disagree"),
    (("forecast", "--range", "--from", "2026-03-01"),
     "--from 2026-03-01: --range forecasts periods not over yet (pipectl forecast --backtest "
     "scores the past periods)"),
    (("forecast", "--backtest", "--from", "2026-06-01", "--to", "2026-07-31"),
     "--backtest scores periods that are over; none of these is (give --from an earlier "
     "date)"),
    (("forecast", "--range", "--pipeline", "Nope"),
     "no pipeline named 'Nope' (pipelines: default, Partners)"),
    (("calibrate", "--min-decided", "0"), "--min-decided 0 must be at least 1"),
    (("calibrate", "--since", "2026-06-01", "--as-of", "2026-05-01"),
     "--since 2026-06-01 is after the as-of moment 2026-05-01 00:00 UTC"),
    (("calibrate", "--json", "--csv"), "--json and --csv exclude each other"),
]


@pytest.mark.parametrize(("args", "message"),
                         [pytest.param(a, m, id=" ".join(a)) for a, m in REFUSALS])
def test_refusals_are_one_line_exit_2(hist: Cli, args: tuple[str, ...], message: str) -> None:
    result = hist(*args, code=2)
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------- calibrate --apply

# Meeting: A1-A3 won, A4-A6 lost (3 of 6: 50 %, set 40 %); proposal: A1-A3 won, A6 lost (3 of
# 4: 75 %, set 60 %). A7 is due in April (a period begun before --apply), A8 in June.
SMALL: tuple[Deal, ...] = (
    _w("A1", "2026-01-05", "meeting", "10000", "USD", "Anna", "2026-02-15",
       ("proposal", "2026-01-20"), ("won", "2026-02-10")),
    _w("A2", "2026-01-12", "meeting", "10000", "USD", "Ben", "2026-02-25",
       ("proposal", "2026-01-26"), ("won", "2026-02-20")),
    _w("A3", "2026-01-19", "meeting", "10000", "USD", "Anna", "2026-03-05",
       ("proposal", "2026-02-02"), ("won", "2026-03-02")),
    Deal("A4", "2026-01-26", "meeting", "10000", "USD", "Ben", moves=(("lost", "2026-02-16"),)),
    Deal("A5", "2026-02-02", "meeting", "10000", "USD", "Anna", moves=(("lost", "2026-02-23"),)),
    Deal("A6", "2026-02-09", "meeting", "10000", "USD", "Ben",
         moves=(("proposal", "2026-02-23"), ("lost", "2026-03-16"))),
    Deal("A7", "2026-03-09", "proposal", "20000", "USD", "Anna", "2026-04-20"),
    Deal("A8", "2026-04-06", "proposal", "30000", "USD", "Ben", "2026-06-15"),
)
APPLIED = [{"pipeline": "default", "version": 2,
            "changes": [{"stage": "meeting", "from": 40, "to": 50},
                        {"stage": "proposal", "from": 60, "to": 75}]},
           {"pipeline": "Partners", "version": None, "changes": []}]


@pytest.fixture
def small(db_path: engines.Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    run = Run(db_path)
    build(run, tmp_path, monkeypatch, SMALL)
    return run


def _probabilities(run: Run) -> dict[str, int]:
    return {s["key"]: s["probability"] for s in run.json("pipeline", "show")["stages"]
            if s["kind"] == "open"}


def _weighted(run: Run, *more: str) -> dict[str, dict[str, str]]:
    out = run.json("forecast", "--from", "2026-04-01", "--to", "2026-06-30", *more)
    return {p["period"]: p["forecast"]["weighted_value"] for p in out["periods"]}


def _configured(run: Run, *more: str) -> tuple[int, dict[str, int]]:
    fit = run.json("calibrate", "--min-decided", "3", "--pipeline", "default", *more)
    return fit["pipelines"][0]["version"], {s["stage"]: s["configured"]
                                            for s in fit["pipelines"][0]["stages"]}


def test_apply_writes_a_new_version_and_the_past_keeps_the_old(
        small: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    old = {"prospecting": 10, "qualification": 20, "meeting": 40, "proposal": 60,
           "negotiation": 80}
    assert _probabilities(small) == old
    assert _weighted(small) == {"2026-04": {"USD": "12000.00"}, "2026-05": {},
                                "2026-06": {"USD": "18000.00"}}
    out = small.json("calibrate", "--apply", "--yes", "--min-decided", "3")
    assert out["applied"] == APPLIED
    meeting = out["pipelines"][0]["stages"][2]
    assert (meeting["stage"], meeting["learned"], meeting["suggested"]) == ("meeting", 0.5, 50)
    shown = small.json("pipeline", "show")
    assert (shown["version"], shown["versions"]) == (2, [
        {"version": 1, "since": START}, {"version": 2, "since": NOW}])
    new = {**old, "meeting": 50, "proposal": 75}  # too few decided elsewhere: unchanged
    assert _probabilities(small) == new
    # history stays true: a moment before the change reads the old definition
    assert _configured(small, "--as-of", "2026-05-15T11:59:59Z") == (1, old)
    assert _configured(small) == (2, new)
    # April was forecast at its start with 60 %; June, not begun, with the 75 % in force now
    assert _weighted(small) == {"2026-04": {"USD": "12000.00"}, "2026-05": {},
                                "2026-06": {"USD": "22500.00"}}
    assert _weighted(small, "--as-of", "2026-05-15T11:59:59Z")["2026-06"] == {
        "USD": "18000.00"}
    # nothing left to apply
    again = small("calibrate", "--apply", "--yes", "--min-decided", "3").stdout
    assert again.endswith("Nothing to apply: every stage with enough decided deals already "
                          "has its learned probability.\n")
    assert small.json("calibrate", "--apply", "--yes", "--min-decided", "3")["applied"] == []
    assert small.json("pipeline", "show")["version"] == 2
    # later: A7 and A8 lost at proposal (3 of 6), and the table says what the apply set
    monkeypatch.setenv("PIPECTL_NOW", "2026-05-20T12:00:00Z")
    small("lose", "7", "--reason", "budget", "--at", "2026-05-18")
    small("lose", "8", "--reason", "budget", "--at", "2026-05-18")
    said = small("calibrate", "--apply", "--yes", "--min-decided", "3").stdout
    assert said.splitlines()[-1] == ("Pipeline default: version 3 sets proposal 75 % -> 50 % "
                                     "(earlier moments keep the version in force then)")
    assert _probabilities(small) == {**new, "proposal": 50}
    assert _configured(small, "--as-of", "2026-05-18") == (2, new)


def test_apply_refusals_change_nothing(small: Run) -> None:
    for args, message in [
        (("--yes",), "--yes goes with --apply"),
        (("--apply", "--csv"), "--apply prints what it changed as a table or --json, not --csv"),
        (("--apply", "--as-of", "2026-05-01"),
         "--apply writes what is learned now; it does not take --as-of"),
        (("--apply", "--json"), "--apply needs confirmation and there is no terminal (add --yes)"),
    ]:
        result = small("calibrate", "--min-decided", "3", *args, code=2)
        assert result.stderr == f"error: {message}\n"
        assert isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.stdout
    # CliRunner's stdin is no terminal: without --yes nothing is asked and nothing written
    shown = small("calibrate", "--min-decided", "3", "--apply", code=2)
    assert shown.stderr == ("error: --apply needs confirmation and there is no terminal "
                            "(add --yes)\n")
    assert small.json("pipeline", "show")["version"] == 1
    assert _probabilities(small)["meeting"] == 40


# ---------------------------------------------------------------- seeds


def test_same_seed_same_bytes_other_seed_other_draws(hist: Cli) -> None:
    args = ("forecast", "--target", "30000 USD", "--runs", "1000")
    for fmt in ((), ("--json",), ("--csv",)):
        assert hist(*args, "--seed", "7", *fmt).stdout == hist(*args, "--seed", "7", *fmt).stdout
    backtest = ("forecast", "--backtest", "--runs", "300", "--json", "--from", "2025-09-01")
    assert hist(*backtest, "--seed", "7").stdout == hist(*backtest, "--seed", "7").stdout
    # --seed 1 is the default
    assert hist(*args, "--json").stdout == hist(*args, "--seed", "1", "--json").stdout

    def draws(out: dict) -> list[tuple[str, ...]]:
        return [(p["period"], f["currency"], f["p10"], f["p50"], f["p90"],
                 str(f.get("chance_of_target"))) for p in out["periods"] for f in p["figures"]]

    def exact(out: dict) -> list[tuple[str, ...]]:
        return [(p["period"], f["currency"], f["expected"], f["won_so_far"])
                for p in out["periods"] for f in p["figures"]]

    seven, eight = hist.json(*args, "--seed", "7"), hist.json(*args, "--seed", "8")
    assert (seven["seed"], eight["seed"]) == (7, 8)
    assert draws(seven) != draws(eight)
    assert [c[-1] for c in draws(seven) if c[1] == "USD"] != [
        c[-1] for c in draws(eight) if c[1] == "USD"]  # the chances of the target
    assert exact(seven) == exact(eight)  # computed, not drawn
    b7, b8 = hist.json(*backtest, "--seed", "7"), hist.json(*backtest, "--seed", "8")
    assert [p["figures"] for p in b7["periods"]] != [p["figures"] for p in b8["periods"]]
    assert hist.json("forecast", "--range", "--runs", "100", "--seed", "0")["seed"] == 0


# ---------------------------------------------------------------- --owner and --pipeline


def _figures(out: dict, key: str) -> dict[tuple[str, str], Decimal]:
    return {(p["period"], f["currency"]): Decimal(f[key])
            for p in out["periods"] for f in p["figures"]}


def test_range_owner_and_pipeline_filters(hist: Cli) -> None:
    every = hist.json("forecast", "--range", "--runs", "100")
    anna = hist.json("forecast", "--range", "--runs", "100", "--owner", "Anna")
    ben = hist.json("forecast", "--range", "--runs", "100", "--owner", "Ben")
    assert (anna["owner"], ben["owner"]) == ("Anna", "Ben")
    assert anna["basis"]["open_deals"] == len(open_at(NOW[:10], "Anna")) == 6
    assert ben["basis"]["open_deals"] == len(open_at(NOW[:10], "Ben")) == 4
    assert ben["basis"]["untimed_value"] == {"USD": "5000.00"}  # O6 is Ben's
    assert anna["basis"]["untimed_value"] == {}
    # W13 (won in May so far) is Anna's
    assert _figures(anna, "won_so_far")[("2026-05", "USD")] == Decimal("7000.00")
    assert _figures(ben, "won_so_far").get(("2026-05", "USD"), 0) == 0
    # each deal is one owner's: the two owners' expected values add up to the team's (each
    # rounded to the cent)
    a, b = _figures(anna, "expected"), _figures(ben, "expected")
    for key, value in _figures(every, "expected").items():
        assert abs(a.get(key, 0) + b.get(key, 0) - value) <= Decimal("0.02"), key
    # Partners has one open deal of each owner: the other's does not count
    mine = hist.json("forecast", "--range", "--runs", "1000", "--pipeline", "Partners",
                     "--owner", "Anna")
    theirs = hist.json("forecast", "--range", "--runs", "1000", "--pipeline", "Partners",
                       "--owner", "Ben")
    assert (mine["pipeline"], mine["owner"], mine["basis"]["open_deals"]) == (
        "Partners", "Anna", 1)
    assert _figures(mine, "expected") == {("2026-05", "EUR"): 0, ("2026-06", "EUR"): 1800,
                                          ("2026-07", "EUR"): 0}
    assert _figures(theirs, "expected") == {("2026-05", "USD"): 9000, ("2026-06", "USD"): 0,
                                            ("2026-07", "USD"): 1000}  # Q4 was Ben's
    assert _figures(theirs, "p90")[("2026-05", "USD")] == 15000


@pytest.mark.parametrize(("owner", "pipeline"), [("Anna", None), ("Ben", None),
                                                 (None, "Partners"), ("Ben", "default")])
def test_backtest_owner_and_pipeline_filters(hist: Cli, owner: str | None,
                                             pipeline: str | None) -> None:
    """Each period's weighted forecast and value won count only the owner's (and the
    pipeline's) deals: plain `forecast` with the same filter, and the history's wins."""
    more = [*(["--owner", owner] if owner else []),
            *(["--pipeline", pipeline] if pipeline else [])]
    out = hist.json("forecast", "--backtest", "--runs", "100", "--from", "2025-01-01", *more)
    plain = hist.json("forecast", "--from", "2025-01-01", "--to", "2026-04-30", *more)
    assert (out["owner"], out["pipeline"]) == (owner, pipeline)
    scored = 0
    for past, then in zip(out["periods"], plain["periods"], strict=True):
        assert past["period"] == then["period"]
        won = won_in(past["from"], past["to"], owner, pipeline)
        weighted = then["forecast"]["weighted_value"]
        figures = {f["currency"]: f for f in past["figures"]}
        assert set(won) | set(weighted) <= set(figures)
        for c, f in figures.items():
            assert (f["won"], f["weighted"]) == (won.get(c, "0.00"), weighted.get(c, "0.00"))
            scored += f["scored"]
    assert scored >= 3
    # and the filter matters: some period's wins differ from the whole team's
    assert any(won_in(p["from"], p["to"], owner, pipeline) != won_in(p["from"], p["to"])
               for p in out["periods"])


# ---------------------------------------------------------------- found wrong once, fixed


def _expected(out: dict, period: str) -> dict[str, str]:
    return {f["currency"]: f["expected"] for p in out["periods"] if p["period"] == period
            for f in p["figures"]}


def test_range_from_a_later_period_keeps_each_period_its_own(hist: Cli) -> None:
    whole = hist.json("forecast", "--range", "--runs", "1000")
    later = hist.json("forecast", "--range", "--runs", "1000", "--from", "2026-06-01")
    assert _expected(later, "2026-07") == _expected(whole, "2026-07")  # holds today
    assert _expected(later, "2026-06") == _expected(whole, "2026-06")


def test_range_table_counts_one_deal_in_the_singular(hist: Cli) -> None:
    lines = hist("forecast", "--range", "--runs", "100").stdout.splitlines()
    assert "Left out: 1 deal without a value." in lines
