"""Issue 12 red-team pass: what the import of amounts and histories, exchange rates and --in
added, attacked as a hostile user would. Each test names the reproducer it guards; each failed
before its fix.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

NOW = "2026-12-01T09:00:00Z"
HUBSPOT = ("Record ID,Deal Name,Deal Stage,Close Date,Deal owner,Amount,Closed Lost Reason,"
           "Last Modified Date,Create Date\n")


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _one_error_line(result) -> None:
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "database error" not in result.stderr


# ---------------------------------------------------------------- rate set


@pytest.mark.parametrize("rate", ["١", "٠.٩٢", "0.9\u0662", "１"])
def test_rate_set_refuses_digits_of_other_scripts(cli, db_path: Path, rate: str) -> None:
    """`pipectl rate set USD EUR ١` (Arabic-Indic one) passed the rate's check (\\d is any
    script's digit) and hit the table's CHECK: 'error: ...: database error: CHECK constraint
    failed: rate GLOB ...', exit 1. It is a usage error, one line, nothing written."""
    cli("list")
    before = _dump(db_path)
    result = cli("rate", "set", "USD", "EUR", rate, "--at", "2026-01-01", code=2)
    _one_error_line(result)
    assert f"rate {rate!r} is not a rate" in result.stderr
    assert _dump(db_path) == before


def test_a_json_export_with_a_rate_in_another_script_is_refused(cli, db_path: Path,
                                                                 tmp_path: Path) -> None:
    """The same rate in a pipectl JSON export is refused as a bad rate, not a database error."""
    cli("rate", "set", "USD", "EUR", "0.92", "--at", "2026-01-01")
    exported = tmp_path / "x.json"
    cli("export", "--format", "json", "--events", "-o", str(exported))
    doc = json.loads(exported.read_text())
    doc["rates"][0]["rate"] = "٠.٩٢"
    exported.write_text(json.dumps(doc), encoding="utf-8")
    other = type(cli)(tmp_path / "other.db")
    other("list")
    before = _dump(other.db)
    result = other("import", str(exported), code=2)
    _one_error_line(result)
    assert "(rate 1: rate '٠.٩٢' is not a rate); nothing was imported" in result.stderr
    assert _dump(other.db) == before


# ---------------------------------------------------------------- snapshots out of order

NEWER = HUBSPOT + (
    "101,Alpha,Closed: won,2023-05-01 10:00,Owner 1,5000,,2023-05-02 10:00,2023-03-01 10:00\n"
    "102,Beta,Closed: lost,2023-04-20 10:00,Owner 2,800,gone quiet,2023-04-21 10:00,"
    "2023-03-02 10:00\n"
    "103,Gamma,Opportunity identified,2023-06-30 10:00,Owner 1,300,,2023-05-10 10:00,"
    "2023-03-03 10:00\n"
)
OLDER = HUBSPOT + (
    "101,Alpha,Opportunity identified,2023-05-01 10:00,Owner 1,4000,,2023-04-01 10:00,"
    "2023-03-01 10:00\n"
    "102,Beta,Opportunity identified,2023-04-20 10:00,Owner 2,700,,2023-03-30 10:00,"
    "2023-03-02 10:00\n"
    "103,Gamma,Opportunity identified,2023-06-30 10:00,Owner 1,250,,2023-03-31 10:00,"
    "2023-03-03 10:00\n"
)


def _state(cli) -> dict[str, tuple[str, str | None]]:
    return {d["ref"]: (d["stage"], d["value"]) for d in cli.json("list", "--status", "all")}


def test_an_older_snapshot_imported_after_a_newer_one_never_reopens_a_closed_deal(
        cli, tmp_path: Path) -> None:
    """HubSpot exports imported newest first: the 04-03 file after the 05-16 one reopened
    deals the later file shows won or lost ('reopened' at their close, 5 of the real files'
    deals) and set a won deal's value to the older one's, so the database ended as the
    oldest file said. A row last changed before its deal closed in the database leaves the
    deal's stage and value alone, and the summary says so."""
    newer, older = _write(tmp_path, "new.csv", NEWER), _write(tmp_path, "old.csv", OLDER)
    cli("import", str(newer))
    assert _state(cli) == {"101": ("won", "5000.00"), "102": ("lost", "800.00"),
                           "103": ("prospecting", "300.00")}
    result = cli("import", str(older))
    assert ("2 rows were last changed before their deals closed in the database: older than "
            "what the database holds, their stages and values were left as they are"
            ) in result.stdout
    # the closed deals are as the newer file says; the open one took the older row's value
    # (nothing tells pipectl when an open deal's value was set)
    assert _state(cli) == {"101": ("won", "5000.00"), "102": ("lost", "800.00"),
                           "103": ("prospecting", "250.00")}
    report = cli.json("report")
    assert report["deals"] == {"open": 1, "won": 1, "lost": 1, "total": 3}
    assert report["won"]["value"] == {"USD": "5000.00"}
    kinds = [e["kind"] for d in ("1", "2") for e in cli.json("show", d)["events"]]
    assert "reopened" not in kinds


def test_the_oldest_first_order_is_unchanged(cli, tmp_path: Path) -> None:
    """The rule above changes nothing when snapshots come in order: the older file, then the
    newer one, closes the deals at the newer file's times."""
    newer, older = _write(tmp_path, "new.csv", NEWER), _write(tmp_path, "old.csv", OLDER)
    cli("import", str(older))
    result = cli("import", str(newer))
    assert "older than what the database holds" not in result.stdout
    assert _state(cli) == {"101": ("won", "5000.00"), "102": ("lost", "800.00"),
                           "103": ("prospecting", "300.00")}


def test_a_crm_file_imported_again_does_not_reopen_a_deal_lost_in_pipectl(
        cli, tmp_path: Path) -> None:
    """A deal lost with `pipectl lose` after the CRM's last change to it was reopened by the
    next import of the same (or an as old) CRM file: the CRM had not yet seen the loss."""
    older = _write(tmp_path, "old.csv", OLDER)
    cli("import", str(older))
    cli("lose", "1", "--reason", "chose a competitor")
    result = cli("import", str(older), "--json")
    out = json.loads(result.stdout)
    assert out["warnings"] == [{
        "count": 1,
        "text": "row was last changed before its deal closed in the database: older than what "
                "the database holds, its stage and value were left as they are"}]
    deal = cli.json("show", "1")
    assert deal["stage"] == "lost" and deal["lost_reason"] == "chose a competitor"


# ---------------------------------------------------------------- --history's currencies


def test_a_history_amount_error_says_its_currency_cell_was_bad(cli, db_path: Path,
                                                               tmp_path: Path) -> None:
    """A --history row with a bad CurrencyIsoCode ('zz') and a bad amount said the amount was
    'read in USD, the row's currency cell names none': it named one, a bad one. The amount is
    read in its deal's currency, and the reason says why."""
    deals = _write(tmp_path, "opp.csv",
                   "Id,Name,StageName,Amount,CurrencyIsoCode,CreatedDate\n"
                   "O1,Alpha,Prospecting,100,COP,2025-01-01 10:00:00\n")
    history = _write(tmp_path, "hist.csv",
                     "OpportunityId,CreatedDate,StageName,Amount,CurrencyIsoCode\n"
                     "O1,2025-01-01 10:00:00,Prospecting,1e5,zz\n")
    cli("list")
    before = _dump(db_path)
    result = cli("import", str(deals), "--preset", "salesforce", "--history", str(history),
                 "--json", code=1)
    errors = json.loads(result.stdout)["errors"]
    assert errors == [
        {"file": str(history), "row": 2, "column": "CurrencyIsoCode",
         "reason": "currency 'zz' is not a three-letter ISO 4217 code (e.g. EUR)"},
        {"file": str(history), "row": 2, "column": "Amount",
         "reason": "'1e5' is not an amount (write it like 12000 or 12000.50; it may not be "
                   "negative) (read in COP, its deal's currency in the deals file: the row's "
                   "currency cell is not a currency code)"},
    ]
    assert _dump(db_path) == before
