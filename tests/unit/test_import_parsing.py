"""Cells as CRM files write them: dates, amounts, flags, encodings, delimiters, formulas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.transfer.parsing import (
    CsvSource,
    detect_encoding,
    neutralise,
    parse_amount,
    parse_flag,
    parse_percent,
    parse_when,
    restore,
    sniff_delimiter,
)


@pytest.mark.parametrize(
    ("text", "expected", "date_only"),
    [
        ("2017-03-01", datetime(2017, 3, 1, tzinfo=UTC), True),
        ("2023-04-04 11:48", datetime(2023, 4, 4, 11, 48, tzinfo=UTC), False),
        ("2018-10-13 17:16:45", datetime(2018, 10, 13, 17, 16, 45, tzinfo=UTC), False),
        ("2018-10-13T17:16:45Z", datetime(2018, 10, 13, 17, 16, 45, tzinfo=UTC), False),
        ("2018-10-13T19:16:45+02:00", datetime(2018, 10, 13, 17, 16, 45, tzinfo=UTC), False),
        ("2018-10-13T17:16:45.123Z", datetime(2018, 10, 13, 17, 16, 45, tzinfo=UTC), False),
        ("3/1/2017", datetime(2017, 3, 1, tzinfo=UTC), True),
        ("12/31/2017 08:05", datetime(2017, 12, 31, 8, 5, tzinfo=UTC), False),
    ],
)
def test_dates_in_the_forms_crms_write(text: str, expected: datetime, date_only: bool) -> None:
    assert parse_when(text) == (expected, date_only)


def test_dayfirst_reads_day_then_month() -> None:
    assert parse_when("3/1/2017", dayfirst=True) == (datetime(2017, 1, 3, tzinfo=UTC), True)
    with pytest.raises(ValueError, match="D/M/YYYY"):
        parse_when("12/31/2017", dayfirst=True)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_date_is_none(text: str) -> None:
    assert parse_when(text) is None


@pytest.mark.parametrize("text", ["yesterday", "2017-02-30", "13/13/2017"])
def test_bad_dates_are_refused_with_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_when(text)


@pytest.mark.parametrize("text", ["0001-01-01", "1899-12-31T23:59:59Z", "3000-01-01",
                                  "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"])
def test_dates_outside_the_calendar_are_out_of_range(text: str) -> None:
    """An offset past year 1 or 9999 was an OverflowError: an internal error."""
    with pytest.raises(ValueError, match="is out of range: dates and times must lie between"):
        parse_when(text)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("100000", "USD", 10_000_000),
        ("100000.0", "USD", 10_000_000),
        ("1,234.50", "USD", 123_450),
        ("$1,234.50", "USD", 123_450),
        ("1234", "JPY", 1234),
        ("0", "EUR", 0),
        ("", "USD", None),
    ],
)
def test_amounts(text: str, currency: str, minor: int | None) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text", ["abc", "-5", "12..5", "0,500", "1.500,00", "12,50"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text, "USD")


def test_flags_and_percentages() -> None:
    assert [parse_flag(x) for x in ("1", "0", "true", "FALSE", "")] == [True, False, True,
                                                                          False, None]
    assert [parse_percent(x) for x in ("40", "40%", "40.0", "")] == [40, 40, 40, None]
    with pytest.raises(ValueError):
        parse_flag("maybe")
    with pytest.raises(ValueError):
        parse_percent("140")


@pytest.mark.parametrize("cell", ["inf", "Infinity", "-inf", "nan", "NaN", "1e400", "1e2",
                                  "-5", ".5", "40.5", "4O", "٤٠", "0x10", "1_0"])
def test_a_percentage_is_plain_digits(cell: str) -> None:
    """float() took 'inf' and '1e400' and overflowed on them: an internal error."""
    with pytest.raises(ValueError, match="percentage"):
        parse_percent(cell)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("'t Hooft", "'t Hooft"),
        ("Acme", "Acme"),
        ("", ""),
    ],
)
def test_formula_neutralising(cell: str, safe: str) -> None:
    assert neutralise(cell) == safe
    assert restore(safe) == cell


@settings(max_examples=300)
@given(st.text())
def test_neutralise_round_trips_any_text(text: str) -> None:
    safe = neutralise(text)
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert restore(safe) == text


def test_encodings_utf8_bom_and_cp1252(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("name\nZoë Ångström\n", encoding="utf-8")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + "name\nZoë\n".encode())
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes(
        ("name,company\n" + "x,y\n" * 3000 + "Renée Müller,Café Français\n").encode("cp1252")
    )
    assert detect_encoding(plain) == "utf-8-sig"
    assert detect_encoding(bom) == "utf-8-sig"
    src = CsvSource(legacy, None)
    try:
        rows = [cells for _, cells in src.rows()]
    finally:
        src.close()
    assert rows[-1] == ["Renée Müller", "Café Français"]
    src = CsvSource(bom, None)
    try:
        assert src.header == ["name"]
    finally:
        src.close()


@pytest.mark.parametrize(
    ("head", "delimiter"),
    [("a,b,c", ","), ("a;b;c", ";"), ("a\tb\tc", "\t"), ('"x,y";b;c', ";"), ("a", ",")],
)
def test_delimiter_sniffing(head: str, delimiter: str) -> None:
    assert sniff_delimiter(head + "\n1,2,3\n") == delimiter


@pytest.mark.parametrize(("codec", "bom", "found"), [
    ("utf-16-le", "\ufeff", "utf-16"),  # Excel's "Unicode text" and "CSV UTF-16"
    ("utf-16-be", "\ufeff", "utf-16"),
    ("utf-32-le", "\ufeff", "utf-32"),
    ("utf-8", "\ufeff", "utf-8-sig"),
    ("utf-8", "", "utf-8-sig"),
])
def test_a_byte_order_mark_names_the_encoding(tmp_path: Path, codec: str, bom: str,
                                              found: str) -> None:
    """A UTF-16 file was read as a legacy code page: 'no column gives the deals a name'."""

    f = tmp_path / "deals.csv"
    f.write_bytes((bom + "name\tvalue\r\nNguyễn Văn An\t1200.50\r\nŁukasz\t9\r\n").encode(codec))
    assert detect_encoding(f) == found
    src = CsvSource(f, None)
    try:
        assert src.header == ["name", "value"]
        assert [cells for _, cells in src.rows()] == [["Nguyễn Văn An", "1200.50"],
                                                      ["Łukasz", "9"]]
    finally:
        src.close()


def test_a_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    """'A,12,50' under 'name,value' was read as value 12 (the 50 dropped, silently)."""
    from pipectl.errors import UsageError

    f = tmp_path / "deals.csv"
    f.write_text("name,value\nA,12,\nB,12,50\n", encoding="utf-8")  # an empty extra is fine
    src = CsvSource(f, None)
    try:
        rows = src.rows()
        assert next(rows) == (2, ["A", "12", ""])
        with pytest.raises(UsageError, match="row 3 has 3 cells for the header's 2 columns"):
            next(rows)
    finally:
        src.close()
