"""list's totals and date filters, forecast's blind spots, next's overdue close dates (issue 12).

Every scenario is written out below with the figures it must give, worked by hand: the deals
are few enough to add up on paper. "Now" is 2026-12-10 09:00 UTC throughout.
"""

from __future__ import annotations

import json

import pytest

from pipectl.domain.pipeline import DEFAULT
from pipectl.views.table import width

NOW = "2026-12-10T09:00:00Z"


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    return NOW


# ---------------------------------------------------------------- list


@pytest.fixture
def deals(cli, now):
    """Four open deals in two currencies, two won and one lost, with closings on the edges of
    the ranges the tests ask for."""
    cli("add", "Sao Mai rollout", "--company", "Công ty Sao Mai", "--value", "18000",
        "--currency", "EUR", "--close", "2026-12-15", "--owner", "Anna", "--at", "2026-10-01")
    cli("add", "Kraków pilot", "--value", "4500.50", "--currency", "EUR", "--stage", "meeting",
        "--prequalified", "referred", "--at", "2026-10-02")
    cli("add", "Big US", "--value", "30000", "--close", "2026-11-20", "--at", "2026-10-03")
    cli("add", "No value", "--at", "2026-10-03")
    cli("add", "Won Oct", "--value", "12000", "--stage", "proposal", "--prequalified", "known",
        "--close", "2026-10-20", "--at", "2026-09-01")
    cli("advance", "5", "--to", "won", "--at", "2026-10-01")  # exactly at a range's start
    cli("add", "Lost Nov", "--value", "7000", "--currency", "EUR", "--close", "2026-12-24",
        "--at", "2026-09-02")
    cli("lose", "6", "--reason", "price", "--at", "2026-11-30T23:59:59Z")  # just before an end
    cli("add", "Won Dec", "--value", "5000", "--stage", "proposal", "--prequalified", "known",
        "--at", "2026-09-03")
    cli("advance", "7", "--to", "won", "--at", "2026-12-01")  # exactly at a range's end
    return cli


def ids(cli, *args: str) -> list[int]:
    return [d["id"] for d in cli.json("list", *args)]


def test_list_ends_with_totals_per_currency_of_every_deal_matching(deals) -> None:
    out = deals("list").stdout.splitlines()
    assert out[-3:] == [
        "4 deals, per currency:",
        "  22,500.50 EUR  2 deals",
        "  30,000.00 USD  2 deals (1 without a value)",
    ]
    # cut by --limit: says so, and the totals are still those of all four
    out = deals("list", "--limit", "3", "--sort", "age").stdout.splitlines()
    assert out[-3:] == [
        "3 of 4 deals (--limit 0 shows all); all 4, per currency:",
        "  22,500.50 EUR  2 deals",
        "  30,000.00 USD  2 deals (1 without a value)",
    ]
    assert sum(line.startswith("│") for line in out) == 3
    # one currency: one line
    assert deals("list", "--status", "won").stdout.splitlines()[-1] == "2 deals: 17,000.00 USD"
    assert deals("list", "--owner", "Anna").stdout.splitlines()[-1] == "1 deal: 18,000.00 EUR"
    assert deals("list", "--search", "No value").stdout.splitlines()[-1] == (
        "1 deal, none with a value")


def test_list_json_stays_a_bare_array_and_totals_asks_for_an_object(deals) -> None:
    bare = deals.json("list", "--limit", "3", "--sort", "age")
    assert [d["id"] for d in bare] == [1, 2, 3]
    out = deals.json("list", "--limit", "3", "--sort", "age", "--totals")
    assert out == {
        "deals": bare,  # the same deal objects, with every key
        "total": 4,
        "shown": 3,
        "totals": {
            "EUR": {"count": 2, "value": "22500.50", "without_value": 0},
            "USD": {"count": 2, "value": "30000.00", "without_value": 1},
        },
    }
    # exactly what json.dumps of the whole object prints, though written deal by deal
    text = deals("list", "--limit", "3", "--sort", "age", "--json", "--totals").stdout
    assert text == json.dumps(out, ensure_ascii=False, indent=2) + "\n"
    empty = deals("list", "--search", "nobody", "--json", "--totals").stdout
    assert empty == json.dumps({"deals": [], "total": 0, "shown": 0, "totals": {}},
                               indent=2) + "\n"
    # --totals without --json changes nothing: the table always ends with the totals
    assert deals("list", "--totals").stdout == deals("list").stdout


def test_closed_range_is_half_open_and_lists_won_and_lost(deals) -> None:
    # deal 5 won at 10-01 00:00 (the start: in), deal 6 lost at 11-30 23:59:59 (in), deal 7
    # won at 12-01 00:00 (the end: out)
    assert ids(deals, "--closed", "2026-10-01..2026-12-01") == [6, 5]
    assert ids(deals, "--closed", "2026-10-01..2026-12-01", "--sort", "close") == [5, 6]
    assert ids(deals, "--closed", "2026-12-01..") == [7]
    assert ids(deals, "--closed", "..2026-10-01") == []
    assert ids(deals, "--closed", "..2026-10-02", "--sort", "age") == [5]
    assert ids(deals, "--closed", " 2026-10-01 .. 2026-12-01 ", "--status", "won") == [5]
    assert ids(deals, "--closed", "2026-10-01..2026-12-01", "--status", "LOST") == [6]
    assert ids(deals, "--closed", "2026-10-01..", "--status", "all", "--sort", "age") == [5, 6, 7]
    assert ids(deals, "--status", "closed", "--sort", "age") == [5, 6, 7]
    out = deals("list", "--closed", "2026-10-01..2026-12-01").stdout.splitlines()
    assert out[0] == "Deals closed 2026-10-01 to 2026-12-01 (excluded)"
    assert out[-3:] == ["2 deals, per currency:", "   7,000.00 EUR  1 deal",
                        "  12,000.00 USD  1 deal"]
    out = deals("list", "--closed", "..2026-10-01").stdout
    assert out == "Deals closed before 2026-10-01\n0 deals\n"


def test_created_range_and_both_ranges_together(deals) -> None:
    assert ids(deals, "--created", "2026-10-01..2026-10-03") == [1, 2]
    assert ids(deals, "--created", "2026-10-03..") == [3, 4]
    assert ids(deals, "--created", "..2026-09-03", "--status", "all", "--sort", "age") == [5, 6]
    assert ids(deals, "--created", "..2026-09-02", "--closed", "2026-10-01..") == [5]
    out = deals.json("list", "--created", "2026-10-01..2026-10-03", "--json", "--totals")
    assert out["totals"] == {"EUR": {"count": 2, "value": "22500.50", "without_value": 0}}
    head = deals("list", "--created", "2026-10-03..", "--closed", "2026-10-01..",
                 "--status", "all").stdout.splitlines()[0]
    assert head == "Deals closed from 2026-10-01, created from 2026-10-03"


def test_the_close_column_shows_when_a_closed_deal_closed(deals, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # at 80 the Close column gives way (test_widths.py)
    out = deals("list", "--status", "all", "--sort", "close").stdout.splitlines()
    assert all(width(line) <= 120 for line in out), out
    rows = [line for line in out if line.startswith("│")]
    close = [c.strip() for c in out[1].split("┃")].index("Close")
    # won 10-01, expected 11-20, lost 11-30, won 12-01, expected 12-15, then none
    dates = [line.split("│")[close].strip() for line in rows]
    assert dates == ["2026-10-01", "2026-11-20", "2026-11-30", "2026-12-01", "2026-12-15",
                     "", ""]
    assert [int(line.split("│")[1]) for line in rows] == [5, 3, 6, 7, 1, 2, 4]
    assert out[-3:] == [
        "7 deals, per currency:",
        "  29,500.50 EUR  3 deals",
        "  47,000.00 USD  4 deals (1 without a value)",
    ]


@pytest.mark.parametrize(("given", "said"), [
    ("2026-10-01", "error: --closed '2026-10-01' is not a range FROM..TO"),
    ("..", "error: --closed '..' gives neither end"),
    ("2026-13-01..", "error: --closed '2026-13-01..': '2026-13-01' is not a date (YYYY-MM-DD)"),
    ("2026-10-01..q4", "error: --closed '2026-10-01..q4': 'q4' is not a date (YYYY-MM-DD)"),
    ("2026-12-01..2026-10-01", "error: --closed '2026-12-01..2026-10-01': 2026-10-01 is not "
     "after 2026-12-01"),
    ("2026-10-01..2026-10-01", "error: --closed '2026-10-01..2026-10-01': 2026-10-01 is not "
     "after 2026-10-01"),
    ("2026-10-01..2026-11-01..2026-12-01", "error: --closed '2026-10-01..2026-11-01..2026-12-01' "
     "is not a range FROM..TO"),
    ("1800-01-01..", "error: --closed '1800-01-01..': 1800-01-01 is out of range: dates and "
     "times must lie between 1900-01-01 and 2999-12-31 (UTC)"),
])
def test_a_bad_range_is_a_usage_error(deals, given: str, said: str) -> None:
    err = deals("list", "--closed", given, code=2).stderr.splitlines()
    assert len(err) == 1  # one line: the error, then its hint in parentheses (if any)
    assert err[0] == said or err[0].startswith(said + " ("), err
    created = deals("list", "--created", given, code=2).stderr.splitlines()
    assert created == [line.replace("--closed", "--created") for line in err]


def test_the_hint_of_a_bad_range_shows_one(deals) -> None:
    err = deals("list", "--closed", "2026-10-01", code=2).stderr
    assert err == ("error: --closed '2026-10-01' is not a range FROM..TO (give FROM..TO as "
                   "dates, TO excluded: 2026-10-01..2027-01-01 is the fourth quarter; either "
                   "end may be left out (2026-10-01.., ..2027-01-01))\n")


def test_the_hint_of_an_empty_range_says_the_end_is_excluded(deals) -> None:
    err = deals("list", "--closed", "2026-10-01..2026-10-01", code=2).stderr
    assert "TO is excluded (2026-10-01..2026-10-02 is the one day)" in err


def test_closed_and_status_open_contradict(deals) -> None:
    err = deals("list", "--closed", "2026-10-01..", "--status", "open", code=2).stderr
    assert err == ("error: --closed lists deals that closed, and --status open has none "
                   "(leave --status out (won and lost deals), or say won or lost)\n")


# ---------------------------------------------------------------- forecast


@pytest.fixture
def december(cli, now):
    """As December 2026 began, deals 1 and 8 were forecast for it; since then 2 moved in, 3 got
    a date in it, 4 is new and 9 was reopened. Deals 5, 6 and 7 have no close date."""
    cli("add", "In forecast", "--value", "20000", "--close", "2026-12-15", "--at", "2026-11-01")
    cli("add", "Moves in", "--value", "15000", "--close", "2027-01-20", "--at", "2026-11-01")
    cli("edit", "2", "--close", "2026-12-20", "--at", "2026-12-03")
    cli("add", "Gets a date", "--value", "5000", "--currency", "EUR", "--at", "2026-11-02")
    cli("edit", "3", "--close", "2026-12-28", "--at", "2026-12-04")
    cli("add", "New one", "--value", "15000", "--close", "2026-12-22", "--at", "2026-12-05")
    cli("add", "Undated", "--value", "61500", "--at", "2026-11-05")
    cli("add", "Undated EUR", "--value", "1000", "--currency", "EUR", "--stage", "meeting",
        "--prequalified", "known", "--at", "2026-11-05")
    cli("add", "Undated, no value", "--at", "2026-11-05")
    cli("add", "Moved out", "--value", "9000", "--close", "2026-12-10", "--at", "2026-11-01")
    cli("edit", "8", "--close", "2027-02-01", "--at", "2026-12-02")
    cli("add", "Reopened", "--value", "3000", "--close", "2026-12-18", "--at", "2026-11-01")
    cli("lose", "9", "--reason", "no budget", "--at", "2026-11-20")
    cli("reopen", "9", "--at", "2026-12-06")
    cli("add", "Won, no date", "--value", "1000", "--stage", "proposal", "--prequalified", "x",
        "--at", "2026-11-01")
    cli("advance", "10", "--to", "won", "--at", "2026-11-10")  # closed: not a blind spot
    return cli


def _added(deal_id: int, name: str, value: str, currency: str, close: str, then: str | None,
           was: str) -> dict:
    return {"id": deal_id, "name": name, "owner": None, "value": value, "currency": currency,
            "close_date": close, "close_date_then": then, "was": was}


NO_CLOSE_DATE = {
    "count": 3, "without_value": 1,
    "value": {"EUR": "1000.00", "USD": "61500.00"},
    "weighted_value": {"EUR": "400.00", "USD": "6150.00"},  # meeting 40 %, prospecting 10 %
    "deals": [5, 6, 7],
}


def test_forecast_json_counts_deals_without_a_close_date_and_those_added(december) -> None:
    out = december.json("forecast", "--from", "2026-11-01", "--to", "2027-01-01")
    assert out["no_close_date"] == NO_CLOSE_DATE
    nov, dec, jan = out["periods"]
    assert (nov["state"], nov["added"]) == ("over", None)
    assert (jan["state"], jan["added"]) == ("future", None)
    assert dec == {
        "period": "2026-12", "from": "2026-12-01", "to": "2027-01-01", "state": "current",
        "forecast_as_of": "2026-11-30T23:59:59Z",
        "forecast": {"count": 2, "without_value": 0, "value": {"USD": "29000.00"},
                     "weighted_value": {"USD": "2900.00"}, "deals": [1, 8]},
        "actual": {"count": 0, "without_value": 0, "value": {}, "deals": [],
                   "from_forecast": {"count": 0, "without_value": 0, "value": {}}},
        "slipped": None,
        "added": {
            "count": 4, "without_value": 0,
            "value": {"EUR": "5000.00", "USD": "33000.00"},
            "weighted_value": {"EUR": "500.00", "USD": "3300.00"},
            # by currency, then largest value first: values in two currencies are not ranked
            "deals": [
                _added(3, "Gets a date", "5000.00", "EUR", "2026-12-28", None, "undated"),
                _added(2, "Moves in", "15000.00", "USD", "2026-12-20", "2027-01-20", "moved"),
                _added(4, "New one", "15000.00", "USD", "2026-12-22", None, "new"),
                _added(9, "Reopened", "3000.00", "USD", "2026-12-18", "2026-12-18", "closed"),
            ],
        },
    }
    # deal 8 moved out of December after it began: still in its forecast, not added
    assert 8 not in [d["id"] for d in dec["added"]["deals"]]


def test_forecast_by_quarter_and_as_of_before_the_moves(december) -> None:
    q = december.json("forecast", "--by", "quarter", "--from", "2026-10-01", "--to",
                      "2026-12-31")["periods"][0]
    # Q4 began on 10-01, before any of these deals existed: all open ones dated in Q4 now
    # (1, 2, 3, 4, 9; deal 8 moved to February) were added since
    assert [d["id"] for d in q["added"]["deals"]] == [3, 1, 2, 4, 9]
    assert {d["was"] for d in q["added"]["deals"]} == {"new"}
    # as of 12-02, before deal 2 moved in, only deal 8's move out has happened
    dec = december.json("forecast", "--as-of", "2026-12-02T12:00:00Z", "--from", "2026-12-01",
                        "--to", "2026-12-01")
    assert dec["periods"][0]["added"]["count"] == 0
    assert dec["no_close_date"]["deals"] == [3, 5, 6, 7]  # deal 3 had no date yet


def test_forecast_terminal_and_csv_show_the_blind_spots(december, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = december("forecast", "--from", "2026-12-01", "--to", "2026-12-01").stdout
    lines = out.splitlines()
    assert all(width(line) <= 80 for line in lines), lines
    assert lines[0] == "Forecast versus actual (as of 2026-12-10 09:00 UTC)"
    assert lines[4] == ("│ 2026-12 │ current │     2 │ 29,000.00 USD │ 2,900.00 USD │   - │"
                        "         │")
    assert lines[6:] == [
        "2026-12: added since the period began: 4 deals, 5,000.00 EUR + 33,000.00 USD",
        "  (weighted 500.00 EUR + 3,300.00 USD)",
        "  #3 Gets a date  5,000.00 EUR  close none -> 2026-12-28 (had none)",
        "  #2 Moves in  15,000.00 USD  close 2027-01-20 -> 2026-12-20 (moved in)",
        "  #4 New one  15,000.00 USD  close none -> 2026-12-22 (new)",
        "  #9 Reopened  3,000.00 USD  close 2026-12-18, not moved (reopened)",
        "No close date: 3 open deals, 1,000.00 EUR + 61,500.00 USD (weighted 400.00 EUR +",
        "  6,150.00 USD), 1 without a value; in no period's forecast",
        "Forecast: deals open when the period began, expected to close in it. Won: all",
        "  deals won in the period.",
    ]
    monkeypatch.delenv("COLUMNS")  # piped: one line each, for grep
    piped = december("forecast", "--from", "2026-12-01", "--to", "2026-12-01").stdout
    assert ("No close date: 3 open deals, 1,000.00 EUR + 61,500.00 USD (weighted 400.00 EUR + "
            "6,150.00 USD), 1 without a value; in no period's forecast\n") in piped
    csv_out = december("forecast", "--from", "2026-12-01", "--to", "2026-12-01",
                       "--csv").stdout.splitlines()
    assert csv_out == [
        "period,from,to,state,currency,forecast_value,weighted_value,won_value,"
        "won_from_forecast_value,forecast_deals,won_deals,slipped_deals,added_value,added_deals",
        "2026-12,2026-12-01,2027-01-01,current,EUR,,,0.00,0.00,2,0,,5000.00,4",
        "2026-12,2026-12-01,2027-01-01,current,USD,29000.00,2900.00,0.00,0.00,2,0,,33000.00,4",
        "no_close_date,,,,EUR,1000.00,400.00,,,3,,,,",
        "no_close_date,,,,USD,61500.00,6150.00,,,3,,,,",
    ]


def test_forecast_says_so_when_nothing_is_added_or_undated(cli, now) -> None:
    cli("add", "Dated", "--value", "100", "--close", "2026-12-20", "--at", "2026-11-01")
    cli("add", "Won undated", "--value", "100", "--stage", "proposal", "--prequalified", "x",
        "--at", "2026-11-01")
    cli("advance", "2", "--to", "won", "--at", "2026-12-02")
    out = cli("forecast", "--from", "2026-12-01", "--to", "2026-12-01").stdout.splitlines()
    assert out[-3:-1] == ["2026-12: added since the period began: no deal",
                          "No close date: every open deal has one"]
    assert cli.json("forecast")["no_close_date"] == {
        "count": 0, "without_value": 0, "value": {}, "weighted_value": {}, "deals": []}


def test_forecast_of_one_pipeline_names_a_deal_moved_in_from_another(cli, now,
                                                                     tmp_path) -> None:
    toml = tmp_path / "agency.toml"
    toml.write_text('name = "Agency"\nchecklist = ["budget"]\nstages = [\n'
                    '  { key = "lead", label = "Lead", probability = 5 },\n'
                    '  { key = "signed", label = "Signed", kind = "won" },\n]\n')
    cli("pipeline", "apply", str(toml))
    cli("add", "Elsewhere", "--pipeline", "Agency", "--value", "4000", "--close", "2026-12-12",
        "--at", "2026-11-01")
    cli("move", "1", "--pipeline", "default", "--at", "2026-12-03")
    cli("add", "Home", "--value", "100", "--close", "2026-12-11", "--at", "2026-11-01")
    mine = cli.json("forecast", "--pipeline", "default", "--from", "2026-12-01", "--to",
                    "2026-12-01")
    dec = mine["periods"][0]
    assert dec["forecast"]["deals"] == [2]
    assert dec["added"]["deals"] == [_added(1, "Elsewhere", "4000.00", "USD", "2026-12-12",
                                            "2026-12-12", "other_pipeline")]
    both = cli.json("forecast", "--from", "2026-12-01", "--to", "2026-12-01")["periods"][0]
    assert (both["forecast"]["deals"], both["added"]["count"]) == ([1, 2], 0)


def test_forecast_owner_filter_applies_to_the_blind_spots(december) -> None:
    december("add", "Anna's undated", "--value", "700", "--owner", "Anna", "--at", "2026-12-01")
    out = december.json("forecast", "--owner", "Anna", "--from", "2026-12-01", "--to",
                        "2026-12-01")
    assert out["no_close_date"] == {"count": 1, "without_value": 0, "value": {"USD": "700.00"},
                                    "weighted_value": {"USD": "70.00"}, "deals": [11]}
    assert out["periods"][0]["added"]["count"] == 0


# ---------------------------------------------------------------- next


@pytest.fixture
def closing(cli, now):
    """Open deals whose expected close dates lie before, on and after today (12-10)."""
    for name, value, close in (("Past close", "8000", "2026-12-01"),
                               ("Older past", "1000", "2026-11-15"),
                               ("Today", "5000", "2026-12-10"),
                               ("Soon", "9000", "2026-12-20"),
                               ("Later", "50000", "2027-03-01")):
        cli("add", name, "--value", value, "--close", close, "--at", "2026-12-08")
    # idle since 10-01: stale comes first, whatever its close date
    cli("add", "Stale past", "--value", "100", "--close", "2026-11-01", "--at", "2026-10-01")
    return cli


def test_next_calls_a_passed_close_date_overdue(closing) -> None:
    out = closing.json("next")
    assert [(d["rank"], d["id"], d["why"], d["close_date"]) for d in out["deals"]] == [
        (1, 6, "stale", "2026-11-01"),
        (2, 2, "close_overdue", "2026-11-15"),  # the oldest passed date first
        (3, 1, "close_overdue", "2026-12-01"),
        (4, 3, "closing", "2026-12-10"),  # today has not passed
        (5, 4, "closing", "2026-12-20"),
        (6, 5, "open", "2027-03-01"),
    ]
    assert out["total"] == 6
    assert out["deals"][1] == {
        "rank": 2, "id": 2, "name": "Older past", "owner": None, "stage": "prospecting",
        "value": "1000.00", "currency": "USD", "close_date": "2026-11-15",
        "action": DEFAULT.stage("prospecting").action,
        "source": "stage", "due": None, "why": "close_overdue", "idle_days": 2.38,
    }


def test_next_table_says_close_overdue_with_the_date(closing, monkeypatch) -> None:
    wide = closing("next").stdout
    # the dates in words, from the day of PIPECTL_NOW (2026-12-10), on one line
    assert "close 25 days ago" in wide and "closing today" in wide
    assert "closing Sun 20 Dec" in wide
    monkeypatch.setenv("COLUMNS", "80")
    lines = closing("next").stdout.splitlines()
    assert all(width(line) <= 80 for line in lines), lines
    head = next(line for line in lines if line.startswith("┃"))
    at = [c.strip() for c in head.split("┃")].index("Why")
    why = [line.split("│")[at].strip() for line in lines if line.startswith("│")]
    # at 80 columns too, one line a deal, its dates in words, never cut
    assert why == ["stale", "close 25 days ago", "close 9 days ago", "closing today",
                   "closing Sun 20 Dec", ""]
