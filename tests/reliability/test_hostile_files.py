"""Promise 4: a broken or hostile --db path is refused with its own clear one-line message and
exit 1, and the file is left byte for byte as it was (no -wal/-shm/-journal left beside it).

Runs the installed `pipectl` in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.helpers import Holder, run, tree_state

APPLICATION_ID = 0x70697065

# A read command and two write commands: each must be refused the same way.
COMMANDS = (("list", "--status", "all"), ("add", "Nguyễn Văn An", "--value", "10"),
            ("note", "1", "hello"))


@pytest.fixture(scope="module")
def pipectl_db(tmp_path_factory) -> Path:
    """A pipectl database with 400 deals and their events (several pages of each table)."""
    from pipectl.models import NewDeal
    from pipectl.services import deals
    from pipectl.store.db import connect
    from tests.conftest import at

    path = tmp_path_factory.mktemp("template") / "pipeline.db"
    conn = connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    for i in range(1, 401):
        new = NewDeal(
            name=f"Deal {i} Łukasz Nguyễn", currency="EUR",
            value_minor=i * 1000, company=f"Company {i}", note=f"first note {i}",
        )
        deals.add(conn, new, at("2026-01-05"))
    conn.close()
    assert not Path(f"{path}-wal").exists()
    return path


def _copy(src: Path, tmp_path: Path, name: str = "pipeline.db") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _sql(path: Path, *statements: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    for s in statements:
        con.execute(s)
    con.close()


def _refused(db: Path, expected: str, *, commands=COMMANDS, siblings_ok: bool = False) -> None:
    """Every command: exit 1, one line on stderr containing EXPECTED, the file unchanged."""
    before = tree_state(db) if db.is_file() else None
    listing = sorted(os.listdir(db.parent)) if db.parent.is_dir() else None
    for args in commands:
        r = run(db, *args)
        assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("error: "), lines[0]
        assert expected in lines[0], lines[0]
        assert r.stdout == ""
        if before is not None:
            after = tree_state(db)
            if siblings_ok:  # another process has it open: -shm is its shared-memory index
                after.pop("-shm"), before.pop("-shm", None)
            assert after == before, f"{args} changed {db}"
        if listing is not None and not siblings_ok:
            assert sorted(os.listdir(db.parent)) == listing, f"{args} left files beside {db}"


def test_a_directory(tmp_path):
    d = tmp_path / "somedir"
    d.mkdir()
    _refused(d, "is a directory")
    assert list(d.iterdir()) == []


def test_a_path_whose_folder_does_not_exist(tmp_path):
    db = tmp_path / "no" / "such" / "folder" / "pipeline.db"
    _refused(db, "does not exist")
    assert not (tmp_path / "no").exists()


def test_a_symlink_loop(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.symlink_to(b)
    b.symlink_to(a)
    _refused(a, "is a symbolic link that leads nowhere")
    assert a.is_symlink() and b.is_symlink()


def test_a_text_file(tmp_path):
    db = tmp_path / "notes.txt"
    db.write_text("Nguyễn Văn An, 12000 EUR\nnot a database at all\n")
    _refused(db, "it is a text file, not SQLite")


def test_a_png(tmp_path):
    db = tmp_path / "logo.png"
    db.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(random.Random(1).randbytes(2000)))
    _refused(db, "it is a PNG image, not SQLite")


@pytest.mark.parametrize("keep", [50, 4096 + 1000, 0.5])
def test_a_truncated_pipectl_database(pipectl_db, tmp_path, keep):
    db = _copy(pipectl_db, tmp_path)
    data = db.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    db.write_bytes(data[:n])
    _refused(db, "is damaged (")


def test_a_pipectl_database_whose_deals_root_page_is_corrupted(pipectl_db, tmp_path):
    """Garbage over the root page of the deals table: every command meets it."""
    db = _copy(pipectl_db, tmp_path)
    page_size, root = _page_size_and_root(db, "deals")
    _scribble(db, page_size, root)
    _refused(db, "database is damaged (", commands=(
        *COMMANDS, ("show", "3"), ("advance", "200"), ("board",),
    ))


def test_a_pipectl_database_with_a_corrupted_page_in_the_middle(pipectl_db, tmp_path):
    """Garbage over a leaf page in the middle of the deals table: a command that reads the
    deals on it is refused, and no command writes to the damaged file."""
    db = _copy(pipectl_db, tmp_path)
    page_size, root = _page_size_and_root(db, "deals")
    leaf, ids = _middle_leaf(db, page_size, root)
    _scribble(db, page_size, leaf)
    one = str(ids[len(ids) // 2])
    _refused(db, "database is damaged (", commands=(
        ("list", "--status", "all"), ("show", one), ("advance", one),
        ("edit", one, "--value", "5"), ("lose", one, "--reason", "x"),
    ))


def test_a_read_only_file(pipectl_db, tmp_path):
    """chmod a-w is respected even by root (who could write regardless)."""
    db = _copy(pipectl_db, tmp_path)
    db.chmod(0o444)
    try:
        _refused(db, "is read-only (its mode is -r--r--r--)", commands=COMMANDS[1:])
        _reads_without_writing(db)
    finally:
        db.chmod(0o600)


def _reads_without_writing(db: Path) -> None:
    """The commands that only read still work on a file pipectl may not write (issue 11), and
    leave it byte for byte as it was."""
    before = db.read_bytes()
    for args in (("list", "--status", "all"), ("report",), ("export", "--format", "json")):
        r = run(db, *args)
        assert r.returncode == 0, (args, r.stderr)
    assert db.read_bytes() == before


def test_an_immutable_file(pipectl_db, tmp_path):
    """chattr +i: even root may not write. (Skipped where chattr is unavailable.)"""
    db = _copy(pipectl_db, tmp_path)
    chattr = shutil.which("chattr")
    if not chattr or subprocess.run([chattr, "+i", str(db)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        _refused(db, "is read-only (operation not permitted)", commands=COMMANDS[1:])
        _reads_without_writing(db)
    finally:
        subprocess.run([chattr, "-i", str(db)], check=True)


def test_a_database_from_a_newer_pipectl(pipectl_db, tmp_path):
    from pipectl.store import schema

    db = _copy(pipectl_db, tmp_path)
    _sql(db, f"PRAGMA user_version = {schema.VERSION + 1}")
    _refused(db, f"was written by a newer pipectl (schema {schema.VERSION + 1}")


def test_a_database_upgraded_by_a_newer_pipectl_still_in_its_wal(pipectl_db, tmp_path):
    """The newer version number is only in the -wal so far (the file's own header still says
    the old one): the real connection sees it, and the file is refused untouched."""
    from pipectl.store import schema

    db = _copy(pipectl_db, tmp_path)
    newer = schema.VERSION + 1
    with Holder(db, "PRAGMA wal_autocheckpoint = 0", f"PRAGMA user_version = {newer}"):
        assert int.from_bytes(db.read_bytes()[60:64], "big") == schema.VERSION
        _refused(db, f"was written by a newer pipectl (schema {newer}", siblings_ok=True)


def test_a_sqlite_database_that_is_not_pipectls(tmp_path):
    db = tmp_path / "other.db"
    _sql(db, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
         "INSERT INTO customers (name) VALUES ('Nguyễn')")
    _refused(db, "is a SQLite database but not a pipectl one")


def test_a_sqlite_database_in_wal_mode_that_is_not_pipectls(tmp_path):
    """Its tables live only in the -wal file so far: still seen, still refused, untouched."""
    db = tmp_path / "other.db"
    with Holder(db, "PRAGMA journal_mode = WAL", "PRAGMA wal_autocheckpoint = 0",
                "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"):
        assert Path(f"{db}-wal").stat().st_size > 0
        _refused(db, "is a SQLite database but not a pipectl one", siblings_ok=True)
    con = sqlite3.connect(db)
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]
    con.close()


def test_a_sqlite_database_of_another_application(tmp_path):
    db = tmp_path / "other.db"
    _sql(db, "PRAGMA application_id = 1234", "CREATE TABLE t (x)")
    _refused(db, "is a SQLite database of another application")


def test_each_case_has_its_own_message():
    """The messages above are distinct (the assertions use a distinct phrase for each)."""
    phrases = ["is a directory", "does not exist", "it is a text file", "it is a PNG image",
               "is damaged (", "database is damaged (", "is read-only (",
               "was written by a newer pipectl", "but not a pipectl one",
               "of another application"]
    assert len(set(phrases)) == len(phrases)


# ---------------------------------------------------------------- b-tree helpers


def _page_size_and_root(db: Path, table: str) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
    finally:
        con.close()
    return page_size, root


def _page(db: Path, page_size: int, number: int) -> bytes:
    with db.open("rb") as fh:
        fh.seek((number - 1) * page_size)
        return fh.read(page_size)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = 0
    for k in range(9):
        b = buf[i + k]
        if k == 8:
            return (value << 8) | b, i + 9
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i + k + 1
    raise AssertionError("unreachable")  # pragma: no cover


def _middle_leaf(db: Path, page_size: int, root: int) -> tuple[int, list[int]]:
    """A leaf page in the middle of a table b-tree (depth 2), and the rowids on it."""
    page = _page(db, page_size, root)
    assert page[0] == 0x05, "the table should be big enough to have an interior root"
    cells = int.from_bytes(page[3:5], "big")
    offsets = [int.from_bytes(page[12 + 2 * k: 14 + 2 * k], "big") for k in range(cells)]
    children = [int.from_bytes(page[o:o + 4], "big") for o in offsets]
    leaf = children[len(children) // 2]
    body = _page(db, page_size, leaf)
    assert body[0] == 0x0D
    n = int.from_bytes(body[3:5], "big")
    ids = []
    for k in range(n):
        o = int.from_bytes(body[8 + 2 * k: 10 + 2 * k], "big")
        _, o = _varint(body, o)  # payload size
        rowid, _ = _varint(body, o)
        ids.append(rowid)
    assert ids
    return leaf, sorted(ids)


def _scribble(db: Path, page_size: int, number: int, seed: int = 7) -> None:
    garbage = random.Random(seed).randbytes(page_size)
    garbage = b"\x42" + garbage[1:]  # not a valid b-tree page type
    with db.open("r+b") as fh:
        fh.seek((number - 1) * page_size)
        fh.write(garbage)


Check = Callable[[Path], None]
__all__ = ["stat"]
