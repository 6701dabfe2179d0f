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
