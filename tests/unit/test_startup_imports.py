"""Start-up cannot silently regress: what a fresh interpreter loads for each kind of run.

`pipectl --help` and `--version` should cost little more than starting Python and Typer, so
importing the CLI must not load the database layer, Rich, sqlite-utils, pydantic or the report
and import code; the daily commands must not load what only migrations, reports or imports need.
Each check runs in a fresh interpreter (the test process itself has imported everything).
See docs/performance.md for the figures behind this list.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Never loaded by `import pipectl.cli`, `pipectl --help` or `pipectl --version`.
OFF_THE_START_UP_PATH = (
    "sqlite_utils",  # ~90 ms: only migrations use it
    "pydantic",  # ~45 ms: only the import boundary
    "rich",  # ~45 ms: only the import progress bar (tables are drawn by views/table.py)
    "charset_normalizer",  # ~25 ms: only import (encoding detection)
    "sqlite3",  # only commands that open the database
    "platformdirs",  # only when --db is not given
    "numpy",  # ~100 ms: only calibrate and forecast --range / --backtest
    "pipectl.store",
    "pipectl.views",
    "pipectl.reports",
    "pipectl.transfer",
)

# Never loaded by the daily commands on an up-to-date database.
NOT_FOR_DAILY_COMMANDS = (
    "numpy",
    "sqlite_utils",
    "pydantic",
    "charset_normalizer",
    "pipectl.reports",
    "pipectl.transfer",
)


def loaded(code: str, *, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = (
        "import sys\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except SystemExit:\n"
        "    pass\n"
        "_mods = sorted(sys.modules)\n"
        "import json\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(_mods) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert last.startswith("MODULES "), proc.stderr[-2000:]
    return set(json.loads(last.removeprefix("MODULES ")))


def _hits(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden packages present (a package counts when any of its modules is)."""
    return sorted(
        name for name in forbidden
        if any(m == name or m.startswith(name + ".") for m in modules)
    )


def run_cli(*args: str) -> str:
    return f"from pipectl.cli import main\nsys.argv = ['pipectl', *{list(args)!r}]\nmain()"


def test_import_cli_keeps_heavy_modules_off_the_start_up_path():
    modules = loaded("import pipectl.cli")
    assert "pipectl.cli" in modules and "typer" in modules
    assert _hits(modules, OFF_THE_START_UP_PATH) == []


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_nothing_heavy(flag):
    modules = loaded(run_cli(flag))
    assert _hits(modules, OFF_THE_START_UP_PATH) == []


def test_typer_pinned_below_0_28_which_imports_pydantic():
    """Typer 0.28+ imports pydantic on every run (+~150 ms); 0.27 does not (and not Rich)."""
    import typer

    major, minor = (int(x) for x in typer.__version__.split(".")[:2])
    assert (major, minor) < (0, 28)
    modules = loaded(
        "import typer\napp = typer.Typer()\n@app.command()\ndef main():\n    pass\napp([])"
    )
    assert _hits(modules, ("pydantic", "rich")) == []


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("list", "--json"),
        ("show", "1"),
        ("add", "Acme renewal", "--value", "1200", "--currency", "EUR"),
        ("advance", "1"),
        ("board",),
    ],
    ids=lambda a: " ".join(a),
)
def test_daily_commands_do_not_load_migration_report_or_import_code(tmp_path, args):
    db = tmp_path / "p.db"
    created = subprocess.run(
        [sys.executable, "-m", "pipectl", "--db", str(db), "add", "First deal"],
        capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    modules = loaded(run_cli("--db", str(db), *args))
    assert "sqlite3" in modules  # the command really ran against the database
    assert _hits(modules, NOT_FOR_DAILY_COMMANDS) == []
    if args[0] in ("list", "board"):  # reads: the move rules and write models stay unloaded
        write_code = ("pipectl.domain.rules", "pipectl.models", "pipectl.services.deals")
        assert _hits(modules, write_code) == []
        assert "decimal" not in modules  # only parse_money needs it (~1 ms)


@pytest.mark.parametrize(
    "args",
    [("list",), ("list", "--status", "all"), ("show", "1"), ("board",), ("stages",),
     ("report",), ("report", "--explain"), ("forecast",), ("stale",), ("next",)],
    ids=lambda a: " ".join(a),
)
def test_tables_are_drawn_without_rich(tmp_path, args):
    """views/table.py draws every table: Rich (~45 ms to import) stays for the progress bar."""
    db = tmp_path / "p.db"
    created = subprocess.run(
        [sys.executable, "-m", "pipectl", "--db", str(db), "add", "First deal", "--value", "10"],
        capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    modules = loaded(run_cli("--db", str(db), *args))
    assert "pipectl.views.table" in modules  # the command really drew its table
    assert _hits(modules, ("rich",)) == []


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["--db", "x.db", "list", "--limit", "3"], ["list"]),
        (["--db=x.db", "advance", "1"], ["advance"]),
        (["show", "--help"], ["show"]),
        (["--version"], []),  # answered while parsing the root's options
        (["--help"], "listing"),  # the root's help: names and docstrings only
        (["-h", "list"], "listing"),
        ([], "listing"),
        (["lsit"], "all"),  # unknown: the full app, so Click suggests 'list'
    ],
)
def test_a_run_builds_only_the_command_it_invokes(argv, built):
    from typer.main import get_command_name

    from pipectl import cli

    saved = (cli.app.registered_commands, cli.app.registered_groups)
    every = [c.name or get_command_name(c.callback.__name__) for c in saved[0]]
    try:
        cli._build_only_the_invoked_command(argv)
        names = [c.name or get_command_name(c.callback.__name__)
                 for c in cli.app.registered_commands]
        listed = [c.name for c in cli.PipectlGroup.listing]
        if built == "all":
            assert names == every and len(every) > 10 and listed == []
        elif built == "listing":
            assert names == [] and listed == every
        else:
            assert names == built and listed == []
            assert cli.app.registered_groups == []
    finally:
        cli.app.registered_commands, cli.app.registered_groups = saved
        cli.PipectlGroup.listing = []


@pytest.mark.parametrize(
    "args",
    [["--help"], [], ["-h"], ["--db", "x.db", "--help"], ["list", "--help"], ["db", "--help"],
     ["--version"], ["lsit"]],
    ids=lambda a: " ".join(a) or "(no args)",
)
def test_lean_start_up_prints_exactly_what_the_full_app_prints(tmp_path, args):
    """main() builds only what a run needs; its output and exit code are the full app's."""
    def run(code: str) -> tuple[str, str, int]:
        proc = subprocess.run(
            [sys.executable, "-c", f"import sys\nsys.argv[0] = 'pipectl'\n{code}", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
            env={**__import__("os").environ, "COLUMNS": "80"},
        )
        return proc.stdout, proc.stderr, proc.returncode

    lean = run("from pipectl.cli import main\nraise SystemExit(main())")
    full = run("from pipectl.cli import app\napp()")
    assert lean == full
    assert lean[0] or lean[1]


def test_forecast_does_not_load_the_report_code(tmp_path):
    """forecast needs the snapshot and the Money holder, not `report`'s code (and fractions)."""
    db = tmp_path / "p.db"
    created = subprocess.run(
        [sys.executable, "-m", "pipectl", "--db", str(db), "add", "First deal", "--value", "10"],
        capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    modules = loaded(run_cli("--db", str(db), "forecast"))
    assert "pipectl.reports.forecast" in modules  # the command really ran
    assert _hits(modules, ("pipectl.reports.summary", "fractions", "decimal")) == []
