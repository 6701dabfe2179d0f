"""domain.states: a deal's states over time and its stays, from its events alone (table-driven;
the property test tests/store/test_read_models.py compares the whole with the replay)."""

from __future__ import annotations

import pytest

from pipectl.domain.pipeline import DEFAULT
from pipectl.domain.states import EVENT_COLUMNS, ROW, STILL, facts_of, states

FACTS = facts_of({1: DEFAULT, 2: DEFAULT})


def ev(id_: int, day: int, kind: str, **cols) -> tuple:
    """An event as ``states`` reads it: day N of January 2026 at midnight."""
    row = dict.fromkeys(EVENT_COLUMNS)
    row.update(id=id_, at=f"2026-01-{day:02d}T00:00:00Z", kind=kind, **cols)
    if row["to_stage"] is not None and row["pipeline_id"] is None:
        row["pipeline_id"] = 1
    return tuple(row[c] for c in EVENT_COLUMNS)


def created(id_: int = 1, day: int = 1, stage: str = "prospecting", **cols) -> tuple:
    return ev(id_, day, "created", to_stage=stage, value_minor=1000, currency="EUR", **cols)


def col(row: tuple, name: str):
    return row[ROW.index(name)]


def test_a_new_deal_has_one_state_now_and_no_stay() -> None:
    rows, stays = states(7, [created()], FACTS)
    assert len(rows) == 1 and stays == []
    (r,) = rows
    assert (col(r, "deal_id"), col(r, "since_id"), col(r, "until_at")) == (7, 1, STILL)
    assert (col(r, "stage"), col(r, "value_minor"), col(r, "currency")) == (
        "prospecting", 1000, "EUR")
    assert (col(r, "reached"), col(r, "qualified_at"), col(r, "won_at")) == (1, None, None)
    assert col(r, "last_at") == "2026-01-01T00:00:00Z"


CASES = [
    # (events after created, what the state now says)
    ([ev(2, 3, "stage", from_stage="prospecting", to_stage="meeting")],
     {"stage": "meeting", "qualified_at": "2026-01-03T00:00:00Z", "reached": 3}),
    ([ev(2, 3, "stage", to_stage="meeting"), ev(3, 4, "stage", to_stage="qualification")],
     {"stage": "qualification", "reached": 3, "qualified_at": "2026-01-03T00:00:00Z"}),
    ([ev(2, 3, "stage", to_stage="won"), ev(3, 5, "stage", to_stage="post_purchase")],
     {"stage": "post_purchase", "won_at": "2026-01-03T00:00:00Z", "reached": 7}),
    ([ev(2, 3, "lost", from_stage="prospecting", to_stage="lost", reason="price")],
     {"stage": "lost", "lost_stage": "prospecting", "lost_reason": "price",
      "lost_at": "2026-01-03T00:00:00Z"}),
    ([ev(2, 3, "lost", from_stage="prospecting", to_stage="lost", reason="price"),
      ev(3, 4, "reopened", from_stage="lost", to_stage="prospecting")],
     {"stage": "prospecting", "lost_stage": None, "lost_reason": None, "lost_at": None}),
    # a lost deal moved into another pipeline stays lost, with its loss's reason and moment
    ([ev(2, 3, "lost", from_stage="meeting", to_stage="lost", reason="price"),
      ev(3, 4, "pipeline", pipeline_id=2, from_stage="lost", to_stage="meeting")],
     {"stage": "lost", "pipeline_id": 2, "lost_stage": "meeting", "lost_reason": "price",
      "lost_at": "2026-01-03T00:00:00Z", "qualified_at": None, "reached": 3}),
    # moved: its furthest stage is among its moves in its pipeline now
    ([ev(2, 3, "stage", to_stage="proposal"),
      ev(3, 4, "pipeline", pipeline_id=2, from_stage="proposal", to_stage="qualification")],
     {"stage": "qualification", "pipeline_id": 2, "reached": 2,
      "qualified_at": "2026-01-03T00:00:00Z"}),
    ([ev(2, 3, "value", value_minor=5, currency="USD"), ev(3, 4, "close_date",
                                                          close_date="2026-03-01"),
      ev(4, 5, "probability", probability=35)],
     {"value_minor": 5, "currency": "USD", "close_date": "2026-03-01", "probability": 35}),
    ([ev(2, 3, "value", value_minor=None, currency="EUR")], {"value_minor": None}),
    ([ev(2, 3, "note", text="hi", next_action="call", due="2026-01-09"),
      ev(3, 6, "note", text="later")],
     {"next_id": 2, "last_at": "2026-01-06T00:00:00Z", "since_id": 1}),
]


@pytest.mark.parametrize(("events", "now"), CASES)
def test_the_state_now(events: list[tuple], now: dict) -> None:
    rows, _ = states(1, [created(), *events], FACTS)
    last = rows[-1]
    assert col(last, "until_at") == STILL
    for name, value in now.items():
        assert col(last, name) == value, name


def test_each_state_lasts_until_the_next_and_one_replaced_at_once_is_left_out() -> None:
    rows, _ = states(1, [created(), ev(2, 3, "value", value_minor=2, currency="EUR"),
                         ev(3, 3, "close_date", close_date="2026-02-01"),
                         ev(4, 5, "stage", to_stage="qualification")], FACTS)
    spans = [(col(r, "since_id"), col(r, "since_at")[8:10], col(r, "until_at")[8:10])
             for r in rows]
    # the value's state was replaced by the close date's at the same moment: no moment sees it
    assert spans == [(1, "01", "03"), (3, "03", "05"), (4, "05", "31")]
    assert [col(r, "value_minor") for r in rows] == [1000, 2, 2]


def test_a_prequalified_deal_is_qualified_as_it_is_created() -> None:
    rows, _ = states(1, [created(reason="referral")], FACTS)
    assert col(rows[0], "qualified_at") == "2026-01-01T00:00:00Z"


def test_an_import_marks_what_it_could_not_tell() -> None:
    rows, _ = states(1, [created(field="unknown", new="created_at")], FACTS)
    assert col(rows[0], "unknown") == "created_at"


def test_stays_run_from_a_move_to_the_next() -> None:
    _, stays = states(3, [created(), ev(2, 3, "stage", to_stage="qualification"),
                          ev(3, 9, "note", text="x"),
                          ev(4, 10, "lost", from_stage="qualification", to_stage="lost")],
                      FACTS)
    assert stays == [
        (3, 1, 1, "prospecting", "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"),
        (3, 2, 1, "qualification", "2026-01-03T00:00:00Z", "2026-01-10T00:00:00Z"),
    ]


def test_nothing_before_a_first_move_makes_a_state() -> None:
    assert states(1, [ev(1, 1, "note", text="orphan")], FACTS) == ([], [])
