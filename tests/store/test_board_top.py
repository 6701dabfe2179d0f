"""Property: the board's largest deals of a stage, read currency by currency along the index
``deals_board``, are exactly those the one sorted query gives (``value_order(interleave=True),
id``): the largest of each currency in turn, deals without a value last, ties by id."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipectl.store import deals as store
from pipectl.store.db import transaction
from pipectl.store.pipelines import default
from tests import engines

DEAL = st.tuples(st.sampled_from(["EUR", "USD", "PLN"]),
                 st.one_of(st.none(), st.sampled_from([0, 5, 100, 100, 2500, 10**12])),
                 st.sampled_from([None, "Anna", "Ben"]),
                 st.sampled_from(["prospecting", "meeting", "proposal"]))


def test_the_largest_in_turn_are_the_sorted_querys(engine: str) -> None:
    # on PostgreSQL a fifth of the examples (engines.settings_for): each makes its database anew
    @settings(**engines.settings_for(engine, 40), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(deals=st.lists(DEAL, max_size=40), n=st.integers(1, 12),
           owner=st.sampled_from([None, "Anna"]))
    # a deal without a value and one of 0: every run tries it (NULLs last on both engines)
    @example(deals=[("EUR", None, None, "prospecting"), ("EUR", 0, None, "prospecting")], n=1,
             owner=None)
    def run(deals: list, n: int, owner: str | None) -> None:
        _largest_in_turn(engine, deals, n, owner)

    run()


def _largest_in_turn(engine: str, deals: list, n: int, owner: str | None) -> None:
    with engines.scratch(engine, "b.db") as db:
        conn = engines.connect(db)
        try:
            with transaction(conn):
                for i, (cur, value, who, stage) in enumerate(deals):
                    conn.execute(
                        "INSERT INTO deals (name, pipeline_id, stage, currency, value_minor, "
                        "owner, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, "
                        "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                        (f"D{i}", stage, cur, value, who))
            p = default(conn)
            top, _ = store.board(conn, p, owner=owner, per_stage=n)
            mine = " AND owner = ?" if owner else ""
            for key in p.open_keys:
                want = [dict(r) for r in conn.execute(
                    f"SELECT * FROM deals WHERE pipeline_id = 1 AND stage = ?{mine} "
                    f"ORDER BY {store.value_order(None, interleave=True)}, id LIMIT {n}",
                    [key, *([owner] if owner else [])])]
                assert [d["id"] for d in top[key]] == [d["id"] for d in want], key
        finally:
            conn.close()


@pytest.mark.sqlite_only("SQLite's query plan (set_trace_callback, EXPLAIN QUERY PLAN)")
def test_the_boards_totals_read_the_index_alone(tmp_path) -> None:
    """Migration 0008: the totals per stage and currency of the open deals need no row of
    ``deals`` (at 1M deals, 271k open, reading each row cost 0.8 s)."""
    from pipectl.store import deals as deal_store
    from pipectl.store import pipelines
    from pipectl.store.db import connect

    conn = connect(tmp_path / "b.db")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    deal_store.board(conn, pipelines.default(conn))
    conn.set_trace_callback(None)
    totals = next(s for s in seen if "GROUP BY stage, currency" in s)
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + totals))
    assert "COVERING INDEX deals_board" in plan, plan
    conn.close()
