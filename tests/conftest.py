"""Shared fixtures: a temp database (a SQLite file, or in tests/cli and tests/store a
PostgreSQL database too: see tests/engines.py), a CliRunner wrapper that asserts exit codes,
and a fixed clock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from tests import engines

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
    # times are shown in the local zone (pipectl.localtime): the tests' is UTC unless a test
    # sets TZ itself
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("PIPECTL_UTC", raising=False)
    monkeypatch.setattr("pipectl.localtime._utc", False)


@pytest.fixture
def engine() -> str:
    """The engine of the test's database: SQLite, unless tests/cli's or tests/store's
    conftest parametrizes it over both (engines.parametrize_engine)."""
    return "sqlite"


@pytest.fixture
def databases(engine: str, tmp_path: Path) -> Iterator[engines.Databases]:
    made = engines.Databases(engine, tmp_path)
    yield made
    made.close()


@pytest.fixture
def new_db(databases: engines.Databases) -> Callable[..., engines.Target]:
    """new_db("other.db"): another new, empty database of the test's engine."""
    return databases.new


@pytest.fixture
def db_at(databases: engines.Databases) -> Callable[[str], engines.Target]:
    """db_at("a.db"): the test's database of that name, the same each time it is asked for
    (tmp_path/a.db on SQLite)."""
    return databases.at


@pytest.fixture
def db_path(databases: engines.Databases) -> engines.Target:
    """The test's database: tmp_path/pipeline.db on SQLite (not created yet), the URL of a
    fresh, empty database on PostgreSQL."""
    return databases.new("pipeline.db")


@pytest.fixture
def conn(db_path: engines.Target):
    c = engines.connect(db_path)
    yield c
    c.close()


def at(text: str) -> datetime:
    """A fixed moment for store-level tests: at('2026-01-05') or at('2026-01-05T10:00')."""
    from pipectl.values import parse_moment

    return parse_moment(text)


class Cli:
    """Runs pipectl in-process against one temp database (a file's path or a server's URL)."""

    def __init__(self, db: engines.Target,
                 new_db: Callable[..., engines.Target] | None = None) -> None:
        self.db = db
        self.runner = CliRunner()
        self._new_db = new_db

    @property
    def engine(self) -> str:
        return engines.engine_of(self.db)

    def another(self, name: str) -> Cli:
        """A Cli on another new database of the same engine (``name``: the file's)."""
        if self._new_db is None:
            return Cli(Path(self.db).parent / name)
        return Cli(self._new_db(name), self._new_db)

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
def cli(db_path: engines.Target, new_db: Callable[..., engines.Target]) -> Cli:
    return Cli(db_path, new_db)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"the real CRM exports are not at {REAL_DATA}")
    return REAL_DATA


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    engines.mark_postgres_findings(items)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """The server databases the tests made (emptied after each for the next) are dropped."""
    yield
    engines.drop_all_created()


Factory = Callable[..., int]
__all__ = ["UTC", "Cli", "at", "os"]
