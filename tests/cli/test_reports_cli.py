"""pipectl report / forecast / stale / next through the CLI, with exact JSON.

The scenario is domain.md's own example: four deals of $50,000 sit in negotiation, expected
to close in November; one is won in November. The review of November shows $200,000 forecast,
$50,000 won, and the three deals that slipped.
"""

from __future__ import annotations

import pytest

from pipectl.domain.pipeline import DEFAULT


@pytest.fixture
def november(cli):
    for name in ("Deal A", "Deal B", "Deal C", "Deal D"):
        cli("add", name, "--value", "50000", "--stage", "negotiation", "--prequalified",
            "met at the trade fair", "--close", "2025-11-20", "--at", "2025-10-01")
    cli("advance", "1", "--to", "won", "--at", "2025-11-14")
    return cli


def _slipped(deal_id: int, name: str) -> dict:
    return {
        "id": deal_id, "name": name, "owner": None, "value": "50000.00", "currency": "USD",
        "close_date_then": "2025-11-20", "status_after": "open",
        "close_date_after": "2025-11-20",
    }


def test_forecast_versus_actual_of_domain_example(november):
    out = november.json("forecast", "--from", "2025-11-01", "--to", "2025-11-30",
                        "--as-of", "2025-12-05")
    assert out == {
        "as_of": "2025-12-05T00:00:00Z",
        "by": "month",
        "owner": None,
        "periods": [{
            "period": "2025-11",
            "from": "2025-11-01",
            "to": "2025-12-01",
            "state": "over",
            "forecast_as_of": "2025-10-31T23:59:59Z",
            "forecast": {
                "count": 4, "without_value": 0, "value": {"USD": "200000.00"},
                "weighted_value": {"USD": "160000.00"}, "deals": [1, 2, 3, 4],
            },
            "actual": {
                "count": 1, "without_value": 0, "value": {"USD": "50000.00"}, "deals": [1],
                "from_forecast": {"count": 1, "without_value": 0, "value": {"USD": "50000.00"}},
            },
            "slipped": [_slipped(2, "Deal B"), _slipped(3, "Deal C"), _slipped(4, "Deal D")],
            "added": None,  # only the current period has deals added since it began
        }],
        "no_close_date": {"count": 0, "without_value": 0, "value": {}, "weighted_value": {},
                          "deals": []},
    }


def test_forecast_table_and_csv(november):
    out = november("forecast", "--from", "2025-11-01", "--to", "2025-11-30",
                   "--as-of", "2025-12-05").stdout
    assert "200,000.00 USD" in out and "50,000.00 USD" in out
    assert "2025-11: 3 forecast deals slipped" in out
    assert "  #2 Deal B  50,000.00 USD  close 2025-11-20, not moved (open)\n" in out
    november("edit", "3", "--close", "2026-01-15", "--at", "2025-11-25")
    moved = november("forecast", "--from", "2025-11-01", "--to", "2025-11-30",
                     "--as-of", "2025-12-05").stdout
    assert "  #3 Deal C  50,000.00 USD  close 2025-11-20 -> 2026-01-15 (open)\n" in moved
    csv_out = november("forecast", "--from", "2025-11-01", "--to", "2025-11-30",
                       "--as-of", "2025-12-05", "--csv").stdout.splitlines()
    assert csv_out == [
        "period,from,to,state,currency,forecast_value,weighted_value,won_value,"
        "won_from_forecast_value,forecast_deals,won_deals,slipped_deals,added_value,added_deals",
        "2025-11,2025-11-01,2025-12-01,over,USD,200000.00,160000.00,50000.00,50000.00,4,1,3,,",
        "no_close_date,,,,,,,,,0,,,,",
    ]


def _empty(stage: str) -> dict:
    return {"pipeline": "default", "stage": stage, "count": 0, "without_value": 0, "value": {},
            "weighted_value": {}}


def _step(a: str, b: str, reached_from: int, reached_to: int, rate: float) -> dict:
    return {"pipeline": "default", "from": a, "to": b, "reached_from": reached_from,
            "reached_to": reached_to, "rate": rate}


def test_report_json_exact(november):
    out = november.json("report", "--as-of", "2025-12-05")
    assert out == {
        "as_of": "2025-12-05T00:00:00Z",
        "window": {"from": None, "to": None, "label": "all time"},
        "owner": None,
        "deals": {"open": 3, "won": 1, "lost": 0, "total": 4},
        "flow": {"created": 4, "qualified": 4, "won": 1, "lost": 0},
        "won": {"count": 1, "without_value": 0, "with_value": {"USD": 1},
                "value": {"USD": "50000.00"}, "average": {"USD": "50000.00"}},
        "lost": {"count": 0, "without_value": 0, "with_value": {}, "value": {}},
        "pipeline": {
            "count": 3, "without_value": 0, "value": {"USD": "150000.00"},
            "weighted_value": {"USD": "120000.00"},
            "stages": [
                _empty("prospecting"), _empty("qualification"), _empty("meeting"),
                _empty("proposal"),
                {"pipeline": "default", "stage": "negotiation", "count": 3, "without_value": 0,
                 "value": {"USD": "150000.00"}, "weighted_value": {"USD": "120000.00"}},
            ],
        },
        "close_rate": {"rate": 0.25, "won": 1, "qualified": 4},
        "win_rate": {"rate": 1.0, "won": 1, "lost": 0},
        "conversion": [
            _step("prospecting", "qualification", 4, 4, 1.0),
            _step("qualification", "meeting", 4, 4, 1.0),
            _step("meeting", "proposal", 4, 4, 1.0),
            _step("proposal", "negotiation", 4, 4, 1.0),
            _step("negotiation", "won", 4, 1, 0.25),
            _step("won", "post_purchase", 1, 0, 0.0),
        ],
        # 2025-10-01 -> 2025-11-14: 44 days
        "sales_cycle": {"count": 1, "median_days": 44.0, "mean_days": 44.0},
        # nothing imported: no deal of unknown qualification, start or close time
        "left_out": {"unknown_qualification": 0, "unknown_start": 0, "unknown_close": 0},
        "time_in_stage": [
            *({"pipeline": "default", "stage": s, "completed_stays": 0, "median_days": None,
               "now": 0, "now_median_age_days": None, "now_oldest_age_days": None}
              for s in ("prospecting", "qualification", "meeting", "proposal")),
            # three deals there since 10-01: 65 days on 12-05
            {"pipeline": "default", "stage": "negotiation", "completed_stays": 1,
             "median_days": 44.0, "now": 3, "now_median_age_days": 65.0,
             "now_oldest_age_days": 65.0},
        ],
        # 3 open x 1/1 x 50,000.00 / 44 days = 3,409.0909...
        "velocity": {"USD": {"per_day": "3409.09", "open_deals": 3, "win_rate": 1.0,
                             "won_deals": 1, "average_won_value": "50000.00",
                             "mean_cycle_days": 44.0}},
        "lost_reasons": {"by_reason": [], "by_stage": []},
    }


def test_report_period_flags(november):
    out = november.json("report", "--month", "--in", "2025-11-10", "--as-of", "2025-12-05")
    assert out["window"] == {"from": "2025-11-01", "to": "2025-12-01", "label": "2025-11"}
    assert out["flow"] == {"created": 0, "qualified": 0, "won": 1, "lost": 0}
    assert out["close_rate"] == {"rate": None, "won": 0, "qualified": 0}  # null, never 0
    # without --in: the period containing the as-of moment
    out = november.json("report", "--quarter", "--as-of", "2025-10-15")
    assert out["window"]["label"] == "2025-Q4"
    assert out["deals"] == {"open": 4, "won": 0, "lost": 0, "total": 4}
    assert out["win_rate"]["rate"] is None
    assert out["velocity"]["USD"]["per_day"] is None  # no win yet: n/a, never 0


def test_report_owner_and_window(cli):
    cli("add", "Mine", "--value", "100", "--owner", "Anna", "--at", "2025-03-01")
    cli("add", "Yours", "--value", "100", "--currency", "EUR", "--owner", "Ben",
        "--at", "2025-03-02")
    out = cli.json("report", "--owner", "Anna", "--from", "2025-03-01", "--to", "2025-04-01",
                   "--as-of", "2025-05-01")
    assert out["owner"] == "Anna"
    assert out["deals"]["total"] == 1
    assert out["pipeline"]["value"] == {"USD": "100.00"}
    assert out["window"]["label"] == "2025-03-01 to 2025-04-01 (excluded)"


def test_report_table_has_funnel_and_explain(november):
    out = november("report", "--as-of", "2025-12-05", "--explain").stdout
    assert "Stage conversion" in out
    assert "█" in out  # the funnel's bars
    assert "Close rate = won / qualified" in out
    assert "1 / 4 = 25.0%" in out
    assert "qualified: #1, #2, #3, #4; of which won: #1" in out
    data = november.json("report", "--as-of", "2025-12-05", "--explain")
    assert data["explain"]["deal_sets"]["qualified_and_won"] == {"deals": [1], "count": 1}
    assert data["explain"]["figures"]["close_rate"] == "qualified_in_window"


def test_report_csv(november):
    rows = november("report", "--as-of", "2025-12-05", "--csv").stdout.splitlines()
    assert rows[0] == "metric,stage,currency,value"
    assert "close_rate,,,0.25" in rows
    assert "pipeline_value,negotiation,USD,150000.00" in rows
    assert "weighted_value,total,USD,120000.00" in rows
    assert "velocity_per_day,,USD,3409.09" in rows


def test_stale_and_next_json(november):
    november("note", "2", "called", "--next", "send the contract", "--due", "2025-12-01",
             "--at", "2025-11-25")
    out = november.json("stale", "--as-of", "2025-12-05")
    assert out == {
        "as_of": "2025-12-05T00:00:00Z",
        "total": 2,
        "deals": [
            {"id": i, "name": f"Deal {c}", "owner": None, "stage": "negotiation",
             "value": "50000.00", "currency": "USD", "last_event_at": "2025-10-01T00:00:00Z",
             "idle_days": 65.0, "threshold_days": 14}
            for i, c in ((3, "C"), (4, "D"))
        ],
    }
    assert november.json("stale", "--as-of", "2025-12-05", "--days", "negotiation=70") == {
        "as_of": "2025-12-05T00:00:00Z", "total": 0, "deals": []}
    one = november.json("stale", "--as-of", "2025-12-05", "--limit", "1")
    assert (one["total"], [d["id"] for d in one["deals"]]) == (2, [3])
    assert "2 stale deals (the oldest 1 shown" in november(
        "stale", "--as-of", "2025-12-05", "--limit", "1").stdout
    nxt = november.json("next", "--as-of", "2025-12-05")
    action = DEFAULT.stage("negotiation").action
    assert nxt == {
        "as_of": "2025-12-05T00:00:00Z",
        "total": 3,
        "deals": [
            {"rank": 1, "id": 2, "name": "Deal B", "owner": None, "stage": "negotiation",
             "value": "50000.00", "currency": "USD", "close_date": "2025-11-20",
             "action": "send the contract", "source": "logged", "due": "2025-12-01",
             "why": "overdue", "idle_days": 10.0},
            *({"rank": r, "id": i, "name": f"Deal {c}", "owner": None, "stage": "negotiation",
               "value": "50000.00", "currency": "USD", "close_date": "2025-11-20",
               "action": action, "source": "stage", "due": None, "why": "stale",
               "idle_days": 65.0}
              for r, i, c in ((2, 3, "C"), (3, 4, "D"))),
        ],
    }
    table = november("next", "--as-of", "2025-12-05").stdout
    assert "send the contract" in table and "overdue" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--json", "--csv"], "--json and --csv exclude each other"),
        (["report", "--month", "--year"], "give only one of"),
        (["report", "--month", "--from", "2025-01-01"], "exclude each other"),
        (["report", "--in", "2025-01-01"], "--in needs --week"),
        (["report", "--from", "2025-02-01", "--to", "2025-01-01"], "is not after --from"),
        (["report", "--as-of", "yesterday"], "--as-of 'yesterday' is not a valid date"),
        (["forecast", "--by", "week"], "is not month or quarter"),
        (["stale", "--days", "soon"], "is not a number of days"),
        (["stale", "--days", "won=3"], "won is not an open stage"),
        (["next", "--limit", "-1"], "--limit may not be negative"),
        (["stale", "--limit", "-1"], "--limit may not be negative"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, message):
    result = cli(*args, code=2)
    err = result.stderr
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_empty_database(cli):
    out = cli.json("report", "--as-of", "2025-01-01")
    assert out["deals"] == {"open": 0, "won": 0, "lost": 0, "total": 0}
    assert out["close_rate"]["rate"] is None and out["velocity"] == {}
    assert cli.json("next")["deals"] == [] and cli.json("stale")["deals"] == []
    assert "no deal lost" in cli("report").stdout


def test_forecast_by_quarter_counts_only_what_was_known_when_it_began(november):
    # The four deals were logged on 2025-10-01, after Q4 began (its snapshot is taken at
    # 2025-09-30T23:59:59Z): Q4's forecast is empty, but the November win is Q4's actual.
    out = november.json("forecast", "--by", "quarter", "--from", "2025-10-01",
                        "--to", "2025-12-31", "--as-of", "2026-01-05")
    (q4,) = out["periods"]
    assert (q4["period"], q4["state"], q4["forecast_as_of"]) == (
        "2025-Q4", "over", "2025-09-30T23:59:59Z")
    assert q4["forecast"]["count"] == 0 and q4["slipped"] == []
    assert q4["actual"]["value"] == {"USD": "50000.00"}
    assert q4["actual"]["from_forecast"]["count"] == 0


# ---------------------------------------------------------------- several pipelines


@pytest.fixture
def two(cli):
    """tests/store/test_reports.py's scenario of two pipelines (default and Partners)."""
    from tests.engines import connect
    from tests.store.test_reports import build_two

    conn = connect(cli.db)
    try:
        build_two(conn)
    finally:
        conn.close()
    return cli


def test_report_pipeline_option(two):
    whole = two.json("report", "--as-of", "2026-02-01")
    assert whole["pipeline"]["value"] == {"EUR": "8000.00", "USD": "7000.00"}
    assert [(s["pipeline"], s["stage"]) for s in whole["pipeline"]["stages"]][-3:] == [
        ("Partners", "intro"), ("Partners", "pilot"), ("Partners", "contract")]
    assert [x["pipeline"] for x in whole["win_rate"]["by_pipeline"]] == ["default", "Partners"]
    alone = two.json("report", "--as-of", "2026-02-01", "--pipeline", "Partners")
    assert alone["pipeline_name"] == "Partners"
    assert alone["deals"] == {"open": 2, "won": 1, "lost": 2, "total": 5}
    assert [(c["from"], c["rate"]) for c in alone["conversion"]] == [
        ("intro", 0.6), ("pilot", 0.6667), ("contract", 0.5)]
    assert "by_pipeline" not in alone["close_rate"]
    out = two("report", "--as-of", "2026-02-01").stdout
    assert "Stage conversion in Partners" in out and "Stage conversion in default" in out
    assert "  Partners: Close rate: 50.0% (1 won of 2 qualified)" in out
    assert "Lost at: default/prospecting 1, Partners/intro 1, Partners/contract 1" in out
    rows = two("report", "--as-of", "2026-02-01", "--csv").stdout.splitlines()
    assert rows[0] == "metric,stage,currency,value,pipeline"
    assert "conversion,intro>pilot,,0.6,Partners" in rows
    assert "pipeline_value,total,USD,7000.00," in rows


def test_pipeline_from_the_environment(two, monkeypatch):
    monkeypatch.setenv("PIPECTL_PIPELINE", "partners")
    assert two.json("report", "--as-of", "2026-02-01")["pipeline_name"] == "Partners"
    assert [c["stage"] for c in two.json("board")] == ["intro", "pilot", "contract"]
    assert [d["id"] for d in two.json("next", "--as-of", "2026-02-01")["deals"]] == [5, 8]


def test_board_shows_one_pipeline(two):
    assert [c["stage"] for c in two.json("board")] == [
        "prospecting", "qualification", "meeting", "proposal", "negotiation"]
    board = two.json("board", "--pipeline", "Partners")
    assert [(c["stage"], c["count"], c["deals"]) for c in board] == [
        ("intro", 1, [5]), ("pilot", 1, [8]), ("contract", 0, [])]
    assert two("board", "--pipeline", "Partners").stdout.startswith("Pipeline: Partners\n")
    assert two("board").stdout.startswith("Pipeline: default\n")
    stages = two.json("stages", "--pipeline", "Partners")
    assert stages["pipeline"] == "Partners"
    assert [s["key"] for s in stages["stages"]] == ["intro", "pilot", "contract", "signed", "lost"]


def test_board_of_a_single_pipeline_database_has_no_title(cli):
    cli("add", "A", "--value", "100", "--at", "2026-03-01")
    assert not cli("board").stdout.startswith("Pipeline")


def test_stale_and_next_of_several_pipelines(two):
    out = two.json("stale", "--as-of", "2026-02-01")
    assert [(d["id"], d["pipeline"], d["stage"], d["threshold_days"]) for d in out["deals"]] == [
        (7, "default", "qualification", 14), (5, "Partners", "intro", 7)]
    # --days N: every stage's threshold; STAGE=N: that stage, in whichever pipeline has it
    assert [d["id"] for d in two.json("stale", "--as-of", "2026-02-01", "--days", "5",
                                      "--days", "intro=12")["deals"]] == [7, 8]
    alone = two.json("stale", "--as-of", "2026-02-01", "--pipeline", "Partners")
    assert [d["id"] for d in alone["deals"]] == [5] and "pipeline" not in alone["deals"][0]
    nxt = two.json("next", "--as-of", "2026-02-01")
    assert [(d["id"], d["pipeline"], d["action"]) for d in nxt["deals"]][1:] == [
        (5, "Partners", "Book the introduction call."), (8, "Partners", "Run the pilot.")]
    assert "Partners/intro" in two("next", "--as-of", "2026-02-01").stdout


def test_forecast_pipeline_option(two):
    out = two.json("forecast", "--from", "2026-02-01", "--to", "2026-02-01",
                   "--as-of", "2026-02-15", "--pipeline", "Partners")
    assert out["pipeline_name"] == "Partners"
    assert out["periods"][0]["forecast"]["deals"] == [5]
    other = two.json("forecast", "--from", "2026-01-01", "--to", "2026-01-01",
                     "--as-of", "2026-02-15", "--pipeline", "default")
    assert other["periods"][0]["actual"]["deals"] == [2]  # A2, won 01-20 (P1 is Partners')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--pipeline", "Nope"], "no pipeline named 'Nope'"),
        (["forecast", "--pipeline", "Nope"], "no pipeline named 'Nope'"),
        (["stale", "--pipeline", "Nope"], "no pipeline named 'Nope'"),
        (["next", "--pipeline", "Nope"], "no pipeline named 'Nope'"),
        (["board", "--pipeline", "Nope"], "no pipeline named 'Nope'"),
        (["stale", "--days", "signed=3"], "signed is not an open stage"),
        (["stale", "--days", "banana=3"], "no pipeline has an open stage 'banana'"),
        (["stale", "--days", "banana=3", "--pipeline", "Partners"], "unknown stage 'banana'"),
    ],
)
def test_bad_pipeline_input_is_one_line_exit_2(two, args, message):
    err = two(*args, code=2).stderr
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------- money answers, report --by
#
# A team in the fourth quarter of 2026, as of 2026-12-01 (all pre-qualified when created):
#   1 Alpha    Anna  1,000.00 USD  source web       created 10-01, won 10-20 (19 days)
#   2 Beta     Anna  2,000.00 EUR                   created 10-02, won 11-01 (30 days)
#   3 Gamma    Anna  3,000.01 USD                   created 10-03, won 10-13 (10 days)
#   4 Delta    Ben   5,000.00 USD                   created 10-05 in prospecting (10 %), open
#   5 Epsilon  -     4,000.00 EUR  source web       created 10-06, won 11-10 (35 days)
#   6 Zeta     Cleo    600.00 USD  source referral  created 10-07 in meeting, lost 10-15
#   7 Eta      Anna 10,000.00 USD                   created 10-08 in negotiation (80 %), open
#   8 Old      Ben   7,000.00 USD                   created 06-01, won 06-15 (before Q4)
# Anna's USD wins average 4,000.01 / 2 = 2,000.005: 2,000.00 rounded half to even.

TEAM_NOW = "2026-12-01T09:00:00Z"


@pytest.fixture
def team(cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", TEAM_NOW)
    for args in (
        ("Alpha", "1000", "USD", "negotiation", "2026-10-01", "--owner", "Anna",
         "--source", "web"),
        ("Beta", "2000", "EUR", "proposal", "2026-10-02", "--owner", "Anna"),
        ("Gamma", "3000.01", "USD", "negotiation", "2026-10-03", "--owner", "Anna"),
        ("Delta", "5000", "USD", None, "2026-10-05", "--owner", "Ben"),
        ("Epsilon", "4000", "EUR", "proposal", "2026-10-06", "--source", "web"),
        ("Zeta", "600", "USD", "meeting", "2026-10-07", "--owner", "Cleo",
         "--source", "referral"),
        ("Eta", "10000", "USD", "negotiation", "2026-10-08", "--owner", "Anna"),
        ("Old", "7000", "USD", "proposal", "2026-06-01", "--owner", "Ben"),
    ):
        name, value, currency, stage, when, *more = args
        start = ["--stage", stage, "--prequalified", "referral"] if stage else []
        cli("add", name, "--value", value, "--currency", currency, *start, "--at", when, *more)
    for deal, when in (("8", "2026-06-15"), ("3", "2026-10-13"), ("1", "2026-10-20"),
                       ("2", "2026-11-01"), ("5", "2026-11-10")):
        cli("advance", deal, "--to", "won", "--at", when)
    cli("lose", "6", "--reason", "price", "--at", "2026-10-15")
    return cli


def _won(count: int, with_value: dict, value: dict, average: dict) -> dict:
    return {"count": count, "without_value": 0, "with_value": with_value, "value": value,
            "average": average}


NO_WIN = _won(0, {}, {}, {})
NO_OPEN = {"count": 0, "without_value": 0, "value": {}, "weighted_value": {}}
NO_CYCLE = {"count": 0, "median_days": None, "mean_days": None}
NO_LEFT_OUT = {"unknown_qualification": 0, "unknown_start": 0, "unknown_close": 0}


def test_report_won_lost_and_average_json(team):
    out = team.json("report", "--quarter")
    assert out["won"] == _won(4, {"EUR": 2, "USD": 2}, {"EUR": "6000.00", "USD": "4000.01"},
                              {"EUR": "3000.00", "USD": "2000.00"})
    assert out["lost"] == {"count": 1, "without_value": 0, "with_value": {"USD": 1},
                           "value": {"USD": "600.00"}}
    assert out["pipeline"]["value"] == {"USD": "15000.00"}  # Delta and Eta, open now
    every = team.json("report")  # all time: Old too, 11,000.01 / 3 = 3,666.67
    assert every["won"] == _won(5, {"EUR": 2, "USD": 3}, {"EUR": "6000.00", "USD": "11000.01"},
                                {"EUR": "3000.00", "USD": "3666.67"})
    before = team.json("report", "--quarter", "--in", "2026-07-01", "--as-of", "2026-10-01")
    assert (before["won"], before["lost"]) == (
        NO_WIN, {"count": 0, "without_value": 0, "with_value": {}, "value": {}})


def test_report_won_lost_csv_rows(team):
    rows = team("report", "--quarter", "--csv").stdout.splitlines()
    start = rows.index("won_in_window,,,4")
    assert rows[start:start + 12] == [
        "won_in_window,,,4",
        "lost_in_window,,,1",
        "won_deals_with_value,,EUR,2",
        "won_value,,EUR,6000.00",
        "average_won_value,,EUR,3000.00",
        "won_deals_with_value,,USD,2",
        "won_value,,USD,4000.01",
        "average_won_value,,USD,2000.00",
        "won_without_value,,,0",
        "lost_deals_with_value,,USD,1",
        "lost_value,,USD,600.00",
        "lost_without_value,,,0",
    ]


def test_report_won_lost_table_at_80_columns_and_explain(team, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = team("report", "--quarter", "--explain").stdout
    assert (
        "Won and lost in the window, per currency\n"
        "┏━━━━━━━━━━┳━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━┓\n"
        "┃ Currency ┃ Won ┃ Won value ┃ Average won ┃ Lost ┃ Lost value ┃\n"
        "┡━━━━━━━━━━╇━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━┩\n"
        "│ EUR      │   2 │  6,000.00 │    3,000.00 │    0 │          - │\n"
        "│ USD      │   2 │  4,000.01 │    2,000.00 │    1 │     600.00 │\n"
        "└──────────┴─────┴───────────┴─────────────┴──────┴────────────┘\n"
    ) in out
    assert ("Won value = sum of value of the deals won in the window, per currency\n"
            "  6,000.00 EUR (2 deals); 4,000.01 USD (2 deals); won deals: #1, #2, #3, #5\n") in out
    assert ("  6,000.00 EUR / 2 = 3,000.00 EUR; 4,000.01 USD / 2 = 2,000.00 USD\n") in out
    assert "  600.00 USD (1 deal); lost deals: #6\n" in out
    assert "  15,000.00 USD (2 deals); open deals: #4, #7\n" in out
    data = team.json("report", "--quarter", "--explain")["explain"]
    assert data["figures"]["won_value"] == data["figures"]["average_won"] == "won_in_window"
    assert data["figures"]["lost_value"] == "lost_in_window"
    assert data["deal_sets"]["won_in_window"] == {"deals": [1, 2, 3, 5], "count": 4}
    quiet = team("report", "--quarter", "--in", "2026-07-01", "--as-of", "2026-10-01").stdout
    assert "Won and lost in the window: no deal won or lost." in quiet


def test_report_by_owner_json_exact(team):
    out = team.json("report", "--quarter", "--by", "owner")
    assert out == {
        "as_of": TEAM_NOW,
        "window": {"from": "2026-10-01", "to": "2027-01-01", "label": "2026-Q4"},
        "owner": None,
        "by": "owner",
        "sorted_by": "deals_won",  # EUR and USD were won: amounts are not compared
        "groups": [
            {"group": "Anna",
             "won": _won(3, {"EUR": 1, "USD": 2}, {"EUR": "2000.00", "USD": "4000.01"},
                         {"EUR": "2000.00", "USD": "2000.00"}),
             "win_rate": {"rate": 1.0, "won": 3, "lost": 0},
             "close_rate": {"rate": 0.75, "won": 3, "qualified": 4},  # Eta is open
             "sales_cycle": {"count": 3, "median_days": 19.0, "mean_days": 19.67},
             "pipeline": {"count": 1, "without_value": 0, "value": {"USD": "10000.00"},
                          "weighted_value": {"USD": "8000.00"}},
             "left_out": NO_LEFT_OUT},
            # Ben won Old in June, before the quarter: nothing decided or qualified in it
            {"group": "Ben", "won": NO_WIN,
             "win_rate": {"rate": None, "won": 0, "lost": 0},
             "close_rate": {"rate": None, "won": 0, "qualified": 0},
             "sales_cycle": NO_CYCLE,
             "pipeline": {"count": 1, "without_value": 0, "value": {"USD": "5000.00"},
                          "weighted_value": {"USD": "500.00"}},
             "left_out": NO_LEFT_OUT},
            {"group": "Cleo", "won": NO_WIN,
             "win_rate": {"rate": 0.0, "won": 0, "lost": 1},
             "close_rate": {"rate": 0.0, "won": 0, "qualified": 1},
             "sales_cycle": NO_CYCLE, "pipeline": NO_OPEN, "left_out": NO_LEFT_OUT},
            # the deal without an owner: last, whatever it won
            {"group": None,
             "won": _won(1, {"EUR": 1}, {"EUR": "4000.00"}, {"EUR": "4000.00"}),
             "win_rate": {"rate": 1.0, "won": 1, "lost": 0},
             "close_rate": {"rate": 1.0, "won": 1, "qualified": 1},
             "sales_cycle": {"count": 1, "median_days": 35.0, "mean_days": 35.0},
             "pipeline": NO_OPEN, "left_out": NO_LEFT_OUT},
        ],
        "total": {
            "won": _won(4, {"EUR": 2, "USD": 2}, {"EUR": "6000.00", "USD": "4000.01"},
                        {"EUR": "3000.00", "USD": "2000.00"}),
            "win_rate": {"rate": 0.8, "won": 4, "lost": 1},
            "close_rate": {"rate": 0.6667, "won": 4, "qualified": 6},
            "sales_cycle": {"count": 4, "median_days": 24.5, "mean_days": 23.5},
            "pipeline": {"count": 2, "without_value": 0, "value": {"USD": "15000.00"},
                         "weighted_value": {"USD": "8500.00"}},
            "left_out": NO_LEFT_OUT,
        },
    }
    # the total is the plain report's figures
    whole = team.json("report", "--quarter")
    for key in ("win_rate", "close_rate", "left_out"):
        assert out["total"][key] == whole[key]
    assert out["total"]["won"] == whole["won"]
    assert out["total"]["sales_cycle"] == whole["sales_cycle"]
    assert out["total"]["pipeline"] == {k: v for k, v in whole["pipeline"].items()
                                        if k != "stages"}


def test_report_by_source_and_pipeline(team):
    out = team.json("report", "--quarter", "--by", "source")
    assert [(g["group"], g["won"]["count"], g["won"]["value"], g["win_rate"]["rate"])
            for g in out["groups"]] == [
        ("web", 2, {"EUR": "4000.00", "USD": "1000.00"}, 1.0),  # Alpha, Epsilon
        ("referral", 0, {}, 0.0),  # Zeta, lost
        (None, 2, {"EUR": "2000.00", "USD": "3000.01"}, 1.0),  # Beta, Gamma; Delta, Eta open
    ]
    assert out["groups"][2]["pipeline"]["value"] == {"USD": "15000.00"}
    # --by source within one owner's deals; all time, so Ben's June win counts
    ben = team.json("report", "--by", "source", "--owner", "Ben")
    assert ben["owner"] == "Ben"
    assert [(g["group"], g["won"]["value"], g["pipeline"]["count"]) for g in ben["groups"]] == [
        (None, {"USD": "7000.00"}, 1)]
    # from June to 10-21 every win is in USD (Old; Gamma and Alpha): sorted by won value.
    # Epsilon (no owner) was qualified in the window, won after it.
    usd = team.json("report", "--by", "owner", "--from", "2026-06-01", "--to", "2026-10-21")
    assert usd["sorted_by"] == "won_value"
    assert [(g["group"], g["won"]["value"], g["close_rate"]["rate"])
            for g in usd["groups"]] == [
        ("Ben", {"USD": "7000.00"}, 1.0), ("Anna", {"USD": "4000.01"}, 0.75),
        ("Cleo", {}, 0.0), (None, {}, 1.0)]
    by_pipeline = team.json("report", "--quarter", "--by", "pipeline")
    assert [g["group"] for g in by_pipeline["groups"]] == ["default"]
    assert {k: v for k, v in by_pipeline["groups"][0].items() if k != "group"} == (
        by_pipeline["total"])


def test_report_by_csv(team):
    rows = team("report", "--quarter", "--by", "owner", "--csv").stdout.splitlines()
    assert rows == [
        "owner,currency,deals_won,won_value,average_won_value,win_rate,close_rate,"
        "median_cycle_days,open_deals,open_value,weighted_value",
        "Anna,EUR,1,2000.00,2000.00,1.0,0.75,19.0,0,,",
        "Anna,USD,2,4000.01,2000.00,1.0,0.75,19.0,1,10000.00,8000.00",
        "Ben,USD,0,,,,,,1,5000.00,500.00",
        "Cleo,,0,,,0.0,0.0,,0,,",
        ",EUR,1,4000.00,4000.00,1.0,1.0,35.0,0,,",
    ]
    rows = team("report", "--quarter", "--by", "source", "--csv").stdout.splitlines()
    assert rows[0].startswith("source,currency,")
    assert rows[1:3] == ["web,EUR,1,4000.00,4000.00,1.0,1.0,27.0,0,,",
                         "web,USD,1,1000.00,1000.00,1.0,1.0,27.0,0,,"]


def test_report_by_owner_table_at_80_columns(team, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = team("report", "--quarter", "--by", "owner").stdout
    assert out == (
        "Pipeline report by owner as of 2026-12-01 09:00 UTC; window: 2026-Q4\n"
        "Won in the window, by owner (most deals won first)\n"
        "┏━━━━━━━━━━━━┳━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━┓\n"
        "┃ Owner      ┃ Won ┃    Won value ┃ Win rate ┃ Close rate ┃ Median cycle ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━┩\n"
        "│ Anna       │   3 │ 2,000.00 EUR │   100.0% │      75.0% │         19 d │\n"
        "│            │     │ 4,000.01 USD │          │            │              │\n"
        "├────────────┼─────┼──────────────┼──────────┼────────────┼──────────────┤\n"
        "│ Ben        │   0 │            - │      n/a │        n/a │          n/a │\n"
        "├────────────┼─────┼──────────────┼──────────┼────────────┼──────────────┤\n"
        "│ Cleo       │   0 │            - │     0.0% │       0.0% │          n/a │\n"
        "├────────────┼─────┼──────────────┼──────────┼────────────┼──────────────┤\n"
        "│ (no owner) │   1 │ 4,000.00 EUR │   100.0% │     100.0% │         35 d │\n"
        "├────────────┼─────┼──────────────┼──────────┼────────────┼──────────────┤\n"
        "│ total      │   4 │ 6,000.00 EUR │    80.0% │      66.7% │       24.5 d │\n"
        "│            │     │ 4,000.01 USD │          │            │              │\n"
        "└────────────┴─────┴──────────────┴──────────┴────────────┴──────────────┘\n"
        "Open pipeline as of 2026-12-01 09:00 UTC, by owner\n"
        "┏━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┓\n"
        "┃ Owner      ┃ Open ┃         Value ┃     Weighted ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━┩\n"
        "│ Anna       │    1 │ 10,000.00 USD │ 8,000.00 USD │\n"
        "├────────────┼──────┼───────────────┼──────────────┤\n"
        "│ Ben        │    1 │  5,000.00 USD │   500.00 USD │\n"
        "├────────────┼──────┼───────────────┼──────────────┤\n"
        "│ Cleo       │    0 │             - │            - │\n"
        "├────────────┼──────┼───────────────┼──────────────┤\n"
        "│ (no owner) │    0 │             - │            - │\n"
        "├────────────┼──────┼───────────────┼──────────────┤\n"
        "│ total      │    2 │ 15,000.00 USD │ 8,500.00 USD │\n"
        "└────────────┴──────┴───────────────┴──────────────┘\n"
    )


def test_report_by_fits_80_columns_with_long_names_and_amounts(cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", TEAM_NOW)
    monkeypatch.setenv("COLUMNS", "80")
    owner = "Nguyễn Thị Minh Khai of the Hồ Chí Minh City office"
    cli("add", "Big", "--value", "350000000000", "--currency", "VND", "--owner", owner,
        "--stage", "proposal", "--prequalified", "referral", "--at", "2026-10-01")
    cli("add", "Bigger", "--value", "123456789.99", "--currency", "EUR", "--owner", owner,
        "--stage", "proposal", "--prequalified", "referral", "--at", "2026-10-01")
    cli("advance", "1", "--to", "won", "--at", "2026-10-05")
    out = cli("report", "--quarter", "--by", "owner").stdout
    from pipectl.views.table import width

    assert max(width(line) for line in out.splitlines()) <= 80
    assert "350,000,000,000 VND" in out and "123,456,789.99 EUR" in out  # never cut
    assert "Nguyễn Thị" in out and "…" in out  # the name is cut, not the amounts


def test_report_by_explain(team):
    out = team("report", "--quarter", "--by", "owner", "--explain").stdout
    assert "Win rate = won / (won + lost), over the group's deals" in out
    assert ("Anna: won #1, #2, #3; lost none; win rate 3 / 3 = 100.0%; qualified #1, #2, #3, "
            "#7, of which won #1, #2, #3: close rate 3 / 4 = 75.0%; open #7") in out
    assert "Ben: won none; lost none; win rate 0 / 0 = n/a;" in out
    assert "(no owner): won #5;" in out
    data = team.json("report", "--quarter", "--by", "owner", "--explain")
    assert data["groups"][2]["deal_sets"] == {
        "won_in_window": {"deals": [], "count": 0},
        "lost_in_window": {"deals": [6], "count": 1},
        "qualified_in_window": {"deals": [6], "count": 1},
        "qualified_and_won": {"deals": [], "count": 0},
        "open": {"deals": [], "count": 0},
    }
    assert data["total"]["deal_sets"]["won_in_window"] == {"deals": [1, 2, 3, 5], "count": 4}
    assert data["explain"]["figures"]["close_rate"] == "qualified_in_window"
    assert set(data["explain"]["formulas"]) == {"won", "win_rate", "close_rate", "sales_cycle",
                                                "pipeline", "weighted_value"}


def test_report_by_pipeline_of_two_pipelines(two):
    out = two.json("report", "--as-of", "2026-02-01", "--by", "pipeline")
    assert out["sorted_by"] == "won_value"  # USD only
    assert [(g["group"], g["won"]["value"], g["win_rate"]["rate"], g["close_rate"]["rate"],
             g["pipeline"]["value"]) for g in out["groups"]] == [
        ("Partners", {"USD": "30000.00"}, 0.3333, 0.5, {"USD": "7000.00"}),
        ("default", {"USD": "20000.00"}, 0.5, 1.0, {"EUR": "8000.00"}),
    ]
    whole = two.json("report", "--as-of", "2026-02-01")
    assert [{"pipeline": g["group"], **g["win_rate"]} for g in out["groups"][::-1]] == (
        whole["win_rate"]["by_pipeline"])
    alone = two.json("report", "--as-of", "2026-02-01", "--by", "owner", "--pipeline",
                     "Partners")
    assert alone["pipeline_name"] == "Partners"
    assert [g["group"] for g in alone["groups"]] == [None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "region"], "--by 'region' is not one of owner, source, pipeline"),
        (["--by", "owner", "--owner", "Anna"], "--by owner and --owner exclude each other"),
        (["--by", "pipeline", "--pipeline", "default"],
         "--by pipeline and --pipeline exclude each other"),
        (["--by", "owner", "--json", "--csv"], "--json and --csv exclude each other"),
    ],
)
def test_report_by_refusals_are_one_line_exit_2(team, args, message):
    err = team("report", *args, code=2).stderr
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_report_by_pipeline_refused_under_pipectl_pipeline(team, monkeypatch):
    monkeypatch.setenv("PIPECTL_PIPELINE", "default")
    err = team("report", "--by", "pipeline", code=2).stderr
    assert "--by pipeline and PIPECTL_PIPELINE exclude each other" in err
    assert team.json("report", "--by", "owner")["pipeline_name"] == "default"


def test_report_by_owner_on_the_maven_file(cli, real_data):
    """Each sales agent's row against the raw file, read with the csv module: deals won and
    their value (close_value, USD), deals lost, deals open; all in one currency, so the rows
    are sorted by won value."""
    import csv
    from collections import Counter
    from decimal import Decimal

    path = real_data / "maven_crm" / "sales_pipeline.csv"
    cli("import", str(path), "--preset", "maven")
    won: Counter = Counter()
    lost: Counter = Counter()
    opened: Counter = Counter()
    value: dict[str | None, Decimal] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            agent = row["sales_agent"].strip() or None
            stage = row["deal_stage"]
            if stage == "Won":
                won[agent] += 1
                value[agent] = value.get(agent, Decimal(0)) + Decimal(row["close_value"])
            elif stage == "Lost":
                lost[agent] += 1
            else:
                opened[agent] += 1
    agents = set(won) | set(lost) | set(opened)
    out = cli.json("report", "--by", "owner")
    got = {g["group"]: (g["won"]["count"], Decimal(g["won"]["value"].get("USD", "0")),
                        g["win_rate"]["lost"], g["pipeline"]["count"]) for g in out["groups"]}
    assert got == {a: (won[a], value.get(a, Decimal(0)), lost[a], opened[a]) for a in agents}
    assert out["sorted_by"] == "won_value"
    assert [g["group"] for g in out["groups"]] == sorted(
        agents, key=lambda a: (a is None, -value.get(a, 0), -won[a], (a or "").casefold()))
    total = out["total"]
    assert (total["won"]["count"], Decimal(total["won"]["value"]["USD"])) == (
        sum(won.values()), sum(value.values()))
    assert total["win_rate"] == cli.json("report")["win_rate"]


def _summed(entries: list[dict], key: str) -> dict:
    from decimal import Decimal

    out: dict = {}
    for e in entries:
        for cur, v in e[key].items():
            out[cur] = out.get(cur, Decimal(0)) + Decimal(v)
    return out


@pytest.mark.parametrize("files", [
    [("maven_crm/sales_pipeline.csv", "--preset", "maven")],
    [("hubspot/hubspot-crm-exports-all-deals-2023-04-03.masked.csv", "--preset", "hubspot"),
     ("hubspot/hubspot-crm-exports-all-deals-2023-05-09.masked.csv", "--preset", "hubspot"),
     ("hubspot/hubspot-crm-exports-all-deals-2023-05-16.masked.csv", "--preset", "hubspot")],
    [("salesforce/sfdc_sample_org_Opportunity.csv", "--preset", "salesforce", "--history",
      "salesforce/sfdc_sample_org_OpportunityHistory.csv")],
], ids=["maven", "hubspot", "salesforce"])
def test_report_by_adds_up_to_the_report_on_real_files(cli, real_data, files):
    """On every real export: each --by's groups add up to its total row, and the total row is
    the plain report's figures, now and at a past moment, over all time and a quarter."""
    from decimal import Decimal

    for name, *options in files:
        options = [str(real_data / o) if o.endswith(".csv") else o for o in options]
        cli("import", str(real_data / name), *options)
    moments = [[], ["--as-of", "2017-06-01"], ["--as-of", "2023-05-01", "--quarter"]]
    for when in moments:
        whole = cli.json("report", *when)
        for by in ("owner", "source", "pipeline"):
            out = cli.json("report", *when, "--by", by)
            total, groups = out["total"], out["groups"]
            assert total["won"] == whole["won"], (by, when)
            for key in ("win_rate", "close_rate", "sales_cycle", "left_out"):
                assert total[key] == whole[key], (by, when, key)
            assert total["pipeline"] == {k: v for k, v in whole["pipeline"].items()
                                         if k != "stages"}
            for section, counts in (("won", ("count", "without_value")),
                                    ("win_rate", ("won", "lost")),
                                    ("close_rate", ("won", "qualified")),
                                    ("pipeline", ("count", "without_value")),
                                    ("left_out", ("unknown_qualification", "unknown_start",
                                                  "unknown_close"))):
                for c in counts:
                    assert sum(g[section][c] for g in groups) == total[section][c], (
                        by, when, section, c)
            assert _summed([g["won"] for g in groups], "value") == {
                c: Decimal(v) for c, v in total["won"]["value"].items()}
            assert _summed([g["pipeline"] for g in groups], "value") == {
                c: Decimal(v) for c, v in total["pipeline"]["value"].items()}
            assert sum(g["sales_cycle"]["count"] for g in groups) == total["sales_cycle"]["count"]


def test_report_by_on_an_empty_database_and_deals_without_value(cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", TEAM_NOW)
    assert cli("report", "--by", "owner").stdout.endswith(
        "No deal won, lost or qualified in the window, and none open.\n")
    empty = cli.json("report", "--by", "source")
    assert (empty["groups"], empty["total"]["won"], empty["total"]["pipeline"]) == (
        [], NO_WIN, NO_OPEN)
    assert cli("report", "--by", "owner", "--csv").stdout.count("\n") == 1  # the header
    cli("add", "X", "--owner", "A", "--at", "2026-10-01")
    cli("add", "Y", "--stage", "proposal", "--prequalified", "referral", "--at", "2026-10-01")
    cli("advance", "2", "--to", "won", "--at", "2026-10-05")
    out = cli.json("report", "--by", "owner")
    assert [(g["group"], g["won"]["count"], g["won"]["without_value"], g["won"]["value"],
             g["pipeline"]["count"], g["pipeline"]["without_value"]) for g in out["groups"]] == [
        ("A", 0, 0, {}, 1, 1), (None, 1, 1, {}, 0, 0)]
    assert cli("report", "--by", "owner", "--csv").stdout.splitlines()[1:] == [
        "A,,0,,,,,,1,,", ",,1,,,1.0,1.0,4.0,0,,"]
    assert ("Without a value (counted, not in the amounts): 1 deal won, 1 deal open."
            in cli("report", "--by", "owner").stdout)
    assert ("Won and lost in the window: 1 deal won, 0 deals lost, none with a value."
            in cli("report").stdout)


def test_report_by_says_what_an_import_could_not_tell(cli, real_data, monkeypatch):
    """HubSpot's exports cannot tell whether a deal was qualified (nor, for one, when it
    began): the groups count them in left_out, which adds up to the report's, and the terminal
    says how many were left out of close rate and of the median cycle."""
    for day in ("04-03", "05-09", "05-16"):
        cli("import", str(real_data / "hubspot" /
                          f"hubspot-crm-exports-all-deals-2023-{day}.masked.csv"),
            "--preset", "hubspot")
    out = cli.json("report", "--by", "owner")
    left = out["total"]["left_out"]
    assert left == cli.json("report")["left_out"]
    assert left["unknown_qualification"] > 0
    assert sum(g["left_out"]["unknown_qualification"] for g in out["groups"]) == (
        left["unknown_qualification"])
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("report", "--by", "owner").stdout
    n = left["unknown_qualification"]
    assert f"Left out of close rate: {n} deals of unknown qualification.\n" in text
    if left["unknown_start"]:
        assert "Left out of the median cycle: " in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_report_lines_wrap_at_spaces_at_80_columns(cli, real_data, monkeypatch):
    """The report's sentences (deals, close and win rate with what was left out, the cycle)
    on the three HubSpot snapshots at 80 columns: no line longer, no word cut in two, the win
    rate on a line of its own when the two rates do not fit one; piped, one line each."""
    for day in ("04-03", "05-09", "05-16"):
        cli("import", str(real_data / "hubspot" /
                          f"hubspot-crm-exports-all-deals-2023-{day}.masked.csv"),
            "--preset", "hubspot")
    monkeypatch.delenv("COLUMNS", raising=False)
    piped = cli("report", "--as-of", "2023-05-17").stdout.splitlines()
    rates = next(line for line in piped if line.startswith("Close rate:"))
    assert rates == ("Close rate: 61.1% (11 won of 18 qualified; 46 deals of unknown "
                     "qualification left out)   Win rate: 18.3% (11 won of 60 decided)")
    monkeypatch.setenv("COLUMNS", "80")
    lines = cli("report", "--as-of", "2023-05-17").stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    at = lines.index("Close rate: 61.1% (11 won of 18 qualified; 46 deals of unknown "
                     "qualification")
    assert lines[at + 1:at + 4] == [
        "  left out)", "Win rate: 18.3% (11 won of 60 decided)",
        "Sales cycle: median 48.01 d, mean 62.33 d (10 deals won; 1 deal without a known"]
    assert lines[1:3] == ["Deals: 40 open, 11 won, 49 lost (100 in all). In the window: "
                          "100 created, 18", "  qualified, 11 won, 49 lost."]
