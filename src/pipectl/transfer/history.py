"""From what a file says about a deal to a coherent history: events, and the deal they project.

A file states facts (created then, in this stage; won or lost then), not moves, so import does
not ask the interactive rules; but the history it writes must read right in every report:

- a deal is created at ``created_at`` in an open stage: its stage, or for a closed deal the
  stage it was in before closing (from the file, else the preset's default);
- a won deal then moves to won at ``closed_at``; a lost deal is lost at ``closed_at`` from the
  stage it died at, with its reason;
- a stage history (Salesforce's OpportunityHistory) becomes one event per change;
- re-importing a deal appends events for what changed, never rewrites one.

Event times never go backwards. Every stage fact comes from the pipeline the deal goes into
(``Defaults.pipeline``); every move event names it. The deals row is what
``domain.projection`` makes of the events, as for the daily commands, so the two always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from pipectl.domain import projection
from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.transfer.rows import ImportRow
from pipectl.values import iso as _slow_iso


def iso(moment: datetime) -> str:
    """values.iso, fast for the UTC moments import makes (no offset arithmetic, no strftime)."""
    if moment.tzinfo is UTC and not moment.microsecond:
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return _slow_iso(moment)

Row = dict[str, Any]
DEAL_TEXTS = projection.DEAL_TEXTS
MOVES = ("created", "stage", "lost", "reopened", "pipeline")  # the events that carry a stage


@dataclass(slots=True)
class Snap:
    """A deal's state at one moment, as far as a file tells it (None = not said)."""

    stage: str
    lost_at: str | None = None
    reason: str | None = None
    value_minor: int | None = None
    currency: str | None = None
    close_date: date | None = None
    probability: int | None = None
    value_note: str | None = None  # the value as the file wrote it, when rounded (ImportRow)
    value_off: Any = None  # by how much rounding changed it (ImportRow)


@dataclass
class Defaults:
    pipeline: Pipeline  # where the deals go: every stage below is one of its keys
    won_from: str  # the open stage a won deal was in, when the file does not say
    lost_from: str  # the open stage a lost deal died at, when the file does not say
    now: datetime
    # lost_from is the preset's knowledge (Maven: lost deals were engaging), not a stand-in:
    # a lost deal placed there has a known qualification
    lost_known: bool = False

    @property
    def pipelines(self) -> dict[int, Pipeline]:
        return {self.pipeline_id: self.pipeline}

    @property
    def pipeline_id(self) -> int:
        assert self.pipeline.id is not None
        return self.pipeline.id


class Flags:
    """Counts of the adjustments made, for the summary; and the amounts rounded to their
    currency's minor unit that an event sets (currency -> how many, the largest change)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.rounded: dict[str, tuple[int, Any]] = {}

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def clear(self) -> None:
        self.counts.clear()
        self.rounded.clear()


def _kept(events: list[Row], flags: Flags | None) -> None:
    """Count the rounded amounts these events set (each keeps the file's text), and take their
    ``off`` out. A rounded amount that sets no event (its deal already had the rounded value:
    JPY 200 then 200.5) changed nothing, and is not counted: the summary counts only amounts
    whose text a deal's history keeps."""
    for e in events:
        off = e.pop("off", None)
        if off is not None and flags is not None:
            n, most = flags.rounded.get(e["currency"], (0, off))
            flags.rounded[e["currency"]] = (n + 1, max(most, off))


WARNINGS = {  # key -> (one deal, several deals)
    "no_created": ("deal had no creation time: created at its close time, else its last "
                   "update, else the import time",
                   "deals had no creation time: created at their close time, else their last "
                   "update, else the import time"),
    "no_closed": ("won or lost deal had no close time: closed at its last known time",
                  "won or lost deals had no close time: closed at their last known time"),
    "closed_before_created": ("deal closed before the file says it was created: created at its "
                              "close time",
                              "deals closed before the file says they were created: "
                              "created at their close time"),
    "closed_now": ("won or lost deal whose only close time was an expected close date still to "
                   "come: closed at the import time",
                   "won or lost deals whose only close time was an expected close date still "
                   "to come: closed at the import time"),
    "history_starts_closed": ("deal's stage history starts with it already closed: when it "
                              "began is unknown (no sales cycle)",
                              "deals' stage histories start with them already closed: when "
                              "they began is unknown (no sales cycle)"),
    "close_not_before_open": ("deal's close date was one it already had while open, or before "
                              "its latest event: closed at its last change instead, never "
                              "before it was last known open",
                              "deals' close dates were ones they already had while open, or "
                              "before their latest event: closed at their last change instead, "
                              "never before they were last known open"),
    "older_than_close": ("row was last changed before its deal closed in the database: "
                         "older than what the database holds, its stage and value were "
                         "left as they are",
                         "rows were last changed before their deals closed in the database: "
                         "older than what the database holds, their stages and values were "
                         "left as they are"),
    "unknown_qualification": ("lost deal's file does not say how far it got: lost at the "
                              "pipeline's first stage, its qualification unknown (left out of "
                              "the close rate)",
                              "lost deals' files do not say how far they got: lost at the "
                              "pipeline's first stage, their qualification unknown (left out "
                              "of the close rate)"),
}

# What a file left unknown about a deal is told on its ``created`` event: field "unknown",
# new the space-separated names below (in this order). The reports leave such a deal out of
# the figures that need the fact (sales cycle: created_at, closed_at; close rate:
# qualified_at), and say how many they left out.
UNKNOWN = "unknown"
UNKNOWN_FACTS = ("created_at", "closed_at", "qualified_at")


def mark_unknown(created: Row, facts: set[str]) -> None:
    """Tell on a deal's ``created`` event the facts its file did not give (none: no mark)."""
    if facts:
        created["field"] = UNKNOWN
        created["new"] = " ".join(f for f in UNKNOWN_FACTS if f in facts)


def warning_text(key: str, n: int) -> str:
    """What the import summary says after the count ``n`` ("1 deal had", "2 deals had")."""
    one, several = WARNINGS[key]
    return one if n == 1 else several


# ---------------------------------------------------------------- projection


def project(deal: Row, events: list[Row], defaults: Defaults) -> None:
    """Apply events to a deal's state (in place), as the daily commands do."""
    pipelines = defaults.pipelines
    for event in events:
        projection.apply(deal, event, pipelines)


# ---------------------------------------------------------------- snapshots and moves


def snap_of(row: ImportRow, defaults: Defaults) -> Snap:
    """What a row says of the deal; a lost deal's ``lost_at`` only when the file says it (the
    callers choose the stage otherwise)."""
    lost_at = row.before_close if row.stage == LOST else None
    return Snap(
        stage=row.stage, lost_at=lost_at, reason=row.lost_reason, value_minor=row.value_minor,
        currency=row.currency if row.value_minor is not None else None,
        close_date=row.close_date, probability=row.probability, value_note=row.value_note,
        value_off=row.value_off,
    )


def snap_of_deal(deal: Row) -> Snap:
    return Snap(
        stage=deal["stage"],
        lost_at=deal.get("lost_at_stage"),
        reason=deal.get("lost_reason"),
        value_minor=deal.get("value_minor"),
        currency=deal.get("currency"),
        close_date=date.fromisoformat(deal["close_date"]) if deal.get("close_date") else None,
        probability=deal.get("probability"),
    )


def _opening(first: Snap, defaults: Defaults, before: str | None) -> Snap:
    """The open stage a deal first seen closed was created in."""
    if first.stage == LOST:
        return replace(first, stage=first.lost_at or defaults.lost_from, lost_at=None, reason=None)
    if not defaults.pipeline.is_open(first.stage):
        return replace(first, stage=before or defaults.won_from)
    return first


def moves(prev: Snap, cur: Snap, at: str, defaults: Defaults) -> list[Row]:
    """Events that take a deal from ``prev`` to ``cur`` at ``at`` (None in cur = unchanged)."""
    out: list[Row] = []
    if cur.value_minor is not None and (cur.value_minor, cur.currency) != (
        prev.value_minor, prev.currency
    ):
        out.append({"at": at, "kind": "value", "value_minor": cur.value_minor,
                    "currency": cur.currency, "text": cur.value_note, "off": cur.value_off})
    if cur.close_date is not None and cur.close_date != prev.close_date:
        out.append({"at": at, "kind": "close_date", "close_date": cur.close_date.isoformat()})
    if cur.probability is not None and cur.probability != prev.probability:
        out.append({"at": at, "kind": "probability", "probability": cur.probability})
    a, b = prev.stage, cur.stage
    if a == b:
        return out
    p, pid = defaults.pipeline, defaults.pipeline_id

    def step(x: str, y: str) -> None:
        if p.is_open(x) and p.stage(y).kind == "after_won":  # won on the way
            step(x, p.won_key)
            x = p.won_key
        out.append({"at": at, "kind": "stage", "pipeline_id": pid, "from_stage": x,
                    "to_stage": y})

    if b == LOST:
        died_at = cur.lost_at or (a if p.is_open(a) else defaults.lost_from)
        if died_at != a:
            step(a, died_at)
        out.append({"at": at, "kind": "lost", "pipeline_id": pid, "from_stage": died_at,
                    "to_stage": LOST, "reason": cur.reason or "no reason recorded"})
        return out
    if a == LOST:
        back = prev.lost_at or defaults.lost_from
        out.append({"at": at, "kind": "reopened", "pipeline_id": pid, "from_stage": LOST,
                    "to_stage": back})
        a = back
    if a != b:
        step(a, b)
    return out


# ---------------------------------------------------------------- a new deal


def new_deal(
    row: ImportRow,
    defaults: Defaults,
    flags: Flags,
    history: list[ImportRow] | None = None,
) -> tuple[Row, list[Row]]:
    """The deals row and the events of a deal the database does not have yet."""
    p = defaults.pipeline
    final = snap_of(row, defaults)
    closed = not p.is_open(row.stage)
    created = row.created_at
    unknown: set[str] = set()  # what the file does not tell (see mark_unknown)
    # the states the file tells of, in time order: (moment or None, snapshot)
    states: list[tuple[datetime | None, Snap]] = []
    for h in sorted(history or [], key=lambda h: (h.created_at or defaults.now, h.row)):
        s = snap_of(h, defaults)
        states.append((h.created_at, s))
    first_seen = next((t for t, _ in states if t is not None), None)
    if first_seen is not None and (created is None or first_seen < created):
        created = first_seen  # the history knows the deal from earlier on
    if created is None:
        created = row.closed_at if closed and row.closed_at else row.updated_at or defaults.now
        flags.add("no_created")
        unknown.add("created_at")
    fixed: list[tuple[str, Snap]]
    if not history:  # the usual row: created, then (if closed) won or lost
        if closed:
            x = row.closed_at
            if x is None:  # closed at the last time the file knows for the deal
                x = max(created, row.updated_at) if row.updated_at else created
                flags.add("no_closed")
                unknown.add("closed_at")
            elif row.closed_now:
                flags.add("closed_now")
            if x < created:
                flags.add("closed_before_created")
                unknown.add("created_at")
            opening = _opening(final, defaults, row.before_close)
            fixed = [(iso(min(created, x)), opening), (iso(x), final)]
        else:
            fixed = [(iso(created), final)]
    else:
        fixed = _from_history(row, final, states, created, defaults, flags, unknown)
    # a loss the file places nowhere (no stage at loss, no open stage in its history) is at
    # the pipeline's first stage, or where the preset says such deals died
    guessed = False
    for _, s in fixed:
        if s.stage == LOST and s.lost_at is None:
            s.lost_at = defaults.lost_from
            guessed = not defaults.lost_known
    at0, s0 = fixed[0]
    reason = row.prequalified
    if reason is None and p.is_qualified_stage(s0.stage):
        reason = f"imported (file stage: {row.their_stage or s0.stage})"
    currency = s0.currency or row.currency
    events: list[Row] = [{
        "at": at0, "kind": "created", "pipeline_id": defaults.pipeline_id, "to_stage": s0.stage,
        "value_minor": s0.value_minor, "currency": currency,
        "close_date": s0.close_date.isoformat() if s0.close_date else None,
        "probability": s0.probability, "reason": reason, "text": s0.value_note,
        "off": s0.value_off if s0.value_minor is not None else None,
    }]
    if row.note:
        events.append({"at": at0, "kind": "note", "text": row.note})
    s0.currency = currency
    prev = s0
    for at, s in fixed[1:]:
        if s.currency is None:
            s.currency = prev.currency
        events.extend(moves(prev, s, at, defaults))
        prev = Snap(
            stage=s.stage, lost_at=s.lost_at if s.stage == LOST else None,
            reason=s.reason, value_minor=s.value_minor if s.value_minor is not None
            else prev.value_minor, currency=s.currency,
            close_date=s.close_date or prev.close_date,
            probability=s.probability if s.probability is not None else prev.probability,
        )
    _kept(events, flags)
    deal = projection.blank_deal()
    deal.update({k: getattr(row, k) for k in ("ref", *DEAL_TEXTS)})
    deal["currency"] = currency
    project(deal, events, defaults)
    if guessed and deal["qualified_at"] is None:
        # lost, and nothing tells how far it got: whether it was qualified is unknown
        unknown.add("qualified_at")
        flags.add("unknown_qualification")
    mark_unknown(events[0], unknown)
    return deal, [{k: v for k, v in e.items() if v is not None} for e in events]


def _from_history(
    row: ImportRow,
    final: Snap,
    states: list[tuple[datetime | None, Snap]],
    created: datetime,
    defaults: Defaults,
    flags: Flags,
    unknown: set[str],
) -> list[tuple[str, Snap]]:
    """A deal's timeline from its stage history (``states``, in time order) and its row in
    the deals file (``final``, its state at its last change): [(ISO moment, state), ...],
    oldest first, the first being its creation.

    The history's own moments drive it: each row is the deal's state from its moment on, and
    a deal closes at the first row of the closed run that ends its history. Only when the
    history does not show the close does the deals file's close time (a CloseDate) place it,
    never before the history's last row. A loss is at the last open stage the history shows
    before it (with the deals file's reason for the loss that ends the history); a lost deal
    whose history shows no open stage keeps ``lost_at`` None (the caller decides).
    """
    p = defaults.pipeline
    closed = not p.is_open(row.stage)
    states.append((row.updated_at, final))
    states[0] = (created, states[0][1])  # the first state is the creation
    if not p.is_open(states[0][1].stage):
        # the history begins with the deal already closed: it began before its record did
        unknown.add("created_at")
        flags.add("history_starts_closed")
    # the final closed run: from the first state from which it stays closed (final kind)
    k = len(states)
    if closed:
        kind = p.status(row.stage)
        k = len(states) - 1
        while k > 0 and p.status(states[k - 1][1].stage) is kind:
            k -= 1
    # losses: at the last open stage shown before them; the final one with the file's reason
    last_open: str | None = None
    for i, (t, s) in enumerate(states):
        if s.stage == LOST:
            lost_at = s.lost_at or last_open
            reason = row.lost_reason if i >= k and row.lost_reason else s.reason
            states[i] = (t, replace(s, lost_at=lost_at, reason=reason))
        elif p.is_open(s.stage):
            last_open = s.stage
    first = states[0][1]
    opening = _opening(first, defaults, row.before_close)
    if opening is not first:
        states.insert(0, (states[0][0], opening))
        k += 1
    if closed:
        shown = [t for t, _ in states[:-1] if t is not None]  # the history's moments
        if k < len(states) - 1 and states[k][0] is not None:
            x = states[k][0]  # the history shows the close
        else:
            x = row.closed_at
            if x is None:
                known = [t for t, _ in states if t is not None]
                x = max(known) if known else created
                flags.add("no_closed")
                unknown.add("closed_at")
            elif row.closed_now:
                flags.add("closed_now")
            if shown and x < max(shown):
                x = max(shown)  # never before the history last shows it open
                flags.add("close_not_before_open")
        if x < created:
            flags.add("closed_before_created")
            unknown.add("created_at")
        for i, (t, s) in enumerate(states):
            if i < k:
                states[i] = (x if t is None or t > x else t, s)
            elif i == k:
                states[i] = (x, s)
            else:
                states[i] = (x if t is None or t < x else t, s)
    # times never go backwards; unknown times take the previous one
    fixed: list[tuple[str, Snap]] = []
    prev_t: datetime | None = None
    for t, s in states:
        t = t if t is not None else prev_t or created
        if prev_t is not None and t < prev_t:
            t = prev_t
        fixed.append((iso(t), s))
        prev_t = t
    return fixed


# ---------------------------------------------------------------- a deal seen again


def _differs(deal: Row, row: ImportRow, defaults: Defaults) -> bool:
    """Would ``row`` change ``deal``'s stage, status or value?"""
    prev, cur = snap_of_deal(deal), snap_of(row, defaults)
    return cur.stage != prev.stage or (
        cur.value_minor is not None
        and (cur.value_minor, cur.currency) != (prev.value_minor, prev.currency))


def update_deal(
    deal: Row, row: ImportRow, defaults: Defaults, notes: set[str], flags: Flags | None = None
) -> list[Row]:
    """Events for what ``row`` changes in ``deal`` (applied to ``deal`` in place).

    A row last changed before the deal closed in the database (an older snapshot imported
    after a newer one, or a CRM that had not yet seen a loss recorded in pipectl) is older
    than what the database holds: it leaves the deal's stage, status and value as they are
    (it would reopen the deal, or change what it was won or lost at, after its close); its
    other cells are read as ever."""
    last = deal["updated_at"]
    if (deal.get("closed_at") is not None and row.updated_at is not None
            and iso(row.updated_at) < deal["closed_at"] and _differs(deal, row, defaults)):
        if flags is not None:
            flags.add("older_than_close")
        row = row.model_copy(update={"stage": deal["stage"], "value_minor": None,
                                     "value_note": None, "value_off": None,
                                     "before_close": None,
                                     "closed_at": None})
    when = row.updated_at or defaults.now
    at = max(iso(when), last)
    events: list[Row] = []
    for fld in DEAL_TEXTS:
        new = getattr(row, fld)
        if new is not None and new != deal.get(fld):
            if fld == "name" and not row.name_given:
                continue  # a name made up from the company or ref never replaces the deal's
            events.append({"at": at, "kind": "edit", "field": fld, "old": deal.get(fld),
                           "new": new})
    p = defaults.pipeline
    prev = snap_of_deal(deal)
    cur = snap_of(row, defaults)
    if cur.stage == LOST and prev.stage == LOST:
        cur = replace(cur, lost_at=prev.lost_at)
    elif cur.stage == LOST and p.is_open(prev.stage) and row.before_close is None:
        cur = replace(cur, lost_at=prev.stage)
    stage_at = at
    closing = not p.is_open(cur.stage) and p.status(cur.stage) != p.status(prev.stage)
    if closing and row.closed_at is not None:
        stage_at = iso(row.closed_at)
        if row.closed_now and flags is not None:
            flags.add("closed_now")
        # A deal recorded open at a moment did not close before it. A close time before its
        # latest event is impossible; a close date it already had while open (the CRM kept
        # the date it was expected to close) says nothing of when it closed. Either way it
        # closed by the row's last change (never before the deal's latest event).
        stale = (row.closed_from_close_date and prev.close_date is not None
                 and prev.close_date == row.close_date and p.is_open(prev.stage))
        if stale or stage_at < last:
            stage_at = max(iso(row.updated_at), last) if row.updated_at else last
            if flags is not None:
                flags.add("close_not_before_open")
    changes = moves(prev, cur, at, defaults)
    for e in changes:
        if e["kind"] in MOVES:
            e["at"] = stage_at
    events.extend(changes)
    if row.note and row.note not in notes:
        events.append({"at": at, "kind": "note", "text": row.note})
    events.sort(key=lambda e: e["at"])  # stable: same-moment events keep their order
    _kept(events, flags)
    out = [{k: v for k, v in e.items() if v is not None or k in ("old", "new")} for e in events]
    project(deal, out, defaults)
    return [{k: v for k, v in e.items() if v is not None} for e in out]
