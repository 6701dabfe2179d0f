"""The names a database already holds, for shell completion and for "did you mean": owners,
lost reasons (most used first), pipelines and their stages' keys and labels. Each is a small
read (an index walk; the lost reasons: the index deals_lost_reason alone, schema 12), in one
read transaction.

``close_to`` says which of them a new name is close to (the same letters without accents and
case, or at most two edits apart): ``add``/``edit --owner`` and ``lose --reason`` note them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pipectl.store.db import snapshot


def owners(conn: sqlite3.Connection) -> list[str]:
    """The deals' owners, in text order (at most 500)."""
    from pipectl.store import deals

    with snapshot(conn):
        return deals.owners(conn)


def lost_reasons(conn: sqlite3.Connection) -> list[str]:
    """The reasons lost deals carry, most used first (at most 200)."""
    from pipectl.store import deals

    with snapshot(conn):
        return [r for r, _ in deals.lost_reasons(conn)]


def pipelines(conn: sqlite3.Connection) -> list[str]:
    """The pipelines not removed, the default first."""
    from pipectl.store import pipelines as store

    with snapshot(conn):
        return store.names(conn)


def stages(conn: sqlite3.Connection, pipeline: str | None = None) -> list[tuple[str, str]]:
    """(key, label) of each stage of a pipeline (the default for None; its latest version),
    along the line; UsageError when no pipeline has that name."""
    from pipectl.store import pipelines as store

    with snapshot(conn):
        p = store.by_name(conn, pipeline)
    return [(s.key, s.label) for s in p.stages]


def stages_of_deal(conn: sqlite3.Connection, deal_id: int) -> list[tuple[str, str]]:
    """(key, label) of each stage of the pipeline deal ``deal_id`` is in (its latest
    version); empty when there is no such deal."""
    from pipectl.store import names
    from pipectl.store import pipelines as store

    with snapshot(conn):
        pipeline_id = names.pipeline_of(conn, deal_id)
        if pipeline_id is None:
            return []
        p = store.load(conn, pipeline_id)
    return [(s.key, s.label) for s in p.stages]


def deals(conn: sqlite3.Connection, digits: str = "", status: str | None = None,
          most: int = 100) -> list[tuple[int, str]]:
    """(id, name) of the deals whose id starts with ``digits``, smallest first (at most
    ``most``); ``status`` narrows them: "open", "lost", or "not lost"."""
    from pipectl.store import names

    where = {"open": names.OPEN, "lost": names.LOST, "not lost": names.NOT_LOST}.get(status or "")
    with snapshot(conn):
        return names.ids_from(conn, digits, most, where)


def currencies(conn: sqlite3.Connection) -> list[str]:
    """The currencies the deals and the exchange rates use."""
    from pipectl.store import names

    with snapshot(conn):
        return names.currencies(conn)


def every(conn: sqlite3.Connection) -> dict[str, Any]:
    """All of them at once (one read transaction): owners, reasons, pipelines, and stages
    (pipeline name -> its (key, label) pairs)."""
    from pipectl.store import deals
    from pipectl.store import pipelines as store

    with snapshot(conn):
        found = store.all_in_force(conn)
        return {
            "owners": deals.owners(conn),
            "reasons": [r for r, _ in deals.lost_reasons(conn)],
            "pipelines": store.names(conn),
            "stages": {p.name: [(s.key, s.label) for s in p.stages] for p in found.values()},
        }


def close_to(given: str, known: list[str]) -> list[str]:
    """The names of ``known`` that ``given`` is close to but not exactly: the same once folded
    (``values.fold``: no accents, no case), else at most two edits apart when folded (at most
    one for names of up to four letters). Empty when ``given`` is one of them exactly."""
    from pipectl.values import fold

    if given in known:
        return []
    folded = fold(given)
    same = [k for k in known if fold(k) == folded]
    if same:
        return same
    most = 1 if len(folded) <= 4 else 2
    near = [(d, k) for k in known
            if (d := edit_distance(folded, fold(k), most)) <= most]
    return [k for _, k in sorted(near)]


def edit_distance(a: str, b: str, most: int) -> int:
    """Levenshtein distance of ``a`` and ``b``, or ``most + 1`` once it is surely beyond
    ``most`` (a banded computation: cheap over hundreds of names)."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (ca != cb))
        if min(current) > most:
            return most + 1
        previous = current
    return previous[-1]


class OwnerMatch:
    """What an --owner names: ``owner`` (the stored name, or None), ``several`` (the owners
    it names equally well: ambiguous), ``known`` (the owners there are, when it names none)."""

    __slots__ = ("known", "owner", "several")

    def __init__(self, owner: str | None, several: list[str] | None = None,
                 known: list[str] | None = None) -> None:
        self.owner, self.several, self.known = owner, several or [], known or []


def match_owner(conn: sqlite3.Connection, typed: str) -> OwnerMatch:
    """The owner ``typed`` names, as a person types it: the name exactly; else the one name
    that is the same without accents and case (``values.fold``: "minh tran" is "Minh Trần");
    else the one name with a word (or a start) that begins so ("minh", "tran", "MINH" are
    "Minh Trần"). Accents typed count among names that differ only by them ("josé" is "José
    Silva" beside "Jose Silva"). Several equally: ambiguous (``several``); none: ``known``."""
    from pipectl.store import deals
    from pipectl.values import fold

    with snapshot(conn):
        if deals.has_owner(conn, typed):
            return OwnerMatch(typed)
        known = deals.owners(conn)
    want, cased = fold(typed), typed.casefold()
    for test in (lambda k, w: k == w,
                 lambda k, w: k.startswith(w) or any(x.startswith(w) for x in k.split())):
        found = [k for k in known if test(fold(k), want)]
        if len(found) > 1 and not typed.isascii():
            # accents typed are meant: "josé" is "José Silva", not "Jose Silva" too
            found = [k for k in found if test(k.casefold(), cased)] or found
        if len(found) == 1:
            return OwnerMatch(found[0])
        if found:
            return OwnerMatch(None, several=found)
    return OwnerMatch(None, known=known)


# ---------------------------------------------------------------- notes for a write
# (called inside the writing command's transaction: no snapshot of their own)


def _either(names: list[str]) -> str:
    quoted = [f'"{n}"' for n in names[:3]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def new_owner_note(conn: sqlite3.Connection, owner: str | None, deal: Any = None
                   ) -> str | None:
    """``note: owner "Lukasz" is new; did you mean "Łukasz"?`` (without ``note: ``) when no
    deal has this owner yet and it is close to one that does (``close_to``); else None.
    ``deal``: the edited deal's row, whose owner counts only when another deal has it too
    (renaming one's own owner is no typo)."""
    from pipectl.store import deals

    if owner is None or deals.has_owner(conn, owner):
        return None
    known = deals.owners(conn)
    if deal is not None and deal["owner"] in known and not deals.has_owner(
            conn, deal["owner"], other_than=deal["id"]):
        known.remove(deal["owner"])
    near = close_to(owner, known)
    return f'owner "{owner}" is new; did you mean {_either(near)}?' if near else None


def new_reason_note(conn: sqlite3.Connection, reason: str) -> str | None:
    """Like ``new_owner_note``, for a lost reason no lost deal carries yet."""
    from pipectl.store import deals

    known = [r for r, _ in deals.lost_reasons(conn, most=500)]
    near = close_to(reason, known)
    return f'reason "{reason}" is new; did you mean {_either(near)}?' if near else None


def duplicate_warning(conn: sqlite3.Connection, name: str, company: str | None,
                      deal_id: int) -> str | None:
    """``deal 12 "Acme renewal" (Acme) is already open; added anyway as deal 51`` (without
    ``warning: ``) when another open deal has the same name and company, accents and case
    aside; else None."""
    from pipectl.store import deals

    same = deals.open_same_name(conn, name, company, other_than=deal_id)
    if not same:
        return None
    first = same[0]
    which = f'deal {first["id"]} "{first["name"]}"'
    if first["company"]:
        which += f' ({first["company"]})'
    more = len(same) - 1
    also = f" (and {more} more)" if more else ""
    return f"{which}{also} is already open; added anyway as deal {deal_id}"
