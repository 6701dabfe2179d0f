"""pipectl db path, db backup, db check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests import engines


@pytest.mark.sqlite_only("db path prints a file's path; it does not run on a server yet")
def test_db_path(cli, db_path: Path) -> None:
    assert cli("db", "path").stdout.strip() == str(db_path)


@pytest.mark.sqlite_only("db backup copies a file (sqlite3 reads the copy); it does not run "
                         "on a server yet")
def test_backup_is_a_consistent_copy_and_never_overwrites(cli, tmp_path: Path) -> None:
    cli("add", "Acme", "--value", "10")
    target = tmp_path / "copy.db"
    assert "Backed up" in cli("db", "backup", str(target)).stdout
    con = sqlite3.connect(target)
    try:
        assert con.execute("SELECT name FROM deals").fetchall() == [("Acme",)]
    finally:
        con.close()
    again = cli("db", "backup", str(target), code=2)  # as export -o: the FILE given is wrong
    assert "never overwrites" in again.stderr
    missing = cli("db", "backup", str(tmp_path / "nope" / "x.db"), code=2)
    assert "does not exist" in missing.stderr


def test_check_ok(cli) -> None:
    cli("add", "Acme")
    out = cli("db", "check").stdout
    assert "no problems found (1 deal, 1 event;" in out
    assert cli.json("db", "check")["ok"] is True


def test_check_finds_history_without_its_deal(cli, db_path: Path) -> None:
    cli("add", "Acme")
    engines.execute(db_path, "INSERT INTO events (deal_id, at, kind, text) VALUES (99, "
                             "'2026-01-01T00:00:00Z', 'note', 'orphan')", checks_off=True)
    result = cli("db", "check", code=1)
    assert "1 row in events belong to a deal that no longer exists" in result.stdout
    report = cli("db", "check", "--json", code=1)
    assert '"orphan_rows": 1' in report.stdout
