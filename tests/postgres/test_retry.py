"""A serialization failure or a deadlock on the server is retried inside pipectl, a bounded
number of times (``cli/retry.py``): the command succeeds with exactly one effect, or, after
the last run, exits 75 with the one-line busy error, nothing changed. A lock waited on past
the busy timeout (55P03) is not retried, nor a command that printed, committed or read an
input that cannot be read again."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.postgres.conftest import url_of
from tests.postgres.test_copy_attacks import _start

NOW = "2026-12-01T09:00:00Z"


def _psycopg() -> Any:
    return pytest.importorskip("psycopg")


def _events(url: str, deal: int = 1) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [(k, n or "") for k, n in conn.execute(
            "SELECT kind, text FROM events WHERE deal_id = %s ORDER BY id", (deal,))]


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _pipectl(monkeypatch: pytest.MonkeyPatch, url: str, *args: str,
             input: str | None = None) -> Result:
    """pipectl run in this process (so that a test can reach into it), on ``url``."""
    from pipectl.cli import app

    monkeypatch.setenv("PIPECTL_NOW", NOW)
    return CliRunner().invoke(app, ["--db", url, *args], input=input)


@pytest.fixture
def one_deal(pg_url: str) -> str:
    proc = _start("--db", pg_url, "add", "Retried", "--value", "10", "--currency", "EUR")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return pg_url


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses pipectl takes between two runs of a command (taken for real)."""
    from pipectl.cli import retry

    taken: list[float] = []
    real = retry.pause

    def pause(attempt: int) -> float:
        taken.append(real(attempt))
        return taken[-1]

    monkeypatch.setattr(retry, "pause", pause)
    return taken


def _on_each_write(monkeypatch: pytest.MonkeyPatch, hook: Callable[[int], None]) -> list[int]:
    """``hook(n)`` called as the n-th write transaction of pipectl (this process) has begun
    and holds the write lock; the list of n so far."""
    from pipectl.store.postgres.adapter import Connection

    begun: list[int] = []
    original = Connection._special

    def special(self: Connection, cur: Any, sql: str, params: Any) -> Any:
        done = original(self, cur, sql, params)
        if sql.lstrip().upper().startswith("BEGIN IMMEDIATE"):
            begun.append(len(begun) + 1)
            hook(begun[-1])
        return done

    monkeypatch.setattr(Connection, "_special", special)
    return begun


def _repeatable_read(url: str) -> None:
    """Every new session of ``url``'s database in REPEATABLE READ (as a database owner may set
    it): a write's snapshot is then taken as it takes the write lock, and a row another
    session changes after that is a serialization failure when the write updates it."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url_of("postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation '
                      "TO 'repeatable read'")


def _update_behind(url: str) -> Callable[[int], None]:
    """A hook that, from another session, updates deal 1 and commits: what a colleague's
    write between pipectl's snapshot and its own update of the deal would do."""
    import psycopg

    def hook(n: int) -> None:
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE deals SET updated_at = updated_at WHERE id = 1")

    return hook


# ---------------------------------------------------------------- a real deadlock


def _deadlocks(url: str) -> int:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url_of("postgres"), autocommit=True) as conn:
        return int(conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s",
                                (name,)).fetchone()[0])


def _pipectl_waits_on_a_lock(url: str, timeout: float = 20.0) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    end = time.monotonic() + timeout
    with psycopg.connect(url_of("postgres"), autocommit=True) as conn:
        while time.monotonic() < end:
            if conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE a.datname = %s AND a.application_name = 'pipectl' "
                    "AND NOT l.granted", (name,)).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("pipectl never came to wait on the row the test holds")


def test_a_deadlock_on_the_server_is_retried_and_the_command_acts_once(one_deal: str) -> None:
    """A real deadlock: another session holds deal 1's row and then asks for the write lock
    that pipectl's `advance 1` holds while it waits for that row. The server stops pipectl
    (its deadlock_timeout, 1 s, ends first); pipectl runs the command again once the other
    session is done, and the deal advances once, one event, one line of output."""
    psycopg = _psycopg()
    from pipectl.store.postgres.adapter import WRITE_TURN

    url = one_deal
    deadlocks = _deadlocks(url)
    with psycopg.connect(url) as other:
        try:  # the server stops pipectl, not us (a superuser's setting)
            other.execute("SET deadlock_timeout = '60s'")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test server's role may not SET deadlock_timeout")
        other.execute("SELECT 1 FROM deals WHERE id = 1 FOR UPDATE")
        proc = _start("--db", url, "advance", "1", "--note", "once")
        _pipectl_waits_on_a_lock(url)
        # the cycle: we wait for pipectl's lock, pipectl for our row; returns when the
        # server has stopped pipectl's transaction (so its write lock is free)
        other.execute(WRITE_TURN)
        waited_for_us = proc.poll() is None  # pipectl still running: it did not give up
        other.commit()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert waited_for_us
    assert err == ""
    assert out == "Deal 1 advanced: prospecting -> qualification\n"
    assert _events(url) == [("created", ""), ("stage", "once")]  # one effect, not two
    end = time.monotonic() + 10  # the server counts the deadlock it broke (stats: lazily)
    while _deadlocks(url) == deadlocks and time.monotonic() < end:
        time.sleep(0.1)
    assert _deadlocks(url) == deadlocks + 1


# ---------------------------------------------------------------- a real serialization failure


def test_a_serialization_failure_is_retried_and_the_command_acts_once(
        one_deal: str, monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> None:
    """Under REPEATABLE READ, another session updates deal 1 just after `advance 1` took its
    snapshot: the server refuses pipectl's update (40001); the second run succeeds."""
    _psycopg()
    url = one_deal
    _repeatable_read(url)
    behind = _update_behind(url)
    states: list[str] = []
    from pipectl.cli import retry

    real_conflict = retry.conflict

    def conflict(exc: BaseException | None) -> BaseException | None:
        found = real_conflict(exc)
        states.append(getattr(found, "sqlstate", None) or "-")
        return found

    monkeypatch.setattr(retry, "conflict", conflict)
    begun = _on_each_write(monkeypatch, lambda n: behind(n) if n == 1 else None)
    result = _pipectl(monkeypatch, url, "advance", "1", "--note", "once")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Deal 1 advanced: prospecting -> qualification\n"
    assert result.stderr == ""
    assert states == ["40001"]  # the server did refuse the first run
    assert begun == [1, 2] and len(pauses) == 1
    assert _events(url) == [("created", ""), ("stage", "once")]


def test_a_conflict_every_time_gives_up_after_five_runs_with_exit_75(
        one_deal: str, monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> None:
    _psycopg()
    from pipectl.cli.retry import ATTEMPTS, MOST_PAUSE_S

    url = one_deal
    _repeatable_read(url)
    begun = _on_each_write(monkeypatch, _update_behind(url))
    started = time.monotonic()
    result = _pipectl(monkeypatch, url, "advance", "1", "--note", "never")
    took = time.monotonic() - started
    assert result.exit_code == 75, result.output
    assert ATTEMPTS == 5 and begun == [1, 2, 3, 4, 5]
    assert len(pauses) == ATTEMPTS - 1 and all(0 < p <= MOST_PAUSE_S for p in pauses)
    assert result.stdout == ""
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "busy" in err and "serialization failure" in err
    assert "each of the 5 times it ran" in err and "nothing was changed" in err
    assert _events(url) == [("created", "")]
    assert took < 30, took


def test_a_lock_waited_on_past_the_busy_timeout_is_not_retried(
        one_deal: str, monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> None:
    """55P03 has already waited the busy timeout: one run, exit 75 at once."""
    psycopg = _psycopg()
    from pipectl.store.postgres.adapter import WRITE_TURN

    url = one_deal
    monkeypatch.setenv("PIPECTL_BUSY_TIMEOUT_MS", "300")
    tried: list[int] = []
    from pipectl.store.postgres.adapter import Connection

    original = Connection._special

    def special(self: Connection, cur: Any, sql: str, params: Any) -> Any:
        if sql.lstrip().upper().startswith("BEGIN IMMEDIATE"):
            tried.append(1)
        return original(self, cur, sql, params)

    monkeypatch.setattr(Connection, "_special", special)
    with psycopg.connect(url) as other:
        other.execute(WRITE_TURN)
        result = _pipectl(monkeypatch, url, "note", "1", "waits")
    assert result.exit_code == 75, result.output
    assert "held it too long" in result.stderr
    assert tried == [1] and pauses == []
    assert _events(url) == [("created", "")]


def test_a_command_reading_standard_input_is_not_run_twice(
        one_deal: str, monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> None:
    """`import -` has read its input by the time it writes: a second run would find it empty,
    so the conflict is told (exit 75), nothing imported."""
    psycopg = _psycopg()
    url = one_deal

    def refuse(n: int) -> None:
        raise psycopg.errors.SerializationFailure("could not serialize access")

    begun = _on_each_write(monkeypatch, refuse)
    result = _pipectl(monkeypatch, url, "import", "-", "--format", "csv",
                      input="name,stage,value,currency\nFrom stdin,prospecting,5,EUR\n")
    assert result.exit_code == 75, result.output
    assert "serialization failure" in result.stderr and "each of" not in result.stderr
    assert begun == [1] and pauses == []
    assert _count(url, "SELECT count(*) FROM deals") == 1


# ---------------------------------------------------------------- when a second run is refused


def _failing(state: str, before: Callable[[], None] = lambda: None
             ) -> tuple[Callable[[], str], list[int]]:
    import psycopg

    kind = {"40001": psycopg.errors.SerializationFailure,
            "40P01": psycopg.errors.DeadlockDetected,
            "55P03": psycopg.errors.LockNotAvailable}[state]
    runs: list[int] = []

    def once() -> str:
        runs.append(1)
        before()
        if len(runs) < 3:
            raise kind("stopped by the server")
        return "done"

    return once, runs


def _run(once: Callable[[], str], args: list[str] | None = None) -> str:
    from pipectl.cli import retry

    return retry.run(once, again=lambda: None, args=args or ["advance", "1"],
                     url="postgresql://u:secret@h/db", sleep=lambda s: None)


@pytest.mark.parametrize("state", ["40001", "40P01"])
def test_a_conflict_is_run_again_until_it_succeeds(state: str) -> None:
    _psycopg()
    once, runs = _failing(state)
    assert _run(once) == "done" and len(runs) == 3


def test_a_conflict_raised_as_pipectls_error_is_run_again_too() -> None:
    """A server error already told as pipectl's (``raise translate(exc) from exc``)."""
    psycopg = _psycopg()
    from pipectl.store.postgres.connection import translate

    runs: list[int] = []

    def once() -> str:
        runs.append(1)
        if len(runs) == 1:
            exc = psycopg.errors.DeadlockDetected("deadlock detected")
            raise translate(exc, "postgresql://h/db") from exc
        return "done"

    assert _run(once) == "done" and runs == [1, 1]


def test_the_busy_timeout_is_not_run_again() -> None:
    psycopg = _psycopg()
    once, runs = _failing("55P03")
    with pytest.raises(psycopg.errors.LockNotAvailable):
        _run(once)
    assert runs == [1]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_command_that_printed_is_not_run_again(stream: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    psycopg = _psycopg()
    once, runs = _failing("40001", lambda: print("half", file=getattr(sys, stream)))
    with pytest.raises(psycopg.errors.SerializationFailure):
        _run(once)
    assert runs == [1]
    assert getattr(capsys.readouterr(), "out" if stream == "stdout" else "err") == "half\n"


def test_a_command_that_wrote_bytes_is_not_run_again() -> None:
    psycopg = _psycopg()
    once, runs = _failing("40001", lambda: sys.stdout.buffer.write(b"rows"))
    with pytest.raises(psycopg.errors.SerializationFailure):
        _run(once)
    assert runs == [1]


def test_a_command_that_committed_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = _psycopg()
    from pipectl.store import db

    monkeypatch.setattr(db, "commits", 1)  # its first transaction is in; its second failed
    once, runs = _failing("40P01")
    with pytest.raises(psycopg.errors.DeadlockDetected):
        _run(once)
    assert runs == [1]


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "deals.csv"
    os.mkfifo(path)
    yield path


@pytest.mark.parametrize("given", ["-", "--file=-", "FIFO"])
def test_a_command_given_an_input_that_cannot_be_read_again_is_not_run_again(
        given: str, fifo: Path) -> None:
    psycopg = _psycopg()
    once, runs = _failing("40001")
    with pytest.raises(psycopg.errors.SerializationFailure):
        _run(once, ["import", given.replace("FIFO", str(fifo))])
    assert runs == [1]


def test_a_regular_file_may_be_read_again(tmp_path: Path) -> None:
    _psycopg()
    path = tmp_path / "deals.csv"
    path.write_text("name\nA\n")
    once, runs = _failing("40001")
    assert _run(once, ["import", str(path)]) == "done" and len(runs) == 3


def test_the_streams_are_given_back_as_they_were() -> None:
    _psycopg()
    before = (sys.stdout, sys.stderr, sys.stdin)
    seen: list[object] = []
    once, _ = _failing("40001", lambda: seen.append(sys.stdout))
    _run(once)
    assert (sys.stdout, sys.stderr, sys.stdin) == before
    assert seen and seen[0] is not before[0]  # watched while the command ran


def test_the_pauses_are_short_jittered_and_bounded() -> None:
    from pipectl.cli.retry import ATTEMPTS, MOST_PAUSE_S, pause

    for attempt in range(1, ATTEMPTS):
        taken = {pause(attempt) for _ in range(50)}
        base = 0.05 * 2 ** (attempt - 1)
        assert len(taken) > 1  # jittered
        assert all(base / 2 <= p <= min(MOST_PAUSE_S, base * 1.5) for p in taken)

