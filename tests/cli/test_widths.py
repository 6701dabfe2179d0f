"""Every view readable at 60, 80 and 120 columns (issue 16), --plain, and the list's count.

The views run on the demo pipeline at a fixed moment, at a forced width (COLUMNS: a test's
output is not a terminal). What must stay whole: no line wider than the terminal, every
amount with its currency, numbers never cut ("…" never follows a digit), a deal's name 20
cells wide at 80 columns, no word of the stage table broken.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipectl.views.common import money_cell
from pipectl.views.table import width

NOW = "2026-12-07T05:00:00Z"
WIDTHS = (60, 80, 120)
BOX = set("┏┓┗┛┃━┳┻╋┡┩╇│─├┤┼└┘┴┬")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipectl.services import database

    path = tmp_path_factory.mktemp("widths") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPECTL_NOW", NOW)
        database.demo(path)
    return path


@pytest.fixture
def run(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "demo.db"
    shutil.copyfile(demo, db)
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    for name in ("NO_COLOR", "FORCE_COLOR", "PIPECTL_FORMAT", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)

    def go(*args: str, columns: int | None = None, env: dict[str, str] | None = None,
           input: str | None = None):
        more = {"COLUMNS": str(columns)} if columns else {}
        result = CliRunner().invoke(__import__("pipectl.cli").cli.app, ["--db", str(db), *args],
                                    env={**more, **(env or {})}, input=input)
        assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
        return result

    return go


VIEWS = [
    ("list",), ("list", "--status", "all"), ("show", "28"), ("next", "-n", "0"), ("stages",),
    ("board",), ("board", "--pipeline", "Agency retainers"), ("report",), ("stale",),
    ("forecast",), ("calibrate",), ("pipeline", "list"),
]

CUT_NUMBER = re.compile(r"[\d,.]…")  # a number cut short
# an amount at the end of a cell whose currency went to the next line
SPLIT_AMOUNT = re.compile(r"\d\.\d\d *[│┃]?\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"[│┃]", line)]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("view", VIEWS, ids=lambda v: "-".join(v))
def test_every_view_fits_the_width_and_never_cuts_a_number(run, view, columns) -> None:
    out = run(*view, columns=columns).stdout
    lines = out.splitlines()
    too_wide = [line for line in lines if width(line) > columns]
    assert not too_wide, "\n".join(too_wide)
    assert not CUT_NUMBER.search(out), out
    for line, after in itertools.pairwise(lines):
        if SPLIT_AMOUNT.search(line):  # the amount's currency would start the next line
            assert not re.match(r"^[│┃ ]*[A-Z]{3}\b", after) or "Currency" in out, (line, after)


def _minor(value: str) -> int:
    return int(Decimal(value) * 100)


def _amounts(run, *args: str) -> list[str]:
    deals = json.loads(run(*args, "--json").stdout)
    return [money_cell(_minor(d["value"]), d["currency"])
            for d in deals if d["value"] is not None]


@pytest.mark.parametrize("columns", WIDTHS)
def test_list_keeps_each_amount_with_its_currency_and_names_20_wide(run, columns) -> None:
    out = run("list", columns=columns).stdout
    rows = [_cells(line) for line in out.splitlines() if line.startswith("│")]
    shown = [c for row in rows for c in row if re.fullmatch(r"[\d,]+\.\d\d [A-Z]{3}", c)]
    assert shown == _amounts(run, "list")  # every amount whole, in the list's order
    head = _cells(out.splitlines()[1])
    assert head[1:5] == ["ID", "Deal", "Stage", "Value"]
    deal_width = width(out.splitlines()[1].split("┃")[2]) - 2
    assert deal_width >= (20 if columns >= 80 else 19)
    stages = {r[3] for r in rows}
    assert "qualification" in stages and "prospecting" in stages  # stages never cut
    if columns >= 80:
        assert "Next step" in head  # the next step with its due date first
        assert any(re.match(r"\d{4}-\d\d-\d\d ", r[head.index("Next step")]) for r in rows)


def test_list_at_120_has_owner_close_and_the_next_step_with_its_due_date(run) -> None:
    out = run("list", columns=120).stdout.splitlines()
    head = _cells(out[1])
    assert {"Owner", "Close", "Prob", "Next step"} <= set(head)


@pytest.mark.parametrize("columns", WIDTHS)
def test_next_is_one_line_a_deal_with_dates_in_words(run, columns) -> None:
    out = run("next", "-n", "0", columns=columns).stdout
    rows = [_cells(line) for line in out.splitlines() if line.startswith("│")]
    total = json.loads(run("next", "-n", "0", "--json").stdout)["total"]
    assert len(rows) == total  # one line each
    head = next(line for line in out.splitlines() if line.startswith("┃"))
    whys = [r[_cells(head).index("Why")] for r in rows]
    assert any(re.fullmatch(r"overdue \d+ days?", w) for w in whys), whys
    assert not any("(" in w for w in whys)


def test_next_says_when_a_step_is_due_before_it_is_overdue(cli, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-07T09:00:00Z")  # a Monday
    monkeypatch.setenv("COLUMNS", "80")
    cli("add", "Soon", "--value", "100", "--currency", "EUR")
    cli("add", "Later", "--value", "200", "--currency", "EUR")
    cli("note", "1", "called", "--next", "send quote", "--due", "2026-12-10")
    cli("note", "2", "called", "--next", "book demo", "--due", "2026-12-18")
    out = cli("next").stdout
    assert "due in 3 days" in out
    assert "due Fri 18 Dec" in out
    listed = cli("list").stdout
    assert "2026-12-10 send quote" in listed and "2026-12-18 book demo" in listed


@pytest.mark.parametrize("columns", WIDTHS)
def test_stale_keeps_amounts_and_idle_days_whole(run, columns) -> None:
    out = run("stale", columns=columns).stdout
    for item in json.loads(run("stale", "--json").stdout)["deals"]:
        amount = money_cell(_minor(item["value"]), item["currency"])
        assert amount in out
        assert f"{item['idle_days']:g} d" in out


@pytest.mark.parametrize("columns", WIDTHS)
def test_stages_never_break_a_word(run, columns) -> None:
    out = run("stages", columns=columns).stdout
    table = out.split("Rules")[0]
    stages = json.loads(run("stages", "--json").stdout)["stages"]
    for s in stages:
        for word in s["label"].split():
            assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", table), (word, table)
        assert s["key"] in table


@pytest.mark.parametrize("columns", WIDTHS)
def test_board_keeps_amounts_with_currencies_and_fits_far_fewer_lines(run, columns) -> None:
    out = run("board", columns=columns).stdout
    columns_json = json.loads(run("board", "--json").stdout)
    deals = {d["id"]: d for d in json.loads(run("list", "--json").stdout)}
    for col in columns_json:
        for deal_id in col["deals"]:
            d = deals[deal_id]
            assert money_cell(_minor(d["value"]), d["currency"]) in out
    if columns <= 80:  # a row per stage: a deal and its amount on one line
        assert len(out.splitlines()) <= 36
        first = col["deals"][0]
        line = next(line for line in out.splitlines() if f"#{first} " in line)
        assert money_cell(_minor(deals[first]["value"]),
                          deals[first]["currency"]) in line


def test_show_lists_the_last_ten_events_and_counts_the_others(run) -> None:
    for n in range(12):
        run("note", "28", f"call {n}")
    out = run("show", "28", columns=80).stdout
    events = len(json.loads(run("show", "28", "--json").stdout)["events"])
    assert f"{events - 10} earlier events: pipectl show 28 --all" in out
    assert "call 11" in out and "call 1\n" not in out.split("Timeline")[1]
    every = run("show", "28", "--all", columns=80).stdout
    assert "earlier events" not in every and "call 0" in every


# ---------------------------------------------------------------- show, compact

UTC = {"TZ": "UTC"}
EVENT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d  \S")  # a timeline line: time, what
# demo deal 28 (11 events, the last 10 shown) at NOW: its lines at 60, 80 and 120 columns
SHOW_LINES = {60: 28, 80: 22, 120: 21}


def _timeline(out: str) -> list[str]:
    """The lines of show's timeline, its heading and the count of earlier events left out."""
    lines = out.split("\nTimeline (")[1].splitlines()[1:]
    return [line for line in lines if "earlier event" not in line]


@pytest.mark.parametrize("columns", WIDTHS)
def test_show_is_compact_one_line_per_event_and_fits_the_width(run, columns) -> None:
    deal = json.loads(run("show", "28", "--json").stdout)
    out = run("show", "28", columns=columns, env=UTC).stdout
    lines = out.splitlines()
    assert len(lines) == SHOW_LINES[columns], out  # was 48 lines at 80 columns, 60 at 60
    assert all(width(line) <= columns for line in lines)
    assert not BOX & set(out)  # no box drawing: a timeline like git log --oneline
    # the facts a salesperson needs, amounts whole, several to a line where they fit
    for said in ("Value: 67,500.00 EUR", "Probability: 80% (stage)", "Weighted: 54,000.00 EUR",
                 "Expected close: 2026-09-19", "Owner: Anna Kowalska", "Next: Settle final",
                 "Created: 2026-07-11 16:00 UTC", "Qualified: 2026-07-30 07:00 UTC"):
        assert said in out
    assert "Company: Gdańsk Port Tech · Contact: Małgorzata Dąbrowska" in out
    assert ":00:00" not in out  # no seconds
    # the checklist on one line where it fits (a wrapped line at 60)
    marks = " · ".join(f"{c} yes" for c in deal["checklist"])
    assert (f"  Checklist: {marks}" in out) == (columns >= 80)
    # the timeline: its heading says how many and the zone once; one line per event
    assert "Timeline (last 10 of 11 events, times UTC)" in out
    timeline = _timeline(out)
    events = [line for line in timeline if EVENT.match(line)]
    assert len(events) == 10
    at = [e["at"][:16].replace("T", " ") for e in deal["events"][-10:]]
    assert [line[:16] for line in events] == at  # to the minute, in order
    if columns >= 80:
        assert timeline == events  # each event on one line
        assert "2026-07-29 04:00  checklist: authority yes, need yes — decision maker " \
               "confirmed" in events
    else:  # what does not fit: the note under what happened, indented
        i = timeline.index("2026-08-23 17:00  moved back: proposal -> meeting")
        assert timeline[i + 1] == " " * 18 + "— they reopened the price"
    assert "1 earlier event: pipectl show 28 --all" in out


def test_show_of_a_13_event_deal_fits_an_80x24_screen(run) -> None:
    run("note", "28", "called Małgorzata: legal has the contract")
    run("note", "28", "chased legal", "--next", "signature", "--due", "2026-12-10")
    out = run("show", "28", columns=80, env=UTC).stdout
    assert "Timeline (last 10 of 13 events, times UTC" in out
    assert "3 earlier events: pipectl show 28 --all" in out
    assert len(out.splitlines()) <= 21  # one 80x24 screen, with the prompt (was 49)
    assert "times UTC, by tester where known)" in out  # who, once (the demo kept no one)
    assert "2026-12-07 05:00  note: chased legal [next: signature, due 2026-12-10]" in out
    assert "  Next: signature (due 2026-12-10)" in out


@pytest.mark.parametrize("columns", WIDTHS)
def test_show_prints_a_multi_line_note_on_indented_lines(run, columns) -> None:
    text = "Call summary:\n- budget approved for 2027\n- a demo for the whole procurement " \
           "team next week, before the holidays\n"
    run("note", "28", "-", input=text)
    out = run("show", "28", columns=columns, env=UTC).stdout
    assert "\\n" not in out  # lines, not escapes
    lines = _timeline(out)
    i = lines.index("2026-12-07 05:00  note: Call summary:")
    assert lines[i + 1] == " " * 20 + "- budget approved for 2027"
    assert lines[i + 2].startswith(" " * 20 + "- a demo for the whole")
    rest = lines[i + 3:]  # the long line wraps under itself, indented two more
    assert ("before the holidays" in lines[i + 2]) == (columns >= 120)
    if columns < 120:
        assert rest[0].startswith(" " * 22) and rest[0].rstrip().endswith("holidays")
    assert all(width(line) <= columns for line in out.splitlines())
    plain = run("--plain", "show", "28").stdout.splitlines()
    row = next(line.split("\t") for line in plain if "Call summary" in line)
    assert row[2] == "Call summary:; - budget approved for 2027; - a demo for the whole " \
                     "procurement team next week, before the holidays"


def test_show_plain_is_a_tab_separated_timeline_and_json_is_unchanged(run) -> None:
    result = run("--plain", "show", "28", columns=40)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["When", "What", "Note"] and len(rows) == 11
    assert {len(r) for r in rows} == {3}
    assert not BOX & set(result.stdout) and "Value: 67,500.00 EUR" in result.stderr
    deal = json.loads(run("show", "28", "--json").stdout)
    assert deal["created_at"] == "2026-07-11T16:00:00Z" and len(deal["events"]) == 11
    assert all(e["at"].endswith(":00Z") for e in deal["events"])  # UTC, seconds, Z


# ---------------------------------------------------------------- --plain


@pytest.mark.parametrize("view", [("list",), ("next",), ("stale",), ("board",), ("stages",),
                                  ("report",), ("forecast",)], ids=lambda v: "-".join(v))
def test_plain_is_tab_separated_without_box_or_colour(run, view) -> None:
    result = run("--plain", *view, columns=40, env={"FORCE_COLOR": "1"})
    out = result.stdout
    assert out.strip()
    assert not BOX & set(out) and "\x1b" not in out and "…" not in out
    for table in out.strip("\n").split("\n\n"):
        rows = [line.split("\t") for line in table.splitlines()]
        assert len(rows[0]) > 1
        assert {len(r) for r in rows} == {len(rows[0])}, table


def test_plain_list_has_every_field_whole_and_its_totals_on_stderr(run) -> None:
    result = run("--plain", "list", columns=60)
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["ID", "Deal", "Company", "Stage", "Value", "Prob", "Close",
                                    "Owner", "Next step"]
    deals = json.loads(run("list", "--json").stdout)
    assert [line.split("\t")[1] for line in lines[1:]] == [d["name"] for d in deals]
    assert "26 deals" in result.stderr or "deals" in result.stderr


def test_pipectl_format_plain_is_the_same_as_the_option(run) -> None:
    assert (run("list", env={"PIPECTL_FORMAT": "plain"}).stdout
            == run("--plain", "list").stdout)


def test_an_unknown_pipectl_format_is_a_usage_error(demo: Path, monkeypatch) -> None:
    from pipectl.cli import app

    result = CliRunner().invoke(app, ["--db", str(demo), "list"],
                                env={"PIPECTL_FORMAT": "fancy"})
    assert result.exit_code == 2
    assert "PIPECTL_FORMAT" in result.stderr


def test_piped_output_stays_full_width(run) -> None:
    out = run("list").stdout  # no COLUMNS, not a terminal: nothing dropped or cut
    head = _cells(out.splitlines()[1])
    assert {"Company", "Owner", "Close", "Prob", "Next step"} <= set(head)
    assert "…" not in out


# ---------------------------------------------------------------- list -n


def test_list_limited_says_how_many_of_how_many(run) -> None:
    total = len(json.loads(run("list", "--json").stdout))
    out = run("list", "-n", "3", columns=80).stdout
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    assert f"3 of {total} deals" in out


@pytest.mark.parametrize("columns", (60, 80))
def test_show_wraps_a_long_name_in_its_first_line(run, columns) -> None:
    name = "Công ty Trách nhiệm Hữu hạn Thương mại Dịch vụ Nguyễn Hoàng Minh"  # 64 characters
    run("add", name, "--value", "9999999999999.99")
    out = run("show", "51", columns=columns, env=UTC).stdout
    lines = out.splitlines()
    assert all(width(line) <= columns for line in lines), out
    facts = next(i for i, line in enumerate(lines) if re.match(r"  [A-Z][a-z]+: ", line))
    assert 1 < facts <= 3  # the name wraps at a space, under itself; nothing is cut
    assert " ".join(" ".join(lines[:facts]).split()) == f"#51 {name} prospecting (open)"
    assert all(line.startswith("    ") for line in lines[1:facts])


def test_plain_forecast_range_has_no_chart_and_a_period_on_every_row(run) -> None:
    out = run("--plain", "forecast", "--range", "--runs", "200", columns=120).stdout
    rows = [line.split("\t") for line in out.strip("\n").splitlines()]
    assert rows[0] == ["Period", "Cur", "P10", "P50", "P90", "Expected"]
    assert {len(r) for r in rows} == {6}
    assert not BOX & set(out) and "●" not in out
    assert all(r[0] for r in rows[1:])  # each row says its period (for grep and awk)


# ---------------------------------------------------------------- two pipelines, huge amounts

HUGE = "9,999,999,999,999.99 EUR"  # 26 cells with its " +": wider than a wrapped word


def _report_tables(out: str) -> list[str]:
    """The Pipeline and the Time in stage tables of a report."""
    lines = out.splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith(("Pipeline (", "Time in"))]
    return ["\n".join(itertools.takewhile(lambda x: not x.startswith("└"), lines[i:]))
            for i in start]


@pytest.mark.parametrize("columns", WIDTHS)
def test_report_keeps_stage_and_pipeline_names_whole(run, columns) -> None:
    """Two pipelines at 60 columns: no "de…" / "pro…" (prospecting or proposal?): a pipeline
    name too wide for a column of its own heads its stages' rows instead."""
    out = run("report", columns=columns).stdout
    stages = {"default": ["prospecting", "qualification", "meeting", "proposal",
                          "negotiation"], "Agency retainers": ["lead", "discovery", "pitch"]}
    tables = _report_tables(out)
    assert len(tables) == 2
    for table in tables:
        assert "…" not in table, table
        cells = [_cells(line)[1:] for line in table.splitlines() if line.startswith("│")]
        firsts = [c[0] for c in cells if c[0]]
        if "Pipeline" in _cells(table.splitlines()[2]):  # a column of its own
            assert [c[1] for c in cells if c[1] and c[1] != "total"] == \
                [s for p in stages.values() for s in p]
            assert {c[0] for c in cells if c[0]} == set(stages)
        else:  # a heading row per pipeline, its stages under it
            assert firsts[:len(firsts) - ("total" in firsts)] == [
                x for p, names in stages.items() for x in (p, *names)]
            assert all(width(line) <= columns for line in table.splitlines())
    if columns == 60:
        assert "Pipeline" not in _cells(tables[0].splitlines()[2])


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_13_digit_amount_stays_whole_with_its_currency(run, columns) -> None:
    run("add", "Huge", "--value", "9999999999999.99", "--currency", "EUR")
    report = run("report", columns=columns).stdout
    assert f"{HUGE} +" in report  # the stage's sum: "9,999,999,999,999.99 EUR + ..." whole
    assert "10,000,000,441,999.99 EUR +" in report  # the total
    for line in _report_tables(report)[0].splitlines():
        assert width(line) <= columns, line
    board = run("board", columns=columns).stdout
    assert board.count(HUGE) >= 2  # the deal, its stage's total


def test_the_board_at_60_with_huge_amounts_keeps_the_deal_names(run) -> None:
    """The stage's totals beside its name would leave the names one cell ("…"): they go
    under the deals' values instead, the names keep the room."""
    run("add", "Huge", "--value", "9999999999999.99", "--currency", "EUR")
    out = run("board", columns=60).stdout
    assert all(width(line) <= 60 for line in out.splitlines())
    rows = [_cells(line) for line in out.splitlines() if line.startswith("│")]
    names = [r[2] for r in rows if r[2].startswith("#")]
    assert "#51 Huge" in names
    assert all(width(n) >= 13 or "…" not in n for n in names), names  # was "…" alone
    first = next(i for i, r in enumerate(rows) if r[2] == "#51 Huge")
    total = next(r for r in rows[first:] if r[2] == "total")
    assert total[1] == "" and total[3] == HUGE  # the stage's total, under its deals' values


def test_plain_report_has_no_bars_and_names_every_row(run) -> None:
    out = run("--plain", "report").stdout
    assert "█" not in out
    tables = [[line.split("\t") for line in t.splitlines()] for t in out.strip().split("\n\n")]
    assert all(all(tables[i][0]) for i in range(len(tables)))  # no empty header field
    pipe = next(t for t in tables if t[0][:2] == ["Pipeline", "Stage"])
    assert pipe[-1][:2] == ["all", "total"]
    funnels = [t for t in tables if "Reached" in t[0]]
    assert [t[0] for t in funnels] == [["Pipeline", "Stage", "Reached", "From previous"]] * 2
    assert {r[0] for r in funnels[0][1:]} == {"default"}
    assert {r[0] for r in funnels[1][1:]} == {"Agency retainers"}


def test_plain_calibrate_names_the_pipeline_on_every_row(run) -> None:
    out = run("--plain", "calibrate").stdout
    tables = [[line.split("\t") for line in t.splitlines()] for t in out.strip().split("\n\n")]
    assert len(tables) == 4
    assert all(t[0][0] == "Pipeline" for t in tables)
    assert [{r[0] for r in t[1:]} for t in tables] == [
        {"default"}, {"default"}, {"Agency retainers"}, {"Agency retainers"}]


def test_plain_log_is_a_row_per_event_on_stdout(run) -> None:
    result = run("--plain", "log")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["Day", "Time", "ID", "Deal", "What"]
    assert len(rows) > 1 and {len(r) for r in rows} == {5}
    assert ["2026-12-01", "01:00", "30", "Dubois & Fils: Annual licence"] in [
        r[:4] for r in rows]  # the whole name (29 characters), for grep
    assert "events from" in result.stderr and not BOX & set(result.stdout)


def test_piped_log_keeps_whole_names(run) -> None:
    out = run("log").stdout  # not a terminal, no COLUMNS: full width
    assert "#30 Dubois & Fils: Annual licence  note: Intro call" in out
    assert "#30 Dubois & Fils: Annual l…  note" in run("log", columns=120).stdout
