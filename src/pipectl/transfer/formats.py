"""pipectl's own export format: its version and its columns, for the exporter and the reader.

Format 2 (pipectl with pipelines) names each deal's pipeline and carries the checklist as one
object (in CSV, a JSON text cell); each move event names the pipeline it happened in. The JSON
form also carries, before its deals, the definitions of the pipelines they name (``"pipelines"``:
``{"name", "default", "definition"}``, the definition as ``domain.pipeline.to_json`` writes it);
a file of format 2 without them is read as before. It also carries every exchange rate recorded
(``"rates"``: ``{"from", "to", "at", "rate", "recorded_at"}``, the rate exact decimal text, or
null for a withdrawal), before the deals; a file without them (an older export) has none, and an
older pipectl reading a file with them skips them. The CSV pair has no place for them. Format 1
(one fixed pipeline) had four checklist columns instead; import still reads it, every deal
into the target pipeline.
"""

from __future__ import annotations

FORMAT = 2  # the version export writes; import reads 1 and 2

V1_CRITERIA = ("location", "budget", "authority", "need")  # format 1's checklist columns

_DEAL_HEAD = ("id", "ref", "name", "company", "contact", "email", "phone", "owner", "source")
_DEAL_MID = ("stage", "lost_at_stage", "lost_reason", "value", "currency", "probability",
             "close_date", "qualified_at", "prequalified_reason")
_DEAL_TAIL = ("next_action", "next_due", "created_at", "updated_at", "closed_at")

# The columns of a deal (the CSV deals file; the keys of a deal in JSON, before "events").
DEAL_FIELDS = (*_DEAL_HEAD, "pipeline", *_DEAL_MID, "checklist", *_DEAL_TAIL)
DEAL_FIELDS_V1 = (*_DEAL_HEAD, *_DEAL_MID, *V1_CRITERIA, *_DEAL_TAIL)

_EVENT_TAIL = ("reason", "text", "next_action", "due", "field", "old", "new")
_MONEY = ("value", "currency", "close_date", "probability")

# The CSV event log: each event with its deal's id and ref.
EVENT_CSV = ("deal_id", "deal_ref", "id", "at", "kind", "pipeline", "from_stage", "to_stage",
             *_MONEY, "checklist", *_EVENT_TAIL)
EVENT_CSV_V1 = ("deal_id", "deal_ref", "id", "at", "kind", "from_stage", "to_stage", *_MONEY,
                *V1_CRITERIA, *_EVENT_TAIL)

DEAL_CSV = DEAL_FIELDS
DEAL_CSV_V1 = DEAL_FIELDS_V1


def deal_csv_version(header: list[str] | tuple[str, ...]) -> int | None:
    """The format of a CSV deals file from its header (None: not pipectl's)."""
    return {DEAL_CSV: 2, DEAL_CSV_V1: 1}.get(tuple(header))


def event_csv_version(header: list[str] | tuple[str, ...]) -> int | None:
    return {EVENT_CSV: 2, EVENT_CSV_V1: 1}.get(tuple(header))
