"""db copy between a file and a PostgreSQL server: every row with its id, verified; the
server's schema made on first use; its errors as one line, never with a password."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.postgres.conftest import admin, new_database, url_of

NOW = "2026-12-01T09:00:00Z"
SECRET = "s3cr3t-Пароль"


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


@pytest.fixture
def source(tmp_path: Path, real_data: Path) -> Path:
    """A file with the demo pipeline and Maven's 8,800 real deals, a pipeline of one's own,
    an exchange rate and an import record."""
    from pipectl.services import database

    path = tmp_path / "source.db"
    database.demo(path)
    cli = Cli(path)
    cli("import", str(real_data / "maven_crm" / "sales_pipeline.csv"), "--preset", "maven")
    cli("rate", "set", "EUR", "USD", "1.08", "--at", "2026-11-01")
    return path


def _tables(path: Path) -> dict[str, list[tuple]]:
    from pipectl.store.copy import TABLES

    conn = sqlite3.connect(path)
    try:
        return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}")), key=repr)
                for t in TABLES}
    finally:
        conn.close()


def _server_rows(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_file_to_the_server_and_back_is_the_same_pipeline(source: Path, tmp_path: Path,
                                                           pg_url: str) -> None:
    out = Cli(source)("db", "copy", "--to", pg_url).stdout
    assert out.startswith("Copied 8,8") and "17 tables, each verified" in out
    back = tmp_path / "back.db"
    Cli(source)("db", "copy", "--from", pg_url, "--to", str(back))
    assert _tables(back) == _tables(source)
    for args in (["report", "--json"], ["forecast", "--json"], ["list", "--json", "--status",
                                                                  "all"], ["export"]):
        assert Cli(back)(*args).stdout == Cli(source)(*args).stdout, args
    Cli(back)("db", "check")
    # the server hands out ids after the copied ones
    import psycopg

    with psycopg.connect(pg_url) as conn:
        top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        conn.execute("INSERT INTO deals (name, pipeline_id, stage, currency, created_at, "
                     "updated_at) VALUES ('next', 1, 'prospecting', 'EUR', %s, %s)", (NOW, NOW))
        new = conn.execute("SELECT max(id) FROM deals").fetchone()[0]
        assert new > _tables(source)["deals"][-1][0] or new > 8800
        assert top == max(r[0] for r in _tables(source)["events"])
        conn.rollback()


def test_a_server_that_holds_a_pipeline_is_refused_and_unchanged(source: Path,
                                                                 pg_url: str) -> None:
    Cli(source)("db", "copy", "--to", pg_url)
    deals = _server_rows(pg_url, "deals")
    err = Cli(source)("db", "copy", "--to", pg_url, code=1).stderr
    assert "holds deals already" in err and "nothing was changed" in err
    assert _server_rows(pg_url, "deals") == deals


def test_a_copy_that_does_not_verify_writes_nothing(source: Path, tmp_path: Path, pg_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from pipectl.store import copy as copying

    real = copying.digest
    calls: list[int] = []

    def off_by_one(rows):  # type: ignore[no-untyped-def]
        n, total = real(rows)
        calls.append(n)
        return (n, total + (len(calls) % 2))  # the target's digest differs from the source's

    monkeypatch.setattr(copying, "digest", off_by_one)
    err = Cli(source)("db", "copy", "--to", pg_url, code=1).stderr
    assert "differs from the source" in err and "nothing was written" in err
    assert _server_rows(pg_url, "deals") == 0 and _server_rows(pg_url, "events") == 0
    assert _server_rows(pg_url, "pipelines") == 1  # the default pipeline of its first use
    err = Cli(source)("db", "copy", "--from", str(source), "--to", str(tmp_path / "x.db"),
                      code=1).stderr
    assert "differs from the source" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".x", "x"))) == []


def test_first_use_by_many_at_once_creates_the_schema_once() -> None:
    from pipectl.store.postgres.connection import connect

    url = url_of(new_database())
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            connect(url, NOW).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    from pipectl.store.postgres.schema import MIGRATIONS

    # the schema once, each later migration once
    assert _server_rows(url, "pipectl_migrations") == 1 + len(MIGRATIONS)
    assert _server_rows(url, "pipelines") == 1


def test_a_newer_schema_on_the_server_is_refused(pg_url: str) -> None:
    import psycopg

    from pipectl.errors import DatabaseError
    from pipectl.store.postgres.connection import connect

    connect(pg_url, NOW).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO pipectl_migrations VALUES (99, 'from the future', %s)", (NOW,))
    with pytest.raises(DatabaseError, match="version 99, newer than this pipectl knows"):
        connect(pg_url, NOW)


def test_history_on_the_server_is_append_only(source: Path, pg_url: str) -> None:
    import psycopg

    Cli(source)("db", "copy", "--to", pg_url)
    with psycopg.connect(pg_url) as conn:
        for sql in ("UPDATE events SET text = 'x' WHERE id = 1", "DELETE FROM events WHERE id = 1",
                    "UPDATE rates SET rate = '2'", "DELETE FROM rates"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation,
                               match="append-only"):
                conn.execute(sql)
            conn.rollback()
        # a deal removed takes its history with it (pipectl rm), as in a file
        conn.execute("DELETE FROM deals WHERE id = 1")
        assert conn.execute("SELECT count(*) FROM events WHERE deal_id = 1").fetchone()[0] == 0


@pytest.mark.parametrize("url, code, told", [
    ("postgresql://postgres@127.0.0.1:1/x", 1, "cannot reach the PostgreSQL server at "
                                                "127.0.0.1:1 (Connection refused)"),
    (url_of("postgres", "no_such_pipectl_role", SECRET), 1, "the server refused the login"),
    (url_of("no_such_pipectl_db", None, SECRET), 1, "the database 'no_such_pipectl_db' "
                                                     "does not exist"),
    (f"postgresql://u:{SECRET}@[::1/x", 2, "not a PostgreSQL URL pipectl can use"),
    (url_of("x") + "?nonsense=1", 2, "not a PostgreSQL URL pipectl can use"),
])
def test_server_errors_are_one_line_without_the_password(source: Path, url: str, code: int,
                                                         told: str) -> None:
    admin().close()  # skips (or fails under CI) without a server
    result = Cli(source)("db", "copy", "--to", url, code=code)
    err = result.stderr
    assert told in err, err
    assert SECRET not in err and SECRET not in result.stdout
    assert err.count("\n") == 1 and "Traceback" not in err


def test_commands_other_than_copy_refuse_a_server_url_clearly(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "unused.db")
    from pipectl.cli import app

    url = f"postgresql://anna:{SECRET}@crm.example:5432/sales"
    result = cli.runner.invoke(app, ["--db", url, "db", "backup", "copy.db"])
    assert result.exit_code == 2
    assert "works on a file, not on a PostgreSQL server" in result.stderr
    assert SECRET not in result.stderr and "anna:***@crm.example" in result.stderr
    result = cli.runner.invoke(app, ["--db", url, "db", "path"])
    assert result.stdout == "postgresql://anna:***@crm.example:5432/sales\n"
    assert not list(tmp_path.iterdir())  # no file made of the URL


def test_without_psycopg_a_server_url_says_what_to_install(source: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)
    err = Cli(source)("db", "copy", "--to", "postgresql://x@127.0.0.1/y", code=2).stderr
    assert "needs psycopg" in err and "pip install 'pipectl[postgres]'" in err


def test_a_sqlite_command_never_imports_psycopg(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom pipectl.cli import main\nsys.argv = ['pipectl', '--db', "
            f"{str(tmp_path / 'p.db')!r}, 'list']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('psycopg' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stderr.strip().endswith("False"), done.stderr


def test_each_event_keeps_its_actor_and_a_non_owner_cannot_forge_one(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import psycopg

    cli = Cli(tmp_path / "a.db")
    cli("add", "Hợp đồng Łódź", "--owner", "Minh Trần")  # PIPECTL_USER=tester
    monkeypatch.setenv("PIPECTL_USER", "Ewa Łukasiewicz")
    cli("advance", "1")
    cli("db", "copy", "--to", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        actors = [r[0] for r in conn.execute("SELECT actor FROM events ORDER BY id")]
        assert actors == ["tester", "Ewa Łukasiewicz"]  # the owner's copy keeps them
        role = f"pipectl_rep_{os.getpid()}"
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            conn.execute(f'GRANT INSERT, SELECT ON events TO "{role}"')
            conn.execute(f'GRANT USAGE ON SEQUENCE events_id_seq TO "{role}"')
            with psycopg.connect(pg_url.replace("postgres@", f"{role}@"),
                                 autocommit=True) as rep:
                rep.execute("INSERT INTO events (deal_id, at, kind, text, actor) "
                            "VALUES (1, %s, 'note', 'by hand', 'Minh Trần')", (NOW,))
            last = conn.execute("SELECT actor FROM events ORDER BY id DESC LIMIT 1").fetchone()
            assert last[0] == role  # recorded as who they are, not whom they named
        finally:
            conn.execute(f'REVOKE ALL ON events FROM "{role}"')
            conn.execute(f'REVOKE ALL ON SEQUENCE events_id_seq FROM "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_the_server_schema_knows_every_version_of_the_file_schema() -> None:
    from pipectl.store import schema
    from pipectl.store.postgres import schema as server

    assert server.BASE_VERSION <= schema.VERSION
    assert set(server.MIGRATIONS) == set(range(server.BASE_VERSION + 1, schema.VERSION + 1))


def test_every_table_has_the_same_columns_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    from pipectl.store import copy as copying
    from pipectl.store import db
    from pipectl.store.postgres.connection import connect

    file = db.connect(tmp_path / "f.db")
    server = connect(pg_url, NOW)
    try:
        for table in copying.TABLES:
            assert copying.Side(server).columns(table) == copying.Side(file).columns(table), table
    finally:
        file.close()
        server.close()


def test_the_servers_sqlite_functions_give_sqlites_values_bit_for_bit(pg_url: str) -> None:
    """julianday (every stay's seconds, every age), round, instr, max/min of two and sum of a
    condition: the same doubles and integers as SQLite's, or a copy's db check would find the
    read models differ (the first julianday, epoch / 86400 + 2440587.5, differed for 8 of
    these 2,000 moments)."""
    import random

    from pipectl.store.postgres.connection import connect

    rng = random.Random(1)
    moments = [f"20{rng.randint(10, 30)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
               f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
               for _ in range(2000)]
    pairs = list(zip(moments, moments[1:] + moments[:1], strict=True))
    query = ("SELECT julianday({a}), (julianday({a}) - julianday({b})) * 86400, "
             "round(julianday({a}) - julianday({b}), 2), instr({a}, 'T'), max({a}, {b}), "
             "min({a}, {b})")
    file = sqlite3.connect(":memory:")
    server = connect(pg_url, NOW)
    try:
        for a, b in pairs:
            mine = file.execute(query.format(a="?", b="?"),
                                (a, a, b, a, b, a, a, b, a, b)).fetchone()
            theirs = server.execute(query.format(a="%(a)s", b="%(b)s"),
                                    {"a": a, "b": b}).fetchone()
            assert tuple(theirs) == tuple(mine), (a, b)
        rows = "(VALUES (1), (NULL), (3))"
        assert server.execute(f"SELECT sum(x IS NULL), sum(x > 1) FROM {rows} AS t(x)"
                              ).fetchone() == (1, 1)
    finally:
        file.close()
        server.close()


def test_an_upgrade_by_another_role_leaves_the_new_tables_to_the_schemas_owner(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 10 run by a superuser on a database whose pipectl tables another role owns:
    the new tables go to that owner, who keeps writing (before, its next write failed in the
    COMMIT's read models: permission denied for table deal_outcomes)."""
    import uuid

    import psycopg

    monkeypatch.setenv("PIPECTL_NOW", NOW)
    role = f"pt_{uuid.uuid4().hex[:6]}_alice"
    db = new_database()
    with admin() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'ALTER DATABASE "{db}" OWNER TO "{role}"')
    try:
        with psycopg.connect(url_of(db), autocommit=True) as conn:
            conn.execute(f'ALTER SCHEMA public OWNER TO "{role}"')
        alice = Cli(url_of(db, role))  # type: ignore[arg-type]
        alice("add", "Acme", "--value", "100")
        alice("lose", "1", "--reason", "price")
        before = alice.json("calibrate")
        with psycopg.connect(url_of(db, role), autocommit=True) as conn:  # back to schema 9
            from tests.postgres.test_undo import _BACK_TO_10

            conn.execute(_BACK_TO_10)  # (the migrations after 10 too)
            conn.execute("DROP TABLE deal_outcomes, outcome_figures")
            conn.execute("DELETE FROM pipectl_migrations WHERE version = 10")
        Cli(url_of(db))("list")  # the superuser upgrades it
        with psycopg.connect(url_of(db), autocommit=True) as conn:
            owners = conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename IN "
                "('deal_outcomes', 'outcome_figures', 'deal_states')").fetchall()
        assert owners == [(role,)]
        alice("add", "Bobco", "--value", "200")  # writes, and computes the new tables
        assert alice.json("calibrate") == before
        alice("db", "check")
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
