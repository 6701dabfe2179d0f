"""The two engines a pipeline lives on, for the tests: a SQLite file and a PostgreSQL server.

The CLI and store suites (tests/cli, tests/store) run each test that uses a database (through
the ``engine`` fixture: ``db_path``, ``conn``, ``cli``, ``new_db``) once per engine, with ids
such as ``test_x[sqlite]`` and ``test_x[postgres]`` (issue 14's differential tests). A test
that by its nature concerns a file (it opens the file with sqlite3 to damage it, checks its
mode, its -wal, its PRAGMAs, a path in a message) is marked ``@pytest.mark.sqlite_only(why)``
and runs on SQLite alone.

The server is PIPECTL_TEST_POSTGRES (default: the project machines' own, postgres on
127.0.0.1:5432 with trust authentication). When none is reachable (or psycopg is not
installed) the tests that need one skip with the reason, so the README's test command passes
on a laptop without PostgreSQL; with PIPECTL_REQUIRE_POSTGRES=1 (set by .ci/run) they fail
instead: CI must really run them.

Each test (and each hypothesis example that asks for one) gets an empty database on the
server: a new one, or one an earlier test used, emptied (its schema dropped: see _pool for
the measurements); the session's end drops them all. An empty database (no template with the
schema made) keeps the first use as a file's: the schema and the default pipeline are made by
the test's first command, at its moment, as on a new file.

A hypothesis test runs a fifth of its examples on the server, unshrunk (settings_for). What
pipectl does otherwise on a server is listed at the end of this module; the tests that show
it are marked ``xfail_on_postgres(finding)``. PIPECTL_TEST_ENGINES=sqlite (or =postgres)
runs the variants of one engine only.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ENGINES = ("sqlite", "postgres")
ADMIN_URL = os.environ.get("PIPECTL_TEST_POSTGRES",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
_created: list[str] = []
_why_not: list[str] = []

# Who the events are recorded as: PIPECTL_USER on a file (tests/conftest.py sets "tester"),
# the database role on a server.
ROLE = urlsplit(ADMIN_URL).username or "postgres"


# ---------------------------------------------------------------- the server

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


def drop_database(name: str) -> None:
    """Drop a database new_database made (its connections closed by force)."""
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if name in _created:
        _created.remove(name)
    if name in _pool:
        _pool.remove(name)


def drop_all_created() -> None:
    """Drop every database new_database made and nobody dropped yet (the session's end)."""
    if not _created or _why_not:
        return
    with admin() as conn:
        for name in list(_created):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _created.remove(name)
    _pool.clear()


# Databases emptied after their test, for the next one. CREATE DATABASE copies template1
# (7.5 MB, written to the WAL) and DROP DATABASE checkpoints: ~50 ms each on an idle server,
# but 1.2-1.9 s each while another process writes a lot (measured beside a benchmark's COPY).
# Dropping the schema pipectl made and making public anew takes 0.07-0.15 s there and leaves
# the database as empty as a new one: the next test's first command makes the schema and
# the default pipeline, at its own moment, as on a new file.
_pool: list[str] = []
_EMPTY = ("SET lock_timeout = '5s'; DROP SCHEMA public CASCADE; "
          "CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
          "GRANT USAGE ON SCHEMA public TO PUBLIC")


def take_database() -> str:
    """An empty database: one emptied after an earlier test, else a new one."""
    if _pool:
        return _pool.pop()
    return new_database()


def give_back(name: str) -> None:
    """Empty a database taken for a test and keep it for the next (drop it if it cannot be
    emptied: a connection the test left in a transaction holds a lock)."""
    try:
        import psycopg

        with psycopg.connect(url_of(name), autocommit=True, connect_timeout=3) as conn:
            conn.execute(_EMPTY)
            left = conn.execute("SELECT count(*) FROM pg_catalog.pg_class c JOIN "
                                "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = 'public'").fetchone()[0]
        if left:
            raise RuntimeError(f"{left} objects left in {name}")
    except Exception:
        drop_database(name)
        return
    _pool.append(name)


# ---------------------------------------------------------------- a database of either engine

Target = Path | str  # a SQLite file, or a server database's URL


def is_url(db: Target) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def engine_of(db: Target) -> str:
    return "postgres" if is_url(db) else "sqlite"


def actor(db: Target, user: str = "tester") -> str:
    """Who an event written through pipectl to ``db`` is recorded as: the user (PIPECTL_USER,
    the login name) on a file, the database role on a server."""
    return ROLE if is_url(db) else user


class Databases:
    """Makes the databases of one test on one engine, and drops the server's at its end."""

    def __init__(self, engine: str, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.mine: list[str] = []
        self.named: dict[str, Target] = {}

    def new(self, name: str = "pipeline.db") -> Target:
        """A new, empty database: ``folder/name`` on SQLite, an empty server database else."""
        if self.engine == "sqlite":
            return self.folder / name
        database = take_database()
        self.mine.append(database)
        return url_of(database)

    def at(self, name: str) -> Target:
        """The database called ``name`` in this test, made (empty) on first asking: the file
        ``folder/name`` on SQLite."""
        if name not in self.named:
            self.named[name] = self.new(name)
        return self.named[name]

    def renew(self, name: str) -> Target:
        """An empty database called ``name`` (``named[name]``), the one made under that name
        before emptied or deleted first: for a test that makes its databases over and over
        (a hypothesis example each)."""
        if self.engine == "sqlite":
            for f in self.folder.glob(f"{name}*"):
                f.unlink()
            self.named[name] = self.folder / name
        else:
            if name in self.named:
                self.drop(self.named[name])
            self.named[name] = self.new(name)
        return self.named[name]

    @contextmanager
    def scratch(self, name: str = "scratch.db") -> Iterator[Target]:
        """A database for one hypothesis example, gone at the end of the block (a file in a
        temporary folder; a server database dropped)."""
        if self.engine == "sqlite":
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                yield Path(tmp) / name
            return
        url = self.new()
        try:
            yield url
        finally:
            self.drop(url)

    def drop(self, url: Target) -> None:
        name = urlsplit(str(url)).path.lstrip("/")
        if name in self.mine:
            self.mine.remove(name)
            give_back(name)

    def close(self) -> None:
        for name in list(self.mine):
            give_back(name)
        self.mine.clear()


def connect(db: Target, now: str | None = None) -> Any:
    """pipectl's store connection to ``db`` (made and migrated on first use), as the store's
    tests use it: ``store.db.connect`` on a file, the adapter's ``open_store`` on a server."""
    if is_url(db):
        from pipectl.services import clock
        from pipectl.store.postgres.connection import open_store
        from pipectl.values import iso

        return open_store(str(db), now or iso(clock.now()))
    from pipectl.store.db import connect as file_connect

    return file_connect(db, now=now)


def _plain(value: Any) -> Any:
    """A server's value as sqlite3 gives the same one (numeric: int when whole, else float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def rows(db: Target, sql: str, params: Any = ()) -> list[tuple]:
    """The rows of a query, read outside pipectl (sqlite3, or psycopg with ``?`` placeholders
    turned into ``%s``), as tuples."""
    if is_url(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as con:
            return [tuple(_plain(v) for v in r)
                    for r in con.execute(_pg_sql(sql), params or None).fetchall()]
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


def execute(db: Target, *statements: str, checks_off: bool = False) -> None:
    """Write around pipectl: the statements in one transaction, committed. ``checks_off``:
    with foreign keys off (SQLite's PRAGMA; on a server, session_replication_role = replica,
    which also keeps the triggers from firing), to write rows pipectl would refuse."""
    if is_url(db):
        import psycopg

        with psycopg.connect(str(db)) as con:
            if checks_off:
                con.execute("SET LOCAL session_replication_role = replica")
            for s in statements:
                con.execute(s)
        return
    con = sqlite3.connect(db)
    try:
        if checks_off:
            con.execute("PRAGMA foreign_keys = OFF")
        for s in statements:
            con.execute(s)
        con.commit()
    finally:
        con.close()


def exists(db: Target) -> bool:
    """Whether pipectl has made its database there yet (the file; the server's schema)."""
    if is_url(db):
        return bool(rows(db, "SELECT to_regclass('pipectl_migrations') IS NOT NULL")[0][0])
    return Path(db).exists()


def state(db: Target) -> dict[str, Any]:
    """All of a database, to tell that a command changed nothing: the sha256 of the file and
    its -wal/-shm/-journal (SQLite); every table's rows and the schema (a server)."""
    if not is_url(db):
        from tests.reliability.helpers import tree_state

        return tree_state(Path(db))
    tables = [t for (t,) in rows(db, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                     "current_schema() ORDER BY tablename")]
    out: dict[str, Any] = {"tables": tables}
    for t in tables:
        out[t] = sorted(rows(db, f'SELECT * FROM "{t}"'), key=repr)
    return out


def parametrize_engine(metafunc: pytest.Metafunc) -> None:
    """pytest_generate_tests of tests/cli and tests/store: a test that uses a database runs on
    each engine (only on SQLite when marked sqlite_only). PIPECTL_TEST_ENGINES=sqlite (or
    =postgres) keeps the variants of one engine."""
    if "engine" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        chosen = os.environ.get("PIPECTL_TEST_ENGINES", ",".join(ENGINES)).split(",")
        metafunc.parametrize("engine", [e for e in (["sqlite"] if only else ENGINES)
                                        if e in chosen])


def engine_of_conn(conn: Any) -> str:
    """The engine of a store connection (the adapter's has the raw psycopg one)."""
    return "postgres" if hasattr(conn, "raw") else "sqlite"


def refusals(conn: Any) -> tuple[type[BaseException], ...]:
    """What the engine raises for a write its schema refuses (a CHECK, a foreign key, an
    append-only trigger): sqlite3.IntegrityError; on a server psycopg's IntegrityError, or
    the RaiseException of pipectl's triggers (the adapter passes psycopg's errors through)."""
    if engine_of_conn(conn) == "sqlite":
        return (sqlite3.IntegrityError,)
    import psycopg

    return (psycopg.errors.IntegrityError, psycopg.errors.RaiseException)


def indexes(conn: Any) -> list[str]:
    """The names of the indexes of a store connection's database, sorted."""
    sql = ("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
           if engine_of_conn(conn) == "postgres"
           else "SELECT name FROM sqlite_master WHERE type = 'index'")
    return sorted(r[0] for r in conn.execute(sql).fetchall())


@contextmanager
def scratch(engine: str, name: str = "scratch.db") -> Iterator[Target]:
    """A new, empty database of ``engine`` for one hypothesis example (which cannot use the
    function-scoped fixtures), gone at the end of the block."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        made = Databases(engine, Path(tmp))
        try:
            yield made.new(name)
        finally:
            made.close()


def temp_tables(conn: Any) -> int:
    """How many temporary tables a store connection holds."""
    sql = ("SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_my_temp_schema() "
           "AND relkind = 'r'" if engine_of_conn(conn) == "postgres"
           else "SELECT count(*) FROM sqlite_temp_master WHERE type = 'table'")
    return conn.execute(sql).fetchone()[0]


# A hypothesis test runs this share of its examples on a server: each example there makes its
# database and schema anew (0.2-0.5 s where SQLite takes 0.03-0.1 s), and the properties
# are the engine-independent code's; the server's variant checks that its SQL gives the same.
SERVER_SHARE = 5


def examples(engine: str, n: int) -> int:
    """How many examples a hypothesis test of ``n`` runs on ``engine`` (see SERVER_SHARE)."""
    return n if engine == "sqlite" else max(8, n // SERVER_SHARE)


def schema_objects(conn: Any) -> list[tuple]:
    """What a store connection's database holds besides rows (tables, indexes, triggers,
    with their SQL on SQLite; their kinds and names on a server), to tell it unchanged."""
    if engine_of_conn(conn) == "sqlite":
        return [tuple(r) for r in conn.execute("SELECT name, sql FROM sqlite_schema "
                                               "ORDER BY name").fetchall()]
    return [tuple(r) for r in conn.execute(
        "SELECT CAST(c.relkind AS text), CAST(c.relname AS text) FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() UNION ALL "
        "SELECT 'trigger', CAST(t.tgname AS text) FROM pg_catalog.pg_trigger t "
        "WHERE NOT t.tgisinternal "
        "ORDER BY 1, 2").fetchall()]


# ---------------------------------------------------------------- what pipectl does otherwise
# on a server (found by running these suites on PostgreSQL; src/ is for others to fix). A test
# marked @pytest.mark.xfail_on_postgres(FINDING) is expected to fail on PostgreSQL, strictly
# (it fails the run once it passes there: remove the mark with the fix); only=(...) limits it
# to the parametrized cases whose id holds one of those texts.


def mark_postgres_findings(items: list[pytest.Item]) -> None:
    """pytest_collection_modifyitems: the PostgreSQL variant of a test marked
    xfail_on_postgres(finding, only=...) is an xfail (strict)."""
    for item in items:
        mark = item.get_closest_marker("xfail_on_postgres")
        spec = getattr(item, "callspec", None)
        if mark is None or spec is None or spec.params.get("engine") != "postgres":
            continue
        only = mark.kwargs.get("only")
        if only and not any(o in item.name for o in only):
            continue
        item.add_marker(pytest.mark.xfail(strict=True, reason=f"on PostgreSQL: {mark.args[0]}"))


def settings_for(engine: str, n: int) -> dict[str, Any]:
    """The hypothesis settings of a test of ``n`` examples on ``engine``: a fifth of them on a
    server (``examples``), and there no shrinking: a failure is reported as found (its SQLite
    variant shrinks its own), as shrinking each step anew on a server took minutes."""
    from hypothesis import Phase

    if engine == "sqlite":
        return {"max_examples": n}
    return {"max_examples": examples(engine, n),
            "phases": (Phase.explicit, Phase.reuse, Phase.generate)}
