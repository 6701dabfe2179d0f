"""A PostgreSQL server for the tests: each test that needs one gets a fresh database, dropped
after the test session.

The server is PIPECTL_TEST_POSTGRES (default: the project machines' own, postgres on
127.0.0.1:5432 with trust authentication). When none is reachable (or psycopg is not
installed) these tests skip with the reason, so the README's test command passes on a laptop
without PostgreSQL; with PIPECTL_REQUIRE_POSTGRES=1 (set by .ci/run) they fail instead: CI
must really run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("PIPECTL_TEST_POSTGRES",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
_created: list[str] = []
_why_not: list[str] = []


def _unavailable(reason: str) -> None:
    if os.environ.get("PIPECTL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PIPECTL_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def admin():  # type: ignore[no-untyped-def]
    """An autocommit superuser connection to the test server (skips or fails without one)."""
    if _why_not:
        _unavailable(_why_not[0])
    try:
        import psycopg
    except ImportError:
        _why_not.append("psycopg is not installed (pip install -e '.[test]')")
        _unavailable(_why_not[0])
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        _why_not.append(f"no PostgreSQL server at {ADMIN_URL} ({str(exc).strip()[:120]})")
        _unavailable(_why_not[0])


def url_of(database: str, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(ADMIN_URL)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    who = user or parts.username or "postgres"
    if password:
        who += f":{password}"
    return urlunsplit((parts.scheme, f"{who}@{host}:{port}", f"/{database}", "", ""))


def new_database() -> str:
    """A fresh, empty database on the test server; its name."""
    name = f"pipectl_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append(name)
    return name


@pytest.fixture
def pg_url() -> str:
    """The URL of a fresh, empty database (no pipectl schema yet)."""
    return url_of(new_database())


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    if not _created or _why_not:
        return
    with admin() as conn:
        for name in _created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
