"""The hand-written SQL baselines of benchmarks/sql/ (issue 13) compute pipectl's figures.

A baseline is only a yardstick if it is right: each one is run on a generated database (the
seeded generator of benchmarks/generate.py at a small size: skipped stages, moves back, losses
at every open stage, reopened deals, three currencies, deals without a value, value, close-date
and probability changes, notes with next actions) and its figures must equal pipectl's own
``--json`` output, as of two moments (and for ``report`` over a window too). A faster pipectl
that changes a figure then fails here or in the reports' own tests, never silently.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections import defaultdict
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import engines
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
MOMENTS = ("2026-12-01T09:00:00Z", "2026-03-15T12:30:00Z")
DEALS = 1200


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


baselines = _load("baselines", ROOT / "benchmarks" / "sql" / "baselines.py")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generate = _load("generate", ROOT / "benchmarks" / "generate.py")
    path = tmp_path_factory.mktemp("baselines") / "gen.db"
    generate.write(path, None, DEALS, 5, "2026-11-27")
    return path


_SERVED: dict[str, str] = {}


@pytest.fixture
def served(engine: str, generated: Path) -> engines.Target:
    """Where the commands whose figures the baselines must give run: the generated file, or a
    server database it is copied to (pipectl db copy), once, dropped at the session's end."""
    if engine == "sqlite":
        return generated
    if "url" not in _SERVED:
        url = engines.url_of(engines.new_database())
        Cli(generated)("db", "copy", "--to", url)
        _SERVED["url"] = url
    return _SERVED["url"]


@pytest.fixture
def db(generated: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{generated}?mode=ro", uri=True)
    yield conn
    conn.close()


def minor(amounts: dict[str, str]) -> dict[str, int]:
    """pipectl's JSON money ({"EUR": "12.50"}) in minor units."""
    out = {}
    for cur, text in amounts.items():
        places = len(text.split(".")[1]) if "." in text else 0
        out[cur] = int(Decimal(text) * 10**places)
    return out


def money(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of one currency each (deals, without_value, value[, weighted]) as pipectl's
    Money: count, without_value, value and weighted value per currency with a value."""
    out: dict[str, Any] = {"count": 0, "without_value": 0, "value": {}, "weighted_value": {}}
    for r in rows:
        out["count"] += r["deals"]
        out["without_value"] += r.get("without_value", 0)
        if r["value"] is not None:
            out["value"][r["currency"]] = r["value"]
            if r.get("weighted") is not None:
                out["weighted_value"][r["currency"]] = r["weighted"]
    return out


def rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def days(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def test_the_generated_history_has_the_cases_the_baselines_must_get_right(
        db: sqlite3.Connection) -> None:
    count = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    for kind in ("reopened", "lost", "value", "close_date", "probability", "note"):
        assert count.get(kind, 0) > 0, kind
    skips = db.execute("SELECT count(*) FROM events WHERE kind = 'stage' AND ("
                       "(from_stage = 'prospecting' AND to_stage = 'meeting') OR"
                       " (from_stage = 'proposal' AND to_stage = 'won'))").fetchone()[0]
    backs = db.execute("SELECT count(*) FROM events WHERE kind = 'stage' AND ("
                       "(from_stage = 'negotiation' AND to_stage = 'proposal') OR"
                       " (from_stage = 'proposal' AND to_stage = 'meeting'))").fetchone()[0]
    currencies = db.execute("SELECT count(DISTINCT currency) FROM deals").fetchone()[0]
    assert skips and backs and currencies == 3


@pytest.mark.parametrize("as_of", MOMENTS)
@pytest.mark.parametrize("window", [None, ("2026-01-01", "2026-04-01")])
def test_report(served: engines.Target, db: sqlite3.Connection, as_of: str,
                window: tuple[str, str] | None) -> None:
    args = ["report", "--as-of", as_of]
    bounds = baselines.ALL_TIME
    if window:
        args += ["--from", window[0], "--to", window[1]]
        bounds = tuple(f"{d}T00:00:00Z" for d in window)
    want = Cli(served).json(*args)
    rows = baselines.run(db, "report", baselines.params("report", as_of, bounds))
    c = next(r for r in rows if r["figure"] == "counts")
    got_deals = {"open": c["open"], "won": c["won"], "lost": c["lost"], "total": c["total"]}
    assert got_deals == want["deals"]
    assert {"created": c["created"], "qualified": c["qualified"], "won": c["won_in_window"],
            "lost": c["lost_in_window"]} == want["flow"]
    assert want["close_rate"] == {"rate": rate(c["qualified_won"], c["qualified"]),
                                  "won": c["qualified_won"], "qualified": c["qualified"]}
    decided = c["won_in_window"] + c["lost_in_window"]
    assert want["win_rate"] == {"rate": rate(c["won_in_window"], decided),
                                "won": c["won_in_window"], "lost": c["lost_in_window"]}
    reached = [c[f"reached_{k}"] for k in range(1, 8)]
    assert [(s["reached_from"], s["reached_to"], s["rate"]) for s in want["conversion"]] == [
        (a, b, rate(b, a)) for a, b in pairwise(reached)]

    per_stage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["figure"] == "pipeline":
            per_stage[r["stage"]].append(r)
    pipe = want["pipeline"]
    total = money(per_stage.pop("total", []))
    assert (pipe["count"], pipe["without_value"], minor(pipe["value"]),
            minor(pipe["weighted_value"])) == (total["count"], total["without_value"],
                                               total["value"], total["weighted_value"])
    for stage in pipe["stages"]:
        got = money(per_stage.get(stage["stage"], []))
        assert (stage["count"], stage["without_value"], minor(stage["value"]),
                minor(stage["weighted_value"])) == (got["count"], got["without_value"],
                                                    got["value"], got["weighted_value"]), stage
    cycle = next(r for r in rows if r["figure"] == "cycle")
    assert want["sales_cycle"] == {"count": cycle["deals"], "median_days": days(
        cycle["median_days"]), "mean_days": days(cycle["mean_days"])}
    assert want["deals"]["total"] > 0 and cycle["deals"] > 0


@pytest.mark.parametrize("as_of", MOMENTS)
def test_forecast(served: engines.Target, db: sqlite3.Connection, as_of: str) -> None:
    want = Cli(served).json("forecast", "--as-of", as_of)
    rows = baselines.run(db, "forecast", baselines.params("forecast", as_of))
    by: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["figure"], r["period"])].append(r)
    assert len(want["periods"]) == 6
    for p in want["periods"]:
        fc = money(by.pop(("forecast", p["period"]), []))
        assert (p["forecast"]["count"], p["forecast"]["without_value"],
                minor(p["forecast"]["value"]), minor(p["forecast"]["weighted_value"])) == (
            fc["count"], fc["without_value"], fc["value"], fc["weighted_value"]), p["period"]
        if p["actual"] is None:
            assert ("actual", p["period"]) not in by
            continue
        for key, figure in (("actual", "actual"), ("from_forecast", "from_forecast")):
            want_money = p["actual"] if key == "actual" else p["actual"]["from_forecast"]
            got = money(by.pop((figure, p["period"]), []))
            assert (want_money["count"], want_money["without_value"],
                    minor(want_money["value"])) == (got["count"], got["without_value"],
                                                    got["value"]), (key, p["period"])
    undated = money(by.pop(("no_close_date", None), []))
    n = want["no_close_date"]
    assert (n["count"], n["without_value"], minor(n["value"]), minor(n["weighted_value"])) == (
        undated["count"], undated["without_value"], undated["value"], undated["weighted_value"])
    assert not by  # no figure for a period pipectl does not show
    assert sum(p["forecast"]["count"] for p in want["periods"]) > 0


def _deal(r: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: r[k] for k in keys}


@pytest.mark.parametrize("as_of", MOMENTS)
def test_stale(served: engines.Target, db: sqlite3.Connection, as_of: str) -> None:
    want = Cli(served).json("stale", "--as-of", as_of, "--limit", "0")
    rows = baselines.run(db, "stale", baselines.params("stale", as_of, limit=-1))
    assert want["total"] == len(rows) > 0 and rows[0]["total"] == len(rows)
    keys = ("id", "name", "owner", "stage", "currency", "last_event_at", "idle_days",
            "threshold_days")
    assert [_deal(d, keys) for d in want["deals"]] == [_deal(r, keys) for r in rows]
    assert [minor({d["currency"]: d["value"]}) if d["value"] else None
            for d in want["deals"]] == [
        {r["currency"]: r["value_minor"]} if r["value_minor"] is not None else None
        for r in rows]


@pytest.mark.parametrize("as_of", MOMENTS)
def test_next(served: engines.Target, db: sqlite3.Connection, as_of: str) -> None:
    want = Cli(served).json("next", "--as-of", as_of, "--limit", "0")
    rows = baselines.run(db, "next", baselines.params("next", as_of, limit=-1))
    assert want["total"] == len(rows) > 0 and rows[0]["total"] == len(rows)
    keys = ("id", "stage", "currency", "close_date", "action", "source", "due", "why",
            "idle_days")
    assert [_deal(d, keys) for d in want["deals"]] == [_deal(r, keys) for r in rows]
    assert [minor({d["currency"]: d["value"]}) if d["value"] else None
            for d in want["deals"]] == [
        {r["currency"]: r["value_minor"]} if r["value_minor"] is not None else None
        for r in rows]
    assert {d["why"] for d in want["deals"]} >= {"overdue", "stale", "open"}


def test_board(served: engines.Target, db: sqlite3.Connection) -> None:
    want = Cli(served).json("board")
    rows = baselines.run(db, "board", baselines.params("board"))
    assert [s["stage"] for s in want] == ["prospecting", "qualification", "meeting", "proposal",
                                          "negotiation"]
    for stage in want:
        mine = [r for r in rows if r["stage"] == stage["stage"]]
        got = money([r for r in mine if r["figure"] == "stage"])
        assert (stage["count"], minor(stage["value"]), minor(stage["weighted_value"])) == (
            got["count"], got["value"], got["weighted_value"]), stage["stage"]
        top = sorted((r["place"], r["id"]) for r in mine if r["figure"] == "top")
        assert stage["deals"] == [i for _, i in top]
