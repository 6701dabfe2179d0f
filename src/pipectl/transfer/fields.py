"""The fields a column can feed, and the presets for the CRMs users come from.

A preset maps the CRM's column names to fields and its stage names to the stages of pipectl's
default pipeline (``domain.pipeline.DEFAULT``), and says what a closed deal looked like before it
closed when the file does not tell. These maps are the only place outside the domain that names
stage keys: they say what a CRM's stages mean in the default pipeline. For any other pipeline
only their won and lost entries count (every pipeline has a won stage and the lost state); the
file's stage names are otherwise looked up in the target pipeline (``transfer.stage_map``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace

from pipectl.errors import UsageError

# field -> what it means (docs/import-export.md lists the same)
FIELDS: dict[str, str] = {
    "ref": "the source's own id: importing the same ref again updates that deal",
    "name": "the deal's name (else its company's, else its ref)",
    "company": "the prospect's company",
    "contact": "the person you deal with",
    "email": "the contact's email",
    "phone": "the contact's phone",
    "owner": "the salesperson who owns it",
    "source": "where the lead came from",
    "value": "the deal's value: 100000, 100000.0, 1,234.50",
    "currency": "ISO 4217 code of the value (else --currency, else USD)",
    "probability": "the deal's own win probability, whole percent",
    "stage": "the CRM's stage, mapped by the preset or --stage-map",
    "status": "open, won or lost (e.g. Pipedrive's Deal - Status)",
    "won": "1/0 or true/false: the deal was won (e.g. Salesforce's IsWon)",
    "closed": "1/0 or true/false: the deal is closed (e.g. Salesforce's IsClosed)",
    "created_at": "when the deal was created, in its stage",
    "closed_at": "when it was won or lost",
    "close_date": "expected close date (for a closed deal without closed_at: when it closed)",
    "updated_at": "when the row last changed: the time of changes found on a re-import",
    "lost_reason": "why it was lost",
    "lost_at_stage": "the stage a lost deal died at",
    "note": "a note kept with the deal",
    "prequalified": "why the deal counts as qualified without the checklist (pre-qualified)",
}

TEXT_FIELDS = ("ref", "name", "company", "contact", "email", "phone", "owner", "source",
               "prequalified")


def norm(name: str) -> str:
    """How column and stage names are compared: NFC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


@dataclass(frozen=True)
class Preset:
    name: str
    columns: dict[str, str]  # their column -> field
    # their stage -> a stage key of the default pipeline (or "lost"), in the CRM's own order
    stages: dict[str, str] = field(default_factory=dict)
    signature: tuple[str, ...] = ()  # columns that identify the CRM's export
    # the stage (of the default pipeline) a won deal was in, and a lost deal died at, when the
    # file does not say; None: the target pipeline's last open stage, and its first stage
    won_from: str | None = None
    lost_from: str | None = None
    zero_value_lost_is_unknown: bool = False  # a lost row's value 0 means "not recorded"
    probability_fraction: bool = False  # the probability column is a fraction (0.4 = 40 %)
    history: bool = False  # a file of stage changes (Salesforce OpportunityHistory)
    note: str = ""


PRESETS: dict[str, Preset] = {
    "maven": Preset(
        "maven",
        {
            "opportunity_id": "ref",
            "sales_agent": "owner",
            "account": "company",
            "deal_stage": "stage",
            "engage_date": "created_at",
            "close_date": "closed_at",
            "close_value": "value",
        },
        {
            "prospecting": "prospecting",
            "engaging": "meeting",
            "won": "won",
            "lost": "lost",
        },
        signature=("opportunity_id", "deal_stage"),
        won_from="meeting",
        lost_from="meeting",
        zero_value_lost_is_unknown=True,
        note="Maven's Engaging is pipectl's meeting; won and lost deals were engaging first.",
    ),
    "hubspot": Preset(
        "hubspot",
        {
            "record id": "ref",
            "deal name": "name",
            "deal stage": "stage",
            "close date": "close_date",
            "deal owner": "owner",
            "amount": "value",
            "closed lost reason": "lost_reason",
            "create date": "created_at",
            "last modified date": "updated_at",
            "associated company": "company",
            "original source type": "source",
            "deal description": "note",
            "currency": "currency",
            "deal probability": "probability",
        },
        {
            "appointment scheduled": "meeting",
            "qualified to buy": "qualification",
            "presentation scheduled": "meeting",
            "decision maker bought-in": "proposal",
            "contract sent": "negotiation",
            "closed won": "won",
            "closed lost": "lost",
            "opportunity identified": "prospecting",
            "on hold / future opportunity": "prospecting",
            "awaiting event": "meeting",
            "awaiting outcome": "proposal",
            "awaiting procurement": "negotiation",
            "closed: won": "won",
            "closed: lost": "lost",
            "closed: abandoned": "lost",
        },
        signature=("record id", "deal stage"),
        probability_fraction=True,
    ),
    "pipedrive": Preset(
        "pipedrive",
        {
            "deal - id": "ref",
            "deal - title": "name",
            "deal - organization": "company",
            "organization - name": "company",
            "deal - contact person": "contact",
            "person - name": "contact",
            "person - email": "email",
            "person - phone": "phone",
            "deal - owner": "owner",
            "deal - source": "source",
            "deal - value": "value",
            "deal - currency": "currency",
            "deal - probability": "probability",
            "deal - stage": "stage",
            "deal - status": "status",
            "deal - deal created": "created_at",
            "deal - won time": "closed_at",
            "deal - lost time": "closed_at",
            "deal - deal closed on": "closed_at",
            "deal - expected close date": "close_date",
            "deal - update time": "updated_at",
            "deal - lost reason": "lost_reason",
        },
        signature=("deal - id", "deal - stage"),
        note="Pipedrive stages are each company's own: map them with --stage-map.",
    ),
    "salesforce": Preset(
        "salesforce",
        {
            "id": "ref",
            "name": "name",
            "stagename": "stage",
            "amount": "value",
            "currencyisocode": "currency",
            "probability": "probability",
            "closedate": "close_date",
            "leadsource": "source",
            "ownerid": "owner",
            "createddate": "created_at",
            "lastmodifieddate": "updated_at",
            "isclosed": "closed",
            "iswon": "won",
            "description": "note",
        },
        {
            "prospecting": "prospecting",
            "qualification": "qualification",
            "needs analysis": "meeting",
            "value proposition": "meeting",
            "id. decision makers": "meeting",
            "perception analysis": "meeting",
            "proposal/price quote": "proposal",
            "negotiation/review": "negotiation",
            "closed won": "won",
            "closed lost": "lost",
        },
        signature=("stagename", "iswon"),
    ),
    "salesforce-history": Preset(
        "salesforce-history",
        {
            "opportunityid": "ref",
            "createddate": "created_at",
            "stagename": "stage",
            "amount": "value",
            "closedate": "close_date",
            "probability": "probability",
            "currencyisocode": "currency",
        },
        signature=("opportunityid", "stagename"),
        history=True,
    ),
    "pipectl": Preset(
        "pipectl",
        {**{name: name for name in FIELDS}, "prequalified_reason": "prequalified"},
        signature=("name", "stage", "currency", "created_at"),
    ),
}
PRESETS["salesforce-history"] = replace(
    PRESETS["salesforce-history"], stages=PRESETS["salesforce"].stages
)

PRESET_NAMES = ("hubspot", "pipedrive", "salesforce", "maven", "pipectl")


def detect(header: list[str]) -> Preset | None:
    """The preset whose signature columns the header holds (first match), else None."""
    have = {norm(h) for h in header}
    for preset in PRESETS.values():
        if all(col in have for col in preset.signature):
            return preset
    return None


def get_preset(name: str, header: list[str]) -> Preset:
    key = name.strip().lower()
    if key not in PRESETS or key == "salesforce-history":
        raise UsageError(f"unknown preset {name!r}", hint=f"use one of: {', '.join(PRESET_NAMES)}")
    if key == "salesforce" and PRESETS["salesforce-history"] is detect(header):
        return PRESETS["salesforce-history"]
    return PRESETS[key]


def parse_pairs(items: list[str], option: str) -> list[tuple[str, str]]:
    """'A=B' strings -> pairs, split at the LAST '=' (their names may hold '=')."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"{option} {item!r} has no '='", hint=f'write {option} "THEIRS=OURS"')
        left, _, right = item.rpartition("=")
        if not left.strip():
            raise UsageError(f"{option} {item!r}: the name before '=' is empty")
        pairs.append((left.strip(), right.strip()))
    return pairs


def resolve_columns(
    header: list[str], preset: Preset | None, maps: list[tuple[str, str]]
) -> tuple[dict[str, int], list[str]]:
    """field -> column index, and the columns left unmapped (in file order).

    Without a preset, a column named like a field (``name``, ``Close Date`` ...) feeds it.
    ``--map COLUMN=FIELD`` overrides; ``--map COLUMN=-`` leaves a column out.
    """
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        index.setdefault(norm(h), i)  # a duplicate column name: the first one counts
    by_col: dict[int, str] = {}
    if preset is not None:
        for col, fld in preset.columns.items():
            if norm(col) in index:
                by_col[index[norm(col)]] = fld  # several columns may feed one field
    else:
        for fld in FIELDS:
            for alias in (fld, fld.replace("_", " ")):
                if alias in index and fld not in by_col.values():
                    by_col[index[alias]] = fld
    for col, fld in maps:
        if norm(col) not in index:
            shown = ", ".join(repr(h) for h in header[:30])
            raise UsageError(f"--map: the file has no column {col!r}", hint=f"its columns: {shown}")
        i = index[norm(col)]
        if fld in ("-", ""):
            by_col.pop(i, None)
            continue
        if fld not in FIELDS:
            raise UsageError(
                f"--map {col}={fld}: unknown field {fld!r}", hint=f"fields: {', '.join(FIELDS)}"
            )
        for other, f in list(by_col.items()):
            if f == fld and other != i:
                del by_col[other]
        by_col[i] = fld
    fields: dict[str, int] = {}
    for i in sorted(by_col):
        fields.setdefault(by_col[i], i)
    unmapped = [h for i, h in enumerate(header) if i not in by_col]
    return fields, unmapped


def fallbacks(header: list[str], preset: Preset | None, fields: dict[str, int],
              unmapped: list[str]) -> dict[str, list[int]]:
    """field -> further columns the preset feeds it from, read when the first is empty
    (Pipedrive's 'Deal - Won time' and 'Deal - Lost time' both give closed_at)."""
    if preset is None:
        return {}
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        index.setdefault(norm(h), i)
    out: dict[str, list[int]] = {}
    for col, fld in preset.columns.items():
        i = index.get(norm(col))
        if i is not None and fld in fields and fields[fld] != i and header[i] not in unmapped:
            out.setdefault(fld, []).append(i)
    return out
