"""File names typed by users."""

from __future__ import annotations

from pathlib import Path

from pipectl.errors import PipectlError, UsageError


def expand(path: str | Path) -> Path:
    """``~`` and ``~user`` expanded; an unknown user is a usage error, not a crash."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise UsageError(f"cannot expand {str(path)!r}: no such user's home directory") from exc


def new_file(path: str | Path, error: type[PipectlError] = UsageError) -> Path:
    """A file pipectl is about to create: expanded, and refused with ``error`` if it exists
    (pipectl never overwrites a file) or its folder is missing."""
    target = expand(path)
    if target.exists():
        raise error(f"{target} exists; pipectl never overwrites a file", hint="pick a new name")
    if not target.parent.is_dir():
        raise error(f"cannot write {target}: the folder {target.parent} does not exist")
    return target
