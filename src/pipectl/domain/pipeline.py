"""A pipeline is data: its stages in order, each with what it means, and its checklist.

``Pipeline`` is a value (frozen, hashable): the rules (``domain.rules``), the projection, the
reports and the views read a deal's pipeline from it and never from stage names written in
code. ``DEFAULT`` is the seven classic stages (``shared/domain.md``); it is the only place in
pipectl's code that names their keys. ``LOST`` is not a stage of any pipeline's line but the
terminal state every pipeline has: a lost deal records the open stage it died at.

The TOML form of a pipeline (what users write, ``pipectl pipeline apply``) is read and written
by ``domain.pipeline_file``.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from pipectl.errors import UsageError

LOST = "lost"  # the terminal state of every pipeline; never a key of a stage on the line
DEFAULT_ROT_DAYS = 14  # an open deal is stale after this many days without an event
DEFAULT_NAME = "default"


class Status(StrEnum):
    """What a stage means for the deal in it: still open, won, or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


# The kinds a stage of the line may have (TOML ``kind``): open stages in order, then exactly
# one won stage, then any after-won stages (onboarding, live, renewed ...).
KINDS = ("open", "won", "after_won")


@dataclass(frozen=True, slots=True)
class StageDef:
    key: str
    label: str
    kind: str = "open"  # one of KINDS, or "lost" for the LOST pseudo-stage
    probability: int = 0  # default win probability, percent
    rot_days: int | None = None  # stale after this many days (None: DEFAULT_ROT_DAYS)
    gate: bool = False  # may not be left forward until the checklist passes
    skippable: bool = False  # a forward move may pass over it
    action: str = ""  # what a salesperson should do with a deal here (pipectl next)
    aliases: tuple[str, ...] = ()  # other names a user or a CRM file may give it
    meaning: str = ""
    leaves_when: str = ""
    order: int = 0  # 1.. along the line, set by Pipeline; 0 for LOST

    @property
    def status(self) -> Status:
        if self.kind == "lost":
            return Status.LOST
        return Status.OPEN if self.kind == "open" else Status.WON

    @property
    def rot(self) -> int:
        return DEFAULT_ROT_DAYS if self.rot_days is None else self.rot_days

    @property
    def skip(self) -> str:
        """When the stage may be passed over ("" when never), in words."""
        if self.gate:
            return "only by a pre-qualified deal (with a recorded reason)"
        return "yes" if self.skippable else ""


_LOST_STAGE = StageDef(
    LOST, "Closed lost", kind="lost", probability=0,
    aliases=("closed-lost", "closed lost", "closedlost", "lose", "dead"),
    meaning="The deal died at an open stage, for a recorded reason.",
    leaves_when="reopened", action="Nothing: reopen it if the prospect comes back.",
)


@dataclass(frozen=True)
class Pipeline:
    """Stages in order along the line (open ones, one won, after-won ones) and a checklist.

    Build one with ``Pipeline.of`` (which numbers the stages) or ``domain.pipeline_file``
    (which validates a user's definition). ``id`` and ``version`` are the store's, when known.
    """

    name: str
    line: tuple[StageDef, ...]
    checklist: tuple[str, ...] = ()
    descriptions: tuple[tuple[str, str], ...] = ()  # (criterion, what it means), optional
    id: int | None = field(default=None, compare=False)
    version: int | None = field(default=None, compare=False)

    @classmethod
    def of(cls, name: str, line: list[StageDef] | tuple[StageDef, ...],
           checklist: tuple[str, ...] | list[str] = (), **extra) -> Pipeline:
        from dataclasses import replace

        numbered = tuple(replace(s, order=i) for i, s in enumerate(line, start=1))
        return cls(name, numbered, tuple(checklist), **extra)

    # ---------------------------------------------------------------- lookups

    @cached_property
    def _by_key(self) -> dict[str, StageDef]:
        out = {s.key: s for s in self.line}
        out[LOST] = _LOST_STAGE
        return out

    @property
    def stages(self) -> tuple[StageDef, ...]:
        """Every stage of the line, then the LOST state."""
        return (*self.line, _LOST_STAGE)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.line)

    def has(self, key: str) -> bool:
        return key in self._by_key

    def stage(self, key: str) -> StageDef:
        try:
            return self._by_key[key]
        except KeyError:
            raise UsageError(
                f"pipeline {self.name!r} has no stage {key!r}",
                hint=f"its stages: {', '.join(self.keys)}",
            ) from None

    def order(self, key: str) -> int:
        return self.stage(key).order

    def status(self, key: str) -> Status:
        return self.stage(key).status

    def is_open(self, key: str) -> bool:
        return self.stage(key).kind == "open"

    def is_won(self, key: str) -> bool:
        return self.stage(key).status is Status.WON

    @cached_property
    def open_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.line if s.kind == "open")

    @cached_property
    def won_key(self) -> str:
        return next(s.key for s in self.line if s.kind == "won")

    @cached_property
    def won_keys(self) -> tuple[str, ...]:
        """The won stage and the after-won stages: every stage whose deals count as won."""
        return tuple(s.key for s in self.line if s.kind != "open")

    @cached_property
    def first(self) -> str:
        """Where a new deal starts unless told otherwise."""
        return self.line[0].key

    @cached_property
    def gate(self) -> StageDef | None:
        return next((s for s in self.line if s.gate), None)

    @cached_property
    def first_qualified(self) -> int:
        """The order of the first stage a deal reaches only once qualified: the stage after the
        gate. A pipeline without a gate qualifies every deal as it is created (order 1)."""
        return self.gate.order + 1 if self.gate else 1

    def is_qualified_stage(self, key: str) -> bool:
        """True for a stage beyond the gate (won and after-won included)."""
        s = self.stage(key)
        return s.kind != "lost" and s.order >= self.first_qualified

    def between(self, low: str, high: str) -> tuple[StageDef, ...]:
        lo, hi = self.order(low), self.order(high)
        return tuple(s for s in self.line if lo < s.order < hi)

    def description(self, criterion: str) -> str:
        return dict(self.descriptions).get(criterion, "")

    # ---------------------------------------------------------------- names

    @cached_property
    def _names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for s in self.stages:
            for name in (s.key, s.label, *s.aliases):
                names.setdefault(fold_name(name), s.key)
        return names

    def parse_stage(self, text: str) -> str:
        """A stage key from its key, label, alias or an unambiguous prefix, case-insensitively."""
        hint = f"stages of {self.name!r}: {', '.join((*self.keys, LOST))}"
        wanted = fold_name(text)
        if not wanted:
            raise UsageError("a stage name is empty", hint=hint)
        names = self._names
        if wanted in names:
            return names[wanted]
        matches = {key for name, key in names.items() if name.startswith(wanted)}
        if len(matches) == 1:
            return matches.pop()
        if matches:
            some = ", ".join(sorted(matches))
            raise UsageError(f"stage {text!r} is ambiguous: it could be {some}")
        raise UsageError(f"unknown stage {text!r}", hint=hint)

    def lookup(self, text: str) -> str | None:
        """The stage key an exact key, label or alias names (folded), else None."""
        return self._names.get(fold_name(text))


def fold_name(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold().strip()
    return " ".join(text.replace("_", " ").replace("-", " ").split())


# ------------------------------------------------------------------ the default pipeline
# The seven classic stages of shared/domain.md: the only place in the code that names them.

DEFAULT_CHECKLIST = ("location", "budget", "authority", "need")
DEFAULT_DESCRIPTIONS = (
    ("location", "the prospect is somewhere we sell to"),
    ("budget", "they can pay for it"),
    ("authority", "we talk to someone who can decide"),
    ("need", "our product fits a real need"),
)

DEFAULT = Pipeline.of(
    DEFAULT_NAME,
    [
        StageDef(
            "prospecting", "Prospecting", probability=10,
            aliases=("lead", "new", "prospect"),
            meaning="Identified as likely to convert; not yet talked to.",
            leaves_when="prospect and salesperson have communicated",
            action="Make first contact: send the planned email or LinkedIn message.",
        ),
        StageDef(
            "qualification", "Lead qualification", probability=20, gate=True,
            aliases=("qualify", "qualifying", "sql", "lead qualification"),
            meaning="Mutual assessment against location, budget, authority and need.",
            leaves_when="the qualification checklist passes",
            action="Learn their business and pain points; confirm location, budget, authority "
            "and need.",
        ),
        StageDef(
            "meeting", "Demo or meeting", probability=40,
            aliases=("demo", "meet", "needs assessment", "discovery"),
            meaning="Product demo or needs assessment; agree price and proposal parameters.",
            leaves_when="parameters agreed",
            action="Hold the demo or needs assessment; agree price and the proposal's "
            "parameters.",
        ),
        StageDef(
            "proposal", "Proposal", probability=60,
            aliases=("quote", "offer", "proposal sent"),
            meaning="Pricing presented with a written quote, deck, summary or contract.",
            leaves_when="the prospect commits",
            action="Send the written proposal and make the prospect comfortable committing.",
        ),
        StageDef(
            "negotiation", "Negotiation and commitment", probability=80, skippable=True,
            aliases=("negotiate", "commitment", "contract"),
            meaning="Stakeholders settle the final terms.",
            leaves_when="contract signed",
            action="Settle final terms with every stakeholder and get the contract signed.",
        ),
        StageDef(
            "won", "Opportunity won", kind="won", probability=100,
            aliases=("closed-won", "closed won", "closedwon", "win", "signed"),
            meaning="Closed won: the contract is signed.",
            leaves_when="onboarding starts",
            action="Start onboarding.",
        ),
        StageDef(
            "post_purchase", "Post-purchase", kind="after_won", probability=100,
            aliases=("post-purchase", "onboarding", "customer", "post purchase"),
            meaning="A customer: onboarding, training, add-ons.",
            leaves_when="(terminal)",
            action="Onboard and train; look for referrals and upsells.",
        ),
    ],
    DEFAULT_CHECKLIST,
    descriptions=DEFAULT_DESCRIPTIONS,
)


# ------------------------------------------------------------------ the stored form
# What the store keeps of a definition (pipeline_versions.definition): canonical JSON.


def in_force(versions: list[tuple[str, Pipeline]], at: str) -> Pipeline:
    """Of a pipeline's ``versions`` (each with the ISO UTC moment it came into force, oldest
    first, at least one), the one in force at ``at``: the latest that came into force by
    then, the first for anything earlier (as ``store.pipelines.load``)."""
    found = versions[0][1]
    for since, version in versions:
        if since <= at:
            found = version
    return found


def to_json(pipeline: Pipeline) -> str:
    """The canonical stored form: every field, fixed key order, compact, not ASCII-escaped.
    The store's ``id`` and ``version`` are not part of it."""
    doc = {
        "name": pipeline.name,
        "checklist": list(pipeline.checklist),
        "descriptions": [[c, text] for c, text in pipeline.descriptions],
        "stages": [
            {
                "key": s.key, "label": s.label, "kind": s.kind, "probability": s.probability,
                "rot_days": s.rot_days, "gate": s.gate, "skippable": s.skippable,
                "action": s.action, "aliases": list(s.aliases), "meaning": s.meaning,
                "leaves_when": s.leaves_when,
            }
            for s in pipeline.line
        ],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str) -> Pipeline:
    """The pipeline ``to_json`` wrote (ValueError when the text is not one)."""
    try:
        doc = json.loads(text)
        line = [
            StageDef(
                str(s["key"]), str(s["label"]), kind=str(s.get("kind", "open")),
                probability=int(s.get("probability", 0)),
                rot_days=None if s.get("rot_days") is None else int(s["rot_days"]),
                gate=bool(s.get("gate", False)), skippable=bool(s.get("skippable", False)),
                action=str(s.get("action", "")),
                aliases=tuple(str(a) for a in s.get("aliases", ())),
                meaning=str(s.get("meaning", "")), leaves_when=str(s.get("leaves_when", "")),
            )
            for s in doc["stages"]
        ]
        return Pipeline.of(
            str(doc["name"]), line, tuple(str(c) for c in doc.get("checklist", ())),
            descriptions=tuple((str(c), str(t)) for c, t in doc.get("descriptions", ())),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a stored pipeline: {e!r}") from None
