"""Promise 9: disk full during a write gives one clear error line, exit 1, and the database
intact (row for row as before, integrity_check ok).

Two ways to run out of room, both in a subprocess running the installed pipectl:
- RLIMIT_FSIZE (a per-process file size limit; SIGXFSZ ignored so the write fails with EFBIG,
  which SQLite reports as an I/O error): works anywhere, as any user.
- A real full file system: a 2 MB tmpfs mounted for the test (ENOSPC, which SQLite reports as
  SQLITE_FULL). Needs the right to mount (root in a container, as in CI); skipped otherwise.
"""

from __future__ import annotations

import resource
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import env, integrity, pipectl_exe
from tests.reliability.test_crash import _base, _csv


def _image(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _limited(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _run(db: Path, args: list[str], preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [pipectl_exe(), *args], env=env(db, PIPECTL_NOW="2026-11-27T04:00:00Z"),
        capture_output=True, text=True, timeout=300, preexec_fn=preexec,
        stdin=subprocess.DEVNULL,
    )


def _assert_clean_failure(r: subprocess.CompletedProcess, *phrases: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert any(p in lines[0] for p in phrases), lines[0]
    assert "nothing was changed" in lines[0]


@pytest.mark.parametrize("limit", [1_000, 200_000])
def test_file_size_limit_during_import(tmp_path, limit):
    """The import's -wal outgrows the limit (at once, or after many rows): clean failure."""
    data = _csv(tmp_path / "rows.csv", 6_000)
    db = _base(tmp_path)
    before = _image(db)
    r = _run(db, ["import", str(data)], preexec=_limited(limit))
    _assert_clean_failure(r, "could not write to the disk", "the disk is full")
    assert _image(db) == before
    assert integrity(db) == "ok"
    # with room again, the same import goes through
    r = _run(db, ["import", str(data)])
    assert r.returncode == 0, r.stderr


def test_file_size_limit_during_a_small_write(tmp_path):
    db = _base(tmp_path)
    before = _image(db)
    for args in (["add", "Nguyễn Văn An", "--value", "10"], ["note", "1", "x" * 2000],
                 ["advance", "1"]):
        r = _run(db, args, preexec=_limited(2_000))
        _assert_clean_failure(r, "could not write to the disk", "the disk is full")
        assert _image(db) == before
    assert integrity(db) == "ok"


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    mount = shutil.which("mount")
    if not mount:
        pytest.skip("no mount command")
    r = subprocess.run([mount, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_really_full_disk_during_import(tmp_path, small_disk):
    data = _csv(tmp_path / "rows.csv", 20_000)
    db = small_disk / "pipeline.db"
    shutil.copyfile(_base(tmp_path), db)
    before = _image(db)
    # leave about 150 kB free: room to open, not to import 20,000 deals
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - 150_000))
    r = _run(db, ["import", str(data)])
    _assert_clean_failure(r, "the disk is full", "could not write to the disk")
    assert _image(db) == before
    assert integrity(db) == "ok"
    # and once there is room again, pipectl carries on
    (small_disk / "filler").unlink()
    r = _run(db, ["add", "After the disk was full"])
    assert r.returncode == 0, r.stderr
