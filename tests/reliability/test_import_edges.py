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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


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


def test_a_stray_quote_in_a_large_file_is_a_bad_row_at_the_csv_field_limit(cli, db_path,
                                                                         tmp_path):
    """A quote never closed in a large file reaches the csv module's field limit first (a
    csv.Error, which stopped the import with "cannot be read as CSV"): a bad row at the row
    where the quote opened, and the reading goes on after it."""
    rows = "".join(f"D{i},{i}\n" for i in range(20000))
    errors = _bad(cli, _write(tmp_path, 'name,value\nA,1\n"B,2\n' + rows))
    assert [(e["row"], e["column"]) for e in errors] == [(3, "row")]
    assert errors[0]["reason"].startswith("a cell runs over more than 131,072 characters (")
    assert errors[0]["reason"].endswith("lines): a quote (\") that opens it and is never "
                                        "closed?")
    assert _deals(db_path) == []


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


def test_pipectls_csv_export_cut_inside_its_header_is_refused(cli, tmp_path):
    """Found by the red team: a cut inside the first line left a file of one line, no line
    end and no rows, imported as "0 rows" with exit 0. It is refused as truncated now."""
    from tests.conftest import Cli

    data = _exported(cli, tmp_path).read_bytes()
    header_end = data.index(b"\r\n")
    for cut in range(1, header_end, 9):
        f = _write(tmp_path, data[:cut], "head.csv")
        fresh = Cli(tmp_path / f"head{cut}.db")
        result = fresh("import", str(f), code=1)
        assert "ends inside its header row" in result.stderr and "truncated" in result.stderr
        assert _deals(tmp_path / f"head{cut}.db") == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "UTF_16"])
def test_a_file_named_utf_16_without_a_byte_order_mark_is_one_clear_error(cli, tmp_path,
                                                                          encoding):
    """Found by the red team: `--encoding utf-16` on a file with no byte order mark was an
    internal error (UnicodeError, not UnicodeDecodeError)."""
    f = _write(tmp_path, b"name\nx\n", "plain.csv")
    result = cli("import", str(f), "--encoding", encoding, code=2)
    assert "no byte order mark" in result.stderr and "-le or" in result.stderr
    assert "internal error" not in result.stderr


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


# ---------------------------------------------------------------- streams and binary files


def test_import_dev_zero_stops_at_once(tmp_path):
    """Issue 11: `import /dev/zero` read without end (detect_encoding scanned it whole)."""
    from tests.reliability.helpers import run

    db = tmp_path / "p.db"
    for args in (["/dev/zero"], ["/dev/zero", "--format", "json"], ["/dev/zero", "-f", "csv"]):
        result = run(db, "import", *args, timeout=20)
        assert result.returncode == 2, result
        assert result.stderr == ("error: /dev/zero is not a CSV or JSON text file: it holds a "
                                 "NUL character; nothing was imported\n")


@pytest.mark.parametrize(("name", "data", "why"), [
    ("zeros.csv", b"\x00" * 100, "it holds a NUL"),
    ("late.csv", b"name\n" + b"A\n" * 1000 + b"B\x00\n", "it holds a NUL byte (at byte 2,006)"),
    ("png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "it holds a NUL byte (at byte 8)"),
    ("long.csv", b"name\n" + b"a" * (4 * (1 << 20) + 10) + b"\n", "a line runs over 4,194,304"),
    ("long.json", b"[" + b" " * (4 * (1 << 20) + 10) + b"]",
     "a line or a single value runs over 4,194,304 bytes"),
    ("nested.json", b"[" * (4 * (1 << 20) + 10), "a line or a single value runs over"),
    ("utf16.csv", "name\r\nA\x00B\r\n".encode("utf-16"), "it holds a NUL character"),
])
def test_a_binary_or_endless_line_file_is_not_a_text_file(cli, db_path, tmp_path, name, data,
                                                         why):
    result = cli("import", str(_write(tmp_path, data, name)), code=2)
    assert result.stderr.startswith(f"error: {tmp_path / name} is not a CSV or JSON text file: ")
    assert why in result.stderr and result.stderr.count("\n") == 1
    assert _deals(db_path) == []


def test_a_csv_line_over_the_limit_in_characters_is_refused_by_the_reader(tmp_path):
    """The reader counts characters (the first pass bytes): a line of 1 Mi + 1 three-byte
    characters passes the byte check and is refused without reading it whole."""
    from pipectl.errors import UsageError
    from pipectl.transfer.parsing import MAX_LINE, CsvSource

    f = _write(tmp_path, "name\nA\n" + "€" * (MAX_LINE + 1) + "\n")
    src = CsvSource(f, None)
    try:
        with pytest.raises(UsageError, match="line 3 runs over 1,048,576 characters"):
            list(src.rows())
    finally:
        src.close()


CSV = "name,value,owner\nAcme,100,Ann\nGlobex,5.50,Ben\n"


def _piped(cli, *args: str, input: str) -> dict:
    """import ARGS --json with ``input`` on standard input."""
    return json.loads(cli("import", *args, "--json", input=input).stdout)


def test_import_dash_reads_standard_input(cli, db_path):
    out = _piped(cli, "-", input=CSV)
    assert (out["file"], out["format"], out["added"]) == ("<stdin>", "csv", 2)
    assert _deals(db_path) == [("Acme", 10000), ("Globex", 550)]


def test_standard_input_json_is_found_by_its_first_character(cli, db_path):
    rows = json.dumps([{"name": "Acme", "value": 100}, {"name": "Initech", "value": 7}])
    out = _piped(cli, "-", input="\n  " + rows)
    assert (out["format"], out["added"]) == ("json", 2)
    # and --format says what the first character cannot
    out = _piped(cli, "-", "--format", "csv", input="[id],name\n1,Hooli\n")
    assert (out["format"], out["added"]) == ("csv", 1)


def test_pipectls_json_export_through_a_pipe(cli, tmp_path):
    from tests.conftest import Cli

    data = _exported(cli, tmp_path, "--format", "json", "--events").read_text()
    fresh = Cli(tmp_path / "fresh.db")
    out = _piped(fresh, "-", input=data)
    assert (out["format"], out["preset"], out["added"]) == ("json", "pipectl", 3)


def test_standard_input_errors_name_it(cli, db_path):
    result = cli("import", "-", input='name,value\nA,1\n"B,2\nC,3\n', code=1)
    assert "1 bad row of 2 in <stdin>" in result.stderr
    assert cli("import", "-", input="", code=2).stderr == (
        "error: <stdin> is empty: no header row\n")
    assert "<stdin> is not a CSV or JSON text file" in cli("import", "-", input="a\x00",
                                                           code=2).stderr
    assert _deals(db_path) == []


def test_a_pipe_and_dev_stdin_are_read_through_a_copy_that_is_removed(tmp_path):
    """A real pipe: `cat x.csv | pipectl import -` and `pipectl import /dev/stdin`; a
    stream is read more than once (encoding, then rows), from a copy left nowhere after."""
    import subprocess

    from tests.reliability.helpers import env, pipectl_exe

    spool = tmp_path / "tmp"
    spool.mkdir()
    for i, name in enumerate(["-", "/dev/stdin"]):
        db = tmp_path / f"p{i}.db"
        proc = subprocess.run([pipectl_exe(), "import", name, "--json"], input=CSV.encode(),
                              capture_output=True, env=env(db, TMPDIR=str(spool)), timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["added"] == 2
        assert _deals(db) == [("Acme", 10000), ("Globex", 550)]
    assert list(spool.iterdir()) == []


def test_both_file_and_history_from_standard_input_is_a_usage_error(cli, db_path):
    result = cli("import", "-", "--history", "-", input=CSV, code=2)
    assert result.stderr == "error: FILE and --history cannot both be standard input (-)\n"


# ---------------------------------------------------------------- the same file twice


def test_the_same_refless_file_twice_is_refused(cli, db_path, tmp_path, monkeypatch):
    """Issue 11: importing the same ref-less CSV twice doubled every deal."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-03-01T09:30:00Z")
    f = _write(tmp_path, CSV, "deals.csv")
    cli("import", str(f))
    before = _deals(db_path)
    monkeypatch.setenv("PIPECTL_NOW", "2026-03-02T10:00:00Z")
    for args in ([], ["--dry-run"]):
        result = cli("import", str(f), *args, code=1)
        assert result.stderr == (
            f"error: {f} was imported before, at 2026-03-01T09:30:00Z: importing it again "
            "would add its 2 deals without a ref a second time; nothing was imported "
            "(--again imports it anyway)\n")
    # the same bytes under another name, or through a pipe
    copy = _write(tmp_path, CSV, "copy.csv")
    assert f"(as {f})" in cli("import", str(copy), code=1).stderr
    assert "<stdin> was imported before" in cli("import", "-", input=CSV, code=1).stderr
    assert _deals(db_path) == before
    # --again imports it anyway, and is remembered as the latest
    assert cli.json("import", str(f), "--again")["added"] == 2
    assert _deals(db_path) == before * 2
    assert "at 2026-03-02T10:00:00Z" in cli("import", str(f), code=1).stderr


def test_pipectls_own_csv_export_twice_is_refused(cli, tmp_path):
    from tests.conftest import Cli

    f = _exported(cli, tmp_path)
    fresh = Cli(tmp_path / "fresh.db")
    assert fresh.json("import", str(f))["added"] == 3
    assert "was imported before" in fresh("import", str(f), code=1).stderr
    assert len(_deals(tmp_path / "fresh.db")) == 3


def test_a_file_with_refs_imports_again_unchanged(cli, db_path, tmp_path):
    f = _write(tmp_path, "ref,name,value\nR1,Acme,100\nR2,Globex,5\n")
    assert cli.json("import", str(f))["added"] == 2
    again = cli.json("import", str(f))
    assert (again["added"], again["unchanged"]) == (0, 2)
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("SELECT count(*) FROM imports").fetchone() == (0,)
    finally:
        con.close()


def test_a_failed_or_dry_import_is_not_remembered(cli, db_path, tmp_path):
    bad = _write(tmp_path, "name,value\nA,1\nB,ten\n")
    cli("import", str(bad), code=1)
    cli("import", str(bad), code=1)  # the bad row again, not "imported before"
    good = _write(tmp_path, CSV)
    cli("import", str(good), "--dry-run")
    assert cli.json("import", str(good))["added"] == 2


def test_a_pipectl_json_export_imports_again_without_doubling(cli, tmp_path):
    """The JSON export finds its deals again by ref, or by id and creation time: no refusal
    needed, none made."""
    from tests.conftest import Cli

    f = _exported(cli, tmp_path, "--format", "json", "--events")
    fresh = Cli(tmp_path / "fresh.db")
    assert fresh.json("import", str(f))["added"] == 3
    again = fresh.json("import", str(f))
    assert (again["added"], again["unchanged"]) == (0, 3)


def test_the_history_file_from_standard_input(cli, tmp_path):
    from tests.conftest import Cli

    deals = _exported(cli, tmp_path)
    events = tmp_path / "events.csv"
    cli("export", "--events", "-o", str(events))
    fresh = Cli(tmp_path / "fresh.db")
    out = json.loads(fresh("import", str(deals), "--history", "-", "--json",
                           input=events.read_text()).stdout)
    assert (out["added"], out["history_rows"]) == (3, 3)


def test_a_name_without_csv_or_json_is_read_by_its_first_character(cli, tmp_path):
    rows = _write(tmp_path, json.dumps([{"name": "Acme"}]), "deals.txt")
    assert cli.json("import", str(rows))["format"] == "json"
    sheet = _write(tmp_path, "name\nHooli\n", "deals.tsv")
    assert cli.json("import", str(sheet))["format"] == "csv"


def test_standard_input_on_a_terminal_is_refused(monkeypatch):
    import io
    import sys

    from pipectl.errors import UsageError
    from pipectl.transfer import incoming

    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(b"name\nA\n"))
    with pytest.raises(UsageError, match="standard input is a terminal, not a file"), \
            incoming.opened("-"):
        pass


# ---------------------------------------------------------------- fuzzed framing

_FUZZ = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
_CELL = st.text(st.sampled_from(list('ab "\',;|\t=+-@1.é')), max_size=12)
_NOTE = st.builds(lambda a, b: f"{a}\n{b}", _CELL, _CELL)  # one line break: an address


@_FUZZ
@given(width=st.integers(1, 5), data=st.data(), crlf=st.booleans(), last_end=st.booleans())
def test_any_file_a_csv_writer_makes_reads_back_exactly(tmp_path_factory, width, data, crlf,
                                                        last_end):
    """Quote-heavy cells (quotes, delimiters, apostrophes, formula characters, a line break
    each at most), as any CSV writer quotes them: read back row for row, with no framing
    problem, with or without the final line end."""
    import csv
    import io

    from pipectl.transfer.parsing import CsvSource

    rows = data.draw(st.lists(st.lists(st.one_of(_CELL, _NOTE), min_size=width,
                                       max_size=width), min_size=1, max_size=6))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(rows)
    text = out.getvalue()
    if not last_end:
        text = text.rstrip("\r\n")
    f = tmp_path_factory.mktemp("fuzz") / "f.csv"
    f.write_text(text, encoding="utf-8")
    src = CsvSource(f, "utf-8")
    try:
        if src.delimiter != ",":  # the header sniffed: c0 alone has no delimiter
            return
        got = [cells for _, cells in src.rows()]
        assert src.problems == []
    finally:
        src.close()
    expected = [r for r in rows if not (len(r) == 1 and not r[0].strip())]
    assert got == expected


_PIECE = st.sampled_from(['"', '""', ",", ";", "\n", "\r\n", "\r", "a", "B", "1", "12,50",
                          "2024-01-01", "0001-01-01T00:00:00+01:00", "won", "lost", "abc",
                          "'=1", " ", "\t", "é", "\x00", "\ufeff"])
_HEAD = st.lists(st.sampled_from(["name", "value", "stage", "closed", "won", "status",
                                  "created_at", "close_date", "note", "ref", "owner", "x"]),
                 min_size=1, max_size=4, unique=True)


@_FUZZ
@given(head=_HEAD, body=st.lists(_PIECE, max_size=40))
def test_fuzzed_quote_heavy_files_get_a_clear_answer(tmp_path_factory, head, body):
    """Whatever the bytes, import says one thing clearly: imported (0), bad rows (1) or a bad
    file (2); never an internal error, and a refusal writes nothing."""
    from tests.conftest import Cli

    where = tmp_path_factory.mktemp("fuzz")
    f = where / "f.csv"
    f.write_bytes((",".join(head) + "\n" + "".join(body)).encode("utf-8"))
    from pipectl.cli import app

    cli = Cli(where / "p.db")
    result = cli.runner.invoke(app, ["--db", str(cli.db), "import", str(f)])
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr, result.exception)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    if result.exit_code:
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert _deals(where / "p.db") == []


# ---------------------------------------------------------------- the second red-team pass


@pytest.mark.parametrize(("encoding", "data"), [
    ("utf-8", b"\xef\xbb\xbfname,value,company\nAcme deal,100,Acme\n"),
    ("utf-16-le", "\ufeffname,value,company\nAcme deal,100,Acme\n".encode("utf-16-le")),
])
def test_a_byte_order_mark_is_no_part_of_the_first_column_whatever_encoding_is_named(
        cli, db_path, tmp_path, encoding, data):
    """With --encoding utf-8 (or utf-16-le) the mark stayed in the first column's name, so
    `name` was not recognised and every deal was named after its company (exit 0)."""
    f = _write(tmp_path, data, "bom.csv")
    cli("import", str(f), "--encoding", encoding)
    assert _deals(db_path) == [("Acme deal", 10000)]


def test_an_endless_stream_stops_before_the_disk_is_full(cli, db_path, tmp_path, monkeypatch):
    """`(echo name; yes) | pipectl import -` copied standard input to TMPDIR until the disk
    was full. The copy now looks at the room left as it goes (here made to find too little
    after the first MiB) and stops, removing its copy."""
    import tempfile

    from pipectl.transfer import incoming

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    monkeypatch.setattr(incoming, "ROOM_EVERY", 2**20)
    monkeypatch.setattr(incoming, "ROOM_KEPT", 2**62)  # more than any disk has
    stream = "name\n" + "y\n" * (3 * 2**20)
    result = cli("import", "-", input=stream, code=1)
    assert "stopped before the disk is full" in result.stderr, result.stderr
    assert "TMPDIR" in result.stderr
    assert list(spool.iterdir()) == []
    assert _deals(db_path) == []
