"""--owner on every command that reads: matched after NFC (a name typed in decomposed form
still matches), accents and case aside, or by the start of a word of the name (one owner, else
an error naming them), never empty; a name that owns nothing gets a note on stderr naming the
owners it may have meant, while the command's own output stays what it was."""

from __future__ import annotations

import json
import unicodedata

import pytest

from tests import engines

READERS = ["list", "board", "report", "forecast", "stale", "next"]


@pytest.fixture
def owned(cli):
    cli("add", "Đơn hàng Hà Nội", "--owner", "Nguyễn Thị Mai", "--value", "100",
        "--at", "2026-01-05")
    cli("add", "Zamówienie", "--owner", "Łukasz", "--value", "200", "--at", "2026-01-05")
    cli("add", "Pedido", "--owner", "José García", "--at", "2026-01-05")
    cli("add", "Nobody's", "--at", "2026-01-05")
    return cli


@pytest.mark.parametrize("command", READERS)
def test_a_decomposed_name_matches_the_stored_one(owned, command: str, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")  # both runs: one as_of
    typed = unicodedata.normalize("NFD", "Nguyễn Thị Mai")
    assert typed != "Nguyễn Thị Mai"
    composed = owned(command, "--owner", "Nguyễn Thị Mai", "--json")
    decomposed = owned(command, "--owner", typed, "--json")
    assert decomposed.stdout == composed.stdout
    assert decomposed.stderr == composed.stderr == ""


def test_list_and_board_keep_only_that_owners_deals(owned) -> None:
    typed = unicodedata.normalize("NFD", "Nguyễn Thị Mai")
    assert [d["name"] for d in owned.json("list", "--owner", typed)] == ["Đơn hàng Hà Nội"]
    board = owned.json("board", "--owner", typed)
    assert [(c["stage"], c["deals"]) for c in board if c["deals"]] == [("prospecting", [1])]


@pytest.mark.parametrize("command", READERS)
@pytest.mark.parametrize("typed, said", [
    ("Lukas Z", "note: no deal is owned by 'Lukas Z'; did you mean 'Łukasz'?"),
    ("jose garcio", "note: no deal is owned by 'jose garcio'; did you mean 'José García'?"),
    ("Maya", "note: no deal is owned by 'Maya'; owners: José García, Nguyễn Thị Mai, Łukasz"),
])
def test_an_owner_with_no_deals_gets_a_note_and_the_same_output(owned, command: str,
                                                                 typed: str, said: str) -> None:
    r = owned(command, "--owner", typed, "--json")
    assert r.stderr == said + "\n"
    data = json.loads(r.stdout)  # stdout is still the command's own, empty-handed answer
    if command == "list":
        assert data == []
    elif command == "board":
        assert all(c["deals"] == [] for c in data)


def test_the_note_when_no_deal_has_an_owner_yet(cli) -> None:
    cli("add", "Alone", "--at", "2026-01-05")
    r = cli("list", "--owner", "Anna")
    assert r.stderr == "note: no deal is owned by 'Anna'; no deal has an owner yet\n"
    assert r.stdout.strip().endswith("0 deals")


def test_a_long_list_of_owners_is_cut(cli) -> None:
    for i in range(11):
        cli("add", f"Deal {i}", "--owner", f"Owner {i:02d}", "--at", "2026-01-05")
    r = cli("list", "--owner", "Zed")
    assert r.stderr == ("note: no deal is owned by 'Zed'; owners: Owner 00, Owner 01, Owner 02, "
                        "Owner 03, Owner 04, Owner 05, Owner 06, Owner 07 and 3 more\n")


@pytest.mark.parametrize("command", READERS)
def test_an_empty_owner_is_a_usage_error(owned, command: str, db_path) -> None:
    r = owned(command, "--owner", " ", code=2)
    assert r.stderr == "error: --owner may not be empty\n"
    assert r.stdout == ""


@pytest.mark.parametrize("command", READERS)
def test_a_bad_owner_is_refused_before_the_database_is_made(cli, command: str, db_path) -> None:
    r = cli(command, "--owner", "", code=2)
    assert r.stderr == "error: --owner may not be empty\n"
    assert not engines.exists(db_path)


def test_owners_walks_the_index(conn) -> None:
    from pipectl.store import deals

    conn.executemany("INSERT INTO deals (name, owner, pipeline_id, stage, currency, created_at, "
                     "updated_at, search) VALUES (?, ?, 1, 'prospecting', 'EUR', "
                     "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '')",
                     [(f"d{i}", o) for i, o in enumerate(["B", "A", None, "B", "Ą", "a"])])
    assert deals.owners(conn) == ["A", "B", "a", "Ą"]
    assert deals.owners(conn, most=2) == ["A", "B"]
    assert deals.has_owner(conn, "Ą") and not deals.has_owner(conn, "C")
