"""Seeded, deterministic generator of large pipectl databases (and the matching import CSV).

Each deal lives a realistic life, event by event, along the rules pipectl enforces: created in
prospecting (or pre-qualified in meeting/proposal, with a reason), the qualification checklist,
stage moves including the allowed skips (prospecting -> meeting when pre-qualified, proposal ->
won), moves back, value and close-date changes (close dates that slip), own probabilities, owner
reassignments, notes with next actions, losses at every open stage with a reason, reopens,
won -> post_purchase, and deals that simply go stale. About five events per deal, several
owners (some with non-ASCII names), EUR/USD/VND, three years of history ending at --end.

The file is created by ``pipectl.store.db.connect`` (schema, migrations, application id), then
filled with bulk SQL in one transaction. The ``deals`` rows are the projection of each deal's
events, exactly as pipectl's store would leave them (``--verify N`` replays N deals through
pipectl's own store functions and compares). Events are inserted in global time order, as a
real database that grew over three years would hold them.

Usage::

    python benchmarks/generate.py --deals 100000 --seed 1 benchmarks/out/d100k.db
    python benchmarks/generate.py --deals 1000000 --seed 1 --csv benchmarks/out/d1m.csv
    python benchmarks/generate.py --deals 2000 --verify 500 /tmp/check.db

Same arguments, same bytes of data (the file itself may differ in SQLite page layout details).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sqlite3
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipectl.store.deals import search_text
from pipectl.values import format_money

DAY = 86400
DEFAULT_END = "2026-11-27"
YEARS = 3

# Owners: name -> currency weights (EUR, USD, VND). Some non-ASCII, one owner-less share.
OWNERS: tuple[tuple[str, tuple[int, int, int], int], ...] = (
    # (name, currency weights EUR/USD/VND, share of deals)
    ("Anna", (8, 2, 0), 18),
    ("Łukasz", (9, 1, 0), 12),
    ("Nguyễn Thị Mai", (0, 2, 8), 14),
    ("Bob", (1, 9, 0), 16),
    ("José García", (7, 3, 0), 10),
    ("Chloé", (9, 1, 0), 9),
    ("Priya", (2, 8, 0), 8),
    ("Trần Văn Minh", (0, 1, 9), 8),
)
NO_OWNER_SHARE = 5
CURRENCIES = ("EUR", "USD", "VND")

SYLLABLES = (
    "ac", "me", "to", "ra", "vi", "no", "lux", "zen", "bel", "dor", "ka", "mi", "sol", "tek",
    "ver", "da", "qu", "lin", "mar", "os", "pha", "ri", "sa", "un",
)
SUFFIXES = (
    "GmbH", "Ltd", "SA", "Inc", "sp. z o.o.", "Công ty TNHH", "SARL", "BV", "AB", "LLC", "",
)
PRODUCTS = (
    "renewal", "upgrade", "pilot", "rollout", "licence", "support contract", "expansion",
    "migration", "training", "annual plan",
)
FIRST = (
    "Anna", "Jan", "Zoë", "Mia", "Paul", "Đức", "Linh", "Oskar", "Inès", "Søren", "Hana", "Raúl",
    "Grzegorz", "Maria", "Tom", "Ngọc", "Émile", "Jürgen", "Aiko", "Sam",
)
LAST = (
    "Müller", "Nowak", "Phạm", "Smith", "Dubois", "Rossi", "García", "Lê", "Jensen", "Kowalski",
    "Brown", "Martin", "Hoàng", "Schmidt", "Silva", "Tanaka",
)
SOURCES = ("referral", "website", "linkedin", "trade fair", "cold email", "partner", None)
PREQUAL_REASONS = (
    "referred by a customer",
    "long-time contact, budget confirmed",
    "verified on LinkedIn",
    "repeat customer",
    "met at a conference; budget confirmed",
)
LOST_REASONS = (
    "chose a competitor on price",
    "went silent",
    "timing: next fiscal year",
    "no budget",
    "project cancelled",
    "needs not met",
    "no decision maker reachable",
    "Kunde hat sich für einen Wettbewerber entschieden",
    "khách hàng hoãn dự án",
)
FAILED_CRITERION_REASON = {
    "location": "outside our sales region",
    "budget": "no budget",
    "authority": "no decision maker reachable",
    "need": "needs not met",
}
NOTES = (
    "Intro call", "Sent the deck", "Demo went well", "Call with their CFO", "Follow-up email",
    "Waiting for procurement", "Sent revised quote", "Gọi điện cho khách", "Rückruf vereinbart",
    "Visited their office",
)
NEXT_ACTIONS = (
    "send revised quote", "book the demo", "call back", "send the contract", "chase procurement",
)
CRITERIA = ("location", "budget", "authority", "need")

# events columns, in insert order (id is assigned by SQLite in time order)
EVENT_COLS = (
    "deal_id", "at", "kind", "from_stage", "to_stage", "value_minor", "currency", "close_date",
    "probability", "location", "budget", "authority", "need", "reason", "text", "next_action",
    "due", "field", "old", "new",
)
DEAL_COLS = (
    "id", "ref", "name", "company", "contact", "email", "phone", "owner", "source", "stage",
    "lost_at_stage", "lost_reason", "value_minor", "currency", "probability", "close_date",
    "qualified_at", "prequalified_reason", "location", "budget", "authority", "need",
    "next_action", "next_due", "created_at", "updated_at", "closed_at", "search",
)
CSV_COLS = (
    "ref", "name", "company", "contact", "email", "phone", "owner", "source", "stage",
    "lost_at_stage", "lost_reason", "value", "currency", "probability", "close_date",
    "created_at", "closed_at", "prequalified_reason",
)
QUALIFIED_STAGES = ("meeting", "proposal", "negotiation", "won", "post_purchase")
OPEN = ("prospecting", "qualification", "meeting", "proposal", "negotiation")


class Clock:
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ' / 'YYYY-MM-DD', via a table of day strings."""

    def __init__(self, first_day: date, days: int) -> None:
        self.base = int(datetime(first_day.year, first_day.month, first_day.day,
                                 tzinfo=UTC).timestamp()) // DAY
        self.days = [(first_day + timedelta(d)).isoformat() for d in range(days)]

    def iso(self, t: int) -> str:
        d, s = divmod(t, DAY)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        return f"{self.days[d - self.base]}T{h:02d}:{m:02d}:{s:02d}Z"

    def day(self, t: int) -> str:
        return self.days[t // DAY - self.base]


def _weighted(rng: random.Random, items, weights):
    return rng.choices(items, weights)[0]


class Generator:
    def __init__(self, n: int, seed: int, end: str) -> None:
        self.n = n
        self.rng = random.Random(seed)
        end_day = date.fromisoformat(end)
        start_day = end_day - timedelta(days=365 * YEARS + 1)
        self.end = int(datetime(end_day.year, end_day.month, end_day.day,
                                tzinfo=UTC).timestamp())
        self.start = self.end - (365 * YEARS + 1) * DAY
        # close dates may lie up to ~2 years past the end
        self.clock = Clock(start_day - timedelta(days=2), 365 * (YEARS + 3))
        self.owner_names = [o[0] for o in OWNERS] + [None]
        self.owner_weights = [o[2] for o in OWNERS] + [NO_OWNER_SHARE]
        self.owner_cur = {o[0]: o[1] for o in OWNERS}
        self.owner_cur[None] = (5, 5, 0)

    # ------------------------------------------------------------ helpers

    def _company(self) -> str:
        rng = self.rng
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        suffix = rng.choice(SUFFIXES)
        if suffix == "Công ty TNHH":
            return f"{suffix} {word}"
        return f"{word} {suffix}".strip()

    def _value(self, currency: str) -> int:
        rng = self.rng
        units = int(math.exp(rng.gauss(9.3, 1.1)))  # median ~11k, tail to ~1M
        units = max(100, min(units, 5_000_000))
        if currency == "VND":
            return units * 25_000 // 1000 * 1000  # whole thousands of dong, exponent 0
        cents = rng.choice((0, 0, 0, 50, rng.randint(1, 99)))
        return units * 100 + cents

    def _gap(self, mean_days: float) -> int:
        """Seconds until the next event: exponential days, at least ten minutes."""
        return max(600, int(self.rng.expovariate(1.0 / mean_days) * DAY))

    # ------------------------------------------------------------ one deal

    def deal(self, deal_id: int, t0: int):
        """Simulate one deal. Returns (deal row tuple, list of event tuples, csv row)."""
        rng = self.rng
        clock = self.clock
        iso = clock.iso
        end = self.end
        owner = _weighted(rng, self.owner_names, self.owner_weights)
        currency = _weighted(rng, CURRENCIES, self.owner_cur[owner])
        company = self._company() if rng.random() < 0.93 else None
        contact = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.8 else None
        email = None
        if contact and rng.random() < 0.7:
            email = f"contact{deal_id}@example.com"
        phone = f"+49 30 {rng.randint(1000000, 9999999)}" if rng.random() < 0.3 else None
        source = rng.choice(SOURCES)
        name = f"{company or contact or 'Deal'} {rng.choice(PRODUCTS)}"
        ref = f"CRM-{deal_id:07d}" if rng.random() < 0.6 else None
        value = self._value(currency) if rng.random() < 0.92 else None
        close = None
        if rng.random() < 0.75:
            close = clock.day(t0 + rng.randint(20, 150) * DAY)
        probability = rng.choice((25, 50, 70, 90)) if rng.random() < 0.05 else None

        r = rng.random()
        prequal = None
        if r < 0.84:
            stage = "prospecting"
        elif r < 0.90:
            stage = "qualification"
        elif r < 0.97:
            stage = "meeting"
            prequal = rng.choice(PREQUAL_REASONS)
        else:
            stage = "proposal"
            prequal = rng.choice(PREQUAL_REASONS)
        created = iso(t0)
        qualified_at = created if prequal else None
        events = [(deal_id, created, "created", None, stage, value, currency, close,
                   probability, None, None, None, None, prequal, None, None, None, None, None,
                   None)]
        flags = {c: None for c in CRITERIA}
        lost_at = lost_reason = closed_at = None
        next_action = next_due = None
        t = t0
        last = created
        mean_gap = rng.choice((4.0, 8.0, 12.0, 20.0))  # some teams move faster than others
        ev = events.append

        while True:
            # what happens next, given the stage
            if stage in ("won", "post_purchase"):
                if stage == "won" and rng.random() < 0.4:
                    step = "post_purchase"
                elif rng.random() < 0.4:
                    step = "note"
                else:
                    break
            elif stage == "lost":
                if rng.random() < 0.06:
                    step = "reopen"
                else:
                    break
            else:
                step = self._open_step(stage, flags, close, t)
                if step == "stale":
                    break
            t += self._gap(mean_gap)
            if t >= end:
                break
            at = iso(t)
            if step == "note":
                text = rng.choice(NOTES)
                if rng.random() < 0.35 and stage in OPEN:
                    next_action = rng.choice(NEXT_ACTIONS)
                    next_due = clock.day(t + rng.randint(1, 21) * DAY)
                    ev((deal_id, at, "note", None, None, None, None, None, None, None, None,
                        None, None, None, text, next_action, next_due, None, None, None))
                else:
                    ev((deal_id, at, "note", None, None, None, None, None, None, None, None,
                        None, None, None, text, None, None, None, None, None))
            elif step == "checklist":
                unset = [c for c in CRITERIA if flags[c] is None]
                failed = [c for c in CRITERIA if flags[c] is False]
                change = {}
                if failed:  # a criterion fixed after a second look
                    change[failed[0]] = 1
                else:
                    for c in rng.sample(unset, rng.randint(1, len(unset))):
                        change[c] = 1 if rng.random() < 0.88 else 0
                for c, v in change.items():
                    flags[c] = bool(v)
                ev((deal_id, at, "checklist", None, None, None, None, None, None,
                    change.get("location"), change.get("budget"), change.get("authority"),
                    change.get("need"), None,
                    rng.choice(NOTES) if rng.random() < 0.2 else None,
                    None, None, None, None, None))
            elif step == "value":
                old = value or self._value(currency)
                value = max(0, int(old * rng.uniform(0.7, 1.3)))
                if currency == "VND":
                    value = value // 1000 * 1000
                ev((deal_id, at, "value", None, None, value, currency, None, None, None, None,
                    None, None, None, None, None, None, None, None, None))
            elif step == "close_date":
                close = clock.day(t + rng.randint(14, 75) * DAY)
                ev((deal_id, at, "close_date", None, None, None, None, close, None, None, None,
                    None, None, None, None, None, None, None, None, None))
            elif step == "probability":
                probability = None if probability else rng.choice((30, 50, 65, 85))
                ev((deal_id, at, "probability", None, None, None, None, None, probability,
                    None, None, None, None, None, None, None, None, None, None, None))
            elif step == "owner":
                new_owner = rng.choice([o for o in self.owner_names if o and o != owner])
                ev((deal_id, at, "edit", None, None, None, None, None, None, None, None, None,
                    None, None, None, None, None, "owner", owner, new_owner))
                owner = new_owner
            elif step == "lost":
                failed = [c for c in CRITERIA if flags[c] is False]
                reason = FAILED_CRITERION_REASON[failed[0]] if failed else rng.choice(
                    LOST_REASONS)
                ev((deal_id, at, "lost", stage, "lost", None, None, None, None, None, None,
                    None, None, reason, None, None, None, None, None, None))
                lost_at, lost_reason, closed_at = stage, reason, at
                stage = "lost"
            elif step == "reopen":
                ev((deal_id, at, "reopened", "lost", lost_at, None, None, None, None, None, None,
                    None, None, None, None, None, None, None, None, None))
                stage, lost_at, lost_reason, closed_at = lost_at, None, None, None
            else:  # a stage move: forward, skip or back
                target = step
                reason = None
                if stage == "prospecting" and target == "meeting" and qualified_at is None:
                    reason = rng.choice(PREQUAL_REASONS)
                    prequal = reason
                text = rng.choice(NOTES) if rng.random() < 0.1 else None
                ev((deal_id, at, "stage", stage, target, None, None, None, None, None, None,
                    None, None, reason, text, None, None, None, None, None))
                if target == "won":
                    closed_at = at
                if qualified_at is None and target in QUALIFIED_STAGES:
                    qualified_at = at
                stage = target
            last = at

        row_values = {
            "name": name, "company": company, "contact": contact, "email": email,
            "owner": owner, "source": source, "ref": ref,
        }
        deal_row = (
            deal_id, ref, name, company, contact, email, phone, owner, source, stage,
            lost_at, lost_reason, value, currency, probability, close, qualified_at, prequal,
            *(None if flags[c] is None else int(flags[c]) for c in CRITERIA),
            next_action, next_due, created, last, closed_at, search_text(row_values),
        )
        csv_row = (
            ref or "", name, company or "", contact or "", email or "", phone or "",
            owner or "", source or "", stage, lost_at or "", lost_reason or "",
            "" if value is None else format_money(value, currency), currency,
            "" if probability is None else probability, close or "", created,
            closed_at or "", prequal or "",
        )
        return deal_row, events, csv_row

    def _open_step(self, stage: str, flags: dict, close: str | None, t: int) -> str:
        """The next thing that happens to an open deal."""
        rng = self.rng
        r = rng.random()
        if r < 0.18:
            return "note"
        if r < 0.195:
            return "probability"
        if r < 0.205:
            return "owner"
        if close is not None and self.clock.day(t) > close and rng.random() < 0.5:
            return "close_date"  # the expected close date slipped
        r = rng.random()
        if stage == "prospecting":
            return ("qualification" if r < 0.50 else "meeting" if r < 0.60
                    else "lost" if r < 0.88 else "stale")
        if stage == "qualification":
            if any(v is False for v in flags.values()):
                return "lost" if r < 0.75 else "checklist"
            if all(v is True for v in flags.values()):
                return "meeting" if r < 0.9 else "stale"
            return "checklist" if r < 0.92 else "lost" if r < 0.97 else "stale"
        if stage == "meeting":
            return ("proposal" if r < 0.55 else "lost" if r < 0.80 else "value" if r < 0.90
                    else "stale")
        if stage == "proposal":
            return ("negotiation" if r < 0.36 else "won" if r < 0.56 else "meeting" if r < 0.63
                    else "lost" if r < 0.83 else "value" if r < 0.91
                    else "close_date" if r < 0.96 else "stale")
        # negotiation
        return ("won" if r < 0.50 else "lost" if r < 0.72 else "proposal" if r < 0.78
                else "value" if r < 0.87 else "close_date" if r < 0.95 else "stale")

    def creation_times(self) -> list[int]:
        """Creation moments, sorted, with the business growing over the years."""
        span = self.end - self.start - DAY
        rng = self.rng
        times = [self.start + int(span * (rng.random() ** 0.8)) for _ in range(self.n)]
        times.sort()
        return times


# ------------------------------------------------------------------ writing


def _create(path: Path) -> None:
    from pipectl.store.db import connect

    conn = connect(path)
    conn.close()


def write(path: Path | None, csv_path: Path | None, n: int, seed: int, end: str,
          chunk: int = 20_000) -> dict[str, int]:
    gen = Generator(n, seed, end)
    times = gen.creation_times()
    stats = {"deals": 0, "events": 0}
    conn = None
    index_sql: list[str] = []
    if path is not None:
        _create(path)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB while loading
        conn.execute("BEGIN")
        index_sql = [r[0] for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('deals', 'events')")]
        for name, in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('deals', 'events')"
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
        cols = ", ".join(EVENT_COLS)
        conn.execute(f"CREATE TEMP TABLE gen_events (seq INTEGER PRIMARY KEY, {cols})")
        conn.execute(f"CREATE TEMP TABLE gen_deals ({', '.join(DEAL_COLS)})")
        deal_sql = (f"INSERT INTO gen_deals ({', '.join(DEAL_COLS)}) "
                    f"VALUES ({', '.join('?' * len(DEAL_COLS))})")
        event_sql = (f"INSERT INTO gen_events ({cols}) "
                     f"VALUES ({', '.join('?' * len(EVENT_COLS))})")
    fh = writer = None
    if csv_path is not None:
        fh = csv_path.open("w", newline="", encoding="utf-8")
        writer = csv.writer(fh)
        writer.writerow(CSV_COLS)
    try:
        deal_rows, event_rows, csv_rows = [], [], []
        for i, t0 in enumerate(times, start=1):
            d, evs, c = gen.deal(i, t0)
            deal_rows.append(d)
            event_rows.extend(evs)
            csv_rows.append(c)
            if len(deal_rows) >= chunk or i == n:
                if conn is not None:
                    conn.executemany(deal_sql, deal_rows)
                    conn.executemany(event_sql, event_rows)
                if writer is not None:
                    writer.writerows(csv_rows)
                stats["deals"] += len(deal_rows)
                stats["events"] += len(event_rows)
                deal_rows, event_rows, csv_rows = [], [], []
        if conn is not None:
            # Into schema 4: every deal in the default pipeline (id 1), the four checklist
            # columns as one JSON object, as the migration from schema 3 writes them.
            from pipectl.store.schema import _json_marks

            plain = [c for c in DEAL_COLS if c not in CRITERIA]
            conn.execute(
                f"INSERT INTO deals ({', '.join(plain)}, pipeline_id, checklist) "
                f"SELECT {', '.join(plain)}, 1, {_json_marks()} FROM gen_deals ORDER BY id")
            plain = [c for c in EVENT_COLS if c not in CRITERIA]
            conn.execute(
                f"INSERT INTO events ({', '.join(plain)}, pipeline_id, checks) "
                f"SELECT {', '.join(plain)}, CASE WHEN to_stage IS NOT NULL THEN 1 END, "
                f"{_json_marks()} FROM gen_events ORDER BY at, seq")
            conn.execute("DROP TABLE gen_events")
            conn.execute("DROP TABLE gen_deals")
            for sql in index_sql:
                conn.execute(sql)
            from pipectl.store.deals import recompute_search

            recompute_search(conn)  # the notes' words too, as pipectl's writes keep them
            from pipectl.store.readmodel import settle

            settle(conn)  # the read models, as every pipectl write leaves them
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode = WAL")
    except BaseException:
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        if conn is not None:
            conn.close()
        if fh is not None:
            fh.close()
    return stats


# ------------------------------------------------------------------ verification


def verify(path: Path, sample: int, seed: int) -> int:
    """Replay ``sample`` deals' events through pipectl's own store; compare the deals rows.

    Returns the number of mismatching deals (0 when the generator agrees with pipectl).
    """
    import tempfile

    from pipectl.domain.checklist import decode
    from pipectl.models import DealEdit, NewDeal
    from pipectl.services import deals as store
    from pipectl.store.db import connect
    from pipectl.values import from_iso

    src = connect(path)
    total = src.execute("SELECT max(id) FROM deals").fetchone()[0] or 0
    rng = random.Random(seed)
    ids = sorted(rng.sample(range(1, total + 1), min(sample, total)))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        dst = connect(Path(tmp) / "replay.db")
        for deal_id in ids:
            row = dict(src.execute("SELECT * FROM deals WHERE id = ?", (deal_id,)).fetchone())
            evs = [dict(e) for e in src.execute(
                "SELECT * FROM events WHERE deal_id = ? ORDER BY at, id", (deal_id,))]
            first = evs[0]
            owner = row["owner"]
            for e in evs:  # the owner at creation: undo later reassignments
                if e["kind"] == "edit" and e["field"] == "owner":
                    owner = e["old"]
                    break
            new = NewDeal(
                name=row["name"], stage=first["to_stage"], currency=first["currency"],
                value_minor=first["value_minor"], company=row["company"],
                contact=row["contact"], email=row["email"], phone=row["phone"], owner=owner,
                source=row["source"],
                close_date=date.fromisoformat(first["close_date"]) if first["close_date"]
                else None,
                probability=first["probability"], prequalified=first["reason"], ref=row["ref"],
            )
            new_id = store.add(dst, new, from_iso(first["at"]))[0]
            for e in evs[1:]:
                at = from_iso(e["at"])
                kind = e["kind"]
                if kind == "stage":
                    store.advance(dst, new_id, e["to_stage"], e["reason"], e["text"], at)
                elif kind == "lost":
                    store.lose(dst, new_id, e["reason"], at)
                elif kind == "reopened":
                    store.reopen(dst, new_id, at)
                elif kind == "checklist":
                    store.qualify(dst, new_id, decode(e["checks"]), e["text"], at)
                elif kind == "note":
                    store.note(dst, new_id, e["text"], e["next_action"], e["due"], at)
                elif kind == "value":
                    store.edit(dst, new_id, DealEdit(value_minor=e["value_minor"],
                                                     currency=e["currency"]), at)
                elif kind == "close_date":
                    store.edit(dst, new_id, DealEdit(
                        close_date=date.fromisoformat(e["close_date"])), at)
                elif kind == "probability":
                    p = e["probability"]
                    store.edit(dst, new_id, DealEdit(probability=p, clear_probability=p is None),
                               at)
                elif kind == "edit":
                    store.edit(dst, new_id, DealEdit(texts={e["field"]: e["new"]}), at)
                else:
                    raise AssertionError(f"unexpected event kind {kind}")
            got = dict(dst.execute("SELECT * FROM deals WHERE id = ?", (new_id,)).fetchone())
            got_events = [
                {k: v for k, v in dict(e).items() if k not in ("id", "deal_id")}
                for e in dst.execute(
                    "SELECT * FROM events WHERE deal_id = ? ORDER BY at, id", (new_id,))]
            want_events = [{k: v for k, v in e.items() if k not in ("id", "deal_id")}
                           for e in evs]
            diffs = {k: (row[k], got[k]) for k in row if k != "id" and row[k] != got[k]}
            if diffs or got_events != want_events:
                bad += 1
                if bad <= 5:
                    print(f"deal {deal_id}: deals row differs {diffs}", file=sys.stderr)
                    if got_events != want_events:
                        for w, g in zip(want_events, got_events, strict=False):
                            if w != g:
                                print(f"  event differs: want {w}\n               got  {g}",
                                      file=sys.stderr)
                                break
        dst.close()
    src.close()
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", type=Path, help="database file to create (must not exist)")
    p.add_argument("--deals", type=int, default=100_000, help="number of deals (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--end", default=DEFAULT_END, help=f"last day of history ({DEFAULT_END})")
    p.add_argument("--csv", type=Path, help="also write the deals as an import CSV here")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="replay N random deals through pipectl's store and compare")
    args = p.parse_args(argv)
    if args.out is None and args.csv is None:
        p.error("give a database file, --csv, or both")
    for target in (args.out, args.csv):
        if target is not None and target.exists():
            p.error(f"{target} exists; remove it first")
    started = time.perf_counter()
    stats = write(args.out, args.csv, args.deals, args.seed, args.end)
    took = time.perf_counter() - started
    print(f"{stats['deals']} deals, {stats['events']} events "
          f"({stats['events'] / max(stats['deals'], 1):.2f} per deal) in {took:.1f} s")
    if args.verify and args.out is not None:
        bad = verify(args.out, args.verify, args.seed)
        print(f"verify: {args.verify} deals replayed through pipectl, {bad} differ")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
