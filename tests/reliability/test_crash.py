"""Promise 2: a large `pipectl import` killed (SIGKILL) at random moments leaves the database
exactly as it was before the import, and integrity_check is ok. Ctrl-C (SIGINT) does the same,
exits 130 and prints no traceback.

The clock is fixed (PIPECTL_NOW) so a complete import is reproducible: a kill that lands after
the commit (the import had finished) must leave exactly the complete import, never anything
in between. The moments are seeded, so a failure can be replayed.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import env, integrity, pipectl_exe, run

NOW = "2026-11-27T04:00:00Z"


def _csv(path: Path, rows: int, seed: int = 5) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "company", "owner", "value", "currency", "stage"])
        for i in range(rows):
            w.writerow([
                f"Nguyễn Văn {i}", f"Công ty {i % 977} sp. z o.o.",
                rng.choice(["Anna", "Łukasz", "Trần Thị Mai"]),
                f"{rng.randint(1, 10**6)}.{rng.randint(0, 99):02d}", rng.choice(["EUR", "USD"]),
                rng.choice(["prospecting", "qualification"]),
            ])
    return path


def _image(path: Path) -> list[str]:
    """The whole database as SQL text (iterdump): schema, every row of every table."""
    con = sqlite3.connect(path)  # read-write: a -wal left by a killed process is recovered
    try:
        # The schema is stamped with the real clock, not PIPECTL_NOW: when each migration ran
        # (sqlite-utils), and when a new file's default pipeline was made.
        return [re.sub(r"'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'", "'(made)'", line)
                if line.startswith('INSERT INTO "pipeline') else line
                for line in con.iterdump() if "_sqlite_migrations\" VALUES" not in line]
    finally:
        con.close()


def _base(tmp_path: Path) -> Path:
    from tests.conftest import Cli

    db = tmp_path / "base.db"
    cli = Cli(db)
    cli("add", "Existing: Łukasz Żółć", "--value", "12000", "--currency", "EUR",
        "--at", "2026-01-05")
    cli("add", "Existing: Nguyễn Văn An", "--stage", "meeting", "--prequalified", "known",
        "--at", "2026-01-06")
    cli("note", "2", "called", "--at", "2026-01-07")
    return db


def _default_sigint() -> None:
    """Ctrl-C as a terminal delivers it. A test run started in the background of a shell
    without job control (`pytest &`, some CI runners) has SIGINT ignored, and its children
    inherit that: Python then installs no KeyboardInterrupt handler and the import (rightly)
    runs to its end, which is not what these tests are about."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(db: Path, data: Path) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen(
        [pipectl_exe(), "import", str(data)], env=env(db, PIPECTL_NOW=NOW),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        preexec_fn=_default_sigint,
    )
    return proc, time.monotonic()


def _crash_trials(tmp_path: Path, rows: int, kills: int, interrupts: int, seed: int,
                  terms: int = 0, new: bool = False) -> None:
    """``kills`` SIGKILLs, ``interrupts`` SIGINTs and ``terms`` each of SIGTERM and SIGHUP at
    random moments of an import (into a new, empty database when ``new``)."""
    data = _csv(tmp_path / "big.csv", rows)
    base = _base(tmp_path) if not new else tmp_path / "empty.db"
    if new:
        base.write_bytes(b"")  # an empty file: pipectl creates its schema in it
        shutil.copyfile(base, tmp_path / "schema.db")
        r = run(tmp_path / "schema.db", "list", PIPECTL_NOW=NOW)
        assert r.returncode == 0, r.stderr
    before = _image(tmp_path / "schema.db" if new else base)
    # a new file may also be left as it was (empty): the signal came before its schema
    also = [_image(base)] if new else []

    # the complete import, for reference (and its duration, to aim the kills inside it)
    full = tmp_path / "full.db"
    shutil.copyfile(base, full)
    proc, t0 = _start(full, data)
    _, err = proc.communicate(timeout=900)
    duration = time.monotonic() - t0
    assert proc.returncode == 0, err
    complete = _image(full)
    assert len(complete) > len(before) + rows

    rng = random.Random(seed)
    aim = duration  # where the import's end is expected; shrinks if an import proves quicker
    landed = []
    plan = ([signal.SIGKILL] * kills + [signal.SIGINT] * interrupts
            + [signal.SIGTERM, signal.SIGHUP] * terms)
    for k, sig in enumerate(plan):
        # A signal meant for mid-import can come too late when this run is quicker than the
        # reference (a loaded machine made the reference slow). That outcome is checked like
        # any other, then the trial is repeated aimed earlier, so every planned signal is
        # eventually sent while the import is still at work.
        for attempt in range(_ATTEMPTS):
            outcome = _trial(tmp_path / f"trial{k}.{attempt}.db", base, data, sig,
                             rng.uniform(0.05, 0.85) * aim, before, complete,
                             check_after=(k == 0 and attempt == 0), also=also)
            if outcome == "before":
                break
            aim *= 0.5
        landed.append(outcome)
    assert landed.count("before") == len(plan), landed  # the signals landed mid-import


_ATTEMPTS = 5


def _trial(db: Path, base: Path, data: Path, sig: signal.Signals, delay: float,
           before: list[str], complete: list[str], check_after: bool,
           also: list[list[str]] | None = None) -> str:
    """One import sent `sig` after `delay` seconds. Returns "before" (the database is exactly
    as before) or "complete" (the signal came after the commit: all of the import)."""
    shutil.copyfile(base, db)
    proc, t0 = _start(db, data)
    time.sleep(max(0.0, delay - (time.monotonic() - t0)))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL or proc.returncode == 0, proc.returncode
    elif proc.returncode == -sig:
        # the signal beat Python's start-up or came during its shutdown: the process died
        # of it silently (a shell shows 128 + its number); the checks below still apply
        assert err == "", err
    else:
        code = 130 if sig == signal.SIGINT else 128 + sig
        said = "interrupted" if sig == signal.SIGINT else f"interrupted by {sig.name}"
        assert proc.returncode in (code, 0), (proc.returncode, err)
        if proc.returncode == code:
            lines = err.strip().splitlines()
            assert lines and lines[-1].startswith(f"error: {said}"), err
    what = f"{db.name} ({sig.name} at {delay:.2f}s, exit {proc.returncode})"
    assert integrity(db) == "ok", what
    image = _image(db)
    if image == before or image in (also or []):
        assert proc.returncode != 0, f"{what}: said it imported, imported nothing"
        if proc.returncode > 0:
            assert "nothing was changed" in err, err
        outcome = "before"
    else:  # the signal came after the commit: all of it, never part of it
        assert image == complete, f"{what}: a partial import"
        if proc.returncode > 0:
            assert "after the change was saved" in err, err
        outcome = "complete"
    if check_after:  # and pipectl works on it afterwards
        r = run(db, "list", "--status", "all", "--limit", "1")
        assert r.returncode == 0, r.stderr
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return outcome


def test_import_killed_or_interrupted_leaves_the_database_as_before(tmp_path):
    _crash_trials(tmp_path, rows=15_000, kills=2, interrupts=1, seed=2, terms=1)


def test_import_into_a_new_database_interrupted_says_nothing_was_changed(tmp_path):
    """Creating the schema of a new file is not "the change": Ctrl-C, SIGTERM or SIGHUP
    mid-import into a new database once said "interrupted after the change was saved" while
    the database held no deal."""
    _crash_trials(tmp_path, rows=15_000, kills=0, interrupts=1, seed=3, terms=1, new=True)


@pytest.mark.slow
def test_large_import_killed_at_random_moments(tmp_path):
    _crash_trials(tmp_path, rows=200_000, kills=4, interrupts=1, seed=20261127)


def test_ctrl_c_at_any_moment_of_a_command_is_one_line_and_130(tmp_path):
    """SIGINT while pipectl loads its modules, parses, or writes: exit 130 with one line (or 0
    if it had finished), never a traceback, and the database as before (or fully imported).

    (Not covered: the first few milliseconds, while the Python interpreter itself starts and
    before pipectl's entry point is loaded; see docs/reliability.md.)"""
    data = _csv(tmp_path / "rows.csv", 4_000)
    base = _base(tmp_path)
    before = _image(base)
    full = tmp_path / "full.db"
    shutil.copyfile(base, full)
    proc, _ = _start(full, data)
    assert proc.wait(timeout=300) == 0
    complete = _image(full)
    rng = random.Random(130)
    for k in range(6):
        db = tmp_path / f"c{k}.db"
        shutil.copyfile(base, db)
        proc, t0 = _start(db, data)
        time.sleep(max(0.0, rng.uniform(0.08, 0.9) - (time.monotonic() - t0)))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        if proc.returncode == -signal.SIGINT:
            # the signal beat Python's own start-up, or came during its shutdown (a loaded
            # machine): the process died of it silently (a shell shows 130)
            assert err == "", err
            assert _image(db) in (before, complete)
            continue
        assert proc.returncode in (0, 130), (proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip().splitlines()[-1].startswith("error: interrupted"), err
        if "nothing was changed" in err:
            assert _image(db) == before
        assert integrity(db) == "ok"


def test_a_signal_as_a_command_ends_is_never_a_traceback_or_a_wrong_exit(tmp_path):
    """Found by the second red-team pass: SIGTERM or SIGHUP just after a command printed its
    result reached Python's shutdown (a traceback from its threading module) or Typer's own
    Ctrl-C handling (exit 130, nothing said). Once the command is over such a signal is
    ignored; just before, it is the command's interruption, told as such."""
    db = tmp_path / "p.db"
    assert run(db, "add", "x").returncode == 0
    rng = random.Random(7)
    codes = []
    for k in range(30):
        sig = (signal.SIGTERM, signal.SIGHUP)[k % 2]
        proc = subprocess.Popen([pipectl_exe(), "--db", str(db), "db", "path"],
                                env=env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, bufsize=0)
        assert proc.stdout is not None
        proc.stdout.read(1)  # it has printed
        time.sleep(rng.choice([0, 0.0005, 0.001, 0.002]))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        text = err.decode()
        assert "Traceback" not in text, text
        assert proc.returncode in (0, 128 + sig, -sig), (proc.returncode, text)
        if proc.returncode == 128 + sig:
            assert text.startswith(f"error: interrupted by {sig.name}"), text
        codes.append(proc.returncode)
    assert 0 in codes, codes  # most land after the command: ignored, exit 0
