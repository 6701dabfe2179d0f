"""The Typer app. Commands are thin: parse, call the store, render, map errors to exit codes.

Heavy modules (sqlite_utils, report code, Rich tables) are imported inside the commands that
use them, so `pipectl --help` and `pipectl --version` stay fast (see docs/performance.md).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from pipectl import __version__
from pipectl.errors import Interrupted, PipectlError, Signalled, UsageError


class PipectlGroup(TyperGroup):
    """Maps every error to one line on stderr and its exit code; never a traceback."""

    # For the root's --help only: name-and-help stand-ins for the commands, so listing them does
    # not build every command's parameters (see _build_only_the_invoked_command).
    listing: ClassVar[list[TyperCommand]] = []

    def __init__(self, *args, **kwargs):
        if PipectlGroup.listing and kwargs.get("name") == app.info.name:
            stand_ins = {c.name: c for c in PipectlGroup.listing}
            kwargs["commands"] = {**stand_ins, **(kwargs.get("commands") or {})}
        if kwargs.get("name") == app.info.name:  # the root: shell completion's options
            kwargs["params"] = [*(kwargs.get("params") or []), *_completion_options()]
        super().__init__(*args, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        """The root's own options (``pipectl --db`` with no file, ``pipectl --bogus``): one
        ``error:`` line too, like every other error (click printed Usage/Try/Error)."""
        try:
            if parent is None:  # the root: its options may also follow the command's name
                args = _root_options_first(self, list(args))
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:
            if (
                type(exc).__module__.startswith(("click", "typer"))
                and hasattr(exc, "format_message")
                and type(exc).__name__ != "NoArgsIsHelpError"  # bare `pipectl`: the help
            ):
                typer.echo(f"error: {exc.format_message()} (see pipectl --help)", err=True)
                sys.exit(getattr(exc, "exit_code", 2))
            raise

    def invoke(self, ctx):
        db = sys.modules.get("pipectl.store.db")
        if db is not None:  # a new command (in-process callers run several)
            db.commits = 0
        try:
            return self._invoke(ctx)
        finally:
            try:  # noqa: SIM105 - plain try: no Python code of contextlib's where it can land
                _settled()
            except Signalled:  # came as the command ended: its outcome (already told) stands
                pass

    def _invoke(self, ctx):
        try:
            return self._run(ctx)
        except PipectlError as exc:
            _fail(ctx, exc)
        except KeyboardInterrupt as exc:
            _interrupted(ctx, exc)
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
            ctx.exit(0)
        except Exception as exc:
            module = type(exc).__module__
            if module.startswith(("click", "typer")):
                if hasattr(exc, "format_message"):  # a bad option or argument: one line too
                    sub = ctx.invoked_subcommand
                    where = (
                        exc.ctx.command_path
                        if getattr(exc, "ctx", None)
                        else f"pipectl {sub}"
                        if sub
                        else "pipectl"
                    )
                    typer.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
                    ctx.exit(exc.exit_code)
                raise  # Exit and Abort: click's job
            if _caused_by_ctrl_c(exc):  # e.g. Ctrl-C inside an import, wrapped by Python
                _interrupted(ctx, exc)
            if module == "sqlite3":
                from pipectl.store.db import translate

                _fail(ctx, translate(exc, ctx.obj.get("db") if ctx.obj else None))
            if module.startswith("psycopg"):  # a command run against a PostgreSQL server
                from pipectl.store.postgres.connection import translate as server_error

                _fail(ctx, server_error(exc, (ctx.obj or {}).get("db") or "the server"))
            if isinstance(exc, OSError):  # a file named on the command line: missing, too long
                _fail(ctx, PipectlError(_os_error(exc)))
            if isinstance(exc, ValueError) and "null byte" in str(exc):  # only from Python callers
                _fail(ctx, UsageError("a file name may not contain a NUL character"))
            # A bug: still one line and no traceback (the transaction was rolled back).
            _fail(
                ctx,
                PipectlError(
                    f"internal error ({type(exc).__name__}: {_short(str(exc))}); "
                    "nothing was changed",
                    hint="please report this bug with the command you ran",
                ),
            )

    def _run(self, ctx: typer.Context) -> object:
        """The command; on a PostgreSQL server, run again after a serialization failure or a
        deadlock, when that cannot be told from one run (``cli/retry.py`` says why here)."""
        from pipectl.store.postgres import is_url

        url = ctx.params.get("db")
        if not is_url(url):
            return super().invoke(ctx)
        from pipectl.cli import retry

        field = "_protected_args" if "_protected_args" in vars(ctx) else "protected_args"
        line = (list(getattr(ctx, field)), list(ctx.args))

        def again() -> None:  # click consumes the command line as it runs the command
            setattr(ctx, field, list(line[0]))
            ctx.args = list(line[1])

        return retry.run(lambda: super(PipectlGroup, self).invoke(ctx), again=again,
                         args=[*line[0], *line[1]], url=url)


def _is_option(param: object) -> bool:
    return getattr(param, "param_type_name", None) == "option"  # typer's click or click's


def _takes_value(param: object) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def _root_options_first(root: TyperGroup, args: list[str]) -> list[str]:
    """``pipectl list --db FILE`` read as ``pipectl --db FILE list``: the root's options found
    after the command's name move before it, in their order (the last one given still wins).
    Left where they are: anything after ``--``, an option the command (or its group) defines
    itself, and the value of one of the command's own options. The root's help stays the
    command's: ``pipectl list --help`` is list's."""
    root_options = {name: p for p in root.params if _is_option(p)
                    for name in (*p.opts, *p.secondary_opts)}
    i = 0
    while i < len(args):  # the command's name: the first token that is not a root option
        token = args[i]
        if token == "--" or token == "-" or not token.startswith("-"):
            break
        name, eq, _ = token.partition("=")
        i += 2 if name in root_options and _takes_value(root_options[name]) and not eq else 1
    if i >= len(args) or args[i] in ("--", "-") or args[i] not in root.commands:
        return args  # no command, or an unknown one: click says so
    command = root.commands[args[i]]
    own: dict[str, Any] = {}
    moved: list[str] = []
    kept: list[str] = []
    rest = args[i + 1:]
    j = 0
    while True:
        for p in command.params:
            if _is_option(p):
                own.update(dict.fromkeys((*p.opts, *p.secondary_opts), p))
        while j < len(rest):
            token = rest[j]
            j += 1
            if token == "--":
                kept.extend(rest[j - 1:])
                j = len(rest)
                break
            name, eq, _ = token.partition("=")
            if token.startswith("-") and name in own:
                kept.append(token)
                if _takes_value(own[name]) and not eq and j < len(rest):
                    kept.append(rest[j])  # its value, whatever it looks like
                    j += 1
            elif token.startswith("-") and name in root_options:
                moved.append(token)
                if _takes_value(root_options[name]) and not eq:
                    if j >= len(rest):  # `pipectl list --db`: click's own one-line error
                        return [*args[:i], *moved]
                    moved.append(rest[j])
                    j += 1
            else:
                kept.append(token)
                if token in (getattr(command, "commands", None) or {}):
                    command = command.commands[token]  # `db check`: its options count too
                    break
        else:
            break
    return [*args[:i], *moved, args[i], *kept]


def _interrupted(ctx: typer.Context, exc: BaseException | None = None) -> None:
    signal = _signal_of(exc)
    what = f"interrupted by {signal.name}" if signal else "interrupted"
    db = sys.modules.get("pipectl.store.db")
    saved = db is not None and db.commits  # too late: the change was already saved
    error = Interrupted(f"{what} after the change was saved" if saved
                        else f"{what}; nothing was changed")
    if signal is not None:
        error.exit_code = 128 + signal.signum  # as a shell reports a process killed by it
    _fail(ctx, error)


def _in_chain(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in ``exc``'s chain of causes (Python wraps a Ctrl-C
    that lands inside an import, for one), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _signal_of(exc: BaseException | None) -> Signalled | None:
    found = _in_chain(exc, Signalled)
    return found if isinstance(found, Signalled) else None


def _on_signal(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP end a command as Ctrl-C does (rollback, temporary files removed),
    not by killing Python where it stands. A second signal while that cleanup runs is ignored:
    the cleanup is short, and SIGKILL still ends everything."""
    import signal

    for each in _SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Signalled(signum, signal.Signals(signum).name)


_SIGNALS: tuple[int, ...] = ()


def _settled() -> None:
    """The command is over (done, or failed and said so): a SIGTERM or SIGHUP now, while the
    process exits, is ignored rather than raised where Python shuts down (a traceback from
    its threading module, or a wrong exit code). Only where main() installed the handlers."""
    if _SIGNALS:
        import signal

        for each in _SIGNALS:
            if signal.getsignal(each) is _on_signal:
                signal.signal(each, signal.SIG_IGN)


def _handle_signals() -> None:
    import signal

    global _SIGNALS
    _SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
    for each in _SIGNALS:
        if signal.getsignal(each) is signal.SIG_DFL:  # nohup's SIG_IGN is kept
            signal.signal(each, _on_signal)


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    return _in_chain(exc, KeyboardInterrupt) is not None


def _short(text: str, most: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"


def _os_error(exc: OSError) -> str:
    what = (exc.strerror or str(exc)).lower()
    if exc.filename is not None:
        return f"{_short(str(exc.filename))}: {what}"
    return what


def _fail(ctx: typer.Context, exc: PipectlError) -> None:
    # One line per problem, and nothing a terminal would act on (escapes, newlines typed into
    # a value).
    for line in exc.lines():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
        typer.echo(f"error: {text}", err=True)
    ctx.exit(exc.exit_code)


app = typer.Typer(
    cls=PipectlGroup,
    name="pipectl",
    help="Track deals through your sales pipeline, from the terminal.\n\n"
    "Examples:\n\n"
    '  pipectl add "Acme renewal" --company Acme --value 12000 --currency EUR\n\n'
    "  pipectl advance 1\n\n"
    "  pipectl board",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pipectl {__version__}")
        raise typer.Exit()


COMPLETION_FLAGS = ("--show-completion", "--install-completion")


def _completion_options() -> list[TyperOption]:
    """--show-completion and --install-completion, as the root group's own Click options:
    made here directly, they cost no signature analysis at start-up (Typer's would, ~1 ms)."""
    return [
        TyperOption(
            param_decls=["--show-completion"], type=str, callback=_completion_script,
            is_eager=True, expose_value=False, metavar="SHELL",
            help="Print the completion script for bash, zsh or fish (default: the shell you "
            "are in), e.g. source <(pipectl --show-completion bash).",
        ),
        TyperOption(
            param_decls=["--install-completion"], type=str, callback=_completion_script,
            is_eager=True, expose_value=False, metavar="SHELL",
            help="Install completion for bash, zsh or fish (default: the shell you are in), "
            "e.g. pipectl --install-completion zsh; then open a new shell.",
        ),
    ]


def _completion_script(ctx: typer.Context, param: typer.CallbackParam, value: str | None
                       ) -> None:
    """--show-completion SHELL prints the script; --install-completion SHELL installs it."""
    if value is None or ctx.resilient_parsing:
        return
    from pipectl.cli import completion

    shell = value.strip().lower()
    if shell not in completion.SHELLS:
        raise typer.BadParameter(
            f"{value!r} is not a shell pipectl completes for: bash, zsh or fish"
            if shell else "give the shell: bash, zsh or fish (it could not be told)")
    if param.name == "show_completion":
        typer.echo(completion.script(shell), nl=False)
    else:
        path, line = completion.install(shell)
        added = f"; added to {'~/.bashrc' if shell == 'bash' else '~/.zshrc'}: {line}"
        typer.echo(f"{shell} completion installed in {path}{added if line else ''}")
        typer.echo("Open a new shell to use it.")
    raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="PIPECTL_DB",
            metavar="PATH",
            help="Database file. Default: pipeline.db in the user data directory.",
        ),
    ] = None,
    utc: Annotated[
        bool,
        typer.Option(
            "--utc",
            envvar="PIPECTL_UTC",
            help="Show times in UTC, and read times typed without an offset as UTC, instead "
            "of your local time zone (TZ, else the system's), e.g. pipectl show 3 --utc. "
            "JSON and CSV are always UTC.",
        ),
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            help="Tables as tab-separated text (a header row, no box, no colour, nothing cut) "
            "for grep, cut and awk; other lines go to stderr, e.g. pipectl --plain list | cut "
            "-f2. PIPECTL_FORMAT=plain does the same.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Track deals through your sales pipeline, from the terminal."""
    if db is not None and not db.strip():  # `--db "$UNSET"` must not mean the real pipeline
        raise UsageError(
            "--db is empty", hint="give a file, or leave --db out for your default pipeline"
        )
    from pipectl import localtime

    localtime.use_utc(utc)
    ctx.obj = {"db": db, "plain": plain or _format_is_plain()}


def _format_is_plain() -> bool:
    """PIPECTL_FORMAT: plain (tab-separated tables, as --plain) or table (the default)."""
    import os

    given = os.environ.get("PIPECTL_FORMAT", "").strip().lower()
    if given not in ("", "table", "plain"):
        raise UsageError(f"PIPECTL_FORMAT={given!r} is not a format",
                         hint="set it to plain (as --plain) or table, or unset it")
    return given == "plain"


def _register() -> None:
    """Each command group registers its commands (their bodies import what they need)."""
    from pipectl.cli import (
        board,
        dbcmd,
        deals,
        forecasting,
        log,
        pipelines,
        rates,
        reports,
        team,
        transfer,
        undo,
    )

    for module in (deals, undo, board, reports, log, forecasting, transfer, pipelines, rates,
                   team, dbcmd):
        module.register(app)


_register()


def _build_only_the_invoked_command(argv: list[str]) -> None:
    """Let Typer build just the command being run, not all of them (~0.4 ms each).

    Typer turns every registered command into a Click command at each start (signatures, type
    hints, parameters). A run needs only its own. The root's --help and --version, a run without
    a command, and an unknown name keep the full app (help lists every command; a typo still
    gets Click's message).
    """
    from typer.main import get_command_name

    def name(info) -> str:
        return info.name or get_command_name(info.callback.__name__ if info.callback else "")

    tokens = iter(argv)
    for token in tokens:
        if token == "--db":  # the one root option that takes a value
            next(tokens, None)
            continue
        if token == "--version" or token.partition("=")[0] in COMPLETION_FLAGS:
            # answered while parsing the root's options: no command
            app.registered_commands, app.registered_groups = [], []
            return
        if token in ("-h", "--help"):
            break
        if token.startswith("-"):
            continue
        commands = [c for c in app.registered_commands if name(c) == token]
        groups = [g for g in app.registered_groups if g.name == token]
        if commands or groups:
            app.registered_commands, app.registered_groups = commands, groups
        return
    # The root's help (asked for, or no command given): list the commands from their names and
    # docstrings, exactly as Typer would (same class, help and flags), without their parameters.
    from inspect import cleandoc, getdoc

    PipectlGroup.listing = [
        (c.cls or TyperCommand)(
            name=name(c),
            help=getdoc(c.callback) if c.help is None else cleandoc(c.help),
            short_help=c.short_help,
            hidden=c.hidden,
            deprecated=c.deprecated,
            rich_markup_mode=app.rich_markup_mode,
        )
        for c in app.registered_commands
    ]
    app.registered_commands = []


def main() -> int:
    """Console-script entry point."""
    import os

    if os.environ.get("_PIPECTL_COMPLETE"):  # a shell's Tab: cli/completion.py answers
        from pipectl.cli import completion

        return completion.respond(os.environ["_PIPECTL_COMPLETE"], sys.argv[1:])
    registered = (app.registered_commands, app.registered_groups)
    if any(flag in sys.argv for flag in COMPLETION_FLAGS):  # without a shell: this one's
        from pipectl.cli import completion

        sys.argv[1:] = completion.with_shell(sys.argv[1:])
    try:
        _handle_signals()
        _build_only_the_invoked_command(sys.argv[1:])
        app()
    except KeyboardInterrupt as exc:  # pragma: no cover - outside a command (during start-up)
        signal = _signal_of(exc)
        by = f" by {signal.name}" if signal else ""
        sys.stderr.write(f"error: interrupted{by}; nothing was changed\n")  # no command ran
        return 128 + signal.signum if signal else 130
    except Exception as exc:  # pragma: no cover - Ctrl-C in an import, wrapped by Python
        if not _caused_by_ctrl_c(exc):
            raise
        signal = _signal_of(exc)
        by = f" by {signal.name}" if signal else ""
        sys.stderr.write(f"error: interrupted{by}; nothing was changed\n")
        return 128 + signal.signum if signal else 130
    finally:
        try:  # noqa: SIM105
            _settled()
        except Signalled:  # came as the command ended: its outcome stands
            pass
        app.registered_commands, app.registered_groups = registered
        PipectlGroup.listing = []
    return 0
