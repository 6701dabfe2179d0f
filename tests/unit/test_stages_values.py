"""Stage parsing, the checklist, money, dates and text: table-driven."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipectl import values
from pipectl.domain.checklist import Checklist, qualify_command
from pipectl.domain.next_step import next_step
from pipectl.domain.pipeline import DEFAULT, DEFAULT_CHECKLIST
from pipectl.errors import UsageError
from tests.unit.test_rules import S


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("meeting", S.MEETING), ("Demo or meeting", S.MEETING), ("demo", S.MEETING),
        ("MEET", S.MEETING), ("prosp", S.PROSPECTING), ("qual", S.QUALIFICATION),
        ("Lead qualification", S.QUALIFICATION), ("prop", S.PROPOSAL),
        ("neg", S.NEGOTIATION), ("closed-won", S.WON), ("Closed Won", S.WON),
        ("closed-lost", S.LOST), ("post_purchase", S.POST_PURCHASE),
        ("post-purchase", S.POST_PURCHASE), ("Opportunity won", S.WON), ("won", S.WON),
        ("  Proposal ", S.PROPOSAL),
    ],
)
def test_parse_stage(text, stage) -> None:
    assert DEFAULT.parse_stage(text) == stage


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("banana", "unknown stage"), ("p", "ambiguous"), ("closed", "ambiguous"),
])
def test_parse_stage_refuses(text, message) -> None:
    with pytest.raises(UsageError, match=message):
        DEFAULT.parse_stage(text)


def test_the_stage_table() -> None:
    assert DEFAULT.keys == (S.PROSPECTING, S.QUALIFICATION, S.MEETING, S.PROPOSAL,
                            S.NEGOTIATION, S.WON, S.POST_PURCHASE)
    assert DEFAULT.keys[:5] == DEFAULT.open_keys
    probs = {s.key: s.probability for s in DEFAULT.stages}
    assert probs == {S.PROSPECTING: 10, S.QUALIFICATION: 20, S.MEETING: 40, S.PROPOSAL: 60,
                     S.NEGOTIATION: 80, S.WON: 100, S.POST_PURCHASE: 100, S.LOST: 0}
    assert [s.status.value for s in DEFAULT.stages] == ["open"] * 5 + ["won", "won", "lost"]
    assert DEFAULT.gate is not None and DEFAULT.gate.key == S.QUALIFICATION
    assert [s.key for s in DEFAULT.line if s.skippable] == [S.NEGOTIATION]


def test_checklist() -> None:
    c = Checklist.of(DEFAULT_CHECKLIST)
    assert not c.passes() and c.missing() == ["location", "budget", "authority", "need"]
    c2 = c.apply({"location": True, "budget": False})
    assert c2.missing() == ["budget", "authority", "need"]
    assert c.diff(c2) == {"location": True, "budget": False}
    assert Checklist.of(DEFAULT_CHECKLIST, dict.fromkeys(DEFAULT_CHECKLIST, True)).passes()
    assert qualify_command(3, ["budget", "need"]) == "pipectl qualify 3 budget need"
    assert c2.to_json() == '{"location":true,"budget":false}'
    # marks of a criterion the pipeline no longer has are kept, and do not count
    other = Checklist.of(("need",), {"need": True, "colour": False})
    assert other.passes() and other.items() == {"need": True}
    with pytest.raises(ValueError, match="unknown"):
        c.apply({"colour": True})


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12000.50", "EUR", 1200050), ("12000", "USD", 1200000), ("1,234.50", "USD", 123450),
        ("0", "EUR", 0), (".5", "EUR", 50), ("100000.0", "USD", 10000000),
        ("25000000", "VND", 25000000), ("1.234", "KWD", 1234), ("1_000", "JPY", 1000),
        ("1,234,567", "JPY", 1234567), ("1 234.5", "EUR", 123450), ("999,000.00", "EUR", 99900000),
    ],
)
def test_parse_money(text, currency, minor) -> None:
    assert values.parse_money(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("-5", "EUR", "not an amount"), ("abc", "EUR", "not an amount"),
        ("nan", "EUR", "not an amount"), ("inf", "EUR", "not an amount"),
        ("1e5", "EUR", "not an amount"), ("1.001", "EUR", "more than 2 decimals"),
        ("1.5", "JPY", "more than 0 decimals"), ("9" * 30, "EUR", "too large"),
        ("", "EUR", "not an amount"),
        # a comma is never a decimal point: refused, not read as 1,250 or 1.5 or 15
        ("12,50", "EUR", "comma only groups thousands"), ("1,5", "EUR", "comma only groups"),
        ("1.500,00", "PLN", "comma only groups"), ("1,2,3", "EUR", "comma only groups"),
        ("1,2345", "EUR", "comma only groups"), ("1,000_000", "EUR", "comma only groups"),
        ("12 50", "EUR", "not an amount"), ("1_00", "EUR", "not an amount"),
    ],
)
def test_parse_money_refuses(text, currency, message) -> None:
    with pytest.raises(UsageError, match=message):
        values.parse_money(text, currency)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(1200050, "EUR", "12000.50"), (5, "USD", "0.05"), (25000000, "VND", "25000000"),
     (1234, "KWD", "1.234"), (0, "EUR", "0.00")],
)
def test_format_money(minor, currency, text) -> None:
    assert values.format_money(minor, currency) == text


def test_weighted_rounds_once_half_even() -> None:
    assert values.weighted_minor(1200050 * 40) == 480020
    assert values.weighted_minor(250) == 2  # 2.5 -> 2
    assert values.weighted_minor(350) == 4  # 3.5 -> 4


@given(st.integers(min_value=-(10**22), max_value=10**22))
def test_weighted_is_decimal_half_even(n: int) -> None:
    """The integer rounding gives exactly what Decimal's ROUND_HALF_EVEN gives."""
    from decimal import ROUND_HALF_EVEN, Decimal

    expected = int((Decimal(n) / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert values.weighted_minor(n) == expected
    for near in (n * 100 + 49, n * 100 + 50, n * 100 + 51, n * 100 - 50, n * 100 + 150):
        if abs(near) < 10**24:
            want = (Decimal(near) / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
            assert values.weighted_minor(near) == int(want)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:30", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ("2026-03-01 10:30:15", datetime(2026, 3, 1, 10, 30, 15, tzinfo=UTC)),
        ("2026-03-01T10:30+07:00", datetime(2026, 3, 1, 3, 30, tzinfo=UTC)),
        ("2026-03-01T10:30:00Z", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_parse_moment(text, expected) -> None:
    assert values.parse_moment(text) == expected
    assert values.iso(values.parse_moment(text)) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("text", ["2026-02-30", "yesterday", "", "0001-01-01", "2026-13-01"])
def test_parse_moment_refuses(text) -> None:
    with pytest.raises(UsageError):
        values.parse_moment(text)


def test_parse_date() -> None:
    assert values.parse_date("2026-12-31") == date(2026, 12, 31)
    with pytest.raises(UsageError, match="not a valid date"):
        values.parse_date("2026-02-30")


def test_text_is_nfc_and_clean() -> None:
    nfd = unicodedata.normalize("NFD", "Nguyễn")
    assert values.clean_text(f"  {nfd} ", "name") == "Nguyễn"
    assert values.fold(nfd) == values.fold("NGUYỄN")
    with pytest.raises(UsageError, match="control character"):
        values.clean_text("a\x07b", "name")
    with pytest.raises(UsageError, match="empty"):
        values.clean_text("   ", "name", required=True)
    with pytest.raises(UsageError, match="too long"):
        values.clean_text("x" * 10_000, "name")
    assert values.clean_text("a\tb\nc", "name") == "a b c"


@pytest.mark.parametrize(("code", "ok"), [("eur", "EUR"), ("USD", "USD"), ("EURO", None),
                                          ("E1R", None), ("", None)])
def test_currency_code(code, ok) -> None:
    if ok:
        assert values.currency_code(code) == ok
    else:
        with pytest.raises(UsageError):
            values.currency_code(code)


@pytest.mark.parametrize("items", [[], [{"a": 1}], [{"a": [1, {"b": "ễ"}]}, {"c": None}, 3]])
def test_streamed_json_list_is_byte_identical(items, capsys) -> None:
    import json

    from pipectl.views.common import print_json_list

    print_json_list(iter(items))
    assert capsys.readouterr().out == json.dumps(items, ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize("items", [[], [{"a": 1}], [{"a": [1, {"b": "ễ"}]}, {"c": None}, 3]])
@pytest.mark.parametrize("head", [{}, {"as_of": "2026-12-01T09:00:00Z", "total": 3},
                                  {"nested": {"a": [1, {"b": None}]}, "ł": "Łódź"}])
def test_streamed_json_object_ending_with_a_list_is_byte_identical(items, head, capsys) -> None:
    import json

    from pipectl.views.common import print_json_ending_with_list

    print_json_ending_with_list(head, "deals", iter(items))
    expected = json.dumps({**head, "deals": items}, ensure_ascii=False, indent=2) + "\n"
    assert capsys.readouterr().out == expected


_CREATED = {"at": "2026-01-01T00:00:00Z", "kind": "created", "to_stage": "prospecting"}
_STEP = {"at": "2026-01-02T00:00:00Z", "kind": "note", "text": "x", "next_action": "call",
         "due": "2026-01-05"}
_MOVE = {"at": "2026-01-03T00:00:00Z", "kind": "stage", "from_stage": "prospecting",
         "to_stage": "qualification"}


@pytest.mark.parametrize(("stage", "events", "expected"), [
    ("prospecting", [_CREATED], (DEFAULT.stage(S.PROSPECTING).action, False, None, False)),
    ("prospecting", [_CREATED, _STEP], ("call", True, "2026-01-05", False)),
    # a step logged before the latest move counts as done: the stage's action again
    ("qualification", [_CREATED, _STEP, _MOVE],
     (DEFAULT.stage(S.QUALIFICATION).action, False, None, True)),
    ("qualification", [_CREATED, _MOVE, {**_STEP, "at": "2026-01-04T00:00:00Z"}],
     ("call", True, "2026-01-05", False)),
    ("won", [_CREATED], None),  # a closed deal needs nothing
])
def test_next_step(stage: str, events: list[dict], expected) -> None:
    step = next_step(DEFAULT, stage, events)
    got = None if step is None else (step.action, step.logged, step.due, step.superseded)
    assert got == expected
