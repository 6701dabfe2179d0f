"""Pipelines: define one from a TOML file, change it (a new version), list, show, export,
choose the default, remove.

A change never rewrites history: it is a new version of the definition, in force from the
moment it is applied, and a deal that sits in a stage the new version drops must be moved
(``--move OLD=NEW``), each move an event.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipectl.domain import projection
from pipectl.domain.pipeline import LOST, Pipeline, fold_name
from pipectl.errors import MoveRefused, UsageError
from pipectl.services import clock
from pipectl.store import deals as deal_store
from pipectl.store import pipelines as store
from pipectl.store.db import snapshot, transaction
from pipectl.values import iso


@dataclass(frozen=True)
class Applied:
    pipeline: Pipeline
    created: bool
    version: int | None  # the new version's number (None: nothing changed, or a dry run)
    changes: list[Any]  # domain.pipeline_file.Change
    moved: dict[str, int] = field(default_factory=dict)  # old stage -> deals moved (to move)
    dry_run: bool = False
    moves: dict[str, str] = field(default_factory=dict)  # old stage -> new stage (--move)


def _parse_moves(moves: list[str] | dict[str, str] | None) -> list[tuple[str, str]]:
    if not moves:
        return []
    if isinstance(moves, dict):
        return list(moves.items())
    out: list[tuple[str, str]] = []
    for given in moves:
        old, sep, new = given.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--move {given!r} is not OLD=NEW", hint="e.g. --move pitch=proposal")
        out.append((old.strip(), new.strip()))
    return out


def _resolve_moves(given: list[tuple[str, str]], old: Pipeline, new: Pipeline
                   ) -> dict[str, str]:
    """--move OLD=NEW with OLD a stage of the current definition and NEW one of the new, each
    named as a stage may be named anywhere (key, label, alias, unambiguous prefix)."""
    out: dict[str, str] = {}
    for old_text, new_text in given:
        if fold_name(old_text) == LOST or fold_name(new_text) == LOST:
            raise UsageError(f"--move {old_text}={new_text}: lost is no stage to move from or "
                             "to (lost deals stay lost, at the stage they died at)")
        key = old.parse_stage(old_text)
        target = new.parse_stage(new_text)
        if key in out and out[key] != target:
            raise UsageError(f"--move {key} is given twice ({out[key]}, {target})")
        out[key] = target
    return out


def apply(
    conn: sqlite3.Connection,
    text: str,
    source: str = "pipeline.toml",
    at: str | datetime | None = None,
    dry_run: bool = False,
    moves: list[str] | dict[str, str] | None = None,
) -> Applied:
    """Create the pipeline the TOML ``text`` defines, or change it (by its name).

    A change is refused (with the count and the way out) when deals (not lost) sit in a stage
    it drops, unless --move says where they go, and when deals sit in a stage it turns from
    open to won or back (that would win or un-win them without an event): move them first.
    A dry run makes the same checks and raises the same refusal after telling what it saw.
    """
    from pipectl.domain import pipeline_file

    new = pipeline_file.parse(text, source)
    given = _parse_moves(moves)
    with transaction(conn):
        when = iso(clock.moment(at))
        found = store.find_id(conn, new.name)
        if found is None:
            if given:
                raise UsageError(f"pipeline {new.name!r} is new: it has no deals to --move")
            if store.name_taken(conn, new.name):
                raise UsageError(f"the name {new.name!r} is kept by a removed pipeline",
                                 hint="choose another name")
            if dry_run:
                return Applied(new, True, None, [], dry_run=True)
            pid = store.create(conn, new, when)
            return Applied(store.load(conn, pid), True, 1, [])
        old = store.load(conn, found)
        wanted = _resolve_moves(given, old, new)
        changes = pipeline_file.diff(old, new)
        stranded = _stranded(conn, found, old, new)
        _refuse_kind_changes(conn, found, old, new, wanted)
        for old_key, new_key in wanted.items():
            if old_key not in stranded:
                raise UsageError(f"--move {old_key}={new_key}: no deal is stranded in "
                                 f"{old_key!r}", hint="--move is for stages the change drops")
            if old.status(old_key) != new.status(new_key):
                raise UsageError(f"--move {old_key}={new_key}: {old_key} is "
                                 f"{old.status(old_key)} and {new_key} is "
                                 f"{new.status(new_key)}", hint="move to a stage of the same kind")
        missing = {k: n for k, n in stranded.items() if k not in wanted}
        if dry_run:
            return Applied(new if changes else old, False, None, changes, dict(stranded),
                           dry_run=True, moves=wanted)
        if missing:
            raise stranded_refusal(*next(iter(missing.items())), new)
        if not changes:
            return Applied(old, False, None, [], dry_run=dry_run)
        version = store.add_version(conn, found, new, when)
        current = store.load(conn, found)
        moved = {k: _move_all(conn, current, k, v, when) for k, v in wanted.items()}
        return Applied(current, False, version, changes, moved, moves=wanted)


def stranded_refusal(stage: str, n: int, new: Pipeline) -> MoveRefused:
    return MoveRefused(
        f"{n} deal{'s' if n != 1 else ''} sit{'s' if n == 1 else ''} in {stage}, "
        f"which the new definition of {new.name!r} drops; nothing was changed",
        hint=f"move them with --move {stage}=STAGE (a stage of the new definition)",
    )


def _refuse_kind_changes(conn: sqlite3.Connection, pid: int, old: Pipeline, new: Pipeline,
                         wanted: dict[str, str]) -> None:
    """A stage kept by the new definition but turned from open to won (or back) while deals
    sit in it: they would be won (or un-won) with no event. Refused."""
    now_in = store.deals_in_stage(conn, pid, include_lost=False)
    for key, n in now_in.items():
        if old.has(key) and new.has(key) and key not in wanted and old.is_open(key) \
                and new.is_open(key) \
                and old.is_qualified_stage(key) != new.is_qualified_stage(key):
            side = "beyond" if new.is_qualified_stage(key) else "before"
            raise MoveRefused(
                f"{n} open deal{'s' if n != 1 else ''} sit{'s' if n == 1 else ''} in {key}, "
                f"which the new gate puts {side} the qualification gate: whether "
                f"{'they are' if n != 1 else 'it is'} qualified would change with no event; "
                "nothing was changed",
                hint=f"move {'them' if n != 1 else 'it'} out of {key} first "
                "(pipectl advance ID --to STAGE), or keep the gate where it is",
            )
        if old.has(key) and new.has(key) and key not in wanted \
                and old.status(key) != new.status(key):
            raise MoveRefused(
                f"{n} deal{'s' if n != 1 else ''} sit{'s' if n == 1 else ''} in {key}, which "
                f"the new definition turns from {old.status(key)} to {new.status(key)}: "
                f"{'they' if n != 1 else 'it'} would be {'won' if new.is_won(key) else 'un-won'}"
                " with no event; nothing was changed",
                hint=f"move {'them' if n != 1 else 'it'} out of {key} first "
                "(pipectl advance ID --to STAGE)",
            )


def _stranded(conn: sqlite3.Connection, pid: int, old: Pipeline, new: Pipeline
              ) -> dict[str, int]:
    """Deals (not lost) sitting in a stage that ``new`` drops."""
    now_in = store.deals_in_stage(conn, pid, include_lost=False)
    return {k: n for k, n in now_in.items() if old.has(k) and not new.has(k) and k != LOST}


def _move_all(conn: sqlite3.Connection, pipeline: Pipeline, old: str, new: str, at: str) -> int:
    n = 0
    for row in deal_store.iter_deals(conn, pipeline_id=pipeline.id, stage=old):
        stamp = max(at, deal_store.last_event_at(conn, row["id"]))
        event = {"at": stamp, "kind": "stage", "pipeline_id": pipeline.id, "from_stage": old,
                 "to_stage": new, "text": f"stage {old} removed from pipeline {pipeline.name}"}
        after = projection.apply(dict(row), event, {pipeline.id: pipeline})  # type: ignore[dict-item]
        deal_store.record(conn, row, after, [event])
        n += 1
    return n


def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    with snapshot(conn):
        return store.rows(conn)


def get(conn: sqlite3.Connection, name: str | None) -> tuple[Pipeline, dict[str, Any]]:
    """A pipeline (the default for None), with its row of ``listing`` and its versions."""
    with snapshot(conn):
        pipeline = store.by_name(conn, name)
        row = next(r for r in store.rows(conn) if r["id"] == pipeline.id)
        row["versions"] = store.versions(conn, pipeline.id or 0)
        row["in_stage"] = store.deals_in_stage(conn, pipeline.id or 0, include_lost=False)
        return pipeline, row


def export(conn: sqlite3.Connection, name: str | None) -> str:
    from pipectl.domain import pipeline_file

    with snapshot(conn):
        return pipeline_file.dump(store.by_name(conn, name))


def set_default(conn: sqlite3.Connection, name: str) -> Pipeline:
    with transaction(conn):
        pipeline = store.by_name(conn, name)
        store.set_default(conn, pipeline.id or 0)
    return pipeline


def remove(conn: sqlite3.Connection, name: str, at: str | datetime | None = None
           ) -> tuple[Pipeline, bool]:
    """Remove a pipeline without deals. Returns it and whether it was deleted outright (else
    kept as removed, because history names it)."""
    with transaction(conn):
        when = iso(clock.moment(at))
        pipeline = store.by_name(conn, name)
        pid = pipeline.id or 0
        if store.default_id(conn) == pid:
            raise MoveRefused(f"{pipeline.name!r} is the default pipeline",
                              hint="make another one the default first: pipectl pipeline "
                              "default NAME")
        n = sum(store.deals_in_stage(conn, pid, include_lost=True).values())
        if n:
            raise MoveRefused(
                f"pipeline {pipeline.name!r} still holds {n} deal{'s' if n != 1 else ''}",
                hint=f"move them out first: pipectl move ID --pipeline OTHER, or list them: "
                f"pipectl list --status all --pipeline {pipeline.name!r}",
            )
        deleted = store.remove(conn, pid, when)
    return pipeline, deleted
