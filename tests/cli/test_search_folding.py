"""Search that finds (issue 16): --search and --owner as a person types (accents and case
aside), notes searched too, an owner named by a word's start, "did you mean" notes for a new
owner or lost reason close to one there is, a warning for a second open deal of the same name,
and migration 0012, which recomputes the search texts of an older database."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from tests import engines


def names(cli, *args: str) -> list[str]:
    return [d["name"] for d in cli.json("list", "--status", "all", *args)]


@pytest.fixture
def world(cli):
    cli("add", "Đơn hàng Hà Nội", "--company", "Công ty Nguyễn Thị Hằng", "--owner", "Minh Trần",
        "--at", "2026-01-05")
    cli("add", "Zamówienie", "--company", "Łódź Metal", "--owner", "Łukasz", "--at", "2026-01-05")
    cli("add", "Dvořák Audio pilot", "--owner", "Anna Kowalska", "--at", "2026-01-05")
    cli("add", "Straße GmbH", "--owner", "Anna Nowak", "--at", "2026-01-05")
    return cli


# ---------------------------------------------------------------- --search


@pytest.mark.parametrize("typed, found", [
    ("nguyen", ["Đơn hàng Hà Nội"]),
    ("NGUYỄN THỊ", ["Đơn hàng Hà Nội"]),
    ("don hang ha noi", ["Đơn hàng Hà Nội"]),
    ("lodz", ["Zamówienie"]),
    ("ŁÓDŹ metal", ["Zamówienie"]),
    ("zamowienie", ["Zamówienie"]),
    ("dvorak", ["Dvořák Audio pilot"]),
    ("strasse", ["Straße GmbH"]),
    ("lukasz", ["Zamówienie"]),  # the owner is searched too
    ("warsaw", []),
])
def test_search_without_accents_or_case(world, typed: str, found: list[str]) -> None:
    assert names(world, "--search", typed) == found


def test_a_word_only_in_a_note_is_found(world) -> None:
    world("note", "1", "Gọi điện: khách muốn giảm giá", "--next", "Gửi báo giá mới",
          "--at", "2026-01-06")
    world("add", "Later", "--note", "Met at the Kraków fair", "--at", "2026-01-06")
    world("advance", "3", "--note", "Spoke with the CFO", "--at", "2026-01-06")
    assert names(world, "--search", "giam gia") == ["Đơn hàng Hà Nội"]
    assert names(world, "--search", "gui bao gia") == ["Đơn hàng Hà Nội"]  # the next step
    assert names(world, "--search", "krakow fair") == ["Later"]
    assert names(world, "--search", "cfo") == ["Dvořák Audio pilot"]  # a move's note
    # an edit keeps what the notes said; a new name is found, the old one not
    world("edit", "1", "--name", "Hợp đồng Hải Phòng", "--at", "2026-01-07")
    assert names(world, "--search", "giam gia") == ["Hợp đồng Hải Phòng"]
    assert names(world, "--search", "hai phong") == ["Hợp đồng Hải Phòng"]
    assert names(world, "--search", "ha noi") == []
    assert world.json("db", "check")["ok"] is True  # the search texts as the events make them


def test_an_import_searches_its_notes_both_ways(cli, tmp_path: Path, monkeypatch) -> None:
    from pipectl.transfer import common

    f = tmp_path / "deals.csv"
    f.write_text("name,company,note\nKraków pilot,Żagle,Chce rabat w złotówkach\n"
                 "Hà Nội order,,Khách hàng đồng ý\n", encoding="utf-8")
    cli("import", str(f))
    assert names(cli, "--search", "zlotowkach") == ["Kraków pilot"]
    assert names(cli, "--search", "dong y") == ["Hà Nội order"]
    other = cli.another("bulk.db")
    monkeypatch.setattr(common, "BULK_BYTES", 0)  # the rows converted in SQL
    other("import", str(f))
    assert names(other, "--search", "zlotowkach") == ["Kraków pilot"]
    assert engines.rows(cli.db, "SELECT search FROM deals ORDER BY id") == engines.rows(
        other.db, "SELECT search FROM deals ORDER BY id")
    assert other.json("db", "check")["ok"] is True


# ---------------------------------------------------------------- --owner


@pytest.mark.parametrize("typed", ["Minh Trần", "minh", "MINH", "tran", "Trần", "minh tran",
                                   "Minh Tr"])
def test_owner_by_a_word_or_without_accents(world, typed: str) -> None:
    r = world("list", "--owner", typed, "--json")
    assert r.stderr == ""
    assert names(world, "--owner", typed) == ["Đơn hàng Hà Nội"]


@pytest.mark.parametrize("command", ["board", "report", "stale", "next", "forecast"])
def test_owner_matched_the_same_by_every_reader(world, command: str, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-27T10:00:00Z")
    assert world(command, "--owner", "tran", "--json").stdout == world(
        command, "--owner", "Minh Trần", "--json").stdout


def test_an_ambiguous_owner_is_refused_naming_them(world) -> None:
    r = world("list", "--owner", "anna", code=2)
    assert r.stdout == ""
    assert r.stderr == ("error: --owner 'anna' matches several owners: 'Anna Kowalska', "
                        "'Anna Nowak' (give more of the name)\n")
    assert names(world, "--owner", "anna k") == ["Dvořák Audio pilot"]
    assert names(world, "--owner", "nowak") == ["Straße GmbH"]


def test_an_exact_name_wins_over_a_folded_one(world) -> None:
    world("add", "Other", "--owner", "Lukasz", "--at", "2026-01-05")
    assert names(world, "--owner", "Lukasz") == ["Other"]
    assert names(world, "--owner", "Łukasz") == ["Zamówienie"]
    r = world("list", "--owner", "lukasz", code=2)  # both fold to it
    assert "matches several owners: 'Lukasz', 'Łukasz'" in r.stderr
    # no more of the name tells them apart: the hint says to type the accents
    assert "(type the name as it is written, accents included)" in r.stderr


@pytest.mark.parametrize("typed", ["łukasz", "ŁUKASZ", "łuk"])
def test_accents_typed_tell_apart_owners_that_differ_only_by_them(world, typed: str) -> None:
    world("add", "Other", "--owner", "Lukasz", "--at", "2026-01-05")
    assert names(world, "--owner", typed) == ["Zamówienie"]


@pytest.mark.sqlite_only("'me' is PIPECTL_USER on a file (a server's team names it)")
def test_me_is_matched_too(world, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_USER", "minh")
    assert names(world, "--owner", "me") == ["Đơn hàng Hà Nội"]


# ---------------------------------------------------------------- did you mean, duplicates


def test_a_new_owner_close_to_one_there_is_gets_a_note(world) -> None:
    r = world("add", "New one", "--owner", "Lukasz", "--at", "2026-01-06")
    assert r.stdout == "Added deal 5: New one (prospecting)\n"  # unchanged
    assert r.stderr == 'note: owner "Lukasz" is new; did you mean "Łukasz"?\n'
    r = world("add", "Two", "--owner", "Minh Tran", "-q", "--at", "2026-01-06")
    assert r.stdout == "6\n"  # scripts read the id
    assert r.stderr == 'note: owner "Minh Tran" is new; did you mean "Minh Trần"?\n'
    assert world("add", "Three", "--owner", "Anna Kowalska", "--at", "2026-01-06").stderr == ""
    assert world("add", "Four", "--owner", "Zofia", "--at", "2026-01-06").stderr == ""
    r = world("edit", "3", "--owner", "Anna Kowalsky", "--at", "2026-01-06")
    assert r.stdout == "Deal 3: changed owner\n"
    assert r.stderr == 'note: owner "Anna Kowalsky" is new; did you mean "Anna Kowalska"?\n'
    # renaming a deal's own owner (no other deal has it) is no typo
    world("add", "Solo", "--owner", "Piotr Wiśniewski", "--at", "2026-01-06")
    assert world("edit", "9", "--owner", "Piotr Wisniewski", "--at", "2026-01-07").stderr == ""
    # accepted as typed all the same
    assert world.json("show", "5")["owner"] == "Lukasz"


def test_a_new_lost_reason_close_to_one_there_is_gets_a_note(world) -> None:
    r = world("lose", "1", "--reason", "chose a competitor", "--at", "2026-01-06")
    assert r.stderr == ""
    r = world("lose", "2", "--reason", "Chose a competitr", "--at", "2026-01-06")
    assert r.stdout == "Deal 2 lost at prospecting: Chose a competitr\n"
    assert r.stderr == ('note: reason "Chose a competitr" is new; did you mean '
                        '"chose a competitor"?\n')
    assert world("lose", "3", "--reason", "no budget", "--at", "2026-01-06").stderr == ""


def test_a_second_open_deal_of_the_same_name_is_warned_of(world) -> None:
    world("add", "Acme renewal", "--company", "Acme", "--at", "2026-01-06")
    r = world("add", "ACME Renewal", "--company", "acme", "--at", "2026-01-06")
    assert r.stdout == "Added deal 6: ACME Renewal (prospecting)\n"
    assert r.stderr == ('warning: deal 5 "Acme renewal" (Acme) is already open; '
                        "added anyway as deal 6\n")
    # another company, or none: another deal
    assert world("add", "Acme renewal", "--company", "Acme Inc", "--at", "2026-01-06"
                 ).stderr == ""
    assert world("add", "Acme renewal", "--at", "2026-01-06").stderr == ""
    r = world("add", "Acme renewal", "-q", "--at", "2026-01-06")
    assert (r.stdout, r.stderr) == ("9\n", 'warning: deal 8 "Acme renewal" is already open; '
                                           "added anyway as deal 9\n")
    # a lost deal of the same name is no duplicate
    world("add", "Đơn hàng Sài Gòn", "--at", "2026-01-06")
    world("lose", "10", "--reason", "no budget", "--at", "2026-01-07")
    assert world("add", "don hang sai gon", "--at", "2026-01-08").stderr == ""


def test_the_names_for_completion(world) -> None:
    from pipectl.services import names

    world("lose", "1", "--reason", "no budget", "--at", "2026-01-06")
    world("lose", "2", "--reason", "chose a competitor", "--at", "2026-01-06")
    world("lose", "3", "--reason", "no budget", "--at", "2026-01-06")
    conn = engines.connect(world.db)
    try:
        assert names.owners(conn) == ["Anna Kowalska", "Anna Nowak", "Minh Trần", "Łukasz"]
        assert names.lost_reasons(conn) == ["no budget", "chose a competitor"]
        assert names.pipelines(conn) == ["default"]
        assert names.stages(conn)[:2] == [("prospecting", "Prospecting"),
                                          ("qualification", "Lead qualification")]
        every = names.every(conn)
        assert every["reasons"] == ["no budget", "chose a competitor"]
        assert every["stages"]["default"][0] == ("prospecting", "Prospecting")
    finally:
        conn.close()


# ---------------------------------------------------------------- migration 0012


def _as_schema_11(db: engines.Target) -> None:
    """Make the database look as schema 11 left it: search texts as they were made before
    (NFC, case-folded, no notes), without the indexes 0012 adds."""
    old = []
    for deal_id, *fields in engines.rows(
            db, "SELECT id, name, company, contact, email, owner, source, ref FROM deals"):
        text = unicodedata.normalize("NFC", " ".join(f for f in fields if f)).casefold()
        quoted = text.replace("'", "''")
        old.append(f"UPDATE deals SET search = '{quoted}' WHERE id = {deal_id}")
    if engines.is_url(db):
        forget = "DELETE FROM pipectl_migrations WHERE version = 12"
    else:
        forget = "DELETE FROM _sqlite_migrations WHERE name = '0012_search_folding'"
    engines.execute(db, "DROP INDEX deals_search_start", "DROP INDEX deals_lost_reason",
                    *old, forget)
    if not engines.is_url(db):
        engines.execute(db, "PRAGMA user_version = 11")


def test_migration_12_recomputes_every_search_text(world) -> None:
    world("note", "1", "Khách muốn giảm giá", "--at", "2026-01-06")
    made = engines.rows(world.db, "SELECT id, search FROM deals ORDER BY id")
    _as_schema_11(world.db)
    assert engines.rows(world.db, "SELECT search FROM deals WHERE id = 1")[0][0].startswith(
        "đơn hàng hà nội")  # as schema 11 made it
    assert names(world, "--search", "giam gia") == ["Đơn hàng Hà Nội"]  # upgraded first
    assert engines.rows(world.db, "SELECT id, search FROM deals ORDER BY id") == made
    conn = engines.connect(world.db)
    try:
        assert {"deals_search_start", "deals_lost_reason"} <= set(engines.indexes(conn))
    finally:
        conn.close()
    assert names(world, "--search", "lodz") == ["Zamówienie"]
    assert world.json("db", "check")["ok"] is True  # the schema as the migrations make it
