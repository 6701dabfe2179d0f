"""values.fold: text as a person types it (no accents, no case, the letters that do not
decompose spelt in ASCII); services.names.close_to: a new name close to one there is."""

from __future__ import annotations

import unicodedata

import pytest

from pipectl.services.names import close_to, edit_distance
from pipectl.values import fold


@pytest.mark.parametrize("text, folded", [
    # Vietnamese: stacked diacritics, đ
    ("Nguyễn Thị Hằng", "nguyen thi hang"),
    ("Đà Nẵng", "da nang"),
    ("Công ty TNHH Bình Minh", "cong ty tnhh binh minh"),
    ("Trần", "tran"),
    # Polish: ł does not decompose
    ("Łódź", "lodz"),
    ("Gdańsk", "gdansk"),
    ("Zażółć gęślą jaźń", "zazolc gesla jazn"),
    ("Łukasz", "lukasz"),
    # Turkish: dotted capital I, dotless i
    ("Öztürk", "ozturk"),
    ("İstanbul", "istanbul"),
    ("ılık", "ilik"),
    # Czech, German, Nordic, French, Icelandic, Maltese
    ("Dvořák", "dvorak"),
    ("Straße", "strasse"),
    ("STRASSE", "strasse"),
    ("Øre", "ore"),
    ("Æbleskive", "aebleskive"),
    ("Œuvre", "oeuvre"),
    ("Þór", "thor"),
    ("Guðrún", "gudrun"),
    ("Ħal Qormi", "hal qormi"),
    # Greek (final sigma), Cyrillic (ё, й keep their base letter)
    ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
    ("Ёлка", "елка"),
    # compatibility forms: ligatures, full-width letters
    ("ﬁnance", "finance"),
    ("ＡＣＭＥ", "acme"),
    # kept whole: scripts whose marks are part of the letter, and composed again
    ("한국", "한국"),
    ("がっこう", "がっこう"),
    ("हिन्दी", "हिन्दी"),
    # ASCII: lower case only; line ends and spaces as they are
    ("Acme GmbH", "acme gmbh"),
    ("a\nB", "a\nb"),
    ("", ""),
])
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize("text", ["Nguyễn Thị Hằng", "Łódź", "Dvořák", "İstanbul"])
def test_fold_is_the_same_for_either_normal_form(text: str) -> None:
    assert fold(unicodedata.normalize("NFD", text)) == fold(unicodedata.normalize("NFC", text))


@pytest.mark.parametrize("text", ["Nguyễn Thị Hằng", "Łódź Straße", "한국 Øre", "ΣΟΦΙΑ"])
def test_fold_is_idempotent_and_parts_at_spaces_and_line_ends(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    # what the search text relies on: folding a joined text folds each part
    assert fold(f"{text} {text}\n{text}") == f"{fold(text)} {fold(text)}\n{fold(text)}"


@pytest.mark.parametrize("given, known, near", [
    ("Lukasz", ["Łukasz", "Anna"], ["Łukasz"]),  # the same once folded
    ("Minh Tran", ["Minh Trần"], ["Minh Trần"]),
    ("anna kowalsky", ["Anna Kowalska", "Sam"], ["Anna Kowalska"]),  # one edit, folded
    ("Jhon Smith", ["John Smith"], ["John Smith"]),  # two edits (a swap)
    ("Jon Sm", ["John Smith"], []),  # too far
    ("Ann", ["Anna", "Sam"], ["Anna"]),  # a short name: one edit at most
    ("Bo", ["Al"], []),
    ("Anna", ["Anna", "Anne"], []),  # there exactly: nothing to say
    ("price too hihg", ["price too high", "no budget"], ["price too high"]),
    ("x", [], []),
])
def test_close_to(given: str, known: list[str], near: list[str]) -> None:
    assert close_to(given, known) == near


@pytest.mark.parametrize("a, b, most, d", [
    ("kitten", "sitting", 3, 3), ("kitten", "sitting", 2, 3), ("", "abc", 5, 3),
    ("abc", "abc", 0, 0), ("abcdef", "a", 2, 3), ("flaw", "lawn", 2, 2),
])
def test_edit_distance(a: str, b: str, most: int, d: int) -> None:
    assert edit_distance(a, b, most) == d
