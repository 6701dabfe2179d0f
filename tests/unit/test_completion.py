"""Shell completion's Python side (cli/completion.py): the line split as shells split it, the
candidates for each kind of word, the answer in each shell's form, the scripts' installation,
and that none of it is on the start-up path. The real shells: tests/e2e/test_completion.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipectl.cli import app, completion
from pipectl.cli.completion import Answer, render, split_line
from tests.unit.test_startup_imports import loaded, run_cli


@pytest.mark.parametrize(
    ("line", "words", "opened"),
    [
        ("pipectl", [""], ""),
        ("pipectl ", [""], ""),
        ("pipectl adv", ["adv"], ""),
        ("pipectl advance 1 ", ["advance", "1", ""], ""),
        ("pipectl list --owner Anna\\ K", ["list", "--owner", "Anna K"], ""),
        ('pipectl list --owner "Anna K', ["list", "--owner", "Anna K"], '"'),
        ("pipectl list --owner 'Ng", ["list", "--owner", "Ng"], "'"),
        ('pipectl add "A b" --owner=', ["add", "A b", "--owner="], ""),
        ("pipectl  show   ", ["show", ""], ""),
    ],
)
def test_split_line(line, words, opened):
    assert split_line(line) == (words, opened)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "p.db"
    runner = CliRunner()
    for args in (["add", "Sao Mai", "--owner", "Nguyễn Thị Mai", "--value", "1",
                  "--currency", "EUR"],
                 ["add", "Pilot", "--owner", "Anna", "--currency", "USD", "--value", "2"],
                 ["add", "Gone", "--owner", "Anna"],
                 ["lose", "3", "--reason", "went silent"]):
        result = runner.invoke(app, ["--db", str(path), *args])
        assert result.exit_code == 0, result.output
    monkeypatch.setenv("PIPECTL_DB", str(path))
    return path


def values(words: list[str]) -> list[str]:
    return [v for v, _ in completion.complete(words).items]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["adv"], ["advance"]),
        (["ra"], ["rate"]),
        (["rate", ""], ["set", "list", "rm"]),
        (["db", "c"], ["check", "copy"]),
        (["lose", ""], ["1", "2"]),
        (["reopen", ""], ["3"]),
        (["show", ""], ["1", "2", "3"]),
        (["show", "x"], []),
        (["advance", "2", "--to", "prop"], ["proposal"]),
        (["advance", "2", "--to", "Demo"], ["Demo or meeting"]),  # no key fits: labels
        (["advance", "2", "--to", ""], ["prospecting", "qualification", "meeting", "proposal",
                                         "negotiation", "won", "post_purchase"]),
        (["list", "--owner", ""], ["Anna", "Nguyễn Thị Mai"]),
        (["list", "--owner", "nguyen"], ["Nguyễn Thị Mai"]),
        (["list", "--owner=A"], ["Anna"]),
        (["lose", "1", "--reason", ""], ["went silent"]),
        (["add", "x", "--currency", ""], ["EUR", "USD"]),
        (["stages", "--pipeline", ""], ["default"]),
        (["list", "--status", "c"], ["closed"]),
        (["team", "grant", "anna", "--as", ""], ["viewer", "rep", "manager"]),
        (["note", "1", "--", ""], []),
        (["--version", ""], []),
    ],
)
def test_candidates(db, words, expected):
    assert values(words) == expected


def test_options_and_their_descriptions(db):
    (option, description), = completion.complete(["lose", "1", "--r"]).items
    assert option == "--reason" and description  # its help's first sentence
    assert [v for v, _ in completion.complete(["lose", "1", "--reason", "x", "--"]).items
            ].count("--reason") == 0  # given already


def test_deals_carry_their_names(db):
    assert completion.complete(["lose", ""]).items == [("1", "Sao Mai"), ("2", "Pilot")]


def test_file_arguments_are_left_to_the_shell(db):
    assert completion.complete(["import", "x"]).kind == "files"
    assert completion.complete(["--db", ""]).kind == "files"
    assert completion.complete(["export", "-o", ""]).kind == "files"
    assert completion.complete(["db", "copy", "--to", ""]).kind == "files"


def test_every_parameter_named_for_completion_exists():
    """KINDS and FIXED name parameters by command and name: a rename must update them."""
    from typer.main import get_command

    params: dict[str, set[str]] = {}

    def walk(cmd, path: str) -> None:
        params[path] = {p.name for p in cmd.params}
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(get_command(app), "")
    for command, name in [*completion.KINDS, *completion.FIXED]:
        where = [c for c in params if command in (c, "*")]
        assert any(name in params[c] for c in where), (command, name)


@pytest.mark.parametrize(
    ("shell", "answer", "incomplete", "word", "opened", "out"),
    [
        ("bash", Answer("values", "", [("Anna K", ""), ("A:b", "")]), "A", "A", "",
         "values\nAnna\\ K\nA\\:b\n"),
        ("bash", Answer("values", "--owner=", [("Anna K", "")]), "--owner=A", "A", "",
         "values\nAnna\\ K\n"),
        ("bash", Answer("values", "", [("Anna K", "")]), "Anna", "Anna", '"',
         'values\nAnna K"\n'),
        ("bash", Answer("files", "--db="), "--db=x", "x", "", "files\n"),
        ("zsh", Answer("files", "--db="), "", "", "", "files\n--db=\n"),
        ("zsh", Answer("values", "--owner=", [("a:b", "it\tis"), ("c", "")]), "", "", "",
         "values\n--owner=\na\\:b:it is\nc\n"),
        ("fish", Answer("values", "--owner=", [("Anna", ""), ("1", "Sao\nMai")]), "", "", "",
         "values\n--owner=Anna\n--owner=1\tSao Mai\n"),
    ],
)
def test_render(shell, answer, incomplete, word, opened, out):
    assert render(shell, answer, incomplete, word, opened) == out


def test_completing_against_no_file_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPECTL_DB", str(tmp_path / "none.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert values(["show", ""]) == []
    assert values(["--db", str(tmp_path / "x.db"), "list", "--owner", ""]) == []
    monkeypatch.delenv("PIPECTL_DB")
    assert values(["list", "--owner", ""]) == []  # the default file, not there
    assert list(tmp_path.iterdir()) == []


def test_not_a_database_gives_nothing(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("hello")
    monkeypatch.setenv("PIPECTL_DB", str(tmp_path / "notes.txt"))
    assert values(["show", ""]) == []
    assert (tmp_path / "notes.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_reading_leaves_no_side_files(db):
    assert values(["show", ""]) == ["1", "2", "3"]
    assert sorted(p.name for p in db.parent.iterdir()) == ["p.db"]


def test_show_completion_prints_each_script():
    runner = CliRunner()
    for shell in completion.SHELLS:
        result = runner.invoke(app, ["--show-completion", shell])
        assert result.exit_code == 0
        assert result.output == completion.script(shell)
        assert "_PIPECTL_COMPLETE=complete_" + shell in result.output


def test_show_completion_refuses_another_shell():
    result = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom pipectl.cli import main\n"
         "sys.argv = ['pipectl', '--show-completion', 'tcsh']\nraise SystemExit(main())"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bash, zsh or fish" in result.stderr


def test_a_missing_shell_is_this_one(monkeypatch):
    monkeypatch.setattr(completion, "detect_shell", lambda: "zsh")
    assert completion.with_shell(["--show-completion"]) == ["--show-completion", "zsh"]
    assert completion.with_shell(["--install-completion", "--db", "x"]) == [
        "--install-completion", "zsh", "--db", "x"]
    assert completion.with_shell(["--show-completion", "bash"]) == ["--show-completion", "bash"]


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_install_writes_the_script_and_one_line(tmp_path, shell):
    target, line = completion.install(shell, home=tmp_path)
    assert target.read_text() == completion.script(shell)
    assert completion.install(shell, home=tmp_path) == (target, None)  # a second time: as is
    rc = {"bash": ".bashrc", "zsh": ".zshrc"}.get(shell)
    if rc:
        assert line and (tmp_path / rc).read_text().count(line) == 1
    else:
        assert line is None and target.name == "pipectl.fish"


def test_completion_is_off_the_start_up_path():
    """Only a shell's Tab loads cli/completion.py: not import, --help or --version."""
    for code in ("import pipectl.cli", run_cli("--version"), run_cli("--help")):
        modules = loaded(code)
        assert "pipectl.cli" in modules
        assert "pipectl.cli.completion" not in modules
        assert "pipectl.services.names" not in modules


def test_a_tab_loads_no_report_import_or_migration_code(db):
    modules = loaded("import os\nos.environ['_PIPECTL_COMPLETE'] = 'complete_bash'\n"
                     "os.environ['_PIPECTL_LINE'] = 'pipectl list --owner '\n"
                     "from pipectl.cli import main\nmain()")
    assert "pipectl.services.names" in modules  # the Tab really read the database
    heavy = ("sqlite_utils", "pydantic", "rich", "numpy", "pipectl.reports",
             "pipectl.transfer", "pipectl.views", "psycopg")
    assert [m for m in modules if m.split(".")[0] in heavy or m.startswith(heavy)] == []


def test_the_reasons_completed_are_the_lost_deals(db):
    """What completion offers after lose --reason is what the lost deals say now (a reopened
    deal's reason is gone), read through completion's read-only connection."""
    from pipectl.services import names
    from pipectl.store.db import peek

    runner = CliRunner()
    for args in (["lose", "1", "--reason", "no budget"], ["lose", "2", "--reason", "no budget"],
                 ["reopen", "3"]):
        assert runner.invoke(app, ["--db", str(db), *args]).exit_code == 0
    conn = peek(db)
    try:
        assert names.lost_reasons(conn) == ["no budget"]
    finally:
        conn.close()
