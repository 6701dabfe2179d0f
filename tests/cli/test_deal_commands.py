"""The daily commands through CliRunner with a temp --db, asserting exact JSON."""

from __future__ import annotations

import pytest

from tests.engines import actor

CREATED = {
    "id": 1,
    "ref": None,
    "name": "Nguyễn Văn An",
    "company": "Công ty Sao Mai",
    "contact": "Mai",
    "email": "mai@example.vn",
    "phone": "+84 24 1234 5678",
    "owner": "Łukasz",
    "source": "referral",
    "pipeline": "default",
    "stage": "prospecting",
    "stage_label": "Prospecting",
    "status": "open",
    "lost_at_stage": None,
    "lost_reason": None,
    "value": "12000.50",
    "currency": "EUR",
    "probability": 10,
    "probability_is_own": False,
    "weighted_value": "1200.05",
    "close_date": "2026-12-15",
    "qualified": False,
    "qualified_at": None,
    "prequalified_reason": None,
    "checklist": {"location": None, "budget": None, "authority": None, "need": None},
    "next_action": None,
    "next_due": None,
    "created_at": "2026-03-01T09:30:00Z",
    "updated_at": "2026-03-01T09:30:00Z",
    "closed_at": None,
}


def add_first(cli) -> dict:
    return cli.json(
        "add", "Nguyễn Văn An", "--company", "Công ty Sao Mai", "--contact", "Mai",
        "--email", "mai@example.vn", "--phone", "+84 24 1234 5678", "--owner", "Łukasz",
        "--source", "referral", "--value", "12000.50", "--currency", "eur",
        "--close", "2026-12-15", "--at", "2026-03-01T09:30",
    )


def test_add_json_is_exact(cli) -> None:
    assert add_first(cli) == CREATED


def test_add_prints_id_and_quiet(cli) -> None:
    assert cli("add", "Acme").stdout == "Added deal 1: Acme (prospecting)\n"
    assert cli("add", "Beta", "-q").stdout == "2\n"


def test_show_json_has_the_timeline(cli) -> None:
    add_first(cli)
    cli("advance", "1", "--at", "2026-03-02")
    cli("qualify", "1", "--location", "--budget", "--authority", "--need", "--note", "CFO signs",
        "--at", "2026-03-03")
    cli("advance", "1", "--at", "2026-03-04", "--note", "demo booked")
    cli("edit", "1", "--value", "15000", "--close", "2027-01-31", "--probability", "55",
        "--at", "2026-03-05")
    cli("note", "1", "Call with CFO", "--next", "send quote", "--due", "2026-03-10",
        "--at", "2026-03-06")
    shown = cli.json("show", "1")
    assert shown["stage"] == "meeting"
    assert shown["qualified_at"] == "2026-03-04T00:00:00Z"
    assert shown["value"] == "15000.00" and shown["probability"] == 55
    assert shown["weighted_value"] == "8250.00"
    assert shown["next_action"] == "send quote" and shown["next_due"] == "2026-03-10"
    # every event is recorded as its user's (PIPECTL_USER, tests/conftest.py), on a server as
    # the database role's
    assert {e.pop("actor") for e in shown["events"]} == {actor(cli.db, "tester")}
    assert shown["events"] == [
        {"id": 1, "at": "2026-03-01T09:30:00Z", "kind": "created", "to_stage": "prospecting",
         "currency": "EUR", "close_date": "2026-12-15", "value": "12000.50"},
        {"id": 2, "at": "2026-03-02T00:00:00Z", "kind": "stage", "from_stage": "prospecting",
         "to_stage": "qualification"},
        {"id": 3, "at": "2026-03-03T00:00:00Z", "kind": "checklist", "text": "CFO signs",
         "checklist": {"location": True, "budget": True, "authority": True, "need": True}},
        {"id": 4, "at": "2026-03-04T00:00:00Z", "kind": "stage", "from_stage": "qualification",
         "to_stage": "meeting", "text": "demo booked"},
        {"id": 5, "at": "2026-03-05T00:00:00Z", "kind": "value", "currency": "EUR",
         "value": "15000.00"},
        {"id": 6, "at": "2026-03-05T00:00:00Z", "kind": "close_date", "close_date": "2027-01-31"},
        {"id": 7, "at": "2026-03-05T00:00:00Z", "kind": "probability", "probability": 55},
        {"id": 8, "at": "2026-03-06T00:00:00Z", "kind": "note", "text": "Call with CFO",
         "next_action": "send quote", "due": "2026-03-10"},
    ]


def test_show_renders_text(cli) -> None:
    add_first(cli)
    out = cli("show", "1").stdout
    assert "#1 Nguyễn Văn An" in out and "Checklist: " in out
    assert "created in prospecting" in out


def test_list_json_filters(cli) -> None:
    add_first(cli)
    cli("add", "Zofia", "--stage", "proposal", "--prequalified", "old client", "--owner", "Anna",
        "--value", "900", "--at", "2026-03-02")
    cli("add", "Gone", "--at", "2026-03-02")
    cli("lose", "3", "--reason", "no budget", "--at", "2026-03-03")
    assert [d["id"] for d in cli.json("list")] == [1, 2]
    assert [d["id"] for d in cli.json("list", "--status", "all", "--sort", "age")] == [1, 2, 3]
    lost = cli.json("list", "--status", "lost")
    assert [(d["id"], d["lost_at_stage"], d["lost_reason"]) for d in lost] == [
        (3, "prospecting", "no budget")]
    assert [d["id"] for d in cli.json("list", "--search", "NGUYỄN")] == [1]
    assert [d["id"] for d in cli.json("list", "--stage", "prop")] == [2]
    assert [d["id"] for d in cli.json("list", "--owner", "Anna")] == [2]
    assert cli.json("list", "--limit", "1", "--sort", "value")[0]["id"] == 1
    assert [d["id"] for d in cli.json("list", "--limit", "0")] == [1, 2]  # 0: all, as elsewhere
    table = cli("list").stdout
    assert "Nguyễn Văn An" in table and "2 deals" in table


def test_lose_and_reopen(cli) -> None:
    cli("add", "X", "--stage", "negotiation", "--prequalified", "known", "--at", "2026-03-01")
    assert cli("lose", "1", "--reason", "price", "--at", "2026-03-02").stdout == (
        "Deal 1 lost at negotiation: price\n")
    assert cli("reopen", "1", "--at", "2026-03-03").stdout == "Deal 1 reopened in negotiation\n"
    assert cli("advance", "1", "--to", "closed-won", "--at", "2026-03-04").stdout == (
        "Deal 1 advanced: negotiation -> won\n")
    assert cli.json("show", "1")["closed_at"] == "2026-03-04T00:00:00Z"


def test_board_json(cli) -> None:
    cli("add", "A", "--value", "100", "--currency", "EUR", "--at", "2026-03-01")
    cli("add", "B", "--value", "50.50", "--currency", "USD", "--at", "2026-03-01")
    cli("add", "C", "--value", "200", "--currency", "EUR", "--stage", "meeting",
        "--prequalified", "known", "--probability", "25", "--at", "2026-03-01")
    board = cli.json("board")
    assert [c["stage"] for c in board] == [
        "prospecting", "qualification", "meeting", "proposal", "negotiation"]
    assert board[0] == {"stage": "prospecting", "label": "Prospecting", "count": 2,
                        "value": {"EUR": "100.00", "USD": "50.50"},
                        "weighted_value": {"EUR": "10.00", "USD": "5.05"}, "deals": [1, 2]}
    assert board[2]["weighted_value"] == {"EUR": "50.00"}
    assert "Open pipeline: 3 deals" in cli("board").stdout


def test_board_total_weighted_is_rounded_once_as_in_report(cli) -> None:
    """Three 0.05 deals at 10 % and one at 20 %: 0.015 + 0.01 = 0.025 -> 0.02 (half to even),
    not 0.02 + 0.01 = 0.03 from the rounded stage figures."""
    for name in ("a", "b", "c"):
        cli("add", name, "--value", "0.05", "--at", "2026-03-01")
    cli("add", "d", "--value", "0.05", "--stage", "qualification", "--at", "2026-03-01")
    assert cli.json("report")["pipeline"]["weighted_value"] == {"USD": "0.02"}
    assert [c["weighted_value"] for c in cli.json("board")][:2] == [{"USD": "0.02"},
                                                                   {"USD": "0.01"}]
    assert "Open pipeline: 4 deals, 0.20 USD; weighted 0.02 USD" in cli("board").stdout


def test_stages(cli) -> None:
    data = cli.json("stages")
    assert [s["key"] for s in data["stages"]] == [
        "prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
        "post_purchase", "lost"]
    assert [s["probability"] for s in data["stages"]] == [10, 20, 40, 60, 80, 100, 100, 0]
    assert any("proposal may go straight to won" in r for r in data["rules"])
    out = cli("stages").stdout
    assert "negotiation" in out and "Rules" in out and "80%" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "99"], 1, "error: no deal with id 99"),
        (["advance", "99"], 1, "no deal with id 99"),
        (["add", "X", "--stage", "banana"], 2, "unknown stage 'banana'"),
        (["add", "X", "--value", "-5"], 2, "is not an amount"),
        (["add", "X", "--value", "nan"], 2, "is not an amount"),
        (["add", "X", "--currency", "EURO"], 2, "three-letter"),
        (["add", "   "], 2, "name may not be empty"),
        (["add", "X", "--close", "2026-02-30"], 2, "not a valid date"),
        (["add", "X", "--at", "2026-02-30"], 2, "not a valid date or time"),
        (["add", "X", "--probability", "101"], 2, "not between 0 and 100"),
        (["add", "X", "--stage", "meeting"], 1, "only if it is pre-qualified"),
        (["add", "X", "--stage", "lost"], 1, "cannot start lost"),
        (["list", "--status", "maybe"], 2, "is not one of open, won, lost, closed, all"),
        (["list", "--sort", "colour"], 2, "--sort 'colour'"),
        (["list", "--limit", "-1"], 2, "may not be negative"),
        (["qualify", "1"], 2, "nothing to record"),
        (["edit", "1"], 2, "nothing to change"),
        (["note", "1", "x", "--due", "2026-03-01"], 2, "--due needs --next"),
        (["lose", "1", "--reason", " "], 2, "--reason may not be empty"),
        (["reopen", "1"], 1, "is not lost"),
        (["rm", "1"], 2, "rm needs confirmation and there is no terminal"),
        (["advance", "1", "--to", "meeting"], 1, "cannot skip qualification"),
        (["advance", "1", "--at", "2020-01-01"], 1, "before its latest event"),
        (["show", "99999999999999999999"], 1, "no deal with id"),
        (["note", "1", "later", "--at", "2999-01-01"], 2, "is in the future"),
    ],
)
def test_errors_are_one_line_with_exit_code(cli, args, code, message) -> None:
    cli("add", "Existing", "--at", "2026-03-01")
    before = cli.json("show", "1")
    result = cli(*args, code=code)
    err = result.stderr
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in result.output
    assert cli.json("show", "1") == before
    assert len(cli.json("list", "--status", "all")) == 1


def test_refused_move_says_what_to_do(cli) -> None:
    cli("add", "Gate", "--at", "2026-03-01")
    cli("advance", "1", "--at", "2026-03-02")
    cli("qualify", "1", "--location", "--budget", "--at", "2026-03-03")
    err = cli("advance", "1", code=1).stderr
    assert err == (
        "error: deal 1 cannot leave qualification: the checklist is missing authority, need "
        "(record them with: pipectl qualify 1 authority need)\n"
    )


def test_rm_confirms(cli, monkeypatch) -> None:
    import pipectl.cli.deals

    monkeypatch.setattr(pipectl.cli.deals, "_interactive", lambda: True)
    cli("add", "Doomed")
    cli("rm", "1", input="n\n", code=1)
    assert len(cli.json("list")) == 1
    assert "Deleted deal 1: Doomed" in cli("rm", "1", "--yes").stdout
    assert cli.json("list", "--status", "all") == []


def test_version_and_help(cli) -> None:
    from pipectl import __version__

    assert cli("--version").stdout == f"pipectl {__version__}\n"
    out = cli("--help").stdout
    for command in ("add", "list", "show", "advance", "qualify", "lose", "reopen", "edit", "note",
                    "rm", "board", "stages", "demo"):
        assert f"  {command} " in out


@pytest.mark.parametrize("name", ["Acme [/x] deal", "[bold]Co[/bold]", ":warning: urgent",
                                  "[link=http://x]y", "50% [red]off"])
def test_names_that_look_like_markup_print_as_typed(cli, name) -> None:
    cli("add", name, "--company", name, "--value", "10", "--at", "2026-03-01")
    cli("note", "1", name, "--next", name, "--at", "2026-03-02")
    for command in (["list"], ["show", "1"], ["board"], ["stale", "--days", "0"], ["next"],
                    ["report", "--explain"], ["forecast"]):
        out = cli(*command).stdout
        if command[0] in ("list", "show", "stale", "next", "board"):
            assert name in out.replace("\n", "") or name[:8] in out, (command, out)


def test_an_unknown_users_home_is_a_usage_error(cli) -> None:
    from tests.conftest import Cli

    assert "no such user's home directory" in cli("demo", "--path", "~0", code=2).stderr
    assert "no such user's home directory" in cli("export", "-o", "~zz/x.csv", code=2).stderr
    other = Cli(cli.db)
    other.db = "~nosuchuser/x.db"  # type: ignore[assignment]
    assert "no such user's home directory" in other("list", code=2).stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "abc"], "'abc' is not a valid int. (see pipectl show --help)"),
        (["lose", "1"], "Missing option '--reason' / '-r'. (see pipectl lose --help)"),
        (["list", "--bogus"], "No such option: --bogus (see pipectl list --help)"),
        (["bogus"], "No such command 'bogus'. (see pipectl --help)"),
        (["advance", "1", "--to"], "requires an argument. (see pipectl advance --help)"),
    ],
)
def test_click_usage_errors_are_one_line_too(cli, args, message) -> None:
    err = cli(*args, code=2).stderr
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db"], "error: Option '--db' requires an argument. (see pipectl --help)\n"),
        (["--bogus"], "error: No such option: --bogus (see pipectl --help)\n"),
        # `--db "$UNSET"` must not quietly mean the user's real pipeline
        (["--db", "", "list"], "error: --db is empty (give a file, or leave --db out for your "
                               "default pipeline)\n"),
        (["--db", "  ", "add", "X"], "error: --db is empty (give a file, or leave --db out for "
                                     "your default pipeline)\n"),
    ],
)
def test_the_roots_own_usage_errors_are_one_line(args, message) -> None:
    from typer.testing import CliRunner

    from pipectl.cli import app

    result = CliRunner().invoke(app, args)
    assert (result.exit_code, result.stderr, result.stdout) == (2, message, "")


def test_show_reads_the_next_step_as_next_does(cli) -> None:
    """A step logged before the deal's latest move counts as done (docs/metrics.md, `next`):
    `show` says what the stage calls for then, as `next` does, not the stale step."""
    cli("add", "E", "--at", "2026-11-20")
    assert "  Next: Make first contact" in cli("show", "1").stdout
    cli("note", "1", "x", "--next", "old step", "--due", "2026-11-22", "--at", "2026-11-21")
    assert "  Next: old step (due 2026-11-22)\n" in cli("show", "1").stdout
    cli("advance", "1", "--at", "2026-11-22")
    shown = cli("show", "1").stdout
    action = cli.json("next")["deals"][0]["action"]
    assert f"Next: {action} (what lead qualification calls for; the step logged " \
           "before the move counts as done) Checklist:" in " ".join(shown.split())  # wrapped
    assert "old step" not in shown.split("Timeline")[0]
    cli("lose", "1", "--reason", "no budget", "--at", "2026-11-23")
    assert "Next:" not in cli("show", "1").stdout  # a closed deal needs nothing


def test_show_header_says_the_status_once(cli) -> None:
    cli("add", "Open one", "--at", "2026-03-01")
    cli("add", "Lost one", "--at", "2026-03-01")
    cli("lose", "2", "--reason", "price", "--at", "2026-03-02")
    assert cli("show", "1").stdout.splitlines()[0] == "#1 Open one  prospecting (open)"
    assert cli("show", "2").stdout.splitlines()[0] == "#2 Lost one  lost (at prospecting)"


def test_report_pipeline_title_names_its_moment(cli) -> None:
    cli("add", "A", "--at", "2026-03-01")
    out = cli("report", "--as-of", "2026-06-30").stdout
    assert "Pipeline (open deals as of 2026-06-30 00:00 UTC)" in out, out
