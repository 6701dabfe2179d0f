"""The installed pipectl, in a subprocess: import a real file, export it, import the export."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.reliability.helpers import run


def test_import_export_import_with_the_installed_command(tmp_path: Path, real_data: Path):
    db = tmp_path / "a.db"
    f = real_data / "hubspot" / "hubspot-crm-exports-all-deals-2023-04-03.masked.csv"
    r = run(db, "import", str(f), "--json", PIPECTL_NOW="2026-11-27T00:00:00Z")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 87
    out = tmp_path / "all.json"
    r = run(db, "export", "--format", "json", "--events", "-o", str(out))
    assert r.returncode == 0 and "Exported 87 deals" in r.stderr
    copy = tmp_path / "b.db"
    r = run(copy, "import", str(out))
    assert r.returncode == 0, r.stderr

    def dump(p: Path) -> list[list[tuple]]:
        con = sqlite3.connect(p)
        try:
            return [con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                    for t in ("deals", "events")]
        finally:
            con.close()

    assert dump(copy) == dump(db)
    r = run(copy, "db", "check")
    assert r.returncode == 0 and "no problems found" in r.stdout


def test_a_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = run(tmp_path / "a.db", "import", str(tmp_path / "missing.csv"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


def test_export_then_import_keeps_each_deals_pipeline(tmp_path: Path) -> None:
    """Deals in two pipelines, one moved from one to the other: the export names each deal's
    pipeline and carries its definition, from which a database without it creates it (the same
    tables). A file without the definitions (written before pipectl carried them) is refused by
    such a database in one line, taken once it has the pipeline or is told to make it from the
    file (--create-pipeline)."""
    from tests.cli.test_import_cli import AGENCY

    toml = tmp_path / "agency.toml"
    toml.write_text(AGENCY, encoding="utf-8")
    db = tmp_path / "a.db"
    at = {"PIPECTL_NOW": "2026-11-27T00:00:00Z"}
    for args in (("pipeline", "apply", str(toml)),
                 ("add", "Retainer", "--pipeline", "Agency retainers", "--at", "2026-01-01"),
                 ("qualify", "1", "budget", "need", "--at", "2026-01-02"),
                 ("add", "Widgets", "--value", "100", "--at", "2026-01-03"),
                 ("move", "2", "--pipeline", "Agency retainers", "--stage", "lead",
                  "--at", "2026-01-04")):
        r = run(db, *args, **at)
        assert r.returncode == 0, (args, r.stderr)
    out = tmp_path / "all.json"
    r = run(db, "export", "--format", "json", "--events", "-o", str(out))
    assert r.returncode == 0, r.stderr
    exported = json.loads(out.read_text())
    assert exported["pipectl_export"] == 2
    assert [d["pipeline"] for d in exported["deals"]] == ["Agency retainers"] * 2
    assert exported["deals"][0]["checklist"] == {"budget": True, "need": True}

    old = tmp_path / "old.json"
    old.write_text(json.dumps({k: v for k, v in exported.items() if k != "pipelines"}),
                   encoding="utf-8")
    bare = tmp_path / "b.db"
    r = run(bare, "import", str(old))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "pipeline 'Agency retainers', which this database does not have" in r.stderr

    copy = tmp_path / "c.db"
    assert run(copy, "pipeline", "apply", str(toml), **at).returncode == 0
    r = run(copy, "import", str(out))
    assert r.returncode == 0, r.stderr

    def dump(p: Path) -> list[list[tuple]]:
        con = sqlite3.connect(p)
        try:
            return [con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                    for t in ("deals", "events")]
        finally:
            con.close()

    assert dump(copy) == dump(db)
    fresh = tmp_path / "d.db"
    r = run(fresh, "import", str(out))
    assert r.returncode == 0, r.stderr
    assert "  created pipeline 'Agency retainers' from the file\n" in r.stdout
    assert dump(fresh) == dump(db)
    r = run(bare, "import", str(old), "--create-pipeline", "Agency retainers", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pipeline_created"] is True
    assert run(bare, "db", "check").returncode == 0
