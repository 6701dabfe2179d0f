"""A pipeline's qualification checklist: its criteria, and what a deal has recorded of them.

A criterion is True (met), False (checked and not met) or absent (not assessed yet). The
checklist passes when every criterion of the pipeline is met. The default pipeline's criteria
are location, budget, authority and need (``domain.pipeline.DEFAULT_CHECKLIST``); a pipeline
may name its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Checklist:
    criteria: tuple[str, ...] = ()
    marks: tuple[tuple[str, bool], ...] = field(default=())  # assessed criteria, in order

    @classmethod
    def of(cls, criteria: Iterable[str], marks: Mapping[str, bool | None] | None = None
           ) -> Checklist:
        criteria = tuple(criteria)
        marks = marks or {}
        # Marks of criteria the pipeline no longer has are kept (history stays true) but do
        # not count towards passing.
        ordered = [(c, bool(marks[c])) for c in criteria if marks.get(c) is not None]
        ordered += [(c, bool(v)) for c, v in marks.items()
                    if c not in criteria and v is not None]
        return cls(criteria, tuple(ordered))

    def items(self) -> dict[str, bool | None]:
        """Every criterion of the pipeline with its mark (None: not assessed)."""
        mine = dict(self.marks)
        return {c: mine.get(c) for c in self.criteria}

    def passes(self) -> bool:
        return all(v is True for v in self.items().values())

    def missing(self) -> list[str]:
        return [name for name, v in self.items().items() if v is not True]

    def apply(self, changes: Mapping[str, bool]) -> Checklist:
        unknown = set(changes) - set(self.criteria)
        if unknown:
            raise ValueError(f"unknown criteria: {sorted(unknown)}")
        return Checklist.of(self.criteria, {**dict(self.marks), **changes})

    def diff(self, other: Checklist) -> dict[str, bool | None]:
        """The criteria whose mark differs in ``other``, with other's marks."""
        mine, theirs = dict(self.marks), dict(other.marks)
        return {k: theirs.get(k) for k in self.criteria if mine.get(k) != theirs.get(k)}

    def to_json(self) -> str | None:
        """The stored form: a JSON object of the assessed criteria (None when none is)."""
        return encode(dict(self.marks))


def encode(marks: Mapping[str, bool | None]) -> str | None:
    kept = {k: bool(v) for k, v in marks.items() if v is not None}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")) if kept else None


def decode(text: str | None) -> dict[str, bool]:
    if not text:
        return {}
    return {str(k): bool(v) for k, v in json.loads(text).items()}


def qualify_command(deal_id: int, missing: list[str]) -> str:
    """The exact command that records the missing criteria as met."""
    return " ".join(["pipectl qualify", str(deal_id), *missing])
