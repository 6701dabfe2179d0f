"""Promises 1 and 3: several pipectl processes on one database.

1. 8 processes each doing advances and notes: every event is there, no "database is locked"
   reaches the user, integrity_check is ok. A writer blocked longer than the busy timeout gets
   "database is busy", exit 75, one line, and has changed nothing: also when the lock is met
   while opening (reading the schema, switching to WAL) or while migrating.
3. First use by several processes at once (creating the file and schema, migrating an old
   one): every process succeeds and each migration is applied once.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import (
    FIXTURES,
    Holder,
    dump,
    env,
    integrity,
    pipectl_exe,
    run,
    tree_state,
)

ROOT = Path(__file__).resolve().parents[2]
APPLICATION_ID = 0x70697065


def _setup(db: Path, workers: int) -> None:
    """Deal 1 is shared by everyone (notes); deal w+2 belongs to worker w (advances)."""
    from tests.conftest import Cli

    cli = Cli(db)
    cli("add", "Shared: Nguyễn Văn An", "--at", "2026-01-01")
    for w in range(workers):
        cli("add", f"Worker {w} Łukasz", "--stage", "meeting", "--prequalified", "known",
            "--at", "2026-01-01")


def _hammer(db: Path, workers: int, rounds: int) -> None:
    _setup(db, workers)
    before = dump(db)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.worker", str(db), str(w), str(rounds),
             str(w + 2), "1"],
            cwd=ROOT, env=env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(workers)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    for w, rep in enumerate(reports):
        assert rep["codes"] == {"0": 2 * rounds}, (w, rep)  # no busy, no refusal, nothing
        assert rep["failures"] == []
    assert integrity(db) == "ok"

    con = sqlite3.connect(db)
    notes = [r[0] for r in con.execute(
        "SELECT text FROM events WHERE deal_id = 1 AND kind = 'note' ORDER BY id")]
    assert sorted(notes) == sorted(f"w{w}-{r}" for w in range(workers) for r in range(rounds))
    for w in range(workers):
        moves = con.execute(
            "SELECT from_stage, to_stage FROM events WHERE deal_id = ? AND kind = 'stage' "
            "ORDER BY id", (w + 2,)).fetchall()
        assert moves == [("meeting", "proposal"), ("proposal", "meeting")] * (rounds // 2)
        stage = con.execute("SELECT stage FROM deals WHERE id = ?", (w + 2,)).fetchone()[0]
        assert stage == ("meeting" if rounds % 2 == 0 else "proposal")
    # history stays in time order per deal: ids (append order) never go back in time
    for (deal,) in con.execute("SELECT id FROM deals"):
        ats = [r[0] for r in con.execute(
            "SELECT at FROM events WHERE deal_id = ? ORDER BY id", (deal,))]
        assert ats == sorted(ats)
    total = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    assert total == len(before["events"]) + workers * 2 * rounds


def test_8_processes_write_at_once_and_nothing_is_lost(tmp_path):
    _hammer(tmp_path / "pipeline.db", workers=8, rounds=24)


@pytest.mark.slow
def test_8_processes_each_200_advances_and_notes(tmp_path):
    _hammer(tmp_path / "pipeline.db", workers=8, rounds=200)


@pytest.mark.slow
def test_8_installed_pipectl_processes_at_once(tmp_path):
    """The same with the installed console script, one process per command."""
    db = tmp_path / "pipeline.db"
    _setup(db, 8)
    rounds = 10
    script = (
        "for r in $(seq 0 {last}); do "
        "if [ $((r % 2)) -eq 0 ]; then t=proposal; else t=meeting; fi; "
        "\"$P\" advance {own} --to $t >/dev/null 2>>{err} || echo \"advance $r $?\" >>{err}; "
        "\"$P\" note 1 \"w{w}-$r\" >/dev/null 2>>{err} || echo \"note $r $?\" >>{err}; "
        "done"
    )
    procs = []
    for w in range(8):
        err = tmp_path / f"err{w}.txt"
        cmd = script.format(last=rounds - 1, own=w + 2, w=w, err=err)
        procs.append(subprocess.Popen(["sh", "-c", cmd], env=env(db, P=pipectl_exe())))
    for p in procs:
        assert p.wait(timeout=600) == 0
    for w in range(8):
        assert (tmp_path / f"err{w}.txt").read_text() == ""
    assert integrity(db) == "ok"
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'note'").fetchone()[0] == 80
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'stage'").fetchone()[0] == 80
    con.close()


# ---------------------------------------------------------------- busy: exit 75


def _busy(db: Path, *args: str, timeout_ms: int = 300) -> subprocess.CompletedProcess:
    start = time.monotonic()
    r = run(db, *args, PIPECTL_BUSY_TIMEOUT_MS=str(timeout_ms))
    elapsed = time.monotonic() - start
    assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "database is busy" in lines[0] and "nothing was changed" in lines[0]
    assert "locked" not in lines[0]
    assert r.stdout == ""
    assert elapsed >= timeout_ms / 1000 * 0.9, "gave up before the busy timeout"
    return r


@pytest.fixture
def pipectl_db(tmp_path) -> Path:
    from tests.conftest import Cli

    db = tmp_path / "pipeline.db"
    cli = Cli(db)
    cli("add", "Nguyễn Văn An", "--value", "100", "--at", "2026-01-01")
    cli("add", "Łukasz Żółć", "--stage", "meeting", "--prequalified", "x", "--at", "2026-01-01")
    return db


WRITES = (
    ("add", "Someone new", "--value", "5"),
    ("note", "1", "called them"),
    ("advance", "2"),
    ("edit", "1", "--value", "200"),
    ("lose", "2", "--reason", "no budget"),
    ("qualify", "1", "--budget"),
    ("rm", "1", "--yes"),
)


def test_a_writer_blocked_past_the_busy_timeout_exits_75_and_changes_nothing(pipectl_db):
    before = dump(pipectl_db)
    with Holder(pipectl_db, "BEGIN IMMEDIATE"):
        for args in WRITES:
            _busy(pipectl_db, *args)
        # readers are never blocked by a writer (WAL)
        r = run(pipectl_db, "list", "--json", PIPECTL_BUSY_TIMEOUT_MS="300")
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)) == 2
    assert dump(pipectl_db) == before
    assert integrity(pipectl_db) == "ok"


def test_a_writer_waits_within_the_busy_timeout(pipectl_db):
    """A lock released before the timeout is waited for: the command succeeds."""
    holder = Holder(pipectl_db, "BEGIN IMMEDIATE")
    proc = subprocess.Popen(
        [pipectl_exe(), "note", "1", "waited"],
        env=env(pipectl_db, PIPECTL_BUSY_TIMEOUT_MS="20000"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.8)
    holder.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert dump(pipectl_db)["events"][-1][3] == "note"


def test_busy_while_migrating_exits_75_and_changes_nothing(tmp_path):
    from pipectl.store import schema

    if schema.VERSION == 1:
        pytest.skip("no migration beyond schema 1 yet")
    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "schema_v1.db", db)
    with Holder(db, "BEGIN IMMEDIATE"):
        before = tree_state(db)
        _busy(db, "list")
        assert tree_state(db)["db"] == before["db"]
    assert not list(tmp_path.glob("*.bak")), "no backup of an upgrade that did not happen"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


def test_busy_while_opening_a_rollback_journal_file_exits_75(tmp_path):
    """An exclusive lock on a (non-WAL) file: met while reading the schema."""
    db = tmp_path / "fresh.db"
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # pipectl's, no tables yet
    con.close()
    before = (tmp_path / "fresh.db").read_bytes()
    with Holder(db, "BEGIN EXCLUSIVE", "SELECT count(*) FROM sqlite_master"):
        _busy(db, "add", "X")
    assert db.read_bytes() == before


def test_busy_while_switching_to_wal_exits_75(tmp_path):
    """A reader holds a shared lock on a rollback-journal file: switching to WAL is blocked."""
    db = tmp_path / "fresh.db"
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.close()
    before = db.read_bytes()
    with Holder(db, "BEGIN", "SELECT count(*) FROM sqlite_master"):
        _busy(db, "list")
    assert db.read_bytes() == before


# ---------------------------------------------------------------- first use at once (3)


_AT_ONCE = (
    "import os, sys, time\n"
    "t = float(sys.argv[1])\n"
    "time.sleep(max(0.0, t - time.time()))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _at_once(db: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start every command at the same wall-clock instant (after all have started up)."""
    go = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_ONCE, str(go), pipectl_exe(), *cmd],
            env=env(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for cmd in commands
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _migrations_applied(db: Path) -> list[tuple[str, int]]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT name, count(*) FROM _sqlite_migrations GROUP BY name ORDER BY name").fetchall()
    con.close()
    return rows


def test_first_use_by_8_processes_at_once(tmp_path):
    from pipectl.store import schema

    db = tmp_path / "new" / "pipeline.db"
    db.parent.mkdir()
    results = _at_once(db, [["add", f"Deal {i} Nguyễn", "--value", str(i)] for i in range(8)])
    for r in results:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 8
    con.close()
    applied = _migrations_applied(db)
    assert len(applied) == schema.VERSION and all(n == 1 for _, n in applied), applied
    assert integrity(db) == "ok"


def test_first_use_of_an_old_database_by_8_processes_at_once(tmp_path):
    """The schema-1 fixture, opened by 8 processes at once: one migrates (after one backup),
    the others wait and find it done."""
    from pipectl.store import schema

    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "schema_v1.db", db)
    results = _at_once(db, [["note", "3", f"note {i}"] for i in range(4)]
                       + [["list", "--status", "all"] for _ in range(4)])
    for r in results:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    applied = _migrations_applied(db)
    assert len(applied) == schema.VERSION and all(n == 1 for _, n in applied), applied
    backups = sorted(p.name for p in tmp_path.glob("*.bak"))
    assert backups == (["old.db.schema1.bak"] if schema.VERSION > 1 else [])
    con = sqlite3.connect(db)
    notes = con.execute("SELECT count(*) FROM events WHERE kind = 'note' AND deal_id = 3")
    assert notes.fetchone()[0] == 4
    con.close()
    assert integrity(db) == "ok"
