"""The CLI reference (docs/cli.md), generated from the commands' own --help.

    python -m pipectl.cli.reference > docs/cli.md

A test regenerates it and compares, so docs/cli.md and --help never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WIDTH = 100


def _walk(command: Any, path: list[str]) -> Iterator[list[str]]:
    """Every command path, depth first (Typer vendors its own click: duck-typed)."""
    yield path
    if hasattr(command, "list_commands"):
        for name in command.list_commands(None):
            sub = command.get_command(None, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, [*path, name])


def render() -> str:
    import typer.main
    from typer.testing import CliRunner

    from pipectl.cli import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    parts = [
        "# CLI reference\n",
        "Generated from `--help` by `python -m pipectl.cli.reference > docs/cli.md`; a test "
        "keeps the two in sync. Exit codes: 0 ok, 1 domain error (a refused move, an unknown "
        "id, a damaged or foreign database), 2 usage error, 75 database busy, 130 interrupted.\n",
    ]
    for path in _walk(root, []):
        result = runner.invoke(app, [*path, "--help"], terminal_width=WIDTH,
                               max_content_width=WIDTH)
        title = " ".join(["pipectl", *path])
        parts.append(f"## {title}\n\n```text\n{result.stdout.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
