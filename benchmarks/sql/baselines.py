"""Run the hand-written SQL baselines of ``benchmarks/sql/*.sql`` (issue 13).

Each ``.sql`` file is plain SQL with named parameters (``:as_of`` ...), no shell dot-commands,
so that both Python's ``sqlite3`` (``run``: the test, tests/store/test_sql_baselines.py) and
the ``sqlite3`` shell (``shell_script``: the timing, benchmarks/sql_baselines.py) run the very
same text. Every result row starts with a ``figure`` column naming what it holds.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent
COMMANDS = ("report", "forecast", "stale", "next", "board")
ALL_TIME = ("0000-00-00T00:00:00Z", "9999-99-99T99:99:99Z")  # pipectl's unbounded window


def text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def statements(script: str) -> list[str]:
    """The script's statements, in order (comments between them dropped)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            body = "\n".join(x for x in buf.splitlines() if not x.strip().startswith("--"))
            if body.strip().rstrip(";").strip():
                out.append(buf.strip())
            buf = ""
    return out


def _month(day: date, shift: int) -> date:
    m = day.year * 12 + day.month - 1 + shift
    return date(m // 12, m % 12 + 1, 1)


def params(name: str, as_of: str | None = None, window: tuple[str, str] = ALL_TIME,
           limit: int = -1, per_stage: int = 8, near_days: int = 14) -> dict[str, Any]:
    """The named parameters of baseline ``name`` as of ``as_of`` (ISO UTC, ``...Z``)."""
    if name == "board":
        return {"per_stage": per_stage}
    assert as_of is not None
    if name == "report":
        return {"as_of": as_of, "ws": window[0], "we": window[1]}
    if name == "forecast":
        here = _month(date.fromisoformat(as_of[:10]), 0)
        starts = {f"p{k}": f"{_month(here, k - 3).isoformat()}T00:00:00Z" for k in range(7)}
        return {"as_of": as_of, **starts}
    if name == "stale":
        return {"as_of": as_of, "limit": limit}
    if name == "next":
        today = date.fromisoformat(as_of[:10])
        return {"as_of": as_of, "today": today.isoformat(),
                "near": (today + timedelta(days=near_days)).isoformat(), "limit": limit}
    raise ValueError(f"no baseline {name!r}")


def run(conn: sqlite3.Connection, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row the baseline's statements return, as dicts (column name -> value)."""
    rows: list[dict[str, Any]] = []
    for statement in statements(text(name)):
        used = {k: v for k, v in values.items() if f":{k}" in statement}
        cur = conn.execute(statement, used)
        if cur.description:
            names = [d[0] for d in cur.description]
            rows += [dict(zip(names, r, strict=True)) for r in cur]
    return rows


def shell_script(name: str, values: dict[str, Any]) -> str:
    """The baseline as a script for the ``sqlite3`` shell: its parameters bound with
    ``.parameter set``, then the SQL file as it is."""
    def literal(v: Any) -> str:
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"

    sets = "".join(f".parameter set :{k} {literal(v)}\n" for k, v in values.items())
    return ".mode list\n" + sets + text(name)
