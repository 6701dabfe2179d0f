"""db check: the file's structure, its schema as pipectl made it, the references between rows,
and every deal equal to the projection of its events; --repair rebuilds the deals from them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipectl.store import db
from pipectl.store import transfer as store


@dataclass(frozen=True)
class Check:
    damage: list[str]  # what PRAGMA integrity_check found (empty: the structure is intact)
    missing_deal: int  # rows (events) whose deal does not exist
    missing_stage: int  # rows (deals, events, stage maps) naming a stage their pipeline lacks
    missing_pipeline: int  # rows (versions, stage keys, stage maps) whose pipeline is gone
    missing_other: int  # rows pointing at a missing row of any other table
    deals: int  # 0 when the structure is damaged (not counted then)
    events: int
    problems: list[str] = field(default_factory=list)  # each finding in words

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def orphan_rows(self) -> int:
        """Rows pointing at a row that does not exist (any of the kinds above)."""
        return self.missing_deal + self.missing_stage + self.missing_pipeline + self.missing_other


def _rows(found: Iterable[tuple[str, int | None, str]]) -> tuple[int, list[str]]:
    """How many rows the foreign-key findings ``found`` are about (a row may break two
    references; a row of a table without rowid is counted per finding), and their tables."""
    keyed = {(t, rowid) for t, rowid, _ in found if rowid is not None}
    unkeyed = [t for t, rowid, _ in found if rowid is None]
    return len(keyed) + len(unkeyed), sorted({t for t, _, _ in found})


def _phrase(n: int, tables: list[str], singular: str, plural: str) -> str:
    return f"{n} row{'s' if n != 1 else ''} in {', '.join(tables)} {singular if n == 1 else plural}"


def check(conn: sqlite3.Connection) -> Check:
    """The structure of the file (integrity) and the references between rows, read in one
    state. Since schema 4 a row's stage must be one its pipeline has (table ``stage_keys``)
    and its pipeline must exist, besides every event belonging to a deal."""
    with db.snapshot(conn):
        damage = store.integrity_problems(conn)
        found = store.foreign_key_problems(conn)
        deals, events = store.counts(conn) if not damage else (0, 0)
    problems: list[str] = []
    if damage:
        problems.append(
            f"the file's structure is damaged ({len(damage)} finding"
            f"{'s' if len(damage) != 1 else ''}, first: {damage[0]}); restore a backup, "
            "or export what can still be read (pipectl export --format json --events)"
        )
    by_parent: dict[str, list[tuple[str, int | None, str]]] = {}
    for finding in found:
        kind = finding[2] if finding[2] in ("deals", "stage_keys", "pipelines") else "other"
        by_parent.setdefault(kind, []).append(finding)
    counted = {kind: _rows(rows) for kind, rows in by_parent.items()}
    if "deals" in counted:
        n, tables = counted["deals"]
        problems.append(
            f"{n} row{'s' if n != 1 else ''} in {', '.join(tables)} "
            "belong to a deal that no longer exists (history without its deal)"
        )
    if "stage_keys" in counted:
        n, tables = counted["stage_keys"]
        problems.append(
            _phrase(n, tables, "names a stage its pipeline does not have",
                    "name a stage their pipeline does not have")
            + " (a stage no version of the pipeline ever had, or a pipeline that does not exist)"
        )
    if "pipelines" in counted:
        n, tables = counted["pipelines"]
        problems.append(_phrase(n, tables, "belongs to a pipeline that no longer exists",
                                "belong to a pipeline that no longer exists"))
    if "other" in counted:
        n, tables = counted["other"]
        parents = ", ".join(sorted({p for _, _, p in by_parent["other"]}))
        problems.append(_phrase(n, tables, f"refers to a row of {parents} that does not exist",
                                f"refer to a row of {parents} that does not exist"))
    return Check(
        damage=damage,
        missing_deal=counted.get("deals", (0, []))[0],
        missing_stage=counted.get("stage_keys", (0, []))[0],
        missing_pipeline=counted.get("pipelines", (0, []))[0],
        missing_other=counted.get("other", (0, []))[0],
        deals=deals,
        events=events,
        problems=problems,
    )
