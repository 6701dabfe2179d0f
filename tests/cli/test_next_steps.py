"""Next steps that close (issue 16): `done`, `note --next ""`, `--due` as people say it, due
dates in the past refused, `note ID -` from standard input."""

from __future__ import annotations

import pytest

NOW = "2026-12-07T10:00:00Z"  # a Monday


@pytest.fixture(autouse=True)
def _monday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    monkeypatch.setenv("TZ", "UTC")


def _deal(cli) -> None:
    cli("add", "Acme", "--at", "2026-12-01")


def _step(cli) -> tuple[str | None, str | None]:
    d = cli.json("show", "1")
    return d["next_action"], d["next_due"]


def _agrees(cli) -> None:
    """db check finds the deal as its events make it (projection, read models), next step
    included. (Only the search text may differ while notes join it: helper "search"'s work.)"""
    from pipectl.cli import app

    out = cli.runner.invoke(app, ["--db", str(cli.db), "db", "check"]).stdout
    assert "next_action" not in out and "next_due" not in out, out
    assert "read model" not in out.lower(), out
    assert all(line.strip().startswith("deal 1: search is") for line in out.splitlines()
               if line.strip().startswith("deal 1:")), out


def _events(cli) -> list[dict]:
    return cli.json("show", "1")["events"]


@pytest.mark.parametrize(("due", "day"), [
    ("friday", "2026-12-11"), ("FRI", "2026-12-11"), ("monday", "2026-12-14"),
    ("tomorrow", "2026-12-08"), ("today", "2026-12-07"), ("+3d", "2026-12-10"),
    ("2w", "2026-12-21"), ("1m", "2027-01-07"), ("2026-12-24", "2026-12-24"),
])
def test_due_as_people_say_it(cli, due: str, day: str) -> None:
    _deal(cli)
    out = cli("note", "1", "called", "--next", "send quote", "--due", due).stdout
    assert out == f"Noted on deal 1; next: send quote (due {day})\n"
    assert _step(cli) == ("send quote", day)


def test_due_counts_from_a_backdated_note(cli) -> None:
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--due", "tomorrow", "--at", "2026-12-02")
    assert _step(cli) == ("send quote", "2026-12-03")


@pytest.mark.parametrize("args", [
    ["--due", "2026-12-06"],
    ["--due", "2026-12-01", "--at", "2026-12-02"],
])
def test_due_in_the_past_is_refused(cli, args: list[str]) -> None:
    _deal(cli)
    before = _events(cli)
    r = cli("note", "1", "called", "--next", "send quote", *args, code=2)
    assert "is in the past" in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert _events(cli) == before  # nothing written


def test_bad_due_names_the_forms(cli) -> None:
    _deal(cli)
    r = cli("note", "1", "called", "--next", "x", "--due", "someday", code=2)
    assert "--due 'someday' is not a day: use YYYY-MM-DD, today, tomorrow, a weekday" in r.stderr


def test_due_alone_moves_the_logged_step(cli) -> None:
    _deal(cli)
    r = cli("note", "1", "asked for time", "--due", "friday", code=2)
    assert "--due needs --next" in r.stderr  # no step logged to move
    cli("note", "1", "called", "--next", "send quote", "--due", "tomorrow")
    assert cli("note", "1", "they asked for a week", "--due", "+7d").stdout == \
        "Noted on deal 1; next step now due 2026-12-14\n"
    assert _step(cli) == ("send quote", "2026-12-14")


def test_next_empty_clears_the_step(cli) -> None:
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--due", "friday")
    assert cli.json("next")["deals"][0]["action"] == "send quote"
    assert cli("note", "1", "they bought elsewhere", "--next", "").stdout == \
        "Noted on deal 1; next step cleared\n"
    assert _step(cli) == (None, None)
    row = cli.json("next")["deals"][0]
    assert (row["source"], row["due"]) == ("stage", None)  # what the stage calls for again
    assert "send quote" not in cli("show", "1").stdout.split("Timeline")[0]
    last = _events(cli)[-1]
    assert (last["text"], last["field"], last["old"]) == \
        ("they bought elsewhere", "next_action", "send quote")
    _agrees(cli)
    r = cli("note", "1", "x", "--next", "", "--due", "friday", code=2)
    assert "clears the next step" in r.stderr


def test_done_clears_the_step_with_a_note(cli) -> None:
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--due", "friday")
    out = cli("done", "1", "--note", "sent v2, 10% off").stdout
    assert out == "Deal 1: done: send quote; no next step logged now\n"
    assert _step(cli) == (None, None)
    assert _events(cli)[-1]["text"] == "done: send quote\nsent v2, 10% off"
    assert cli.json("next")["deals"][0]["source"] == "stage"
    r = cli("done", "1", code=1)  # nothing logged any more
    assert r.stderr.startswith("error: deal 1 has no next step logged to mark done")
    assert "pipectl advance 1" in r.stderr


def test_done_sets_the_step_after(cli) -> None:
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--due", "friday")
    out = cli("done", "1", "--next", "call back", "--due", "wed").stdout
    assert out == "Deal 1: done: send quote; next: call back (due 2026-12-09)\n"
    assert _step(cli) == ("call back", "2026-12-09")
    assert _events(cli)[-1]["text"] == "done: send quote"
    row = cli.json("next")["deals"][0]
    assert (row["action"], row["due"]) == ("call back", "2026-12-09")
    _agrees(cli)


def test_done_refusals(cli) -> None:
    _deal(cli)
    before = _events(cli)
    assert "has no next step logged" in cli("done", "1", code=1).stderr
    cli("note", "1", "called", "--next", "send quote")
    assert "--due needs --next" in cli("done", "1", "--due", "friday", code=2).stderr
    assert "is in the past" in cli("done", "1", "--next", "x", "--due", "2026-12-01",
                                   code=2).stderr
    assert cli("done", "9", code=1).stderr.startswith("error: ")
    assert len(_events(cli)) == len(before) + 1  # only the note


def test_a_step_superseded_by_a_move_is_not_done(cli) -> None:
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--at", "2026-12-02")
    cli("advance", "1", "--at", "2026-12-03")
    assert "has no next step logged" in cli("done", "1", code=1).stderr


def test_note_from_standard_input_keeps_newlines(cli) -> None:
    _deal(cli)
    text = "Meeting with the CFO\n\n- budget approved\n  - 40k\r\n- start in January\n"
    assert cli("note", "1", "-", input=text).stdout == "Noted on deal 1\n"
    kept = "Meeting with the CFO\n\n- budget approved\n  - 40k\n- start in January"
    assert _events(cli)[-1]["text"] == kept
    exported = cli("export", "--events", "--format", "json").stdout
    assert '"Meeting with the CFO\\n\\n- budget approved\\n  - 40k\\n- start in January"' \
        in exported
    cli("done", "1", code=1)
    cli("note", "1", "x", "--next", "send quote")
    cli("done", "1", "--note", "-", input="sent\nby post\n")
    assert _events(cli)[-1]["text"] == "done: send quote\nsent\nby post"


def test_note_from_standard_input_drops_a_byte_order_mark(cli) -> None:
    _deal(cli)
    cli("note", "1", "-", input="\ufeffCall notes\r\nfrom Notepad\r\n".encode())
    assert _events(cli)[-1]["text"] == "Call notes\nfrom Notepad"


def test_note_from_standard_input_not_utf8_is_refused_as_such(cli) -> None:
    _deal(cli)
    before = _events(cli)
    r = cli("note", "1", "-", input=b"caf\xe9 au lait\n", code=2)  # Latin-1
    assert r.stderr.startswith("error: note: standard input is not UTF-8 text (byte 4 of 13)")
    assert _events(cli) == before


@pytest.mark.parametrize("given", ["", "  \n\n"])
def test_note_from_empty_standard_input_is_refused(cli, given: str) -> None:
    _deal(cli)
    before = _events(cli)
    r = cli("note", "1", "-", input=given, code=2)
    assert "standard input is empty" in r.stderr
    assert _events(cli) == before


def test_list_shows_the_step_only_while_it_is_in_force(cli, monkeypatch) -> None:
    """A step logged before the deal's latest move counts as done (show, next, done say so):
    list's Next step column leaves it out too, and shows a step logged after the move; a step
    undone with its note is gone; list --json keeps what the notes said."""
    monkeypatch.setenv("COLUMNS", "160")
    _deal(cli)
    cli("note", "1", "called", "--next", "send quote", "--due", "friday", "--at", "2026-12-05")

    def cell() -> str:
        rows = [line.split("\t") for line in cli("--plain", "list").stdout.splitlines()]
        return dict(zip(rows[0], rows[1], strict=True))["Next step"]

    assert cell() == "2026-12-11 send quote"
    cli("advance", "1")
    assert cell() == ""
    assert "done" in cli("show", "1").stdout  # show agrees: the step before the move is done
    assert cli.json("list")[0]["next_action"] == "send quote"
    cli("note", "1", "met", "--next", "book demo", "--due", "tomorrow")
    assert cell() == "2026-12-08 book demo"
    cli("undo", "1", "--yes")
    assert cell() == ""
    cli("lose", "1", "--reason", "no budget")
    assert cli("--plain", "list", "--status", "lost").stdout.splitlines()[1].endswith("\t")
