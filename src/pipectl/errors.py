"""Every error pipectl reports on purpose, each with its exit code.

The domain raises these; the CLI prints ``str(error)`` as one line on stderr and exits with
``error.exit_code``. Nothing here imports anything heavy.
"""

from __future__ import annotations


class PipectlError(Exception):
    """Base class: a domain error (exit 1) unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, more: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.more = tuple(more)  # further problems, one line each (a file's every mistake)

    def lines(self) -> list[str]:
        """One line per problem; the hint goes with the last."""
        out = [self.message, *self.more]
        if self.hint:
            out[-1] = f"{out[-1]} ({self.hint})"
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


class UsageError(PipectlError):
    """The command line itself is wrong: unknown stage, bad date, bad amount (exit 2)."""

    exit_code = 2


class NotFound(PipectlError):
    """No deal with that id."""


class MoveRefused(PipectlError):
    """The pipeline rules refuse a move; the hint says what to do instead."""


class DatabaseError(PipectlError):
    """The database file is missing, foreign, corrupt, read-only or from a newer pipectl."""


class DatabaseDamaged(DatabaseError):
    """The file is a pipectl database no longer whole (truncated, an impossible header)."""


class DatabaseBusy(PipectlError):
    """Another process held the write lock for longer than the busy timeout (exit 75)."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class Interrupted(PipectlError):
    """Ctrl-C: the transaction was rolled back (exit 130)."""

    exit_code = 130


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program was (``cli.main`` installs the handler) so
    that every transaction rolls back and every half-written file is removed, as for Ctrl-C.
    The exit code is 128 + the signal's number, as a shell reports a process killed by it."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name
