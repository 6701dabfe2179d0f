"""The header check on open is not fooled by another pipectl writing the file at that moment.

`store.db.connect` reads the file's first 100 bytes before SQLite opens it, and refuses a file
shorter than its header says ("truncated"). Closing the last connection checkpoints: SQLite
writes page 1 (the header, with the new page count) first, then the other pages, growing the
file, then deletes the -wal. A look taken across that moment once paired a new header with an
old size while the -wal was already gone, and a valid database was refused as truncated
(seen once in `test_8_processes_each_200_advances_and_notes`).

The first two tests replay that moment deterministically: another writer's checkpoint is
completed from inside pipectl's own look at the file (between two of its system calls), as the
scheduler did. The last one is the real thing, with processes (slow).
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import time
from pathlib import Path

import pytest

from pipectl.errors import DatabaseError


def _grow(db: Path, notes: int) -> None:
    from pipectl.services import deals
    from pipectl.store.db import connect
    from tests.conftest import at

    conn = connect(db)
    for i in range(notes):
        deals.note(conn, 1, f"note {i} Nguyễn " + "x" * 2000, at=at("2026-01-06"))
    conn.close()  # the last connection: checkpoint, -wal deleted


@pytest.fixture
def states(tmp_path) -> tuple[Path, bytes, bytes]:
    """A pipectl file as it was before another process's commits, and as its checkpoint
    leaves it: several pages longer, with the new page count in its header."""
    from pipectl.models import NewDeal
    from pipectl.services import deals
    from pipectl.store.db import connect
    from tests.conftest import at

    db = tmp_path / "pipeline.db"
    conn = connect(db)
    deals.add(
        conn,
        NewDeal(name="Łukasz Żółć", currency="EUR", value_minor=100),
        at("2026-01-05"),
    )
    conn.close()
    before = db.read_bytes()
    _grow(db, 20)
    after = db.read_bytes()
    assert not Path(f"{db}-wal").exists()
    page_size = int.from_bytes(after[16:18], "big")
    assert len(after) >= len(before) + 5 * page_size
    assert int.from_bytes(after[28:32], "big") * page_size == len(after)
    db.write_bytes(before)
    return db, before, after


def _write_at(db: Path, data: bytes, offset: int = 0) -> None:
    fd = os.open(db, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _notes(conn) -> int:
    return conn.execute("SELECT count(*) FROM events WHERE kind = 'note'").fetchone()[0]


def test_a_checkpoint_landing_between_size_and_header_is_not_damage(states, monkeypatch):
    """The failure seen: the size was taken before another process's checkpoint, the header
    after it, and by then the -wal was gone. The file was whole all along."""

    db, _, after = states
    real_open = pathlib.Path.open
    checkpoints = []

    def open_during_a_checkpoint(self, mode="r", *args, **kwargs):
        if self == db and "r" in mode and not checkpoints:  # pipectl's look at the header
            checkpoints.append(mode)
            _write_at(db, after)  # page 1 first, then the pages that grow the file
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_during_a_checkpoint)
    _opens_whole(db, checkpoints, "the checkpoint was not replayed: pipectl no longer reads so")


def test_a_checkpoint_ending_between_size_and_wal_is_not_damage(states, monkeypatch):
    """The other order: the header and the size are taken while the checkpoint is half done
    (the file still short, its -wal beside it), and the -wal is looked for just after the
    checkpoint finished and deleted it."""

    db, before, after = states
    page_size = int.from_bytes(after[16:18], "big")
    half = len(before) + 2 * page_size
    db.write_bytes(after[:half])  # page 1 (the new header) and the first new pages written
    wal = Path(f"{db}-wal")
    wal.write_bytes(b"")
    real_exists = pathlib.Path.exists
    finished = []

    def exists_as_the_checkpoint_ends(self, *args, **kwargs):
        if str(self) == str(wal) and not finished:
            finished.append(True)
            _write_at(db, after[half:], half)
            wal.unlink()
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "exists", exists_as_the_checkpoint_ends)
    _opens_whole(db, finished, "the end of the checkpoint was not replayed")


def _opens_whole(db: Path, replayed: list, what: str) -> None:
    """pipectl opens ``db`` during the replayed moment (``replayed`` filled), with all 20 notes
    and no damage."""
    from pipectl.store.db import connect

    conn = connect(db)
    try:
        assert replayed, what
        assert _notes(conn) == 20
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_truncated_file_is_refused_at_its_second_look(states, monkeypatch):
    """Waiting for a file to settle costs a truncated file nothing: it looks the same twice."""
    from pipectl.store import db as store_db

    db, _, after = states
    page_size = int.from_bytes(after[16:18], "big")
    db.write_bytes(after[: len(after) - 3 * page_size])
    real_look = store_db._look
    looks = []

    def counted(path):
        looks.append(path)
        return real_look(path)

    monkeypatch.setattr(store_db, "_look", counted)
    before = db.read_bytes()
    with pytest.raises(DatabaseError, match="shorter than its header says: truncated"):
        store_db.connect(db)
    assert len(looks) == 2
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_a_file_that_keeps_changing_while_short_is_refused_in_bounded_time(states, monkeypatch):
    """A short file whose every look differs (never settles) is still refused, after
    HEADER_LOOKS looks and under 0.1 s of sleep, not waited on for ever."""
    from pipectl.store import db as store_db

    db, _, after = states
    db.write_bytes(after)
    page_size = int.from_bytes(after[16:18], "big")
    real_look = store_db._look
    looks = []

    def shifting(path):
        head, size, settling = real_look(path)
        looks.append(size)
        return head, len(after) - page_size - len(looks), settling  # short, never the same

    monkeypatch.setattr(store_db, "_look", shifting)
    start = time.monotonic()
    with pytest.raises(DatabaseError, match="truncated"):
        store_db.connect(db)
    assert len(looks) == store_db.HEADER_LOOKS
    assert time.monotonic() - start < 2.0


# ------------------------------------------------------------------ the real race (slow)


def _writer(db: str, rounds: int, out) -> None:
    from pipectl.errors import PipectlError
    from pipectl.services import deals
    from pipectl.store.db import connect
    from tests.conftest import at

    # What is tested is the look at the header, not the busy timeout: on a slow disk 4
    # writers syncing every commit may wait longer than the default 5 s for each other.
    os.environ["PIPECTL_BUSY_TIMEOUT_MS"] = "120000"
    refused = []
    for i in range(rounds):
        try:
            conn = connect(db)
            deals.note(conn, 1, f"r{i} " + "x" * 2000, at=at("2026-01-06"))
            conn.close()  # often the last connection: a checkpoint that grows the file
        except PipectlError as exc:
            refused.append(str(exc))
    out.put(refused)


def _looker(db: str, stop, out) -> None:
    from pipectl.errors import PipectlError
    from pipectl.store.db import _inspect

    looks, refused = 0, []
    while not stop.is_set():
        looks += 1
        try:
            _inspect(Path(db))
        except PipectlError as exc:
            refused.append(str(exc))
    out.put((looks, refused))


@pytest.mark.slow
def test_header_checks_while_other_processes_checkpoint(states):
    """4 processes write and close (checkpoints growing the file) while 2 others check the
    header in a loop. Before the fix this refused about 1 look in 80,000 as truncated
    (1 to 4 per run of this size); now none."""
    db, _, after = states
    db.write_bytes(after)
    ctx = multiprocessing.get_context("spawn")
    out, stop = ctx.Queue(), ctx.Event()
    writers = [ctx.Process(target=_writer, args=(str(db), 300, out)) for _ in range(4)]
    lookers = [ctx.Process(target=_looker, args=(str(db), stop, out)) for _ in range(2)]
    for p in writers + lookers:
        p.start()
    refused = [msg for _ in writers for msg in out.get(timeout=300)]
    stop.set()
    seen = [out.get(timeout=60) for _ in lookers]
    for p in writers + lookers:
        p.join(timeout=60)
    assert refused == []
    assert [msg for _, msgs in seen for msg in msgs] == []
    assert sum(n for n, _ in seen) > 10_000  # the lookers really looked, many times
    from tests.reliability.helpers import integrity

    assert integrity(db) == "ok"
