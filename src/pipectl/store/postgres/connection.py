"""Opening a pipectl pipeline on a PostgreSQL server, and its errors as one-line messages.

This is the only module that imports psycopg (a command that names a server URL loads it; a
SQLite command never does). Credentials come the libpq way: the URL, ``PGPASSWORD``,
``~/.pgpass``, ``PGSSLMODE``, a service file. A password never appears in a message: the URL
is shown masked, and any text the server or libpq sends back is cleaned of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipectl.errors import DatabaseBusy, DatabaseError, PipectlError, UsageError
from pipectl.store.postgres import masked, password_of

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise UsageError(
            "a PostgreSQL --db needs psycopg, which is not installed",
            hint="pip install 'pipectl[postgres]'",
        ) from exc
    import logging

    # psycopg logs what it ignores while it gives up a lost connection (a COPY ended by a
    # server restart); pipectl says it once, in its own line
    quiet = logging.getLogger("psycopg")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return psycopg


def _userinfo_readable(url: str) -> None:
    """A user or password with a raw ``@`` is read by libpq up to the first one, the rest
    taken for the host (which its errors then quote): refused before connecting."""
    rest = url.split("://", 1)[1] if "://" in url else url
    netloc = rest.split("/", 1)[0]
    if netloc.count("@") > 1:
        raise UsageError(f"{where(url)}: write an @ in the user name or password as %40",
                         hint="postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


def where(url: str) -> str:
    """How messages name the server's pipeline: the URL without its password."""
    return masked(url)


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or os.environ.get("PGHOST") or "the local socket"
        port = parts.port or os.environ.get("PGPORT") or 5432
    except ValueError:
        return "the server"
    return f"{host}:{port}"


def open_store(url: str, now: str) -> Any:
    """The server's pipeline as the store's code uses a file's (``adapter.Connection``), its
    schema created or brought up to date first."""
    from pipectl.store.postgres.adapter import Connection

    return Connection(connect(url, now), url)


def peek(url: str, seconds: float = 1.0) -> Any:
    """A read-only connection for a quick look (shell completion), or None when the server
    does not answer or refuses: nothing created or migrated (every transaction read-only),
    each statement stopped after ``seconds``. (libpq waits at least 2 s to connect: the
    caller bounds the whole look with a timer.)"""
    psycopg = _psycopg()
    from pipectl.store.postgres.adapter import Connection

    try:
        raw = psycopg.connect(
            url, autocommit=True, connect_timeout=max(2, round(seconds)),
            application_name="pipectl completion",
            options=f"-c default_transaction_read_only=on "
                    f"-c statement_timeout={int(seconds * 1000)}",
        )
    except Exception:  # unreachable, refused, a URL libpq cannot read: nothing to offer
        return None
    _numbers_as_sqlite_gives_them(raw)
    return Connection(raw, url)


def open_source(url: str) -> psycopg.Connection:
    """A connection to a server database that ``db copy`` reads from: it must hold this
    pipectl's schema, at this pipectl's version (nothing is created or migrated)."""
    from pipectl.store.postgres import schema
    from pipectl.store.schema import VERSION

    conn = connect(url, "", migrate=False)
    try:
        with errors_told(url), conn.cursor() as cur:
            found = schema.version(cur)
        if found is None:
            raise DatabaseError(f"{where(url)}: holds no pipectl pipeline; nothing was copied")
        if found > VERSION:
            raise schema.newer(where(url), found)
        if found < VERSION:
            raise DatabaseError(
                f"{where(url)}: its pipectl schema is version {found}, older than this "
                f"pipectl's ({VERSION}); nothing was copied",
                hint="run any pipectl command on it first: it is upgraded on first use")
    except BaseException:
        conn.close()
        raise
    return conn


def connect(url: str, now: str, *, migrate: bool = True) -> psycopg.Connection:
    """A connection (autocommit: pipectl opens each transaction itself) to the server ``url``
    names, its schema created or brought up to date (recorded as done at ``now``) unless
    ``migrate`` is False."""
    psycopg = _psycopg()
    from pipectl.store.db import busy_timeout_ms

    _userinfo_readable(url)
    try:
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
            application_name="pipectl",
            # a write blocked by another longer than the busy timeout gives up (exit 75), as
            # on SQLite
            options=f"-c lock_timeout={busy_timeout_ms()}",
        )
    except psycopg.Error as exc:
        raise translate(exc, url) from exc
    except Exception as exc:  # a malformed URL: psycopg.ProgrammingError, ValueError
        raise UsageError(f"{where(url)}: not a PostgreSQL URL pipectl can use "
                         f"({_clean(str(exc), url)})",
                         hint="postgresql://USER@HOST:PORT/DATABASE") from exc
    _numbers_as_sqlite_gives_them(conn)
    try:
        if migrate:
            from pipectl.store.postgres import schema

            schema.upgrade(conn, where(url), now)
    except psycopg.Error as exc:
        conn.close()
        raise translate(exc, url) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _numbers_as_sqlite_gives_them(conn: Any) -> None:
    """A ``numeric`` (what PostgreSQL's sum() of integers and avg() give) read as SQLite gives
    the same figure: an int when it has no decimals (a sum), else a float (an average); a
    Python bool written as 1 or 0, as sqlite3 writes it."""
    from psycopg.adapt import Loader

    class SqliteNumbers(Loader):
        def load(self, data: Any) -> int | float | None:
            text = bytes(data).decode()
            if text == "NaN":
                return None
            return float(text) if "." in text or "e" in text.lower() else int(text)

    conn.adapters.register_loader("numeric", SqliteNumbers)

    from psycopg.adapt import Dumper
    from psycopg.postgres import types

    class BoolAsInteger(Dumper):  # a Python bool is 1 or 0, as sqlite3 binds it
        oid = types["int4"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    conn.adapters.register_dumper(bool, BoolAsInteger)


@contextmanager
def transaction(conn: psycopg.Connection, url: str) -> Iterator[psycopg.Connection]:
    """One transaction: committed when the block ends, rolled back on any exception (a
    psycopg error raised as pipectl's)."""
    with errors_told(url), conn.transaction():
        yield conn


@contextmanager
def errors_told(url: str) -> Iterator[None]:
    """Any psycopg error inside becomes pipectl's one-line error."""
    psycopg = _psycopg()
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, url) from exc


def _clean(text: str, url: str) -> str:
    """``text`` on its first line only, without the URL (shown masked) or its password (nor
    PGPASSWORD's): libpq quotes a URL it cannot read whole."""
    text = text.strip().split("\n")[0]
    text = " ".join(text.replace("\t", " ").split()).replace(url, where(url))
    for secret in (password_of(url), os.environ.get("PGPASSWORD")):
        if secret:
            text = text.replace(secret, "***")
    return text


_UNREACHABLE = ("connection refused", "could not connect", "failed to resolve host",
                "timeout expired", "no route to host", "network is unreachable",
                "could not translate host name", "name or service not known",
                "no such file or directory")
_LOST = ("server closed the connection", "terminating connection", "connection is lost",
         "consuming input failed", "the connection is closed", "connection already closed",
         "ssl connection has been closed", "server conn crashed", "sending query failed",
         "could not receive data", "could not send data")


def conflict_error(exc: BaseException, url: str, attempts: int) -> DatabaseBusy:
    """A serialization failure (40001) or a deadlock (40P01) that ended the command's last
    run, of ``attempts``: the busy error (exit 75). The server rolled each run back."""
    what = "a deadlock" if getattr(exc, "sqlstate", None) == "40P01" else (
        "a serialization failure")
    times = f" each of the {attempts} times it ran" if attempts > 1 else ""
    return DatabaseBusy(
        f"{where(url)}: the server's pipeline is busy: this write met {what} with another write"
        f"{times} ({_clean(str(exc), url)}); nothing was changed",
        hint="try again; the server stops one of two writes that wait on each other",
    )


def translate(exc: BaseException, url: str) -> PipectlError:
    """A psycopg error as pipectl's one-line error (exit 1; 75 for a lock waited on too long).

    Each leaves the pipeline as it was: the server rolls the transaction back."""
    text = _clean(str(exc), url)
    low = " ".join(str(exc).split()).lower()  # classified on the words as sent, shown cleaned
    state = getattr(exc, "sqlstate", None) or ""
    here = where(url)
    if ("uri" in low or "invalid connection option" in low or "invalid dsn" in low
            or "invalid sslmode" in low or "invalid port" in low
            or "invalid integer value" in low):
        return UsageError(f"{here}: not a PostgreSQL URL pipectl can use ({text})",
                          hint="postgresql://USER@HOST:PORT/DATABASE")
    if state in ("40001", "40P01"):  # the CLI ran the command again first (cli/retry.py)
        return conflict_error(exc, url, 1)
    if state == "55P03" or "lock timeout" in low:
        return DatabaseBusy(
            f"{here}: the server's pipeline is busy: another pipectl held it too long; "
            "nothing was changed",
            hint="try again; PIPECTL_BUSY_TIMEOUT_MS sets how long to wait",
        )
    if state == "57014" or "statement timeout" in low:
        return DatabaseError(
            f"{here}: the server stopped a statement that ran past its statement_timeout; "
            "nothing was changed", hint="ask the database owner, or retry when it is quieter")
    if state == "42501" or "permission denied" in low or "row-level security" in low:
        return _refused(text, here)
    if state == "3D000" or ("database" in low and "does not exist" in low):
        name = (urlsplit(url).path or "/").lstrip("/") or "(default)"
        return DatabaseError(
            f"{here}: the database {name!r} does not exist on {_host(url)}",
            hint=f"create it first, e.g. createdb -h {_host(url).split(':')[0]} {name}",
        )
    if (state.startswith("28") or "authentication failed" in low
            or "no password supplied" in low or ("role" in low and "does not exist" in low)):
        return DatabaseError(
            f"{here}: the server refused the login ({_after_fatal(text)})",
            hint="check the user name and the password (PGPASSWORD, ~/.pgpass)",
        )
    if any(s in low for s in _LOST) or state.startswith("08") or state == "57P01":
        return DatabaseError(
            f"{here}: lost the connection to the server mid-command ({_after_fatal(text)}); "
            "the server rolled the transaction back: nothing was changed",
            hint="check the server, then retry",
        )
    if any(s in low for s in _UNREACHABLE):
        return DatabaseError(
            f"{here}: cannot reach the PostgreSQL server at {_host(url)} ({_after_fatal(text)})",
            hint="is the server running, and the host and port right?",
        )
    return DatabaseError(f"{here}: database error: {text}; nothing was changed")


# what a table's rights concern, and who holds them (store.postgres.team)
_WHO_MAY = {
    **dict.fromkeys(("deals", "events", "imports"),
                    ("change deals", "a rep (their own deals), a manager or the database owner")),
    # the writers' turn, taken first by every write (a viewer's, refused there)
    **dict.fromkeys(("pipectl_write_turn", "pipectl_number_ids"),
                    ("change this pipeline", "a rep (their own deals), a manager or the "
                     "database owner")),
    **dict.fromkeys(("pipelines", "pipeline_versions", "stage_keys", "stage_maps"),
                    ("define pipelines", "a manager or the database owner")),
    "rates": ("record rates", "a manager or the database owner"),
}


def _refused(text: str, here: str) -> PipectlError:
    """The server refused a write (exit 1). A refusal worded by the team's checks (it names
    the deal's owner and who may change it) is shown as it is; a table's privilege is said
    with who holds it."""
    from pipectl.store.postgres.team import MESSAGE

    if text.startswith(MESSAGE):
        return DatabaseError(f"{here}: permission denied: {text[len(MESSAGE):]}; "
                             "nothing was changed")
    words = text.split()
    table = words[-1].strip('"') if any(
        f"for {kind}" in text for kind in ("table", "sequence", "function")) else ""
    if table == "pipectl_migrations":  # read by every command first: no right to read at all
        return DatabaseError(f"{here}: permission denied: this role is no member of this "
                             "pipeline's team", hint="the database's owner adds one: pipectl "
                             "team grant ROLE --as viewer|rep|manager")
    if table in _WHO_MAY:
        what, who = _WHO_MAY[table]
        return DatabaseError(f"{here}: permission denied: this role may not {what} here; "
                             f"{who} may; nothing was changed",
                             hint="pipectl team list says who is which")
    return DatabaseError(f"{here}: permission denied ({text}); nothing was changed",
                         hint="pipectl team list says who is which")


def _after_fatal(text: str) -> str:
    """The server's own words of a connection failure, without libpq's preamble."""
    for marker in ("FATAL: ", "failed: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip()
