"""docs/ and --help must never disagree."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_matches_help() -> None:
    from pipectl.cli.reference import render

    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/cli.md is out of date: run  python -m pipectl.cli.reference > docs/cli.md"
    )


def test_stage_guide_matches_the_stage_table() -> None:
    """Every stage's key, label and default probability in docs/stages.md is the code's."""
    from pipectl.domain.pipeline import DEFAULT

    text = (DOCS / "stages.md").read_text(encoding="utf-8")
    for s in DEFAULT.stages:
        row = re.search(rf"^\| *{s.order or '-'} *\| *`{s.key}` *\| *{re.escape(s.label)} *\|"
                        rf" *{s.probability} ?% *\|", text, re.M)
        assert row, f"docs/stages.md has no row for {s.key} ({s.label}, {s.probability} %)"


def test_every_command_in_the_readme_tour_exists() -> None:
    from pipectl.cli.reference import render

    reference = render()
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    for command in set(re.findall(r"^\$ pipectl (?:--db \S+ )?([a-z]+)", readme, re.M)):
        assert f"## pipectl {command}\n" in reference, command


def test_ci_runs_the_readme_test_command() -> None:
    root = DOCS.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.+?)\n```", readme, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    demo_cmd = next(b for b in blocks if "pipectl demo" in b)
    assert demo_cmd.startswith("python3 -m venv .venv && ")
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines()
