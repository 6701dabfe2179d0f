"""What every command needs: the database connection, the clock, shared option parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipectl.errors import UsageError

if TYPE_CHECKING:  # sqlite3 loads when a command opens the database, not at start-up
    import sqlite3

JSON_HELP = "Print JSON (stable keys, ISO 8601 UTC times, money as exact decimal strings)."
AT_HELP = ("When it happened, in your local time unless an offset is given (--utc: UTC): "
           "a date (the start of that day) or a time, e.g. --at 2026-12-03T09:00 or "
           "--at 2026-12-03T08:00Z.")
OWNER_HELP = ("Only this owner's deals, named as you type it: accents and case aside, or "
              "the start of a word of the name (--owner minh is Minh Trần); 'me' is you "
              "(PIPECTL_USER, else your login name; on a server's team, your owner name).")
IN_HELP = ("Convert the values into this currency at the rates recorded with pipectl rate set, "
           "e.g. --in EUR; a currency with no rate in force stays as it is, with a note.")


def default_db_path() -> Path:
    """pipeline.db in the user data directory, whose folder is created with mode 0700."""
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("pipectl", appauthor=False))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / "pipeline.db"


def db_path(ctx: typer.Context) -> Path:
    from pipectl.paths import expand

    given = (ctx.find_root().obj or {}).get("db")
    from pipectl.store.postgres import is_url

    if is_url(given):
        from pipectl.store.postgres import masked

        command = ctx.command_path.partition(" ")[2] or "this command"
        if command in SERVER_COMMANDS:
            return Path(given)  # not a path: connect() opens the server
        raise UsageError(
            f"--db {masked(given)}: `pipectl {command}` works on a file, not on a PostgreSQL "
            "server (docs/team.md lists the commands that do)",
            hint="pg_dump backs a server up; pipectl db copy --from URL --to FILE makes a file",
        )
    if given and (given == ":memory:" or given.startswith("file:")):
        # SQLite would read these as other than a file (it opens files by absolute path, so
        # it cannot): refused as typed, since "./file:x" is the same Path as "file:x"
        raise UsageError(
            f"--db takes the path of a file, not SQLite's {given!r}: pipectl keeps a pipeline "
            "in a file",
            hint=f"for a file really named so, write ./{given}" if given != ":memory:" else None,
        )
    return expand(given) if given else default_db_path()


def shown_db(ctx: typer.Context) -> str:
    """The database in use as messages name it: the file's path, or the server's URL with
    any password masked."""
    from pipectl.store.postgres import is_url, masked

    given = (ctx.find_root().obj or {}).get("db")
    return masked(given) if is_url(given) else str(db_path(ctx))


# The commands that only read: on a file pipectl may not write (its mode, a read-only mount)
# they still work, through a read-only connection. Every other command is refused up front.
READS = frozenset({
    "list", "show", "board", "stages", "report", "forecast", "stale", "next", "export",
    "db backup", "db check", "pipeline list", "pipeline show", "pipeline export", "rate list",
    "team list", "calibrate", "log",
})


# The commands that run against a PostgreSQL server so far (issue 14: every command, in
# the end); the others refuse a server URL with a clear message (db_path).
SERVER_COMMANDS = frozenset({
    "add", "list", "show", "advance", "qualify", "lose", "reopen", "edit", "note", "move",
    "rm", "board", "stages", "report", "forecast", "stale", "next", "import", "export",
    "pipeline apply", "pipeline list", "pipeline show", "pipeline export", "pipeline default",
    "pipeline rm", "rate set", "rate list", "rate rm", "db check", "team grant", "team revoke",
    "team list", "calibrate", "undo", "done", "log",
})


def connect(ctx: typer.Context) -> sqlite3.Connection:
    from pipectl.store.db import connect as _connect
    from pipectl.store.postgres import is_url

    given = (ctx.find_root().obj or {}).get("db")
    if is_url(given):
        db_path(ctx)  # refuses a command that does not run on a server yet
        from pipectl.services import clock
        from pipectl.store.postgres.connection import open_store
        from pipectl.values import iso

        conn = open_store(given, iso(clock.now()))
        ctx.call_on_close(conn.close)
        return conn  # type: ignore[return-value]

    path = db_path(ctx)
    ctx.find_root().obj["db"] = str(path)
    command = ctx.command_path.partition(" ")[2]
    from pipectl.services import clock
    from pipectl.values import iso

    conn = _connect(path, notice=notice, read_only_ok=command in READS, now=iso(clock.now()))
    ctx.call_on_close(conn.close)
    if command not in READS:
        from pipectl.services import identity

        identity.use(conn)
    return conn


def notice(text: str) -> None:
    from pipectl.views.common import note

    note(text)


def now() -> datetime:
    """The current moment (the services' clock: PIPECTL_NOW overrides it)."""
    from pipectl.services import clock

    return clock.now()


def moment(at: str | None) -> datetime:
    """The moment a write happened: now, or --at (which may not lie in the future)."""
    from pipectl.services import clock

    return clock.moment(at)


def at_arg(at: str | None) -> datetime | None:
    """--at checked before the database is opened; None (now) is read by the service, under
    the write lock, so that it is never earlier than an event another process just wrote."""
    return None if at is None else moment(at)


def in_arg(text: str | None) -> str | None:
    """--in's currency code, checked before the database is opened."""
    if text is None:
        return None
    from pipectl.domain.rates import currency_arg

    return currency_arg(text)


def owner_arg(text: str | None) -> str | None:
    """The --owner of a command that reads, cleaned and NFC-normalised as stored names are (a
    name typed in decomposed form still matches); ``me`` is the user (PIPECTL_USER, else the
    login name: ``services.identity``; on a server with a team, the owner name of the role's
    deals: ``connect_for_owner``). Checked before the database is opened."""
    if text is None:
        return None
    if text.strip().lower() == "me":
        from pipectl.services import identity

        me = identity.actor()
        if me is None:
            raise UsageError("--owner me: pipectl cannot tell who you are",
                             hint="set PIPECTL_USER to your name as deals' owner")
        return me
    from pipectl.values import clean_text

    return clean_text(text, "--owner", required=True)


def connect_for_owner(ctx: typer.Context, text: str | None
                      ) -> tuple[sqlite3.Connection, str | None]:
    """The connection of a command that reads, and its --owner (owner_arg, checked before the
    database is opened). When no deal has that owner, a note on stderr names the owners it
    may have meant; the command's own output is unchanged (an empty list, a report of zeros)."""
    owner = owner_arg(text)
    conn = connect(ctx)
    if owner is not None and text is not None and text.strip().lower() == "me":
        from pipectl.services.team import my_owner

        owner = my_owner(conn) or owner  # a team member's deals carry their owner name
    if owner is not None:
        from pipectl.services.names import match_owner

        match = match_owner(conn, owner)
        if match.several:
            conn.close()
            from pipectl.values import fold

            alike = len({fold(k) for k in match.several}) == 1  # only accents or case differ
            raise UsageError(f"--owner {owner!r} matches several owners: "
                             f"{', '.join(map(repr, match.several))}",
                             hint="type the name as it is written, accents included" if alike
                             else "give more of the name")
        if match.owner is None:
            from pipectl.views.common import note

            note(_no_such_owner(owner, match.known))
        owner = match.owner or owner
    return conn, owner


def _no_such_owner(owner: str, known: list[str]) -> str:
    from pipectl.values import fold

    said = f"no deal is owned by {owner!r}"
    if not known:
        return f"{said}; no deal has an owner yet"
    # (a name the same without accents and case, or a word's start, is matched: not here)
    import difflib

    by_fold = {fold(k): k for k in known}
    same = [by_fold[m] for m in difflib.get_close_matches(fold(owner), by_fold, n=3)]
    if same:
        meant = " or ".join(map(repr, same))
        return f"{said}; did you mean {meant}?"
    shown = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
    return f"{said}; owners: {shown}"


def positive_limit(limit: int | None) -> int | None:
    """--limit as given; beyond SQLite's largest integer it means "all" (no overflow)."""
    if limit is not None and limit < 0:
        raise UsageError("--limit may not be negative")
    if limit is not None and limit > 2**63 - 1:
        return None
    return limit
