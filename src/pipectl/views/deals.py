"""Deals, their timelines, the board and the stage table: as JSON and as terminal tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pipectl.domain.checklist import decode
from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.values import weighted_minor
from pipectl.views.common import count, money, money_cell, totals_cell
from pipectl.views.table import UNLIMITED, Column, Styled, Table, echo, terminal_width

Row = dict[str, Any]


Pipelines = dict[int, Pipeline]

if TYPE_CHECKING:
    from pipectl.domain.rates import Converter


def probability(row: Row, pipeline: Pipeline) -> int:
    """The deal's own probability, else its stage's default."""
    if row["probability"] is not None:
        return int(row["probability"])
    return pipeline.stage(row["stage"]).probability


def checklist(row: Row, pipeline: Pipeline) -> dict[str, bool | None]:
    """The pipeline's criteria with the deal's marks (None: not assessed), then any marks of
    criteria the pipeline no longer has."""
    marks = decode(row["checklist"])
    out: dict[str, bool | None] = {c: marks.get(c) for c in pipeline.checklist}
    out.update({c: v for c, v in marks.items() if c not in out})
    return out


def deal_json(row: Row, pipeline: Pipeline) -> dict[str, Any]:
    stage = row["stage"]
    cur = row["currency"]
    prob = probability(row, pipeline)
    weighted = None
    if row["value_minor"] is not None and pipeline.is_open(stage):
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
        "pipeline": pipeline.name,
        "stage": stage,
        "stage_label": pipeline.stage(stage).label,
        "status": pipeline.status(stage).value,
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
        "checklist": checklist(row, pipeline),
        "next_action": row["next_action"],
        "next_due": row["next_due"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "closed_at": row["closed_at"],
    }


def event_json(event: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"id": event["id"], "at": event["at"], "kind": event["kind"]}
    for key, val in event.items():
        if key in ("id", "at", "kind", "deal_id", "value_minor", "pipeline_id", "checks"):
            continue
        out[key] = val
    if "checks" in event:
        out["checklist"] = decode(event["checks"])
    if "value_minor" in event:
        out["value"] = money(event["value_minor"], event["currency"])
    elif event["kind"] == "value":
        out["value"] = None
    return out


def _stage_text(row: Row) -> str:
    if row["stage"] == LOST:
        return f"{LOST} (at {row['lost_at_stage']})"
    return str(row["stage"])


# The columns of ``deals`` that deal_table reads (list asks the store for these only).
TABLE_COLUMNS = ("id", "name", "company", "pipeline_id", "stage", "lost_at_stage", "value_minor",
                 "currency", "probability", "close_date", "closed_at", "owner")


def close_cell(row: Row) -> str:
    """The list's Close column: the day a won or lost deal closed, else the expected close
    date (the Stage column says which a deal is)."""
    if row["closed_at"]:
        return str(row["closed_at"])[:10]
    return row["close_date"] or ""


def _deal_cells(rows: Iterable[Row], pipelines: Pipelines, converter: Converter | None = None
                ) -> Iterator[tuple[str, ...]]:
    for row in rows:
        cells = (
            str(row["id"]),
            row["name"],
            row["company"] or "",
            _stage_text(row),
            money_cell(row["value_minor"], row["currency"]),
            f"{probability(row, pipelines[row['pipeline_id']])}%",
            close_cell(row),
            row["owner"] or "",
        )
        if converter is not None:  # --in: the value converted, beside the value as it is
            into = converter.one(row["value_minor"], row["currency"])
            cells = (*cells[:5], money_cell(into, converter.target), *cells[5:])
        yield cells


def deal_table(rows: Iterable[Row], pipelines: Pipelines, title: str | None = None,
               totals: list[Any] | None = None, filters: list[str] | None = None,
               converter: Converter | None = None) -> None:
    """One deal per line, written as the rows come (any number of them), then how many
    deals match and their totals per currency (``totals``: ``services.reports.CurrencyTotal``
    of every deal matching, the limit aside). ``filters``: the date filters in words, said
    in the title. ``converter`` (--in): a column of converted values, and the totals
    converted (``views.rates.totals_in``)."""
    if filters:
        title = f"Deals {', '.join(filters)}" + (f"; {title}" if title else "")
    table = Table(
        Column("ID", justify="right", flexible=False),
        Column("Deal"),
        Column("Company"),
        Column("Stage"),
        Column("Value", justify="right", flexible=False),
        *([Column(f"in {converter.target}", justify="right", flexible=False)]
          if converter is not None else []),
        Column("Prob", justify="right", flexible=False),
        Column("Close", flexible=False),
        Column("Owner"),
        title=title,
    )
    cells = _deal_cells(rows, pipelines, converter)
    first = next(cells, None)
    if first is None and title:
        echo(title)
    n = 0 if first is None else table.write(_chain(first, cells))
    for line in totals_lines(n, totals):
        echo(line)
    if converter is not None:
        from pipectl.views.rates import totals_in

        for line in totals_in(totals or [], converter):
            echo(line)


def totals_lines(shown: int, totals: list[Any] | None) -> list[str]:
    """'21 deals: 372,500.00 USD', or '3 of 21 deals (--limit 0 shows all); all 21: ...';
    several currencies one line each (never added together)."""
    if totals is None:
        return [count(shown, "deal")]
    total = sum(t.count for t in totals)
    head = count(total, "deal")
    if shown < total:
        head = f"{shown} of {head} (--limit 0 shows all); all {total}"
    if not totals:
        return [head]
    if len(totals) == 1:
        t = totals[0]
        if t.value_minor is None:
            return [f"{head}, none with a value"]
        return [f"{head}: {money_cell(t.value_minor, t.currency)}{_without(t)}"]
    cells = [money_cell(t.value_minor, t.currency) if t.value_minor is not None
             else f"- {t.currency}" for t in totals]
    counts = [count(t.count, "deal") for t in totals]
    wide, tall = max(len(c) for c in cells), max(len(c) for c in counts)
    lines = [f"{head}, per currency:"]
    for t, cell, n in zip(totals, cells, counts, strict=True):
        lines.append(f"  {cell:>{wide}}  {n:>{tall}}{_without(t)}")
    return lines


def _without(t: Any) -> str:
    if not t.without_value:
        return ""
    if t.value_minor is None:
        return " (none with a value)"
    return f" ({t.without_value} without a value)"


def totals_json(totals: list[Any]) -> dict[str, Any]:
    """Per currency: {"count", "value" (exact decimal string; null when none of its deals has
    a value), "without_value"}."""
    return {t.currency: {"count": t.count, "value": money(t.value_minor, t.currency),
                         "without_value": t.without_value} for t in totals}


def list_json(rows: Iterable[Row], pipelines: Pipelines, totals: list[Any],
              converter: Converter | None = None) -> None:
    """``list --json --totals``: {"deals": [...], "total", "shown", "totals"}, the deals
    written as they come; with ``converter`` (--in) each deal's "value_in" and the object's
    "totals_in" and "values_in" (``views.rates``)."""
    from pipectl.views.common import print_json_with_list

    total = sum(t.count for t in totals)
    if converter is None:
        print_json_with_list(
            "deals", (deal_json(r, pipelines[r["pipeline_id"]]) for r in rows),
            lambda shown: {"total": total, "shown": shown, "totals": totals_json(totals)},
        )
        return
    from pipectl.views.rates import deal_json_in, totals_json_in

    print_json_with_list(
        "deals", (deal_json_in(r, pipelines[r["pipeline_id"]], converter) for r in rows),
        lambda shown: {"total": total, "shown": shown, "totals": totals_json(totals),
                       **totals_json_in(totals, converter)},
    )


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _describe(event: Row, pipeline: Pipeline) -> str:
    kind = event["kind"]
    if kind == "created":
        text = f"created in {event['to_stage']}"
        if event.get("reason"):
            text += f" (pre-qualified: {event['reason']})"
        if event.get("value_minor") is not None:
            text += f", value {money_cell(event['value_minor'], event['currency'])}"
        if event.get("close_date"):
            text += f", close {event['close_date']}"
        if event.get("field") == "unknown":  # what its import could not tell
            words = {"created_at": "when it began", "closed_at": "when it closed",
                     "qualified_at": "whether it was qualified"}
            told = [words.get(f, f) for f in (event.get("new") or "").split()]
            text += f"; the file did not say {', '.join(told)}"
        return text
    if kind == "stage":
        a, b = event["from_stage"], event["to_stage"]
        known = pipeline.has(a) and pipeline.has(b)
        step = pipeline.order(b) - pipeline.order(a) if known else 1
        verb = "moved back" if step < 0 else "skipped ahead" if step > 1 else "advanced"
        text = f"{verb}: {a} -> {b}"
        if event.get("reason"):
            text += f" (pre-qualified: {event['reason']})"
        return text
    if kind == "lost":
        return f"lost at {event['from_stage']}: {event.get('reason', '')}"
    if kind == "reopened":
        return f"reopened in {event['to_stage']}"
    if kind == "pipeline":
        return f"moved to pipeline {event.get('new')}: {event['from_stage']} -> " \
            f"{event['to_stage']}"
    if kind == "checklist":
        marks = decode(event.get("checks"))
        return "checklist: " + ", ".join(f"{c} {'yes' if v else 'no'}" for c, v in marks.items())
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


def _next_step(row: Row, events: list[Row], pipeline: Pipeline) -> str | None:
    """The deal's next step as `pipectl next` reads it (rules.next_step)."""
    from pipectl.domain.next_step import next_step

    step = next_step(pipeline, row["stage"], events)
    if step is None:
        return None
    if step.logged:
        return f"{step.action} (due {step.due})" if step.due else step.action
    done = "; the step logged before the move counts as done" if step.superseded else ""
    label = pipeline.stage(row["stage"]).label.lower()
    return f"{step.action} (what {label} calls for{done})" if step.action else None


def show(row: Row, events: list[Row], pipeline: Pipeline) -> None:
    d = deal_json(row, pipeline)
    stage_text = _stage_text(row)  # a lost deal's text says it already
    said = stage_text if stage_text.startswith(d["status"]) else f"{stage_text} ({d['status']})"
    echo((f"#{d['id']} {d['name']}", "bold"), f"  {said}")
    facts = [
        ("Company", d["company"]), ("Contact", d["contact"]), ("Email", d["email"]),
        ("Phone", d["phone"]), ("Owner", d["owner"]), ("Source", d["source"]),
        ("Ref", d["ref"]), ("Pipeline", pipeline.name),
        ("Value", money_cell(row["value_minor"], row["currency"])),
        ("Probability", f"{d['probability']}%" + ("" if d["probability_is_own"] else " (stage)")),
        ("Weighted", money_cell(weighted_minor(row["value_minor"] * d["probability"]),
                                row["currency"]) if d["weighted_value"] else None),
        ("Expected close", d["close_date"]),
        ("Qualified", d["qualified_at"] or "no"),
        ("Pre-qualified", d["prequalified_reason"]),
        ("Lost reason", d["lost_reason"]),
        ("Next", _next_step(row, events, pipeline)),
        ("Created", d["created_at"]), ("Updated", d["updated_at"]), ("Closed", d["closed_at"]),
    ]
    for label, value in facts:
        if value:
            echo(f"  {label + ':':<16}{value}")
    if d["checklist"]:
        echo("\n", ("Qualification checklist", "bold"))
    width = max((len(c) for c in d["checklist"]), default=0)
    for c, v in d["checklist"].items():
        word, style = {True: ("yes", "green"), False: ("no", "red"), None: ("?", "dim")}[v]
        echo("  ", (f"{word:<7}", style), f" {c:<{max(width, 9)}} {pipeline.description(c)}"
             .rstrip())
    # One deal's history is read in full: What and Note wrap at spaces instead of being cut.
    # Who recorded each event, when any is known (events before pipectl kept it are not)
    by = any(e.get("actor") for e in events)
    table = Table(Column("When", flexible=False), Column("What", wrap=True, min_width=16),
                  Column("Note", wrap=True, min_width=16),
                  *([Column("By", wrap=True, min_width=6)] if by else []), title="Timeline")
    for e in events:
        extra = e.get("text") or ""
        if e.get("next_action"):
            extra += f" [next: {e['next_action']}" + (f", due {e['due']}]" if e.get("due") else "]")
        table.add_row(e["at"].replace("T", " ").rstrip("Z"), _describe(e, pipeline),
                      extra.strip(), *([e.get("actor") or ""] if by else []))
    echo()
    table.write()


def board_data(top: dict[str, list[Row]], totals: list[Row], pipeline: Pipeline
               ) -> list[dict[str, Any]]:
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
    for key in pipeline.open_keys:
        deals = top.get(key, [])
        columns.append({
            "stage": key,
            "label": pipeline.stage(key).label,
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
        # converted values (--in) are exact fractions, summed before they are rounded
        for c, v in col.get("_value_exact", col["_value"]).items():
            total[c] += v
        for c, v in col["_exact"].items():
            exact[c] += v
    total = defaultdict(int, {c: round(v) for c, v in total.items()})  # half-even, once
    # the total is rounded once, as `report` rounds it, not summed from rounded stage figures
    wtotal = {c: weighted_minor(v) for c, v in exact.items()}
    n = sum(col["count"] for col in columns)
    echo(("Open pipeline:", "bold"), f" {count(n, 'deal')}, "
         f"{totals_cell(dict(total))}; weighted {totals_cell(wtotal)}")
    echo(("rows: deals (largest first), count, value, weighted value (w)", "dim"))


def stages_json(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "order": s.order or None,
            "label": s.label,
            "kind": s.status.value,
            "stage_kind": s.kind,
            "probability": s.probability,
            "rot_days": s.rot if s.kind == "open" else None,
            "gate": s.gate,
            "aliases": list(s.aliases),
            "meaning": s.meaning,
            "leaves_when": s.leaves_when,
            "may_be_skipped": s.skip or None,
            "next_step": s.action,
        }
        for s in pipeline.stages
    ]


def stages_table(pipeline: Pipeline) -> None:
    from pipectl.domain.rules import describe

    # A reference: the text columns wrap at spaces rather than lose words.
    table = Table(*(Column(c, wrap=c in ("Label", "Aliases", "May be skipped"),
                           flexible=c in ("Label", "Aliases", "May be skipped"))
                    for c in ("#", "Key", "Label", "Kind", "Prob", "Aliases", "May be skipped")),
                  title=f"Pipeline {pipeline.name}")
    for s in pipeline.stages:
        table.add_row(
            str(s.order) if s.order else "-", s.key, s.label, s.status.value,
            f"{s.probability}%", ", ".join(s.aliases), s.skip or "",
        )
    table.write()
    echo(("Rules", "bold"))
    rules(describe(pipeline))


def rules(lines: list[str]) -> None:
    """A list of rules, each wrapped at spaces to the terminal (never inside a word)."""
    import textwrap

    width = terminal_width()
    for line in lines:
        if width >= UNLIMITED:  # piped: one line each, for grep
            echo(f"  - {line}")
            continue
        for part in textwrap.wrap(line, max(40, width), initial_indent="  - ",
                                  subsequent_indent="    ", break_long_words=False,
                                  break_on_hyphens=False):
            echo(part)
