"""A command that meets a serialization failure or a deadlock on a PostgreSQL server is run
again, a bounded number of times: a user never sees one.

**What is retried.** Only SQLSTATE ``40001`` (serialization_failure) and ``40P01``
(deadlock_detected): the server has rolled the transaction back and says that the same work,
run again, may well succeed. ``55P03`` (lock_not_available, pipectl's busy timeout) is *not*
retried: the command has already waited the whole busy timeout, and it exits 75 at once.
At most ``ATTEMPTS`` runs in all, with a short jittered pause between two (``pause``: about
0.05, 0.1, 0.2, 0.4 s, so under a second of waiting in all); after the last, the one-line
busy error (exit 75), nothing changed.

**Where: the whole command, from the root of the CLI** (``PipectlGroup._invoke`` calls
``run``), not the transaction. The services own their transactions
(``with store.db.transaction(conn): ...``), and a ``with`` block cannot run its body twice;
retrying there would mean turning every service's block into a function, and any work a
command did before its transaction (reading "now", checking a file, reading the deal) would
go stale. A command is one transaction, so running it again from the top on the rolled-back
transaction is exactly "the unit of work again": its arguments parsed anew, a new
connection, "now" read again under the write lock, every read made again in the new
transaction. The first run's connection is closed as its command context ends, before the
next run opens its own.

**Only when a second run cannot be told from a first.** A command is run again only if all
of these hold when it fails:

- the error, or the error it was raised from, is a psycopg error with SQLSTATE 40001 or
  40P01 (``conflict``);
- nothing this command did was committed (``store.db.commits`` is 0: a command of several
  transactions that failed in its second is not repeated);
- nothing was written to standard output or standard error (``_Watch``: the streams are
  watched while the command runs), so no line is printed twice and no half output is
  followed by a whole one;
- no input was read that cannot be read again: standard input was not read, and no argument
  names ``-``, a pipe, a FIFO or a device (``rereadable``).

Otherwise the error goes to the user as before (one line, exit 75). Only a command given a
server URL (``--db``, ``PIPECTL_DB``) goes through here; a SQLite command runs exactly as
before (the file's write lock is never a deadlock, and SQLite has no serialization failure).
"""

from __future__ import annotations

import os
import random
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

ATTEMPTS = 5
CONFLICTS = frozenset({"40001", "40P01"})
FIRST_PAUSE_S = 0.05
MOST_PAUSE_S = 1.0

T = TypeVar("T")


def conflict(exc: BaseException | None) -> BaseException | None:
    """The psycopg error with SQLSTATE 40001 or 40P01 (a serialization failure, a deadlock)
    that ``exc`` is, or was raised from (``raise translate(exc) from exc``); else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (type(exc).__module__.startswith("psycopg")
                and getattr(exc, "sqlstate", None) in CONFLICTS):
            return exc
        exc = exc.__cause__
    return None


def pause(attempt: int) -> float:
    """Seconds to wait after run ``attempt`` (1-based) failed: doubling from 50 ms, each
    between half and one and a half times that (two commands that met in a deadlock do not
    meet again in step), never above a second."""
    base = FIRST_PAUSE_S * 2 ** (attempt - 1)
    return min(MOST_PAUSE_S, base * random.uniform(0.5, 1.5))


def rereadable(args: list[str]) -> bool:
    """Whether every file the command line may name can be read a second time: not ``-``
    (standard input), not a pipe, FIFO, socket or device (``<(...)``, ``/dev/stdin``)."""
    for arg in args:
        for token in (arg, arg.partition("=")[2]) if arg.startswith("--") else (arg,):
            if token == "-":
                return False
            try:
                mode = os.stat(token).st_mode
            except (OSError, ValueError):
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return False
    return True


class _Watch:
    """Whether the command has written to stdout or stderr, or read from stdin."""

    def __init__(self) -> None:
        self.used = False


class _Watched:
    """A stream as it was (every other attribute passed through), that marks its ``_Watch``
    as used when it is written to (something, not ``""``) or read from; its ``buffer`` too."""

    def __init__(self, stream: Any, watch: _Watch) -> None:
        self._stream = stream
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @property
    def buffer(self) -> _Watched:
        return _Watched(self._stream.buffer, self._watch)

    def write(self, data: Any) -> Any:
        if data:
            self._watch.used = True
        return self._stream.write(data)

    def writelines(self, lines: Any) -> Any:
        self._watch.used = True
        return self._stream.writelines(lines)

    def read(self, *args: Any) -> Any:
        self._watch.used = True
        return self._stream.read(*args)

    def read1(self, *args: Any) -> Any:
        self._watch.used = True
        return self._stream.read1(*args)

    def readinto(self, buffer: Any) -> Any:
        self._watch.used = True
        return self._stream.readinto(buffer)

    def readline(self, *args: Any) -> Any:
        self._watch.used = True
        return self._stream.readline(*args)

    def readlines(self, *args: Any) -> Any:
        self._watch.used = True
        return self._stream.readlines(*args)

    def __iter__(self) -> Iterator[Any]:
        self._watch.used = True
        return iter(self._stream)

    def __next__(self) -> Any:
        self._watch.used = True
        return next(self._stream)


@contextmanager
def _watching() -> Iterator[_Watch]:
    watch = _Watch()
    names = ("stdout", "stderr", "stdin")
    before = {n: getattr(sys, n) for n in names}
    mine = {n: _Watched(s, watch) for n, s in before.items() if s is not None}
    for name, proxy in mine.items():
        setattr(sys, name, proxy)
    try:
        yield watch
    finally:
        for name, proxy in mine.items():
            if getattr(sys, name) is proxy:  # unless someone else has replaced it since
                setattr(sys, name, before[name])


def run(once: Callable[[], T], *, again: Callable[[], None], args: list[str], url: str,
        attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> T:
    """``once()`` (the whole command), run again after ``again()`` (which puts the command
    line back as it was) while it fails with a serialization failure or a deadlock that may
    be retried (see the module's docstring), at most ``attempts`` runs in all. After the last,
    the one-line busy error saying so."""
    can_reread = rereadable(args)
    attempt = 1
    with _watching() as watch:
        while True:
            try:
                return once()
            except Exception as exc:
                server = conflict(exc)
                if server is None or watch.used or not can_reread or _committed():
                    raise
                if attempt >= attempts:
                    from pipectl.store.postgres.connection import conflict_error

                    raise conflict_error(server, url, attempt) from exc
            sleep(pause(attempt))
            attempt += 1
            again()


def _committed() -> bool:
    db = sys.modules.get("pipectl.store.db")
    return bool(db is not None and db.commits)
