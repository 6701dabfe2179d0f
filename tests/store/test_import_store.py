"""The import at store level: one transaction across batches, progress, interruption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipectl.transfer import common, importer
from tests import engines
from tests.conftest import at


def _csv(tmp_path: Path, n: int, bad_at: int | None = None) -> Path:
    lines = ["ref,name,value,stage,created_at"]
    for i in range(1, n + 1):
        value = "oops" if i == bad_at else str(i)
        lines.append(f"R{i},Deal {i},{value},proposal,2024-01-01T00:00:{i % 60:02d}Z")
    p = tmp_path / "big.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _counts(conn: Any) -> tuple[int, int]:
    return (conn.execute("SELECT count(*) FROM deals").fetchone()[0],
            conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_a_bad_last_row_undoes_batches_already_written(conn, tmp_path: Path) -> None:
    f = _csv(tmp_path, common.BATCH * 2 + 10, bad_at=common.BATCH * 2 + 5)
    with pytest.raises(importer.ImportFailed) as failed:
        importer.run(conn, f, importer.Options(), at("2026-01-01"))
    assert failed.value.summary.errors == [
        (common.BATCH * 2 + 6, "value", "'oops' is not an amount "
         "(write it like 12000 or 12000.50; it may not be negative)")]
    assert _counts(conn) == (0, 0)
    assert not conn.in_transaction


def test_interrupt_mid_import_leaves_the_database_as_it_was(conn, tmp_path: Path) -> None:
    importer.run(conn, _csv(tmp_path, 3), importer.Options(), at("2026-01-01"))
    before = _counts(conn)
    indexes = engines.indexes(conn)
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    big = tmp_path / "more"
    big.mkdir()
    with pytest.raises(KeyboardInterrupt):
        importer.run(conn, _csv(big, 5000), importer.Options(), at("2026-01-01"), progress)
    assert _counts(conn) == before
    assert engines.indexes(conn) == indexes


def test_progress_reaches_the_file_size(conn, tmp_path: Path) -> None:
    f = _csv(tmp_path, 2500)
    seen: list[tuple[int, int]] = []
    importer.run(conn, f, importer.Options(), at("2026-01-01"),
                 lambda done, total: seen.append((done, total)))
    size = f.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert _counts(conn) == (2500, 2500)


def test_bulk_load_into_an_empty_database_keeps_every_index(conn, tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(common, "BULK_BYTES", 0)
    names = engines.indexes(conn)
    importer.run(conn, _csv(tmp_path, 50), importer.Options(), at("2026-01-01"))
    assert engines.indexes(conn) == names
    if engines.engine_of_conn(conn) == "sqlite":  # (a server has no integrity_check)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
