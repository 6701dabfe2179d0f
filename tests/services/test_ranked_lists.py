"""`next` and `stale` list the first N deals of the whole ranking: the ranking cut at any limit
is the start of the uncut one, with the same total (``reports.actions`` ranks only the tiers
and dates the limit can reach). Deals in every tier, with ties of dates, values and
currencies, so that cuts fall inside tiers, on ties and on boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipectl.models import NewDeal
from pipectl.reports import actions
from pipectl.services import deals as svc
from pipectl.store.db import connect

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
AS_OF = "2026-12-01T09:00:00Z"


def _pipeline(tmp_path: Path):
    conn = connect(tmp_path / "ranked.db")
    today = date(2026, 12, 1)
    for i in range(60):
        currency = ("EUR", "USD", "VND")[i % 3]
        value = None if i % 7 == 0 else (1000 * (i % 4) + 100) * (1000 if currency == "VND" else 1)
        close = [None, today - timedelta(days=3), today + timedelta(days=5),
                 today + timedelta(days=60), today][i % 5]
        created = T0 + timedelta(days=i % 9 * 30)  # some idle for long, with ties
        deal, _, _ = svc.add(conn, NewDeal(name=f"Deal {i}", currency=currency,
                                           value_minor=value, close_date=close), created)
        if i % 4 == 1:  # a logged next step: overdue, due today or later (ties on due dates)
            due = [today - timedelta(days=2), today, today + timedelta(days=10)][i % 3]
            svc.note(conn, deal, "call", next_action="call back", due=due.isoformat(),
                     at=datetime(2026, 11, 20 + i % 3, tzinfo=UTC))
        if i % 6 == 2:
            svc.lose(conn, deal, "price", at=datetime(2026, 11, 1, tzinfo=UTC))
    return conn


def test_next_and_stale_cut_at_any_limit_are_the_start_of_the_whole_list(tmp_path) -> None:
    conn = _pipeline(tmp_path)
    every, total = actions.next_steps(conn, AS_OF)
    assert total == len(every) > 40
    assert len({s.why for s in every}) >= 4  # the cuts cross several tiers
    for limit in range(1, total + 2):
        cut, n = actions.next_steps(conn, AS_OF, limit=limit)
        assert n == total and cut == every[:limit], limit
    stale, total = actions.stale(conn, AS_OF)
    assert total == len(stale) > 5
    for limit in range(1, total + 2):
        cut, n = actions.stale(conn, AS_OF, limit=limit)
        assert n == total and cut == stale[:limit], limit
    conn.close()
