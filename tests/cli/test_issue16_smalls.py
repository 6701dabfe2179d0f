"""Issue 16, small items: export --force, rm answered "n", the gate's "recorded as no"."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def test_a_no_is_not_a_gap(cli) -> None:
    cli("add", "Gate", "--at", "2026-03-01")
    cli("add", "Other", "--at", "2026-03-01")
    cli("advance", "2", "--at", "2026-03-02")
    cli("qualify", "2", "location", "budget", "authority", "--at", "2026-03-03")
    assert cli("advance", "2", code=1).stderr == (
        "error: deal 2 cannot leave qualification: the checklist is missing need "
        "(record it with: pipectl qualify 2 need)\n")
    cli("qualify", "2", "--no-need", "--at", "2026-03-04")
    assert cli("advance", "2", code=1).stderr == (
        'error: deal 2 does not qualify: need recorded as no (lose it (pipectl lose 2 --reason '
        '"...") or record new information (pipectl qualify 2 need))\n')
    assert cli.json("show", "2")["stage"] == "qualification"
    cli("qualify", "2", "need", "--at", "2026-03-05")  # new information
    assert "qualification -> meeting" in cli("advance", "2").stdout


def test_rm_answered_no_deletes_nothing_and_says_so(cli, monkeypatch) -> None:
    import pipectl.cli.deals

    monkeypatch.setattr(pipectl.cli.deals, "_interactive", lambda: True)
    cli("add", "Kept")
    result = cli("rm", "1", input="n\n", code=1)
    assert result.stderr == "nothing deleted\n"
    assert "Deleted" not in result.stdout
    assert [d["name"] for d in cli.json("list")] == ["Kept"]


def _export(cli, out: Path, *more: str, code: int = 0):
    return cli("export", "-o", str(out), *more, code=code)


def test_export_force_replaces_a_file_keeping_its_permissions(cli, tmp_path: Path) -> None:
    out = tmp_path / "deals.csv"
    cli("add", "First")
    _export(cli, out)
    os.chmod(out, 0o640)
    inode = out.stat().st_ino
    cli("add", "Second")
    refused = _export(cli, out, code=2)
    assert refused.stderr == (f"error: {out} exists; pipectl never overwrites a file "
                              "(pick a new name, or add --force to replace it)\n")
    assert "Second" not in out.read_text(encoding="utf-8")
    done = _export(cli, out, "--force")
    assert done.stderr == f"Exported 2 deals to {out}\n"
    text = out.read_text(encoding="utf-8")
    assert "First" in text and "Second" in text
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the old file's permissions
    assert out.stat().st_ino != inode  # a new file renamed over the old one, not rewritten
    assert sorted(p.name for p in tmp_path.iterdir() if "deals" in p.name) == ["deals.csv"]


def test_export_force_to_a_new_name_makes_the_file(cli, tmp_path: Path) -> None:
    cli("add", "Only")
    out = tmp_path / "new.json"
    _export(cli, out, "--force", "--format", "json")
    assert '"Only"' in out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # a new export's own mode


@pytest.mark.parametrize("what", ["folder", "symlink", "no -o"])
def test_export_force_refuses_what_is_not_a_file(cli, tmp_path: Path, what: str) -> None:
    cli("add", "Only")
    if what == "folder":
        out = tmp_path / "adir"
        out.mkdir()
        args = ["-o", str(out), "--force"]
        message = f"error: {out} exists and is not a regular file; pipectl replaces only a file\n"
    elif what == "symlink":
        real = tmp_path / "real.csv"
        real.write_text("old\n", encoding="utf-8")
        out = tmp_path / "link.csv"
        out.symlink_to(real)
        args = ["-o", str(out), "--force"]
        message = (f"error: {out} is a symbolic link; pipectl does not write through one "
                   "(give the real path)\n")
    else:
        args = ["--force"]
        message = "error: --force replaces the file given with -o; there is none (add -o FILE)\n"
    assert cli("export", *args, code=2).stderr == message
    if what == "symlink":
        assert (tmp_path / "real.csv").read_text(encoding="utf-8") == "old\n"


def test_a_failed_forced_export_leaves_the_old_file(cli, tmp_path: Path, monkeypatch) -> None:
    """An error mid-write: the old file is intact, no temporary file stays, one line says so."""
    from pipectl.transfer import exporter

    out = tmp_path / "deals.csv"
    out.write_bytes(b"the old export\r\n")
    for n in range(3):
        cli("add", f"Deal {n}")
    monkeypatch.setattr(exporter.csv, "writer", lambda fh, **kw: _Failing(fh))
    result = _export(cli, out, "--force", code=1)
    assert result.stderr == (f"error: cannot write {out}: the disk is full; "
                             "the old file is unchanged\n")
    assert out.read_bytes() == b"the old export\r\n"
    assert [p.name for p in tmp_path.iterdir() if "deals" in p.name] == ["deals.csv"]


class _Failing:
    """A CSV writer that writes the header, then finds the disk full."""

    def __init__(self, fh) -> None:
        self.fh, self.rows = fh, 0

    def writerow(self, row) -> None:
        self.rows += 1
        if self.rows > 2:
            raise OSError(28, "No space left on device")
        self.fh.write(",".join(map(str, row)) + "\r\n")
