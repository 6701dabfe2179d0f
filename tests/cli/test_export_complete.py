"""When is an export complete (docs/import-export.md): it ends with a line end. A complete CSV
export ends with its last row's CR LF, a JSON export with its closing brace and a line end; an
export to standard output that fails or is interrupted ends with an unterminated
`pipectl: export failed` / `pipectl: export interrupted` line, and to a file leaves no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipectl.transfer import exporter


def _out(result) -> str:
    return result.stdout_bytes.decode()  # as written: Result.stdout turns CR LF into LF


def _seed(cli) -> None:
    for name in ("Acme", "Globex", "Initech"):
        cli("add", name, "--value", "10", "--at", "2026-01-05")


@pytest.mark.parametrize("args", [[], ["--events"], ["--format", "json"],
                                  ["--format", "json", "--events"], ["--status", "won"]])
def test_a_complete_export_ends_with_a_line_end(cli, args: list[str]) -> None:
    empty = _out(cli("export", *args))
    _seed(cli)
    full = _out(cli("export", *args))
    for out in (empty, full):
        if "json" in args:
            assert out.endswith("}\n")
            json.loads(out)
        else:
            assert out.endswith("\r\n")
        assert "pipectl: export" not in out


def _fail_at_second_deal(monkeypatch: pytest.MonkeyPatch) -> None:
    real = exporter.deal_record
    seen: list[int] = []

    def record(deal, names):
        seen.append(deal["id"])
        if len(seen) == 2:
            raise RecursionError("maximum recursion depth exceeded")  # as issue 11, item 10
        return real(deal, names)

    monkeypatch.setattr(exporter, "deal_record", record)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_failed_export_to_standard_output_ends_with_an_unterminated_line(
    cli, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    _seed(cli)
    _fail_at_second_deal(monkeypatch)
    result = cli("export", "--format", fmt, code=1)
    assert "internal error (RecursionError" in result.stderr
    out = _out(result)
    assert out.endswith("pipectl: export failed")  # no line end: not complete
    if fmt == "csv":
        lines = out.split("\r\n")
        assert lines[0].startswith("id,ref,name,") and lines[1].split(",")[2] == "Acme"
        assert lines[2:] == ["pipectl: export failed"]
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(out)


def test_an_interrupted_export_to_standard_output_says_interrupted(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(cli)

    def ctrl_c(deal, names):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "deal_record", ctrl_c)
    result = cli("export", code=130)
    assert _out(result).endswith("\r\npipectl: export interrupted")
    assert result.stderr == "error: interrupted; nothing was changed\n"


def test_a_failed_export_to_a_file_leaves_none(cli, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _seed(cli)
    _fail_at_second_deal(monkeypatch)
    out = tmp_path / "out" / "deals.csv"
    out.parent.mkdir()
    cli("export", "-o", str(out), code=1)
    assert list(out.parent.iterdir()) == []
