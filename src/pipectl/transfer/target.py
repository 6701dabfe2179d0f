"""The pipeline an import writes into: ``--pipeline NAME`` (default: the default pipeline), or
``--create-pipeline NAME``, made from the file's own stage names inside the import's
transaction; and the stage map remembered for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from pipectl.domain.pipeline import Pipeline
from pipectl.errors import UsageError
from pipectl.store import pipelines
from pipectl.store import transfer as store
from pipectl.transfer.common import Options, Summary
from pipectl.transfer.fields import Preset, parse_pairs
from pipectl.transfer.stage_map import StageMap, given_map, new_pipeline
from pipectl.values import clean_text, iso

# the file's stage names in file order, those of deals it says are won, and (optionally) those
# its histories show reached from a won stage (see new_pipeline)
Values = Callable[[], tuple[Iterable[str], ...]]


def pipeline(conn: sqlite3.Connection, opts: Options, summary: Summary, now: datetime,
             preset: Preset | None, values: Values,
             definition: Callable[[str], Pipeline | None] | None = None) -> Pipeline:
    """The target pipeline (created when asked: call inside the import's transaction).

    ``--create-pipeline NAME`` makes it of the file's stage names (``values``), unless
    ``definition`` gives the file's own definition of NAME (pipectl's JSON export carries
    them): then it is that, exactly, under NAME (told in ``summary.pipelines_created``)."""
    name = opts.create_pipeline
    if name is None:
        found = pipelines.by_name(conn, opts.pipeline)
        summary.pipeline = found.name
        return found
    name = clean_text(name, "--create-pipeline", required=True)
    if pipelines.find_id(conn, name) is not None:
        raise UsageError(
            f"--create-pipeline: a pipeline named {name!r} exists already",
            hint=f"import into it with --pipeline {name!r}",
        )
    made = definition(name) if definition is not None else None
    if made is not None:
        made = replace(made, name=name)
        summary.pipelines_created.append(name)
    else:
        names, won_like, *after_won = values()
        skip = [theirs for theirs, _ in parse_pairs(opts.stage_maps, "--stage-map")]
        made = new_pipeline(name, names, preset, won_like, skip,
                            after_won[0] if after_won else ())
    pid = pipelines.create(conn, made, iso(now))
    summary.pipeline, summary.pipeline_created = name, True
    return pipelines.load(conn, pid)


def stage_map(conn: sqlite3.Connection, target: Pipeline, preset: Preset | None, source: str,
              opts: Options) -> StageMap:
    """How this import reads stage cells: ``--stage-map``, else what an earlier import of the
    same source into this pipeline was told, else the preset, else the pipeline's names."""
    assert target.id is not None
    given = given_map(target, opts.stage_maps)
    return StageMap(
        target, preset, is_default=target.id == pipelines.default_id(conn),
        saved=store.saved_stage_map(conn, target.id, source), given=given,
    )


def remember(conn: sqlite3.Connection, stages: StageMap, source: str, summary: Summary) -> None:
    """Keep the ``--stage-map`` this import was given, for the next import of the source (in
    the import's transaction: a failed or dry run keeps nothing)."""
    assert stages.pipeline.id is not None
    if stages.given:
        store.save_stage_map(conn, stages.pipeline.id, source, stages.given)
        summary.stage_map_saved = len(stages.given)
