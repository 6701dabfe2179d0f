"""Issue 16: times shown in the user's zone (TZ), labelled; --at in local time, stored in UTC;
--utc / PIPECTL_UTC; the root's options (--db, --utc) also after the command's name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

NOW = "2026-12-10T09:00:00Z"


@pytest.fixture
def warsaw(cli, monkeypatch):
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    return cli


def test_at_without_an_offset_is_local_time_and_stored_in_utc(warsaw) -> None:
    warsaw("add", "Kraków pilot", "--at", "2026-07-01T09:00")  # 09:00 CEST
    warsaw("note", "1", "winter call", "--at", "2026-12-03T09:00")  # 09:00 CET
    warsaw("advance", "1", "--at", "2026-12-04")  # the start of that day, in Warsaw
    warsaw("note", "1", "explicit", "--at", "2026-12-05T09:00Z")
    events = warsaw.json("show", "1")["events"]
    assert [e["at"] for e in events] == [
        "2026-07-01T07:00:00Z", "2026-12-03T08:00:00Z", "2026-12-03T23:00:00Z",
        "2026-12-05T09:00:00Z"]
    timeline = warsaw("show", "1").stdout
    # the timeline's times to the minute, local; summer and winter: the zone named once
    assert "times Europe/Warsaw" in timeline.split("\n\n")[1].splitlines()[0]
    for shown in ("2026-07-01 09:00  created", "2026-12-03 09:00  note: winter call",
                  "2026-12-04 00:00  advanced", "2026-12-05 10:00  note: explicit"):
        assert shown in timeline


def test_show_displays_local_times_labelled_and_utc_on_request(warsaw, monkeypatch) -> None:
    warsaw("add", "Kraków pilot", "--at", "2026-12-03T08:00Z")
    out = warsaw("show", "1").stdout
    assert "2026-12-03 09:00 CET" in out and "08:00" not in out
    assert "  Created: 2026-12-03 09:00 CET" in out
    assert "times CET" in out and "2026-12-03 09:00  created" in out  # the timeline
    utc = warsaw("show", "1", "--utc").stdout  # a root option, after the command
    assert "2026-12-03 08:00 UTC" in utc and "CET" not in utc
    assert "2026-12-03 08:00 UTC" in warsaw("--utc", "show", "1").stdout
    monkeypatch.setenv("PIPECTL_UTC", "1")
    assert "2026-12-03 08:00 UTC" in warsaw("show", "1").stdout
    monkeypatch.setenv("PIPECTL_UTC", "0")
    assert "2026-12-03 09:00 CET" in warsaw("show", "1").stdout
    # machine output stays UTC, whatever the zone
    assert warsaw.json("show", "1")["created_at"] == "2026-12-03T08:00:00Z"


def test_utc_reads_times_as_utc_too(warsaw) -> None:
    warsaw("add", "A", "--at", "2026-12-03T09:00", "--utc")
    assert warsaw.json("show", "1")["events"][0]["at"] == "2026-12-03T09:00:00Z"


def test_a_local_time_in_a_dst_gap_is_refused_and_nothing_is_written(warsaw) -> None:
    result = warsaw("add", "A", "--at", "2026-03-29T02:30", code=2)
    assert result.stderr.startswith("error: --at '2026-03-29T02:30' does not exist in "
                                    "Europe/Warsaw")
    assert "+01:00" in result.stderr and len(result.stderr.splitlines()) == 1
    assert warsaw.json("list", "--status", "all") == []


def test_report_as_of_a_local_day_and_its_title(cli, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    cli("add", "A", "--at", "2026-06-30T23:00")  # 16:00 UTC
    out = cli("report", "--as-of", "2026-06-30").stdout  # the start of June 30th in Saigon
    assert "as of 2026-06-30 00:00 +07:00" in out
    assert "Deals: 0 open" in out  # created later that day
    assert "Deals: 1 open" in cli("report", "--as-of", "2026-07-01").stdout
    assert cli.json("report", "--as-of", "2026-07-01")["as_of"] == "2026-06-30T17:00:00Z"


def test_next_goes_by_the_local_date(cli, monkeypatch) -> None:
    """At 2026-12-10T20:00Z it is already December 11th in Saigon: a step due the 10th is
    overdue there, and due today in New York (15:00 EST on the 10th)."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-10T20:00:00Z")
    cli("add", "A", "--at", "2026-12-01T00:00Z")
    cli("note", "1", "call", "--next", "send quote", "--due", "2026-12-10",
        "--at", "2026-12-01T01:00Z")
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    assert cli.json("next")["deals"][0]["why"] == "overdue"
    monkeypatch.setenv("TZ", "America/New_York")
    assert cli.json("next")["deals"][0]["why"] == "due_today"
    assert "as of 2026-12-10 15:00 EST" in cli("next").stdout


def _run(*args: str):
    from pipectl.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("command", [
    ["list"], ["list", "--status", "all"], ["show", "1"], ["board"], ["report"], ["stale"],
    ["next"], ["db", "check"], ["pipeline", "list"], ["rate", "list"],
])
def test_the_root_options_work_after_the_command(tmp_path, monkeypatch, command) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    db = str(tmp_path / "x.db")
    assert _run("--db", db, "add", "Deal in x.db").exit_code == 0
    before = _run("--db", db, *command)
    assert before.exit_code == 0, before.stderr
    for after in ([*command, "--db", db], [*command, f"--db={db}"]):
        result = _run(*after)
        assert (result.exit_code, result.stdout) == (0, before.stdout), result.stderr
    # --utc too, with --db on either side
    assert _run(*command, "--utc", "--db", db).stdout == _run("--db", db, "--utc", *command).stdout


def test_root_options_after_the_command_leave_its_own_options_alone(tmp_path) -> None:
    db = str(tmp_path / "x.db")
    # a value of the command's own option that looks like a root option stays its value
    assert _run("add", "A", "--company", "--db", "--db", db).exit_code == 0
    assert _run("list", "--db", db, "--json").stdout.count('"company": "--db"') == 1
    # after --, nothing moves (list takes no argument: click says so, one line)
    result = _run("--db", db, "list", "--", "--db", db)
    assert result.exit_code == 2 and "unexpected extra argument" in result.stderr
    # the last --db given wins, as before the command
    other = str(tmp_path / "other.db")
    assert _run("--db", other, "list", "--db", db, "--json").stdout.count('"name": "A"') == 1
    # help after the command is the command's own
    assert _run("list", "--db", db, "--help").stdout.startswith("Usage: pipectl list")


def test_a_root_option_after_the_command_missing_its_value_is_one_usage_line(tmp_path) -> None:
    result = _run("list", "--db")
    assert result.exit_code == 2
    assert result.stderr == "error: Option '--db' requires an argument. (see pipectl --help)\n"
    assert not (tmp_path / "x.db").exists()
    version = _run("list", "--version")
    assert version.exit_code == 0 and version.stdout.startswith("pipectl ")
