"""Formula neutralising (issue 11, item 10): any text, however many apostrophes it starts with,
is neutralised without error, and ``restore`` gives back exactly the text (round trip); through
the CLI too: export then import gives back the same text.

Before the fix ``_needs`` recursed once per leading apostrophe: about 1,000 of them before ``=1``
raised RecursionError and blocked the CSV export of the whole pipeline.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.transfer.parsing import DANGEROUS, neutralise, restore
from pipectl.values import MAX_TEXT
from tests.conftest import Cli

# The characters that matter (every dangerous one, the apostrophe itself, a double quote, a
# space, line ends) and a few that do not.
ADVERSARIAL = "'=+-@\t\r\n\" a,;'"


def _runs() -> st.SearchStrategy[str]:
    """Text made of runs: long stretches of one character (a thousand apostrophes...)."""
    run = st.tuples(st.sampled_from(ADVERSARIAL), st.integers(1, 3000)).map(lambda t: t[0] * t[1])
    return st.lists(run, max_size=4).map("".join)


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 5000, 200_000])
@pytest.mark.parametrize("tail", ["=1", "+1", "-1", "@x", "\tx", "\rx", "1", ""])
def test_many_leading_apostrophes(n: int, tail: str) -> None:
    text = "'" * n + tail
    safe = neutralise(text)
    dangerous = tail[:1] in DANGEROUS
    assert safe == ("'" + text if dangerous else text)
    assert restore(safe) == text


@settings(max_examples=400)
@given(st.one_of(st.text(alphabet=ADVERSARIAL), _runs(), st.text()))
def test_round_trip_over_adversarial_text(text: str) -> None:
    safe = neutralise(text)
    assert safe[:1] not in DANGEROUS  # a spreadsheet runs nothing
    assert (safe != text) == (text.lstrip("'")[:1] in DANGEROUS)  # changed only when needed
    assert restore(safe) == text  # and import gives back exactly the text
    assert len(safe) - len(text) in (0, 1)  # at most one apostrophe added


@settings(max_examples=200)
@given(st.one_of(st.text(alphabet=ADVERSARIAL), _runs()))
def test_restore_is_total_and_undoes_only_neutralise(text: str) -> None:
    """restore never fails on any cell a foreign file holds, and changes only a cell that
    neutralise could have made."""
    back = restore(text)
    assert back == text or (text == "'" + back and neutralise(back) == text)


def _quote_heavy() -> list[str]:
    most = MAX_TEXT - 2
    return ["'" * most + "=1", "'" * 1000 + "=1", "'" * 1000 + "@SUM(A1)", "'" * 3 + "-x",
            "'t Hooft", "'", "''"]


def test_export_then_import_gives_back_quote_heavy_texts(tmp_path: Path) -> None:
    """The reproducer of issue 11 item 10 through the CLI: CSV export (deals, and the event
    log) succeeds, neutralises, and import gives back every text exactly."""
    cli = Cli(tmp_path / "a.db")
    texts = _quote_heavy()
    for i, text in enumerate(texts, 1):
        cli("add", text, "--company", text, "--at", "2026-01-05")
        cli("note", str(i), text, "--at", "2026-01-06")
    deals, events = tmp_path / "deals.csv", tmp_path / "events.csv"
    cli("export", "-o", str(deals))
    cli("export", "--events", "-o", str(events))
    rows = list(csv.DictReader(io.StringIO(deals.read_text(encoding="utf-8"))))
    assert [r["name"] for r in rows] == [neutralise(t) for t in texts]
    assert rows[0]["name"][: MAX_TEXT - 2] == "'" * (MAX_TEXT - 2)

    alone = Cli(tmp_path / "b.db")
    alone("import", str(deals))
    got = alone.json("list", "--status", "all")
    assert [(d["name"], d["company"]) for d in got] == [(t, t) for t in texts]

    pair = Cli(tmp_path / "c.db")
    pair("import", str(deals), "--history", str(events))
    for i, text in enumerate(texts, 1):
        shown = pair.json("show", str(i))
        assert shown["name"] == text
        assert [e["text"] for e in shown["events"] if e["kind"] == "note"] == [text]
