"""pipectl undo (issue 16), the installed console script in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_installed import env, pytestmark, run  # noqa: F401 (fixture, skip mark)


def test_undo_in_a_script_needs_yes_and_the_funnel_forgets_the_mistake(env, tmp_path: Path  # noqa: F811
                                                                        ) -> None:
    env["PIPECTL_NOW"] = "2026-03-10T12:00:00Z"
    db = str(tmp_path / "p.db")
    run("--db", db, "add", "Acme", "--value", "500", "--at", "2026-03-01", env=env)
    before = json.loads(run("--db", db, "report", "--json", env=env).stdout)
    run("--db", db, "advance", "1", "--at", "2026-03-02", env=env)
    assert json.loads(run("--db", db, "report", "--json", env=env).stdout) != before
    refused = run("--db", db, "undo", env=env, code=2)  # stdin is no terminal
    assert refused.stderr.startswith("error: undo needs confirmation and there is no terminal")
    done = run("--db", db, "undo", "--yes", env=env)
    assert done.stdout.splitlines() == [
        "Undo on deal 1 (Acme): advance prospecting -> qualification, 2026-03-02 00:00 UTC",
        "Undone: advance prospecting -> qualification, 2026-03-02 00:00 UTC; "
        "deal 1 is in prospecting again"]
    assert json.loads(run("--db", db, "report", "--json", env=env).stdout) == before
    shown = run("--db", db, "show", "1", env=env).stdout
    assert "[undone] advanced: prospecting -> qualification" in shown
    run("--db", db, "undo", "--yes", env=env, code=1)  # only the creation is left
