"""pipectl rate set|list|rm, and --in on board, list, report and forecast: exact output."""

from __future__ import annotations

import pytest

NOW = "2026-12-01T09:00:00Z"


@pytest.fixture
def rated(cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    return cli


def test_rate_set_and_list(rated) -> None:
    cli = rated
    assert cli("rate", "list").stdout == \
        "No rates recorded (pipectl rate set USD EUR 0.92 records one)\n"
    assert cli.json("rate", "list") == []
    assert cli("rate", "set", "USD", "EUR", "0.920").stdout == \
        "Recorded rate USD→EUR 0.92 from 2026-12-01\n"
    assert cli("rate", "set", "usd", "eur", "0.92").stdout == \
        "Rate USD→EUR 0.92 from 2026-12-01 is already recorded; nothing changed\n"
    assert cli("rate", "set", "USD", "EUR", "0.93", "--at", "2026-12-01").stdout == \
        "Corrected rate USD→EUR 0.93 from 2026-12-01 (was 0.92)\n"
    assert cli("rate", "set", "USD", "EUR", "0.91", "--at", "2026-01-05").stdout == \
        "Recorded rate USD→EUR 0.91 from 2026-01-05\n"
    assert cli("rate", "set", "EUR", "VND", "27500", "--at", "2026-06-01T14:00+02:00"
               ).stdout == "Recorded rate EUR→VND 27500 from 2026-06-01T12:00:00Z\n"
    assert cli.json("rate", "list") == [
        {"from": "EUR", "to": "VND", "rate": "27500", "at": "2026-06-01T12:00:00Z",
         "until": None, "recorded_at": NOW, "state": "current"},
        {"from": "USD", "to": "EUR", "rate": "0.91", "at": "2026-01-05T00:00:00Z",
         "until": "2026-12-01T00:00:00Z", "recorded_at": NOW, "state": "current"},
        {"from": "USD", "to": "EUR", "rate": "0.93", "at": "2026-12-01T00:00:00Z",
         "until": None, "recorded_at": NOW, "state": "current"},
    ]
    assert [(r["rate"], r["state"]) for r in cli.json("rate", "list", "--all")] == [
        ("27500", "current"), ("0.91", "current"), ("0.92", "corrected"), ("0.93", "current")]
    table = cli("rate", "list").stdout
    assert "│ USD→EUR │  0.91 │ 2026-01-05           │ 2026-12-01 │ 2026-12-01 09:00:00 │" \
        in table
    assert cli("rate", "rm", "USD", "EUR", "--at", "2026-12-01").stdout == \
        "Withdrew rate USD→EUR 0.93 from 2026-12-01\n"
    assert [(r["rate"], r["state"]) for r in cli.json("rate", "list", "--all")][1:] == [
        ("0.91", "current"), ("0.92", "withdrawn"), ("0.93", "withdrawn"),
        (None, "withdrawal")]
    assert cli.json("rate", "list")[1]["until"] is None  # 0.91 is in force from then on


@pytest.mark.parametrize(("args", "code", "message"), [
    (("set", "USD", "USD", "1"), 2, "a rate converts between two currencies, not USD into "
     "itself"),
    (("set", "USD", "EUR", "0,92"), 2, "rate '0,92' is not a rate (a rate is written with a "
     "decimal point, never a comma)"),
    (("set", "USD", "EUR", "0"), 2, "rate '0' is zero: a rate must be more than zero"),
    (("set", "USD", "EUR", "1", "--at", "2026-12-02"), 2, "--at '2026-12-02' "
     "(2026-12-02T00:00:00Z) is in the future (record a rate once it is known; until then "
     "figures convert at the latest rate recorded)"),
    (("set", "EURO", "USD", "1"), 2, "currency 'EURO' is not a three-letter ISO 4217 code"),
    (("rm", "USD", "EUR", "--at", "2026-01-01"), 1, "no USD→EUR rate is recorded at "
     "2026-01-01 (pipectl rate list shows each rate with its moment)"),
])
def test_rate_refusals_are_one_line_and_change_nothing(rated, db_path, args, code, message
                                                       ) -> None:
    r = rated("rate", *args, code=code)
    assert r.stderr.startswith(f"error: {message}")
    assert r.stderr.count("\n") == 1
    if code == 2:
        assert not db_path.exists()  # checked before the database is opened
    else:
        assert rated.json("rate", "list", "--all") == []


def test_rate_list_reads_a_read_only_file(rated, db_path) -> None:
    rated("rate", "set", "USD", "EUR", "0.92")
    db_path.chmod(0o444)
    try:
        assert [r["rate"] for r in rated.json("rate", "list")] == ["0.92"]
        r = rated("rate", "set", "USD", "EUR", "0.93", code=1)
        assert "read-only" in r.stderr
    finally:
        db_path.chmod(0o644)
