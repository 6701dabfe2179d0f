"""pipectl db check tells a row whose deal is gone from a row naming a stage (or a pipeline)
that does not exist: PRAGMA foreign_key_check reports both since schema 4."""

from __future__ import annotations

import json
from pathlib import Path

from tests import engines
from tests.conftest import Cli

NOW = "2026-03-01T10:00:00Z"


def _copy(cli: Cli, tmp_path: Path, *add: str) -> Cli:
    """A copy of the database: db backup of the file; on a server (no db backup there), a new
    database made by the same command."""
    cli("add", *add)
    if cli.engine == "sqlite":
        copy = tmp_path / "damaged.db"
        cli("db", "backup", str(copy))
        return Cli(copy)
    other = cli.another("damaged.db")
    other("add", *add)
    return other


def _damaged_copy(cli, db_path: Path, tmp_path: Path) -> Cli:
    """A copy of a healthy database with rows SQLite would refuse with foreign keys on."""
    copy = _copy(cli, tmp_path, "Acme", "--value", "10", "--at", "2026-01-01")
    assert cli.json("db", "check")["ok"] is True
    engines.execute(
        copy.db,
        # history without its deal
        f"INSERT INTO events (deal_id, at, kind, text) VALUES (99, '{NOW}', 'note', 'orphan')",
        # a deal and an event naming a stage the default pipeline (id 1) never had
        "INSERT INTO deals (name, pipeline_id, stage, currency, created_at, updated_at) "
        f"VALUES ('Ghost stage', 1, 'nowhere', 'USD', '{NOW}', '{NOW}')",
        "INSERT INTO events (deal_id, at, kind, pipeline_id, from_stage, to_stage) "
        f"VALUES (1, '{NOW}', 'stage', 1, 'lead', 'limbo')",
        # a version of a pipeline that does not exist
        "INSERT INTO pipeline_versions (pipeline_id, version, at, definition) "
        f"VALUES (42, 1, '{NOW}', '{{}}')",
        checks_off=True,
    )
    return copy


def test_check_tells_a_missing_deal_from_a_missing_stage(cli, db_path, tmp_path) -> None:
    damaged = _damaged_copy(cli, db_path, tmp_path)
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
    copy = _copy(cli, tmp_path, "Acme", "--at", "2026-01-01")
    engines.execute(
        copy.db,
        "INSERT INTO deals (name, pipeline_id, stage, currency, created_at, updated_at) "
        f"VALUES ('Elsewhere', 7, 'lead', 'USD', '{NOW}', '{NOW}')",
        checks_off=True,
    )
    result = copy("db", "check", code=1)
    assert "1 row in deals names a stage its pipeline does not have" in result.stdout
    assert "deal that no longer exists" not in result.stdout
