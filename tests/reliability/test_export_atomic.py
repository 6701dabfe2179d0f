"""Promise 10: an export file appears only complete, or not at all (issue 11, item 6).

`pipectl export -o FILE` writes `.FILE.partial-PID` beside FILE and gives it the name FILE only
once it is complete, flushed and fsynced, never replacing a file. The installed pipectl, run
as a subprocess on a database of 30,000 deals, is sent SIGTERM, SIGHUP or Ctrl-C while it
writes (the temporary file exists and holds part of the export, less than the whole): no file
under the final name, no temporary file left, exit 128 + the signal. SIGKILL leaves no final
name either (only the temporary file, which nothing takes for an export). A full disk leaves
nothing and says so in one line. An export to standard output that is cut ends with an
unterminated `pipectl: export interrupted` line, where a complete one ends with a line end.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import env, pipectl_exe
from tests.reliability.test_disk_full import small_disk  # noqa: F401 - a fixture

NOW = "2026-11-27T04:00:00Z"
DEALS = 30_000
ROOT = Path(__file__).resolve().parents[2]
FORMATS = {"csv": [], "csv-events": ["--events"], "json-events": ["--format", "json", "--events"]}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A generated database of 30,000 deals (about 150,000 events), and its complete exports."""
    spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    folder = tmp_path_factory.mktemp("export_atomic")
    db = folder / "big.db"
    generate.write(db, None, DEALS, 3, "2026-06-30")
    complete = {}
    for name, args in FORMATS.items():
        out = folder / f"complete.{name}"
        r = subprocess.run([pipectl_exe(), "export", *args, "-o", str(out)],
                           env=env(db, PIPECTL_NOW=NOW), capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        complete[name] = out.read_bytes()
    return db, complete


def _default_signals() -> None:
    """As a terminal delivers them: a test run in the background of a shell without job
    control has SIGINT (and, under nohup, SIGHUP) ignored, and children inherit that."""
    for each in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(each, signal.SIG_DFL)


def _start(db: Path, out: Path | None, args: list[str]) -> subprocess.Popen:
    where = ["-o", str(out)] if out is not None else []
    return subprocess.Popen(
        [pipectl_exe(), "export", *args, *where], env=env(db, PIPECTL_NOW=NOW),
        stdout=subprocess.PIPE if out is None else subprocess.DEVNULL,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=_default_signals,
    )


def _temp(out: Path, proc: subprocess.Popen) -> Path:
    return out.with_name(f".{out.name}.partial-{proc.pid}")


def _mid_write(out: Path, proc: subprocess.Popen, whole: int) -> int:
    """Wait until the export has written part of its temporary file; its size then."""
    temp = _temp(out, proc)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        size = temp.stat().st_size if temp.exists() else 0
        if size > 0:
            assert size < whole, "the export was already complete"
            assert not out.exists(), "the final name appeared before the export was complete"
            return size
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"{temp} never appeared")


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_mid_export_leaves_no_file(tmp_path: Path, big, fmt: str, sig) -> None:
    db, complete = big
    out = tmp_path / "out" / f"export.{fmt}"
    out.parent.mkdir()
    proc = _start(db, out, FORMATS[fmt])
    written = _mid_write(out, proc, len(complete[fmt]))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    # the signal landed mid-write: the export had written part of its file, and did not finish
    assert 0 < written < len(complete[fmt])
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), stderr
    assert stderr.splitlines() == [
        f"error: interrupted{'' if sig == signal.SIGINT else ' by ' + sig.name}; "
        "nothing was changed"
    ]
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary file


def test_sigkill_mid_export_never_leaves_the_final_name(tmp_path: Path, big) -> None:
    db, complete = big
    out = tmp_path / "out" / "export.csv"
    out.parent.mkdir()
    proc = _start(db, out, [])
    written = _mid_write(out, proc, len(complete["csv"]))
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    stray = _temp(out, proc)
    assert [p.name for p in out.parent.iterdir()] == [stray.name]  # only the temporary file
    assert written <= stray.stat().st_size < len(complete["csv"])
    # the next export to the same name is not in its way
    again = _start(db, out, [])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.read_bytes() == complete["csv"]
    assert stray.exists()


@pytest.mark.slow
def test_sigterm_at_random_moments_gives_the_whole_file_or_none(tmp_path: Path, big) -> None:
    """SIGTERM at seeded moments across the export (and past its end): each run leaves exactly
    the complete export, or nothing."""
    import random

    db, complete = big
    rng = random.Random(11)
    t0 = time.monotonic()
    probe = _start(db, tmp_path / "probe.csv", FORMATS["csv-events"])
    probe.communicate(timeout=300)
    duration = time.monotonic() - t0
    outcomes = []
    for k in range(12):
        out = tmp_path / f"run{k}" / "events.csv"
        out.parent.mkdir()
        proc = _start(db, out, FORMATS["csv-events"])
        time.sleep(rng.uniform(0.0, 1.2) * duration)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        # (a signal before pipectl's handler is set up, or once the command is over and
        # Python is shutting down, kills it as SIGTERM does: exit -15)
        if out.exists():  # the signal came after the file was complete
            assert out.read_bytes() == complete["csv-events"]
            assert [p.name for p in out.parent.iterdir()] == [out.name]
            outcomes.append("complete")
        else:
            assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), err
            assert list(out.parent.iterdir()) == []
            outcomes.append("none")
    assert "none" in outcomes, outcomes


@pytest.mark.parametrize("fmt", ["csv", "json-events"])
def test_an_interrupted_export_to_standard_output_says_so_on_its_last_line(big, fmt: str) -> None:
    db, complete = big
    proc = _start(db, None, FORMATS[fmt])
    assert proc.stdout is not None
    head = proc.stdout.read(200_000)  # pipectl now waits on the full pipe: mid-write
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=60)
    data = head + rest
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert 200_000 <= len(data) < len(complete[fmt])
    assert data.endswith(b"pipectl: export interrupted")  # with no line end: not complete
    assert complete[fmt].endswith(b"\r\n" if fmt == "csv" else b"}\n")
    if fmt != "csv":
        with pytest.raises(json.JSONDecodeError):
            json.loads(data)


def _limited(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _one_line(r: subprocess.CompletedProcess, out: Path, why: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.splitlines() == [f"error: cannot write {out}: {why}; no file was written"]


def test_a_file_size_limit_mid_export_leaves_nothing(tmp_path: Path, big) -> None:
    db, _ = big
    out = tmp_path / "out" / "export.csv"
    out.parent.mkdir()
    r = subprocess.run([pipectl_exe(), "export", "-o", str(out)], env=env(db, PIPECTL_NOW=NOW),
                       capture_output=True, text=True, timeout=300,
                       preexec_fn=_limited(300_000), stdin=subprocess.DEVNULL)
    _one_line(r, out, "the file would be larger than this system allows (a file size limit)")
    assert list(out.parent.iterdir()) == []


def test_a_really_full_disk_mid_export_leaves_nothing(tmp_path: Path, big,
                                                      small_disk: Path) -> None:  # noqa: F811
    db, complete = big
    assert len(complete["csv"]) > 2 * 2**20  # more than the whole 2 MB disk
    free = shutil.disk_usage(small_disk).free
    out = small_disk / "export.csv"
    r = subprocess.run([pipectl_exe(), "export", "-o", str(out)], env=env(db, PIPECTL_NOW=NOW),
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    _one_line(r, out, "the disk is full")
    assert list(small_disk.iterdir()) == []
    assert shutil.disk_usage(small_disk).free == free


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_signal_mid_forced_export_leaves_the_old_file(tmp_path: Path, big, sig) -> None:
    """`export -o FILE --force` (issue 16): until the complete export takes the name in one
    rename, FILE is the old export, byte for byte; a killed export leaves it so."""
    db, complete = big
    out = tmp_path / "out" / "export.csv"
    out.parent.mkdir()
    old = b"id,name\r\n1,the export of yesterday\r\n"
    out.write_bytes(old)
    proc = _start(db, out, ["--force"])
    temp = _temp(out, proc)
    deadline = time.monotonic() + 120
    while not (temp.exists() and temp.stat().st_size > 0):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.002)
    assert out.read_bytes() == old  # mid-write: the old file is there, whole
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert out.read_bytes() == old
    left = sorted(p.name for p in out.parent.iterdir())
    assert left == (["export.csv"] if sig != signal.SIGKILL else sorted(["export.csv", temp.name]))
    # the next forced export replaces it with the complete one
    again = _start(db, out, ["--force"])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.read_bytes() == complete["csv"]
