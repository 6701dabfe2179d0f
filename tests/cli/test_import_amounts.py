"""Issue 12: files with more decimals than their currency import unedited (rounded, the file's
text kept in the history); amounts that read two ways are never guessed; an import's errors
(unknown stages, bad cells, in the deals file and its --history file) come in one round."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipectl.transfer import common
from tests import engines


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _rows(db: engines.Target, sql: str) -> list[tuple]:
    return engines.rows(db, sql)


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")


# A Salesforce export with discounts: 3- and 4-decimal amounts in USD, JPY and KWD, in the
# deals file and in its stage history.
OPPORTUNITIES = (
    "Id,Name,StageName,Amount,CurrencyIsoCode,CloseDate,CreatedDate,IsClosed,IsWon\n"
    "O1,Alpha,Prospecting,9225.225,USD,2026-03-01,2026-01-05 10:00:00,0,0\n"
    "O2,Beta,Closed Won,7564.6845,USD,2026-02-01,2026-01-06 10:00:00,1,1\n"
    "O3,Gamma,Negotiation/Review,150000.5,JPY,2026-03-01,2026-01-07 10:00:00,0,0\n"
    "O4,Delta,Proposal/Price Quote,1.2345,KWD,2026-03-01,2026-01-08 10:00:00,0,0\n"
    "O5,Eps,Qualification,100000.0,USD,2026-03-01,2026-01-08 10:00:00,0,0\n"
)
HISTORY = (
    "OpportunityId,CreatedDate,StageName,Amount,CloseDate,Probability\n"
    "O1,2026-01-05 10:00:00,Prospecting,9000.125,2026-03-01,10\n"
    "O2,2026-01-06 10:00:00,Prospecting,7000.5555,2026-02-01,10\n"
    "O3,2026-01-07 10:00:00,Qualification,149999.5,2026-03-01,20\n"
    "O4,2026-01-08 10:00:00,Qualification,1.2355,2026-03-01,20\n"
)


def _import(cli, tmp_path: Path, *more: str) -> dict:
    opp = _write(tmp_path, "Opportunity.csv", OPPORTUNITIES)
    hist = _write(tmp_path, "OpportunityHistory.csv", HISTORY)
    return cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist), *more)


def test_amounts_with_more_decimals_import_rounded_and_kept(cli, db_path: Path,
                                                             tmp_path: Path) -> None:
    out = _import(cli, tmp_path)
    assert (out["added"], out["bad_rows"], out["errors"]) == (5, 0, [])
    # O3's 150000.5 rounds to the 150000 its history set already: it changed nothing, and is
    # not counted (only amounts whose text a deal's history keeps are)
    assert out["rounded"] == [
        {"currency": "JPY", "amounts": 1, "most": "0.5"},
        {"currency": "KWD", "amounts": 2, "most": "0.0005"},
        {"currency": "USD", "amounts": 4, "most": "0.005"},
    ]
    assert _rows(db_path, "SELECT ref, value_minor, currency FROM deals ORDER BY id") == [
        ("O1", 922522, "USD"), ("O2", 756468, "USD"), ("O3", 150000, "JPY"),
        ("O4", 1234, "KWD"), ("O5", 10000000, "USD")]
    # the file's text is on the event that set each rounded value; nothing else has one
    assert _rows(db_path, "SELECT d.ref, e.kind, e.value_minor, e.text FROM events e "
                          "JOIN deals d ON d.id = e.deal_id WHERE e.text IS NOT NULL "
                          "ORDER BY e.id") == [
        ("O1", "created", 900012, "amount in file: 9000.125 USD, rounded to 9000.12"),
        ("O1", "value", 922522, "amount in file: 9225.225 USD, rounded to 9225.22"),
        ("O2", "created", 700056, "amount in file: 7000.5555 USD, rounded to 7000.56"),
        ("O2", "value", 756468, "amount in file: 7564.6845 USD, rounded to 7564.68"),
        ("O3", "created", 150000, "amount in file: 149999.5 JPY, rounded to 150000"),
        ("O4", "created", 1236, "amount in file: 1.2355 KWD, rounded to 1.236"),
        ("O4", "value", 1234, "amount in file: 1.2345 KWD, rounded to 1.234"),
    ]
    shown = cli.json("show", "1")["events"]
    assert [(e["kind"], e["value"], e.get("text")) for e in shown] == [
        ("created", "9000.12", "amount in file: 9000.125 USD, rounded to 9000.12"),
        ("value", "9225.22", "amount in file: 9225.225 USD, rounded to 9225.22")]


def test_the_summary_says_what_was_rounded(cli, tmp_path: Path) -> None:
    opp = _write(tmp_path, "Opportunity.csv", OPPORTUNITIES)
    out = cli("import", str(opp), "--preset", "salesforce").stdout
    assert ("  amounts rounded to their currency's minor unit (half to even; each as the file "
            "wrote it is kept in its deal's history): 1 amount in JPY by at most 0.5 JPY, "
            "1 amount in KWD by at most 0.0005 KWD, 2 amounts in USD by at most 0.005 USD\n"
            ) in out


def test_a_round_trip_keeps_the_files_text_and_rounds_nothing_again(cli, db_path: Path,
                                                                     tmp_path: Path) -> None:
    _import(cli, tmp_path)
    texts = "SELECT deal_id, kind, value_minor, text FROM events ORDER BY id"
    before = _rows(db_path, texts)
    deals_csv, events_csv = tmp_path / "deals.csv", tmp_path / "events.csv"
    cli("export", "-o", str(deals_csv))
    cli("export", "--events", "-o", str(events_csv))
    cli("export", "-f", "json", "--events", "-o", str(tmp_path / "all.json"))
    for name, args in (("pair", [str(deals_csv), "--history", str(events_csv)]),
                       ("json", [str(tmp_path / "all.json")])):
        other = cli.another(f"{name}.db")
        out = other.json("import", *args)
        assert out["rounded"] == [] and out["added"] == 5
        assert _rows(other.db, texts) == before
        # again: nothing new, the texts not duplicated
        assert other.json("import", *args)["added"] == 0
        assert _rows(other.db, texts) == before
    # the CRM's file again: the values are unchanged, so no event, no second text
    again = _import(cli, tmp_path)
    assert (again["added"], again["updated"], again["events"]) == (0, 0, 0)
    assert again["rounded"] == []  # nothing set: nothing said rounded
    assert _rows(db_path, texts) == before


def test_a_value_that_changes_to_a_rounded_one_keeps_its_text(cli, db_path: Path,
                                                              tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "ref,name,value,currency\nR1,A,100,USD\n")
    cli("import", str(f))
    g = _write(tmp_path, "b.csv", "ref,name,value,currency\nR1,A,1000.005,USD\n")
    out = cli.json("import", str(g))
    assert (out["updated"], out["rounded"]) == (
        1, [{"currency": "USD", "amounts": 1, "most": "0.005"}])
    assert _rows(db_path, "SELECT kind, value_minor, text FROM events WHERE kind = 'value'") == [
        ("value", 100000, "amount in file: 1000.005 USD, rounded to 1000.00")]


def test_a_rounded_amount_that_changes_nothing_is_not_counted(cli, db_path: Path,
                                                               tmp_path: Path) -> None:
    """History rows 200 then 200.5 JPY: 200.5 rounds to the 200 the deal has; no event sets it,
    so the summary does not count it (it said 'each as the file wrote it is kept', and this
    text was kept nowhere), and the history gets no note for it. A rounded amount that does
    set a value is counted, with its text on that event."""
    opp = _write(tmp_path, "Opportunity.csv",
                 "Id,Name,StageName,Amount,CurrencyIsoCode,CreatedDate,LastModifiedDate\n"
                 "J1,Tokyo,Qualification,200.5,JPY,2026-01-05 10:00:00,2026-02-01 10:00:00\n"
                 "J2,Kyoto,Qualification,301.5,JPY,2026-01-05 10:00:00,2026-02-01 10:00:00\n")
    hist = _write(tmp_path, "OpportunityHistory.csv",
                  "OpportunityId,CreatedDate,StageName,Amount\n"
                  "J1,2026-01-05 10:00:00,Prospecting,200\n"
                  "J1,2026-02-01 10:00:00,Qualification,200.5\n"
                  "J2,2026-01-05 10:00:00,Prospecting,300\n"
                  "J2,2026-02-01 10:00:00,Qualification,301.5\n")
    out = cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist))
    # J1's two 200.5 (history, deals file) set nothing; J2's 301.5 sets 302 once (its deals
    # file's 301.5 then changes nothing)
    assert out["rounded"] == [{"currency": "JPY", "amounts": 1, "most": "0.5"}]
    assert _rows(db_path, "SELECT d.ref, e.kind, e.value_minor, e.text FROM events e "
                          "JOIN deals d ON d.id = e.deal_id WHERE e.value_minor IS NOT NULL "
                          "OR e.text IS NOT NULL ORDER BY e.id") == [
        ("J1", "created", 200, None),
        ("J2", "created", 300, None),
        ("J2", "value", 302, "amount in file: 301.5 JPY, rounded to 302"),
    ]
    text = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist),
               "--dry-run").stdout
    assert "amounts rounded" not in text  # again: nothing set, nothing rounded


# ---------------------------------------------------------------- amounts that read two ways


EUROPEAN = "name,value,currency\nA,1.500,PLN\nB,12.000,PLN\nC,500,PLN\nD,2.500,KWD\n"


def test_a_file_whose_amounts_read_two_ways_is_refused(cli, db_path: Path,
                                                       tmp_path: Path) -> None:
    f = _write(tmp_path, "eu.csv", EUROPEAN)
    err = cli("import", str(f), code=2).stderr
    assert err == (
        "error: 2 amounts read two ways, and no amount shows how the file writes decimals; "
        "nothing was imported:\n"
        f"error:   {f}: row 2, column 'value': '1.500' is 1.50 PLN (decimal point) or "
        "1,500.00 PLN (decimal comma)\n"
        f"error:   {f}: row 3, column 'value': '12.000' is 12.00 PLN (decimal point) or "
        "12,000.00 PLN (decimal comma)\n"
        "error: say which with --decimal point (1,234.50) or --decimal comma (1.234,50)\n")
    assert not engines.exists(db_path) or _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]


@pytest.mark.parametrize(("decimal", "values"), [
    ("comma", [("A", 150000), ("B", 1200000), ("C", 50000), ("D", 2500000)]),
    ("point", [("A", 150), ("B", 1200), ("C", 50000), ("D", 2500)]),
])
def test_decimal_says_how_the_file_writes_decimals(cli, db_path: Path, tmp_path: Path,
                                                   decimal: str, values: list) -> None:
    f = _write(tmp_path, "eu.csv", EUROPEAN)
    out = cli.json("import", str(f), "--decimal", decimal)
    assert (out["added"], out["rounded"]) == (4, [])
    assert _rows(db_path, "SELECT name, value_minor FROM deals ORDER BY id") == values


def test_a_decimal_comma_file_imports_with_its_own_form(cli, db_path: Path,
                                                        tmp_path: Path) -> None:
    f = _write(tmp_path, "de.csv", 'name;value;currency\nA;"1.234,50";EUR\nB;12,5;EUR\n'
                                   'C;9225,225;EUR\n')
    out = cli.json("import", str(f), "--decimal", "comma")
    assert out["rounded"] == [{"currency": "EUR", "amounts": 1, "most": "0.005"}]
    assert _rows(db_path, "SELECT name, value_minor FROM deals ORDER BY id") == [
        ("A", 123450), ("B", 1250), ("C", 922522)]


@pytest.mark.parametrize("proof", ["100000.0", "12.5", "1,234.50", "9225.225", "0.500"])
def test_one_amount_that_shows_the_point_settles_the_file(cli, db_path: Path, tmp_path: Path,
                                                          proof: str) -> None:
    f = _write(tmp_path, "mixed.csv", f'name,value\nA,1.500\nB,"{proof}"\n')
    assert cli.json("import", str(f))["added"] == 2
    assert _rows(db_path, "SELECT value_minor FROM deals WHERE name = 'A'") == [(150,)]


def test_a_bad_option_value(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "eu.csv", EUROPEAN)
    err = cli("import", str(f), "--decimal", "dot", code=2).stderr
    assert err == ("error: --decimal 'dot' is not point or comma (--decimal point reads "
                   "1,234.50; --decimal comma 1.234,50)\n")


def test_json_numbers_never_read_two_ways(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "rows.json", '[{"name": "A", "value": 1.5}, {"name": "B", '
                                      '"value": 922.225}]')
    out = cli.json("import", str(f))
    assert out["rounded"] == [{"currency": "USD", "amounts": 1, "most": "0.005"}]
    assert _rows(db_path, "SELECT value_minor FROM deals ORDER BY id") == [(150,), (92222,)]


@pytest.mark.parametrize("proof_row", [True, False])
def test_the_bulk_road_judges_the_file_the_same(cli, db_path: Path, tmp_path: Path,
                                                monkeypatch, proof_row: bool) -> None:
    """A large file: rows the SQL side converts ('12.5') count as rows read in Python do."""
    monkeypatch.setattr(common, "BULK_BYTES", 0)
    rows = [f"R{i},Deal {i},{i}" for i in range(1, 30)]
    rows.append("R30,Two ways,1.500")
    if proof_row:
        rows.append("R31,Pointed,12.5")
    f = _write(tmp_path, "big.csv", "ref,name,value\n" + "\n".join(rows) + "\n")
    if proof_row:
        assert cli.json("import", str(f))["added"] == 31
        assert _rows(db_path, "SELECT value_minor FROM deals WHERE ref = 'R30'") == [(150,)]
    else:
        err = cli("import", str(f), code=2).stderr
        assert f"{f}: row 31, column 'value': '1.500' is 1.50 USD" in err


# ---------------------------------------------------------------- errors in one round


def test_unknown_stages_of_both_files_in_one_error(cli, db_path: Path, tmp_path: Path) -> None:
    opp = _write(tmp_path, "Opportunity.csv", OPPORTUNITIES.replace(
        "O1,Alpha,Prospecting", "O1,Alpha,Awaiting outcome").replace(
        "O3,Gamma,Negotiation/Review", "O3,Gamma,Pending"))
    hist = _write(tmp_path, "OpportunityHistory.csv", HISTORY.replace(
        "O1,2026-01-05 10:00:00,Prospecting", "O1,2026-01-05 10:00:00,awaiting  OUTCOME").replace(
        "O3,2026-01-07 10:00:00,Qualification", "O3,2026-01-07 10:00:00,Limbo"))
    err = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist),
              code=2).stderr
    assert err == (
        f"error: {opp}: unknown stages in column 'StageName': 'Awaiting outcome' (row 2), "
        "'Pending' (row 4); nothing was imported\n"
        f"error: {hist}: unknown stages in column 'StageName': 'awaiting  OUTCOME' (row 2), "
        "'Limbo' (row 4)\n"
        "error: map each by adding to the command (STAGE: a stage of pipeline 'default': "
        "prospecting, qualification, meeting, proposal, negotiation, won, post_purchase, lost):\n"
        'error:   --stage-map "Awaiting outcome=STAGE"\n'
        'error:   --stage-map "Pending=STAGE"\n'
        'error:   --stage-map "Limbo=STAGE"\n')
    assert _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]
    # the lines as given finish the import
    out = cli.json("import", str(opp), "--preset", "salesforce", "--history", str(hist),
                   "--stage-map", "Awaiting outcome=proposal", "--stage-map", "Pending=meeting",
                   "--stage-map", "Limbo=qualification")
    assert (out["added"], out["bad_rows"]) == (5, 0)


def test_every_unknown_stage_gets_its_line(cli, tmp_path: Path) -> None:
    names = [f"Stage {i}" for i in range(1, 13)]
    f = _write(tmp_path, "s.csv", "name,stage\n" + "".join(f"D{n},{n}\n" for n in names))
    err = cli("import", str(f), code=2).stderr
    assert [line for line in err.splitlines() if "--stage-map" in line] == [
        f'error:   --stage-map "{n}=STAGE"' for n in names]


def test_a_stage_name_a_shell_would_read_is_quoted(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "s.csv", 'name,stage\nA,"Say ""yes"" $now"\n')
    err = cli("import", str(f), code=2).stderr
    assert "error:   --stage-map 'Say \"yes\" $now=STAGE'\n" in err


def test_bad_cells_of_both_files_in_one_report(cli, db_path: Path, tmp_path: Path) -> None:
    opp = _write(tmp_path, "Opportunity.csv", OPPORTUNITIES.replace(
        "7564.6845,USD,2026-02-01,2026-01-06", "ten,USD,2026-02-01,2026-13-06").replace(
        "1.2345,KWD,2026-03-01,2026-01-08", "1.2345,KWDX,2026-03-01,2026-01-08"))
    hist = _write(tmp_path, "OpportunityHistory.csv", HISTORY.replace(
        "O2,2026-01-06 10:00:00", "O2,yesterday").replace(",149999.5,", ",-5,").replace(
        "1.2355,2026-03-01,20", "1.2355,2026-03-01,200"))
    result = cli("import", str(opp), "--preset", "salesforce", "--history", str(hist), code=1)
    assert result.stderr.splitlines() == [
        f"2 bad rows of 5 in {opp}:",
        "  row 3, column 'CreatedDate': '2026-13-06 10:00:00' is not a date (use YYYY-MM-DD, "
        "YYYY-MM-DD HH:MM or M/D/YYYY)",
        "  row 3, column 'Amount': 'ten' is not an amount (write it like 12000 or 12000.50; it "
        "may not be negative)",
        "  row 5, column 'CurrencyIsoCode': currency 'KWDX' is not a three-letter ISO 4217 code "
        "(e.g. EUR)",
        f"3 bad rows in {hist}:",
        "  row 3, column 'CreatedDate': 'yesterday' is not a date (use YYYY-MM-DD, YYYY-MM-DD "
        "HH:MM or M/D/YYYY)",
        *[line for line in result.stderr.splitlines() if line.startswith("  row 4, column "
                                                                          "'Amount': '-5'")],
        "  row 5, column 'Probability': '200' is not a whole percentage from 0 to 100",
        f"error: 5 bad rows (2 in {opp}, 3 in {hist}); nothing was imported (the report above "
        "gives row, column and reason of each)",
    ]
    assert sum(line.startswith("  row 4, column 'Amount': '-5' is not an amount")
               for line in result.stderr.splitlines()) == 1
    report = json.loads(cli("import", str(opp), "--preset", "salesforce", "--history",
                            str(hist), "--json", code=1).stdout)
    assert report["bad_rows"] == 5
    assert [(e["file"], e["row"], e["column"]) for e in report["errors"]] == [
        (str(opp), 3, "CreatedDate"), (str(opp), 3, "Amount"), (str(opp), 5, "CurrencyIsoCode"),
        (str(hist), 3, "CreatedDate"), (str(hist), 4, "Amount"), (str(hist), 5, "Probability")]
    assert _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]


def test_bad_cells_and_unknown_stages_together(cli, db_path: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "in.csv", "name,stage,value\nA,Hot,10\nB,prospecting,ten\n")
    result = cli("import", str(f), code=2)
    assert result.stderr.splitlines() == [
        f"1 bad row of 2 in {f}:",
        "  row 3, column 'value': 'ten' is not an amount (write it like 12000 or 12000.50; it "
        "may not be negative)",
        f"error: 1 bad row in {f}; nothing was imported (the report above gives row, column "
        "and reason of each)",
        f"error: {f}: unknown stage in column 'stage': 'Hot' (row 2)",
        "error: map it by adding to the command (STAGE: a stage of pipeline 'default': "
        "prospecting, qualification, meeting, proposal, negotiation, won, post_purchase, lost):",
        'error:   --stage-map "Hot=STAGE"',
    ]


def test_many_bad_cells_are_capped_and_counted(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "in.csv", "name,value\n" + "".join(f"D{i},x{i}\n" for i in range(60)))
    err = cli("import", str(f), code=1).stderr.splitlines()
    assert err[0] == f"60 bad rows of 60 in {f}:"
    assert len([line for line in err if line.startswith("  row ")]) == common.MAX_REPORTED
    assert err[-2] == f"  ... and {60 - common.MAX_REPORTED} more (60 bad cells in all)"
    out = json.loads(cli("import", str(f), "--json", code=1).stdout)
    assert (out["bad_rows"], out["bad_cells"], len(out["errors"])) == (
        60, 60, common.MAX_REPORTED)  # --json says how many it did not list


# ---------------------------------------------------------------- typed values


@pytest.mark.parametrize(("args", "message"), [
    (["--value", "1.500", "--currency", "PLN"],
     "error: --value 1.500 is ambiguous: 1.50 PLN or 1,500.00 PLN? (write 1.50 or 1500)\n"),
    (["--value", "1,500", "--currency", "EUR"],
     "error: --value 1,500 is ambiguous: 1,500.00 EUR or 1.50 EUR? (write 1500 or 1.50)\n"),
    (["--value", "12.345"],
     "error: --value 12.345 is ambiguous: 12.345 USD or 12,345.00 USD? (write 12345)\n"),
])
def test_add_refuses_a_value_with_two_readings(cli, db_path: Path, args: list[str],
                                               message: str) -> None:
    assert cli("add", "X", *args, code=2).stderr == message
    assert not engines.exists(db_path) or _rows(db_path, "SELECT count(*) FROM deals") == [(0,)]


@pytest.mark.parametrize(("args", "value", "currency"), [
    (["--value", "1.500", "--currency", "KWD"], "1.500", "KWD"),
    (["--value", "1,500", "--currency", "JPY"], "1500", "JPY"),
    (["--value", "0.500", "--currency", "PLN"], "0.50", "PLN"),
    (["--value", "1,500.00", "--currency", "PLN"], "1500.00", "PLN"),
])
def test_add_takes_a_value_with_one_reading(cli, args: list[str], value: str,
                                            currency: str) -> None:
    cli("add", "X", *args)
    deal = cli.json("show", "1")
    assert (deal["value"], deal["currency"]) == (value, currency)


def test_edit_refuses_a_value_with_two_readings(cli, db_path: Path) -> None:
    cli("add", "X", "--value", "100", "--currency", "PLN")
    before = _rows(db_path, "SELECT * FROM events")
    err = cli("edit", "1", "--value", "2.500", code=2).stderr
    assert err == ("error: --value 2.500 is ambiguous: 2.50 PLN or 2,500.00 PLN? "
                   "(write 2.50 or 2500)\n")
    err = cli("edit", "1", "--value", "2.500", "--currency", "JPY", code=2).stderr
    assert err == "error: --value 2.500 is ambiguous: 2.5 JPY or 2,500 JPY? (write 2500)\n"
    assert _rows(db_path, "SELECT * FROM events") == before
    cli("edit", "1", "--value", "2500")
    assert cli.json("show", "1")["value"] == "2500.00"
