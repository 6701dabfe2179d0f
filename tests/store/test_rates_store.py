"""Exchange rates in the store (schema 6, table ``rates``) and their use cases: exact text,
append-only rows, corrections and withdrawals, the round trip through pipectl's JSON export."""

from __future__ import annotations

import json

import pytest

from pipectl.domain.rates import Rate
from pipectl.errors import NotFound, UsageError
from pipectl.services import rates as svc
from pipectl.store import rates as store
from tests import engines
from tests.conftest import at
from tests.engines import refusals


def _rows(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT source, target, at, rate, recorded_at FROM rates ORDER BY id")]


def test_a_rate_is_stored_as_exact_text_and_rows_are_only_added(conn, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    done = svc.record(conn, "usd", "eur", "0.9200")
    assert (done.changed, done.previous) == (True, None)
    assert done.rate == Rate("USD", "EUR", "2026-12-01T00:00:00Z", "0.92",
                             "2026-12-01T09:00:00Z", done.rate.id)
    again = svc.record(conn, "USD", "EUR", "0.92")  # the same rate again: nothing written
    assert again.changed is False
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T10:00:00Z")
    fixed = svc.record(conn, "USD", "EUR", "0.93", "2026-12-01")
    assert (fixed.changed, fixed.previous) == (True, "0.92")
    svc.record(conn, "USD", "EUR", "0.91", at("2026-01-05"))
    assert _rows(conn) == [
        ("USD", "EUR", "2026-12-01T00:00:00Z", "0.92", "2026-12-01T09:00:00Z"),
        ("USD", "EUR", "2026-12-01T00:00:00Z", "0.93", "2026-12-01T10:00:00Z"),
        ("USD", "EUR", "2026-01-05T00:00:00Z", "0.91", "2026-12-01T10:00:00Z"),
    ]
    for sql in ("UPDATE rates SET rate = '1'", "DELETE FROM rates"):
        with pytest.raises(refusals(conn), match="append-only"):
            conn.execute(sql)
    assert [(r.rate.rate, r.state, r.until) for r in svc.listing(conn)] == [
        ("0.91", "current", "2026-12-01T00:00:00Z"), ("0.93", "current", None)]
    assert [(r.rate.rate, r.state) for r in svc.listing(conn, every=True)] == [
        ("0.91", "current"), ("0.92", "corrected"), ("0.93", "current")]


def test_a_withdrawal_is_a_row_without_a_rate(conn, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    svc.record(conn, "USD", "EUR", "0.9", "2026-01-01")
    svc.record(conn, "USD", "EUR", "0.29", "2026-06-01")
    gone = svc.remove(conn, "USD", "EUR", "2026-06-01")
    assert (gone.previous, gone.rate.rate) == ("0.29", None)
    assert svc.book(conn).find("USD", "EUR", "2026-07-01T00:00:00Z").rate == "0.9"
    assert [(r.rate.rate, r.state) for r in svc.listing(conn, every=True)] == [
        ("0.9", "current"), ("0.29", "withdrawn"), (None, "withdrawal")]
    with pytest.raises(NotFound, match="no USD→EUR rate is recorded at 2026-06-01"):
        svc.remove(conn, "USD", "EUR", "2026-06-01")
    with pytest.raises(NotFound, match="2026-02-01"):
        svc.remove(conn, "USD", "EUR", "2026-02-01")
    # recorded again after the withdrawal: in force again
    svc.record(conn, "USD", "EUR", "0.92", "2026-06-01")
    assert svc.book(conn).find("USD", "EUR", "2026-07-01T00:00:00Z").rate == "0.92"


@pytest.mark.parametrize(("args", "message"), [
    (("USD", "USD", "1"), "not USD into itself"), (("US", "EUR", "1"), "three-letter"),
    (("USD", "EUR", "0,92"), "never a comma"), (("USD", "EUR", "0"), "zero"),
])
def test_bad_rates_are_refused_and_nothing_is_written(conn, args, message) -> None:
    with pytest.raises(UsageError, match=message):
        svc.record(conn, *args)
    assert _rows(conn) == []


def test_a_rate_may_not_start_in_the_future(conn, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    with pytest.raises(UsageError, match="in the future"):
        svc.record(conn, "USD", "EUR", "1", "2026-12-02")
    assert _rows(conn) == []


@pytest.mark.parametrize("rate", ["0.920", "0", "05", "1.", "abc", "-1", "1e3", "0.0"])
def test_the_table_refuses_a_rate_not_in_its_one_exact_form(conn, rate) -> None:
    with pytest.raises(refusals(conn)):
        conn.execute("INSERT INTO rates (source, target, at, rate, recorded_at) VALUES "
                     "('USD', 'EUR', '2026-01-01T00:00:00Z', ?, '2026-01-01T00:00:00Z')",
                     (rate,))


def test_add_missing_adds_each_row_once(conn) -> None:
    rows = [Rate("USD", "EUR", "2026-01-01T00:00:00Z", "0.92", "2026-01-02T00:00:00Z"),
            Rate("USD", "EUR", "2026-01-01T00:00:00Z", "0.93", "2026-01-02T00:00:00Z"),
            Rate("USD", "EUR", "2026-01-01T00:00:00Z", "0.92", "2026-01-02T00:00:00Z")]
    assert store.add_missing(conn, rows) == 3
    assert store.add_missing(conn, rows) == 0
    assert [r.rate for r in store.all_rates(conn)] == ["0.92", "0.93", "0.92"]


def test_rates_go_through_the_json_export_and_come_back(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    cli("add", "Acme", "--value", "100", "--currency", "USD")
    cli("rate", "set", "USD", "EUR", "0.92", "--at", "2026-11-01")
    cli("rate", "set", "USD", "EUR", "0.93", "--at", "2026-11-01")
    cli("rate", "set", "EUR", "VND", "27500")
    cli("rate", "rm", "EUR", "VND", "--at", "2026-12-01")
    out = tmp_path / "all.json"
    cli("export", "--format", "json", "--events", "-o", str(out))
    data = json.loads(out.read_text())
    assert list(data)[-2:] == ["rates", "deals"]
    assert data["rates"] == [
        {"from": "USD", "to": "EUR", "at": "2026-11-01T00:00:00Z", "rate": "0.92",
         "recorded_at": "2026-12-01T09:00:00Z"},
        {"from": "USD", "to": "EUR", "at": "2026-11-01T00:00:00Z", "rate": "0.93",
         "recorded_at": "2026-12-01T09:00:00Z"},
        {"from": "EUR", "to": "VND", "at": "2026-12-01T00:00:00Z", "rate": "27500",
         "recorded_at": "2026-12-01T09:00:00Z"},
        {"from": "EUR", "to": "VND", "at": "2026-12-01T00:00:00Z", "rate": None,
         "recorded_at": "2026-12-01T09:00:00Z"},
    ]
    before = cli.json("rate", "list", "--all")
    cli = cli.another("other.db")
    first = cli.json("import", str(out))
    assert first["rates_added"] == 4
    assert cli.json("rate", "list", "--all") == before
    assert cli.json("import", str(out))["rates_added"] == 0  # nothing twice
    assert cli.json("rate", "list", "--all") == before
    assert "no problems found" in cli("db", "check").stdout


@pytest.mark.parametrize(("rates", "message"), [
    ({}, "it is not a list"), ([5], "rate 1 is not such an object"),
    ([{"from": "USD", "to": "EUR", "at": "2026-01-01T00:00:00Z", "rate": 0.92,
       "recorded_at": "2026-01-01T00:00:00Z"}], "the rate is not decimal text"),
    ([{"from": "USD", "to": "EUR", "at": "2026-01-01T00:00:00Z", "rate": "0,92",
       "recorded_at": "2026-01-01T00:00:00Z"}], "never a comma"),
    ([{"from": "USD", "to": "USD", "at": "2026-01-01T00:00:00Z", "rate": "1",
       "recorded_at": "2026-01-01T00:00:00Z"}], "into itself"),
    ([{"from": "USD", "to": "EUR", "at": "yesterday", "rate": "1",
       "recorded_at": "2026-01-01T00:00:00Z"}], "rate 1"),
])
def test_an_export_with_bad_rates_imports_nothing(cli, tmp_path, rates, message) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"pipectl_export": 2, "rates": rates, "deals": [
        {"name": "Acme", "stage": "prospecting", "currency": "USD",
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}]}))
    r = cli("import", str(f), code=2)
    assert message in r.stderr and "nothing was imported" in r.stderr
    assert cli.json("list", "--status", "all") == []
    assert cli.json("rate", "list", "--all") == []


def test_db_check_names_a_rate_written_around_pipectl(cli, db_path) -> None:
    cli("rate", "set", "USD", "EUR", "0.92", "--at", "2026-01-01")
    bad = ("INSERT INTO rates (source, target, at, rate, recorded_at) VALUES "
           "('USD', 'EUR', '2026-02-01T00:00:00Z', '0.920', '2026-02-01T00:00:00Z')")
    if engines.is_url(db_path):  # a server's CHECK is lifted only by dropping it
        engines.execute(db_path, "ALTER TABLE rates DROP CONSTRAINT IF EXISTS rates_rate_check",
                        bad)
    else:
        engines.execute(db_path, "PRAGMA ignore_check_constraints = ON", bad)
    r = cli("db", "check", code=1)
    assert "1 exchange rate row is not a rate pipectl records (id 2)" in r.stdout
    # conversions leave it out: the rate in force is still the valid one
    assert [x["rate"] for x in cli.json("rate", "list")] == ["0.92"]


@pytest.mark.sqlite_only("db restore (of a file from a backup file): store.db._fingerprint")
def test_a_restore_interrupted_after_copying_rates_alone_counts_as_a_change(conn, monkeypatch):
    """db restore asks store.db._fingerprint whether an interrupted copy changed the database:
    a backup that differs only in its rates (or its pipeline versions) must read as different."""
    from pipectl.store.db import _fingerprint

    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    before = _fingerprint(conn)
    svc.record(conn, "USD", "EUR", "0.92")
    assert _fingerprint(conn) != before
