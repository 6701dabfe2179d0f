"""Promise 6: text is stored NFC-normalised and searched case-folded, so a name typed in either
Unicode form (NFC or NFD, as macOS file names and some keyboards produce) and in any case finds
the deal; and what is stored is NFC whatever was typed."""

from __future__ import annotations

import sqlite3
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAME = "Nguyễn Văn An"
NFC = unicodedata.normalize("NFC", NAME)
NFD = unicodedata.normalize("NFD", NAME)


def _forms(text: str) -> list[str]:
    out = []
    for form in ("NFC", "NFD"):
        t = unicodedata.normalize(form, text)
        out += [t, t.upper(), t.lower(), t.title()]
    return out


def test_nfc_and_nfd_differ_as_bytes():
    assert NFC != NFD and len(NFD) > len(NFC)


@pytest.mark.parametrize("typed_as", ["NFC", "NFD"])
def test_stored_nfc_and_found_typed_either_way(cli, db_path, typed_as):
    name = unicodedata.normalize(typed_as, NAME)
    owner = unicodedata.normalize(typed_as, "Łukasz Żółć")
    cli("add", name, "--company", unicodedata.normalize(typed_as, "Công ty Bình Minh"),
        "--owner", owner)
    con = sqlite3.connect(db_path)
    stored = con.execute("SELECT name, company, owner FROM deals").fetchone()
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    assert stored == (NFC, "Công ty Bình Minh", unicodedata.normalize("NFC", "Łukasz Żółć"))
    assert events == 1
    for query in [*_forms(NAME), *_forms("nguyễn"), *_forms("BÌNH MINH"), *_forms("văn an")]:
        found = cli.json("list", "--search", query)
        assert [d["name"] for d in found] == [NFC], query
    # --owner matches exactly (no case folding), in either normal form
    for form in ("NFC", "NFD"):
        found = cli.json("list", "--owner", unicodedata.normalize(form, "Łukasz Żółć"))
        assert [d["name"] for d in found] == [NFC]


def test_notes_and_edits_are_nfc_too(cli, db_path):
    cli("add", "A")
    cli("note", "1", unicodedata.normalize("NFD", "Gọi điện với giám đốc"))
    cli("edit", "1", "--name", NFD)
    con = sqlite3.connect(db_path)
    texts = [r[0] for r in con.execute("SELECT coalesce(text, new) FROM events WHERE id > 1")]
    con.close()
    assert texts == [unicodedata.normalize("NFC", "Gọi điện với giám đốc"), NFC]
    assert [d["id"] for d in cli.json("list", "--search", NFD.upper())] == [1]


def test_casefold_not_just_lower(cli):
    """German sharp s and Greek final sigma: casefold, not lower()."""
    cli("add", "Straße GmbH")
    cli("add", "ΟΔΥΣΣΕΥΣ")
    assert [d["name"] for d in cli.json("list", "--search", "STRASSE")] == ["Straße GmbH"]
    assert [d["name"] for d in cli.json("list", "--search", "οδυσσευς")] == ["ΟΔΥΣΣΕΥΣ"]


_letters = st.text(
    alphabet=st.sampled_from("aăâeêioôơuưyđAĂÂEÊIOÔƠUƯYĐ\u0300\u0301\u0303\u0309\u0323 łżźćńśóąę"),
    min_size=1, max_size=20,
).filter(lambda s: s.strip() and not unicodedata.combining(s.strip()[0]))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=_letters, typed=st.sampled_from(["NFC", "NFD"]), query_form=st.sampled_from(
    ["NFC", "NFD"]), upper=st.booleans())
def test_any_vietnamese_or_polish_name_is_found_typed_any_way(tmp_path_factory, name, typed,
                                                             query_form, upper):
    from tests.conftest import Cli

    cli = Cli(tmp_path_factory.mktemp("s") / "p.db")
    cli("add", unicodedata.normalize(typed, name))
    query = unicodedata.normalize(query_form, name.strip())
    query = query.upper() if upper else query
    found = cli.json("list", "--search", query)
    assert len(found) == 1
    assert found[0]["name"] == unicodedata.normalize("NFC", name).strip()
