"""pipectl undo (issue 16), review findings: an undo never puts a deal back where its pipeline
no longer lets it be (a stage dropped, a pipeline removed since the change undone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_pipeline_file import EXAMPLE as AGENCY

NOW = "2026-06-30T12:00:00Z"


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


def _default_without_meeting(cli, tmp_path: Path) -> Path:
    toml = cli("pipeline", "export", "default").stdout
    kept = [line for line in toml.splitlines() if '{ key = "meeting"' not in line]
    assert len(kept) == len(toml.splitlines()) - 1
    path = tmp_path / "default.toml"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_undo_of_the_move_out_of_a_dropped_stage_is_refused(cli, tmp_path: Path) -> None:
    cli("add", "Acme renewal", "--stage", "meeting", "--prequalified", "referral",
        "--at", "2026-03-02T09:00")
    cli("pipeline", "apply", str(_default_without_meeting(cli, tmp_path)),
        "--move", "meeting=proposal")
    before = cli.json("show", "1")
    assert before["stage"] == "proposal"
    err = cli("undo", "1", "--yes", code=1).stderr
    assert "no longer has" in err and "nothing undone" in err
    assert cli.json("show", "1") == before
    assert "no problems found" in cli("db", "check").stdout
    cli("advance", "1")  # the deal still moves on


def test_undo_into_a_stage_dropped_after_the_deal_left_it_is_refused(cli, tmp_path: Path
                                                                     ) -> None:
    cli("add", "Acme renewal", "--stage", "meeting", "--prequalified", "referral",
        "--at", "2026-03-02T09:00")
    cli("advance", "1", "--at", "2026-03-03T09:00")  # meeting -> proposal
    cli("pipeline", "apply", str(_default_without_meeting(cli, tmp_path)))
    cli("undo", "1", "--yes", code=1)
    assert cli.json("show", "1")["stage"] == "proposal"


def test_undo_into_a_removed_pipeline_is_refused(cli, tmp_path: Path) -> None:
    path = tmp_path / "agency.toml"
    path.write_text(AGENCY)
    cli("pipeline", "apply", str(path))
    cli("add", "Retainer", "--pipeline", "agency retainers", "--at", "2026-03-02T09:00")
    cli("move", "1", "--pipeline", "default", "--at", "2026-03-03T09:00")
    cli("pipeline", "rm", "agency retainers")
    shown = cli("show", "1").stdout
    err = cli("undo", "1", "--yes", code=1).stderr
    assert "removed" in err and "nothing undone" in err
    assert cli("show", "1").stdout == shown
    assert "no problems found" in cli("db", "check").stdout
