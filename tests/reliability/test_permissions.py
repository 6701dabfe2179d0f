"""Promise 7: the database file is created with mode 0600 and a folder pipectl creates with
0700, whatever the umask; its -wal/-shm files and its backups are 0600 too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.reliability.helpers import Holder, env, pipectl_exe


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _run_with_umask(umask: int, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [pipectl_exe(), *args], env=env(None, **extra), capture_output=True, text=True,
        timeout=60, preexec_fn=lambda: os.umask(umask), stdin=subprocess.DEVNULL,
    )


def test_database_file_is_0600_even_with_umask_0(tmp_path):
    db = tmp_path / "pipeline.db"
    r = _run_with_umask(0, "--db", str(db), "add", "Nguyễn Văn An", "--value", "10")
    assert r.returncode == 0, r.stderr
    assert _mode(db) == 0o600


def test_wal_and_shm_files_are_0600(tmp_path):
    db = tmp_path / "pipeline.db"
    assert _run_with_umask(0, "--db", str(db), "add", "A").returncode == 0
    # keep a connection open elsewhere so the -wal/-shm files stay after pipectl exits
    with Holder(db, "SELECT count(*) FROM deals"):
        r = _run_with_umask(0, "--db", str(db), "note", "1", "called")
        assert r.returncode == 0, r.stderr
        for suffix in ("-wal", "-shm"):
            assert _mode(Path(f"{db}{suffix}")) == 0o600, suffix


def test_default_folder_is_created_0700(tmp_path):
    data_home = tmp_path / "xdg"
    data_home.mkdir()
    r = _run_with_umask(0, "add", "Łukasz", XDG_DATA_HOME=str(data_home), HOME=str(tmp_path))
    assert r.returncode == 0, r.stderr
    folder = data_home / "pipectl"
    assert _mode(folder) == 0o700
    assert _mode(folder / "pipeline.db") == 0o600


def test_a_backup_is_0600(tmp_path):
    db = tmp_path / "pipeline.db"
    assert _run_with_umask(0, "--db", str(db), "add", "A").returncode == 0
    copy = tmp_path / "copy.db"
    r = _run_with_umask(0, "--db", str(db), "db", "backup", str(copy))
    assert r.returncode == 0, r.stderr
    assert _mode(copy) == 0o600


def test_an_existing_file_keeps_its_mode(tmp_path):
    """pipectl never loosens nor tightens a file the user already has."""
    db = tmp_path / "pipeline.db"
    assert _run_with_umask(0, "--db", str(db), "add", "A").returncode == 0
    db.chmod(0o640)
    assert _run_with_umask(0, "--db", str(db), "add", "B").returncode == 0
    assert _mode(db) == 0o640


def test_a_new_database_through_a_dangling_symlink_is_0600(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "real" / "pipeline.db")
    r = _run_with_umask(0o022, "--db", str(link), "add", "A")
    assert r.returncode == 0, r.stderr
    assert _mode(tmp_path / "real" / "pipeline.db") == 0o600
    assert link.is_symlink()
