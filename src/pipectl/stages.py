"""The pipeline: one table that defines every stage.

Order, key, label, kind (open/won/lost), default win probability, aliases, whether the stage
may be skipped and what it calls for. Everything else (rules, reports, views) reads this table;
no other module lists stages.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from pipectl.errors import UsageError


class Stage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    MEETING = "meeting"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    POST_PURCHASE = "post_purchase"
    LOST = "lost"


class Kind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class StageInfo:
    key: Stage
    order: int  # 1..7 along the pipeline; lost is 0 (it is off the line)
    label: str
    kind: Kind
    probability: int  # default win probability, percent
    aliases: tuple[str, ...]
    meaning: str
    leaves_when: str
    skip: str  # "" when the stage may never be skipped, else when it may
    action: str  # what a salesperson should do with a deal here (pipectl next)


PIPELINE: tuple[StageInfo, ...] = (
    StageInfo(
        Stage.PROSPECTING, 1, "Prospecting", Kind.OPEN, 10, ("lead", "new", "prospect"),
        "Identified as likely to convert; not yet talked to.",
        "prospect and salesperson have communicated",
        "",
        "Make first contact: send the planned email or LinkedIn message.",
    ),
    StageInfo(
        Stage.QUALIFICATION, 2, "Lead qualification", Kind.OPEN, 20,
        ("qualify", "qualifying", "sql", "lead qualification"),
        "Mutual assessment against location, budget, authority and need.",
        "the qualification checklist passes",
        "pre-qualified deals (with a recorded reason) go from prospecting straight to meeting",
        "Learn their business and pain points; confirm location, budget, authority and need.",
    ),
    StageInfo(
        Stage.MEETING, 3, "Demo or meeting", Kind.OPEN, 40,
        ("demo", "meet", "needs assessment", "discovery"),
        "Product demo or needs assessment; agree price and proposal parameters.",
        "parameters agreed",
        "",
        "Hold the demo or needs assessment; agree price and the proposal's parameters.",
    ),
    StageInfo(
        Stage.PROPOSAL, 4, "Proposal", Kind.OPEN, 60, ("quote", "offer", "proposal sent"),
        "Pricing presented with a written quote, deck, summary or contract.",
        "the prospect commits",
        "",
        "Send the written proposal and make the prospect comfortable committing.",
    ),
    StageInfo(
        Stage.NEGOTIATION, 5, "Negotiation and commitment", Kind.OPEN, 80,
        ("negotiate", "commitment", "contract"),
        "Stakeholders settle the final terms.",
        "contract signed",
        "small deals may go from proposal straight to won",
        "Settle final terms with every stakeholder and get the contract signed.",
    ),
    StageInfo(
        Stage.WON, 6, "Opportunity won", Kind.WON, 100,
        ("closed-won", "closed won", "closedwon", "win", "signed"),
        "Closed won: the contract is signed.",
        "onboarding starts",
        "",
        "Start onboarding.",
    ),
    StageInfo(
        Stage.POST_PURCHASE, 7, "Post-purchase", Kind.WON, 100,
        ("post-purchase", "onboarding", "customer", "post purchase"),
        "A customer: onboarding, training, add-ons.",
        "(terminal)",
        "",
        "Onboard and train; look for referrals and upsells.",
    ),
    StageInfo(
        Stage.LOST, 0, "Closed lost", Kind.LOST, 0,
        ("closed-lost", "closed lost", "closedlost", "lose", "dead"),
        "The deal died at an open stage, for a recorded reason.",
        "reopened",
        "",
        "Nothing: reopen it if the prospect comes back.",
    ),
)

INFO: dict[Stage, StageInfo] = {s.key: s for s in PIPELINE}
LINE: tuple[Stage, ...] = tuple(s.key for s in sorted(PIPELINE, key=lambda s: s.order) if s.order)
OPEN_STAGES: tuple[Stage, ...] = tuple(s for s in LINE if INFO[s].kind is Kind.OPEN)
# A deal at or beyond this stage has passed the qualification gate (or was pre-qualified).
FIRST_QUALIFIED = Stage.MEETING


def info(stage: Stage) -> StageInfo:
    return INFO[stage]


def order(stage: Stage) -> int:
    return INFO[stage].order


def kind(stage: Stage) -> Kind:
    return INFO[stage].kind


def is_open(stage: Stage) -> bool:
    return INFO[stage].kind is Kind.OPEN


def is_qualified_stage(stage: Stage) -> bool:
    """True for meeting and every later stage on the line (won and post_purchase included)."""
    return INFO[stage].order >= INFO[FIRST_QUALIFIED].order


DUE_ONLY = "Do what is due"  # the action of a next step logged with a due date alone


@dataclass(frozen=True, slots=True)
class NextStep:
    action: str
    logged: bool  # logged with pipectl note --next (else what the stage calls for)
    due: str | None
    superseded: bool  # a step was logged, before the deal's latest move: it counts as done


def next_step(stage: Stage, events: list[dict]) -> NextStep | None:
    """What a deal needs next, from its events in time order (dicts without None values):
    the latest logged next step while it was logged in the current stage; else, for an open
    deal, what its stage calls for. docs/metrics.md ("pipectl next"); reports/actions.py
    applies the same rule in SQL to every open deal."""
    logged = [e for e in events if e["kind"] == "note" and ("next_action" in e or "due" in e)]
    entered = max((e["at"] for e in events if "to_stage" in e), default="")
    if logged and logged[-1]["at"] >= entered:
        last = logged[-1]
        return NextStep(last.get("next_action") or DUE_ONLY, True, last.get("due"),
                        False)
    if not is_open(stage):
        return None
    return NextStep(info(stage).action, False, None, bool(logged))


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold().strip()
    return " ".join(text.replace("_", " ").replace("-", " ").split())


def _names() -> dict[str, Stage]:
    names: dict[str, Stage] = {}
    for s in PIPELINE:
        for name in (s.key.value, s.label, *s.aliases):
            names[_fold(name)] = s.key
    return names


def parse_stage(text: str) -> Stage:
    """Key, label, alias or unambiguous prefix of either, case-insensitively."""
    wanted = _fold(text)
    if not wanted:
        raise UsageError("a stage name is empty", hint=f"use one of: {', '.join(Stage)}")
    names = _names()
    if wanted in names:
        return names[wanted]
    matches = {stage for name, stage in names.items() if name.startswith(wanted)}
    if len(matches) == 1:
        return matches.pop()
    if matches:
        some = ", ".join(sorted(matches))
        raise UsageError(f"stage {text!r} is ambiguous: it could be {some}")
    raise UsageError(f"unknown stage {text!r}", hint=f"use one of: {', '.join(Stage)}")
