"""pipectl rate set|list|rm, and --in on board, list, report and forecast: exact output."""

from __future__ import annotations

import pytest

from tests import engines

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
               ).stdout == "Recorded rate EUR→VND 27500 from 2026-06-01 12:00 UTC\n"
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
    assert "│ USD→EUR │  0.91 │ 2026-01-05           │ 2026-12-01 │ 2026-12-01 09:00 UTC │" \
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
        assert not engines.exists(db_path)  # checked before the database is opened
    else:
        assert rated.json("rate", "list", "--all") == []


@pytest.mark.sqlite_only("the file's mode (chmod 0444): a read-only file")
def test_rate_list_reads_a_read_only_file(rated, db_path) -> None:
    rated("rate", "set", "USD", "EUR", "0.92")
    db_path.chmod(0o444)
    try:
        assert [r["rate"] for r in rated.json("rate", "list")] == ["0.92"]
        r = rated("rate", "set", "USD", "EUR", "0.93", code=1)
        assert "read-only" in r.stderr
    finally:
        db_path.chmod(0o644)


# ---------------------------------------------------------------- --in on board and list


@pytest.fixture
def mixed(rated):
    """Open deals in four currencies; 350,000,000 VND is the largest number, not the largest
    deal."""
    cli = rated
    for name, value, cur, stage in (("Sao Mai", "350000000", "VND", "meeting"),
                                    ("Kraków", "32500", "EUR", "meeting"),
                                    ("Acme", "40000", "USD", "meeting"),
                                    ("Small", "100", "EUR", "prospecting"),
                                    ("Tiny", "0.01", "USD", "prospecting"),
                                    ("Tiny too", "0.01", "USD", "prospecting"),
                                    ("Tokyo", "1000000", "JPY", "prospecting")):
        cli("add", name, "--value", value, "--currency", cur, "--stage", stage,
            *(["--prequalified", "known"] if stage == "meeting" else []))
    return cli


def _ids(cli, *args: str) -> list[int]:
    return [d["id"] for d in cli.json("list", *args)]


def test_sorting_by_value_never_ranks_vnd_above_eur(mixed) -> None:
    cli = mixed
    # without rates: within each currency, the currencies in turn (EUR, JPY, USD, VND)
    assert _ids(cli, "--sort", "value") == [2, 4, 7, 3, 5, 6, 1]
    assert _ids(cli, "--sort", "value", "--in", "EUR") == [2, 4, 7, 3, 5, 6, 1]  # no rates
    cli("rate", "set", "USD", "EUR", "0.5", "--at", "2026-01-01")
    cli("rate", "set", "EUR", "VND", "27500", "--at", "2026-01-01")
    # converted: 32,500 EUR, 20,000 EUR (USD), 12,727.27 EUR (VND), ...; JPY has no rate: last
    assert _ids(cli, "--sort", "value", "--in", "EUR") == [2, 3, 1, 4, 5, 6, 7]
    # by stage, the same order within each stage
    assert _ids(cli, "--in", "EUR") == [4, 5, 6, 7, 2, 3, 1]
    assert _ids(cli) == [4, 7, 5, 6, 2, 3, 1]
    # the value column stays as it is; the converted one sits beside it
    rows = [line for line in cli("list", "--sort", "value", "--in", "EUR").stdout.splitlines()
            if line.startswith("│")]
    assert [line.split("│")[5:7] for line in rows[:3]] == [
        ["   32,500.00 EUR ", " 32,500.00 EUR "], ["   40,000.00 USD ", " 20,000.00 EUR "],
        [" 350,000,000 VND ", " 12,727.27 EUR "]]
    assert rows[-1].split("│")[5:7] == ["   1,000,000 JPY ", "             - "]


def test_list_in_totals_are_summed_exactly_and_rounded_once(mixed) -> None:
    cli = mixed
    cli("rate", "set", "USD", "EUR", "0.5", "--at", "2026-01-01")
    cli("rate", "set", "EUR", "VND", "27500", "--at", "2026-01-01")
    out = cli("list", "--in", "EUR").stdout.splitlines()
    # 0.01 USD is 0.005 EUR: each deal shows 0.00, the two together 0.01
    assert out[-2:] == [
        "in EUR: 65,327.28 EUR + 1,000,000 JPY",
        "Values in EUR at the rates in force now (USD→EUR 0.5, VND→EUR 1/27500); no JPY→EUR "
        "rate: JPY amounts kept in JPY",
    ]
    data = cli.json("list", "--in", "EUR", "--totals", "--sort", "value", "--limit", "1")
    assert [d["value_in"] for d in data["deals"]] == [{"currency": "EUR", "value": "32500.00"}]
    assert {k: data[k] for k in ("total", "shown", "totals_in", "values_in")} == {
        "total": 7, "shown": 1,
        "totals_in": {"EUR": "65327.28", "JPY": "1000000"},
        "values_in": {
            "currency": "EUR", "at": NOW,
            "rates": [{"from": "USD", "to": "EUR", "rate": "0.5",
                       "since": "2026-01-01T00:00:00Z", "inverse": False},
                      {"from": "VND", "to": "EUR", "rate": "1/27500",
                       "since": "2026-01-01T00:00:00Z", "inverse": True}],
            "missing": [{"from": "JPY", "to": "EUR", "first_rate_at": None,
                         "note": "no JPY→EUR rate"}]},
    }
    tokyo = cli.json("list", "--in", "EUR", "--search", "Tokyo")
    assert tokyo[0]["value_in"] == {"currency": "EUR", "value": None, "note": "no JPY→EUR rate"}


def test_board_in_converts_and_ranks_by_converted_value(mixed) -> None:
    cli = mixed
    plain = cli.json("board")
    # without rates, the largest of each currency in turn: never VND first for its digits
    assert [c["deals"] for c in plain[:3:2]] == [[4, 7, 5, 6], [2, 3, 1]]
    assert plain[2]["value"] == {"EUR": "32500.00", "USD": "40000.00", "VND": "350000000"}
    assert cli.json("board", "--in", "EUR")["values_in"]["missing"] == [
        {"from": c, "to": "EUR", "first_rate_at": None, "note": f"no {c}→EUR rate"}
        for c in ("JPY", "USD", "VND")]
    cli("rate", "set", "USD", "EUR", "0.5", "--at", "2026-01-01")
    cli("rate", "set", "EUR", "VND", "27500", "--at", "2026-01-01")
    out = cli.json("board", "--in", "EUR")
    assert [r["from"] for r in out["values_in"]["rates"]] == ["USD", "VND"]
    prospecting, _, meeting = out["stages"][:3]
    assert meeting["deals"] == [2, 3, 1]
    assert meeting["value"] == {"EUR": "65227.27"}  # 32,500 + 20,000 + 12,727.2727...
    assert meeting["weighted_value"] == {"EUR": "26090.91"}  # 40% of it, rounded once
    assert prospecting["deals"] == [4, 5, 6, 7]  # JPY, with no rate, after the converted
    assert prospecting["value"] == {"EUR": "100.01", "JPY": "1000000"}  # 0.005 + 0.005
    text = cli("board", "--in", "EUR").stdout
    assert text.splitlines()[0] == ("Values in EUR at the rates in force now (USD→EUR 0.5, "
                                    "VND→EUR 1/27500); no JPY→EUR rate: JPY amounts kept in JPY")
    assert "Open pipeline: 7 deals, 65,327.28 EUR + 1,000,000 JPY; weighted 26,100.91 EUR + " \
        "100,000 JPY" in text
    assert "12,727.27 EUR" in text and "350,000,000 VND" not in text


@pytest.mark.parametrize("command", ["list", "board", "report", "forecast"])
def test_in_checks_its_currency_before_opening_the_database(rated, db_path, command) -> None:
    r = rated(command, "--in", "euro", code=2)
    assert r.stderr == ("error: --in 'euro' is neither a date (YYYY-MM-DD: the period "
                        "containing it) nor a currency code (three letters, e.g. EUR)\n"
                        if command == "report" else
                        "error: --in: currency 'euro' is not a three-letter ISO 4217 code "
                        "(e.g. EUR)\n")
    assert not engines.exists(db_path)


@pytest.mark.parametrize(("args", "message"), [
    (["--in", "EUR", "--in", "usd"], "--in takes at most one date and one currency (e.g. "
     "--quarter --in 2026-07-01 --in EUR)"),
    (["--month", "--in", "2026-01-01", "--in", "2026-02-01"], "--in takes at most one date"),
    (["--in", "2026-01-01", "--in", "EUR"], "--in needs --week, --month, --quarter or --year "
     "(--in EUR, three letters, converts into a currency instead)"),
    (["--month", "--in", "2026-13-01", "--in", "EUR"], "--in '2026-13-01' is not a valid date"),
])
def test_report_in_takes_a_date_and_a_currency(rated, db_path, args, message) -> None:
    r = rated("report", *args, code=2)
    assert r.stderr.startswith(f"error: {message}")
    assert not engines.exists(db_path)


# ---------------------------------------------------------------- --in on report and forecast


@pytest.fixture
def quarter(rated):
    """Q4 2026: 10,000 USD and 5,000 EUR won in October, 3,000 USD lost; open: 20,000.01 USD
    expected in November, 350,000,000 VND (no rate) in December. USD→EUR 0.9 from January;
    EUR→USD 1.05263 from 2026-11-15 (its inverse is the later quote from then on)."""
    cli = rated
    for args in (["US won", "10000", "USD", "proposal"], ["EU won", "5000", "EUR", "proposal"],
                 ["VN open", "350000000", "VND", "meeting", "--close", "2026-12-20"],
                 ["US open", "20000.01", "USD", "negotiation", "--close", "2026-11-20"],
                 ["US lost", "3000", "USD", "meeting"]):
        name, value, cur, stage, *more = args
        cli("add", name, "--value", value, "--currency", cur, "--stage", stage,
            "--prequalified", "known", *more, "--at", "2026-09-01")
    cli("advance", "1", "--to", "won", "--at", "2026-10-10")
    cli("advance", "2", "--to", "won", "--at", "2026-10-20")
    cli("lose", "5", "--reason", "price", "--at", "2026-10-05")
    cli("rate", "set", "USD", "EUR", "0.9", "--at", "2026-01-01")
    cli("rate", "set", "EUR", "USD", "1.05263", "--at", "2026-11-15")
    return cli


USD_EUR = {"from": "USD", "to": "EUR", "rate": "0.9", "since": "2026-01-01T00:00:00Z",
           "inverse": False}
USD_EUR_LATER = {"from": "USD", "to": "EUR", "rate": "1/1.05263",
                 "since": "2026-11-15T00:00:00Z", "inverse": True}
NO_VND = {"from": "VND", "to": "EUR", "first_rate_at": None, "note": "no VND→EUR rate"}


def test_report_in_converts_at_the_as_of_rate(quarter) -> None:
    cli = quarter
    out = cli.json("report", "--quarter", "--in", "2026-10-01", "--in", "EUR",
                   "--as-of", "2026-11-01")
    assert out["won"] == {"count": 2, "without_value": 0, "with_value": {"EUR": 2},
                          "value": {"EUR": "14000.00"}, "average": {"EUR": "7000.00"}}
    assert out["lost"] == {"count": 1, "without_value": 0, "with_value": {"EUR": 1},
                           "value": {"EUR": "2700.00"}}
    # 20,000.01 USD x 0.9; weighted 80%: 14,400.0072 rounded once; VND stays VND
    total = {k: out["pipeline"][k] for k in ("count", "value", "weighted_value")}
    assert total == {"count": 2, "value": {"EUR": "18000.01", "VND": "350000000"},
                     "weighted_value": {"EUR": "14400.01", "VND": "140000000"}}
    assert out["lost_reasons"]["by_reason"] == [{"reason": "price", "count": 1,
                                                 "value": {"EUR": "2700.00"}}]
    assert out["values_in"] == {"currency": "EUR", "at": "2026-11-01T00:00:00Z",
                                "rates": [USD_EUR], "missing": [NO_VND]}
    # as of December 1st the later quote is in force, won figures too (one rate per report)
    later = cli.json("report", "--quarter", "--in", "2026-10-01", "--in", "EUR",
                     "--as-of", "2026-12-01")
    # 10,000 / 1.05263 + 5,000 = 14,500.01425...; its half 7,250.0071...
    assert later["won"]["value"] == {"EUR": "14500.01"}
    assert later["won"]["average"] == {"EUR": "7250.01"}
    assert later["pipeline"]["value"] == {"EUR": "19000.04", "VND": "350000000"}
    assert later["pipeline"]["weighted_value"] == {"EUR": "15200.03", "VND": "140000000"}
    assert later["values_in"]["rates"] == [USD_EUR_LATER]
    # before the first rate: nothing converted, each amount kept with the note why
    early = cli.json("report", "--in", "EUR", "--as-of", "2025-12-01")
    assert early["values_in"]["missing"] == []  # no deal had a value then
    text = cli("report", "--quarter", "--in", "2026-10-01", "--in", "EUR", "--as-of",
               "2026-11-01").stdout.splitlines()
    assert text[0] == ("Values in EUR at rates of 2026-11-01 (USD→EUR 0.9); no VND→EUR rate: "
                       "VND amounts kept in VND")
    # without --in: per currency, as before
    plain = cli.json("report", "--quarter", "--in", "2026-10-01", "--as-of", "2026-11-01")
    assert plain["won"]["value"] == {"EUR": "5000.00", "USD": "10000.00"}
    assert "values_in" not in plain


def test_report_by_owner_in_ranks_by_converted_won_value(quarter) -> None:
    cli = quarter
    cli("edit", "1", "--owner", "Anna")
    cli("edit", "2", "--owner", "Ben")
    out = cli.json("report", "--quarter", "--in", "2026-10-01", "--by", "owner", "--in", "EUR",
                   "--as-of", "2026-11-01")
    assert out["sorted_by"] == "won_value"  # one currency now: amounts compared
    assert [(g["group"], g["won"]["value"]) for g in out["groups"]] == [
        ("Anna", {"EUR": "9000.00"}), ("Ben", {"EUR": "5000.00"}), (None, {})]
    assert out["groups"][2]["pipeline"]["value"] == {"EUR": "18000.01", "VND": "350000000"}
    assert out["total"]["won"]["value"] == {"EUR": "14000.00"}
    assert out["values_in"]["rates"] == [USD_EUR]


def test_forecast_in_converts_each_period_at_its_own_start(quarter) -> None:
    cli = quarter
    out = cli.json("forecast", "--from", "2026-10-01", "--to", "2026-12-01", "--in", "EUR")
    nov, dec = out["periods"][1:]
    # November's forecast was read before the later quote: 0.9
    assert nov["forecast"]["value"] == {"EUR": "18000.01"}
    assert nov["slipped"][0]["value"] == "18000.01" and nov["slipped"][0]["currency"] == "EUR"
    assert out["periods"][0]["actual"]["value"] == {"EUR": "14000.00"}  # October's wins
    assert dec["forecast"]["value"] == {"VND": "350000000"}
    assert [(p["period"], p["rates"], p["missing"]) for p in out["values_in"]["periods"]] == [
        ("2026-10", [USD_EUR], []), ("2026-11", [USD_EUR], []), ("2026-12", [], [NO_VND])]
    text = cli("forecast", "--from", "2026-10-01", "--to", "2026-12-01", "--in", "EUR").stdout
    assert text.splitlines()[:3] == [
        "Values in EUR at the rates in force when each period's forecast was read (its start; "
        "a future period's: the as-of moment):",
        "  2026-10 to 2026-11: USD→EUR 0.9",
        "  2026-12: no VND→EUR rate: VND kept in VND",
    ]
    csv = cli("forecast", "--from", "2026-11-01", "--to", "2026-11-01", "--in", "EUR", "--csv")
    assert "2026-11,2026-11-01,2026-12-01,over,EUR,18000.01," in csv.stdout
    assert "note: values in EUR at the rates in force" in csv.stderr


def test_next_never_ranks_vnd_above_eur_for_its_digits(mixed) -> None:
    """Within a tier, the largest deal of each currency in turn: 32,500 EUR, 1,000,000 JPY,
    40,000 USD, 350,000,000 VND, then the second largest of each."""
    assert [d["id"] for d in mixed.json("next")["deals"]] == [2, 7, 3, 1, 4, 5, 6]
