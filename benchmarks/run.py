"""Every performance measurement of issue 6, side by side with its baseline.

One command (from the repository root, with the project's venv active)::

    python benchmarks/run.py            # everything: start-up, peers, 10k / 100k / 1M deals
    python benchmarks/run.py --quick    # smoke run: few repetitions, 10k deals only (~1 min)
    python benchmarks/run.py --sizes 10000,100000 --typer-compare

It prints Markdown tables of medians and ratios (paste them into docs/performance.md). Times
are wall-clock medians of fresh processes, interleaved round-robin with their baseline so the
noise of a busy machine hits both alike; peak memory is each process's maximum resident set
size (``wait4``'s ``ru_maxrss``). Generated databases and CSVs are cached in benchmarks/out/
(git-ignored); remove that folder to start afresh. Commands pipectl does not have yet are
reported as "not available" instead of failing the run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable
BIN = Path(sys.executable).parent
PIPECTL = str(BIN / "pipectl") if (BIN / "pipectl").exists() else shutil.which("pipectl")
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
SEED = 1
OWNER = "Anna"  # an owner of the generated data (see generate.py)

ISSUE_HELLO_MS = 120  # "a bare Typer 0.27 app starts in about 120 ms here" (issue 6)
# Peer figures quoted in issue 6 (medians on this kind of machine; not measured here).
PEERS = {
    "add": ("crm.cli deal add 134 ms; Taskwarrior task add 21 ms", 134),
    "list1k": ("crm.cli deal list 459 ms; Taskwarrior task list 57 ms", 459),
    "report1k": ("crm.cli report/forecast/pipeline 113-131 ms", 113),
}

HELLO = '''\
import typer

app = typer.Typer()


@app.command()
def main() -> None:
    typer.echo("hello")


if __name__ == "__main__":
    app()
'''

TABLE = '''\
import typer

app = typer.Typer()


@app.command()
def main() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for name in ("ID", "Deal", "Stage", "Value"):
        table.add_column(name)
    table.add_row("1", "Acme renewal", "proposal", "12,000.00 EUR")
    Console().print(table)


if __name__ == "__main__":
    app()
'''


# ------------------------------------------------------------------ timing


@dataclass
class Sample:
    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def peak_mb(self) -> float:
        return max(self.rss_kb) / 1024 if self.rss_kb else float("nan")


@dataclass
class Cmd:
    """A command to time; ``setup`` runs before each run, untimed."""

    argv: Sequence[str] | Callable[[], Sequence[str]]  # a callable is asked at each run
    stdin: str | None = None  # text fed on stdin (sqlite3 scripts)
    setup: Callable[[], None] | None = None
    env: dict[str, str] | None = None


def run_once(cmd: Cmd) -> tuple[float, int, int, str]:
    """(seconds, max RSS in KiB, exit code, stderr) of one fresh process."""
    if cmd.setup:
        cmd.setup()
    env = {**os.environ, **(cmd.env or {})}
    # Run as an installed pipectl runs: with byte-compiled modules. (This work tree's shell sets
    # PYTHONDONTWRITEBYTECODE=1, which would recompile pipectl's own sources on every run and
    # charge pipectl, not the baselines whose packages ship their .pyc files, ~20 ms.)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if cmd.stdin is not None:
            inp.write(cmd.stdin.encode())
            inp.seek(0)
        started = time.perf_counter()
        argv = cmd.argv() if callable(cmd.argv) else cmd.argv
        proc = subprocess.Popen(
            list(argv), stdin=inp, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return took, usage.ru_maxrss, proc.returncode, text


def measure(cmds: dict[str, Cmd], reps: int, warmup: int = 1) -> dict[str, Sample]:
    """Run the commands round-robin ``reps`` times (after ``warmup`` untimed rounds)."""
    samples = {name: Sample() for name in cmds}
    for rnd in range(warmup + reps):
        for name, cmd in cmds.items():
            s = samples[name]
            if s.error:
                continue
            took, rss, rc, err = run_once(cmd)
            if rc != 0 or (err.strip() and "error" in err.lower()):
                s.error = (err.strip().splitlines() or [f"exit code {rc}"])[-1][:120]
                continue
            if rnd >= warmup:
                s.times.append(took)
                s.rss_kb.append(rss)
    return samples


def available(*words: str) -> bool:
    """Does this pipectl have the (sub)command?"""
    proc = subprocess.run([PIPECTL, *words, "--help"], capture_output=True, text=True)
    return proc.returncode == 0


# ------------------------------------------------------------------ reporting


class Table:
    def __init__(self, title: str, header: Sequence[str]) -> None:
        self.title, self.header, self.rows = title, list(header), []

    def add(self, *cells: object) -> None:
        self.rows.append([c if isinstance(c, str) else fmt(c) for c in cells])

    def render(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


def fmt(x: object) -> str:
    if isinstance(x, float):
        if x != x:  # nan
            return "-"
        return f"{x:.2f}"
    return str(x)


def ms(s: Sample) -> str:
    if s.error:
        return f"failed: {s.error}"
    return f"{s.median * 1000:.0f} ms"


def secs(s: Sample) -> str:
    if s.error:
        return f"failed: {s.error}"
    t = s.median
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def ratio(a: Sample, b: Sample) -> float:
    if a.error or b.error or not a.times or not b.times:
        return float("nan")
    return a.median / b.median


def mem(s: Sample, limit_mb: float = 200) -> tuple[str, str]:
    """(peak RSS, verdict against the memory target)."""
    if s.error or not s.rss_kb:
        return "-", "n/a"
    return f"{s.peak_mb:.0f} MB", "ok" if s.peak_mb <= limit_mb else "MISSED"


def verdict(value: float, limit: float) -> str:
    if value != value:
        return "n/a"
    return "ok" if value <= limit else "MISSED"


# ------------------------------------------------------------------ data


def schema_version(path: Path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def generated_db(n: int) -> Path:
    """The cached database of n deals, (re)generated when missing or of an older schema."""
    from pipectl.store.schema import VERSION

    path = OUT / f"deals_{n}_seed{SEED}.db"
    if path.exists() and schema_version(path) != VERSION:
        remover(path)()
    if not path.exists():
        print(f"  generating {n} deals -> {path} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp.db")
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        subprocess.run([PY, str(HERE / "generate.py"), "--deals", str(n), "--seed", str(SEED),
                        str(tmp)], check=True, stdout=subprocess.DEVNULL)
        tmp.rename(path)
    return path


def generated_csv(n: int) -> Path:
    path = OUT / f"import_{n}_seed{SEED}.csv"
    if not path.exists():
        print(f"  generating a {n}-row CSV -> {path} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp.csv")
        tmp.unlink(missing_ok=True)
        subprocess.run([PY, str(HERE / "generate.py"), "--deals", str(n), "--seed", str(SEED),
                        "--csv", str(tmp)], check=True, stdout=subprocess.DEVNULL)
        tmp.rename(path)
    return path


def fresh_copy(src: Path, name: str) -> Path:
    dst = OUT / "work" / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm")):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def remover(*paths: Path) -> Callable[[], None]:
    def remove() -> None:
        for p in paths:
            for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
                q.unlink(missing_ok=True)

    return remove


def pipectl(db: Path, *args: str) -> list[str]:
    return [PIPECTL, "--db", str(db), *args]


# ------------------------------------------------------------------ SQL baselines
#
# Hand-written SQL computing what `pipectl report` and `pipectl forecast` compute (see
# docs/metrics and src/pipectl/reports/), run through the sqlite3 shell on the same file.

OPEN_IN = "('prospecting', 'qualification', 'meeting', 'proposal', 'negotiation')"
WON_IN = "('won', 'post_purchase')"
QUALIFIED_IN = "('meeting', 'proposal', 'negotiation', 'won', 'post_purchase')"
ORDER = ("CASE {c} WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2 WHEN 'meeting' THEN 3"
         " WHEN 'proposal' THEN 4 WHEN 'negotiation' THEN 5 WHEN 'won' THEN 6"
         " WHEN 'post_purchase' THEN 7 ELSE 0 END")
PROB = ("coalesce(probability, CASE stage WHEN 'prospecting' THEN 10 WHEN 'qualification' THEN 20"
        " WHEN 'meeting' THEN 40 WHEN 'proposal' THEN 60 WHEN 'negotiation' THEN 80 END)")


def snapshot_sql(table: str, as_of: str) -> str:
    """Each deal as it stood at ``as_of``, from its events alone (domain.md's definitions)."""
    return f"""
CREATE TEMP TABLE {table} AS
WITH k AS (
  SELECT deal_id,
         min(id) AS k_created,
         max(id) FILTER (WHERE to_stage IS NOT NULL) AS k_stage,
         max(id) FILTER (WHERE kind = 'value') AS k_value,
         max(id) FILTER (WHERE kind = 'close_date') AS k_close,
         max(id) FILTER (WHERE kind = 'probability') AS k_prob,
         min(at) FILTER (WHERE to_stage IN {WON_IN}) AS won_at,
         min(at) FILTER (WHERE to_stage IN {QUALIFIED_IN}) AS q_at,
         max({ORDER.format(c="to_stage")}) AS reached
  FROM events WHERE at <= '{as_of}' GROUP BY deal_id)
SELECT k.deal_id AS id, cr.at AS created_at, s.to_stage AS stage, s.at AS entered_at,
       CASE WHEN s.to_stage IN {OPEN_IN} THEN 'open' WHEN s.to_stage IN {WON_IN} THEN 'won'
            ELSE 'lost' END AS status,
       CASE WHEN s.to_stage = 'lost' THEN s.from_stage END AS lost_stage,
       CASE WHEN s.to_stage = 'lost' THEN s.reason END AS lost_reason,
       CASE WHEN s.to_stage = 'lost' THEN s.at WHEN s.to_stage IN {WON_IN} THEN k.won_at
            END AS decided_at,
       CASE WHEN s.to_stage IN {WON_IN} THEN k.won_at END AS won_at,
       CASE WHEN cr.reason IS NOT NULL THEN cr.at ELSE k.q_at END AS qualified_at,
       k.reached AS reached,
       CASE WHEN k.k_value IS NULL THEN cr.value_minor ELSE v.value_minor END AS value_minor,
       CASE WHEN k.k_value IS NULL THEN cr.currency ELSE v.currency END AS currency,
       CASE WHEN k.k_close IS NULL THEN cr.close_date ELSE c.close_date END AS close_date,
       CASE WHEN k.k_prob IS NULL THEN cr.probability ELSE p.probability END AS probability
FROM k
JOIN events cr ON cr.id = k.k_created
JOIN events s ON s.id = k.k_stage
LEFT JOIN events v ON v.id = k.k_value
LEFT JOIN events c ON c.id = k.k_close
LEFT JOIN events p ON p.id = k.k_prob;
"""


def _median_sql(source: str) -> str:
    """count, mean, max and median of ``s`` per ``grp`` over ``source`` (grp, s)."""
    return f"""
WITH src AS ({source}),
ranked AS (
  SELECT grp, s, row_number() OVER (PARTITION BY grp ORDER BY s) AS r,
         count(*) OVER (PARTITION BY grp) AS n, avg(s) OVER (PARTITION BY grp) AS mean,
         max(s) OVER (PARTITION BY grp) AS top
  FROM src WHERE s IS NOT NULL)
SELECT grp, n, mean / 86400, top / 86400, avg(s) / 86400 FROM ranked
WHERE r IN ((n + 1) / 2, (n + 2) / 2) GROUP BY grp;
"""


def report_sql(as_of: str) -> str:
    """Hand-written SQL for what `pipectl report` shows (all-time window, as of ``as_of``)."""
    reached = ", ".join(f"sum(reached >= {i})" for i in range(1, 8))
    return ".mode list\nPRAGMA temp_store = MEMORY;\n" + snapshot_sql("snap", as_of) + f"""
-- status, flows, close rate, win rate, conversion (stage reached), cycle total
SELECT count(*), sum(status = 'open'), sum(status = 'won'), sum(status = 'lost'),
       sum(qualified_at IS NOT NULL), sum(qualified_at IS NOT NULL AND status = 'won'),
       sum(CASE WHEN status = 'won' THEN julianday(won_at) - julianday(created_at) END),
       {reached}
FROM snap;
-- pipeline and weighted value per open stage and currency
SELECT stage, currency, count(*), sum(value_minor), sum(value_minor * {PROB}),
       sum(value_minor IS NULL)
FROM snap WHERE status = 'open' GROUP BY stage, currency;
-- sales cycle: median and mean days from creation to win
{_median_sql("SELECT NULL AS grp, (julianday(won_at) - julianday(created_at)) * 86400 AS s "
             "FROM snap WHERE status = 'won'")}
-- time in stage: completed stays per open stage
{_median_sql(f"SELECT stage AS grp, (julianday(left_at) - julianday(at)) * 86400 AS s FROM ("
             f"SELECT to_stage AS stage, at, lead(at) OVER (PARTITION BY deal_id ORDER BY id)"
             f" AS left_at FROM events WHERE to_stage IS NOT NULL AND at <= '{as_of}')"
             f" WHERE left_at IS NOT NULL AND stage IN {OPEN_IN}")}
-- time in stage: deals sitting in each open stage now, and their age in it
{_median_sql(f"SELECT stage AS grp, (julianday('{as_of}') - julianday(entered_at)) * 86400"
             f" AS s FROM snap WHERE status = 'open'")}
-- sales velocity inputs per currency
SELECT currency, sum(status = 'open'), sum(status = 'won'),
       sum(CASE WHEN status = 'won' THEN value_minor END)
FROM snap WHERE value_minor IS NOT NULL GROUP BY currency;
-- lost reasons: per reason and per stage lost at
SELECT lost_reason, lost_stage, currency, count(*), sum(value_minor)
FROM snap WHERE status = 'lost' GROUP BY lost_reason, lost_stage, currency;
"""


def _month(day: date, shift: int) -> date:
    m = day.year * 12 + day.month - 1 + shift
    return date(m // 12, m % 12 + 1, 1)


def _before(day: date) -> str:
    """The last second before ``day``'s midnight."""
    return (datetime.combine(day, datetime.min.time()) - timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def forecast_sql(as_of: str) -> str:
    """Hand-written SQL for `pipectl forecast`: six months around ``as_of``, forecast (the
    pipeline when each month began) versus actual (won in it), and the deals that slipped."""
    here = _month(date.fromisoformat(as_of[:10]), 0)
    months = [_month(here, k) for k in range(-3, 3)]
    snaps: dict[str, str] = {}
    out = [".mode list", "PRAGMA temp_store = MEMORY;"]

    def snap(moment: str) -> str:
        if moment not in snaps:
            snaps[moment] = f"s{len(snaps)}"
            out.append(snapshot_sql(snaps[moment], moment))
        return snaps[moment]

    for start in months:
        end = _month(start, 1)
        start_iso, end_iso = f"{start}T00:00:00Z", f"{end}T00:00:00Z"
        state = "over" if end_iso <= as_of else "current" if start_iso <= as_of else "future"
        f = snap(_before(start) if state != "future" else as_of)
        in_fc = f"status = 'open' AND close_date >= '{start}' AND close_date < '{end}'"
        out.append(f"SELECT currency, count(*), sum(value_minor), sum(value_minor * {PROB}) "
                   f"FROM {f} WHERE {in_fc} GROUP BY currency;")
        out.append(f"SELECT id FROM {f} WHERE {in_fc} ORDER BY id;")
        if state == "future":
            continue
        e = snap(_before(end) if state == "over" else as_of)
        won_in = f"status = 'won' AND won_at >= '{start_iso}' AND won_at < '{end_iso}'"
        out.append(f"SELECT currency, count(*), sum(value_minor) FROM {e} WHERE {won_in} "
                   f"GROUP BY currency;")
        out.append(f"SELECT id FROM {e} WHERE {won_in} ORDER BY id;")
        out.append(f"SELECT currency, count(*), sum(value_minor) FROM {e} WHERE {won_in} "
                   f"AND id IN (SELECT id FROM {f} WHERE {in_fc}) GROUP BY currency;")
        if state == "over":
            out.append(
                f"SELECT a.id, d.name, d.owner, a.value_minor, a.currency, a.close_date, "
                f"b.status, b.close_date FROM {f} a JOIN {e} b ON b.id = a.id "
                f"JOIN deals d ON d.id = a.id WHERE a.status = 'open' "
                f"AND a.close_date >= '{start}' AND a.close_date < '{end}' AND NOT "
                f"(b.status = 'won' AND b.won_at >= '{start_iso}' AND b.won_at < '{end_iso}') "
                f"ORDER BY a.value_minor IS NULL, a.value_minor DESC, a.id;")
    return "\n".join(out) + "\n"


CAPTURE = r"""
import atexit, os, sqlite3, sys

statements = []
_connect = sqlite3.connect


def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(statements.append)
    return conn


sqlite3.connect = connect
try:  # the report's second pass runs on another core in a thread; capture it inline
    from pipectl.reports import summary

    def inline(self, conn, p, owner):
        self.conn, self.p, self.owner = conn, p, owner
        self.value = self.error = self.thread = None

    summary._InBackground.__init__ = inline
except ImportError:
    pass


@atexit.register
def save():
    with open(os.environ["CAPTURE_TO"], "w") as fh:
        for sql in statements:
            fh.write(sql.strip().rstrip(";") + ";\n")


from pipectl.cli import main

sys.argv = ["pipectl", *sys.argv[1:]]
main()
"""


def captured_sql(argv: list[str], target: Path) -> str:
    """The SQL statements (parameters bound) that a pipectl command runs, as one script.

    Replayed through the sqlite3 shell, it is the command's own SQL without Python, Typer or
    Rich: the floor for what the command does in SQL.
    """
    subprocess.run([PY, "-c", CAPTURE, *argv], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "CAPTURE_TO": str(target)})
    return ".bail on\n" + target.read_text()


# ------------------------------------------------------------------ sections


def section_imports(reps: int) -> Table:
    """What each module costs to import in a fresh interpreter (why the lazy imports)."""
    t = Table("Import cost in a fresh interpreter (median)",
              ["module", "import time", "vs bare `python -c pass`"])
    mods = ["pass", "import typer", "import pipectl.cli", "import rich.console",
            "import rich.table", "import sqlite_utils", "import pydantic",
            "import charset_normalizer"]
    cmds = {m: Cmd([PY, "-c", m]) for m in mods}
    res = measure(cmds, reps)
    base = res["pass"]
    for m in mods[1:]:
        s = res[m]
        extra = (s.median - base.median) * 1000 if not s.error else float("nan")
        t.add(f"`{m}`", ms(s), f"+{extra:.0f} ms")
    return t


def section_startup(reps: int, small: Path) -> Table:
    base = OUT / "baselines"
    base.mkdir(parents=True, exist_ok=True)
    hello, table = base / "hello.py", base / "table.py"
    hello.write_text(HELLO)
    table.write_text(TABLE)
    db = fresh_copy(small, "small.db")  # read by list; add and advance write to their own
    writes = fresh_copy(small, "small_writes.db")
    # a deal to move back and forth: proposal <-> meeting, one event per run
    out = subprocess.run(pipectl(writes, "add", "Bench deal", "--stage", "proposal",
                                 "--prequalified", "benchmark", "--quiet"),
                         capture_output=True, text=True, check=True)
    deal = out.stdout.strip()
    toggle = {"to": "proposal"}  # flipped before each run: meeting, proposal, meeting, ...

    def flip() -> None:
        toggle["to"] = "proposal" if toggle["to"] == "meeting" else "meeting"

    advance = Cmd(lambda: pipectl(writes, "advance", deal, "--to", toggle["to"]), setup=flip)
    cmds = {
        "hello": Cmd([PY, str(hello)]),
        "table": Cmd([PY, str(table)]),
        "--version": Cmd([PIPECTL, "--version"]),
        "--help": Cmd([PIPECTL, "--help"]),
        "list": Cmd(pipectl(db, "list")),
        "add": Cmd(pipectl(writes, "add", "Bench add", "--company", "Acme", "--value", "1200",
                           "--currency", "EUR", "--owner", "Anna")),
        "advance": advance,
    }
    res = measure(cmds, reps)
    n_open = _count(db, "SELECT count(*) FROM deals WHERE stage IN ('prospecting', "
                        "'qualification', 'meeting', 'proposal', 'negotiation')")
    t = Table(f"Start-up ({reps} runs each, interleaved; small database: {n_open} open deals)",
              ["command", "median", "baseline", "baseline median", "ratio", "target",
               "verdict", "peak RSS"])
    for name, basename, limit in (("--version", "hello", 1.1), ("--help", "hello", 1.1),
                                  ("list", "table", 1.25), ("add", "table", 1.25),
                                  ("advance", "table", 1.25)):
        r = ratio(res[name], res[basename])
        t.add(f"`pipectl {name}`", ms(res[name]),
              "Typer hello-world" if basename == "hello" else "Typer + 1-row Rich table",
              ms(res[basename]), r, f"<= {limit}x", verdict(r, limit),
              f"{res[name].peak_mb:.0f} MB")
    return t


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def report_cmds(db: Path) -> dict[str, list[str] | None]:
    """The report commands pipectl has (None when not available yet)."""
    return {
        "report": pipectl(db, "report") if available("report") else None,
        "forecast": pipectl(db, "forecast") if available("forecast") else None,
        "board": pipectl(db, "board"),
    }


def section_peers(reps: int, db1k: Path) -> Table:
    db = fresh_copy(db1k, "peers.db")
    rep = report_cmds(db)
    hello = OUT / "baselines" / "hello.py"
    hello.parent.mkdir(parents=True, exist_ok=True)
    hello.write_text(HELLO)
    cmds = {
        "hello": Cmd([PY, str(hello)]),
        "add": Cmd(pipectl(db, "add", "Peer deal", "--value", "100", "--owner", "Bob")),
        "list1k": Cmd(pipectl(db, "list", "--status", "all")),
    }
    for name, argv in rep.items():
        if argv:
            cmds[name] = Cmd(argv)
    res = measure(cmds, reps)
    # The issue's peer figures were taken when "a bare Typer 0.27 app starts in about 120 ms";
    # scale ours by the bare app's time in this run to compare like with like.
    scale = ISSUE_HELLO_MS / (res["hello"].median * 1000)
    t = Table(f"Against peers, over 1,000 deals ({reps} runs; peer figures quoted from issue 6; "
              f"bare Typer hello-world in this run: {ms(res['hello'])}, in the issue's: "
              f"{ISSUE_HELLO_MS} ms)",
              ["pipectl command", "median", f"x {scale:.2f} (issue's machine state)",
               "peer figure", "beats crm.cli?"])
    rows = [("add", "`pipectl add`", "add"),
            ("list1k", "`pipectl list --status all` (1,000 rows)", "list1k")]
    rows += [(n, f"`pipectl {n}`", "report1k") for n in rep]
    for name, label, peer in rows:
        if name not in res:
            t.add(label, "not available", "-", PEERS[peer][0], "n/a")
            continue
        s = res[name]
        scaled = s.median * 1000 * scale
        beats = "n/a" if s.error else ("yes" if scaled < PEERS[peer][1] else "NO")
        t.add(label, ms(s), "-" if s.error else f"{scaled:.0f} ms", PEERS[peer][0], beats)
    return t


def section_scale(sizes: list[int], reps_for: Callable[[int], int],
                  only: set[str] | None = None) -> tuple[Table, Table]:
    t = Table("Scale: commands against their baselines (medians; memory: peak RSS, target "
              "200 MB for any command)",
              ["deals", "command", "median", "baseline", "baseline median", "ratio", "target",
               "verdict", "peak RSS", "memory"])
    growth: dict[str, dict[int, Sample]] = {}
    has_import = available("import")
    for n in sizes:
        reps = reps_for(n)
        src = generated_db(n)
        db = fresh_copy(src, f"scale_{n}.db")
        n_events = _count(db, "SELECT count(*) FROM events")
        print(f"  {n} deals, {n_events} events: {reps} runs per command", file=sys.stderr,
              flush=True)
        label = f"{n:,} ({n_events / 1e6:.1f}M events)" if n_events >= 1e6 else f"{n:,}"
        rep = report_cmds(db)
        as_of = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        cmds: dict[str, Cmd] = {
            "list": Cmd(pipectl(db, "list", "--stage", "proposal", "--owner", OWNER,
                                "--limit", "50")),
        }
        for name, handwritten in (("report", report_sql), ("forecast", forecast_sql)):
            if rep[name]:
                cmds[name] = Cmd(rep[name])
                cmds[f"{name}-sql"] = Cmd([SQLITE3, str(db)], stdin=handwritten(as_of))
                own = captured_sql([str(a) for a in rep[name][1:]], OUT / "work" / f"{name}.sql")
                cmds[f"{name}-own-sql"] = Cmd([SQLITE3, str(db)], stdin=own)
        cmds["board"] = Cmd(rep["board"])
        cmds["list --json"] = Cmd(pipectl(db, "list", "--json"))  # every open deal
        if available("export"):
            cmds["export"] = Cmd(pipectl(db, "export"))
        if available("stale"):
            cmds["stale"] = Cmd(pipectl(db, "stale"))
        if only:
            cmds = {k: c for k, c in cmds.items() if k.removesuffix("-own-sql")
                    .removesuffix("-sql") in only}
        res = measure(cmds, reps)
        if has_import and (not only or "import" in only):
            csv_path = generated_csv(n)
            target = OUT / "work" / f"import_{n}.db"
            bare = OUT / "work" / f"bare_{n}.db"
            imp = measure({
                "import": Cmd(pipectl(target, "import", str(csv_path)),
                              setup=remover(target)),
                "import-sql": Cmd([SQLITE3, str(bare)],
                                  stdin=f".mode csv\n.import {csv_path} deals\n",
                                  setup=remover(bare)),
            }, max(1, reps - 2) if n >= 1_000_000 else reps, warmup=0)
            res |= imp
            remover(target, bare)()
        if "list" in res:
            t.add(label, "`list --stage proposal --owner X --limit 50`", secs(res["list"]),
                  "-", "-", "-", "< 0.5 s",
                  verdict(res["list"].median, 0.5) if not res["list"].error else "n/a",
                  *mem(res["list"]))
        for name, limit, what in (("report", 2.0, "hand-written SQL in `sqlite3`"),
                                  ("forecast", 2.0, "hand-written SQL in `sqlite3`"),
                                  ("import", 4.0, "`sqlite3 .import` to a bare table")):
            if only and name not in only:
                continue
            if name not in res:
                t.add(label, f"`pipectl {name}`", "not available", what, "-", "-",
                      f"<= {limit:g}x", "n/a", "-", "-")
                continue
            a, b = res[name], res[f"{name}-sql"]
            r = ratio(a, b)
            t.add(label, f"`pipectl {name}`", secs(a), what, secs(b), r, f"<= {limit:g}x",
                  verdict(r, limit), *mem(a))
            if f"{name}-own-sql" in res:
                o = res[f"{name}-own-sql"]
                t.add(label, f"`pipectl {name}`", secs(a), "its own SQL, replayed in `sqlite3`",
                      secs(o), ratio(a, o), "-", "-", f"{o.peak_mb:.0f} MB (sqlite3)", "-")
        for name in ("board", "list --json", "export", "stale"):
            if name in res:
                t.add(label, f"`pipectl {name}`", secs(res[name]), "-", "-", "-", "-", "-",
                      *mem(res[name]))
        for name, s in res.items():
            growth.setdefault(name, {})[n] = s
        remover(db)()
        print(t.render(), file=sys.stderr, flush=True)  # progress: the rows so far
    g = Table("Growth: median time per size, and how much it grew per 10x more deals",
              ["command", *[f"{n:,}" for n in sizes],
               *[f"x from {a:,} to {b:,}" for a, b in itertools.pairwise(sizes)],
               "peak RSS (largest)"])
    for name, by_size in growth.items():
        cells = [secs(by_size[n]) if n in by_size else "-" for n in sizes]
        steps = []
        for a, b in itertools.pairwise(sizes):
            sa, sb = by_size.get(a), by_size.get(b)
            steps.append(f"{ratio(sb, sa):.1f} (linear: {b / a:g})" if sa and sb else "-")
        largest = by_size[max(by_size)]
        g.add(f"`{name}`", *cells, *steps, f"{largest.peak_mb:.0f} MB")
    return t, g


def section_typer(reps: int) -> Table:
    """Bare Typer hello-world and one-row-table apps under Typer 0.27.3 and 0.29.x."""
    t = Table(f"Typer versions: bare apps, same Python ({reps} runs each)",
              ["Typer", "hello-world", "1-row Rich table", "imports pydantic?"])
    base = OUT / "baselines"
    base.mkdir(parents=True, exist_ok=True)
    (base / "hello.py").write_text(HELLO)
    (base / "table.py").write_text(TABLE)
    cmds: dict[str, Cmd] = {}
    pyd: dict[str, str] = {}
    for version in ("0.27.3", "0.29.2"):
        venv = OUT / f"venv-typer-{version}"
        py = venv / "bin" / "python"
        if not py.exists():
            print(f"  creating {venv} ...", file=sys.stderr, flush=True)
            subprocess.run([PY, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", f"typer=={version}"],
                           check=True)
        cmds[f"{version} hello"] = Cmd([str(py), str(base / "hello.py")])
        cmds[f"{version} table"] = Cmd([str(py), str(base / "table.py")])
        probe = subprocess.run(
            [str(py), "-c", "import sys, typer; app = typer.Typer()\n"
             "@app.command()\ndef m(): pass\n"
             "try:\n    app([], standalone_mode=False)\nexcept SystemExit: pass\n"
             "print('pydantic' in sys.modules)"],
            capture_output=True, text=True)
        pyd[version] = probe.stdout.strip() or probe.stderr.strip()[-80:]
    import typer

    cmds["project hello"] = Cmd([PY, str(base / "hello.py")])
    cmds["project table"] = Cmd([PY, str(base / "table.py")])
    res = measure(cmds, reps)
    t.add(f"{typer.__version__} (project venv)", ms(res["project hello"]),
          ms(res["project table"]), "no")
    for version in ("0.27.3", "0.29.2"):
        t.add(version, ms(res[f"{version} hello"]), ms(res[f"{version} table"]),
              "yes" if pyd[version] == "True" else "no")
    return t


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import typer

    sqlite_cli = subprocess.run([SQLITE3, "--version"], capture_output=True,
                                text=True).stdout.split()[:1]
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, Typer {typer.__version__}, SQLite "
            f"{sqlite3.sqlite_version} (Python) / {' '.join(sqlite_cli)} (sqlite3 shell)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: few runs, 10k deals only")
    p.add_argument("--sizes", default=None,
                   help="deal counts for the scale runs (default 10000,100000,1000000)")
    p.add_argument("--reps", type=int, default=None, help="runs per start-up command")
    p.add_argument("--typer-compare", action="store_true",
                   help="also time bare apps under Typer 0.27.3 and 0.29.2 (temp venvs)")
    p.add_argument("--only", default="", help="comma-separated scale commands to run: "
                   "list,report,forecast,import,board,list --json,export,stale")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: "
                   "imports,startup,peers,scale")
    args = p.parse_args(argv)
    if not PIPECTL:
        print("pipectl is not installed in this environment", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(x) for x in (args.sizes or ("10000" if args.quick else
                                             "10000,100000,1000000")).split(",")]
    reps = args.reps or (5 if args.quick else 31)

    def reps_for(n: int) -> int:
        if args.quick:
            return 3
        return 9 if n <= 10_000 else 5 if n <= 100_000 else 3

    OUT.mkdir(exist_ok=True)
    started = time.time()
    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/run.py {' '.join(argv or sys.argv[1:])}`\n".replace(
        " `", "`", 0))
    tables = []
    if "imports" not in skip:
        tables.append(section_imports(max(5, reps // 2)))
        print(tables[-1].render(), flush=True)
    if args.typer_compare:
        tables.append(section_typer(reps))
        print(tables[-1].render(), flush=True)
    if "startup" not in skip:
        tables.append(section_startup(reps, generated_db(50)))
        print(tables[-1].render(), flush=True)
    if "peers" not in skip:
        tables.append(section_peers(max(5, reps // 3), generated_db(1000)))
        print(tables[-1].render(), flush=True)
    if "scale" not in skip:
        only = set(filter(None, args.only.split(","))) or None
        for table in section_scale(sizes, reps_for, only):
            print(table.render(), flush=True)
    print(f"(ran in {time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
