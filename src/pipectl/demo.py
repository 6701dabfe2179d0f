"""The demo pipeline: a few dozen deals with months of history, built through the store API.

Deterministic for a given seed and anchor moment. Every move goes through the same rules as a
user's commands, so the demo never shows a history the rules would refuse.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

from pipectl.errors import DatabaseError, MoveRefused
from pipectl.models import NewDeal
from pipectl.paths import expand
from pipectl.stages import Stage
from pipectl.store import db, deals

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
        count = deals.count_outside_ref_prefix(conn, "demo-")
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return count == 0


def build(path: Path, now: datetime, seed: int = 7, count: int = 40) -> int:
    """(Re)create the demo database at ``path``. Returns the number of deals."""
    path = expand(path)
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
        _populate(conn, now, random.Random(seed), count)
        deals.checkpoint(conn)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return count


def _populate(conn: sqlite3.Connection, now: datetime, rng: random.Random, count: int) -> None:
    for i in range(count):
        person, company = PEOPLE[i % len(PEOPLE)]
        product = PRODUCTS[rng.randrange(len(PRODUCTS))]
        currency = "EUR" if rng.random() < 0.4 else "USD"
        start = now - timedelta(days=rng.randint(20, 200), hours=rng.randint(0, 9))
        t = start
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
            stage=Stage.MEETING if prequal and rng.random() < 0.5 else Stage.PROSPECTING,
            prequalified=prequal,
            ref=f"demo-{i + 1}",
            probability=rng.choice((None, None, None, 25, 70)),
        )
        deal_id = deals.add(conn, new, t)
        fate = rng.random()
        target = rng.choice((1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7))

        def step(days_lo: int = 3, days_hi: int = 16) -> datetime | None:
            nonlocal t
            t = t + timedelta(days=rng.randint(days_lo, days_hi), hours=rng.randint(0, 6))
            return t if t < now else None

        _walk(conn, deal_id, rng, target, fate, step)


def _walk(conn, deal_id: int, rng: random.Random, target: int, fate: float, step) -> None:
    """Move one deal along the line towards ``target`` (a stage order), with incidents."""
    moved_back = False
    while True:
        row = deals.get(conn, deal_id)
        stage = Stage(row["stage"])
        if stage in (Stage.POST_PURCHASE, Stage.LOST) or (stage is Stage.WON and target < 7):
            return
        when = step()
        if when is None:
            return
        if stage is Stage.WON:
            deals.advance(conn, deal_id, when)  # onboarding starts
            return
        if rng.random() < 0.25:
            deals.note(conn, deal_id, rng.choice(
                ("Call went well", "Sent follow-up email", "They asked for references",
                 "Intro call; pain is manual reporting")), when,
                next_action=rng.choice(("send case study", "book demo", "chase decision")),
                due=(when + timedelta(days=rng.randint(-5, 10))).date().isoformat())
            continue
        order = {Stage.PROSPECTING: 1, Stage.QUALIFICATION: 2, Stage.MEETING: 3,
                 Stage.PROPOSAL: 4, Stage.NEGOTIATION: 5}[stage]
        if fate < 0.3 and order >= max(1, target - 2):
            deals.lose(conn, deal_id, when, LOSS_REASONS[rng.randrange(len(LOSS_REASONS))])
            if rng.random() < 0.3 and (later := step(5, 20)):
                deals.reopen(conn, deal_id, later)
                fate = 1.0
            continue
        if order >= target:
            return
        if stage is Stage.QUALIFICATION:
            deals.qualify(conn, deal_id, {"location": True, "budget": True}, when)
            when = step(1, 5)
            if when is None:
                return
            deals.qualify(conn, deal_id, {"authority": True, "need": True}, when,
                          note="decision maker confirmed")
            when = step(1, 4)
            if when is None:
                return
        if stage is Stage.PROPOSAL and not moved_back and rng.random() < 0.15:
            deals.advance(conn, deal_id, when, Stage.MEETING, note="they reopened the price")
            moved_back = True
            continue
        to = None
        if stage is Stage.PROPOSAL and target >= 6 and rng.random() < 0.4:
            to = Stage.WON  # small deal: contract just sent
        if stage is Stage.PROPOSAL and rng.random() < 0.3:
            deals.edit(conn, deal_id, _value_change(row, rng), when)
            when = step(1, 3)
            if when is None:
                return
        try:
            deals.advance(conn, deal_id, when, to)
        except MoveRefused:  # pragma: no cover - the walk only asks for allowed moves
            raise


def _value_change(row: dict, rng: random.Random):
    from pipectl.models import DealEdit

    factor = rng.choice((80, 90, 110, 120))
    close = date.fromisoformat(row["close_date"]) + timedelta(days=rng.choice((14, 30)))
    return DealEdit(value_minor=row["value_minor"] * factor // 100, close_date=close)
