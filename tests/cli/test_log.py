"""`pipectl log` (issue 16): the activity across all deals, day by day, newest first."""

from __future__ import annotations

import pytest

NOW = "2026-12-07T18:00:00Z"  # a Monday evening


@pytest.fixture(autouse=True)
def _monday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    monkeypatch.setenv("TZ", "UTC")


def _week(cli) -> None:
    cli("add", "Old deal", "--owner", "tester", "--at", "2026-11-20T09:00")
    cli("add", "Acme", "--owner", "tester", "--at", "2026-12-03T09:15")
    cli("add", "Beta GmbH", "--owner", "Anna", "--value", "5000", "--currency", "EUR",
        "--at", "2026-12-04T10:00")
    cli("advance", "2", "--at", "2026-12-04T11:30")
    cli("note", "2", "-", "--next", "send quote", "--due", "2026-12-09",
        "--at", "2026-12-05T08:05", input="Call with CFO\nshe wants a pilot\n")
    cli("lose", "3", "--reason", "no budget", "--at", "2026-12-07T09:00")
    cli("done", "2", "--at", "2026-12-07T09:30")


def test_log_groups_by_day_newest_first(cli) -> None:
    _week(cli)
    out = cli("log").stdout
    assert out == (
        "Monday 7 December 2026\n"
        "  09:30  #2 Acme       done: send quote\n"
        "  09:00  #3 Beta GmbH  lost at prospecting (no budget)\n"
        "\n"
        "Saturday 5 December 2026\n"
        "  08:05  #2 Acme       note: Call with CFO (+1 line) [next: send quote, due 2026-12-09]\n"
        "\n"
        "Friday 4 December 2026\n"
        "  11:30  #2 Acme       moved prospecting -> qualification\n"
        "  10:00  #3 Beta GmbH  created in prospecting, 5,000.00 EUR\n"
        "\n"
        "Thursday 3 December 2026\n"
        "  09:15  #2 Acme       created in prospecting\n"
        "\n"
        "6 events from 2026-12-01 to 2026-12-07 (times UTC)\n"
    )


def test_log_filters(cli) -> None:
    _week(cli)
    days = lambda *args: [e["day"] for e in cli.json("log", *args)["events"]]  # noqa: E731
    assert days("--since", "monday") == ["2026-12-07", "2026-12-07"]
    assert days("--since", "fri", "--until", "saturday") == \
        ["2026-12-05", "2026-12-04", "2026-12-04"]
    assert days("--since", "2026-11-01", "--until", "2026-11-30") == ["2026-11-20"]
    assert len(days("--since", "1m")) == 7
    got = cli.json("log", "--owner", "me")  # PIPECTL_USER=tester
    assert {e["deal"] for e in got["events"]} == {"Acme"}
    assert [e["kind"] for e in cli.json("log", "--owner", "Anna")["events"]] == \
        ["lost", "created"]
    limited = cli.json("log", "-n", "2")
    assert [e["what"] for e in limited["events"]] == \
        ["done: send quote", "lost at prospecting (no budget)"]
    assert "(the newest; -n shows more)" in cli("log", "-n", "2").stdout


def test_log_json_and_csv(cli) -> None:
    _week(cli)
    got = cli.json("log", "--since", "saturday", "--until", "saturday")
    assert got == {"since": "2026-12-05", "until": "2026-12-05", "count": 1, "events": [{
        "at": "2026-12-05T08:05:00Z", "day": "2026-12-05", "deal_id": 2, "deal": "Acme",
        "owner": "tester", "kind": "note",
        "what": "note: Call with CFO (+1 line) [next: send quote, due 2026-12-09]",
        "text": "Call with CFO\nshe wants a pilot", "by": got["events"][0]["by"],
        "undone": False}]}
    csv_out = cli("log", "--since", "monday", "--csv").stdout.splitlines()
    assert csv_out[0] == "at,day,deal_id,deal,owner,kind,what,text,by,undone"
    assert csv_out[1].startswith("2026-12-07T09:30:00Z,2026-12-07,2,Acme,tester,note,"
                                 "done: send quote,done: send quote,")


def test_log_days_are_local(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _week(cli)
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")  # UTC+7: 2026-12-04T11:30Z is evening there
    got = cli.json("log", "--since", "2026-12-04", "--until", "2026-12-04")
    assert [(e["at"], e["day"]) for e in got["events"]] == [
        ("2026-12-04T11:30:00Z", "2026-12-04"), ("2026-12-04T10:00:00Z", "2026-12-04")]
    assert "  18:30  #2 Acme" in cli("log", "--since", "2026-12-04", "--until", "2026-12-04").stdout


def test_log_refusals(cli) -> None:
    _week(cli)
    r = cli("log", "--since", "someday", code=2)
    assert r.stderr.startswith("error: --since 'someday' is not a day: use YYYY-MM-DD")
    assert "is before --since" in cli("log", "--since", "monday", "--until", "2026-12-01",
                                      code=2).stderr
    assert "exclude each other" in cli("log", "--json", "--csv", code=2).stderr
    assert cli("log", "--since", "2026-01-01", "--until", "2026-01-02").stdout == \
        "Nothing happened from 2026-01-01 to 2026-01-02.\n"


def test_log_labels_a_dst_change_by_the_zone(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events on both sides of a DST change: the footer names the zone, not one side's
    abbreviation (CET would be wrong for the CEST times before 25 October)."""
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    cli("add", "Summer", "--at", "2026-10-20T10:00")
    cli("note", "1", "winter", "--at", "2026-11-02T10:00")
    out = cli("log", "--since", "2026-10-19", "--until", "2026-11-03").stdout
    assert "  10:00  #1 Summer  created in prospecting" in out
    assert out.endswith("2 events from 2026-10-19 to 2026-11-03 (times Europe/Warsaw)\n")
    one_side = cli("log", "--since", "2026-11-01", "--until", "2026-11-03").stdout
    assert one_side.endswith("(times CET)\n")
