"""Issue 14's yardsticks on a PostgreSQL server: pipectl against psql and \\copy, at 1M deals.

    python benchmarks/postgres_sql.py bench FILE.db --csv FILE.csv [--runs 5] [--import-runs 3]
                                      [--url postgresql://postgres@127.0.0.1:5432/postgres]
                                      [--work /tmp/bench_pg] [--profile] [--keep]
                                      [--parts reads,import] [--work-mem 64MB] [--server URL]
    python benchmarks/postgres_sql.py capture URL OUT.sql -- report --json

``bench`` (the entry point; run from the repository root with the project's venv):

1. **The pipeline.** FILE.db (``benchmarks/generate.py --deals 1000000 --seed 1``) is copied
   into a fresh server database ``bench_reads_*`` with ``pipectl db copy`` (timed, peak
   memory), then ``VACUUM ANALYZE``; its deals and events are counted.
2. **report and forecast against the same SQL in psql.** Each command's SQL is captured
   once (``capture``, below) into a file of statements with literal parameters; then
   ``pipectl --db URL report --json`` and ``psql -X -q -A -t -v ON_ERROR_STOP=1 -f FILE``
   run as whole processes, one after the other (pipectl, psql, pipectl, psql, ...), after a
   warm-up run of each; median, min and max of ``--runs`` runs. The ratio pipectl / psql
   is issue 14's figure.
3. **export and the read commands' memory.** ``pipectl --db URL export -o FILE`` (streamed by
   a server-side cursor) is timed and its peak memory taken, as the reads' are.
4. **import against \\copy.** ``--import-runs`` times, interleaved: ``pipectl --db NEW
   import FILE.csv`` into a fresh database ``bench_imp_*`` (nothing in it: pipectl makes its
   schema), and the baseline into another fresh one ``bench_copy_*``: pipectl's schema
   made first by ``pipectl --db NEW stages`` (not timed), then, timed as a whole psql
   process, ``CREATE TABLE staging (one text column per CSV column)`` and
   ``\\copy staging FROM FILE.csv WITH (FORMAT csv, HEADER true)`` in one transaction:
   the file's bytes loaded as text, unconverted, into a table of the same database and
   schema, no index. A second baseline, ``bench_tables_*``: the rows pipectl's import
   wrote (its deals, events, import record and read models, dumped by ``\\copy ... TO``,
   not timed) loaded by ``\\copy`` into the same schema's own tables, with their indexes,
   constraints and triggers, in one transaction, timed as a whole psql process. Every
   database is dropped after its run. Each import database gets
   ``statement_timeout`` 20min (a runaway statement ends the run) and, with ``--work-mem``,
   that ``work_mem``: with the server's 4 MB, pipectl's 1M-row import does not finish (its
   leftover rows are read with a ``NOT IN`` that is then planned as a per-row subplan; see
   docs/performance.md, "On a PostgreSQL server at 1M").

``--parts`` runs steps 1-3 (reads) or 4 (import) alone; ``--keep`` keeps the reads'
database (for EXPLAIN; drop it yourself), ``--server URL`` times the reads on such a database
instead of copying FILE.db again.

Peak memory is the process's maximum resident set (GNU time), in MB. Every database
made is dropped at the end (also on failure). ``--profile`` also writes, for report,
forecast and import, the captured statements with each one's time in the client (the
server's work plus the round trip), so that the time in SQL and in Python can be told apart.

``capture`` runs pipectl in this process with psycopg's ``Cursor.execute`` (and a
server-side cursor's, ``executemany`` and ``copy``) wrapped: every statement pipectl sends,
after the adapter's translation, is written with its parameters as literals (psycopg's
``ClientCursor.mogrify``, the same adapters), each ended by ``;``, preceded by a comment with
the client-side time it took. A server-side cursor's query (a stream) is written as the
plain query (psql reads all its rows); ``COPY ... FROM STDIN`` and ``executemany`` (rows
sent by the client) cannot be replayed and are written as comments, with their time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
PIPECTL = str(Path(sys.executable).with_name("pipectl"))
NOW = "2026-12-01T09:00:00Z"
READS = (("report --json", ["report", "--json"]), ("forecast --json", ["forecast", "--json"]))


# ---------------------------------------------------------------- running and timing


def env() -> dict[str, str]:
    out = {**os.environ, "PIPECTL_NOW": NOW, "PIPECTL_BUSY_TIMEOUT_MS": "600000"}
    out.pop("PYTHONDONTWRITEBYTECODE", None)  # the installed way: bytecode cached
    return out


def timed(args: list[str], stdin: str | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS MB) of one whole process, its output thrown away. The peak is
    GNU time's maximum resident set (``os.wait4`` on a child of this process would also count
    this process's own pages, which the child had before its exec)."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", report.name, *args],
                              env=env(), input=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr.strip()[-2000:]}")
        return seconds, int(report.read().strip().splitlines()[-1]) // 1024


def database(admin: str, name: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def psql(url: str) -> list[str]:
    parts = urlsplit(url)
    return ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
            "-U", parts.username or "postgres", "-d", parts.path.lstrip("/")]


class Databases:
    """Fresh databases on the server, each dropped by ``drop`` or at the end."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.made: list[str] = []

    def fresh(self, kind: str, **settings: str) -> str:
        import psycopg

        name = f"bench_{kind}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            self.made.append(name)
            for key, value in settings.items():
                conn.execute(f"ALTER DATABASE \"{name}\" SET {key} = '{value}'")
        return database(self.admin, name)

    def drop(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(self.made):
            self.drop(database(self.admin, name))


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})"


# ---------------------------------------------------------------- capture


def capture(url: str, out: Path, argv: list[str]) -> object:
    """Run ``pipectl --db URL ARGV`` here, writing every statement it sends to ``out``."""
    import psycopg

    lines: list[str] = []
    threads: set[int] = set()
    plain_execute = psycopg.Cursor.execute
    server_execute = psycopg.ServerCursor.execute
    plain_copy = psycopg.Cursor.copy
    plain_executemany = psycopg.Cursor.executemany

    def literal(cur: psycopg.Cursor, query: object, params: object) -> str:
        if isinstance(query, bytes):
            query = query.decode()
        if not isinstance(query, str):  # a psycopg.sql.Composable
            query = query.as_string(cur.connection)  # type: ignore[attr-defined]
        if params is None:
            return query
        return psycopg.ClientCursor(cur.connection).mogrify(query, params)  # type: ignore[arg-type]

    def record(text: str, seconds: float, what: str = "") -> None:
        threads.add(threading.get_ident())
        lines.append(f"-- {seconds * 1000:.1f} ms{what}\n{text.strip().rstrip(';')};\n")

    def execute(self, query, params=None, **kw):
        text = literal(self, query, params)
        start = time.perf_counter()
        try:
            return plain_execute(self, query, params, **kw)
        finally:
            record(text, time.perf_counter() - start)

    def declare(self, query, params=None, **kw):
        text = literal(self, query, params)
        start = time.perf_counter()
        try:
            return server_execute(self, query, params, **kw)
        finally:
            record(text, time.perf_counter() - start, " (declared; rows fetched later)")

    def executemany(self, query, params_seq, **kw):
        rows = list(params_seq)
        start = time.perf_counter()
        try:
            return plain_executemany(self, query, rows, **kw)
        finally:
            text = literal(self, query, rows[0]) if rows else literal(self, query, None)
            lines.append(f"-- {(time.perf_counter() - start) * 1000:.1f} ms (executemany, "
                         f"{len(rows)} rows; the first, not replayed)\n-- "
                         f"{' '.join(text.split())[:300]}\n")

    @contextlib.contextmanager
    def copy(self, statement, params=None, **kw):
        start = time.perf_counter()
        with plain_copy(self, statement, params, **kw) as cp:
            yield cp
        text = literal(self, statement, params)
        lines.append(f"-- {(time.perf_counter() - start) * 1000:.1f} ms (rows sent by the "
                     f"client, not replayable)\n-- {text}\n")

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    psycopg.ServerCursor.execute = declare  # type: ignore[method-assign]
    psycopg.Cursor.copy = copy  # type: ignore[method-assign]
    psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
    os.environ.setdefault("PIPECTL_NOW", NOW)
    from pipectl.cli import main as run

    sys.argv = ["pipectl", "--db", url, *argv]
    code: object = 1
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            code = run()
    except SystemExit as exc:  # Typer's way out
        code = exc.code
    finally:
        out.write_text("".join(lines), encoding="utf-8")
    if len(threads) > 1:
        print(f"warning: statements from {len(threads)} threads", file=sys.stderr)
    return code


def captured(url: str, out: Path, argv: list[str]) -> Path:
    """``capture`` in a child process (a clean pipectl, as the timed runs get it)."""
    done = subprocess.run([sys.executable, __file__, "capture", url, str(out), "--", *argv],
                          env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode:
        raise SystemExit(f"capture {argv} failed: {done.stderr.strip()[-2000:]}")
    return out


def statements(path: Path) -> Iterator[tuple[float, str]]:
    """(client ms, first line) of each statement of a captured file."""
    ms = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-- ") and " ms" in line and ms is None:
            ms = float(line[3:].split(" ms")[0])
        elif ms is not None:
            yield ms, line[:150]
            ms = None


def profile(path: Path, top: int = 12) -> None:
    items = list(statements(path))
    total = sum(ms for ms, _ in items)
    print(f"  {path.name}: {len(items)} statements, {total / 1000:.2f} s in the client's "
          f"execute calls; the slowest:")
    for ms, first in sorted(items, reverse=True)[:top]:
        print(f"    {ms:9.1f} ms  {first}")


# ---------------------------------------------------------------- bench


def counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM deals), "
                           "(SELECT count(*) FROM events)").fetchone()
    assert row is not None
    return row[0], row[1]


def header_of(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(io.StringIO(fh.readline())))


def copy_script(path: Path) -> str:
    cols = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}" text' for c in header_of(path))
    return ("BEGIN;\n"
            f"CREATE TABLE staging ({cols});\n"
            f"\\copy staging FROM '{path}' WITH (FORMAT csv, HEADER true)\n"
            "COMMIT;\n")


# what an import writes on the server, in the order a load must go (references first)
LOADED = ("deals", "events", "imports", "deal_states", "deal_stays", "deal_figures",
          "read_facts")


def dump_script(out: Path) -> str:
    """psql lines writing each table an import filled to ``out``/TABLE.copy (not timed)."""
    return "".join(f"\\copy (SELECT * FROM {t}) TO '{out / (t + '.copy')}'\n" for t in LOADED)


def load_script(out: Path) -> str:
    """The same rows into the same schema's tables, with their indexes, constraints and
    triggers, in one transaction (what `\\copy` into the same schema costs)."""
    lines = ["BEGIN;", "DELETE FROM read_facts;"]  # the default pipeline's, made by stages
    lines += [f"\\copy {t} FROM '{out / (t + '.copy')}'" for t in LOADED]
    return "\n".join([*lines, "COMMIT;", ""])


def reads(args: argparse.Namespace, dbs: Databases) -> tuple[dict, list, tuple[int, int]]:
    """Steps 1-3: (report and forecast runs, export runs, (deals, events))."""
    import psycopg

    work = args.work
    if args.server:  # a pipeline already on the server (a kept one): used as it is
        server = args.server
    else:
        server = dbs.fresh("reads")
        s, mb = timed([PIPECTL, "--db", str(args.db), "db", "copy", "--to", server])
        print(f"db copy {args.db} -> {server}: {s:.1f} s, {mb} MB", flush=True)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    with psycopg.connect(server, autocommit=True) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))"
                            ).fetchone()
    deals, events = counts(server)
    print(f"on the server: {deals:,} deals, {events:,} events, {size[0] if size else '?'}",
          flush=True)
    results: dict[str, dict[str, list]] = {}
    for label, cmd in READS:
        sql = captured(server, work / f"{cmd[0]}.sql", cmd)
        n = sum(1 for _ in statements(sql))
        print(f"captured {label}: {n} statements -> {sql}", flush=True)
        if args.profile:
            profile(sql)
        timed([PIPECTL, "--db", server, *cmd])  # warm-up, not counted
        timed([*psql(server), "-f", str(sql)])
        r = results[label] = {"pipectl": [], "psql": [], "mb": [], "psql_mb": []}
        for i in range(args.runs):
            s, mb = timed([PIPECTL, "--db", server, *cmd])
            r["pipectl"].append(s)
            r["mb"].append(mb)
            s2, mb2 = timed([*psql(server), "-f", str(sql)])
            r["psql"].append(s2)
            r["psql_mb"].append(mb2)
            print(f"  run {i + 1}: pipectl {s:.2f} s {mb} MB, psql {s2:.2f} s {mb2} MB, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    ex = []
    for i in range(max(1, args.runs // 2)):
        target = work / f"export-{i}.csv"
        target.unlink(missing_ok=True)
        ex.append(timed([PIPECTL, "--db", server, "export", "-o", str(target)]))
        print(f"  export run {i + 1}: {ex[-1][0]:.2f} s {ex[-1][1]} MB", flush=True)
        target.unlink(missing_ok=True)
    if args.server:
        pass
    elif args.keep:
        dbs.made.remove(urlsplit(server).path.lstrip("/"))
        print(f"kept {server} (drop it when done)", flush=True)
    else:
        dbs.drop(server)
    return results, ex, (deals, events)


# a runaway statement (issue 14's first 1M import: a NOT IN planned as a per-row subplan)
# ends the run instead of holding the server for hours
IMPORT_TIMEOUT = "20min"


def imports(args: argparse.Namespace, dbs: Databases) -> tuple[dict, tuple[int, int]]:
    """Step 4: (import and \\copy runs, (deals, events) the import wrote)."""
    import psycopg

    settings = {"statement_timeout": IMPORT_TIMEOUT}
    if args.work_mem:
        settings["work_mem"] = args.work_mem
    imp: dict[str, list] = {"pipectl": [], "mb": [], "copy": [], "copy_mb": [], "tables": []}
    dumped = args.work / "tables"
    dumped.mkdir(parents=True, exist_ok=True)
    rows = (0, 0)
    script = copy_script(args.csv)
    for i in range(args.import_runs):
        target = dbs.fresh("imp", **settings)
        s, mb = timed([PIPECTL, "--db", target, "import", str(args.csv)])
        imp["pipectl"].append(s)
        imp["mb"].append(mb)
        rows = counts(target)
        timed(psql(target), stdin=dump_script(dumped))  # what it wrote, for the 2nd baseline
        dbs.drop(target)
        same = dbs.fresh("tables", **settings)
        timed([PIPECTL, "--db", same, "stages"])  # pipectl's schema, not timed
        s3, _ = timed(psql(same), stdin=load_script(dumped))
        imp["tables"].append(s3)
        dbs.drop(same)
        base = dbs.fresh("copy", **settings)
        timed([PIPECTL, "--db", base, "stages"])  # pipectl's schema, not timed
        s2, mb2 = timed(psql(base), stdin=script)
        imp["copy"].append(s2)
        imp["copy_mb"].append(mb2)
        with psycopg.connect(base) as conn:
            staged = conn.execute("SELECT count(*) FROM staging").fetchone()
        dbs.drop(base)
        print(f"  import run {i + 1}: pipectl {s:.1f} s {mb} MB, \\copy {s2:.1f} s "
              f"({staged[0] if staged else '?'} rows), \\copy of its tables {s3:.1f} s, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    if args.profile and args.import_runs:
        target = dbs.fresh("imp", **settings)
        sql = captured(target, args.work / "import.sql", ["import", str(args.csv)])
        profile(sql, 20)
        dbs.drop(target)
    return imp, rows


def bench(args: argparse.Namespace) -> None:
    dbs = Databases(args.url)
    args.work.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    print(f"pipectl {PIPECTL}; load average {os.getloadavg()}", flush=True)
    try:
        results, ex, size = reads(args, dbs) if "reads" in parts else ({}, [], None)
        imp, rows = imports(args, dbs) if "import" in parts else ({"pipectl": []}, (0, 0))
    finally:
        dbs.drop_all()
    print(f"\nload average at the end {os.getloadavg()}")
    if size:
        print(f"{size[0]:,} deals, {size[1]:,} events on the server\n")
    print("| command | pipectl | the same SQL in psql / `\\copy` | pipectl / baseline | "
          "goal | peak MB pipectl / baseline |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        ratio = statistics.median(r["pipectl"]) / statistics.median(r["psql"])
        print(f"| `{label}` | {spread(r['pipectl'])} | {spread(r['psql'])} | "
              f"{ratio:.2f}x | <= 2x | {max(r['mb'])} / {max(r['psql_mb'])} |")
    if imp["pipectl"]:
        ratio = statistics.median(imp["pipectl"]) / statistics.median(imp["copy"])
        print(f"| `import` ({rows[0]:,} deals, {rows[1]:,} events) | "
              f"{spread(imp['pipectl'])} | {spread(imp['copy'])} | {ratio:.2f}x | <= 2x | "
              f"{max(imp['mb'])} / {max(imp['copy_mb'])} |")
        ratio = statistics.median(imp["pipectl"]) / statistics.median(imp["tables"])
        print(f"| `import` / `\\copy` of the rows it wrote into the same schema's tables | "
              f"{spread(imp['pipectl'])} | {spread(imp['tables'])} | {ratio:.2f}x | <= 2x | |")
    if ex:
        print(f"| `export -o FILE` | {spread([s for s, _ in ex])} | | | | "
              f"{max(mb for _, mb in ex)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bench", help="the whole measurement (below)")
    b.add_argument("db", type=Path, help="a pipectl file to copy to the server")
    b.add_argument("--csv", type=Path, required=True, help="the CSV to import")
    b.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                   help="a database to connect to for CREATE/DROP DATABASE")
    b.add_argument("--runs", type=int, default=5, help="runs of report and forecast (5)")
    b.add_argument("--import-runs", type=int, default=3, help="runs of import (3)")
    b.add_argument("--work", type=Path, default=Path("/tmp/bench_pg"),
                   help="where the captured SQL and exports go")
    b.add_argument("--profile", action="store_true",
                   help="print each captured command's slowest statements")
    b.add_argument("--parts", default="reads,import",
                   help="reads (report, forecast, export), import, or both (the default)")
    b.add_argument("--work-mem", metavar="SIZE",
                   help="ALTER DATABASE ... SET work_mem = SIZE on each import database "
                        "(e.g. 64MB; default: the server's)")
    b.add_argument("--server", metavar="URL",
                   help="time the reads on this pipeline database (e.g. one kept by --keep) "
                        "instead of copying DB to a fresh one; it is left as it is")
    b.add_argument("--keep", action="store_true",
                   help="keep the 1M pipeline's server database (for EXPLAIN); drop it after")
    c = sub.add_parser("capture", help="pipectl's statements, parameters as literals")
    c.add_argument("url")
    c.add_argument("out", type=Path)
    c.add_argument("argv", nargs=argparse.REMAINDER, help="-- then pipectl's arguments")
    args = ap.parse_args()
    if args.what == "capture":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        raise SystemExit(capture(args.url, args.out, argv))
    bench(args)


if __name__ == "__main__":
    main()
