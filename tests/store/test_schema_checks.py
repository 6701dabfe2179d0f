"""Migration 0003 rewrites the text IN-list CHECKs as OR chains: the same constraints, checked
faster. Both forms must accept and refuse exactly the same values."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pipectl.store import db, schema

# SQLite's own schema: the CHECKs migration 0003 rewrote, a schema-1 file upgraded, an
# authorizer that keeps the file's schema from being written. (A server's schema is made at
# the current version: store/postgres/schema.py.)
pytestmark = pytest.mark.sqlite_only("SQLite's schema, its migrations and a schema-1 file")

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1.db"


def _tables(sql: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA foreign_keys = OFF")
    schema.run_script(conn, sql)
    return conn


def _accepts(conn: sqlite3.Connection, table: str, values: dict) -> bool:
    cols = ", ".join(values)
    try:
        conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(values))})",
                     list(values.values()))
    except sqlite3.IntegrityError:
        return False
    return True


DEAL = {"name": "X", "currency": "USD", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z"}
EVENT = {"deal_id": 1, "at": "2026-01-01T00:00:00Z"}
ODD = ["", "LOST", "won ", " won", "wo", "post purchase", "note", "prospecting'", None, 1]

CASES = (
    [("deals", {**DEAL, "stage": v}) for v in ("prospecting", "won", "lost", *ODD)]
    + [("deals", {**DEAL, "stage": "lost", "lost_at_stage": v})
       for v in ("proposal", "won", "lost", *ODD)]
    + [("deals", {**DEAL, "stage": "meeting", "lost_at_stage": v}) for v in ("proposal", None)]
    + [("events", {**EVENT, "kind": v, "to_stage": "meeting"})
       for v in ("created", "stage", "note", *ODD)]
    + [("events", {**EVENT, "kind": "note", "from_stage": v}) for v in ("won", *ODD)]
    + [("events", {**EVENT, "kind": k, "to_stage": v})
       for k in ("created", "value") for v in ("meeting", "post_purchase", *ODD)]
)


@pytest.mark.parametrize("table, values", CASES)
def test_or_chains_accept_exactly_what_in_lists_accept(table: str, values: dict) -> None:
    old = _tables(schema.SCHEMA_V1)
    new = _tables(schema.or_checks(schema.SCHEMA_V1))
    assert _accepts(new, table, values) == _accepts(old, table, values)


def test_the_rewrite_leaves_no_text_in_list_and_changes_nothing_else() -> None:
    rewritten = schema.or_checks(schema.SCHEMA_V1)
    assert "IN ('" not in rewritten
    assert "(stage = 'prospecting' OR stage = 'qualification' OR " in rewritten
    assert rewritten.count("IN (0, 1)") == schema.SCHEMA_V1.count("IN (0, 1)")
    # outside the IN lists, the text is the same
    assert schema.or_checks(rewritten) == rewritten


def test_new_and_upgraded_databases_have_the_same_tables(tmp_path: Path) -> None:
    fresh = db.connect(tmp_path / "new.db")
    shutil.copy(FIXTURE, tmp_path / "old.db")
    upgraded = db.connect(tmp_path / "old.db")
    query = "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name IN " \
            "('deals', 'events') ORDER BY name"
    assert fresh.execute(query).fetchall() == upgraded.execute(query).fetchall()
    assert "IN ('" not in " ".join(r[1] for r in fresh.execute(query))
    assert upgraded.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the constraint still holds after the upgrade, in this connection and a new one
    for conn in (upgraded, sqlite3.connect(tmp_path / "old.db")):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO events (deal_id, at, kind, to_stage) "
                         "SELECT id, '2026-01-01T00:00:00Z', 'created', 'nowhere' FROM deals "
                         "LIMIT 1")


def test_where_the_schema_cannot_be_written_nothing_changes(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    schema.run_script(conn, schema.SCHEMA_V1)

    def deny(action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_schema"):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    before = conn.execute("SELECT sql FROM sqlite_schema").fetchall()
    conn.set_authorizer(deny)
    conn.execute("BEGIN")
    assert schema.rewrite_table_sql(conn, {"deals": schema.or_checks}) is False
    conn.execute("COMMIT")
    conn.set_authorizer(None)
    assert conn.execute("SELECT sql FROM sqlite_schema").fetchall() == before
