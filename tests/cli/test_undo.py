"""pipectl undo (issue 16): a deal's newest change voided, kept in the history, marked, and
ignored by every report; the earlier note (note --at before later events)."""

from __future__ import annotations

import pytest

from tests import engines

NOW = "2026-06-30T12:00:00Z"


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


def deal(cli, deal_id: int = 1) -> dict:
    shown = cli.json("show", str(deal_id))
    shown.pop("events")
    return shown


def events(cli, deal_id: int = 1) -> list[dict]:
    return cli.json("show", str(deal_id))["events"]


def acme(cli) -> None:
    cli("add", "Acme renewal", "--company", "Acme", "--value", "12000", "--currency", "EUR",
        "--close", "2026-09-30", "--at", "2026-03-02T09:00")


@pytest.mark.parametrize("change", [
    ["advance", "1", "--at", "2026-03-05T10:00"],
    ["advance", "1", "--to", "prospecting", "--at", "2026-03-05T10:00"],
    ["lose", "1", "--reason", "budget", "--at", "2026-03-05T10:00"],
    ["qualify", "1", "--not", "budget", "--note", "no money", "--at", "2026-03-05T10:00"],
    ["edit", "1", "--value", "5000", "--close", "2026-12-31", "--probability", "55",
     "--name", "Acme big renewal", "--at", "2026-03-05T10:00"],
    ["edit", "1", "--probability", "70", "--at", "2026-03-05T10:00"],
    ["note", "1", "called them", "--next", "send the quote", "--due", "2026-03-09",
     "--at", "2026-03-05T10:00"],
])
def test_undo_restores_the_deal_and_marks_the_events(cli, change: list[str]) -> None:
    acme(cli)
    cli("qualify", "1", "location", "budget", "authority", "need", "--at", "2026-03-02T12:00")
    cli("advance", "1", "--at", "2026-03-03T09:00")
    before = deal(cli)
    cli(*change)
    assert deal(cli) != before
    out = cli("undo", "1", "--yes").stdout
    assert out.startswith("Undo on deal 1 (Acme")
    assert "2026-03-05 10:00 UTC" in out
    assert "\nUndone: " in out
    assert deal(cli) == before
    history = events(cli)
    voided = [e for e in history if e.get("voided_by") is not None]
    assert voided and all(e["at"] == "2026-03-05T10:00:00Z" for e in voided)
    assert all(e["undone_at"] == NOW and e["undone_by"] == engines.actor(cli.db)
               for e in voided)
    assert len(history) == 3 + len(voided)  # created, qualify, advance, the voided ones
    # the deal is what its events make of it, and its read models what they make
    assert "no problems found" in cli("db", "check").stdout


def test_undo_of_a_reopen_and_repeated_undo_walks_back(cli) -> None:
    acme(cli)
    cli("advance", "1", "--at", "2026-03-03T09:00")
    states = [deal(cli)]
    cli("lose", "1", "--reason", "price", "--at", "2026-03-04T09:00")
    states.append(deal(cli))
    cli("reopen", "1", "--at", "2026-03-05T09:00")
    assert deal(cli)["stage"] == "qualification"
    out = cli("undo", "1", "--yes").stdout
    assert "deal 1 is lost at qualification again" in out
    assert deal(cli) == states[1]
    out = cli("undo", "--yes").stdout  # the newest change of any deal: this one's loss
    assert "Undone: lose at qualification (price)" in out
    assert "deal 1 is in qualification again" in out
    assert deal(cli) == states[0]
    cli("undo", "--yes")
    assert deal(cli)["stage"] == "prospecting"
    refused = cli("undo", "1", "--yes", code=1)
    assert "its last change is its creation" in refused.stderr
    assert "pipectl rm 1" in refused.stderr
    assert sum(1 for e in events(cli) if e.get("voided_by") is not None) == 3


def test_undo_without_id_takes_the_newest_command_of_any_deal(cli) -> None:
    acme(cli)
    cli("add", "Beta", "--at", "2026-03-02T10:00")
    cli("advance", "2", "--at", "2026-03-03T09:00")
    cli("advance", "1", "--at", "2026-03-04T09:00")
    assert "Undo on deal 1 (Acme renewal)" in cli("undo", "--yes").stdout
    assert deal(cli, 1)["stage"] == "prospecting"
    assert "Undo on deal 2 (Beta)" in cli("undo", "--yes").stdout
    assert deal(cli, 2)["stage"] == "prospecting"
    cli("undo", "--yes", code=1)  # deal 2's last change is its creation


def test_undo_asks_and_n_undoes_nothing(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    acme(cli)
    cli("advance", "1", "--at", "2026-03-03T09:00")
    refused = cli("undo", "1", code=2)  # no terminal, no --yes
    assert "no terminal" in refused.stderr
    monkeypatch.setattr("pipectl.cli.undo._interactive", lambda: True)
    answered = cli("undo", "1", input="n\n", code=1)
    assert "Undo on deal 1 (Acme renewal): advance prospecting -> qualification" in answered.stdout
    assert "nothing undone" in answered.stderr
    assert deal(cli)["stage"] == "qualification"
    cli("undo", "1", input="y\n")
    assert deal(cli)["stage"] == "prospecting"


def test_show_marks_a_voided_event(cli) -> None:
    acme(cli)
    cli("advance", "1", "--at", "2026-03-03T09:00")
    cli("undo", "--yes")
    out = cli("show", "1").stdout
    assert "[undone] advanced: prospecting -> qualification" in out
    assert f"undone by {engines.actor(cli.db)}" in out


def test_a_crash_mid_undo_changes_nothing(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    acme(cli)
    cli("advance", "1", "--at", "2026-03-03T09:00")
    before = cli.json("show", "1")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed after the events were voided, before the COMMIT

    monkeypatch.setattr("pipectl.services.check.expected", crash)
    cli("undo", "1", "--yes", code=130)
    monkeypatch.undo()
    assert cli.json("show", "1") == before
    conn = engines.connect(cli.db)
    try:
        assert conn.execute("SELECT count(*) FROM undos").fetchone()[0] == 0
    finally:
        conn.close()


def _script(cli, with_mistake: bool) -> None:
    """The same pipeline, with (or without) a mistaken advance and edit that are undone."""
    acme(cli)
    cli("add", "Beta", "--value", "3000", "--currency", "USD", "--close", "2026-07-15",
        "--at", "2026-03-02T10:00")
    cli("add", "Gamma", "--value", "800", "--currency", "EUR", "--at", "2026-03-02T11:00")
    cli("qualify", "2", "location", "budget", "authority", "need", "--at", "2026-03-03T09:00")
    cli("advance", "2", "--at", "2026-03-04T09:00")
    cli("advance", "2", "--at", "2026-03-10T09:00")
    if with_mistake:
        cli("advance", "2", "--at", "2026-04-01T09:00")  # meeting -> proposal, by mistake
        cli("edit", "2", "--value", "9000", "--close", "2026-06-01", "--at", "2026-04-01T09:05")
        cli("undo", "2", "--yes")
        cli("undo", "2", "--yes")
        cli("lose", "3", "--reason", "wrong", "--at", "2026-04-02T09:00")
        cli("undo", "--yes")
    cli("lose", "1", "--reason", "price", "--at", "2026-04-03T09:00")
    if with_mistake:
        cli("reopen", "1", "--at", "2026-04-04T09:00")
        cli("undo", "1", "--yes")
    cli("note", "2", "demo done", "--at", "2026-04-05T09:00")


@pytest.mark.parametrize("command", [
    ["report"], ["report", "--as-of", "2026-04-01T12:00"], ["report", "--by", "owner"],
    ["forecast"], ["calibrate"], ["stale"], ["next"], ["stages"], ["list", "--status", "all"],
    ["board"],
])
def test_reports_ignore_voided_events(cli, command: list[str]) -> None:
    other = cli.another("clean.db")
    _script(cli, True)
    _script(other, False)
    assert cli.json(*command) == other.json(*command)


def test_read_models_after_undo_equal_a_fresh_computation(cli) -> None:
    _script(cli, True)
    from tests.store.test_read_models import recomputed, stored

    conn = engines.connect(cli.db)
    try:
        assert stored(conn) == recomputed(conn)
    finally:
        conn.close()


def test_an_earlier_note_is_logged_when_it_changes_no_state(cli) -> None:
    acme(cli)
    cli("advance", "1", "--at", "2026-03-05T10:00")
    cli("note", "1", "forgot to log the call", "--at", "2026-03-04T16:00")
    shown = cli.json("show", "1")
    assert [e["kind"] for e in shown["events"]] == ["created", "note", "stage"]
    assert shown["updated_at"] == "2026-03-05T10:00:00Z"  # the latest event's moment
    refused = cli("note", "1", "call", "--next", "send quote", "--at", "2026-03-04T17:00",
                  code=1)
    assert "sets the deal's next step" in refused.stderr
    before_creation = cli("note", "1", "x", "--at", "2026-03-01T09:00", code=1)
    assert "before the deal was created" in before_creation.stderr
    # stale counts from the latest event, not the note's
    stale = cli.json("stale", "--days", "1")
    assert stale and all(r.get("last_event_at", "2026-03-05T10:00:00Z") >= "2026-03-05"
                         for r in (stale if isinstance(stale, list) else stale.get("deals", [])))
    assert "no problems found" in cli("db", "check").stdout


def test_an_export_holds_the_history_in_effect(cli, tmp_path) -> None:
    _script(cli, True)
    out = tmp_path / "p.json"
    cli("export", "--format", "json", "--events", "-o", str(out))
    import json

    exported = json.loads(out.read_text())
    assert all("voided_by" not in e for d in exported["deals"] for e in d["events"])
    clean = cli.another("clean.db")
    _script(clean, False)
    copy = cli.another("copy.db")
    copy("import", str(out))
    for command in (["report"], ["forecast"], ["list", "--status", "all"]):
        assert copy.json(*command) == clean.json(*command)


@pytest.mark.sqlite_only
def test_the_schema_lets_an_event_be_voided_once_and_nothing_else(cli) -> None:
    import sqlite3

    acme(cli)
    cli("advance", "1", "--at", "2026-03-03T09:00")
    cli("undo", "--yes")
    conn = sqlite3.connect(cli.db)
    try:
        for statement in ("UPDATE events SET voided_by = NULL WHERE id = 2",
                          "UPDATE events SET at = at WHERE id = 2",
                          "UPDATE events SET voided_by = 1, at = at WHERE id = 1",
                          "DELETE FROM undos", "UPDATE undos SET summary = 'x'"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()
    assert "no problems found" in cli("db", "check").stdout
