"""Deals, their timelines, the board and the stage table: as JSON and as terminal tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from pipectl import stages
from pipectl.qualification import CRITERIA, DESCRIPTIONS
from pipectl.stages import Stage
from pipectl.values import weighted_minor
from pipectl.views.common import count, money, money_cell, totals_cell
from pipectl.views.table import UNLIMITED, Column, Styled, Table, echo, terminal_width

Row = dict[str, Any]


def probability(row: Row) -> int:
    """The deal's own probability, else its stage's default."""
    if row["probability"] is not None:
        return int(row["probability"])
    return stages.info(Stage(row["stage"])).probability


def deal_json(row: Row) -> dict[str, Any]:
    stage = Stage(row["stage"])
    cur = row["currency"]
    prob = probability(row)
    weighted = None
    if row["value_minor"] is not None and stages.is_open(stage):
        weighted = money(weighted_minor(row["value_minor"] * prob), cur)
    return {
        "id": row["id"],
        "ref": row["ref"],
        "name": row["name"],
        "company": row["company"],
        "contact": row["contact"],
        "email": row["email"],
        "phone": row["phone"],
        "owner": row["owner"],
        "source": row["source"],
        "stage": stage.value,
        "stage_label": stages.info(stage).label,
        "status": stages.kind(stage).value,
        "lost_at_stage": row["lost_at_stage"],
        "lost_reason": row["lost_reason"],
        "value": money(row["value_minor"], cur),
        "currency": cur,
        "probability": prob,
        "probability_is_own": row["probability"] is not None,
        "weighted_value": weighted,
        "close_date": row["close_date"],
        "qualified": row["qualified_at"] is not None,
        "qualified_at": row["qualified_at"],
        "prequalified_reason": row["prequalified_reason"],
        "checklist": {c: None if row[c] is None else bool(row[c]) for c in CRITERIA},
        "next_action": row["next_action"],
        "next_due": row["next_due"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "closed_at": row["closed_at"],
    }


def event_json(event: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"id": event["id"], "at": event["at"], "kind": event["kind"]}
    for key, val in event.items():
        if key in ("id", "at", "kind", "deal_id", "value_minor"):
            continue
        out[key] = bool(val) if key in CRITERIA else val
    if "value_minor" in event:
        out["value"] = money(event["value_minor"], event["currency"])
    elif event["kind"] == "value":
        out["value"] = None
    return out


def _stage_text(row: Row) -> str:
    stage = Stage(row["stage"])
    if stage is Stage.LOST:
        return f"lost (at {row['lost_at_stage']})"
    return stage.value


# The columns of ``deals`` that deal_table reads (list asks the store for these only).
TABLE_COLUMNS = ("id", "name", "company", "stage", "lost_at_stage", "value_minor", "currency",
                 "probability", "close_date", "owner")


def _deal_cells(rows: Iterable[Row]) -> Iterator[tuple[str, ...]]:
    for row in rows:
        yield (
            str(row["id"]),
            row["name"],
            row["company"] or "",
            _stage_text(row),
            money_cell(row["value_minor"], row["currency"]),
            f"{probability(row)}%",
            row["close_date"] or "",
            row["owner"] or "",
        )


def deal_table(rows: Iterable[Row], title: str | None = None) -> None:
    """One deal per line, written as the rows come (any number of them)."""
    table = Table(
        Column("ID", justify="right", flexible=False),
        Column("Deal"),
        Column("Company"),
        Column("Stage"),
        Column("Value", justify="right", flexible=False),
        Column("Prob", justify="right", flexible=False),
        Column("Close", flexible=False),
        Column("Owner"),
        title=title,
    )
    cells = _deal_cells(rows)
    first = next(cells, None)
    n = 0 if first is None else table.write(_chain(first, cells))
    echo(count(n, "deal"))


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _describe(event: Row) -> str:
    kind = event["kind"]
    if kind == "created":
        text = f"created in {event['to_stage']}"
        if event.get("reason"):
            text += f" (pre-qualified: {event['reason']})"
        if event.get("value_minor") is not None:
            text += f", value {money_cell(event['value_minor'], event['currency'])}"
        if event.get("close_date"):
            text += f", close {event['close_date']}"
        return text
    if kind == "stage":
        a, b = Stage(event["from_stage"]), Stage(event["to_stage"])
        verb = "moved back" if stages.order(b) < stages.order(a) else "advanced"
        if stages.order(b) - stages.order(a) > 1:
            verb = "skipped ahead"
        text = f"{verb}: {a} -> {b}"
        if event.get("reason"):
            text += f" (pre-qualified: {event['reason']})"
        return text
    if kind == "lost":
        return f"lost at {event['from_stage']}: {event.get('reason', '')}"
    if kind == "reopened":
        return f"reopened in {event['to_stage']}"
    if kind == "checklist":
        parts = [
            f"{c} {'yes' if event[c] else 'no'}" if c in event else f"{c} unknown"
            for c in CRITERIA
            if c in event
        ]
        return "checklist: " + ", ".join(parts)
    if kind == "value":
        if event.get("value_minor") is None:
            return "value cleared"
        return f"value: {money_cell(event['value_minor'], event['currency'])}"
    if kind == "close_date":
        return f"expected close: {event.get('close_date') or 'cleared'}"
    if kind == "probability":
        p = event.get("probability")
        return f"probability: {p}%" if p is not None else "probability: stage default"
    if kind == "edit":
        return f"{event['field']}: {event.get('old') or '-'} -> {event.get('new') or '-'}"
    if kind == "note":
        return "note"
    return kind


def _next_step(row: Row, events: list[Row]) -> str | None:
    """The deal's next step as `pipectl next` reads it (stages.next_step)."""
    step = stages.next_step(Stage(row["stage"]), events)
    if step is None:
        return None
    if step.logged:
        return f"{step.action} (due {step.due})" if step.due else step.action
    done = "; the step logged before the move counts as done" if step.superseded else ""
    return f"{step.action} (what {stages.info(Stage(row['stage'])).label.lower()} calls for{done})"


def show(row: Row, events: list[Row]) -> None:
    d = deal_json(row)
    stage_text = _stage_text(row)  # a lost deal's text says it already
    said = stage_text if stage_text.startswith(d["status"]) else f"{stage_text} ({d['status']})"
    echo((f"#{d['id']} {d['name']}", "bold"), f"  {said}")
    facts = [
        ("Company", d["company"]), ("Contact", d["contact"]), ("Email", d["email"]),
        ("Phone", d["phone"]), ("Owner", d["owner"]), ("Source", d["source"]),
        ("Ref", d["ref"]),
        ("Value", money_cell(row["value_minor"], row["currency"])),
        ("Probability", f"{d['probability']}%" + ("" if d["probability_is_own"] else " (stage)")),
        ("Weighted", money_cell(weighted_minor(row["value_minor"] * d["probability"]),
                                row["currency"]) if d["weighted_value"] else None),
        ("Expected close", d["close_date"]),
        ("Qualified", d["qualified_at"] or "no"),
        ("Pre-qualified", d["prequalified_reason"]),
        ("Lost reason", d["lost_reason"]),
        ("Next", _next_step(row, events)),
        ("Created", d["created_at"]), ("Updated", d["updated_at"]), ("Closed", d["closed_at"]),
    ]
    for label, value in facts:
        if value:
            echo(f"  {label + ':':<16}{value}")
    echo("\n", ("Qualification checklist", "bold"))
    for c in CRITERIA:
        v = d["checklist"][c]
        word, style = {True: ("yes", "green"), False: ("no", "red"), None: ("?", "dim")}[v]
        echo("  ", (f"{word:<7}", style), f" {c:<10} {DESCRIPTIONS[c]}")
    # One deal's history is read in full: What and Note wrap at spaces instead of being cut.
    table = Table(Column("When", flexible=False), Column("What", wrap=True, min_width=16),
                  Column("Note", wrap=True, min_width=16), title="Timeline")
    for e in events:
        extra = e.get("text") or ""
        if e.get("next_action"):
            extra += f" [next: {e['next_action']}" + (f", due {e['due']}]" if e.get("due") else "]")
        table.add_row(e["at"].replace("T", " ").rstrip("Z"), _describe(e), extra.strip())
    echo()
    table.write()


def board_data(top: dict[str, list[Row]], totals: list[Row]) -> list[dict[str, Any]]:
    """Per open stage: its largest deals, count, and value and weighted value per currency.

    ``top`` and ``totals`` are what ``store.deals.board`` returns.
    """
    counts: dict[str, int] = defaultdict(int)
    value: dict[str, dict[str, int]] = defaultdict(dict)
    weighted: dict[str, dict[str, int]] = defaultdict(dict)
    exact: dict[str, dict[str, int]] = defaultdict(dict)  # value x percent, not yet rounded
    for t in totals:
        counts[t["stage"]] += t["count"]
        if t["value"] is not None:
            value[t["stage"]][t["currency"]] = t["value"]
            weighted[t["stage"]][t["currency"]] = weighted_minor(t["value_x_percent"])
            exact[t["stage"]][t["currency"]] = t["value_x_percent"]
    columns = []
    for stage in stages.OPEN_STAGES:
        key = stage.value
        deals = top.get(key, [])
        columns.append({
            "stage": key,
            "label": stages.info(stage).label,
            "count": counts[key],
            "value": {c: money(v, c) for c, v in sorted(value[key].items())},
            "weighted_value": {c: money(v, c) for c, v in sorted(weighted[key].items())},
            "deals": [row["id"] for row in deals],
            "_rows": deals,
            "_value": value[key],
            "_weighted": weighted[key],
            "_exact": exact[key],
        })
    return columns


def board_json(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in col.items() if not k.startswith("_")} for col in columns]


def board(columns: list[dict[str, Any]]) -> None:
    """A table with one column per open stage: its top deals, then count and totals."""
    table = Table(
        *(Column(col["stage"].replace("_", " ").title(), wrap=True, min_width=12)
          for col in columns),
        lines=True, expand=100 <= terminal_width() < UNLIMITED,
    )
    cells: list[list[str | Styled]] = []
    for col in columns:
        lines: list[str | Styled] = []
        for row in col["_rows"]:
            val = money_cell(row["value_minor"], row["currency"])
            lines += [Styled((f"#{row['id']}", "bold"), f" {row['name']}"),
                      Styled("  ", (val, "dim"))]
        if col["count"] > len(col["_rows"]):
            lines.append(Styled((f"+{col['count'] - len(col['_rows'])} more", "dim")))
        cells.append(lines or [Styled(("(empty)", "dim"))])
    table.add_row(*cells)
    table.add_row(*(Styled((str(c["count"]), "bold"), f" deal{'s' if c['count'] != 1 else ''}")
                    for c in columns))
    table.add_row(*([money_cell(v, cur) for cur, v in sorted(c["_value"].items())] or "-"
                    for c in columns))
    table.add_row(*(
        [f"w {money_cell(v, cur)}" for cur, v in sorted(c["_weighted"].items())] or "-"
        for c in columns
    ))
    table.write()
    total: dict[str, int] = defaultdict(int)
    exact: dict[str, int] = defaultdict(int)
    for col in columns:
        for c, v in col["_value"].items():
            total[c] += v
        for c, v in col["_exact"].items():
            exact[c] += v
    # the total is rounded once, as `report` rounds it, not summed from rounded stage figures
    wtotal = {c: weighted_minor(v) for c, v in exact.items()}
    n = sum(col["count"] for col in columns)
    echo(("Open pipeline:", "bold"), f" {count(n, 'deal')}, "
         f"{totals_cell(dict(total))}; weighted {totals_cell(wtotal)}")
    echo(("rows: deals (largest first), count, value, weighted value (w)", "dim"))


def stages_json() -> list[dict[str, Any]]:
    return [
        {
            "key": s.key.value,
            "order": s.order or None,
            "label": s.label,
            "kind": s.kind.value,
            "probability": s.probability,
            "aliases": list(s.aliases),
            "meaning": s.meaning,
            "leaves_when": s.leaves_when,
            "may_be_skipped": s.skip or None,
            "next_step": s.action,
        }
        for s in stages.PIPELINE
    ]


RULES_TEXT = (
    "A new deal starts in prospecting; starting in meeting or later needs --prequalified REASON.",
    "advance moves one stage forward; --to STAGE moves further only where a skip is allowed.",
    "Leaving qualification forward needs the checklist to pass: location, budget, authority, need.",
    "A pre-qualified deal may go from prospecting straight to meeting.",
    "proposal may go straight to won (negotiation skipped); no other stage may be skipped.",
    "Moving back to an earlier open stage is allowed and recorded.",
    "lose works from any open stage and needs --reason;"
    " reopen returns to the stage it was lost at.",
    "post_purchase follows only won. Events are appended, never rewritten.",
)


def stages_table() -> None:
    # A reference: the text columns wrap at spaces rather than lose words.
    table = Table(*(Column(c, wrap=c in ("Label", "Aliases", "May be skipped"),
                           flexible=c in ("Label", "Aliases", "May be skipped"))
                    for c in ("#", "Key", "Label", "Kind", "Prob", "Aliases", "May be skipped")))
    for s in stages.PIPELINE:
        table.add_row(
            str(s.order) if s.order else "-", s.key.value, s.label, s.kind.value,
            f"{s.probability}%", ", ".join(s.aliases), s.skip or "",
        )
    table.write()
    echo(("Rules", "bold"))
    for line in RULES_TEXT:
        echo(f"  - {line}")
