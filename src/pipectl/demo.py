"""The demo pipeline: a few dozen deals with months of history, built through the store API.

Deterministic for a given seed and anchor moment. Every move goes through the same rules as a
user's commands, so the demo never shows a history the rules would refuse.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.errors import DatabaseError
from pipectl.models import NewDeal
from pipectl.paths import expand
from pipectl.services import deals
from pipectl.store import db
from pipectl.store import deals as store

PEOPLE = (
    ("Nguyễn Thị Mai", "Công ty Sao Mai"), ("Trần Văn Hùng", "Hùng Phát Logistics"),
    ("Phạm Minh Châu", "Châu Á Foods"), ("Lê Quốc Bảo", "Bảo Tín Software"),
    ("Łukasz Wróblewski", "Wróblewski i Syn"), ("Zofia Kościuszko", "Kraków Żagle"),
    ("Grzegorz Brzęczyszczykiewicz", "Łódź Metal"), ("Małgorzata Dąbrowska", "Gdańsk Port Tech"),
    ("Jürgen Müller", "Müller Maschinenbau"), ("Hélène Dubois", "Dubois & Fils"),
    ("Iñaki Núñez", "Núñez Energía"), ("Çağlar Öztürk", "Öztürk Tekstil"),
    ("Antonín Dvořák", "Dvořák Audio"), ("Siobhán O'Brien", "Cliffside Hotels"),
    ("Ana Lúcia Gonçalves", "Gonçalves Café"), ("Priya Raman", "Raman Analytics"),
    ("Sam Carter", "Carter Dental"), ("Mei Chen", "Lotus Interiors"),
    ("Olivia Brown", "Brown & Partners"), ("Kenji Watanabe", "Watanabe Robotics"),
)
PRODUCTS = ("CRM rollout", "Annual licence", "Support plan", "Pilot", "Expansion", "Renewal")
OWNERS = ("Anna Kowalska", "Minh Trần", "Sam Carter")
SOURCES = ("referral", "website", "LinkedIn", "conference", "cold email")
LOSS_REASONS = (
    "chose a competitor on price", "no budget this year", "went silent",
    "timing: revisit next quarter", "built it in-house",
)
PREQUAL_REASONS = ("referred by an existing customer", "met at a conference; budget confirmed")


def _is_demo(path: Path) -> bool:
    """True when path is absent, or a pipectl database holding only demo deals."""
    if not path.exists():
        return True
    try:
        conn = db.connect(path, migrate=False)
    except DatabaseError:
        return False
    try:
        count = store.count_outside_ref_prefix(conn, "demo-")
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return count == 0


def anchor(now: datetime) -> datetime:
    """The moment the demo's history ends: the start of ``now``'s UTC day. Every event lies a
    whole number of days and some hours before it, so the figures that depend on durations
    (counts, rates, cycles, velocity, stale deals, what is overdue) are the same whenever in
    the day, and on whichever day, the demo is made; only figures of calendar periods (this
    month, this quarter) move with the date."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def build(path: Path, now: datetime, seed: int = 7, count: int = 40) -> int:
    """(Re)create the demo database at ``path``, its history ending at ``anchor(now)``.
    Returns the number of deals."""
    path = expand(path)
    now = anchor(now)
    if not _is_demo(path):
        raise DatabaseError(
            f"{path} exists and is not a pipectl demo database; it was left untouched",
            hint="choose another --path",
        )
    tmp = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    conn = db.connect(tmp)
    try:
        count = _populate(conn, now, random.Random(seed), count)
        store.checkpoint(conn)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return count


# The demo's second pipeline (the example of docs/pipelines.md): a services agency's retainers.
AGENCY_TOML = """\
name = "Agency retainers"
checklist = ["budget", "authority", "need"]
stages = [
  { key = "lead", label = "New lead", probability = 5, rot_days = 7, action = "Call within a day" },
  { key = "discovery", label = "Discovery call", probability = 20, gate = "checklist" },
  { key = "pitch", label = "Pitch", probability = 50, skippable = true },
  { key = "signed", label = "Signed", kind = "won" },
  { key = "live", label = "Live", kind = "after_won" },
]
"""
AGENCY_PRODUCTS = ("Monthly SEO retainer", "Content retainer", "Paid social retainer")


def _populate(conn: sqlite3.Connection, now: datetime, rng: random.Random, count: int) -> int:
    """``count`` deals in the default pipeline, a quarter as many in a second one. Returns
    the number of deals."""
    from pipectl.services import pipelines as pipeline_service

    for i in range(count):
        person, company = PEOPLE[i % len(PEOPLE)]
        product = PRODUCTS[rng.randrange(len(PRODUCTS))]
        currency = "EUR" if rng.random() < 0.4 else "USD"
        start = now - timedelta(days=rng.randint(20, 200), hours=rng.randint(0, 9))
        prequal = PREQUAL_REASONS[i % 2] if rng.random() < 0.15 else None
        value = rng.choice((4_500, 8_000, 12_000, 18_500, 25_000, 40_000, 75_000)) * 100
        new = NewDeal(
            name=f"{company}: {product}",
            contact=person,
            company=company,
            email=None,
            owner=OWNERS[i % len(OWNERS)],
            source=SOURCES[rng.randrange(len(SOURCES))],
            currency=currency,
            value_minor=value,
            close_date=(start + timedelta(days=rng.randint(45, 150))).date(),
            stage="meeting" if prequal and rng.random() < 0.5 else None,
            prequalified=prequal,
            ref=f"demo-{i + 1}",
            probability=rng.choice((None, None, None, 25, 70)),
        )
        _deal(conn, new, start, now, rng)
    first = now - timedelta(days=210)
    pipeline_service.apply(conn, AGENCY_TOML, at=first)
    extra = max(1, count // 4)
    for i in range(extra):
        person, company = PEOPLE[(i * 7 + 3) % len(PEOPLE)]
        start = now - timedelta(days=rng.randint(10, 180), hours=rng.randint(0, 9))
        new = NewDeal(
            name=f"{company}: {AGENCY_PRODUCTS[i % len(AGENCY_PRODUCTS)]}",
            contact=person, company=company, owner=OWNERS[(i + 1) % len(OWNERS)],
            source=SOURCES[rng.randrange(len(SOURCES))], currency="EUR",
            value_minor=rng.choice((1_500, 2_500, 4_000, 6_000)) * 100,
            close_date=(start + timedelta(days=rng.randint(20, 90))).date(),
            pipeline="Agency retainers", ref=f"demo-a{i + 1}",
        )
        _deal(conn, new, start, now, rng)
    return count + extra


def _deal(conn: sqlite3.Connection, new: NewDeal, start: datetime, now: datetime,
          rng: random.Random) -> None:
    t = start
    deal_id, pipeline, _ = deals.add(conn, new, t)
    fate = rng.random()
    last = len(pipeline.line)
    target = rng.choice((1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7)) * last // 7

    def step(days_lo: int = 3, days_hi: int = 16) -> datetime | None:
        nonlocal t
        t = t + timedelta(days=rng.randint(days_lo, days_hi), hours=rng.randint(0, 6))
        return t if t < now else None

    _walk(conn, deal_id, pipeline, rng, target, fate, step)


def _walk(conn, deal_id: int, pipeline: Pipeline, rng: random.Random, target: int, fate: float,
          step) -> None:
    """Move one deal along its pipeline towards ``target`` (a stage order), with incidents."""
    moved_back = False
    won = pipeline.order(pipeline.won_key)
    while True:
        row = store.get(conn, deal_id)
        stage = row["stage"]
        order = pipeline.order(stage) if stage != LOST else 0
        if stage == LOST or order == len(pipeline.line) or (order == won and target <= won):
            return
        when = step()
        if when is None:
            return
        if order == won:
            deals.advance(conn, deal_id, at=when)  # onboarding starts
            return
        if rng.random() < 0.25:
            deals.note(conn, deal_id, rng.choice(
                ("Call went well", "Sent follow-up email", "They asked for references",
                 "Intro call; pain is manual reporting")),
                next_action=rng.choice(("send case study", "book demo", "chase decision")),
                # never before the note's day (a past --due is refused); one draw either way,
                # so that the rest of the demo stays what it was
                due=(when + timedelta(days=max(0, rng.randint(-5, 10)))).date().isoformat(),
                at=when)
            continue
        if fate < 0.3 and order >= max(1, target - 2):
            deals.lose(conn, deal_id, LOSS_REASONS[rng.randrange(len(LOSS_REASONS))], at=when)
            if rng.random() < 0.3 and (later := step(5, 20)):
                deals.reopen(conn, deal_id, at=later)
                fate = 1.0
            continue
        if order >= target:
            return
        here = pipeline.stage(stage)
        if here.gate:
            half = len(pipeline.checklist) // 2
            deals.qualify(conn, deal_id, dict.fromkeys(pipeline.checklist[:half], True), at=when)
            when = step(1, 5)
            if when is None:
                return
            deals.qualify(conn, deal_id, dict.fromkeys(pipeline.checklist[half:], True),
                          note="decision maker confirmed", at=when)
            when = step(1, 4)
            if when is None:
                return
        # the stage two before won, when the one between may be skipped ("proposal")
        before_skip = order == won - 2 and pipeline.line[won - 2].skippable
        if before_skip and not moved_back and rng.random() < 0.15 and order > 1 \
                and not pipeline.line[order - 2].gate:
            deals.advance(conn, deal_id, pipeline.line[order - 2].key,
                          note="they reopened the price", at=when)
            moved_back = True
            continue
        to = None
        if before_skip and target >= won and rng.random() < 0.4:
            to = pipeline.won_key  # small deal: contract just sent
        if before_skip and rng.random() < 0.3:
            deals.edit(conn, deal_id, _value_change(row, rng), at=when)
            when = step(1, 3)
            if when is None:
                return
        deals.advance(conn, deal_id, to, at=when)


def _value_change(row: dict, rng: random.Random):
    from pipectl.models import DealEdit

    factor = rng.choice((80, 90, 110, 120))
    close = date.fromisoformat(row["close_date"]) + timedelta(days=rng.choice((14, 30)))
    return DealEdit(value_minor=row["value_minor"] * factor // 100, close_date=close)
