"""`pipectl note ID -` through the installed console script: a multi-line note piped in
keeps its lines, in the history, the export and the log."""

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

NOTE = "Meeting with Minh Trần\n\n- budget approved: 40k\n- start in January\n"


def run(*args: str, env: dict[str, str], stdin: str | None = None, code: int = 0) -> str:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=60,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout if code == 0 else proc.stderr


def test_a_piped_note_keeps_its_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), TZ="UTC",
               PIPECTL_NOW="2026-12-07T10:00:00Z", PIPECTL_USER="tester")
    db = str(tmp_path / "p.db")
    run("--db", db, "add", "Sao Mai", "--at", "2026-12-01", env=env)
    assert run("--db", db, "note", "1", "-", "--next", "send the contract", "--due", "fri",
               env=env, stdin=NOTE) == "Noted on deal 1; next: send the contract (due 2026-12-11)\n"
    shown = json.loads(run("--db", db, "show", "1", "--json", env=env))
    assert shown["events"][-1]["text"] == NOTE.strip()
    assert (shown["next_action"], shown["next_due"]) == ("send the contract", "2026-12-11")
    exported = json.loads(run("--db", db, "export", "--events", "--format", "json", env=env))
    assert NOTE.strip() in [e.get("text") for e in _events(exported)]
    log = json.loads(run("--db", db, "log", "--json", env=env))
    assert log["events"][0]["text"] == NOTE.strip()
    assert "standard input is empty" in run("--db", db, "note", "1", "-", env=env, stdin="",
                                            code=2)
    assert run("--db", db, "done", "1", env=env) == \
        "Deal 1: done: send the contract; no next step logged now\n"


def _events(exported: dict) -> list[dict]:
    return [e for deal in exported["deals"] for e in deal["events"]]


def test_a_note_with_standard_input_closed_is_refused(tmp_path: Path) -> None:
    """`pipectl note 1 - <&-`: Python starts with sys.stdin None; a usage error, not an
    internal one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    env.update(HOME=str(tmp_path), PIPECTL_NOW="2026-12-07T10:00:00Z")
    db = str(tmp_path / "p.db")
    run("--db", db, "add", "Sao Mai", "--at", "2026-12-01", env=env)
    proc = subprocess.run([EXE, "--db", db, "note", "1", "-"], capture_output=True, text=True,
                          env=env, timeout=60, stdin=None, preexec_fn=lambda: os.close(0))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: note: there is no standard input to read")
