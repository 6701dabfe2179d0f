"""Pipelines for people (tables) and programs (JSON)."""

from __future__ import annotations

from typing import Any

from pipectl.domain.pipeline import Pipeline
from pipectl.localtime import shown, shown_date
from pipectl.views.common import print_json
from pipectl.views.table import Column, Table, echo


def listing(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json([{"name": r["name"], "default": bool(r["is_default"]), "deals": r["deals"],
                     "version": r["version"], "since": r["since"]} for r in rows])
        return
    table = Table(Column("Pipeline"), Column("Default", flexible=False),
                  Column("Deals", justify="right", flexible=False),
                  Column("Version", justify="right", flexible=False),
                  Column("Since", flexible=False))
    for r in rows:
        table.add_row(r["name"], "yes" if r["is_default"] else "", str(r["deals"]),
                      str(r["version"]), shown(r["since"]))
    table.write()


def show(pipeline: Pipeline, row: dict[str, Any], as_json: bool) -> None:
    from pipectl.domain.rules import describe
    from pipectl.views.deals import stages_json, stages_table

    if as_json:
        print_json({
            "name": pipeline.name,
            "default": bool(row["is_default"]),
            "version": pipeline.version,
            "versions": [{"version": v, "since": at} for v, at in row["versions"]],
            "checklist": [{"criterion": c, "meaning": pipeline.description(c) or None}
                          for c in pipeline.checklist],
            "stages": stages_json(pipeline),
            "deals_in_stage": row["in_stage"],
            "rules": describe(pipeline),
        })
        return
    stages_table(pipeline)
    if pipeline.checklist:
        echo(("Checklist", "bold"), " " + ", ".join(pipeline.checklist))
    history = ", ".join(f"v{v} since {shown_date(at)}" for v, at in row["versions"])
    echo(("Versions", "bold"), f" {history}")
