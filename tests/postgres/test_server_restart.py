"""The server restarted in the middle of a command: one clear line, exit 1, and nothing
committed is lost (nothing of the interrupted write is there); between two commands, the
next one simply works.

These tests never touch the shared test server: each starts a private PostgreSQL cluster
(initdb into a temporary directory, a free port on 127.0.0.1, its socket in that
directory, trust authentication), restarts it, and removes it at the end, whatever
happens. As root, the cluster runs as the ``postgres`` user (initdb refuses root). Without
the binaries (PIPECTL_TEST_PG_BIN, default /usr/lib/postgresql/15/bin) these tests skip
with the reason; under PIPECTL_REQUIRE_POSTGRES=1 they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.postgres.test_copy_attacks import _start

PG_BIN = Path(os.environ.get("PIPECTL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parents[2]
IMPORT_DEALS = 50_000


def _unavailable(reason: str) -> None:
    """Skip with ``reason``; fail instead under PIPECTL_REQUIRE_POSTGRES=1 (as the shared
    server's tests do): CI must really run these."""
    if os.environ.get("PIPECTL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PIPECTL_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A private PostgreSQL cluster in a temporary directory, run by ``pg_ctl``."""

    def __init__(self) -> None:
        self.as_user: list[str] = []
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:  # initdb refuses root: the cluster is the postgres user's
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root, and there is no postgres user to run a "
                             "private PostgreSQL cluster as (initdb refuses root)")
            runuser = shutil.which("runuser")
            if runuser is None:
                _unavailable("running as root without runuser: cannot start a private "
                             "PostgreSQL cluster as the postgres user")
            self.as_user = [runuser, "-u", "postgres", "--"]
            owner = (user.pw_uid, user.pw_gid)
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).is_file():
                _unavailable(f"no {tool} in {PG_BIN} to start a private PostgreSQL cluster "
                             "(PIPECTL_TEST_PG_BIN names the directory)")
        self.dir = Path(tempfile.mkdtemp(prefix="pipectl-pg-"))
        if owner:
            os.chown(self.dir, *owner)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = _free_port()
        self.running = False

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self.as_user, str(PG_BIN / tool), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=self.dir)
        if done.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {done.returncode}: "
                               f"{(done.stderr or done.stdout).strip()[-600:]}\n"
                               f"{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-800:]
        except OSError:
            return ""

    def init(self) -> None:
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-sync")
        except (RuntimeError, OSError) as exc:
            _unavailable(f"cannot create a private PostgreSQL cluster ({exc})")

    def _options(self) -> str:
        return (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", self._options(), "start")
        self.running = True

    def restart(self, mode: str) -> float:
        """Restarted with ``mode`` (fast: clients' sessions ended, a checkpoint; immediate:
        no checkpoint, crash recovery at the start); the seconds it took."""
        began = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-m", mode, "-o", self._options(), "restart")
        return time.monotonic() - began

    def stop(self) -> None:
        if not self.running:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", "immediate",
                      "stop", timeout=60)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self._kill()
        self.running = False

    def _kill(self) -> None:
        """The postmaster this test started, if pg_ctl could not stop it."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    made = Cluster()
    try:
        made.init()
        made.start()
        yield made
    finally:
        made.remove()
    assert not made.dir.exists()


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50,000 deals as an import CSV (benchmarks/generate.py, seed 1)."""
    out = tmp_path_factory.mktemp("csv") / "d50k.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--deals",
                    str(IMPORT_DEALS), "--seed", "1", "--csv", str(out)],
                   check=True, capture_output=True, timeout=300)
    return out


def _pipectl(url: str, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    proc = _start("--db", url, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _seed(url: str, n: int = 5) -> None:
    for i in range(1, n + 1):
        code, _, err = _pipectl(url, "add", f"Committed {i} Łódź", "--value", f"{i}000",
                                "--currency", "EUR", "--owner", "Ana")
        assert code == 0, err
    for deal in range(1, n + 1, 2):
        code, _, err = _pipectl(url, "advance", str(deal), "--note", f"call {deal}")
        assert code == 0, err


def _state(url: str) -> dict[str, Any]:
    """Every deal and event as stored, and the count of import records."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            "deals": conn.execute("SELECT id, name, stage, value_minor, currency, owner "
                                  "FROM deals ORDER BY id").fetchall(),
            "events": conn.execute("SELECT id, deal_id, at, kind, from_stage, to_stage, text "
                                   "FROM events ORDER BY id").fetchall(),
            "imports": conn.execute("SELECT count(*) FROM imports").fetchone()[0],
        }


def _writing(url: str, timeout: float = 60.0) -> float:
    """Waits until a pipectl session of ``url``'s database holds the write lock (its write
    transaction has begun and is under way); the seconds it waited."""
    import psycopg


    name = url.rsplit("/", 1)[1]
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() - began < timeout:
            held = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.datname = %s AND a.application_name = 'pipectl' AND l.granted "
                "AND l.locktype = 'relation' AND l.mode = 'ExclusiveLock' "
                "AND l.relation = 'pipectl_write_turn'::regclass", (name,)).fetchone()[0]
            if held:
                return time.monotonic() - began
            time.sleep(0.05)
    raise AssertionError("the import never took the write lock")


def _db_check_clean(url: str) -> None:
    code, out, err = _pipectl(url, "db", "check")
    assert code == 0, out + err
    assert "no problems found" in out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_restarted_mid_import_is_one_line_and_loses_nothing_committed(
        cluster: Cluster, big_csv: Path, mode: str) -> None:
    url = cluster.new_database(f"restart_mid_import_{mode}")
    _seed(url)
    before = _state(url)
    assert len(before["deals"]) == 5 and len(before["events"]) == 8

    started = time.monotonic()
    proc = _start("--db", url, "import", str(big_csv))
    _writing(url)
    time.sleep(1.0)  # well into its one transaction: rows sent, not committed
    assert proc.poll() is None, "the import ended before the restart"
    restarting = time.monotonic()
    into = restarting - started
    with ThreadPoolExecutor(1) as pool:
        restart = pool.submit(cluster.restart, mode)
        out, err = proc.communicate(timeout=120)
        told = time.monotonic() - restarting
        took = restart.result(timeout=120)
    print(f"\n[{mode}] restart {into:.1f} s into the import; pipectl exited "
          f"{proc.returncode} {told:.1f} s after the restart began; pg_ctl restart took "
          f"{took:.1f} s")

    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "lost the connection to the server" in err and "nothing was changed" in err
    assert out == ""
    assert _state(url) == before  # every committed deal and event; nothing of the import
    _db_check_clean(url)
    code, again, why = _pipectl(url, "add", "After the restart", "--value", "1",
                                "--currency", "EUR", "-q")
    assert code == 0 and again.strip() == "6", why
    after = _state(url)
    assert after["deals"][:5] == before["deals"] and len(after["deals"]) == 6
    # one line: pipectl's, and nothing else (no warning of a library's, no traceback)
    assert err.count("\n") == 1 and err.startswith("error: "), err


def test_a_server_restarted_between_two_commands_the_next_simply_works(
        cluster: Cluster) -> None:
    url = cluster.new_database("restart_between")
    _seed(url, 3)
    before = _state(url)
    cluster.restart("fast")
    code, out, err = _pipectl(url, "list", "--json")
    assert code == 0, err
    assert sorted(d["name"] for d in json.loads(out)) == [f"Committed {i} Łódź"
                                                          for i in (1, 2, 3)]
    assert _state(url) == before
    cluster.restart("immediate")  # no checkpoint: what was committed comes back from the WAL
    code, out, err = _pipectl(url, "note", "2", "after two restarts")
    assert code == 0 and err == "", err
    _db_check_clean(url)
    after = _state(url)
    assert after["events"][: len(before["events"])] == before["events"]
    assert after["events"][-1][3:] == ("note", None, None, "after two restarts")
