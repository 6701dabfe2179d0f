"""Who did what: every event records who recorded it (PIPECTL_USER, else the login name);
`--owner me` means that person."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.engines import Target, actor


def _actors(db: Target) -> list[str | None]:
    from tests.engines import rows

    return [r[0] for r in rows(db, "SELECT actor FROM events ORDER BY id")]


def test_each_event_records_who_wrote_it(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("add", "Hợp đồng Łódź", "--owner", "Minh Trần", "--note", "met")  # PIPECTL_USER=tester
    monkeypatch.setenv("PIPECTL_USER", "Ewa Łukasiewicz")
    cli("advance", "1")
    monkeypatch.delenv("PIPECTL_USER")
    monkeypatch.setenv("LOGNAME", "minh")  # getpass reads LOGNAME first
    cli("note", "1", "called")
    # on a server, the database role (postgres) whoever the user says they are
    want = [actor(cli.db, who) for who in ("tester", "tester", "Ewa Łukasiewicz", "minh")]
    assert _actors(cli.db) == want
    shown = cli.json("show", "1")
    assert [e["actor"] for e in shown["events"]] == want
    text = cli("show", "1").stdout
    assert f"by {actor(cli.db, 'Ewa')}" in text  # beside what (or once, when all the same)


def test_an_actor_name_is_nfc_and_blank_means_the_login(cli: Cli,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_USER", "Nguye\u0302\u0303n")  # decomposed
    cli("add", "One")
    monkeypatch.setenv("PIPECTL_USER", "   ")
    monkeypatch.setenv("LOGNAME", "anna")
    cli("add", "Two")
    assert _actors(cli.db) == [actor(cli.db, "Nguyễn"), actor(cli.db, "anna")]


def test_an_import_records_its_user_on_every_event_both_roads(cli: Cli, tmp_path: Path) -> None:
    rows = "name,stage,value,currency\n" + "".join(f"Deal {i},won,{i},EUR\n" for i in range(50))
    f = tmp_path / "deals.csv"
    f.write_text(rows, encoding="utf-8")
    cli("import", str(f))
    actors = _actors(cli.db)
    assert len(actors) > 50 and set(actors) == {actor(cli.db, "tester")}


def test_owner_me_is_the_user(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("add", "Mine", "--owner", "Minh Trần", "--value", "10", "--currency", "EUR")
    cli("add", "Theirs", "--owner", "Anna")
    monkeypatch.setenv("PIPECTL_USER", "Minh Trần")
    assert [d["name"] for d in cli.json("list", "--owner", "me")] == ["Mine"]
    assert [d["name"] for d in cli.json("list", "--owner", "ME")] == ["Mine"]
    assert cli.json("next", "--owner", "me")["total"] == 1
    report = cli.json("report", "--owner", "me")
    assert report["owner"] == "Minh Trần"


def test_owner_me_without_a_name_is_a_usage_error(cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.delenv("PIPECTL_USER")

    def nobody() -> str:
        raise OSError("no such user")

    monkeypatch.setattr(getpass, "getuser", nobody)
    result = cli("list", "--owner", "me", code=2)
    assert "cannot tell who you are" in result.stderr and "PIPECTL_USER" in result.stderr
