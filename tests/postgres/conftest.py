"""A PostgreSQL server for the tests: each test that needs one gets a fresh database, dropped
after the test session (tests/conftest.py's _drop_test_databases).

The server and what happens without one (skip, or fail under PIPECTL_REQUIRE_POSTGRES=1) are
tests/engines.py's, which the CLI and store suites share to run on both engines.
"""

from __future__ import annotations

import pytest

from tests.engines import ADMIN_URL, admin, new_database, url_of

__all__ = ["ADMIN_URL", "admin", "new_database", "url_of"]


@pytest.fixture
def pg_url() -> str:
    """The URL of a fresh, empty database (no pipectl schema yet)."""
    return url_of(new_database())
