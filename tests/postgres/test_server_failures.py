"""A client killed, or its connection cut, in the middle of a write to the server: nothing
half-written, one clear line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.postgres.test_copy_attacks import _holding, _no_pipectl_session, _start, _waiting_on


def _counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return (conn.execute("SELECT count(*) FROM deals").fetchone()[0],
                conn.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture
def seeded(pg_url: str) -> str:
    proc = _start("--db", pg_url, "add", "Already there", "--value", "10", "--currency", "EUR")
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    return pg_url


def _import_held(url: str, real_data: Path):  # type: ignore[no-untyped-def]
    """An import of Maven's 8,800 deals, stopped just before its commit: a test connection
    holds the read model it writes last."""
    holder = _holding(url, "deal_stays")
    proc = _start("--db", url, "import", str(real_data / "maven_crm" / "sales_pipeline.csv"),
                  "--preset", "maven")
    _waiting_on(url, "deal_stays")
    return holder, proc


def test_a_client_killed_mid_import_leaves_the_server_as_before(seeded: str,
                                                                real_data: Path) -> None:
    before = _counts(seeded)
    holder, proc = _import_held(seeded, real_data)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    holder.rollback()
    holder.close()
    _no_pipectl_session(seeded)  # the server saw the client go and rolled its work back
    assert _counts(seeded) == before
    again = _start("--db", seeded, "import",
                   str(real_data / "maven_crm" / "sales_pipeline.csv"), "--preset", "maven")
    assert again.wait(timeout=120) == 0
    assert _counts(seeded)[0] == before[0] + 8800


def test_a_connection_cut_mid_import_is_one_line_and_changes_nothing(seeded: str,
                                                                     real_data: Path) -> None:
    import psycopg

    before = _counts(seeded)
    holder, proc = _import_held(seeded, real_data)
    name = seeded.rsplit("/", 1)[1]
    with psycopg.connect(seeded, autocommit=True) as admin:  # as a server restart would
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND application_name = 'pipectl'", (name,))
    _, err = proc.communicate(timeout=60)
    holder.rollback()
    holder.close()
    assert proc.returncode == 1, err
    assert "lost the connection to the server" in err and "nothing was changed" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _counts(seeded) == before


def test_a_write_blocked_past_the_busy_timeout_exits_75(seeded: str) -> None:
    import psycopg

    from pipectl.store.postgres.adapter import WRITE_TURN

    before = _counts(seeded)
    with psycopg.connect(seeded) as other:  # another writer, in the middle of its command
        other.execute(WRITE_TURN)
        proc = _start("--db", seeded, "add", "Waits", PIPECTL_BUSY_TIMEOUT_MS="500")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "busy" in err and "nothing was changed" in err and err.count("\n") == 1
    assert _counts(seeded) == before


def test_reads_do_not_wait_for_a_writer(seeded: str) -> None:
    import psycopg

    from pipectl.store.postgres.adapter import WRITE_TURN

    with psycopg.connect(seeded) as other:
        other.execute(WRITE_TURN)
        proc = _start("--db", seeded, "list", "--json", PIPECTL_BUSY_TIMEOUT_MS="500")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"Already there"' in out


def test_db_check_on_a_server_finds_what_was_changed_behind_pipectls_back(seeded: str) -> None:
    import psycopg

    def check() -> tuple[int, str]:
        proc = _start("--db", seeded, "db", "check")
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out + err

    code, out = check()
    assert code == 0 and "no problems found (1 deal, 1 event;" in out, out
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE deals SET value_minor = 999999 WHERE id = 1")
        conn.execute("DROP TRIGGER events_no_update ON events")
    code, out = check()
    assert code == 1, out
    assert "deal 1" in out and "value" in out  # the deal is not what its events make of it
    assert "events_no_update" in out  # the append-only guard is gone
