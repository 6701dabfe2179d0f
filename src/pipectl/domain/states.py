"""A deal's states over time and its completed stays: what the read models hold
(``store.readmodel``), as one pure function of the deal's events.

A *state* is what the reports' snapshot says of a deal at a moment (``reports.snapshot``'s
replay computes the same from the events in SQL; ``tests/store/test_read_models.py`` proves
the two equal): its pipeline and stage since its latest move, its loss, its first win, when it
became qualified, the furthest stage of its pipeline it reached, its value, currency, close
date and own probability (its latest event of each kind, else its ``created`` event), when it
was created and what its import could not tell. A new state begins with every event that can
change one (a move, or a ``value``, ``close_date`` or ``probability`` event) and lasts until
the next one; a state the next replaced at the same moment is left out (no moment sees it).
The last state also carries the deal's latest event's moment and its latest note with a next
action. A *stay* runs from a move into a stage to the deal's next move.

What a stage means comes from ``Facts`` (per pipeline: its won stages, each stage's order on
the line, the stages beyond the gate), built from the definitions (``facts_of``). Events come
in id order, a deal's id order being its time order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipectl.domain.pipeline import LOST

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

# ``until_at`` of a deal's state now: after any moment pipectl takes (dates end in 2999).
STILL = "9999-12-31T23:59:59Z"

# The event columns ``states`` reads, in this order.
EVENT_COLUMNS = ("id", "at", "kind", "pipeline_id", "from_stage", "to_stage", "reason",
                 "value_minor", "currency", "close_date", "probability", "field", "new",
                 "next_action", "due")
_ID, _AT, _KIND, _PID, _FROM, _TO, _REASON, _VALUE, _CUR, _CLOSE, _PROB, _FIELD, _NEW, \
    _ACTION, _DUE = range(len(EVENT_COLUMNS))

# A state row: (deal_id, since_id, since_at, until_at, *STATE, last_at, next_id).
STATE = ("created_at", "unknown", "pipeline_id", "stage", "entered_at", "lost_stage",
         "lost_reason", "lost_at", "won_at", "qualified_at", "reached", "value_minor",
         "currency", "close_date", "probability")
ROW = ("deal_id", "since_id", "since_at", "until_at", *STATE, "last_at", "next_id")
# A stay row: (deal_id, entered_id, pipeline_id, stage, entered_at, left_at).
STAY = ("deal_id", "entered_id", "pipeline_id", "stage", "entered_at", "left_at")

_CHANGES = frozenset({"value", "close_date", "probability"})


@dataclass(frozen=True)
class Facts:
    """What the states depend on in one pipeline's definition."""

    won: frozenset[str]
    order: Mapping[str, int]
    qualified: frozenset[str]
    open: frozenset[str] = frozenset()


def facts_of(pipelines: Mapping[int, Pipeline]) -> dict[int, Facts]:
    return {
        pid: Facts(frozenset(p.won_keys), {s.key: s.order for s in p.stages},
                   frozenset(s.key for s in p.line if p.is_qualified_stage(s.key)),
                   frozenset(p.open_keys))
        for pid, p in pipelines.items()
    }


_NONE = Facts(frozenset(), {}, frozenset())


def states(deal_id: int, events: Sequence[Sequence[Any]], facts: Mapping[int, Facts]
           ) -> tuple[list[tuple], list[tuple]]:
    """The deal's state rows (``ROW``) and stay rows (``STAY``) from its events (each a
    sequence of ``EVENT_COLUMNS``), in id order."""
    rows: list[tuple] = []
    stays: list[tuple] = []
    created = latest = value = close = prob = lost = None
    won_at = qualified_at = None
    reached: dict[Any, int] = {}  # pipeline -> the furthest order among its moves so far
    last_at = None
    next_id = None
    pending: list[Any] | None = None  # the state begun by the previous state event
    for e in events:
        at = e[_AT]
        if last_at is None or at > last_at:
            last_at = at
        kind = e[_KIND]
        if kind == "note" and (e[_ACTION] is not None or e[_DUE] is not None
                               or e[_FIELD] == "next_action"):  # set, or cleared
            next_id = e[_ID]
        to = e[_TO]
        if to is not None:
            f = facts.get(e[_PID], _NONE)
            if created is None:
                created = e
            if latest is not None:
                stays.append((deal_id, latest[_ID], latest[_PID], latest[_TO], latest[_AT], at))
            latest = e
            if to == LOST:
                lost = e
            if won_at is None and to in f.won:
                won_at = at
            if (qualified_at is None and to in f.qualified
                    and not (kind == "pipeline" and e[_FROM] == LOST)):
                qualified_at = at
            order = f.order.get(to, 0)
            if order > reached.get(e[_PID], -1):
                reached[e[_PID]] = order
        elif kind in _CHANGES:
            if kind == "value":
                value = e
            elif kind == "close_date":
                close = e
            else:
                prob = e
        else:
            continue
        if latest is None or created is None:
            continue  # nothing before the deal's first move makes a state
        if pending is not None:
            pending[3] = at
            if at > pending[2]:
                rows.append(tuple(pending))
        s = latest
        moved = s[_KIND] == "pipeline" and s[_FROM] == LOST
        to_lost = s[_TO] == LOST
        cr = created
        pending = [
            deal_id, e[_ID], at, STILL,
            cr[_AT],
            cr[_NEW] if cr[_FIELD] == "unknown" else None,
            s[_PID],
            LOST if moved else s[_TO],
            s[_AT],
            s[_FROM] if to_lost else (s[_TO] if moved else None),
            s[_REASON] if to_lost else (lost[_REASON] if moved and lost is not None else None),
            s[_AT] if to_lost else (lost[_AT] if moved and lost is not None else None),
            won_at,
            cr[_AT] if cr[_REASON] is not None else qualified_at,
            reached[s[_PID]],
            (value or cr)[_VALUE],
            (value or cr)[_CUR],
            (close or cr)[_CLOSE],
            (prob or cr)[_PROB],
            None, None,
        ]
    if pending is not None:
        pending[-2], pending[-1] = last_at, next_id
        rows.append(tuple(pending))
    return rows, stays


# An outcome row (``outcomes``): (deal_id, *OUTCOME).
OUTCOME = ("kind", "pipeline_id", "stage", "won", "valued", "days", "p_own", "decided_at",
           "created_at", "value_minor", "currency")
OUTCOME_ROW = ("deal_id", *OUTCOME)


def outcomes(deal_id: int, events: Sequence[Sequence[Any]], facts: Mapping[int, Facts]
             ) -> list[tuple]:
    """What the deal teaches the forecast, now (``reports.learning`` reads the same from the
    events in SQL, as of any moment; ``tests/store/test_read_models.py`` proves the two equal
    after every event): nothing while it is not decided (its latest move is not into a won
    stage of its pipeline, into lost, or a lost deal's move to another pipeline). Decided:

    - ``stage``: one row per open stage of its pipeline it moved into before the decision
      (at or before its moment): won (1) or lost (0), whether its value (its latest ``value``
      event's, else its ``created`` event's) is above 0, the days from its latest entry into
      the stage to the decision (None when its import could not tell when it began), and its
      own probability at that entry (its latest ``probability`` event before it, else its
      ``created`` event's; the latter too when it never had one);
    - ``slip``: when won, one row per close date promised at or before the win (its
      ``created`` and ``close_date`` events'), ``days`` from that date to the win;
    - ``won``: when won, when (its first move into a won stage), when it was created, its value
      and currency (the value won, for the new business of the range).

    The decision is the win's first move's moment, or the loss's (its latest move's)."""
    moves = [e for e in events if e[_TO] is not None]
    if not moves:
        return []
    cr, s = moves[0], moves[-1]
    won_now = s[_TO] in facts.get(s[_PID], _NONE).won
    if not (won_now or s[_TO] == LOST or (s[_KIND] == "pipeline" and s[_FROM] == LOST)):
        return []
    pid = s[_PID]
    decided_at = (min(e[_AT] for e in moves if e[_TO] in facts.get(e[_PID], _NONE).won)
                  if won_now else s[_AT])
    untimed = cr[_FIELD] == "unknown" and cr[_NEW] is not None and cr[_NEW] != "qualified_at"
    probs = [e for e in events if e[_KIND] == "probability"]
    values = [e for e in events if e[_KIND] == "value"]
    value, currency = (values[-1] if values else cr)[_VALUE], (values[-1] if values else cr)[_CUR]
    valued = 1 if value is not None and value > 0 else 0
    won = 1 if won_now else 0
    entries: dict[str, list[Any]] = {}  # stage -> [latest moment, latest id]
    open_ = facts.get(pid, _NONE).open
    for x in moves:
        if x[_AT] <= decided_at and x[_PID] == pid and x[_TO] in open_:
            entry = entries.get(x[_TO])
            if entry is None:
                entries[x[_TO]] = [x[_AT], x[_ID]]
            else:
                entry[0] = max(entry[0], x[_AT])
                entry[1] = max(entry[1], x[_ID])
    out: list[tuple] = []
    decided_day = day_number(decided_at[:10])
    for stage, (entered_at, k_entry) in entries.items():
        days = None
        if not untimed:
            entered_day = day_number(entered_at[:10])
            if decided_day is not None and entered_day is not None:
                days = decided_day - entered_day
        own = cr[_PROB]
        if probs:
            before = [y for y in probs if y[_ID] < k_entry]
            if before:
                own = before[-1][_PROB]
        out.append((deal_id, "stage", pid, stage, won, valued, days, own, None, None, None,
                    None))
    if won_now:
        if not untimed:
            for x in events:
                if (x[_KIND] in ("created", "close_date") and x[_CLOSE] is not None
                        and x[_AT] <= decided_at):
                    promised = day_number(x[_CLOSE])
                    slip = (None if decided_day is None or promised is None
                            else decided_day - promised)
                    out.append((deal_id, "slip", pid, None, None, None, slip, None, None, None,
                                None, None))
        out.append((deal_id, "won", pid, None, None, None, None, None, decided_at, cr[_AT],
                    value, currency))
    return out


def day_number(text: Any) -> int | None:
    """A ``YYYY-MM-DD`` date's day number as SQLite's ``julianday`` counts it (less its
    constant), so that a difference of two is the days SQLite gives: it takes any day 1-31 of
    any month (the 30th of February is the 2nd of March). None where SQLite gives NULL."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    y, m, d = text[:4], text[5:7], text[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit() and y.isascii() and m.isascii()
            and d.isascii()):
        return None
    year, month, day = int(y), int(m), int(d)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if month <= 2:
        year, month = year - 1, month + 12
    a = year // 100
    b = 2 - a + a // 4
    return (36525 * (year + 4716)) // 100 + (306001 * (month + 1)) // 10000 + day + b


def by_deal(events: Iterable[Sequence[Any]]) -> Iterable[tuple[int, list[Sequence[Any]]]]:
    """(deal_id, its events) from events ordered by deal, then id, each led by its deal_id
    (``deal_id, *EVENT_COLUMNS``)."""
    current: int | None = None
    group: list[Sequence[Any]] = []
    for row in events:
        if row[0] != current:
            if group:
                yield current, group  # type: ignore[misc]
            current, group = row[0], []
        group.append(row[1:])
    if group:
        yield current, group  # type: ignore[misc]
