"""Fuzzed files for `pipectl import` (issue 11): CSV files whose cells are quote-heavy (the
1,000 quotes before =1 that once broke export), cut short, left with an unterminated quote,
or holding dates at the edges of the calendar and money at the edges of its range; and
pipectl's own exports cut at random bytes. Every import must end in a result or one clear
error (exit 0, 1 or 2), never an internal error, and a failed import changes nothing
(``Runner.check``). A cut export is never taken for a whole one.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import dump
from tests.reliability.test_fuzz import CALENDAR_EDGES, MONEY_EDGES, SETTINGS, Runner
from tests.reliability.test_fuzz import runner as runner  # a fixture
from tests.reliability.test_fuzz import template as template  # a fixture

QUOTES = [
    '"' * 1000 + "=1", "'" * 1000 + "=1", "'" * 1998 + "=1", '"' * 999, "'" + '"' * 500,
    '=HYPERLINK("x")', "'=1", "''=1", "@SUM(A1)", "+1", "-1", "\t=1", "\r=1",
    'a"b', '"quoted"', '""', '"', "a,b", "a;b", "line\nbreak", "x\r\ny", ",\n,\n,",
]
COLUMNS = ["name", "company", "value", "currency", "stage", "owner", "close", "created",
           "closed", "won", "notes", "ref", "probability", "email"]

cell = st.one_of(
    st.sampled_from(QUOTES + CALENDAR_EDGES + MONEY_EDGES),
    st.text(max_size=20),
    st.text(alphabet='"\',=;\n\r\t+-@', max_size=40),
    st.integers(-(10**16), 10**16).map(str),
    st.dates().map(str),
)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@st.composite
def csv_text(draw) -> str:
    """A CSV file: a header of real column names, rows of hostile cells (quoted as CSV would
    or left raw), and now and then a mangled ending."""
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6, unique=True))
    if "name" not in header and draw(st.booleans()):
        header.insert(0, "name")
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(cell) for _ in header]
        lines.append(",".join(_quote(c) if draw(st.booleans()) else c for c in cells))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    ending = draw(st.sampled_from(["whole", "whole", "cut", "open quote"]))
    if ending == "cut" and len(text) > 2:
        text = text[: draw(st.integers(1, len(text) - 1))]
    elif ending == "open quote":
        text += '"' + draw(st.text(max_size=30))
    return text


@settings(max_examples=120, **SETTINGS)
@given(text=csv_text())
def test_fuzzed_csv_files_import_or_are_refused_cleanly(runner, text):
    path = runner.workdir / "fuzz.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_import(runner, [str(path), "--currency", "EUR"])
    _check_import(runner, [str(path), "--dry-run"])


@pytest.mark.slow
@settings(max_examples=800, **SETTINGS)
@given(text=csv_text())
def test_fuzzed_csv_files_import_or_are_refused_cleanly_long(runner, text):
    path = runner.workdir / "fuzz.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_import(runner, [str(path), "--currency", "EUR"])


def _check_import(runner: Runner, args: list[str]) -> int:
    """`import ARGS` on a fresh copy of the template: exit 0, 1 or 2; no internal error; on
    failure the database as before and the last line an ``error:``; integrity ok. Returns how
    many deals the import added. (An import's refusal lists its bad rows before that line.)"""
    from pipectl.cli import app

    runner.n += 1
    db = runner.workdir / f"i{runner.n}.db"
    db.write_bytes(runner.template.read_bytes())
    before, deals = dump(db), _deal_count(db)
    r = runner.runner.invoke(app, ["--db", str(db), "import", *args], catch_exceptions=True)
    err = r.stderr if r.stderr_bytes is not None else ""
    where = f"import {args!r} -> {r.exit_code}\nstdout: {r.stdout[:500]}\nstderr: {err[:800]}"
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"{where}\nexception: {r.exception!r}"
    assert r.exit_code in (0, 1, 2), where
    assert "Traceback" not in r.stdout + err and "internal error" not in err, where
    if r.exit_code:
        assert dump(db) == before, f"a failed import changed the database\n{where}"
        assert err.strip().splitlines()[-1].startswith("error: "), where
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
    finally:
        con.close()
    added = _deal_count(db) - deals
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return added if r.exit_code == 0 else -1


def _deal_count(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM deals").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def exports(template: Path, tmp_path_factory) -> dict[str, bytes]:
    """pipectl's own exports of the fuzz template, with a quote-heavy note added."""
    from tests.conftest import Cli

    folder = tmp_path_factory.mktemp("exports")
    db = folder / "src.db"
    db.write_bytes(template.read_bytes())
    cli = Cli(db)
    cli("note", "1", "'" * 1000 + "=1", "--at", "2026-01-12")
    cli("add", '"' * 500 + "=1", "--company", "'=SUM(A1)", "--at", "2026-01-13")
    out = {}
    for name, args in {"deals.csv": ["--format", "csv"],
                       "events.csv": ["--format", "csv", "--events"],
                       "all.json": ["--format", "json", "--events"]}.items():
        cli("export", *args, "-o", str(folder / name))
        out[name] = (folder / name).read_bytes()
    return out


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_a_cut_export_is_never_imported_as_whole(runner, exports, data):
    """pipectl's own export cut at a random byte: refused (or, for a deals CSV cut exactly at
    the end of a row, imported as the rows it holds, which is all it says it has). Never more
    deals than the cut file holds, never an internal error."""
    name = data.draw(st.sampled_from(sorted(exports)))
    whole = exports[name]
    cut = data.draw(st.integers(1, len(whole) - 1))
    path = runner.workdir / f"cut-{name}"
    path.write_bytes(whole[:cut])
    added = _check_import(runner, [str(path)])
    dropped = whole[cut:]
    if name == "all.json" and dropped.strip():
        assert added == -1, f"a JSON export cut at {cut} of {len(whole)} bytes was imported"
    if name != "all.json" and added > 0:
        # only a cut exactly at a row's end reads as whole (and imports just those rows; a
        # cut inside the header row leaves a file of no rows, which imports nothing)
        # (a cut between a row's \r and \n leaves a row ended by a bare \r: still whole)
        assert whole[:cut].endswith((b"\r\n", b"\r")) or not dropped.strip(b"\r\n"), \
            f"{name} cut mid-row at {cut} was imported"


def test_a_deals_export_cut_between_cr_and_lf_imports_the_rows_it_holds(runner, exports):
    """The case CI's random draw found (stop 18): a cut after a row's \r and before its \n.
    The file then ends in a row ended by a bare \r, which CSV reads as a whole row: it imports
    that one row (all the file says it has), not a row more, and nothing fails."""
    whole = exports["deals.csv"]
    first_row_end = whole.index(b"\r\n", whole.index(b"\r\n") + 2)
    path = runner.workdir / "cut-cr.csv"
    path.write_bytes(whole[: first_row_end + 1])
    assert _check_import(runner, [str(path)]) == 1


def test_the_quote_heavy_exports_round_trip(exports, tmp_path):
    """The same exports, whole, import back with the quote-heavy texts intact."""
    from tests.conftest import Cli

    path = tmp_path / "all.json"
    path.write_bytes(exports["all.json"])
    db = tmp_path / "back.db"
    Cli(db)("import", str(path))
    back = json.loads(exports["all.json"])
    assert _deal_count(db) == len(back["deals"])
    con = sqlite3.connect(db)
    try:
        texts = {r[0] for r in con.execute("SELECT text FROM events WHERE kind = 'note'")}
        names = {r[0] for r in con.execute("SELECT name FROM deals")}
    finally:
        con.close()
    assert "'" * 1000 + "=1" in texts
    assert '"' * 500 + "=1" in names
