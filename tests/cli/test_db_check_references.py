"""pipectl db check tells a row whose deal is gone from a row naming a stage (or a pipeline)
that does not exist: PRAGMA foreign_key_check reports both since schema 4."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import Cli

NOW = "2026-03-01T10:00:00Z"


def _damaged_copy(cli, db_path: Path, tmp_path: Path) -> Path:
    """A copy of a healthy database with rows SQLite would refuse with foreign keys on."""
    cli("add", "Acme", "--value", "10", "--at", "2026-01-01")
    assert cli.json("db", "check")["ok"] is True
    copy = tmp_path / "damaged.db"
    cli("db", "backup", str(copy))
    con = sqlite3.connect(copy)
    try:
        con.execute("PRAGMA foreign_keys = OFF")
        # history without its deal
        con.execute(
            "INSERT INTO events (deal_id, at, kind, text) VALUES (99, ?, 'note', 'orphan')", [NOW]
        )
        # a deal and an event naming a stage the default pipeline (id 1) never had
        con.execute(
            "INSERT INTO deals (name, pipeline_id, stage, currency, created_at, updated_at) "
            "VALUES ('Ghost stage', 1, 'nowhere', 'USD', ?, ?)", [NOW, NOW]
        )
        con.execute(
            "INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage) "
            "VALUES (1, ?, 'stage', 1, 'lead', 'limbo')", [NOW]
        )
        # a version of a pipeline that does not exist
        con.execute(
            "INSERT INTO pipeline_versions (pipeline_id, version, at, definition) "
            "VALUES (42, 1, ?, '{}')", [NOW]
        )
        con.commit()
    finally:
        con.close()
    return copy


def test_check_tells_a_missing_deal_from_a_missing_stage(cli, db_path, tmp_path) -> None:
    copy = _damaged_copy(cli, db_path, tmp_path)
    damaged = Cli(copy)
    out = damaged("db", "check", code=1).stdout
    assert "1 row in events belong to a deal that no longer exists (history without its deal)" \
        in out
    assert "2 rows in deals, events name a stage their pipeline does not have" in out
    assert "1 row in pipeline_versions belongs to a pipeline that no longer exists" in out
    # the stage rows are not called history without its deal, nor the deal rows stage rows
    lines = [line for line in out.splitlines() if line.strip().startswith("- ")]
    assert len(lines) == 3
    assert sum("no longer exists (history without its deal)" in line for line in lines) == 1
    assert all("deals, events" not in line for line in lines if "deal that" in line)

    report = json.loads(damaged("db", "check", "--json", code=1).stdout)
    assert report["ok"] is False
    assert report["orphan_rows"] == 4
    assert report["integrity"] == "ok"
    assert len(report["problems"]) == 3
    # the original is untouched
    assert cli.json("db", "check")["ok"] is True


def test_check_names_only_the_stage_problem_when_every_deal_exists(cli, db_path, tmp_path):
    cli("add", "Acme", "--at", "2026-01-01")
    copy = tmp_path / "copy.db"
    cli("db", "backup", str(copy))
    con = sqlite3.connect(copy)
    try:
        con.execute("PRAGMA foreign_keys = OFF")
        con.execute(
            "INSERT INTO deals (name, pipeline_id, stage, currency, created_at, updated_at) "
            "VALUES ('Elsewhere', 7, 'lead', 'USD', ?, ?)", [NOW, NOW]
        )
        con.commit()
    finally:
        con.close()
    result = Cli(copy)("db", "check", code=1)
    assert "1 row in deals names a stage its pipeline does not have" in result.stdout
    assert "deal that no longer exists" not in result.stdout
