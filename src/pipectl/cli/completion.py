"""Shell completion for bash, zsh and fish, on a path of its own.

Each Tab runs ``pipectl`` with ``_PIPECTL_COMPLETE=complete_SHELL`` in its environment and the
line typed so far; ``cli.main`` sees the variable before anything else and calls ``respond``,
which builds only the command being typed (as a normal run does), resolves the line with
Click's own parsing rules (vendored in Typer), and prints the candidates in the form the
shell's function (``script``) reads:

- the first line says what to complete: ``values`` (the lines that follow), ``files`` or
  ``dirs`` (the shell's own file completion);
- zsh and fish: a second line with the part of the word that is not the value (``--owner=``);
  then one line per candidate, ``VALUE<TAB>DESCRIPTION`` for fish, ``VALUE:DESCRIPTION``
  (a ``:`` in the value escaped) for zsh's ``_describe``;
- bash: one line per candidate, already cut and quoted for the word readline replaces.

Values the database holds (deal ids with their names, stage keys and labels, pipelines,
owners, lost reasons, currencies) come from ``services.names`` over a connection that creates
nothing and migrates nothing (``store.db.peek``; a server URL: ``store.postgres.connection.
peek``), bounded to about a second: a missing, locked or silent database completes nothing.
Nothing here runs unless a shell asks, so start-up is unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

VAR = "_PIPECTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
MOST = 100  # candidates at most, from the database
SECONDS = 1.0  # the longest a Tab waits for the database

# What the values of a parameter are, by (command, parameter name); "*" is any command. The
# names are the Python parameters' (Click's), so ``--in`` is ``into`` and ``--not`` ``unmet``.
KINDS: dict[tuple[str, str], str] = {
    ("", "db"): "file",
    ("*", "deal_id"): "deal",
    ("lose", "deal_id"): "deal:open",
    ("qualify", "deal_id"): "deal:open",
    ("advance", "deal_id"): "deal:not lost",
    ("reopen", "deal_id"): "deal:lost",
    ("*", "owner"): "owner",
    ("*", "pipeline"): "pipeline",
    ("pipeline show", "name"): "pipeline",
    ("pipeline export", "name"): "pipeline",
    ("pipeline default", "name"): "pipeline",
    ("pipeline rm", "name"): "pipeline",
    ("add", "stage"): "stage",
    ("list", "stage"): "stage",
    ("move", "stage"): "stage",
    ("reopen", "stage"): "stage",
    ("advance", "to"): "stage",
    ("lose", "reason"): "reason",
    ("*", "currency"): "currency",
    ("*", "into"): "currency",
    ("report", "in_"): "currency",
    ("rate set", "source"): "currency",
    ("rate set", "target"): "currency",
    ("rate rm", "source"): "currency",
    ("rate rm", "target"): "currency",
    ("demo", "path"): "file",
    ("db copy", "to"): "file",
    ("db copy", "source"): "file",
}

# Values every database shares, written as the commands' help gives them.
FIXED: dict[tuple[str, str], tuple[str, ...]] = {
    ("list", "status"): ("open", "won", "lost", "closed", "all"),
    ("export", "status"): ("open", "won", "lost", "all"),
    ("list", "sort"): ("stage", "value", "close", "age", "updated"),
    ("import", "fmt"): ("csv", "json"),
    ("export", "fmt"): ("csv", "json"),
    ("import", "preset"): ("hubspot", "pipedrive", "salesforce", "maven", "pipectl"),
    ("import", "decimal"): ("point", "comma"),
    ("report", "by"): ("owner", "source", "pipeline"),
    ("forecast", "by"): ("month", "quarter"),
    ("team grant", "access"): ("viewer", "rep", "manager"),
}


class Answer:
    """What to complete: ``kind`` "values" (``items``: value and description), "files" or
    "dirs"; ``prefix``: the start of the word that is not the value (``--owner=``). (A plain
    class: dataclasses costs a Tab ~3 ms to import.)"""

    def __init__(self, kind: str = "values", prefix: str = "",
                 items: list[tuple[str, str]] | None = None) -> None:
        self.kind, self.prefix, self.items = kind, prefix, items or []

    def __repr__(self) -> str:
        return f"Answer({self.kind!r}, {self.prefix!r}, {self.items!r})"


# ------------------------------------------------------------------ the request from a shell


def respond(instruction: str, argv: list[str]) -> int:
    """Answer one Tab: ``instruction`` is ``complete_bash``, ``complete_zsh`` or
    ``complete_fish``; ``argv`` the words after the program, the last one being completed
    (bash sends its line in ``_PIPECTL_LINE`` instead, and readline's word in
    ``_PIPECTL_WORD``)."""
    shell = instruction.removeprefix("complete_")
    if shell not in SHELLS:
        sys.stderr.write(f"error: {instruction!r}: pipectl completes for bash, zsh or fish\n")
        return 2
    if shell == "bash":
        words, opened = split_line(os.environ.get("_PIPECTL_LINE", ""))
        word = os.environ.get("_PIPECTL_WORD", words[-1])
    else:  # zsh: the words unquoted; fish: the last one as typed (quotes and all)
        words, opened, word = list(argv or [""]), "", ""
        if shell == "fish":
            words[-1] = split_line(f"pipectl {words[-1]}")[0][-1]
    try:
        answer = complete(words)
    except Exception:  # a completion never shows a traceback: it offers nothing
        answer = Answer()
    out = render(shell, answer, words[-1], word, opened)
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:  # the shell stopped reading
        pass
    return 0


def split_line(line: str) -> tuple[list[str], str]:
    """The words of a shell line as the shell will pass them (quotes and backslashes
    removed), the last one the word being completed ("" after a space); and the quote left
    open in it, if any."""
    words: list[str] = []
    current: list[str] = []
    quote, started, escaped = "", False, False
    for c in line:
        if escaped:
            current.append(c)
            escaped = False
        elif quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                escaped = True
            else:
                current.append(c)
        elif c == "\\":
            escaped, started = True, True
        elif c in "'\"":
            quote, started = c, True
        elif c.isspace():
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(c)
            started = True
    words.append("".join(current))
    return words[1:] or [""], quote  # without the program's name


# ------------------------------------------------------------------ what can come next


def complete(words: list[str]) -> Answer:
    """The candidates for the last of ``words`` (the words after ``pipectl``)."""
    from typer._click import core as click
    from typer._click import shell_completion as resolve
    from typer.main import get_command

    from pipectl import cli

    args, incomplete = list(words[:-1]), words[-1]
    if "--version" in args:  # the line is complete (and its eager option would print)
        return Answer()
    saved = (cli.app.registered_commands, cli.app.registered_groups)
    try:
        cli._build_only_the_invoked_command(args)
        root = get_command(cli.app)
        ctx = resolve._resolve_context(root, {}, "pipectl", list(args))
        target, value = resolve._resolve_incomplete(ctx, list(args), incomplete)
        if isinstance(target, click.Parameter) and args and args[-1] in target.opts:
            # an option waiting for its value stops Click's parsing there: read the line
            # without it, so that the arguments before it (a deal id) are known
            ctx = resolve._resolve_context(root, {}, "pipectl", list(args[:-1]))
    finally:
        cli.app.registered_commands, cli.app.registered_groups = saved
        cli.PipectlGroup.listing = []
    prefix = incomplete[: len(incomplete) - len(value)] if value else incomplete
    if isinstance(target, click.Parameter):
        return values(ctx, target, value, prefix)
    items = [(c.value, _first_sentence(c.help)) for c in target.shell_complete(ctx, value)]
    if not items and not value and not hasattr(target, "commands"):
        # after a command's arguments: its options (Click offers them only after a "-")
        items = [(c.value, _first_sentence(c.help)) for c in target.shell_complete(ctx, "-")]
    return Answer("values", prefix, items)


def kind_of(command: str, name: str) -> str | None:
    """What the values of parameter ``name`` of ``command`` ("" for the root) are."""
    return KINDS.get((command, name)) or (KINDS.get(("*", name)) if command else None)


def values(ctx: Any, param: Any, value: str, prefix: str) -> Answer:
    """The values of ``param`` starting with ``value``."""
    command = ctx.command_path.partition(" ")[2]
    fixed = FIXED.get((command, param.name or ""))
    if fixed is not None:
        return Answer("values", prefix, matching(((v, "") for v in fixed), value))
    kind = kind_of(command, param.name or "")
    if kind is None and hasattr(param.type, "file_okay"):  # a path (Typer's own type)
        kind = "dir" if param.type.dir_okay and not param.type.file_okay else "file"
    if kind in ("file", "dir"):
        return Answer(kind + "s", prefix)
    if kind is None:
        return Answer("values", prefix)
    found = from_database(ctx, lambda conn: _read(conn, kind, ctx, value))
    return Answer("values", prefix, matching(found, value))


def matching(items: Iterable[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """The items whose value starts with ``value``; if none does, those that start with it
    without regard to case and accents (``nguy`` finds ``Nguyễn``)."""
    items = list(items)
    exact = [i for i in items if i[0].startswith(value)]
    if exact or not value:
        return exact
    from pipectl.values import fold

    folded = fold(value)
    return [i for i in items if fold(i[0]).startswith(folded)]


def _read(conn: Any, kind: str, ctx: Any, value: str) -> list[tuple[str, str]]:
    from pipectl.services import names

    if kind.startswith("deal"):
        status = kind.partition(":")[2] or None
        return [(str(i), name) for i, name in names.deals(conn, value, status, MOST)]
    if kind == "stage":
        return _stages(conn, ctx, value)
    if kind == "owner":
        return [(o, "") for o in names.owners(conn)]
    if kind == "reason":
        return [(r, "") for r in names.lost_reasons(conn)]
    if kind == "pipeline":
        return [(p, "default" if n == 0 else "") for n, p in enumerate(names.pipelines(conn))]
    if kind == "currency":
        return [(c, "") for c in names.currencies(conn)]
    return []


def _stages(conn: Any, ctx: Any, value: str) -> list[tuple[str, str]]:
    """Keys (with their labels) of the deal's pipeline (a ``move``: of ``--pipeline``, where
    it goes), else of ``--pipeline``, else of the default pipeline; labels when no key fits."""
    from pipectl.domain.pipeline import LOST
    from pipectl.services import names

    pipeline, deal = ctx.params.get("pipeline"), ctx.params.get("deal_id")
    if deal is not None and not (pipeline and ctx.command.name == "move"):
        pairs = names.stages_of_deal(conn, int(deal))
    else:
        pairs = names.stages(conn, pipeline or None)
    pairs = [(k, label) for k, label in pairs if k != LOST]  # lost: `pipectl lose`
    if any(k.startswith(value) for k, _ in pairs):
        return pairs
    return [(label, k) for k, label in pairs if label != k]


def from_database(ctx: Any, read: Callable[[Any], list[tuple[str, str]]]
                  ) -> list[tuple[str, str]]:
    """What ``read`` finds in the database of the line (``--db``, else PIPECTL_DB, else the
    default file), or nothing: no such file, not a database, locked, a server that does not
    answer within about ``SECONDS``, any error."""
    from pipectl.store.postgres import is_url

    given = ctx.find_root().params.get("db") or os.environ.get("PIPECTL_DB") or None
    with _deadline(SECONDS):
        try:
            if is_url(given):
                from pipectl.store.postgres.connection import peek as peek_server

                conn = peek_server(given, SECONDS)
            else:
                from pipectl.store.db import peek

                conn = peek(_file(given), SECONDS)
            if conn is None:
                return []
            try:
                return read(conn)
            finally:
                conn.close()
        except (Exception, _TooLong):
            return []


def _file(given: str | None) -> Path:
    """The database file: as given, else pipeline.db in the user data directory (not
    created here: a run that opens it does that)."""
    if given:
        return Path(given).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("pipectl", appauthor=False)) / "pipeline.db"


class _TooLong(BaseException):
    """The database did not answer in time (raised by the timer, caught in from_database)."""


class _deadline:  # used as a `with` block
    """Raise _TooLong in the main thread after ``seconds`` (a connect that waits on the
    network); a SQLite statement is stopped by its progress handler instead."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.previous: Any = None

    def __enter__(self) -> None:
        import signal

        if not hasattr(signal, "setitimer"):  # pragma: no cover - not on Windows
            return

        def expired(signum: int, frame: object) -> None:
            raise _TooLong

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _first_sentence(text: str | None) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    cut = text.find(". ")
    return text[: cut + 1] if 0 <= cut < 80 else (text if len(text) <= 80 else text[:79] + "…")


# ------------------------------------------------------------------ the answer, per shell


def render(shell: str, answer: Answer, incomplete: str, word: str, opened: str) -> str:
    """``answer`` in the form ``shell``'s function reads (see the module's docstring).
    bash only: ``word`` is the end of ``incomplete`` readline replaces; ``opened`` a quote
    left open before it."""
    clean = [(_one_line(v), _one_line(h)) for v, h in answer.items]
    if answer.kind != "values":  # bash's readline word has no "--db=" in it
        return answer.kind + "\n" + ("" if shell == "bash" else answer.prefix + "\n")
    if shell == "bash":
        # readline replaces only ``word``: after a "=" or ":", or inside an open quote
        cut = max(0, len(incomplete) - len(_unescaped(word, opened)))
        return "values\n" + "".join(
            f"{_bash_word((answer.prefix + v)[cut:], opened)}\n" for v, _ in clean)
    if shell == "zsh":
        return f"values\n{answer.prefix}\n" + "".join(
            f"{_zsh_escape(v)}:{h}\n" if h else f"{_zsh_escape(v)}\n" for v, h in clean)
    return "values\n" + "".join(
        f"{answer.prefix}{v}\t{h}\n" if h else f"{answer.prefix}{v}\n" for v, h in clean)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if any(c in text for c in "\t\n\r") else text


def _unescaped(word: str, opened: str) -> str:
    if opened:
        return word
    out, escaped = [], False
    for c in word:
        if c == "\\" and not escaped:
            escaped = True
            continue
        out.append(c)
        escaped = False
    return "".join(out)


_SPECIAL = set(" \t\\'\"`$&|;<>()[]{}*?!#~=:,")


def _bash_word(text: str, opened: str) -> str:
    """``text`` as typed into bash: inside the quote the user opened (and closed after it),
    else with each special character escaped."""
    if opened:
        return text + opened
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _zsh_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


# ------------------------------------------------------------------ the shells' functions


BASH = r"""# pipectl completion for bash, sourced from ~/.bashrc (pipectl --install-completion bash)
_pipectl_completion() {
    local IFS=$'\n' line word
    if [[ -n ${COMP_LINE-} ]]; then
        line=${COMP_LINE:0:COMP_POINT}
        word=${2-}
    else  # called by hand with COMP_WORDS and COMP_CWORD only
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
        line=${line//$'\n'/ }
        word=${COMP_WORDS[COMP_CWORD]}
    fi
    local -a reply
    reply=($(_PIPECTL_COMPLETE=complete_bash _PIPECTL_LINE="$line" _PIPECTL_WORD="$word" \
             "${COMP_WORDS[0]/#\~/$HOME}" 2>/dev/null))
    COMPREPLY=()
    case ${reply[0]-} in
        files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$word")) ;;
        dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$word")) ;;
        values) COMPREPLY=("${reply[@]:1}") ;;
    esac
    return 0
}
complete -o nosort -F _pipectl_completion pipectl 2>/dev/null \
    || complete -F _pipectl_completion pipectl
"""

ZSH = r"""#compdef pipectl
# pipectl completion for zsh: a file _pipectl on $fpath (pipectl --install-completion zsh)
_pipectl_completion() {
    local -a reply items
    reply=("${(@f)$(_PIPECTL_COMPLETE=complete_zsh "${(Q)words[1]}" \
                    "${(@Q)words[2,CURRENT-1]}" "${(Q)PREFIX}" 2>/dev/null)}")
    [[ -n ${reply[2]-} ]] && compset -P "${(b)reply[2]}"  # --db=, --owner=
    case ${reply[1]-} in
        files) _files ;;
        dirs) _files -/ ;;
        values)
            items=("${(@)reply[3,-1]}")
            items=(${items:#})
            (( ${#items} )) && _describe -V -t values value items
            ;;
    esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _pipectl_completion "$@"
else
    compdef _pipectl_completion pipectl
fi
"""

FISH = r"""# pipectl completion for fish: ~/.config/fish/completions/pipectl.fish
# (pipectl --install-completion fish)
function __pipectl_complete
    set -l tokens (commandline -opc) (commandline -ct)
    set -l reply (env _PIPECTL_COMPLETE=complete_fish $tokens 2>/dev/null)
    switch "$reply[1]"
        case files dirs  # after "--db=": the path, then the option before it again
            set -l skip (math (string length -- "$reply[2]") + 1)
            set -l typed (string sub -s $skip -- (commandline -ct))
            if test $reply[1] = files
                printf '%s\n' $reply[2](__fish_complete_path "$typed")
            else
                printf '%s\n' $reply[2](__fish_complete_directories "$typed")
            end
        case values
            for item in $reply[2..-1]
                echo $item
            end
    end
end
complete -c pipectl -f -a '(__pipectl_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def script(shell: str) -> str:
    return SCRIPTS[shell]


def detect_shell() -> str | None:
    """The shell pipectl runs under (the parent process, else $SHELL), if one of SHELLS."""
    try:
        import shellingham

        name = shellingham.detect_shell()[0]
    except Exception:
        name = Path(os.environ.get("SHELL", "")).name
    return name if name in SHELLS else None


def with_shell(argv: list[str]) -> list[str]:
    """``pipectl --show-completion`` (or ``--install-completion``) with no shell after it:
    the shell pipectl runs under is given ("" when it cannot be told: the option says so)."""
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token in ("--show-completion", "--install-completion") and (
                i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(detect_shell() or "")
    return out


def install(shell: str, home: Path | None = None) -> tuple[Path, str | None]:
    """Write ``shell``'s script where the shell loads it; for bash and zsh, add the one line
    the start-up file needs unless it is there. The script file and the line added."""
    home = home or Path.home()
    line: str | None
    if shell == "bash":
        target = home / ".bash_completions" / "pipectl.sh"
        rc, line = home / ".bashrc", f"source '{target}'"
    elif shell == "zsh":
        target = home / ".zfunc" / "_pipectl"
        rc, line = home / ".zshrc", "fpath+=~/.zfunc; autoload -Uz compinit; compinit"
    else:
        target = home / ".config" / "fish" / "completions" / "pipectl.fish"
        rc, line = None, None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script(shell), encoding="utf-8")
    if rc is not None and line is not None:
        before = rc.read_text(encoding="utf-8") if rc.is_file() else ""
        if line in before:
            line = None
        else:
            with rc.open("a", encoding="utf-8") as fh:
                fh.write(("" if not before or before.endswith("\n") else "\n") + line + "\n")
    return target, line
