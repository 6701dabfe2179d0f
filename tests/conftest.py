"""Shared fixtures: a temp database path, a CliRunner wrapper that asserts exit codes,
and a fixed clock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from typer.testing import CliRunner

# Local runs explore new random inputs every time; CI (CI=true) replays a fixed, derandomized
# set so that a submission's result does not depend on luck, and with no per-example deadline,
# so that a stall of a loaded CI machine is not a failure. Fuzz failures found locally are
# fixed and kept as explicit regression tests.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
if not REAL_DATA.is_dir():  # CI clones elsewhere with shared/ beside the clone
    REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the user's real data directory or depend on the caller's env."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("PIPECTL_DB", "PIPECTL_NOW", "PIPECTL_CURRENCY", "PIPECTL_BUSY_TIMEOUT_MS",
                "PIPECTL_PIPELINE"):
        monkeypatch.delenv(var, raising=False)
    # who the tests' events are recorded as (services.identity), whoever runs them
    monkeypatch.setenv("PIPECTL_USER", "tester")
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pipeline.db"


@pytest.fixture
def conn(db_path: Path):
    from pipectl.store.db import connect

    c = connect(db_path)
    yield c
    c.close()


def at(text: str) -> datetime:
    """A fixed moment for store-level tests: at('2026-01-05') or at('2026-01-05T10:00')."""
    from pipectl.values import parse_moment

    return parse_moment(text)


class Cli:
    """Runs pipectl in-process against one temp database."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Any:
        from pipectl.cli import app

        result = self.runner.invoke(app, ["--db", str(self.db), *args], input=input)
        if result.exit_code != code:
            raise AssertionError(
                f"pipectl {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout: {result.stdout}\nstderr: {getattr(result, 'stderr', '')}\n"
                f"exception: {result.exception!r}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(db_path: Path) -> Cli:
    return Cli(db_path)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"the real CRM exports are not at {REAL_DATA}")
    return REAL_DATA


Factory = Callable[..., int]
__all__ = ["UTC", "Cli", "at", "os"]
