"""The store on temp files: projections kept in step with events, append-only history,
transactions that leave nothing behind when a rule refuses."""

from __future__ import annotations

import unicodedata

import pytest

from pipectl.errors import MoveRefused, NotFound
from pipectl.models import DealEdit, NewDeal
from pipectl.services import deals as svc
from pipectl.store import deals as store
from pipectl.store import schema
from tests.conftest import at
from tests.engines import refusals
from tests.unit.test_rules import S


class deals:
    get = staticmethod(store.get)
    events = staticmethod(store.events)
    list_deals = staticmethod(store.list_deals)
    counts_by_status = staticmethod(store.counts_by_status)

    @staticmethod
    def add(conn, new, when):
        return svc.add(conn, new, when)[0]

    @staticmethod
    def advance(conn, deal_id, when, to=None, prequalified=None, note=None):
        return svc.advance(conn, deal_id, to, prequalified, note, when).move

    @staticmethod
    def lose(conn, deal_id, when, reason):
        return svc.lose(conn, deal_id, reason, when).move

    @staticmethod
    def reopen(conn, deal_id, when):
        return svc.reopen(conn, deal_id, when).move

    @staticmethod
    def qualify(conn, deal_id, changes, when, note=None):
        done = svc.qualify(conn, deal_id, changes, note, when)
        return done.checklist, done.changed

    @staticmethod
    def note(conn, deal_id, text, when, next_action=None, due=None):
        return svc.note(conn, deal_id, text, next_action, due, when)

    @staticmethod
    def edit(conn, deal_id, change, when):
        return svc.edit(conn, deal_id, change, when)

    @staticmethod
    def remove(conn, deal_id):
        return svc.remove(conn, deal_id)


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.sqlite_only("the file's PRAGMAs (WAL, application_id, user_version) and "
                         "sqlite_master")
def test_pragmas_and_identity(conn) -> None:
    from pipectl.store.db import APPLICATION_ID

    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert len(applied) == schema.VERSION
    strict = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'deals'").fetchone()[0]
    assert strict.rstrip().endswith("STRICT")


def test_add_writes_deal_and_created_event(conn) -> None:
    new = NewDeal(name="Acme", value_minor=1200050, currency="EUR", note="first call",
                  company="Acme GmbH", owner="Anna")
    deal_id = deals.add(conn, new, at("2026-03-01T09:00"))
    row = deals.get(conn, deal_id)
    assert (row["stage"], row["value_minor"], row["currency"]) == ("prospecting", 1200050, "EUR")
    assert row["created_at"] == row["updated_at"] == "2026-03-01T09:00:00Z"
    assert row["qualified_at"] is None and row["closed_at"] is None
    assert row["search"] == "acme acme gmbh anna\nfirst call"  # the note too
    evs = deals.events(conn, deal_id)
    assert [e["kind"] for e in evs] == ["created", "note"]
    assert evs[0]["to_stage"] == "prospecting" and evs[0]["value_minor"] == 1200050
    assert evs[1]["text"] == "first call"


def test_a_full_life(conn) -> None:
    d = deals.add(conn, NewDeal(name="Life"), at("2026-03-01"))
    deals.advance(conn, d, at("2026-03-02"))
    deals.qualify(conn, d, {"location": True, "budget": True, "authority": True, "need": True},
                  at("2026-03-03"))
    deals.advance(conn, d, at("2026-03-04"))
    assert deals.get(conn, d)["qualified_at"] == "2026-03-04T00:00:00Z"
    deals.advance(conn, d, at("2026-03-05"))  # proposal
    deals.advance(conn, d, at("2026-03-06"), S.MEETING)  # back
    deals.advance(conn, d, at("2026-03-07"))  # proposal again
    deals.lose(conn, d, at("2026-03-08"), "price")
    row = deals.get(conn, d)
    assert (row["stage"], row["lost_at_stage"], row["lost_reason"]) == ("lost", "proposal", "price")
    assert row["closed_at"] == "2026-03-08T00:00:00Z"
    deals.reopen(conn, d, at("2026-03-09"))
    row = deals.get(conn, d)
    assert (row["stage"], row["lost_at_stage"], row["closed_at"]) == ("proposal", None, None)
    deals.advance(conn, d, at("2026-03-10"), S.WON)
    deals.advance(conn, d, at("2026-03-11"))
    row = deals.get(conn, d)
    assert row["stage"] == "post_purchase" and row["closed_at"] == "2026-03-10T00:00:00Z"
    moves = [(e["kind"], e.get("from_stage"), e["to_stage"])
             for e in deals.events(conn, d) if "to_stage" in e]
    assert moves == [
        ("created", None, "prospecting"), ("stage", "prospecting", "qualification"),
        ("stage", "qualification", "meeting"), ("stage", "meeting", "proposal"),
        ("stage", "proposal", "meeting"), ("stage", "meeting", "proposal"),
        ("lost", "proposal", "lost"), ("reopened", "lost", "proposal"),
        ("stage", "proposal", "won"), ("stage", "won", "post_purchase"),
    ]


def test_refused_move_writes_nothing(conn) -> None:
    d = deals.add(conn, NewDeal(name="Gate"), at("2026-03-01"))
    deals.advance(conn, d, at("2026-03-02"))
    before = (count(conn, "events"), dict(deals.get(conn, d)))
    with pytest.raises(MoveRefused, match="missing location"):
        deals.advance(conn, d, at("2026-03-03"))
    with pytest.raises(MoveRefused, match="before the deal was created"):
        deals.note(conn, d, "too early", at("2026-02-01"))
    with pytest.raises(MoveRefused, match="before its latest event"):  # (issue 16)
        deals.note(conn, d, "sets a step", at("2026-03-01T12:00"), next_action="call")
    assert (count(conn, "events"), dict(deals.get(conn, d))) == before
    assert not conn.in_transaction


def test_prequalified_creation_and_skip(conn) -> None:
    d = deals.add(conn, NewDeal(name="Friend", stage=S.MEETING, prequalified="old client"),
                  at("2026-03-01"))
    row = deals.get(conn, d)
    assert row["qualified_at"] == "2026-03-01T00:00:00Z"
    assert row["prequalified_reason"] == "old client"
    e = deals.add(conn, NewDeal(name="Skipper"), at("2026-03-01"))
    move = deals.advance(conn, e, at("2026-03-02"), S.MEETING, prequalified="LinkedIn check")
    assert move.skipped == (S.QUALIFICATION,)
    ev = deals.events(conn, e)[-1]
    assert (ev["from_stage"], ev["to_stage"], ev["reason"]) == (
        "prospecting", "meeting", "LinkedIn check")


def test_edit_records_value_close_and_probability_events(conn) -> None:
    d = deals.add(conn, NewDeal(name="Ed", value_minor=100, currency="USD"), at("2026-03-01"))
    from datetime import date

    changed = deals.edit(conn, d, DealEdit(
        texts={"name": "Ed 2", "owner": "Łukasz"}, value_minor=250, close_date=date(2026, 5, 1),
        probability=35), at("2026-03-02"))
    assert sorted(changed) == ["close_date", "name", "owner", "probability", "value_minor"]
    kinds = [(e["kind"], e.get("field")) for e in deals.events(conn, d)][1:]
    assert kinds == [("edit", "name"), ("edit", "owner"), ("value", None),
                     ("close_date", None), ("probability", None)]
    row = deals.get(conn, d)
    assert (row["value_minor"], row["close_date"], row["probability"]) == (250, "2026-05-01", 35)
    assert "lukasz" in row["search"]  # folded: no accents
    # the same values again change nothing and write nothing
    n = count(conn, "events")
    assert deals.edit(conn, d, DealEdit(value_minor=250), at("2026-03-03")) == []
    assert count(conn, "events") == n
    deals.edit(conn, d, DealEdit(clear_close=True, clear_probability=True), at("2026-03-04"))
    row = deals.get(conn, d)
    assert row["close_date"] is None and row["probability"] is None


def test_events_are_append_only(conn) -> None:
    d = deals.add(conn, NewDeal(name="Hist"), at("2026-03-01"))
    with pytest.raises(refusals(conn), match="append-only"):
        conn.execute("UPDATE events SET at = '2020-01-01T00:00:00Z'")
    with pytest.raises(refusals(conn), match="append-only"):
        conn.execute("DELETE FROM events")
    assert count(conn, "events") == 1
    deals.remove(conn, d)
    assert count(conn, "events") == 0 and count(conn, "deals") == 0
    with pytest.raises(NotFound):
        deals.get(conn, d)


def test_check_constraints_reject_bad_rows(conn) -> None:
    bad = [
        "INSERT INTO deals (name, stage, currency, created_at, updated_at) "
        "VALUES ('x', 'nowhere', 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        "INSERT INTO deals (name, stage, currency, created_at, updated_at, value_minor) "
        "VALUES ('x', 'meeting', 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', -1)",
        "INSERT INTO deals (name, stage, currency, created_at, updated_at) "
        "VALUES ('  ', 'meeting', 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        "INSERT INTO deals (name, stage, currency, created_at, updated_at) "
        "VALUES ('x', 'lost', 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        "INSERT INTO deals (name, stage, currency, created_at, updated_at) "
        "VALUES ('x', 'meeting', 'USD', '2026-01-01 00:00', '2026-01-01T00:00:00Z')",
        "INSERT INTO deals (name, stage, currency, created_at, updated_at, value_minor) "
        "VALUES ('x', 'meeting', 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 1.5)",
        "INSERT INTO events (deal_id, at, kind) VALUES (999, '2026-01-01T00:00:00Z', 'note')",
    ]
    for sql in bad:
        with pytest.raises(refusals(conn)):
            conn.execute(sql)


def test_list_filters_and_sorts(conn) -> None:
    a = deals.add(conn, NewDeal(name="Nguyễn Văn An", owner="Minh", value_minor=500),
                  at("2026-03-01"))
    b = deals.add(conn, NewDeal(name="Zofia", owner="Anna", value_minor=900,
                                stage=S.PROPOSAL, prequalified="ref"), at("2026-03-02"))
    c = deals.add(conn, NewDeal(name="Lost one", owner="Anna"), at("2026-03-03"))
    deals.lose(conn, c, at("2026-03-04"), "budget")
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(deals.list_deals(conn)) == [a, b]  # pipeline order
    assert ids(deals.list_deals(conn, sort="value")) == [b, a]
    assert ids(deals.list_deals(conn, status="lost")) == [c]
    assert ids(deals.list_deals(conn, status="all", sort="age")) == [a, b, c]
    assert ids(deals.list_deals(conn, owner="Anna", status="all", sort="age")) == [b, c]
    assert ids(deals.list_deals(conn, stage=S.PROPOSAL)) == [b]
    for typed in ("nguyễn", "NGUYỄN", unicodedata.normalize("NFD", "Nguyễn")):
        assert ids(deals.list_deals(conn, search=typed)) == [a]
    assert ids(deals.list_deals(conn, status="all", sort="updated", limit=1)) == [c]
    assert deals.counts_by_status(conn) == {"open": 2, "won": 0, "lost": 1}
