"""Shell completion against a PostgreSQL server: the same values as a file's, read in
read-only transactions; a database without pipectl's schema is left without one."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pipectl.cli import completion
from tests.conftest import Cli


def _fill(cli: Cli) -> None:
    cli("add", "Sao Mai", "--owner", "Nguyễn Thị Mai", "--value", "1", "--currency", "EUR")
    cli("add", "Pilot", "--owner", "Anna", "--value", "2", "--currency", "USD")
    cli("add", "Gone", "--owner", "Anna")
    cli("lose", "3", "--reason", "went silent")


@pytest.mark.parametrize("words", [
    ["lose", ""], ["reopen", ""], ["show", "1"], ["list", "--owner", ""],
    ["lose", "1", "--reason", ""], ["advance", "1", "--to", ""], ["add", "x", "--currency", ""],
    ["board", "--pipeline", ""],
])
def test_a_server_completes_as_a_file_does(pg_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, words) -> None:
    server, file = Cli(pg_url), Cli(tmp_path / "p.db")
    for cli in (server, file):
        _fill(cli)
    found = {}
    for cli in (server, file):
        monkeypatch.setenv("PIPECTL_DB", str(cli.db))
        found[cli.engine] = completion.complete(words).items
    assert found["postgres"] == found["sqlite"] and found["sqlite"]


def test_an_empty_server_database_stays_empty(pg_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_DB", pg_url)
    assert completion.complete(["list", "--owner", ""]).items == []
    with psycopg.connect(pg_url) as con:
        tables = con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                             ).fetchone()
    assert tables == (0,)
