"""The qualification checklist: location, budget, authority, need.

A criterion is True (met), False (checked and not met) or None (not assessed yet). The
checklist passes when all four are met.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

CRITERIA: tuple[str, ...] = ("location", "budget", "authority", "need")

DESCRIPTIONS: dict[str, str] = {
    "location": "the prospect is somewhere we sell to",
    "budget": "they can pay for it",
    "authority": "we talk to someone who can decide",
    "need": "our product fits a real need",
}


@dataclass(frozen=True, slots=True)
class Checklist:
    location: bool | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None

    def items(self) -> dict[str, bool | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def passes(self) -> bool:
        return all(v is True for v in self.items().values())

    def missing(self) -> list[str]:
        return [name for name, v in self.items().items() if v is not True]

    def apply(self, changes: dict[str, bool | None]) -> Checklist:
        unknown = set(changes) - set(CRITERIA)
        if unknown:
            raise ValueError(f"unknown criteria: {sorted(unknown)}")
        return replace(self, **changes)

    def diff(self, other: Checklist) -> dict[str, bool | None]:
        """The criteria whose value differs in ``other``, with other's values."""
        mine, theirs = self.items(), other.items()
        return {k: theirs[k] for k in CRITERIA if mine[k] != theirs[k]}


def qualify_command(deal_id: int, missing: list[str]) -> str:
    """The exact command that records the missing criteria as met."""
    flags = " ".join(f"--{name}" for name in missing)
    return f"pipectl qualify {deal_id} {flags}".rstrip()
