"""Promise 8: a database written by the first released schema upgrades with nothing lost,
after a backup copy is taken.

tests/fixtures/schema_v1.db was written by pipectl's schema 1 (see make_schema_v1.py);
schema_v1.json records every deal and event it holds.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.reliability.helpers import FIXTURES, integrity, sha256

FIXTURE = FIXTURES / "schema_v1.db"
EXPECTED = json.loads((FIXTURES / "schema_v1.json").read_text())


def _rows(path: Path, table: str) -> list[dict]:
    # The committed fixture is read as immutable: not even a -shm file is made beside it.
    flags = "mode=ro&immutable=1" if path == FIXTURE else "mode=ro"
    con = sqlite3.connect(f"file:{path}?{flags}", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        con.close()


CRITERIA = ("location", "budget", "authority", "need")  # the checklist columns of schemas 1-3
CHECKLIST = {"deals": "checklist", "events": "checks"}  # their one JSON column from schema 4


def _assert_nothing_lost(path: Path) -> None:
    for table in ("deals", "events"):
        now = {r["id"]: r for r in _rows(path, table)}
        assert len(now) == len(EXPECTED[table]), table
        for old in EXPECTED[table]:
            new = dict(now[old["id"]])
            if CHECKLIST[table] in new:  # schema 4: the four columns are one JSON object
                marks = json.loads(new.pop(CHECKLIST[table]) or "{}")
                assert list(marks) == [c for c in CRITERIA if old[c] is not None]
                new.update({c: None if c not in marks else int(marks[c]) for c in CRITERIA})
                assert new["pipeline_id"] == (1 if table == "deals" or old["to_stage"] else None)
            if table == "deals":  # the search text is made anew (0012: folded, with notes)
                assert new["search"] in (old["search"], _search_of(path, new)), old["id"]
                old = {k: v for k, v in old.items() if k != "search"}
            # every schema-1 column keeps its value; later schemas may only add columns
            assert {k: new.get(k, "<column gone>") for k in old} == old, (table, old["id"])


def _search_of(path: Path, deal: dict) -> str:
    """The search text store.deals makes of a deal and its events."""
    from pipectl.store.deals import search_text

    events = [e for e in _rows(path, "events") if e["deal_id"] == deal["id"]]
    return search_text(deal, events)


def test_the_fixture_is_a_schema_1_pipectl_database(tmp_path):
    head = FIXTURE.read_bytes()[:100]
    assert head[68:72] == (0x70697065).to_bytes(4, "big")  # application_id "pipe"
    assert int.from_bytes(head[60:64], "big") == 1  # user_version
    copy = tmp_path / "copy.db"  # checked on a copy: nothing is ever opened beside the fixture
    shutil.copyfile(FIXTURE, copy)
    assert integrity(copy) == "ok"
    assert len(EXPECTED["deals"]) == 6 and len(EXPECTED["events"]) == 26
    _assert_nothing_lost(FIXTURE)


def test_schema_1_database_upgrades_to_current_with_nothing_lost(tmp_path, cli):
    from pipectl.store import schema
    from pipectl.store.db import connect

    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, db)
    before = sha256(db)

    conn = connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    _assert_nothing_lost(db)

    backup = tmp_path / "old.db.schema1.bak"
    if schema.VERSION > 1:
        assert backup.is_file(), "no backup was taken before the upgrade"
        assert backup.stat().st_mode & 0o777 == 0o600  # it holds the same data
        assert integrity(backup) == "ok"
        assert int.from_bytes(backup.read_bytes()[60:64], "big") == 1
        _assert_nothing_lost(backup)
    else:  # nothing to upgrade yet: the file is opened as is, and no backup is needed
        assert not backup.exists()
        assert sha256(db) == before

    # a second open changes nothing and takes no second backup
    connect(db).close()
    assert not (tmp_path / "old.db.schema1.2.bak").exists()

    # the upgraded file works through the CLI, names intact
    cli.db = db
    shown = cli.json("show", "1")
    assert shown["name"] == "Nguyễn Văn An"
    assert [e["kind"] for e in shown["events"]][-1] == "stage"
    assert shown["stage"] == "won"
    found = cli.json("list", "--status", "all", "--search", "ZAŻÓŁĆ")
    assert [d["id"] for d in found] == [2]



def test_upgrade_mechanism_with_a_synthetic_next_migration(tmp_path, monkeypatch):
    """Whatever VERSION is today, prove the upgrade path itself on the fixture: one extra
    migration (adding a column) runs once, after a backup of the schema-N file."""
    from pipectl.store import schema
    from pipectl.store.db import connect

    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, db)
    real = schema._migrations
    applied: list[int] = []

    def with_one_more():
        migrations = real()

        @migrations(name="9999_reliability_test")
        def extra(database) -> None:
            applied.append(1)
            database.conn.execute("ALTER TABLE deals ADD COLUMN reliability_probe TEXT")

        return migrations

    monkeypatch.setattr(schema, "_migrations", with_one_more)
    monkeypatch.setattr(schema, "VERSION", schema.VERSION + 1)
    for _ in range(2):
        connect(db).close()
    assert applied == [1]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    con.close()
    _assert_nothing_lost(db)
    # the backup is of the file as it was: schema 1 if VERSION is 1 today
    backups = sorted(tmp_path.glob("old.db.schema*.bak"))
    assert backups, "no backup was taken before the upgrade"
    first = tmp_path / "old.db.schema1.bak"
    assert first.is_file()
    assert int.from_bytes(first.read_bytes()[60:64], "big") == 1
    assert integrity(first) == "ok"
    _assert_nothing_lost(first)


def test_schema_3_database_upgrades_to_pipelines_with_nothing_lost(tmp_path, cli):
    """tests/fixtures/schema_v3.db: the same steps as schema_v1.db, written by the last
    pipectl of schema 3 (commit 586a045, before pipelines were data). It upgrades to the
    default pipeline with every deal, event and checklist mark, after a backup."""
    from pipectl.store.db import connect

    fixture = FIXTURES / "schema_v3.db"
    db = tmp_path / "v3.db"
    shutil.copyfile(fixture, db)
    assert int.from_bytes(db.read_bytes()[60:64], "big") == 3
    connect(db).close()
    _assert_nothing_lost(db)
    backup = tmp_path / "v3.db.schema3.bak"
    assert backup.is_file() and integrity(backup) == "ok"
    assert int.from_bytes(backup.read_bytes()[60:64], "big") == 3
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    assert con.execute("SELECT name, is_default FROM pipelines").fetchall() == [("default", 1)]
    con.close()
    cli.db = db
    shown = cli.json("show", "1")
    assert shown["pipeline"] == "default" and shown["stage"] == "won"
    assert shown["checklist"] == {"location": True, "budget": True, "authority": True,
                                  "need": True}
    assert cli.json("show", "3")["checklist"] == {"location": True, "budget": True,
                                                  "authority": None, "need": None}
    # the upgraded file takes a pipeline of its own and moves a deal into it
    toml = tmp_path / "two.toml"
    toml.write_text('name = "Two"\nstages = [\n  { key = "open", probability = 50 },\n'
                    '  { key = "done", kind = "won" },\n]\n')
    cli("pipeline", "apply", str(toml))
    cli("move", "4", "--pipeline", "Two")
    assert cli.json("show", "4")["stage"] == "open"
