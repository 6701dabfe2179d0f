"""pipectl pipeline apply|list|show|export|default|rm, add --pipeline, move: end to end through
the CLI on a temp database, asserting exact output and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import engines
from tests.unit.test_pipeline_file import EXAMPLE as AGENCY  # the example, as laid out


@pytest.fixture
def agency(tmp_path: Path, cli) -> Path:
    path = tmp_path / "agency.toml"
    path.write_text(AGENCY)
    cli("pipeline", "apply", str(path))
    return path


def test_a_new_database_has_the_default_pipeline(cli) -> None:
    rows = cli.json("pipeline", "list")
    assert [(r["name"], r["default"], r["deals"], r["version"]) for r in rows] == [
        ("default", True, 0, 1)]
    shown = cli.json("pipeline", "show")
    assert [s["key"] for s in shown["stages"]] == [
        "prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
        "post_purchase", "lost"]
    assert [c["criterion"] for c in shown["checklist"]] == [
        "location", "budget", "authority", "need"]


def test_apply_creates_then_a_custom_pipeline_works_end_to_end(cli, agency) -> None:
    out = cli("add", "Retainer A", "--pipeline", "agency retainers", "--value", "2500",
              "--currency", "EUR").stdout
    assert out == "Added deal 1: Retainer A (lead) in Agency retainers\n"
    assert cli("advance", "1").stdout == "Deal 1 advanced: lead -> discovery\n"
    err = cli("advance", "1", code=1).stderr
    assert err == ("error: deal 1 cannot leave discovery: the checklist is missing budget, "
                   "authority, need (record them with: pipectl qualify 1 budget authority "
                   "need)\n")
    cli("qualify", "1", "budget", "authority", "need")
    assert cli("advance", "1", "--to", "signed").stdout == (
        "Deal 1 skipped ahead: discovery -> signed\n")
    shown = cli.json("show", "1")
    assert (shown["pipeline"], shown["stage"], shown["status"]) == (
        "Agency retainers", "signed", "won")
    assert shown["checklist"] == {"budget": True, "authority": True, "need": True}
    # a criterion of another pipeline is refused, with this one's
    cli("add", "B", "--pipeline", "Agency retainers")
    err = cli("qualify", "2", "location", code=2).stderr
    assert err == ("error: pipeline 'Agency retainers' has no criterion 'location' (its "
                   "checklist: budget, authority, need)\n")
    # stage names are the deal's pipeline's
    assert "unknown stage 'proposal'" in cli("advance", "2", "--to", "proposal", code=2).stderr


def test_pipeline_from_the_environment(cli, agency, monkeypatch) -> None:
    monkeypatch.setenv("PIPECTL_PIPELINE", "Agency retainers")
    cli("add", "Env deal")
    assert cli.json("show", "1")["pipeline"] == "Agency retainers"
    assert [d["id"] for d in cli.json("list")] == [1]
    monkeypatch.delenv("PIPECTL_PIPELINE")
    cli("add", "Default deal")
    assert [d["id"] for d in cli.json("list", "--pipeline", "default")] == [2]
    assert [d["id"] for d in cli.json("list")] == [1, 2] or [d["id"] for d in cli.json(
        "list")] == [2, 1]


def test_export_round_trips_exactly(cli, agency, tmp_path) -> None:
    text = cli("pipeline", "export", "Agency retainers").stdout
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert cli("pipeline", "apply", str(again)).stdout == (
        "Pipeline 'Agency retainers' is unchanged\n")
    assert cli("pipeline", "export", "Agency retainers").stdout == text
    default = cli("pipeline", "export").stdout
    (tmp_path / "d.toml").write_text(default)
    assert "unchanged" in cli("pipeline", "apply", str(tmp_path / "d.toml")).stdout


def test_a_change_is_shown_first_and_versioned(cli, agency, tmp_path) -> None:
    changed = AGENCY.replace("probability = 50", "probability = 60").replace(
        '"Discovery call"', '"Discovery"')
    path = tmp_path / "v2.toml"
    path.write_text(changed)
    dry = cli("pipeline", "apply", str(path), "--dry-run").stdout
    assert dry == ("  stage 'discovery': label 'Discovery call' -> 'Discovery'\n"
                   "  stage 'pitch': probability 50% -> 60%\n"
                   "Dry run: pipeline 'Agency retainers' unchanged\n")
    assert cli.json("pipeline", "show", "Agency retainers")["version"] == 1
    out = cli("pipeline", "apply", str(path)).stdout
    assert out.endswith("Pipeline 'Agency retainers' is now version 2\n")
    shown = cli.json("pipeline", "show", "Agency retainers")
    assert shown["version"] == 2 and [v["version"] for v in shown["versions"]] == [1, 2]


def test_a_change_that_strands_deals_is_refused_until_moved(cli, agency, tmp_path) -> None:
    for name in ("A", "B"):
        cli("add", name, "--pipeline", "Agency retainers", "--stage", "pitch",
            "--prequalified", "known")
    cli("lose", "2", "--reason", "price")
    without = AGENCY.replace(
        '  { key = "pitch",     label = "Pitch",          probability = 50, skippable = true },\n',
        '  { key = "proposal", probability = 60 },\n')
    path = tmp_path / "v2.toml"
    path.write_text(without)
    err = cli("pipeline", "apply", str(path), code=1).stderr
    assert err == ("error: 1 deal sits in pitch, which the new definition of 'Agency "
                   "retainers' drops; nothing was changed (move them with --move pitch=STAGE "
                   "(a stage of the new definition))\n")
    assert cli.json("pipeline", "show", "Agency retainers")["version"] == 1
    bad = cli("pipeline", "apply", str(path), "--move", "pitch=signed", code=2).stderr
    assert "pitch is open and signed is won" in bad
    dry = cli("pipeline", "apply", str(path), "--dry-run", code=1)  # as the real apply
    assert "  1 deal in pitch: refused without --move pitch=STAGE\n" in dry.stdout
    assert dry.stderr.startswith("error: 1 deal sits in pitch")
    # a stage is named as anywhere: key, label or prefix; the same stage twice is refused
    twice = cli("pipeline", "apply", str(path), "--move", "pitch=proposal", "--move",
                "pitch=lead", code=2).stderr
    assert twice == "error: --move pitch is given twice (proposal, lead)\n"
    assert "lost is no stage to move" in cli(
        "pipeline", "apply", str(path), "--move", "pitch=lost", code=2).stderr
    dry = cli("pipeline", "apply", str(path), "--dry-run", "--move", "Pitch=prop").stdout
    assert "  would move 1 deal from pitch to proposal\n" in dry
    out = cli("pipeline", "apply", str(path), "--move", "pitch=proposal").stdout
    assert "  moved 1 deal from pitch to proposal\n" in out
    shown = cli.json("show", "1")
    assert shown["stage"] == "proposal"
    assert shown["events"][-1]["kind"] == "stage"
    assert shown["events"][-1]["from_stage"] == "pitch"
    # the lost deal keeps its history; reopening it says where to go, and --stage does it
    err = cli("reopen", "2", code=1).stderr
    assert err == ("error: deal 2 was lost at pitch, which pipeline 'Agency retainers' no "
                   "longer has as an open stage (reopen it in another: pipectl reopen 2 "
                   "--stage STAGE)\n")
    cli("lose", "1", "--reason", "went quiet")
    assert "only where the stage it was lost at" in cli(
        "reopen", "1", "--stage", "lead", code=1).stderr
    assert cli("reopen", "2", "--stage", "proposal").stdout == "Deal 2 reopened in proposal\n"


@pytest.mark.parametrize(("text", "message"), [
    ('name = "X"\nstages = [\n  { key = "a", probability = 10 },\n]\n',
     "x.toml:2: no won stage"),
    ('name = "X"\nstages = [\n  { key = "a", probability = 101 },\n'
     '  { key = "w", kind = "won" },\n]\n', "x.toml:3:"),
    ('name = "X"\nstages = [\n  { key = "a", probability = 1, gate = "checklist" },\n'
     '  { key = "w", kind = "won" },\n]\n', "x.toml:3:"),
    ('name = "X"\ncolour = 1\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { key = "w", kind = "won" },\n]\n', "x.toml:2: unknown key 'colour'"),
    ('name = "X"\nstages = [\n  { key = "a", probability = 1 },\n  { key = "a", '
     'probability = 2 },\n  { key = "w", kind = "won" },\n]\n', "x.toml:4:"),
])
def test_bad_definitions_say_the_line(cli, tmp_path, text, message) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    err = cli("pipeline", "apply", str(path), code=2).stderr
    assert err.startswith("error: ") and message in err
    assert all(line.startswith(f"error: {path}:") for line in err.splitlines())
    assert [r["name"] for r in cli.json("pipeline", "list")] == ["default"]


def test_every_problem_of_a_file_is_its_own_line(cli, tmp_path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "X"\ncolour = 1\nstages = [\n  { key = "a", probability = 101 },\n'
                    ']\n')
    err = cli("pipeline", "apply", str(path), code=2).stderr.splitlines()
    assert len(err) == 3
    assert [line.removeprefix(f"error: {path}:").split(":")[0] for line in err] == [
        "2", "3", "4"]


def test_default_and_rm(cli, agency) -> None:
    assert cli("pipeline", "default", "agency-retainers").stdout == (
        "Default pipeline: Agency retainers\n")
    cli("add", "Goes to the new default")
    assert cli.json("show", "1")["pipeline"] == "Agency retainers"
    err = cli("pipeline", "rm", "Agency retainers", code=1).stderr
    assert "is the default pipeline" in err
    cli("pipeline", "default", "default")
    err = cli("pipeline", "rm", "Agency retainers", code=1).stderr
    assert "still holds 1 deal" in err
    cli("move", "1", "--pipeline", "default")
    assert cli("pipeline", "rm", "Agency retainers").stdout == (
        "Removed (kept for its history) pipeline 'Agency retainers'\n")
    assert [r["name"] for r in cli.json("pipeline", "list")] == ["default"]
    assert cli.json("show", "1")["events"][-1]["kind"] == "pipeline"
    assert "no pipeline named" in cli("pipeline", "show", "Agency retainers", code=2).stderr


def test_an_empty_pipeline_is_deleted(cli, agency) -> None:
    assert cli("pipeline", "rm", "Agency retainers").stdout == (
        "Removed pipeline 'Agency retainers'\n")


def test_move_between_pipelines_is_an_event(cli, agency) -> None:
    cli("add", "Mover", "--value", "100")
    cli("advance", "1")
    out = cli("move", "1", "--pipeline", "Agency retainers", "--stage", "discovery",
              "--note", "a retainer after all").stdout
    assert out == "Deal 1 moved to pipeline Agency retainers: qualification -> discovery\n"
    shown = cli.json("show", "1")
    assert (shown["pipeline"], shown["stage"]) == ("Agency retainers", "discovery")
    last = shown["events"][-1]
    assert (last["kind"], last["old"], last["new"], last["text"]) == (
        "pipeline", "default", "Agency retainers", "a retainer after all")
    assert [e["kind"] for e in shown["events"]] == ["created", "stage", "pipeline"]
    err = cli("move", "1", "--pipeline", "Agency retainers", code=1).stderr
    assert "is in pipeline 'Agency retainers' already" in err
    assert "no pipeline named" in cli("move", "1", "--pipeline", "Nope", code=2).stderr


def test_stages_of_a_custom_pipeline_in_show_text(cli, agency) -> None:
    out = cli("pipeline", "show", "Agency retainers").stdout
    assert "Leaving discovery forward needs the checklist to pass: budget, authority, need." \
        in out
    assert "live follows only signed." in out


def test_move_beyond_the_gate_needs_qualification(cli, agency) -> None:
    cli("add", "Cold", "--value", "10")
    err = cli("move", "1", "--pipeline", "Agency retainers", "--stage", "pitch", code=1).stderr
    assert err == ("error: deal 1 is not qualified: it may land in pitch, beyond discovery, "
                   'only if it is pre-qualified (add --prequalified "REASON")\n')
    cli("move", "1", "--pipeline", "Agency retainers", "--stage", "pitch",
        "--prequalified", "met the founder")
    shown = cli.json("show", "1")
    assert shown["qualified"] and shown["prequalified_reason"] == "met the founder"


def test_a_stage_turned_won_with_deals_in_it_is_refused(cli, agency, tmp_path) -> None:
    cli("add", "P", "--pipeline", "Agency retainers", "--stage", "pitch",
        "--prequalified", "ref")
    won = AGENCY.replace('probability = 50, skippable = true }', 'kind = "won" }').replace(
        '  { key = "signed",    label = "Signed",         kind = "won" },\n', "")
    path = tmp_path / "won.toml"
    path.write_text(won)
    err = cli("pipeline", "apply", str(path), code=1).stderr
    assert err == ("error: 1 deal sits in pitch, which the new definition turns from open to "
                   "won: it would be won with no event; nothing was changed (move it out of "
                   "pitch first (pipectl advance ID --to STAGE))\n")
    assert cli.json("show", "1")["status"] == "open"
    assert cli.json("pipeline", "show", "Agency retainers")["version"] == 1


def test_a_file_that_is_no_definition_is_one_usage_error(cli, tmp_path) -> None:
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    cases = [
        (tmp_path / "missing.toml", "no such file"),
        (tmp_path, "is a directory"),
        (fifo, "is not a regular file"),
        (Path("/dev/zero"), "is not a regular file"),
        (big, "larger than 1024 KiB"),
    ]
    for path, message in cases:
        err = cli("pipeline", "apply", str(path), code=2).stderr
        assert err.count("\n") == 1 and message in err, (path, err)


@pytest.mark.parametrize(("text", "message"), [
    ('name = "A\\u001b[2J"\n', "x.toml:1: name contains a control character"),
    ('name = "\\u200b"\n', "x.toml:1: name shows nothing (only invisible characters)"),
    ('name = "A\\u202eB"\n', "x.toml:1: name contains a control character"),
    (f'name = "{"n" * 201}"\n', "x.toml:1: name is too long (201 characters; at most 200)"),
    ('name = "A"\n', "x.toml:3: stage 'a': action contains a control character"),
    ('name = "A"\nk = ' + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
])
def test_texts_of_a_definition_follow_the_text_rules(cli, tmp_path, text, message) -> None:
    stages = ('stages = [\n  { key = "a", probability = 10, label = "A", '
              'action = "call\\u0007" },\n  { key = "w", kind = "won" },\n]\n')
    if "stage 'a'" not in message:
        stages = stages.replace('\\u0007', "")
    path = tmp_path / "x.toml"
    path.write_text(text + stages)
    err = cli("pipeline", "apply", str(path), code=2).stderr
    assert message in err


def test_at_most_a_hundred_stages(cli, tmp_path) -> None:
    rows = "".join(f'  {{ key = "s{i}", probability = 10 }},\n' for i in range(100))
    path = tmp_path / "x.toml"
    path.write_text(f'name = "Long"\nstages = [\n{rows}  {{ key = "w", kind = "won" }},\n]\n')
    assert "101 stages: at most 100" in cli("pipeline", "apply", str(path), code=2).stderr


def test_the_name_of_a_removed_pipeline_is_kept(cli, agency, tmp_path) -> None:
    cli("add", "A", "--pipeline", "Agency retainers")
    cli("move", "1", "--pipeline", "default")
    cli("pipeline", "rm", "Agency retainers")
    kept = next(r for r in cli.json("pipeline", "list") if r["name"] != "default") \
        if len(cli.json("pipeline", "list")) > 1 else None
    assert kept is None
    (name,), = engines.rows(cli.db, "SELECT name FROM pipelines WHERE removed_at IS NOT NULL")
    path = tmp_path / "same.toml"
    path.write_text(AGENCY.replace('name = "Agency retainers"', f'name = "{name}"'))
    err = cli("pipeline", "apply", str(path), code=2).stderr
    assert err == f"error: the name {name!r} is kept by a removed pipeline (choose another name)\n"
    # the plain name is free again: a new pipeline of that name starts afresh
    assert cli("pipeline", "apply", str(agency)).stdout.startswith("Created pipeline")


def test_a_backdated_event_follows_the_definition_in_force_then(cli, tmp_path, monkeypatch
                                                                 ) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-01T09:00:00Z")
    first = tmp_path / "v1.toml"
    first.write_text(AGENCY)
    cli("pipeline", "apply", str(first))
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-10T09:00:00Z")
    second = tmp_path / "v2.toml"
    second.write_text(AGENCY.replace(
        '  { key = "pitch",     label = "Pitch",          probability = 50, skippable = true },\n',
        '  { key = "proposal", probability = 60 },\n'))
    cli("pipeline", "apply", str(second))
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-12T09:00:00Z")
    # proposal did not exist on 5 November: refused, nothing written
    err = cli("add", "B", "--pipeline", "Agency retainers", "--stage", "proposal",
              "--prequalified", "x", "--at", "2026-11-05", code=2).stderr
    assert "unknown stage 'proposal'" in err
    cli("add", "B", "--pipeline", "Agency retainers", "--stage", "pitch", "--prequalified", "x",
        "--at", "2026-11-05")
    report = cli.json("report", "--pipeline", "Agency retainers", "--as-of", "2026-11-06")
    assert report["deals"]["open"] == report["deals"]["total"] == 1


def test_an_export_brings_every_version_back(cli, tmp_path, monkeypatch) -> None:
    """Backup and restore through export: a stage a later version dropped is still named by
    the history, and past figures use the version in force then, on both sides."""
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-01T09:00:00Z")
    first = tmp_path / "v1.toml"
    first.write_text(AGENCY)
    cli("pipeline", "apply", str(first))
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-02T09:00:00Z")
    cli("add", "P", "--pipeline", "Agency retainers", "--stage", "pitch", "--prequalified",
        "ref", "--value", "1000", "--currency", "EUR")
    cli("add", "Q", "--pipeline", "Agency retainers", "--value", "500", "--currency", "EUR")
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-10T09:00:00Z")
    second = tmp_path / "v2.toml"
    second.write_text(AGENCY.replace("probability = 50, skippable = true", "probability = 70")
                      .replace('"pitch"', '"proposal"'))
    cli("pipeline", "apply", str(second), "--move", "pitch=proposal")
    monkeypatch.setenv("PIPECTL_NOW", "2026-11-12T09:00:00Z")
    export = tmp_path / "e.json"
    cli("export", "--format", "json", "--events", "-o", str(export))
    other = cli.another("restored.db")
    out = other("import", str(export)).stdout
    assert "created pipeline 'Agency retainers' from the file" in out
    for args in (("report", "--as-of", "2026-11-05"), ("report",), ("show", "1"),
                 ("pipeline", "show", "Agency retainers")):
        assert other.json(*args) == cli.json(*args), args
    weighted = cli.json("report", "--as-of", "2026-11-05", "--pipeline", "Agency retainers")
    assert weighted["pipeline"]["weighted_value"] == {"EUR": "525.00"}  # 50 % of 1000 + 5 % of 500


def test_a_gate_moved_over_open_deals_is_refused(cli, agency, tmp_path) -> None:
    cli("add", "In discovery", "--pipeline", "Agency retainers")
    cli("advance", "1")
    moved = AGENCY.replace('probability = 20, gate = "checklist"', "probability = 20").replace(
        'probability = 5,  rot_days = 7,', 'probability = 5,  rot_days = 7, gate = "checklist",')
    path = tmp_path / "gate.toml"
    path.write_text(moved)
    err = cli("pipeline", "apply", str(path), code=1).stderr
    assert err.startswith("error: 1 open deal sits in discovery, which the new gate puts beyond "
                          "the qualification gate")
    cli("advance", "1", "--to", "lead")
    assert "now version 2" in cli("pipeline", "apply", str(path)).stdout


def test_export_of_one_pipeline(cli, agency, tmp_path, monkeypatch) -> None:
    cli("add", "In default")
    cli("add", "In agency", "--pipeline", "Agency retainers")
    monkeypatch.setenv("PIPECTL_PIPELINE", "Agency retainers")  # never cuts an export
    every = json.loads(cli("export", "--format", "json").stdout)
    assert [d["name"] for d in every["deals"]] == ["In default", "In agency"]
    one = json.loads(cli("export", "--format", "json", "--events", "--pipeline",
                         "agency-retainers").stdout)
    assert one["pipeline"] == "Agency retainers"
    assert [d["name"] for d in one["deals"]] == ["In agency"]
    assert [p["name"] for p in one["pipelines"]] == ["Agency retainers"]
    csv_rows = cli("export", "--pipeline", "default").stdout.splitlines()
    assert len(csv_rows) == 2 and "In default" in csv_rows[1]
    assert "no pipeline named 'Nope'" in cli("export", "--pipeline", "Nope", code=2).stderr
