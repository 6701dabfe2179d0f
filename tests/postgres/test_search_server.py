"""Search as a person types it, on a PostgreSQL server: the same search texts as a file's
(folded in Python, the server's "C" collation compares them as bytes), and migration 12's
server road (every deal's text computed in Python, written back through COPY and one UPDATE)
equal to what each write makes."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import Cli

NOW = "2026-12-01T09:00:00Z"


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


def _fill(cli: Cli) -> None:
    cli("add", "Đơn hàng Hà Nội", "--company", "Công ty Nguyễn Thị Hằng", "--owner", "Minh Trần")
    cli("add", "Zamówienie", "--company", "Łódź Metal", "--owner", "Łukasz",
        "--note", "Chce rabat\nw złotówkach")
    cli("note", "1", "Gọi điện với giám đốc", "--next", "Gửi báo giá")
    cli("add", "Straße GmbH", "--owner", "Anna")


def test_search_texts_and_finds_are_the_same_on_a_server(pg_url: str, tmp_path: Path) -> None:
    server, file = Cli(pg_url), Cli(tmp_path / "p.db")
    for cli in (server, file):
        _fill(cli)
    for typed, found in [("nguyen thi hang", [1]), ("LODZ", [2]), ("zlotowkach", [2]),
                         ("giam doc", [1]), ("gui bao gia", [1]), ("strasse", [3])]:
        for cli in (server, file):
            assert [d["id"] for d in cli.json("list", "--search", typed)] == found, typed
    assert [d["id"] for d in server.json("list", "--owner", "tran")] == [1]
    with psycopg.connect(pg_url) as con:
        on_server = con.execute("SELECT id, search FROM deals ORDER BY id").fetchall()
    import sqlite3

    in_file = sqlite3.connect(tmp_path / "p.db").execute(
        "SELECT id, search FROM deals ORDER BY id").fetchall()
    assert on_server == in_file


def test_migration_12_on_a_server_recomputes_every_search_text(pg_url: str) -> None:
    server = Cli(pg_url)
    _fill(server)
    with psycopg.connect(pg_url) as con:
        made = con.execute("SELECT id, search FROM deals ORDER BY id").fetchall()
        con.execute("UPDATE deals SET search = lower(name)")
        con.execute("DROP INDEX deals_search_start")
        con.execute("DROP INDEX deals_lost_reason")
        con.execute("DELETE FROM pipectl_migrations WHERE version = 12")
    assert [d["id"] for d in server.json("list", "--search", "zlotowkach")] == [2]  # upgraded
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT id, search FROM deals ORDER BY id").fetchall() == made
        indexes = {r[0] for r in con.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
        assert {"deals_search_start", "deals_lost_reason"} <= indexes
        assert con.execute("SELECT max(version) FROM pipectl_migrations").fetchone()[0] == 12
    assert server.json("db", "check")["ok"] is True
