"""Promise: the edges of the calendar and of money are errors a user understands, or work.

Issue 11, items 8 and 11.

- Dates and moments: every one a user or a file gives lies between ``values.FIRST_DAY`` and
  ``values.LAST_DAY`` (1900-01-01 to 2999-12-31, UTC). One outside (year 1 or 9999, or pushed
  out by its offset) is one line, "error: ... is out of range: dates and times must lie between
  1900-01-01 and 2999-12-31 (UTC)", exit 2, nothing changed: through --at, --as-of,
  PIPECTL_NOW, --close, --due, --in, --from, --to (they were OverflowError and "year 10000 is
  out of range" internal errors). The days just inside work everywhere and survive an export
  and an import.
- Money: a value is below ``values.MAX_MINOR`` (10**15 minor units); one unit more is refused
  on add, edit and import, saying the largest. Every money sum is exact however many deals
  hold the largest value (SQLite's sum() stopped with "integer overflow" at 100 deals weighted
  at 100%), in currencies of 0, 2 and 3 decimals, and the tables still fit 80 columns.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipectl.errors import UsageError
from pipectl.values import DATE_RANGE, FIRST_DAY, LAST_DAY, MAX_MINOR, format_money
from tests.conftest import Cli
from tests.reliability.helpers import dump

END = "2999-12-31T23:59:59Z"  # the last moment accepted


def _one_error(result, *wanted: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.output
    for text in wanted:
        assert text in lines[0], lines[0]


# ---------------------------------------------------------------- dates out of range


@pytest.fixture
def one_deal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("PIPECTL_NOW", "2026-06-01T12:00:00Z")
    cli("add", "Acme", "--value", "100", "--at", "2026-01-05")
    return cli


OUTSIDE = [
    # the reproducers
    ["add", "x", "--at", "0001-01-01T00:00:00+01:00"],
    ["add", "x", "--at", "9999-12-31T23:59:59-14:00"],
    ["report", "--as-of", "0001-01-01T00:00:00+01:00"],
    ["report", "--as-of", "9999-12-31T23:59:59-14:00"],
    ["report", "--year", "--in", "9999-06-01"],
    ["report", "--week", "--in", "9999-12-31"],
    ["forecast", "--to", "9999-12-31"],
    # the same edges through every other date or moment a command takes
    ["add", "x", "--at", "1900-01-01T00:30:00+01:00"],  # 1899-12-31T23:30Z
    ["add", "x", "--at", "2999-12-31T12:00:00-14:00"],  # 3000-01-01T02:00Z
    ["add", "x", "--at", "1899-12-31"],
    ["add", "x", "--close", "9999-12-31"],
    ["add", "x", "--close", "0001-01-01"],
    ["edit", "1", "--close", "3000-01-01"],
    ["note", "1", "hi", "--next", "call", "--due", "9999-12-31"],
    ["note", "1", "hi", "--at", "0001-01-01T00:00:00+01:00"],
    ["advance", "1", "--at", "0001-01-01T00:00:00+00:30"],
    ["lose", "1", "--reason", "x", "--at", "9999-12-31T23:59:59-14:00"],
    ["forecast", "--as-of", "9999-12-31T23:59:59-14:00"],
    ["forecast", "--from", "0001-01-01"],
    ["stale", "--as-of", "0001-01-01T00:00:00+01:00"],
    ["next", "--as-of", "9999-12-31T23:59:59-14:00"],
    ["report", "--from", "0001-01-01"],
    ["report", "--to", "9999-12-31"],
    ["report", "--month", "--in", "1899-12-31"],
    ["report", "--quarter", "--as-of", "3000-01-01"],
]


@pytest.mark.parametrize("args", OUTSIDE, ids=" ".join)
def test_a_date_outside_the_range_is_one_clear_error(one_deal: Cli, args: list[str]):
    before = dump(one_deal.db)
    result = one_deal(*args, code=2)
    _one_error(result, "is out of range", DATE_RANGE)
    assert dump(one_deal.db) == before


@pytest.mark.parametrize("now", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00",
                                 "1899-12-31T23:59:59Z", "3000-01-01"])
@pytest.mark.parametrize("args", [["add", "x"], ["report"], ["forecast"], ["next"],
                                  ["advance", "1"]], ids=" ".join)
def test_pipectl_now_outside_the_range_is_one_clear_error(one_deal: Cli, monkeypatch, now, args):
    before = dump(one_deal.db)
    monkeypatch.setenv("PIPECTL_NOW", now)
    result = one_deal(*args, code=2)
    _one_error(result, "PIPECTL_NOW", "is out of range", DATE_RANGE)
    assert dump(one_deal.db) == before


def test_an_offset_that_pushes_a_moment_out_says_where_it_lands(one_deal: Cli):
    result = one_deal("add", "x", "--at", "1900-01-01T00:30:00+01:00", code=2)
    _one_error(result, "(1899-12-31T23:30:00Z in UTC)")


def test_a_json_file_with_moments_outside_the_range_imports_nothing(one_deal: Cli, tmp_path):
    out = tmp_path / "e.json"
    one_deal("export", "--format", "json", "--events", "-o", str(out))
    data = json.loads(out.read_text())
    deal = data["deals"][0]
    deal["ref"] = "NEW-1"
    deal["created_at"] = "0001-01-01T00:00:00Z"
    deal["events"][0]["at"] = "0001-01-01T00:00:00Z"
    out.write_text(json.dumps(data))
    before = dump(one_deal.db)
    result = one_deal("import", str(out), code=1)
    assert "0001-01-01T00:00:00Z" in result.stderr and "internal error" not in result.stderr
    assert "is out of range" in result.stderr
    assert dump(one_deal.db) == before


@pytest.mark.parametrize(("field", "value"), [("close_date", "9999-12-31"),
                                               ("next_due", "1899-12-31")])
def test_a_json_file_with_days_outside_the_range_imports_nothing(one_deal: Cli, tmp_path,
                                                                 field, value):
    """A close date or due day out of range in pipectl's JSON was stored, and the CSV export
    of that deal then failed to import; it is refused, naming the range."""
    out = tmp_path / "e.json"
    one_deal("export", "--format", "json", "--events", "-o", str(out))
    data = json.loads(out.read_text())
    deal = data["deals"][0]
    deal["ref"] = "NEW-2"
    deal[field] = value
    out.write_text(json.dumps(data))
    before = dump(one_deal.db)
    result = one_deal("import", str(out), code=1)
    assert value in result.stderr and "is out of range" in result.stderr, result.stderr
    assert dump(one_deal.db) == before


@pytest.mark.parametrize("cell", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00",
                                  "1900-01-01T00:30:00+01:00", "3000-01-01", "12/31/9999"])
def test_a_csv_date_cell_outside_the_range_is_a_bad_row(cli: Cli, tmp_path: Path, cell: str):
    f = tmp_path / "c.csv"
    f.write_text(f"name,close date,created_at\na,{cell},\nb,2026-01-01,{cell}\n")
    result = cli("import", str(f), code=1)
    assert not isinstance(result.exception, ArithmeticError), repr(result.exception)
    assert result.stderr.count("is out of range") == 2, result.stderr
    assert not Path(cli.db).exists() or dump(cli.db)["deals"] == []


@pytest.mark.parametrize("when", [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),
    datetime(1900, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    datetime(3000, 1, 1)])
def test_a_script_giving_a_moment_outside_the_range_gets_a_usage_error(conn, when):
    """The services take a datetime too (scripts): the same calendar as --at."""
    from pipectl.models import NewDeal
    from pipectl.services import deals

    with pytest.raises(UsageError, match="is out of range"):
        deals.add(conn, NewDeal(name="x"), at=when)
    assert conn.execute("SELECT count(*) FROM deals").fetchone()[0] == 0


# ---------------------------------------------------------------- the days just inside


def test_periods_and_windows_refuse_days_outside_the_range_when_called_directly():
    from pipectl.reports import periods

    for day in (date(9999, 6, 1), date(1, 1, 1), date(3000, 1, 1), date(1899, 12, 31)):
        for unit in periods.UNITS:
            with pytest.raises(UsageError, match="out of range"):
                periods.period(unit, day)
        with pytest.raises(UsageError, match="out of range"):
            periods.periods("month", FIRST_DAY, day) if day > LAST_DAY else \
                periods.periods("month", day, LAST_DAY)
        with pytest.raises(UsageError, match="out of range"):
            periods.window(day, None)
    # the last periods end the day after LAST_DAY: still a date
    for unit in periods.UNITS:
        assert periods.period(unit, LAST_DAY).end.year == 3000
        assert periods.period(unit, FIRST_DAY).start == FIRST_DAY


@pytest.mark.parametrize("unit", ["month", "quarter"])
def test_the_forecasts_default_periods_stop_at_the_ends_of_the_range(unit):
    from pipectl.services.reports import forecast_periods

    first = forecast_periods(unit, "1900-01-01T00:00:00Z")
    assert first[0].start == FIRST_DAY and len(first) == 3  # not the 3 periods before 1900
    last = forecast_periods(unit, END)
    assert last[-1].start <= LAST_DAY < last[-1].end and len(last) == 4  # 3 before, no after


def _edge_history(cli: Cli) -> None:
    cli("add", "First day", "--at", "1900-01-01", "--close", "1900-01-01", "--value", "1.50")
    cli("add", "Shifted in", "--at", "1900-01-01T01:00:00+01:00", "--value", "2")
    cli("add", "Last moment", "--at", END, "--close", "2999-12-31", "--value", "7",
        "--currency", "KWD", "--probability", "100")
    cli("add", "Last by offset", "--at", "2999-12-31T09:59:59-14:00", "--close", "2999-12-31")
    cli("advance", "1", "--prequalified", "known", "--at", "1900-01-02")
    cli("lose", "2", "--reason", "first century", "--at", "1900-01-03")
    cli("note", "3", "call", "--next", "call back", "--due", "2999-12-31", "--at", END)
    cli("edit", "4", "--close", "1900-01-01", "--at", END)
    cli("add", "Long wait", "--at", "1900-01-01", "--close", "2999-12-31", "--value", "3")


def test_the_days_just_inside_the_range_work_in_every_command(cli: Cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", END)
    _edge_history(cli)
    deals = {d["name"]: d for d in cli.json("list", "--status", "all")}
    assert deals["First day"]["created_at"] == "1900-01-01T00:00:00Z"
    assert deals["Shifted in"]["created_at"] == "1900-01-01T00:00:00Z"
    assert deals["Last moment"]["created_at"] == END
    assert deals["Last by offset"]["created_at"] == END
    for args in (
        ["report"], ["report", "--year", "--in", "2999-06-01"],
        ["report", "--week", "--in", "2999-12-31"], ["report", "--week", "--in", "1900-01-01"],
        ["report", "--quarter", "--in", "2999-12-31"], ["report", "--month"],
        ["report", "--from", "1900-01-01", "--to", "2999-12-31"],
        ["report", "--as-of", "1900-01-01"], ["report", "--year", "--as-of", "1900-01-02"],
        ["forecast"], ["forecast", "--by", "quarter"], ["forecast", "--as-of", "1900-01-01"],
        ["forecast", "--from", "2999-01-01", "--to", "2999-12-31"],
        ["forecast", "--from", "1900-01-01", "--to", "1900-12-31", "--by", "quarter"],
        ["stale"], ["next"], ["board"], ["show", "3"], ["stale", "--as-of", "1900-01-01"],
    ):
        cli(*args)
        cli(*args, "--json") if args[0] != "show" else None
    year = cli.json("report", "--year", "--in", "2999-06-01")
    assert year["window"]["to"] == "3000-01-01"
    assert year["flow"]["created"] == 2
    first = cli.json("report", "--year", "--in", "1900-06-01")
    assert first["flow"] == {"created": 3, "qualified": 1, "won": 0, "lost": 1}
    fc = cli.json("forecast", "--from", "2999-12-01", "--to", "2999-12-31")["periods"]
    assert [p["to"] for p in fc] == ["3000-01-01"]
    assert fc[0]["forecast"]["value"] == {"USD": "3.00"}  # open on 2999-12-01


def _rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    cols = "id, at, kind, from_stage, to_stage, value_minor, currency, close_date, reason, " \
        "text, next_action, due" if table == "events" else "*"
    return conn.execute(f"SELECT {cols} FROM {table} ORDER BY id").fetchall()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_days_just_inside_the_range_survive_export_and_import(
        cli: Cli, monkeypatch, tmp_path: Path, fmt: str):
    monkeypatch.setenv("PIPECTL_NOW", END)
    _edge_history(cli)
    out = tmp_path / f"edges.{fmt}"
    cli("export", "--format", fmt, "--status", "all", "-o", str(out),
        *(["--events"] if fmt == "json" else []))
    again = Cli(tmp_path / "again.db")
    again("import", str(out))
    before = {d["name"]: d for d in cli.json("list", "--status", "all")}
    after = {d["name"]: d for d in again.json("list", "--status", "all")}
    assert set(after) == set(before)
    for name, d in before.items():
        keep = ("created_at", "close_date", "status", "value", "currency", "closed_at")
        assert {k: after[name][k] for k in keep} == {k: d[k] for k in keep}, name
    if fmt == "json":  # the whole history comes back
        a, b = sqlite3.connect(cli.db), sqlite3.connect(again.db)
        try:
            assert _rows(a, "events") == _rows(b, "events")
        finally:
            a.close()
            b.close()


# ---------------------------------------------------------------- money at its largest

LARGEST = {"JPY": 0, "USD": 2, "KWD": 3}  # a currency of each number of decimals


def _largest(cur: str) -> str:
    return format_money(MAX_MINOR - 1, cur)


def _one_more(cur: str) -> str:
    return format_money(MAX_MINOR, cur)


def _import_largest(cli: Cli, tmp_path: Path, n: int) -> None:
    """n open, n won and n lost deals at the largest value, probability 100, per currency;
    the open and won ones expected to close in 2026-12."""
    path = tmp_path / "largest.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ref", "name", "value", "currency", "probability", "close_date", "stage",
                    "lost_reason", "created_at", "closed_at"])
        for cur in LARGEST:
            for i in range(n):
                for stage, closed in (("negotiation", ""), ("won", "2026-12-02"),
                                      ("lost", "2026-12-03")):
                    w.writerow([f"{cur}-{stage}-{i}", f"{cur} {stage} {i}", _largest(cur), cur,
                                100, "2026-12-15", stage, "no budget" if closed and
                                stage == "lost" else "", "2026-11-01", closed])
    cli("import", str(path))


@pytest.mark.parametrize("n", [100, 1000])
def test_sums_of_the_largest_values_are_exact_in_every_command(
        cli: Cli, monkeypatch, tmp_path: Path, n: int):
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-05T12:00:00Z")
    _import_largest(cli, tmp_path, n)
    total = {cur: format_money(n * (MAX_MINOR - 1), cur) for cur in LARGEST}
    assert n * (MAX_MINOR - 1) * 100 > 2**63  # what SQLite's sum() cannot hold

    board = cli.json("board")
    negotiation = next(c for c in board if c["stage"] == "negotiation")
    assert negotiation["count"] == 3 * n
    assert negotiation["value"] == total and negotiation["weighted_value"] == total

    report = cli.json("report")
    assert report["pipeline"]["value"] == total
    assert report["pipeline"]["weighted_value"] == total
    assert report["lost_reasons"]["by_reason"][0]["value"] == total
    for cur, v in report["velocity"].items():
        assert v["won_deals"] == n and v["average_won_value"] == _largest(cur)

    december = cli.json("forecast")["periods"][3]
    assert december["period"] == "2026-12"
    assert december["forecast"]["count"] == 3 * 3 * n  # every deal was open on 1 December
    assert december["forecast"]["value"] == {
        cur: format_money(3 * n * (MAX_MINOR - 1), cur) for cur in LARGEST}
    assert december["actual"]["value"] == total

    listed = cli.json("list", "--status", "all", "--limit", "0")
    by_cur: dict[str, int] = {}
    for d in listed:
        assert d["value"] == _largest(d["currency"])
        by_cur[d["currency"]] = by_cur.get(d["currency"], 0) + 1
    assert by_cur == dict.fromkeys(LARGEST, 3 * n)

    # At 80 columns the tables fit, dropping columns first; an amount is never cut nor broken
    # (issue 16): forecast's four amount columns of 26 characters each cannot stand side by
    # side in 80, so that table runs past the edge rather than break a number.
    monkeypatch.setenv("COLUMNS", "80")
    for args in (["board"], ["report"], ["forecast"], ["report", "--explain"],
                 ["list", "--status", "all", "--limit", "20"], ["next", "--limit", "5"]):
        out = cli(*args).stdout
        tables = [x for x in out.splitlines() if x and x[0] in "┏┃┡│├└"]
        assert tables, args
        if args != ["forecast"]:
            assert all(len(x) <= 80 for x in tables), (args, max(tables, key=len))
        assert not re.search(r"\d,\s*│", out), (args, out)  # no amount folded at a comma
        assert "…" not in "".join(re.findall(r"[\d,.]+…", out)), (args, out)  # nor cut


@pytest.mark.parametrize("cur", list(LARGEST))
def test_a_value_one_unit_above_the_largest_is_refused_everywhere(
        cli: Cli, tmp_path: Path, cur: str):
    cli("add", "Largest", "--value", _largest(cur), "--currency", cur)
    before = dump(cli.db)
    wanted = (f"is too large (at most {_largest(cur)} {cur})",)
    _one_error(cli("add", "x", "--value", _one_more(cur), "--currency", cur, code=2), *wanted)
    _one_error(cli("edit", "1", "--value", _one_more(cur), code=2), *wanted)
    f = tmp_path / "more.csv"
    f.write_text(f"name,value,currency\ny,{_one_more(cur)},{cur}\n")
    result = cli("import", str(f), code=1)
    assert wanted[0] in result.stderr and "internal error" not in result.stderr
    out = tmp_path / "e.json"
    cli("export", "--format", "json", "--events", "-o", str(out))
    text = out.read_text().replace(f'"{_largest(cur)}"', f'"{_one_more(cur)}"')
    out.write_text(text.replace('"ref": null', '"ref": "J-1"'))
    result = cli("import", str(out), code=1)
    assert wanted[0] in result.stderr and "internal error" not in result.stderr
    assert dump(cli.db) == before


def test_exact_sum_holds_sums_beyond_int64():
    from pipectl.store.sql import exact_sum, joined

    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (v INTEGER, p INTEGER)")
    terms = [(MAX_MINOR - 1, 100)] * 5000 + [(0, 0), (1, 1), (2**32 - 1, 50), (2**32, 99)]
    con.executemany("INSERT INTO t VALUES (?, ?)", terms)
    with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
        con.execute("SELECT sum(v * p) FROM t").fetchone()
    row = con.execute(f"SELECT {exact_sum('v')}, {exact_sum('v * p')} FROM t").fetchone()
    assert joined(*row[:2]) == sum(v for v, _ in terms)
    assert joined(*row[2:]) == sum(v * p for v, p in terms)
    assert con.execute(f"SELECT {exact_sum('v')} FROM t WHERE 0").fetchone() == (None, None)
    assert joined(None, None) is None


def test_a_word_too_wide_for_its_column_folds_after_a_thousands_comma():
    from pipectl.views.table import _wrap_spans

    lines = _wrap_spans([("9,999,999,999,999.99 USD", "")], 15)
    assert ["".join(t for t, _ in x) for x in lines] == ["9,999,999,999,", "999.99 USD"]
    lines = _wrap_spans([("2999999999999999997000", "")], 8)  # no separator: folded anyway
    assert all(len("".join(t for t, _ in x)) <= 8 for x in lines)
