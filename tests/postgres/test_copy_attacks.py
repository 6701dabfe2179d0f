"""db copy under attack: a signal mid-copy, two copies at once, bad sources and targets, a
password in every error path. Each refusal is one line, exits 1 or 2 (75: busy) and changes
nothing; a copy cut short leaves the server's pipeline empty and no file behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.postgres.conftest import admin, new_database, url_of
from tests.postgres.test_copy import _tables

NOW = "2026-12-01T09:00:00Z"
SECRET = "Hunter2-s3cr3t"


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", NOW)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo pipeline (50 deals), made once: each test copies it before use."""
    from pipectl.services import database

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPECTL_NOW", NOW)
        database.demo(path)
    return path


@pytest.fixture
def source(demo_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    shutil.copyfile(demo_file, path)
    return path


def _one_line(result, code: int) -> str:  # type: ignore[no-untyped-def]
    err = result.stderr
    assert result.exit_code == code, (result.exit_code, err, result.stdout)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert SECRET not in err and SECRET not in result.stdout, err
    return err


def _copy(cli: Cli, *args: str, code: int | None):  # type: ignore[no-untyped-def]
    """``db copy``; unless ``code`` is None, a refusal of one line exiting ``code``."""
    from pipectl.cli import app

    result = cli.runner.invoke(app, ["--db", str(cli.db), "db", "copy", *args])
    if code is not None:
        _one_line(result, code)
    return result


def _state(url: str) -> dict[str, int]:
    """Every table of the server database, with its rows."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _snapshot(path: Path) -> tuple[int, bytes]:
    return path.stat().st_size, path.read_bytes()




# ---------------------------------------------------------------- pipectl as a process


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL_", "PG"))}
    env.update({"PIPECTL_NOW": NOW, "PIPECTL_BUSY_TIMEOUT_MS": "30000", **extra})
    return env


def _start(*args: str, **env: str) -> subprocess.Popen:
    code = "import sys; from pipectl.entry import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _waiting_on(url: str, table: str, count: int = 1, timeout: float = 15.0) -> None:
    """Until ``count`` pipectl sessions wait for a lock on ``table`` of ``url``'s database."""
    import psycopg

    end = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < end:
            n = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.application_name = 'pipectl' AND NOT l.granted AND l.relation = "
                "to_regclass(%s)", (table,)).fetchone()[0]
            if n >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"no pipectl session came to wait on {table}")


def _no_pipectl_session(url: str, timeout: float = 15.0) -> None:
    import psycopg

    end = time.monotonic() + timeout
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url_of("postgres"), autocommit=True) as conn:
        while time.monotonic() < end:
            if not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                "AND application_name = 'pipectl'", (name,)).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("a pipectl session outlived its client")


def _holding(url: str, table: str):  # type: ignore[no-untyped-def]
    """A connection whose open transaction holds ``table`` whole: a copy that reaches it
    waits there, with every table before it already written in its own transaction."""
    import psycopg

    conn = psycopg.connect(url)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def _schema(url: str) -> None:
    from pipectl.store.postgres.connection import connect

    connect(url, NOW).close()


# ---------------------------------------------------------------- a signal mid-copy


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_copy_to_the_server_leaves_it_empty(source: Path, pg_url: str,
                                                        signum: int) -> None:
    _schema(pg_url)
    holder = _holding(pg_url, "deal_stays")  # written after deals, events, deal_states
    try:
        proc = _start("--db", str(source), "db", "copy", "--to", pg_url)
        _waiting_on(pg_url, "deal_stays")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=15)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 128 + signum and out == ""
    assert err.startswith("error: interrupted") and "nothing was changed" in err
    assert err.count("\n") == 1
    _no_pipectl_session(pg_url)
    state = _state(pg_url)
    assert state["deals"] == state["events"] == state["deal_states"] == 0
    assert state["pipelines"] == 1  # the default of the first use, as before the copy
    assert "Copied 50 deals" in Cli(source)("db", "copy", "--to", pg_url).stdout


def test_a_kill_mid_copy_to_the_server_leaves_it_empty(source: Path, pg_url: str) -> None:
    _schema(pg_url)
    holder = _holding(pg_url, "deal_stays")
    try:
        proc = _start("--db", str(source), "db", "copy", "--to", pg_url)
        _waiting_on(pg_url, "deal_stays")
        proc.kill()
        proc.communicate(timeout=15)
    finally:
        holder.rollback()  # the orphaned session then meets the closed socket, and ends
        holder.close()
    assert proc.returncode == -signal.SIGKILL
    _no_pipectl_session(pg_url)
    assert _state(pg_url)["deals"] == _state(pg_url)["events"] == 0
    assert "Copied 50 deals" in Cli(source)("db", "copy", "--to", pg_url).stdout


def test_a_sigterm_mid_copy_to_a_file_leaves_nothing(source: Path, pg_url: str,
                                                     tmp_path: Path) -> None:
    Cli(source)("db", "copy", "--to", pg_url)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    holder = _holding(pg_url, "deal_stays")  # the source's read of it waits
    try:
        proc = _start("db", "copy", "--from", pg_url, "--to", str(out_dir / "back.db"))
        _waiting_on(pg_url, "deal_stays")
        assert any(".partial-" in n for n in _files(out_dir))  # mid-copy indeed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 143 and err == "error: interrupted by SIGTERM; nothing was changed\n"
    assert _files(out_dir) == []


# ---------------------------------------------------------------- two copies at once


def test_two_copies_at_once_one_wins_the_other_is_refused(source: Path, tmp_path: Path,
                                                          pg_url: str) -> None:
    _schema(pg_url)
    other = tmp_path / "other.db"
    shutil.copyfile(source, other)
    Cli(other)("add", "Only in the other", "-q")
    holder = _holding(pg_url, "deal_stays")
    try:
        first = _start("--db", str(source), "db", "copy", "--to", pg_url)
        _waiting_on(pg_url, "deal_stays")  # the first is mid-copy, holding the pipeline
        second = _start("--db", str(other), "db", "copy", "--to", pg_url)
        _waiting_on(pg_url, "pipelines")  # the second waits for it (LOCK TABLE)
    finally:
        holder.rollback()
        holder.close()
    out1, err1 = first.communicate(timeout=30)
    out2, err2 = second.communicate(timeout=30)
    assert (first.returncode, err1) == (0, "") and out1.startswith("Copied 50 deals")
    assert second.returncode == 1 and out2 == "" and err2.count("\n") == 1
    assert "it holds deals already" in err2 and "nothing was changed" in err2
    back = tmp_path / "back.db"
    Cli(source)("db", "copy", "--from", pg_url, "--to", str(back))
    assert _tables(back) == _tables(source)


def test_a_second_copy_that_waits_past_the_busy_timeout_gives_up(source: Path,
                                                                 pg_url: str) -> None:
    _schema(pg_url)
    holder = _holding(pg_url, "deal_stays")
    try:
        first = _start("--db", str(source), "db", "copy", "--to", pg_url)
        _waiting_on(pg_url, "deal_stays")
        second = _start("--db", str(source), "db", "copy", "--to", pg_url,
                        PIPECTL_BUSY_TIMEOUT_MS="300")
        out2, err2 = second.communicate(timeout=30)
    finally:
        holder.rollback()
        holder.close()
    first.communicate(timeout=30)
    assert first.returncode == 0
    assert second.returncode == 75 and out2 == "" and err2.count("\n") == 1
    assert "the server's pipeline is busy" in err2 and "nothing was changed" in err2
    assert _state(pg_url)["deals"] == 50


# ---------------------------------------------------------------- bad sources and targets


def test_bad_file_sources_are_one_line_and_change_nothing(source: Path, tmp_path: Path,
                                                          pg_url: str) -> None:
    url = url_of(pg_url.rsplit("/", 1)[1], None, SECRET)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "folder").mkdir()
    before = _files(tmp_path)
    cli = Cli(source)
    err = _copy(cli, "--from", str(tmp_path / "missing.db"), "--to", url, code=2).stderr
    assert "missing.db does not exist" in err
    err = _copy(cli, "--from", str(tmp_path / "notes.txt"), "--to", url, code=1).stderr
    assert "is not a pipectl database" in err
    err = _copy(cli, "--from", str(tmp_path / "folder"), "--to", url, code=2).stderr
    assert "folder is not a file" in err
    assert _files(tmp_path) == before and (tmp_path / "notes.txt").read_text() == "hello\n"
    assert _state(pg_url) == {}  # not even the schema: the source is checked first


def test_bad_file_targets_are_one_line_and_change_nothing(source: Path, tmp_path: Path) -> None:
    cli = Cli(source)
    other = tmp_path / "other.db"
    other.write_bytes(b"keep me")
    (tmp_path / "dangling.db").symlink_to(tmp_path / "nowhere.db")
    (tmp_path / "to-other.db").symlink_to(other)
    (tmp_path / "to-source.db").symlink_to(source)
    before, kept = _files(tmp_path), _snapshot(source)
    cases = [
        (str(other), "exists; pipectl never overwrites a file"),
        (str(tmp_path / "dangling.db"), "is a symbolic link"),
        (str(tmp_path / "to-other.db"), "is a symbolic link"),
        (str(tmp_path / "to-source.db"), "are the same file"),
        (str(tmp_path / "no" / "such" / "x.db"), "the folder"),
        (str(source), "are the same pipeline"),
        (f"{tmp_path}/./source.db", "are the same file"),
        ("", ""),
    ]
    for to, told in cases:
        err = _copy(cli, "--to", to, code=2).stderr
        assert told in err, (to, err)
    assert _files(tmp_path) == before and other.read_bytes() == b"keep me"
    assert _snapshot(source) == kept


def test_a_blank_to_is_refused(source: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        result = _copy(Cli(source), "--to", "   ", code=None)
        assert result.exit_code == 2 and "--to" in result.stderr, result.stderr
    finally:
        assert not (tmp_path / "   ").exists()


def test_an_empty_source_file_is_refused_and_left_empty(tmp_path: Path, pg_url: str) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    try:
        result = _copy(Cli(empty), "--from", str(empty), "--to", pg_url, code=None)
        assert result.exit_code in (1, 2), result.stdout
    finally:
        assert empty.stat().st_size == 0 and _files(tmp_path) == ["empty.db"]


def test_a_server_that_holds_a_pipeline_or_a_newer_schema_is_refused(source: Path,
                                                                      pg_url: str) -> None:
    import psycopg

    cli = Cli(source)
    cli("db", "copy", "--to", pg_url)
    url = url_of(pg_url.rsplit("/", 1)[1], None, SECRET)
    before = _state(pg_url)
    err = _copy(cli, "--to", url, code=1).stderr
    assert "it holds deals already" in err and "postgres:***@" in err
    assert _state(pg_url) == before
    newer = url_of(new_database())
    _schema(newer)
    with psycopg.connect(newer) as conn:
        conn.execute("INSERT INTO pipectl_migrations VALUES (99, 'from the future', %s)", (NOW,))
    before = _state(newer)
    err = _copy(cli, "--to", newer.replace("postgres@", f"postgres:{SECRET}@"), code=1).stderr
    assert "version 99, newer than this pipectl knows" in err
    assert _state(newer) == before


def test_a_server_database_with_a_table_of_pipectls_name_is_refused(source: Path) -> None:
    import psycopg

    url = url_of(new_database())
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE deals (id int, what text)")
        conn.execute("INSERT INTO deals VALUES (1, 'not pipectl''s')")
    err = _copy(Cli(source), "--to", url.replace("postgres@", f"postgres:{SECRET}@"),
                code=1).stderr
    assert 'relation "deals" already exists' in err and "nothing was changed" in err
    assert _state(url) == {"deals": 1}


def test_a_server_database_with_other_tables_keeps_them(source: Path) -> None:
    """Documented behaviour, not a refusal: pipectl's schema is made beside another
    application's tables, which are left as they were."""
    import psycopg

    url = url_of(new_database())
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE customers (id int)")
        conn.execute("INSERT INTO customers VALUES (1), (2)")
    Cli(source)("db", "copy", "--to", url)
    state = _state(url)
    assert state["customers"] == 2 and state["deals"] == 50


def test_the_same_server_database_twice_is_refused(pg_url: str, source: Path) -> None:
    url = url_of(pg_url.rsplit("/", 1)[1], None, SECRET)
    err = _copy(Cli(source), "--from", url, "--to", url, code=2).stderr
    assert "are the same pipeline" in err
    assert _state(pg_url) == {}


@pytest.mark.parametrize("to, code, told", [
    (url_of("postgres").replace(":5432/", ":1/"), 1, "cannot reach the PostgreSQL server"),
    (url_of("no_such_rt_database"), 1, "does not exist on"),
    (url_of("postgres", "no_such_rt_role"), 1, "the server refused the login"),
    (url_of("postgres") + "?sslmode=bogus", 2, "invalid sslmode value"),
    (url_of("x").replace("127.0.0.1", "[::1"), 2, "not a PostgreSQL URL pipectl can use"),
])
@pytest.mark.parametrize("how", ["in the URL", "as a password= parameter", "in PGPASSWORD"])
def test_the_password_is_never_printed(source: Path, to: str, code: int, told: str, how: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    admin().close()  # skips (or fails under CI) without a server
    if how == "in the URL":
        to = to.replace("@", f":{SECRET}@", 1) if "no_such_rt_role" not in to else \
            to.replace("no_such_rt_role@", f"no_such_rt_role:{SECRET}@")
    elif how == "as a password= parameter":
        to += ("&" if "?" in to else "?") + f"password={SECRET}"
    else:
        monkeypatch.setenv("PGPASSWORD", SECRET)
    err = _copy(Cli(source), "--to", to, code=code).stderr
    assert told in err, err


def test_a_lost_connection_mid_copy_is_one_line_without_the_password(source: Path,
                                                                     pg_url: str) -> None:
    import psycopg

    _schema(pg_url)
    url = pg_url.replace("postgres@", f"postgres:{SECRET}@")
    holder = _holding(pg_url, "deal_stays")
    try:
        proc = _start("--db", str(source), "db", "copy", "--to", url)
        _waiting_on(pg_url, "deal_stays")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                         "application_name = 'pipectl' AND datname = current_database()")
        out, err = proc.communicate(timeout=15)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 1 and out == "" and err.count("\n") == 1, err
    assert "lost the connection to the server" in err and SECRET not in err
    assert _state(pg_url)["deals"] == 0


def test_a_short_pgpassword_does_not_garble_the_error(source: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    admin().close()
    monkeypatch.setenv("PGPASSWORD", "e")
    err = _copy(Cli(source), "--to", url_of("x").replace(":5432/", ":1/"), code=1).stderr
    assert "cannot reach the PostgreSQL server" in err, err


def test_a_raw_at_sign_in_the_password_is_not_printed(source: Path) -> None:
    admin().close()
    to = f"postgresql://postgres:x@{SECRET}@127.0.0.1:5432/postgres"
    result = _copy(Cli(source), "--to", to, code=None)
    assert result.exit_code in (1, 2) and SECRET not in result.stderr, result.stderr


def test_a_server_source_without_a_pipeline_is_one_clear_line(pg_url: str,
                                                             tmp_path: Path) -> None:
    _copy(Cli(tmp_path / "unused.db"), "--from", pg_url, "--to", str(tmp_path / "x.db"),
          code=1)
    assert _files(tmp_path) == [] and _state(pg_url) == {}


def test_a_server_source_with_a_newer_schema_is_refused(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    _schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO pipectl_migrations VALUES (99, 'from the future', %s)", (NOW,))
    try:
        err = _copy(Cli(tmp_path / "unused.db"), "--from", pg_url, "--to",
                    str(tmp_path / "x.db"), code=1).stderr
        assert "newer than this pipectl" in err
    finally:
        assert not (tmp_path / "x.db").exists()
