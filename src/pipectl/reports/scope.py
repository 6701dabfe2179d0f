"""Which pipelines a report covers, as defined at its as-of moment.

Every figure for a moment uses the pipelines' definitions in force at that moment
(``store.pipelines.all_in_force``). Without ``--pipeline`` a report covers every pipeline that
was not removed by then: counts and money span them, stage-keyed sections list each one's
stages. With ``--pipeline NAME`` it covers the deals in that pipeline only (as of the moment).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline


@dataclass(frozen=True)
class Scope:
    as_of: str
    pipelines: dict[int, Pipeline]  # every pipeline's definition in force at as_of
    shown: tuple[Pipeline, ...]  # the pipelines the figures cover: default first, then by name
    only: Pipeline | None = None  # --pipeline

    @property
    def pipeline_id(self) -> int | None:
        return None if self.only is None else self.only.id

    @property
    def several(self) -> bool:
        """Do the figures span more than one pipeline (per-pipeline entries then)?"""
        return len(self.shown) > 1

    @property
    def split(self) -> bool:
        """Must the queries over a snapshot tell pipelines apart (group by pipeline_id)? Not
        when it holds one pipeline's deals: then they cost what they cost before pipelines."""
        return len(self.in_sql) > 1

    @property
    def in_sql(self) -> dict[int, Pipeline]:
        """The definitions a query over a snapshot needs: the one pipeline it holds, else all
        (a deal of a pipeline removed since keeps counting in the totals)."""
        if self.only is not None:
            return {self.only.id: self.only}  # type: ignore[dict-item]
        return self.pipelines

    def pipeline(self, pipeline_id: int) -> Pipeline | None:
        return self.pipelines.get(pipeline_id)


def scope(conn: sqlite3.Connection, as_of: str, name: str | None = None) -> Scope:
    """The pipelines in force at ``as_of``; ``name``: only that pipeline (UsageError when there
    is no pipeline so named)."""
    from pipectl.store import pipelines as store

    every = store.all_in_force(conn, as_of)
    if name is not None:
        only = store.by_name(conn, name, as_of)
        return Scope(as_of, every, (only,), only)
    rows = conn.execute(
        "SELECT id FROM pipelines WHERE removed_at IS NULL OR removed_at > ? "
        "ORDER BY is_default DESC, name, id", (as_of,)
    ).fetchall()
    shown = tuple(every[r[0]] for r in rows if r[0] in every)
    return Scope(as_of, every, shown)


def open_set(several: bool, pipeline: Pipeline, stage: str) -> str:
    """The --explain name of the set of the deals open in a stage: ``open_<stage>``, with
    several pipelines ``open_<pipeline>:<stage>``."""
    return f"open_{pipeline.name}:{stage}" if several else f"open_{stage}"


def count_pipelines(conn: sqlite3.Connection) -> int:
    """How many pipelines the database has now (removed ones not counted)."""
    return conn.execute("SELECT count(*) FROM pipelines WHERE removed_at IS NULL").fetchone()[0]
