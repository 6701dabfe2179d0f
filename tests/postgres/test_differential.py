"""The same commands against a file and against a PostgreSQL server give the same output,
byte for byte (issue 14's differential tests; the commands in cli.common.SERVER_COMMANDS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

NOW = "2026-12-01T09:00:00Z"


class Both:
    """Runs each command against a file and a server database; both must agree."""

    def __init__(self, file: Path, url: str) -> None:
        self.file, self.url = file, url
        self.runner = CliRunner()

    def run(self, db: str, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
        from pipectl.cli import app

        return self.runner.invoke(app, ["--db", db, *args])

    def __call__(self, *args: str, code: int = 0) -> str:
        here, there = self.run(str(self.file), args), self.run(self.url, args)
        assert here.exit_code == code, (args, here.stdout, here.stderr, here.exception)
        assert there.exit_code == code, (args, there.stdout, there.stderr, there.exception)
        assert there.stdout == here.stdout, args
        assert there.stderr.replace(self.url, "DB") == here.stderr.replace(str(self.file),
                                                                           "DB"), args
        return here.stdout


@pytest.fixture
def both(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Both:
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    # the file's events are recorded as the server records them: as its role
    monkeypatch.setenv("PIPECTL_USER", "postgres")
    return Both(tmp_path / "pipeline.db", pg_url)


def _pipeline(both: Both) -> None:
    both("add", "Hợp đồng Łódź", "--company", "Công ty Nguyễn", "--owner", "Minh Trần",
         "--value", "12000.50", "--currency", "EUR", "--close", "2026-12-20", "--at",
         "2026-03-01T09:30")
    both("add", "Zażółć gęślą jaźń", "--owner", "Łukasz", "--value", "80000", "--currency",
         "PLN", "--probability", "35", "--at", "2026-04-02")
    both("add", "Acme renewal", "--company", "Acme", "--source", "referral", "--stage",
         "qualification", "--note", "met at a fair", "--at", "2026-05-03")
    both("advance", "1", "--at", "2026-03-02", "--note", "intro call")
    both("advance", "1", "--to", "proposal", "--prequalified", "referral", "--at",
         "2026-03-04", code=1)  # a skip the stages do not allow: refused on both
    both("advance", "1", "--prequalified", "referral", "--at", "2026-03-04")
    both("advance", "2", "--at", "2026-04-05")
    both("note", "1", "Call with CFO", "--next", "send quote", "--due", "2026-12-10",
         "--at", "2026-03-06")
    both("note", "3", "first contact", "--at", "2026-05-04")


def test_writes_and_reads_agree(both: Both) -> None:
    _pipeline(both)
    for args in (["list"], ["list", "--status", "all"], ["list", "--json", "--status", "all"],
                 ["list", "--owner", "Minh Trần"], ["list", "--search", "nguyễn"],
                 ["list", "--sort", "value"], ["list", "--stage", "proposal", "--json"],
                 ["list", "--limit", "1"], ["list", "--owner", "me"],
                 ["show", "1"], ["show", "1", "--json"], ["show", "2", "--json"],
                 ["show", "3"]):
        both(*args)
    out = both("show", "1", "--json")
    assert '"actor": "postgres"' in out


def test_refusals_agree(both: Both) -> None:
    _pipeline(both)
    both("show", "99", code=1)
    both("advance", "99", code=1)
    both("advance", "2", "--to", "won", code=1)  # a skip past the checklist's gate
    both("add", "Too far", "--stage", "meeting", code=1)  # past the gate, not qualified
    both("add", "  ", code=2)
    both("note", "1", "", code=2)
    both("list", "--stage", "nowhere", code=2)
    both("list", "--json", "--status", "all")  # and nothing changed


def test_ids_follow_the_largest_as_in_a_file(both: Both) -> None:
    both("add", "One")
    both("add", "Two")
    both("add", "Past the gate", "--stage", "proposal", code=1)  # refused: no id used up
    assert both("add", "Three") == "Added deal 3: Three (prospecting)\n"


PARTNERS = """name = "Partners"
checklist = ["fit"]
stages = [
  { key = "intro", probability = 10 },
  { key = "pilot", probability = 50, gate = "checklist" },
  { key = "contract", probability = 75 },
  { key = "signed", kind = "won" },
]
"""

READS = (
    ["list", "--json", "--status", "all"], ["report", "--json"], ["report"],
    ["report", "--by", "owner", "--json"],
    ["report", "--from", "2026-03-01", "--to", "2026-04-01", "--json"],
    ["report", "--as-of", "2026-04-01", "--json"], ["report", "--pipeline", "Partners"],
    ["report", "--quarter", "--in", "2026-04-01", "--csv"], ["report", "--in", "EUR", "--json"],
    ["forecast", "--json"], ["forecast", "--by", "quarter", "--as-of", "2026-04-01", "--json"],
    ["forecast", "--csv"], ["stale", "--json"], ["stale", "-n", "2"], ["next", "--json"],
    ["next", "--owner", "me"], ["board", "--json"], ["board"], ["stages"], ["export"],
    ["export", "--format", "json"], ["pipeline", "list"], ["pipeline", "show", "Partners"],
    ["rate", "list"], ["show", "1", "--json"], ["show", "4"],
)


@pytest.mark.parametrize("figures", ["read models", "replay"])
def test_every_command_that_runs_on_a_server_agrees(both: Both, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   figures: str) -> None:
    """Both ways to a figure agree across engines: from the read models, and by replaying
    the events (what a server's reports do while a team's rep has left the models marked:
    store.readmodel.settle)."""
    if figures == "replay":
        monkeypatch.setenv("PIPECTL_REPLAY", "1")
    _pipeline(both)
    toml = tmp_path / "partners.toml"
    toml.write_text(PARTNERS, encoding="utf-8")
    monkeypatch.setenv("PIPECTL_NOW", "2026-01-01T00:00:00Z")
    both("pipeline", "apply", str(toml))
    monkeypatch.setenv("PIPECTL_NOW", NOW)
    both("add", "Pilot with Łódź", "--pipeline", "Partners", "--value", "5000", "--currency",
         "EUR", "--owner", "postgres", "--at", "2026-02-01")
    both("advance", "4", "--at", "2026-02-02")
    both("advance", "4", "--at", "2026-02-03", code=1)  # the gate: fit unknown
    both("qualify", "4", "fit", "--at", "2026-02-03")
    both("advance", "4", "--at", "2026-02-04")
    both("qualify", "2", "--budget", "--no-need", "--at", "2026-04-06")
    both("edit", "2", "--value", "90000", "--close", "2026-06-30", "--probability", "",
         "--owner", "Łukasz Nowak", "--at", "2026-04-07")
    both("lose", "3", "--reason", "went with a competitor", "--at", "2026-05-05")
    both("reopen", "3", "--at", "2026-05-06")
    both("lose", "3", "--reason", "no budget", "--at", "2026-05-07")
    both("add", "To remove", "--at", "2026-05-08")
    both("rm", "5", "--yes")
    both("move", "2", "--pipeline", "Partners", "--stage", "intro", "--at", "2026-05-09")
    both("advance", "1", "--at", "2026-05-10")  # by mistake (issue 16): undone
    both("edit", "1", "--value", "1", "--close", "2026-07-01", "--at", "2026-05-10")
    both("undo", "1", "--yes")
    both("undo", "--yes")
    both("rate", "set", "PLN", "EUR", "0.23", "--at", "2026-03-01")
    both("rate", "set", "USD", "EUR", "0.9", "--at", "2026-03-01")
    both("rate", "rm", "USD", "EUR", "--at", "2026-03-01")
    for args in READS:
        both(*args)
    both("pipeline", "rm", "Partners", code=1)  # it holds deals
    both("pipeline", "default", "Partners")
    both("add", "Into the new default", "--at", "2026-06-01")
    both("list", "--json", "--status", "all")


def test_an_import_agrees_row_by_row_and_in_bulk(both: Both, real_data: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pipectl.transfer import common
    from tests.cli.test_import_real import PIPEDRIVE_STAGES

    maps = [a for m in PIPEDRIVE_STAGES for a in ("--stage-map", m)]
    both("import", str(real_data / "pipedrive" / "ambiwalencja_pipedrive_deals_export.csv"),
         "--preset", "pipedrive", *maps)
    monkeypatch.setattr(common, "BULK_BYTES", 0)  # the next file through SQL
    both("import", str(real_data / "maven_crm" / "sales_pipeline.csv"), "--preset", "maven")
    for args in READS:
        if "Partners" not in args:
            both(*args)
