"""The installed `pipectl` takes the root's options after the command's name too, and shows
times in the zone TZ names (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("pipectl", path=str(Path(sys.executable).parent)) or shutil.which("pipectl")
pytestmark = pytest.mark.skipif(EXE is None, reason="pipectl is not installed in this environment")


def run(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    e.update(XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path / "home"), COLUMNS="120",
             PIPECTL_NOW="2026-12-10T09:00:00Z", TZ="America/New_York")
    return e


def test_list_db_file_after_the_command(env, tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    run("add", "Only in x.db", "--at", "2026-12-03T09:00", "--db", db, env=env)
    assert [d["name"] for d in json.loads(run("list", "--db", db, "--json", env=env).stdout)] \
        == ["Only in x.db"]
    assert "Only in x.db" in run("list", f"--db={db}", env=env).stdout
    assert not (tmp_path / "data" / "pipectl" / "pipeline.db").exists()  # default untouched
    shown = run("show", "1", "--db", db, env=env).stdout
    assert "2026-12-03 09:00 EST" in shown  # 09:00 New York, as typed
    assert "2026-12-03 14:00 UTC" in run("show", "1", "--db", db, "--utc", env=env).stdout
    assert json.loads(run("show", "1", "--json", "--db", db, env=env).stdout)["created_at"] \
        == "2026-12-03T14:00:00Z"
    missing = run("list", "--db", env=env, code=2)
    assert missing.stderr == "error: Option '--db' requires an argument. (see pipectl --help)\n"
