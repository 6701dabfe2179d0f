"""Import at the edges (issue 11): the file's framing (a quote never closed, rows swallowed into
one cell, a last row cut short), cells that reached an internal error, endless or binary
streams, standard input, and the same file imported twice.

Each test names the reproducer it guards; each failed before its fix.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest


def _write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def _deals(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT name, value_minor FROM deals ORDER BY id").fetchall()
    finally:
        con.close()


def _bad(cli, f: Path, *args: str) -> list[dict]:
    """Import refused for bad rows (exit 1, nothing written): the rows, columns and reasons."""
    result = cli("import", str(f), "--json", *args, code=1)
    out = json.loads(result.stdout)
    assert out["added"] == 0 and out["bad_rows"] >= 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return out["errors"]


# ---------------------------------------------------------------- cells that were internal errors


@pytest.mark.parametrize(("text", "column", "reason"), [
    # issue 11 item 9: KeyError: 'won' (a closed column without a won column)
    ("name,closed\nx,abc\n", "closed", "'abc' is not true or false"),
    ("name,won\nx,abc\n", "won", "'abc' is not true or false"),
    ("name,IsClosed,IsWon\nx,maybe,1\n", "IsClosed", "'maybe' is not true or false"),
    ("name,closed,won\nx,1,perhaps\n", "won", "'perhaps' is not true or false"),
])
def test_a_bad_won_or_closed_cell_is_a_bad_row_in_its_own_column(cli, db_path, tmp_path,
                                                                   text, column, reason):
    f = _write(tmp_path, text)
    args = ["--map", "IsClosed=closed", "--map", "IsWon=won"] if "IsWon" in text else []
    errors = _bad(cli, f, *args)
    assert [(e["row"], e["column"]) for e in errors] == [(2, column)]
    assert reason in errors[0]["reason"]
    assert _deals(db_path) == []


def test_both_flags_bad_are_both_told(cli, tmp_path):
    errors = _bad(cli, _write(tmp_path, "name,won,closed\nx,abc,zz\n"))
    assert [e["column"] for e in errors] == ["won", "closed"]


@pytest.mark.parametrize("cell", [
    "0001-01-01T00:00:00+01:00",  # was OverflowError: before year 1
    "9999-12-31T23:59:59-14:00",  # was OverflowError: after year 9999
    "0001-01-01", "3000-01-01", "1899-12-31T23:59:59Z",
])
@pytest.mark.parametrize("column", ["created_at", "closed_at", "close_date", "updated_at"])
def test_a_date_cell_at_the_calendars_edge_is_a_bad_cell(cli, tmp_path, cell, column):
    f = _write(tmp_path, f"name,stage,{column}\nx,won,{cell}\n")
    errors = _bad(cli, f)
    assert errors[0]["column"] == column
    assert "is out of range: dates and times must lie between" in errors[0]["reason"]


# ---------------------------------------------------------------- the file's framing


def test_an_unterminated_quote_no_longer_swallows_the_rows_after_it(cli, db_path, tmp_path):
    """Issue 11 item 7: '"B,2\\nC,3\\nD,4' was imported as 2 deals, B's name holding C and D."""
    for text in ('name,value\nA,1\n"B,2\nC,3\nD,4\n', 'name,value\nA,1\n"B,2\nC,3\nD,4'):
        errors = _bad(cli, _write(tmp_path, text))
        assert [(e["row"], e["column"]) for e in errors] == [(3, "name")]
        assert errors[0]["reason"].startswith(
            'the quote (") that opens this cell is never closed: the cell runs over the last '
            "3 lines of the file")
        assert _deals(db_path) == []


def test_rows_swallowed_between_two_stray_quotes_are_a_bad_row(cli, db_path, tmp_path):
    text = ('name,value,owner\nA,1,"x\nB,2,y\nC,3,z\nD,"4,w\nE,5,v\n')
    errors = _bad(cli, _write(tmp_path, text))
    assert [(e["row"], e["column"]) for e in errors] == [(2, "owner")]
    assert "runs over 4 lines, 2 of which read as rows of the file (3 cells each)" in \
        errors[0]["reason"]
    assert _deals(db_path) == []


def test_a_two_column_file_needs_many_swallowed_rows(cli, db_path, tmp_path):
    """In a file of two columns a note's line with one comma reads as a row: five are needed."""
    rows = "".join(f"R{i},{i}\n" for i in range(5))
    errors = _bad(cli, _write(tmp_path, f'name,note\nA,"1\n{rows}"\nZ,9\n'))
    assert [(e["row"], e["column"]) for e in errors] == [(2, "note")]
    assert _deals(db_path) == []
    four = "".join(f"R{i},{i}\n" for i in range(4))
    out = cli.json("import", str(_write(tmp_path, f'name,note\nA,"1\n{four}"\nZ,9\n')))
    assert (out["added"], out["bad_rows"]) == (2, 0)


@pytest.mark.parametrize("text", [
    # an address, notes with commas on every line (CRLF rows), delimiters inside the cell
    'name,company,note\nA,Acme,"12 Main St\nSpringfield, IL 62701"\n',
    'name,note,owner\nA,"Called Tom, nice.\nWants pricing, terms.\nBack Monday, 9am",x\n',
    'name,note\r\nA,"first, line\nsecond, line\nthird, line\nfourth, line"\r\n',
    'name;note;owner\nA;"a;b;c\nd;e;f";x\n',
])
def test_a_legitimate_multi_line_cell_still_imports(cli, db_path, tmp_path, text):
    out = cli.json("import", str(_write(tmp_path, text + "B,,\n" if ";" not in text
                                        else text + "B;;\n")))
    assert (out["added"], out["bad_rows"]) == (2, 0)


@pytest.mark.parametrize(("text", "column", "detail"), [
    ("name,value,owner\nA,1,x\nB,2", "value", "(the last row has 2 of the header's 3 cells)"),
    ('name,value\nA,1\nB,"2', "value", "inside a quoted cell"),
    ('name,value,owner\nA,1,x\nB,"2', "value", "inside a quoted cell"),
])
def test_a_last_row_cut_short_is_refused_as_truncated(cli, db_path, tmp_path, text, column,
                                                      detail):
    errors = _bad(cli, _write(tmp_path, text))
    assert errors[0]["column"] == column
    assert errors[0]["reason"].startswith("the file ends mid-row")
    assert "it looks truncated" in errors[0]["reason"] and detail in errors[0]["reason"]
    assert _deals(db_path) == []


@pytest.mark.parametrize(("text", "added"), [
    ("name,value,owner\nA,1,x\nB,2,y", 2),  # complete, without a final line end
    ("name,value,owner\nA,1\nB,2", 2),  # every row short the same way: the file's own style
    ('name,value\nA,1\nB,"2"', 2),  # a closed quote at the very end
    ("name,value\rA,1\rB,2\r", 2),  # old Mac line ends
    ("name\nA", 1),
])
def test_a_complete_last_row_without_a_line_end_still_imports(cli, tmp_path, text, added):
    out = cli.json("import", str(_write(tmp_path, text)))
    assert (out["bad_rows"], out["added"]) == (0, added)


def _exported(cli, tmp_path: Path, *args: str) -> Path:
    cli("add", "Acme renewal", "--value", "1200", "--company", "Acme")
    cli("add", "Globex", "--value", "50", "--owner", "Ann")
    cli("add", "Initech, Inc.", "--value", "7")
    out = tmp_path / ("export.json" if "json" in args else "export.csv")
    cli("export", "-o", str(out), *args)
    return out


def test_pipectls_csv_export_cut_anywhere_is_refused(cli, tmp_path):
    """Item 6: an interrupted export ends mid-row; import must not take it for complete. Cut
    at every offset past the header, it is refused (cut just after a line end it holds
    whole rows, and imports)."""
    from tests.conftest import Cli

    data = _exported(cli, tmp_path).read_bytes()
    header_end = data.index(b"\r\n") + 2
    assert data.endswith(b"\r\n")
    ends = [i for i in range(len(data)) if data[i:i + 2] == b"\r\n"]
    near = {i + d for i in ends for d in (-1, 0, 1, 2, 3)}  # around each line end
    for cut in sorted({*range(header_end + 1, len(data), 7), *near} - {len(data)}):
        if cut <= header_end:
            continue
        f = _write(tmp_path, data[:cut], "cut.csv")
        fresh = Cli(tmp_path / f"cut{cut}.db")
        if data[:cut].endswith((b"\r\n", b"\r")):  # a whole row (cut at a line end)
            assert fresh.json("import", str(f))["bad_rows"] == 0
            continue
        result = fresh("import", str(f), "--json", code=1)
        errors = json.loads(result.stdout)["errors"]
        assert len(errors) == 1 and "the file ends mid-row" in errors[0]["reason"], (cut, errors)
        assert "it looks truncated" in errors[0]["reason"]
        assert _deals(tmp_path / f"cut{cut}.db") == []


def test_pipectls_json_export_cut_anywhere_is_refused(cli, tmp_path):
    """Item 6, JSON: a cut export is no JSON document; refused at every offset before its
    closing brace."""
    from tests.conftest import Cli

    data = _exported(cli, tmp_path, "--format", "json", "--events").read_bytes()
    end = data.rindex(b"}") + 1
    offsets = sorted({*range(1, end, max(1, end // 30)), end - 1, end - 2, end - 3})
    for cut in offsets:
        f = _write(tmp_path, data[:cut], "cut.json")
        fresh = Cli(tmp_path / "fresh.db")
        result = fresh("import", str(f), code=2)
        assert "is not valid JSON" in result.stderr and result.stderr.count("\n") == 1, cut
        assert _deals(tmp_path / "fresh.db") == []
    whole = Cli(tmp_path / "whole.db")
    assert whole.json("import", str(_write(tmp_path, data[:end], "whole.json")))["added"] == 3


def test_the_csv_pairs_event_log_cut_short_is_refused(cli, tmp_path):
    from tests.conftest import Cli

    deals = _exported(cli, tmp_path)
    events = tmp_path / "events.csv"
    cli("export", "--events", "-o", str(events))
    data = events.read_bytes()
    cut = _write(tmp_path, data[:-7], "cut-events.csv")
    fresh = Cli(tmp_path / "fresh.db")
    result = fresh("import", str(deals), "--history", str(cut), code=2)
    assert "the file ends mid-row: it looks truncated" in result.stderr
    assert _deals(tmp_path / "fresh.db") == []


def test_every_real_export_still_reads_without_a_framing_problem(real_data):
    """The real CRM exports hold no multi-line cell, and one (Pipedrive) no final line end:
    each reads whole, row for row as Python's csv module reads it."""
    import csv

    from pipectl.transfer.parsing import CsvSource

    for f in sorted(real_data.rglob("*.csv")):
        src = CsvSource(f, None)
        try:
            rows = [cells for _, cells in src.rows()]
            assert src.problems == []
        finally:
            src.close()
        text = f.read_bytes().decode(src.encoding)
        expected = [r for r in csv.reader(text.splitlines(keepends=True), delimiter=src.delimiter)
                    if r and not (len(r) == 1 and not r[0].strip())][1:]
        assert rows == expected, f
