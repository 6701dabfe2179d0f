"""The shapes of what a command asks the store to do, validated where they are built.

Plain frozen dataclasses (no pydantic here: every command would pay its import; pydantic
validates rows at the import boundary, see pipectl.transfer). Every text is NFC-normalised and
every amount is integer minor units with its currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# Descriptive fields that `edit` may change, in display order.
TEXT_FIELDS: tuple[str, ...] = ("name", "company", "contact", "email", "phone", "owner", "source")


@dataclass(frozen=True, slots=True)
class NewDeal:
    name: str
    stage: str | None = None  # a stage name of its pipeline (None: the pipeline's first stage)
    pipeline: str | None = None  # the pipeline's name (None: the default pipeline)
    currency: str = "USD"
    value_minor: int | None = None
    company: str | None = None
    contact: str | None = None
    email: str | None = None
    phone: str | None = None
    owner: str | None = None
    source: str | None = None
    close_date: date | None = None
    probability: int | None = None
    prequalified: str | None = None
    note: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class DealEdit:
    """Changes to a deal. ``texts`` maps a TEXT_FIELDS name to its new value (None clears)."""

    texts: dict[str, str | None] = field(default_factory=dict)
    value_minor: int | None = None
    currency: str | None = None
    clear_value: bool = False
    close_date: date | None = None
    clear_close: bool = False
    probability: int | None = None
    clear_probability: bool = False

    def is_empty(self) -> bool:
        return not (
            self.texts
            or self.value_minor is not None
            or self.currency
            or self.clear_value
            or self.close_date
            or self.clear_close
            or self.probability is not None
            or self.clear_probability
        )
