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
    from pipectl.store.db import connect
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
