"""Pipelines in the database: their versions (never overwritten) and the stage keys that deals
and events may name.

A pipeline's definition is stored as canonical JSON (``domain.pipeline.to_json``), one row
per version with the moment it came into force. ``load`` gives the version in force at a
moment (the first version for anything earlier than it), which is what a figure for that
moment must use.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from pipectl.domain.pipeline import LOST, Pipeline, fold_name
from pipectl.domain.pipeline import from_json as pipeline_json_from
from pipectl.domain.pipeline import to_json as pipeline_json
from pipectl.errors import NotFound, UsageError


def _from_row(row: Any) -> Pipeline:
    return replace(pipeline_json_from(row[2]), id=int(row[0]), version=int(row[1]))


def load(conn: sqlite3.Connection, pipeline_id: int, at: str | None = None) -> Pipeline:
    """The definition of pipeline ``pipeline_id`` in force at ``at`` (ISO UTC), else its
    latest."""
    if at is None:
        row = conn.execute(
            "SELECT pipeline_id, version, definition FROM pipeline_versions "
            "WHERE pipeline_id = ? ORDER BY version DESC LIMIT 1", (pipeline_id,)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT pipeline_id, version, definition FROM pipeline_versions "
            "WHERE pipeline_id = ? ORDER BY (at <= ?) DESC, "
            "CASE WHEN at <= ? THEN version ELSE -version END DESC LIMIT 1",
            (pipeline_id, at, at),
        ).fetchone()
    if row is None:
        raise NotFound(f"no pipeline with id {pipeline_id}")
    return _from_row(tuple(row))


def rows(conn: sqlite3.Connection, removed: bool = False) -> list[dict[str, Any]]:
    """Every pipeline: id, name, is_default, created_at, removed_at, version (latest), since
    (when that version came into force), deals (how many are in it now)."""
    where = "" if removed else "WHERE p.removed_at IS NULL"
    return [dict(zip(("id", "name", "is_default", "created_at", "removed_at", "version",
                      "since", "deals"), r, strict=True)) for r in conn.execute(
        "SELECT p.id, p.name, p.is_default, p.created_at, p.removed_at, v.version, v.at, "
        "(SELECT count(*) FROM deals d WHERE d.pipeline_id = p.id) "
        "FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id "
        "AND v.version = (SELECT max(version) FROM pipeline_versions WHERE pipeline_id = p.id) "
        f"{where} ORDER BY p.is_default DESC, p.name"
    )]


def default_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT id FROM pipelines WHERE is_default = 1").fetchone()
    return int(row[0]) if row else 1


def default(conn: sqlite3.Connection) -> Pipeline:
    return load(conn, default_id(conn))


def find_id(conn: sqlite3.Connection, name: str) -> int | None:
    """The id of the pipeline named ``name`` (exactly, else folded: case, spaces, - and _ alike),
    or None."""
    exact = conn.execute(
        "SELECT id FROM pipelines WHERE name = ? AND removed_at IS NULL", (name,)
    ).fetchone()
    if exact:
        return int(exact[0])
    wanted = fold_name(name)
    found = [r[0] for r in conn.execute("SELECT id, name FROM pipelines WHERE removed_at IS NULL")
             if fold_name(r[1]) == wanted]
    return int(found[0]) if len(found) == 1 else None


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    """Is ``name`` the (exact) name of any pipeline, removed ones included?"""
    return conn.execute("SELECT 1 FROM pipelines WHERE name = ?", (name,)).fetchone() is not None


def names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM pipelines WHERE removed_at IS NULL ORDER BY is_default DESC, name")]


def by_name(conn: sqlite3.Connection, name: str | None, at: str | None = None) -> Pipeline:
    """The pipeline called ``name`` (the default one for None)."""
    if name is None:
        return load(conn, default_id(conn), at)
    found = find_id(conn, name)
    if found is None:
        known = ", ".join(names(conn))
        raise UsageError(f"no pipeline named {name!r}", hint=f"pipelines: {known}")
    return load(conn, found, at)


def of_deal(conn: sqlite3.Connection, deal: dict[str, Any]) -> Pipeline:
    return load(conn, int(deal["pipeline_id"]))


def existed_at(conn: sqlite3.Connection, at: str) -> set[int]:
    """The ids of the pipelines that existed at ``at``: created by then, not removed by then."""
    return {int(r[0]) for r in conn.execute(
        "SELECT id FROM pipelines WHERE created_at <= :at "
        "AND (removed_at IS NULL OR removed_at > :at)", {"at": at})}


def all_in_force(conn: sqlite3.Connection, at: str | None = None) -> dict[int, Pipeline]:
    """Every pipeline (removed ones too: their history stays), as in force at ``at``."""
    if at is None:  # the latest version of each, in one query (every list and board asks)
        return {int(r[0]): _from_row(tuple(r)) for r in conn.execute(
            "SELECT v.pipeline_id, v.version, v.definition FROM pipeline_versions v "
            "WHERE v.version = (SELECT max(x.version) FROM pipeline_versions x "
            "WHERE x.pipeline_id = v.pipeline_id) ORDER BY v.pipeline_id")}
    return {int(r[0]): load(conn, int(r[0]), at)
            for r in conn.execute("SELECT id FROM pipelines ORDER BY id")}


# ---------------------------------------------------------------- writes (caller's transaction)


def create(conn: sqlite3.Connection, pipeline: Pipeline, at: str) -> int:
    cur = conn.execute(
        "INSERT INTO pipelines (name, is_default, created_at) VALUES (?, 0, ?)",
        (pipeline.name, at),
    )
    pid = int(cur.lastrowid or 0)
    conn.execute(
        "INSERT INTO pipeline_versions (pipeline_id, version, at, definition) "
        "VALUES (?, 1, ?, ?)", (pid, at, pipeline_json(pipeline)),
    )
    _keys(conn, pid, pipeline)
    return pid


def add_version(conn: sqlite3.Connection, pipeline_id: int, pipeline: Pipeline, at: str) -> int:
    """A new version of a pipeline, in force from ``at``. Returns its number."""
    version = conn.execute(
        "SELECT max(version) FROM pipeline_versions WHERE pipeline_id = ?", (pipeline_id,)
    ).fetchone()[0] + 1
    conn.execute(
        "INSERT INTO pipeline_versions (pipeline_id, version, at, definition) "
        "VALUES (?, ?, ?, ?)", (pipeline_id, version, at, pipeline_json(pipeline)),
    )
    if pipeline.name:
        conn.execute("UPDATE pipelines SET name = ? WHERE id = ?", (pipeline.name, pipeline_id))
    _keys(conn, pipeline_id, pipeline)
    return int(version)


def _keys(conn: sqlite3.Connection, pipeline_id: int, pipeline: Pipeline) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO stage_keys (pipeline_id, key) VALUES (?, ?)",
        [(pipeline_id, k) for k in (*pipeline.keys, LOST)],
    )


def set_default(conn: sqlite3.Connection, pipeline_id: int) -> None:
    conn.execute("UPDATE pipelines SET is_default = 0 WHERE is_default = 1")
    conn.execute("UPDATE pipelines SET is_default = 1 WHERE id = ?", (pipeline_id,))


def deals_in_stage(conn: sqlite3.Connection, pipeline_id: int, include_lost: bool = True
                   ) -> dict[str, int]:
    """How many deals sit in each stage of a pipeline now (with ``include_lost``, lost ones
    under 'lost')."""
    lost = "" if include_lost else f" AND stage <> '{LOST}'"
    return {stage: n for stage, n in conn.execute(
        f"SELECT stage, count(*) FROM deals WHERE pipeline_id = ?{lost} GROUP BY 1",
        (pipeline_id,),
    )}


def has_history(conn: sqlite3.Connection, pipeline_id: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM events WHERE pipeline_id = ? LIMIT 1", (pipeline_id,)
    ).fetchone() is not None


def remove(conn: sqlite3.Connection, pipeline_id: int, at: str) -> bool:
    """Delete an empty pipeline; one that history still names is marked removed instead (its
    name stays taken). Returns True when it was deleted."""
    if has_history(conn, pipeline_id):
        conn.execute("UPDATE pipelines SET removed_at = ?, name = name || ' (removed ' || ? || ')'"
                     " WHERE id = ?", (at, at, pipeline_id))
        return False
    for table in ("stage_maps", "stage_keys", "pipeline_versions"):
        conn.execute(f"DELETE FROM {table} WHERE pipeline_id = ?", (pipeline_id,))
    conn.execute("DELETE FROM pipelines WHERE id = ?", (pipeline_id,))
    return True


def load_version(conn: sqlite3.Connection, pipeline_id: int, version: int) -> Pipeline:
    row = conn.execute(
        "SELECT pipeline_id, version, definition FROM pipeline_versions "
        "WHERE pipeline_id = ? AND version = ?", (pipeline_id, version),
    ).fetchone()
    if row is None:
        raise NotFound(f"pipeline {pipeline_id} has no version {version}")
    return _from_row(tuple(row))


def versions(conn: sqlite3.Connection, pipeline_id: int) -> list[tuple[int, str]]:
    return [(int(v), a) for v, a in conn.execute(
        "SELECT version, at FROM pipeline_versions WHERE pipeline_id = ? ORDER BY version",
        (pipeline_id,))]
