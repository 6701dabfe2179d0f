"""Every example in README.md and docs/*.md runs as shown, in order, on a fresh database
(issue 16), as docs/cli.md is kept equal to --help by test_docs_sync.py.

The convention the documents follow:

- In a fenced block (any language), a line starting with ``$ `` is a command; the lines after
  it, up to the next ``$ `` line or the end of the block, are what it prints. A line ``...``
  stands for lines left out. Blocks without ``$ `` lines (a TOML file, an install command, a
  listing) are not run.
- A document's commands run in document order, each document in a folder of its own with a
  fresh database (``PIPECTL_DB``; ``--db`` names another), ``HOME`` there too, the clock fixed
  at ``NOW`` (a document may set its own with ``<!-- docs-test: now=MOMENT -->``), times shown
  in UTC (``TZ=UTC``; ``$ TZ=Europe/Warsaw pipectl ...`` shows another zone), 100 columns (or
  ``<!-- docs-test: columns=N -->``: docs/screens.md shows 80-column terminals).
- ``$ pipectl ...`` (optionally after ``VAR=value``) runs in-process; ``$ export VAR=value``
  sets a variable for the document's later commands; ``$ cat FILE`` followed by its contents
  writes FILE (so a document creates the files its examples read: a pipeline's TOML);
  ``pipectl import`` of a file that is not there reads it from the real exports in
  ``../shared/data/real`` (``sales_pipeline.csv``, ``hubspot/...``). Any other command (jq,
  grep), and a ``pipectl`` line with a pipe or a redirection (``pipectl pipeline export X >
  x.toml``), runs in a shell (pipectl on its PATH) when that program is installed.
- What a command is shown to print is checked: a shown first line ``error: ...`` is its exact
  first line on stderr with a non-zero exit; a shown ``error:`` line after others (an import's
  bad-row report comes before it) means a non-zero exit too; otherwise the exit is 0; and every
  shown line appears in its output, in order (lines left out with ``...``, or by ending the
  block early, are not checked; a line ending in `` ...`` stands for any line that starts so: a
  path of the reader's). A block whose output is illustrative only says so in a comment right
  above it, ``<!-- docs-test: output not checked: WHY -->``; its commands still run.
- ``<!-- no-run: WHY -->`` right above a block skips it (a server URL, an install): each such
  comment says why, and it is used sparingly.

docs/cli.md is not run: it is generated from --help (test_docs_sync.py), and its examples
show each command's options on a database of the reader's, not a tour in order.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"
NOW = "2026-11-27T12:00:00Z"
DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")
                                  if p.name != "cli.md")]


@dataclass
class Command:
    line: int
    text: str
    output: list[str] = field(default_factory=list)
    check: bool = True


@dataclass
class Document:
    commands: list[Command]
    now: str = NOW
    columns: int = 100


def parse(text: str) -> Document:
    """The document's commands and their shown output, in order."""
    doc = Document([])
    if m := re.search(r"<!-- docs-test: now=(\S+) -->", text):
        doc.now = m.group(1)
    if m := re.search(r"<!-- docs-test: columns=(\d+) -->", text):
        doc.columns = int(m.group(1))
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(```+|~~~+)", lines[i])
        if not fence:
            i += 1
            continue
        indent, mark = fence.group(1), fence.group(2)
        before = "\n".join(lines[max(0, i - 3):i])
        skip = "<!-- no-run:" in before
        check = "<!-- docs-test: output not checked" not in before
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(mark):
            body.append((i + 1, lines[i].removeprefix(indent)))
            i += 1
        i += 1
        if skip:
            continue
        current: Command | None = None
        k = 0
        while k < len(body):
            number, line = body[k]
            if line.startswith("$ "):
                text_ = line[2:]
                while text_.endswith("\\") and k + 1 < len(body):  # a continued line
                    k += 1
                    text_ = text_[:-1] + " " + body[k][1].strip()
                current = Command(number, text_, check=check)
                doc.commands.append(current)
            elif current is not None:
                current.output.append(line.rstrip())
            k += 1
    return doc


def _words(text: str, home: Path) -> list[str]:
    words = shlex.split(text, comments=True)
    return [str(home) + w[1:] if w == "~" or w.startswith("~/") else w for w in words]


def _real(arg: str, folder: Path) -> str:
    """A file an import names: the document's own, else the real export of that name."""
    if not arg.endswith((".csv", ".json")) or (folder / arg).exists():
        return arg
    found = [REAL / arg] if (REAL / arg).is_file() else \
        sorted(REAL.rglob(Path(arg).name)) if REAL.is_dir() else []
    if found and not Path(arg).is_absolute():  # a copy under the name the document uses
        (folder / arg).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[0], folder / arg)
    return arg


def _shell(text: str) -> bool:
    """Whether a command line needs a shell: a pipe, a redirection, ``&&``, ``;``."""
    lex = shlex.shlex(text, posix=True, punctuation_chars="|&;<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        return any(t in ("|", "||", "&&", ";", "<", ">", ">>") for t in lex)
    except ValueError:
        return False


def _same(shown: str, actual: str) -> bool:
    """A shown line ending in `` ...`` stands for every line that starts as it does."""
    if shown.endswith(" ...") and len(shown) > 4:
        return actual.startswith(shown[:-3])
    return shown == actual


def _follows(shown: list[str], actual: list[str]) -> str | None:
    """None when the shown lines appear in ``actual`` in order (``...`` skips lines), else
    the first shown line that does not."""
    at = 0
    for line in shown:
        if line.strip() in ("...", "…") or not line.strip():
            continue
        while at < len(actual) and not _same(line, actual[at]):
            at += 1
        if at == len(actual):
            return line
        at += 1
    return None


@contextmanager
def _built_once(app):
    """Typer builds the click command from the app at every CliRunner.invoke, which is most
    of a small command's time in-process (0.15 s of 0.2); a document runs hundreds: build it
    once for the document (the same command each time, as every pipectl process builds it)."""
    import typer.main
    import typer.testing

    build = getattr(typer.testing, "_get_command", None)
    if build is None:  # another typer: build it every time, as before
        yield
        return
    command = typer.main.get_command(app)
    typer.testing._get_command = lambda a: command if a is app else build(a)
    try:
        yield
    finally:
        typer.testing._get_command = build


def run(doc: Document, folder: Path) -> list[str]:
    """Run the document's commands; the problems, one line each."""
    from pipectl.cli import app

    with _built_once(app):
        return _run(doc, folder, app)


def _run(doc: Document, folder: Path, app) -> list[str]:
    from typer.testing import CliRunner

    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PIPECTL_DB": str(folder / "pipeline.db"), "PIPECTL_NOW": doc.now,
           "HOME": str(home), "COLUMNS": str(doc.columns), "XDG_DATA_HOME": None, "TZ": "UTC",
           "PIPECTL_USER": "Anna Kowalska"}
    # the reader's own settings (PIPECTL_CURRENCY, PIPECTL_UTC, ...) are not the document's
    env.update({k: None for k in os.environ if k.startswith("PIPECTL_") and k not in env})
    problems: list[str] = []
    for cmd in doc.commands:
        where = f"line {cmd.line}: $ {cmd.text}"
        words = _words(cmd.text, home)
        extra: dict[str, str | None] = {}
        while words and re.match(r"^[A-Z_]+=", words[0]):
            name, _, value = words.pop(0).partition("=")
            extra[name] = value
        if not words:
            continue
        if "postgresql://" in cmd.text or any("postgresql://" in str(v) for v in env.values()):
            # never against a real server from a document: such a block is marked no-run
            problems.append(f"{where}: names a server; its block needs <!-- no-run: WHY -->")
            if words[0] == "export":
                env.update(dict(w.partition("=")[::2] for w in words[1:]))
            continue
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                env[name] = value
            continue
        if words[0] == "cat" and len(words) == 2 and cmd.output:
            (folder / words[1]).write_text("\n".join(cmd.output) + "\n", encoding="utf-8")
            continue
        if words[0] != "pipectl" or _shell(cmd.text):
            if words[0] != "pipectl" and shutil.which(words[0]) is None:
                continue
            shell_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
            shell_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
            r = subprocess.run(cmd.text, shell=True, cwd=folder, capture_output=True, text=True,
                               env=shell_env, timeout=120)
            code, out, err = r.returncode, r.stdout, r.stderr
        else:
            args = words[1:]
            if "import" in args:
                args = [_real(a, folder) for a in args]
            runner = CliRunner()
            cwd = os.getcwd()
            os.chdir(folder)
            try:
                result = runner.invoke(app, args, env={**env, **extra})
            finally:
                os.chdir(cwd)
            code, out, err = result.exit_code, result.stdout, result.stderr
            if result.exception and not isinstance(result.exception, SystemExit):
                problems.append(f"{where}: raised {result.exception!r}")
                continue
        shown = cmd.output
        if shown and shown[0].startswith("error:"):
            first = err.splitlines()[0] if err else ""
            if code == 0:
                problems.append(f"{where}: succeeded; the document shows {shown[0]!r}")
            elif cmd.check and first != shown[0]:
                problems.append(f"{where}: says {first!r}, the document {shown[0]!r}")
            continue
        failing = next((x for x in shown if x.startswith("error:")), None)
        if code == 0 and failing:
            problems.append(f"{where}: succeeded; the document shows {failing!r}")
            continue
        if code != 0 and not failing:
            problems.append(f"{where}: exit {code}: {(err or out).strip()[:300]}")
            continue
        if cmd.check:
            actual = [x.rstrip() for x in (out + err).splitlines()]
            missing = _follows(shown, actual)
            if missing is not None:
                problems.append(f"{where}: prints no line {missing!r} (where the document "
                                f"shows it)")
    return problems


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_examples_run_as_shown(name: str, tmp_path: Path, monkeypatch) -> None:
    doc = parse((ROOT / name).read_text(encoding="utf-8"))
    problems = run(doc, tmp_path)
    assert problems == [], f"{name}:\n" + "\n".join(problems)


def test_the_convention_is_read_as_documented() -> None:
    doc = parse(
        "<!-- docs-test: now=2026-01-02T00:00:00Z -->\n"
        "```text\n$ pipectl add A\nAdded deal 1: A (prospecting)\n$ pipectl list \\\n"
        "    --json   # a comment\n...\n```\n\n<!-- no-run: a server -->\n```sh\n"
        "$ pipectl --db postgresql://x/y list\n```\n"
        "<!-- docs-test: output not checked: made today -->\n"
        "  ```console\n  $ pipectl demo\n  some board\n  ```\n")
    assert doc.now == "2026-01-02T00:00:00Z"
    assert [(c.line, c.text, c.output, c.check) for c in doc.commands] == [
        (3, "pipectl add A", ["Added deal 1: A (prospecting)"], True),
        (5, "pipectl list  --json   # a comment", ["..."], True),
        (16, "pipectl demo", ["some board"], False),
    ]
    assert _follows(["a", "...", "c"], ["a", "b", "c"]) is None
    assert _follows(["a", "c", "b"], ["a", "b", "c"]) == "b"
    assert _follows(["Demo database with 50 deals: ..."], ["Demo database with 50 deals: /x"]) \
        is None
    assert _shell("pipectl pipeline export X > x.toml") and _shell("pipectl export | jq .")
    assert not _shell('pipectl add "A > B" --note "x | y"') and not _shell("pipectl list  # a > b")


def test_a_report_before_the_error_line(tmp_path: Path) -> None:
    """A shown ``error:`` line after a report (an import's bad rows) means a failing command:
    the lines are checked, in order, and a success where the document shows it is a problem."""
    doc = parse("```text\n$ cat x.csv\nname,value\nA,abc\n$ pipectl import x.csv\n"
                "1 bad row of 1 in x.csv:\n...\nerror: 1 bad row in x.csv; nothing was imported "
                "(the report above gives row, column and reason of each)\n$ pipectl list\n"
                "No deals.\nerror: nope\n```\n")
    problems = run(doc, tmp_path)
    assert len(problems) == 1, problems
    assert "pipectl list: succeeded; the document shows 'error: nope'" in problems[0]


def test_a_wrong_example_is_caught(tmp_path: Path) -> None:
    """The test fails where a document is wrong: a refused move, a changed output line."""
    doc = parse("```text\n$ pipectl add A\nAdded deal 1: B (prospecting)\n$ pipectl advance 1 "
                "--to won\n$ pipectl advance 1 --to prospecting\nerror: nope\n```\n")
    problems = run(doc, tmp_path)
    assert len(problems) == 3, problems
    assert "prints no line 'Added deal 1: B (prospecting)'" in problems[0]
    assert "exit 1: error: deal 1 cannot skip qualification" in problems[1]
    assert problems[2].endswith("says 'error: deal 1 is already in prospecting', the document "
                                "'error: nope'")


# A month's first second, a month's last, a leap day, a year's end: calendar edges
DAYS = ["2026-11-27T12:00:00Z", "2026-12-01T00:00:01Z", "2027-01-31T23:59:59Z",
        "2028-02-29T08:15:00Z", "2026-12-31T23:00:00Z"]


@pytest.mark.parametrize("now", DAYS)
def test_the_demo_figures_the_readme_quotes_are_those_of_any_day(now: str, tmp_path) -> None:
    """The README's demo figures are what a user gets whatever the day (issue 16): its demo
    commands, run on a demo made at each of DAYS, print every line the README shows, the
    moment of "as of" being that day's."""
    from datetime import datetime

    doc = parse((ROOT / "README.md").read_text(encoding="utf-8"))
    start = next(i for i, c in enumerate(doc.commands) if c.text == "pipectl demo")
    demo = [c for c in doc.commands[start:] if c.text == "pipectl demo" or "demo.db" in c.text]
    checked = [c for c in demo if c.check and c.output]
    assert len(checked) >= 3  # the demo, the report, the report by owner
    shown_at = datetime.fromisoformat(NOW).strftime("%Y-%m-%d %H:%M UTC")
    at = datetime.fromisoformat(now).strftime("%Y-%m-%d %H:%M UTC")
    assert any(shown_at in line for c in checked for line in c.output)
    day = Document([Command(c.line, c.text, [x.replace(shown_at, at) for x in c.output],
                            c.check) for c in demo], now=now)
    assert run(day, tmp_path) == []
