"""rules.check_note_time (issue 16): a note that changes no state may be logged before the
deal's later events, not before its creation; one that sets the next step may not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipectl.domain.rules import DealState, check_note_time
from pipectl.errors import MoveRefused

CREATED = "2026-03-01T09:00:00Z"
LATEST = "2026-03-10T09:00:00Z"

# (the note's moment, changes state, expected: None = allowed, else part of the refusal)
TABLE = [
    ("2026-03-05T12:00:00Z", False, None),  # a forgotten call, between earlier events
    ("2026-03-01T09:00:00Z", False, None),  # at the creation itself
    ("2026-03-10T09:00:00Z", False, None),
    ("2026-03-11T09:00:00Z", False, None),
    ("2026-02-28T23:59:59Z", False, "before the deal was created"),
    ("2026-03-05T12:00:00Z", True, "sets the deal's next step"),
    ("2026-03-10T09:00:00Z", True, None),  # at the latest event: in order
    ("2026-03-11T09:00:00Z", True, None),
]


@pytest.mark.parametrize(("at", "changes", "refused"), TABLE)
def test_check_note_time(at: str, changes: bool, refused: str | None) -> None:
    state = DealState(id=7, stage="meeting", last_event_at=LATEST)
    when = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    if refused is None:
        check_note_time(state, CREATED, when, changes)
    else:
        with pytest.raises(MoveRefused, match=refused):
            check_note_time(state, CREATED, when, changes)
