"""Many pipectl processes writing to one server at once lose nothing: every event present,
every deal what its events make of it (checked by copying the server to a file and running
db check there), ids dense."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

WRITERS = 16
ROUNDS = 3


def _pipectl() -> list[str]:
    found = shutil.which("pipectl", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pipectl"]


@pytest.mark.slow
def test_sixteen_writers_over_tcp_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PIPECTL_BUSY_TIMEOUT_MS": "60000", "PIPECTL_DB": pg_url}
    env.pop("PIPECTL_NOW", None)
    run = _pipectl()
    subprocess.run([*run, "list"], env=env, check=True, capture_output=True)  # the schema

    def writer(w: int) -> list[str]:
        failures = []
        for r in range(ROUNDS):
            steps = [["add", f"Deal {w}-{r} Łódź", "--owner", f"Rep {w}", "--value", "100",
                      "--currency", "EUR", "-q"]]
            out = subprocess.run([*run, *steps[0]], env=env, capture_output=True, text=True)
            if out.returncode:
                failures.append(out.stderr)
                continue
            deal = out.stdout.strip()
            for step in (["advance", deal], ["note", deal, f"round {r} by writer {w}"],
                         ["edit", deal, "--value", "250"]):
                done = subprocess.run([*run, *step], env=env, capture_output=True, text=True)
                if done.returncode:
                    failures.append(done.stderr)
        return failures

    with ThreadPoolExecutor(WRITERS) as pool:
        failures = [f for fs in pool.map(writer, range(WRITERS)) for f in fs]
    assert failures == []
    import psycopg

    with psycopg.connect(pg_url) as conn:
        deals = conn.execute("SELECT count(*), max(id) FROM deals").fetchone()
        kinds = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        marks = conn.execute("SELECT count(*) FROM read_dirty").fetchone()[0]
    n = WRITERS * ROUNDS
    assert deals == (n, n)  # ids dense: each write numbered from the largest
    assert kinds == {"created": n, "stage": n, "note": n, "value": n}
    assert marks == 0  # every read model settled in its write's transaction
    copy = tmp_path / "copy.db"
    subprocess.run([*run, "db", "copy", "--from", pg_url, "--to", str(copy)], env=env,
                   check=True, capture_output=True)
    checked = subprocess.run([*run, "--db", str(copy), "db", "check"], env=env,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    assert "every deal is what its events make of it" in checked.stdout
