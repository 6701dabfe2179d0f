"""paths.atomic_new_file: a new file appears under its name only complete, never replacing a
file, with mode 0600; anything that stops the writer (an error, Ctrl-C, a signal turned into an
exception) leaves neither the file nor its temporary file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pipectl import paths
from pipectl.errors import PipectlError, UsageError
from pipectl.paths import PARTIAL, atomic_new_file


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_text_file_appears_complete_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with atomic_new_file(target) as fh:
        temp = Path(fh.name)
        assert temp.parent == tmp_path and temp.name == f".out.csv{PARTIAL}{os.getpid()}"
        assert not target.exists()  # nothing under the final name while writing
        fh.write("a,b\r\nÅ,ß\r\n")
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    assert target.read_bytes() == "a,b\r\nÅ,ß\r\n".encode()  # newline="": as written
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_nlink == 1
    assert _left(tmp_path) == ["out.csv"]


def test_binary_file_and_a_writer_that_needs_a_path(tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    with atomic_new_file(target, "wb") as fh:
        Path(fh.name).write_bytes(b"\x00" * 10)  # e.g. SQLite's backup into the temporary path
        fh.write(b"")
    assert target.read_bytes() == b"\x00" * 10
    assert _left(tmp_path) == ["copy.db"]


@pytest.mark.parametrize("stop", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(3)])
def test_anything_that_stops_the_writer_leaves_nothing(tmp_path: Path, stop) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(type(stop)), atomic_new_file(target) as fh:
        fh.write("x" * 100_000)
        fh.flush()
        assert Path(fh.name).stat().st_size == 100_000
        raise stop
    assert _left(tmp_path) == []


def test_an_existing_file_or_symlink_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "there.csv").write_text("keep")
    with pytest.raises(UsageError, match="exists; pipectl never overwrites"), \
            atomic_new_file(tmp_path / "there.csv"):
        pytest.fail("the block must not run")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x.db")
    (tmp_path / "nowhere").mkdir()
    with pytest.raises(UsageError, match="symbolic link"), atomic_new_file(tmp_path / "dangling"):
        pytest.fail("the block must not run")
    assert not (tmp_path / "nowhere" / "x.db").exists()
    with pytest.raises(UsageError, match="does not exist"), \
            atomic_new_file(tmp_path / "missing" / "x.csv"):
        pytest.fail("the block must not run")
    assert (tmp_path / "there.csv").read_text() == "keep"
    assert _left(tmp_path) == ["dangling", "nowhere", "there.csv"]


def test_the_error_class_is_the_callers(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")

    class Mine(PipectlError):
        pass

    with pytest.raises(Mine), atomic_new_file(tmp_path / "x", error=Mine):
        pass


@pytest.mark.parametrize("route", ["renameat2", "link", "look-then-rename"])
def test_a_file_that_appears_while_writing_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Each way of placing the file: Linux's rename without replace, a hard link (other
    systems), and, on a file system with neither, a look before the rename."""
    _force(monkeypatch, route)
    target = tmp_path / "race.csv"
    with pytest.raises(UsageError, match="appeared while pipectl wrote"), \
            atomic_new_file(target) as fh:
        fh.write("mine")
        target.write_text("theirs")  # another process takes the name meanwhile
    assert target.read_text() == "theirs"
    assert _left(tmp_path) == ["race.csv"]


@pytest.mark.parametrize("route", ["renameat2", "link", "look-then-rename"])
def test_each_route_places_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    route: str) -> None:
    _force(monkeypatch, route)
    target = tmp_path / "ok.csv"
    with atomic_new_file(target) as fh:
        fh.write("done\n")
    assert target.read_text() == "done\n"
    assert target.stat().st_nlink == 1
    assert _left(tmp_path) == ["ok.csv"]


def _force(monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    if route == "renameat2":
        try:
            there = paths._rename_noreplace(Path("/nonexistent/a"), Path("/nonexistent/b"))
        except FileNotFoundError:
            there = True  # it ran, and found no such file
        if not there:
            pytest.skip("no renameat2 here (not Linux, or an old C library)")

        def no_links(src: object, dst: object, **kw: object) -> None:
            raise AssertionError("renameat2 is used first")

        monkeypatch.setattr(paths.os, "link", no_links)
        return
    monkeypatch.setattr(paths, "_rename_noreplace", lambda temp, target: False)
    if route == "look-then-rename":
        def no_links(src: object, dst: object, **kw: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(paths.os, "link", no_links)


def test_fsyncs_the_file_and_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").is_dir()
                      else str(fd))
        real(fd)

    monkeypatch.setattr(paths.os, "fsync", fsync)
    with atomic_new_file(tmp_path / "f.csv") as fh:
        fh.write("x")
        temp = fh.name
    if Path("/proc/self/fd").is_dir():
        assert synced == [temp, str(tmp_path)]
    else:
        assert len(synced) == 2


def test_a_failed_write_says_no_file_was_written(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths.os, "fsync", full)
    target = tmp_path / "f.csv"
    with pytest.raises(PipectlError) as caught, atomic_new_file(target) as fh:
        fh.write("x")
    assert str(caught.value) == f"cannot write {target}: the disk is full; no file was written"
    assert caught.value.exit_code == 1
    assert _left(tmp_path) == []


def test_a_temporary_file_left_by_a_killed_process_is_not_touched(tmp_path: Path) -> None:
    stray = tmp_path / f".f.csv{PARTIAL}{os.getpid()}"
    stray.write_text("half")
    with atomic_new_file(tmp_path / "f.csv") as fh:
        assert fh.name == f"{stray}-1"
        fh.write("whole")
    assert stray.read_text() == "half"
    assert (tmp_path / "f.csv").read_text() == "whole"


def test_a_name_as_long_as_the_system_allows(tmp_path: Path) -> None:
    name = "é" * 125 + ".csv"  # 254 bytes: a longer temporary name would not fit
    with atomic_new_file(tmp_path / name) as fh:
        fh.write("x")
    assert _left(tmp_path) == [name]


def test_a_folder_pipectl_may_not_write_to_is_the_callers_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: object, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(paths.os, "open", denied)
    with pytest.raises(UsageError, match=r"cannot write .*x\.csv: permission denied"), \
            atomic_new_file(tmp_path / "x.csv"):
        pytest.fail("the block must not run")
    monkeypatch.undo()
    assert _left(tmp_path) == []
