"""db check: the file's structure, its schema as pipectl made it, the references between rows,
and every deal equal to the projection of its events; ``--repair`` rebuilds the deals from them.

History is append-only and the events are the truth: a deal's stored columns (what list, board
and the deal view read) must be what ``domain.projection`` makes of its events, each applied
with its pipeline's definition in force when it happened (as the daily commands store it). The
check replays every deal in one pass over deals and events (``store.check.histories``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from pipectl.domain import projection
from pipectl.domain.checklist import decode
from pipectl.domain.pipeline import Pipeline, in_force
from pipectl.errors import DatabaseError
from pipectl.store import check as store_check
from pipectl.store import db
from pipectl.store.check import SchemaFinding
from pipectl.store.deals import search_text

Row = dict[str, Any]

SHOWN = 20  # deals that differ, told one by one (all are counted)
# the triggers that keep the history append-only
APPEND_ONLY = ("events_no_update", "events_no_delete", "events_void_once", "undos_no_update",
               "undos_no_delete")  # (a voided event stays voided: issue 16)


@dataclass(frozen=True)
class Differs:
    """A deal whose stored state is not what its events make of it."""

    deal_id: int
    fields: list[tuple[str, Any, Any]]  # (column, stored, what its events make)
    why: str | None = None  # when its events make no state (none, or not replayable): why

    @property
    def repairable(self) -> bool:
        return self.why is None


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
    schema: list[SchemaFinding] = field(default_factory=list)  # objects not as pipectl made them
    differing: int = 0  # deals whose stored state is not the projection of their events
    differ: list[Differs] = field(default_factory=list)  # the first SHOWN of them
    bad_rates: list[int] = field(default_factory=list)  # ids of exchange rate rows no rate
    # deals whose read models (the states and stays the reports read) are not what their
    # events make of them
    read_models: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def orphan_rows(self) -> int:
        """Rows pointing at a row that does not exist (any of the kinds above)."""
        return self.missing_deal + self.missing_stage + self.missing_pipeline + self.missing_other


@dataclass(frozen=True)
class Repair:
    """What ``repair`` changed."""

    objects: list[tuple[str, str, str]]  # (type, name, "created" | "dropped"), in order
    deals: list[int]  # the deals rebuilt from their events
    unrepaired: list[Differs]  # deals left as they are: no events, or a state refused
    append_only_missing: bool  # the history was unprotected: events may have been changed
    read_models: list[int] = field(default_factory=list)  # deals whose read models were redone


# ---------------------------------------------------------------- the projection of each deal


class Definitions:
    """Each pipeline's definition in force at ``at`` (set before each event is applied): the
    latest version that came into force by then, the first for anything earlier (as
    ``store.pipelines.load``). A callable for ``domain.projection.apply``. With ``fixed``,
    the definitions as they stood at that one moment, whatever ``at`` says."""

    def __init__(self, history: dict[int, list[tuple[str, Pipeline]]],
                 fixed: str | None = None) -> None:
        self.history = history
        self.fixed = fixed
        self.at = ""
        # every pipeline with one version: the definitions as a plain mapping (the replay of
        # a million deals looks a pipeline up several million times)
        self.single: dict[int, Pipeline] | None = None
        if all(len(v) == 1 for v in history.values()):
            self.single = {pid: v[0][1] for pid, v in history.items()}

    def __call__(self, pipeline_id: int) -> Pipeline:
        versions = self.history.get(pipeline_id)
        if not versions:
            raise LookupError(f"pipeline {pipeline_id} has no readable definition")
        return in_force(versions, self.fixed or self.at)

    def alternatives(self) -> list[Definitions]:
        """The definitions as they stood at each moment a version came into force, latest
        first; none when every pipeline has one version (they are all this one then).

        An import projects a file's past history with the definitions of the moment it runs
        (``transfer.history``), not those in force when each event happened, which a later
        version of a pipeline (a gate moved) makes differ: such a deal agrees with its events
        under the definitions of some such moment."""
        if all(len(v) == 1 for v in self.history.values()):
            return []
        moments = sorted({at for v in self.history.values() for at, _ in v}, reverse=True)
        return [Definitions(self.history, fixed=m) for m in moments]


def expected(deal: Row, events: list[Row], definitions: Definitions) -> Row:
    """What ``events`` make of ``deal``: its id, ref and the texts it was created with (each
    text as the first edit of it found it, else as stored) are all the deal gives; every other
    column comes from the events not voided (an undo's events are skipped; a voided edit still
    tells what the text was before it). Raises what the projection raises on events it cannot
    replay (a pipeline or a stage that does not exist)."""
    made = projection.blank_deal()
    made["id"], made["ref"] = deal["id"], deal["ref"]
    first_edit: dict[str, Any] = {}
    for e in events:
        if e["kind"] == "edit" and e["field"] in projection.DEAL_TEXTS:
            first_edit.setdefault(e["field"], e["old"])
    for f in projection.DEAL_TEXTS:
        made[f] = first_edit[f] if f in first_edit else deal[f]
    if any(e.get("voided_by") is not None for e in events):
        events = [e for e in events if e.get("voided_by") is None]
    apply = projection.apply
    if definitions.single is not None:
        for e in events:
            apply(made, e, definitions.single)
    else:
        for e in events:
            definitions.at = e["at"]
            apply(made, e, definitions)
    made["search"] = search_text(made, events)
    return made


def _same(column: str, stored: Any, made: Any) -> bool:
    if stored == made:
        return True
    if column == "checklist":  # the same marks in another order are the same checklist
        try:
            return decode(stored) == decode(made)
        except (ValueError, TypeError, AttributeError):
            return False
    return False


COMPARED = tuple(c for c in store_check.DEAL_COLUMNS if c not in ("id", "ref"))


_compared = itemgetter(*COMPARED)


def _wrong(deal: Row, made: Row) -> list[tuple[str, Any, Any]]:
    if _compared(deal) == _compared(made):  # the usual answer, at C speed
        return []
    return [(c, deal[c], made[c]) for c in COMPARED
            if deal[c] != made[c] and not _same(c, deal[c], made[c])]


def compare(deal: Row, events: list[Row], definitions: Definitions,
            alternatives: list[Definitions] | None = None) -> Differs | None:
    """None when the deal is what its events make of it (with the definitions in force when
    each happened, or failing that with those of one of the ``alternatives``: see
    ``Definitions.alternatives``), else how it differs from the first."""
    if not events:
        return Differs(deal["id"], [], "it has no events (a deal's history starts with its "
                                        "'created' event)")
    try:
        made = expected(deal, events, definitions)
    except Exception as exc:  # its events name what does not exist: a finding, not a crash
        return Differs(deal["id"], [], f"its events cannot be replayed ({type(exc).__name__}: "
                                        f"{exc})")
    wrong = _wrong(deal, made)
    if not wrong:
        return None
    for other in alternatives or ():
        try:
            if not _wrong(deal, expected(deal, events, other)):
                return None
        except Exception:  # as above: the first projection says what is wrong
            continue
    return Differs(deal["id"], wrong)


def _differing(conn: sqlite3.Connection, skip: set[int], ids: list[int] | None = None
               ) -> Iterator[Differs]:
    """Every deal (or those of ``ids``), but those in ``skip``, whose stored state differs
    from its events."""
    definitions = Definitions(store_check.pipeline_history(conn))
    alternatives = definitions.alternatives()
    for deal, events in store_check.histories(conn, ids):
        if deal["id"] in skip:
            continue
        found = compare(deal, events, definitions, alternatives)
        if found is not None:
            yield found


def _reported_deals(conn: sqlite3.Connection, found: list[tuple[str, int | None, str]]
                    ) -> set[int]:
    """The deals whose own rows (or events) break a reference: told of already, not replayed."""
    deals = {rowid for t, rowid, _ in found if t == "deals" and rowid is not None}
    events = [rowid for t, rowid, _ in found if t == "events" and rowid is not None]
    return deals | (store_check.event_deals(conn, events) if events else set())


# ---------------------------------------------------------------- the check


def _rows(found: Iterable[tuple[str, int | None, str]]) -> tuple[int, list[str]]:
    """How many rows the foreign-key findings ``found`` are about (a row may break two
    references; a row of a table without rowid is counted per finding), and their tables."""
    keyed = {(t, rowid) for t, rowid, _ in found if rowid is not None}
    unkeyed = [t for t, rowid, _ in found if rowid is None]
    return len(keyed) + len(unkeyed), sorted({t for t, _, _ in found})


def _phrase(n: int, tables: list[str], singular: str, plural: str) -> str:
    return f"{n} row{'s' if n != 1 else ''} in {', '.join(tables)} {singular if n == 1 else plural}"


def _repairable(findings: list[SchemaFinding]) -> bool:
    """--repair recreates indexes, triggers and views; it never changes a table."""
    return all(f.type != "table" for f in findings)


def _schema_problem(findings: list[SchemaFinding]) -> str:
    told = ", ".join(f"{f.type} {f.name} {f.problem}" for f in findings)
    text = f"the schema is not as pipectl made it: {told}"
    if any(f.type == "trigger" and f.name in APPEND_ONLY and f.problem != "extra"
           for f in findings):
        text += (" (without its append-only triggers the history can be rewritten: events "
                 "may have been changed, which only a backup can tell)")
    if _repairable(findings):
        return text + "; pipectl db check --repair recreates them as pipectl makes them"
    return text + ("; a table not as pipectl made it cannot be repaired: restore a backup "
                   "(pipectl db backup makes them)")


def _deal_list(differ: list[Differs], total: int) -> str:
    shown = ", ".join(
        f"{d.deal_id} ({', '.join(c for c, _, _ in d.fields) if d.fields else 'no state'})"
        for d in differ[:5])
    more = f" and {total - 5} more" if total > 5 else ""
    return f"deal{'s' if total != 1 else ''} {shown}{more}"


def _deals_problem(differ: list[Differs], total: int) -> str:
    n = f"{total} deal{'s' if total != 1 else ''}"
    text = (f"{n} differ{'s' if total == 1 else ''} from what {'its' if total == 1 else 'their'} "
            f"events make of {'it' if total == 1 else 'them'}, so list, board and report may "
            f"disagree: {_deal_list(differ, total)}")
    if any(d.repairable for d in differ) or len(differ) < total:
        return text + "; pipectl db check --repair rebuilds them from their events"
    return text + ("; with no events to rebuild them from, restore a backup (or remove them: "
                   "pipectl rm ID)")


def check(conn: sqlite3.Connection) -> Check:
    """The structure of the file (integrity), its schema against the one pipectl makes, the
    references between rows, and every deal against the projection of its events. Since
    schema 4 a row's stage must be one its pipeline has (table ``stage_keys``) and its
    pipeline must exist, besides every event belonging to a deal."""
    return _examine(conn)[0]


def _examine(conn: sqlite3.Connection, every: list[int] | None = None
             ) -> tuple[Check, set[int]]:
    """The check, and the deals left out of the replay (their rows break a reference, which
    the check tells). The file's structure is checked on a second connection meanwhile; the
    rest is read in one state. ``every``, when given, receives the id of every deal that
    differs (the check keeps the first ``SHOWN``)."""
    deals = events = 0
    read_models: list[int] = []
    kept: list[Differs] = []  # the first that differ (more than SHOWN: some may be left out)
    ids: list[int] = []  # every deal that differs
    schema: list[SchemaFinding] = []
    unreadable: DatabaseError | None = None
    structure = store_check.structure_beside(conn)  # runs while the deals are replayed
    with db.snapshot(conn):
        try:
            with store_check.readable():
                deals, events = store_check.counts(conn)
                schema = store_check.compare(store_check.objects(conn),
                                             store_check.expected(conn))
                for d in _differing(conn, set()):
                    ids.append(d.deal_id)
                    if len(kept) < 4 * SHOWN:
                        kept.append(d)
                bad_rates = _bad_rates(conn)
                read_models = store_check.read_model_differences(conn)
        except DatabaseError as exc:  # a damaged file: integrity_check says how
            unreadable = exc
        damage, found = structure()
        skip: set[int] = set()
        if found and not damage:  # deals whose rows break a reference: told as such
            with store_check.readable():
                skip = _reported_deals(conn, found)
    if damage:  # a damaged file is restored, not replayed: nothing else is told
        deals = events = 0
        schema, kept, ids, bad_rates, read_models = [], [], [], [], []
    elif unreadable is not None:
        raise unreadable
    differ = [d for d in kept if d.deal_id not in skip][:SHOWN]
    read_models = [i for i in read_models if i not in skip]  # told as broken references
    differing = sum(1 for i in ids if i not in skip)
    if every is not None:
        every.extend(i for i in ids if i not in skip)
    problems: list[str] = []
    if damage:
        problems.append(
            f"the file's structure is damaged ({len(damage)} finding"
            f"{'s' if len(damage) != 1 else ''}, first: {damage[0]}); restore a backup, "
            "or export what can still be read (pipectl export --format json --events)"
        )
    if schema:
        problems.append(_schema_problem(schema))
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
    if differing:
        problems.append(_deals_problem(differ, differing))
    if bad_rates:
        n, shown = len(bad_rates), _first_ids(bad_rates)
        problems.append(
            f"{n} exchange rate row{'s are' if n != 1 else ' is'} not a rate pipectl records "
            f"(id {shown}): conversions (--in) leave {'them' if n != 1 else 'it'} out; "
            "record the right one with pipectl rate set")
    if read_models:
        n, shown = len(read_models), _first_ids(read_models)
        problems.append(
            f"{n} deal{'s' + chr(39) if n != 1 else chr(39) + 's'} read models (the states "
            f"and stays the reports read) are not what {'their' if n != 1 else 'its'} events "
            f"make of {'them' if n != 1 else 'it'} (deal {shown}): reports may be wrong "
            "until pipectl db check --repair recomputes them")
    return Check(
        damage=damage,
        missing_deal=counted.get("deals", (0, []))[0],
        missing_stage=counted.get("stage_keys", (0, []))[0],
        missing_pipeline=counted.get("pipelines", (0, []))[0],
        missing_other=counted.get("other", (0, []))[0],
        deals=deals,
        events=events,
        problems=problems,
        schema=schema,
        differing=differing,
        differ=differ,
        bad_rates=bad_rates,
        read_models=read_models,
    ), skip


def _first_ids(ids: list[int]) -> str:
    """The first ``SHOWN`` ids, "..." after them when there are more."""
    return ", ".join(map(str, ids[:SHOWN])) + (" ..." if len(ids) > SHOWN else "")


def _bad_rates(conn: sqlite3.Connection) -> list[int]:
    """The exchange rate rows that are no rate ``pipectl rate set`` records (written around
    pipectl: the table's checks keep them out): ``domain.rates.valid`` says which."""
    from pipectl.domain.rates import valid
    from pipectl.store import rates

    return [r.id for r in rates.all_rates(conn) if not valid(r)]


# ---------------------------------------------------------------- the repair


def repair(conn: sqlite3.Connection) -> Repair:
    """Rebuild every deal that differs from its events, and recreate the indexes, triggers
    and views that are missing or altered (dropping those pipectl does not make), in one
    transaction. Refused, changing nothing, when the file's structure is damaged or a table is
    not as pipectl made it: a backup is the way back then.

    The deals are found by a full check first, without the write lock; under it (others wait
    for the repair only that long) the schema is compared again and only those deals are read
    again, replayed and rewritten. A deal another command changed meanwhile is rewritten from
    its events as they are then: a command applies its event to the stored state, so a deal
    that differed still differs."""
    ids: list[int] = []
    found, skip = _examine(conn, every=ids)
    if found.damage:
        raise DatabaseError(
            f"the file's structure is damaged ({found.damage[0]}): --repair rebuilds deals from "
            "their events, it cannot mend a damaged file; nothing was changed",
            hint="restore a backup, or export what can still be read "
            "(pipectl export --format json --events)",
        )
    with db.transaction(conn):
        findings = store_check.compare(store_check.objects(conn), store_check.expected(conn))
        tables = [f for f in findings if f.type == "table"]
        if tables:
            told = ", ".join(f"table {f.name} {f.problem}" for f in tables)
            raise DatabaseError(
                f"the schema is not as pipectl made it ({told}): --repair recreates indexes "
                "and triggers, never a table; nothing was changed",
                hint="restore a backup",
            )
        objects: list[tuple[str, str, str]] = []
        for f in findings:  # drops first (an extra or altered object), then creations
            if f.problem in ("extra", "altered"):
                store_check.drop(conn, f.type, f.name)
                objects.append((f.type, f.name, "dropped"))
        for f in findings:
            if f.problem in ("missing", "altered") and f.sql is not None:
                store_check.create(conn, f.sql)
                objects.append((f.type, f.name, "created"))
        fixes = list(_differing(conn, skip, ids)) if ids else []  # read before any write
        rebuilt: list[int] = []
        unrepaired: list[Differs] = []
        for d in fixes:
            if not d.repairable:
                unrepaired.append(d)
                continue
            refused = store_check.rewrite_deal(conn, d.deal_id, {c: m for c, _, m in d.fields})
            if refused is None:
                rebuilt.append(d.deal_id)
            else:
                unrepaired.append(Differs(d.deal_id, d.fields, f"the database refuses what "
                                          f"its events make of it ({refused})"))
        # recomputed from the events at this transaction's COMMIT, with the deals rebuilt
        store_check.recompute_read_models(conn, [*found.read_models, *rebuilt])
    missing_triggers = any(f.type == "trigger" and f.name in APPEND_ONLY
                           and f.problem in ("missing", "altered") for f in findings)
    return Repair(objects, rebuilt, unrepaired, missing_triggers, found.read_models)
