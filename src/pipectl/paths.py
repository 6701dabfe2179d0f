"""File names typed by users."""

from __future__ import annotations

from pathlib import Path

from pipectl.errors import UsageError


def expand(path: str | Path) -> Path:
    """``~`` and ``~user`` expanded; an unknown user is a usage error, not a crash."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise UsageError(f"cannot expand {str(path)!r}: no such user's home directory") from exc
