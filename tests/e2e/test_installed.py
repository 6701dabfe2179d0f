"""The installed `pipectl` console script, run in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import shutil
import stat
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
    e["XDG_DATA_HOME"] = str(tmp_path / "data")
    e["HOME"] = str(tmp_path / "home")
    e["COLUMNS"] = "120"
    return e


def test_daily_flow_on_the_default_database(env, tmp_path: Path) -> None:
    assert run("add", "Łukasz Wróblewski", "--value", "1,200.50", "--currency", "PLN",
               "--at", "2026-03-01", env=env).stdout == (
        "Added deal 1: Łukasz Wróblewski (prospecting)\n")
    run("advance", "1", "--at", "2026-03-02", env=env)
    run("qualify", "1", "--location", "--budget", "--authority", "--need", "--at", "2026-03-03",
        env=env)
    run("advance", "1", "--to", "demo", "--at", "2026-03-04", env=env)
    deals = json.loads(run("list", "--json", env=env).stdout)
    assert [(d["id"], d["stage"], d["value"], d["currency"]) for d in deals] == [
        (1, "meeting", "1200.50", "PLN")]
    folder = tmp_path / "data" / "pipectl"
    db = folder / "pipeline.db"
    assert db.is_file()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_env_var_and_flag_choose_the_database(env, tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    run("--db", str(one), "add", "A", env=env)
    run("add", "B", env={**env, "PIPECTL_DB": str(two)})
    names = lambda p: [d["name"] for d in json.loads(  # noqa: E731
        run("--db", str(p), "list", "--json", env=env).stdout)]
    assert names(one) == ["A"] and names(two) == ["B"]


def test_demo_does_not_touch_the_users_database(env, tmp_path: Path) -> None:
    mine = tmp_path / "mine.db"
    run("--db", str(mine), "add", "My only deal", env=env)
    before = mine.read_bytes()
    out = run("--db", str(mine), "demo", env=env).stdout
    assert "Open pipeline:" in out and "Demo database with 50 deals" in out
    demo = tmp_path / "data" / "pipectl" / "demo.db"
    assert demo.is_file()
    assert mine.read_bytes() == before
    deals = json.loads(run("--db", str(demo), "list", "--status", "all", "--json",
                           env=env).stdout)
    assert len(deals) == 50  # 40 in the default pipeline, 10 in "Agency retainers"
    assert {d["pipeline"] for d in deals} == {"default", "Agency retainers"}
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    assert {d["currency"] for d in deals} == {"EUR", "USD"}
    assert any("ễ" in d["contact"] for d in deals) and any("ł" in d["contact"] for d in deals)
    # a second run replaces the demo file; a file that is not a demo is refused
    run("demo", env=env)
    err = run("demo", "--path", str(mine), env=env, code=1).stderr
    assert "is not a pipectl demo database" in err
    assert mine.read_bytes() == before


def test_errors_exit_codes_and_no_traceback(env, tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    assert run("--db", db, "show", "7", env=env, code=1).stderr == (
        "error: no deal with id 7 (pipectl list --status all shows them)\n")
    assert "unknown stage" in run("--db", db, "add", "X", "--stage", "nope", env=env,
                                  code=2).stderr
    assert "No such option" in run("--db", db, "list", "--bogus", env=env, code=2).stderr
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    err = run("--db", str(text_file), "list", env=env, code=1).stderr
    assert "not a pipectl database" in err
    assert text_file.read_text() == "hello"


def test_version_help_and_module_entry(env) -> None:
    from pipectl import __version__

    assert run("--version", env=env).stdout == f"pipectl {__version__}\n"
    assert "Commands:" in run("--help", env=env).stdout
    proc = subprocess.run([sys.executable, "-m", "pipectl", "--version"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.stdout == f"pipectl {__version__}\n"


def test_forecasting_commands_on_the_demo(env, tmp_path: Path) -> None:
    """calibrate, forecast --range and --backtest as installed (numpy comes with pipectl): the
    same seed gives the same bytes, and the figures hang together."""
    demo = tmp_path / "demo.db"
    run("demo", "--path", str(demo), env=env)
    cal = json.loads(run("--db", str(demo), "calibrate", "--json", env=env).stdout)
    default = next(p for p in cal["pipelines"] if p["pipeline"] == "default")
    for s in default["stages"]:
        assert s["won"] + s["lost"] == s["decided"]
        if s["learned"] is not None:
            assert s["decided"] >= 10
            assert abs(s["learned"] - s["won"] / s["decided"]) < 1e-6
            low, high = s["interval_90"]
            assert low <= s["learned"] <= high
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    args = ("--db", str(demo), "forecast", "--range", "--quarter", "--runs", "2000", "--json",
            "--as-of", today)
    first = run(*args, env=env).stdout
    assert run(*args, env=env).stdout == first
    out = json.loads(first)
    assert [p["state"] for p in out["periods"]] == ["current", "future", "future"]
    for p in out["periods"]:
        for f in p["figures"]:
            p10, p50, p90 = (float(f[k]) for k in ("p10", "p50", "p90"))
            assert 0 <= p10 <= p50 <= p90
    other = run("--db", str(demo), "forecast", "--range", "--quarter", "--runs", "2000",
                "--seed", "2", "--json", "--as-of", today, env=env).stdout
    assert other != first  # the draws follow the seed
    back = json.loads(run("--db", str(demo), "forecast", "--backtest", "--runs", "500",
                          "--json", env=env).stdout)
    for s in back["scores"]:
        assert 0 <= s["inside"] <= s["periods"]
    bad = run("--db", str(demo), "forecast", "--range", "--runs", "5", env=env, code=2)
    assert bad.stderr.startswith("error: --runs 5")
