"""Deals, their timelines, the board and the stage table: as JSON and as terminal tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pipectl.domain.checklist import decode
from pipectl.domain.pipeline import LOST, Pipeline
from pipectl.localtime import shown, shown_date
from pipectl.values import weighted_minor
from pipectl.views.common import count, money, money_cell, totals_cell
from pipectl.views.table import UNLIMITED, Column, Styled, Table, echo, terminal_width, width

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
                 "currency", "probability", "close_date", "closed_at", "owner", "next_action",
                 "next_due", "step_in_force")


def close_cell(row: Row) -> str:
    """The list's Close column: the day a won or lost deal closed, else the expected close
    date (the Stage column says which a deal is). A close moment is shown as the user's date."""
    if row["closed_at"]:
        return shown_date(row["closed_at"])
    return row["close_date"] or ""


def next_cell(row: Row) -> str:
    """The list's Next step column: the step logged last (pipectl note --next), its due date
    first, so that a narrow column still shows when: '2026-12-01 send quote'. Empty when that
    step is done (``step_in_force`` false: logged before the deal's latest move), as in
    ``show`` and ``next``."""
    if not row.get("step_in_force", True):
        return ""
    action, due = row.get("next_action") or "", row.get("next_due") or ""
    return f"{due} {action}".strip()


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
            next_cell(row),
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
    # On a narrow terminal the least useful columns are left out first (``drop``), so that
    # the name keeps 20 cells, the stage its word and the amounts their digits.
    table = Table(
        Column("ID", justify="right", flexible=False),
        Column("Deal", min_width=20),
        Column("Company", min_width=12, drop=1),
        Column("Stage", min_width=13),
        Column("Value", justify="right", flexible=False),
        *([Column(f"in {converter.target}", justify="right", flexible=False, drop=7)]
          if converter is not None else []),
        Column("Prob", justify="right", flexible=False, drop=3),
        Column("Close", flexible=False, drop=4),
        Column("Owner", min_width=10, drop=2),
        Column("Next step", min_width=16, drop=6),
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


SHOW_LAST = 10  # the events `show` lists without --all


def show(row: Row, events: list[Row], pipeline: Pipeline, all_events: bool = False) -> None:
    """A deal on few lines: its facts packed several to a line where the terminal allows,
    its checklist on one line, then its timeline one line per event (issue 16)."""
    d = deal_json(row, pipeline)
    stage_text = _stage_text(row)  # a lost deal's text says it already
    said = stage_text if stage_text.startswith(d["status"]) else f"{stage_text} ({d['status']})"
    _title(f"#{d['id']} {d['name']}", said)
    weighted = (money_cell(weighted_minor(row["value_minor"] * d["probability"]), row["currency"])
                if d["weighted_value"] else None)
    # Facts that belong together share a line (" · "), as many as the terminal takes.
    groups: list[list[tuple[str, str | None]]] = [
        [("Company", d["company"]), ("Contact", d["contact"]), ("Email", d["email"]),
         ("Phone", d["phone"])],
        [("Owner", d["owner"]), ("Source", d["source"]), ("Pipeline", pipeline.name),
         ("Ref", d["ref"])],  # an import's reference: rarely looked at, so last
        [("Value", money_cell(row["value_minor"], row["currency"])),
         ("Probability", f"{d['probability']}%" + ("" if d["probability_is_own"] else " (stage)")),
         ("Weighted", weighted)],
        [("Expected close", d["close_date"]), ("Created", shown(d["created_at"])),
         ("Qualified", shown(d["qualified_at"]) or "no"),
         # the last change, unless it is the timeline's last event (shown below anyway)
         ("Updated", shown(d["updated_at"]) if not events or events[-1]["at"] != d["updated_at"]
          else None),
         ("Closed", shown(d["closed_at"]))],
        [("Next", _next_step(row, [e for e in events if e.get("voided_by") is None], pipeline))],
        [("Pre-qualified", d["prequalified_reason"])],
        [("Lost reason", d["lost_reason"])],
    ]
    for group in groups:
        for line in _packed([(label, value) for label, value in group if value]):
            echo(line)
    if d["checklist"]:
        _checklist_line(d["checklist"])
        # what a criterion not yet met asks for (the pipeline's words): what is left to learn
        for c, v in d["checklist"].items():
            if v is not True and pipeline.description(c):
                for line in wrapped(f"    {c}: {pipeline.description(c)}", indent=" " * 6):
                    echo((line, "dim"))
    # The last SHOW_LAST events (--all: every one), the earlier ones counted below.
    earlier = 0 if all_events else max(0, len(events) - SHOW_LAST)
    total = len(events)
    events = events[earlier:]
    from pipectl.views.table import plain_output

    echo()
    if plain_output():
        _timeline_table(events, pipeline, earlier)
    else:
        _timeline(events, pipeline, total, earlier)
    if earlier:
        echo((f"{count(earlier, 'earlier event')}: pipectl show {row['id']} --all", "dim"))


def _title(head: str, said: str) -> None:
    """'#51 Name  meeting (open)' on one line; a name too long for the terminal wraps at
    spaces (indented under the name), the stage after its last line where it fits."""
    room = terminal_width()
    if width(head) + 2 + width(said) <= room:
        echo((head, "bold"), f"  {said}")
        return
    *lines, last = wrapped(head, indent=" " * (head.index(" ") + 1))
    for line in lines:
        echo((line, "bold"))
    if width(last) + 2 + width(said) <= room:
        echo((last, "bold"), f"  {said}")
    else:
        echo((last, "bold"))
        echo(f"{' ' * (head.index(' ') + 1)}{said}")


_SEP = " · "


def _packed(items: list[tuple[str, str]]) -> list[str]:
    """'  Company: X · Contact: Y': the facts of a group on as few lines as the terminal
    takes; a fact too long for a line wraps under its value, at spaces."""
    from pipectl.views.table import safe

    room = terminal_width()
    lines: list[str] = []
    line = ""
    for label, value in items:
        text = safe(f"{label}: {value}")  # measured as it prints (control characters escaped)
        if line and width(line + _SEP + text) <= room:
            line += _SEP + text
            continue
        if line:
            lines.append(line)
        line = "  " + text
        if width(line) > room:  # alone and still too long: wrapped under its value
            *done, line = wrapped(line, indent=" " * (len(label) + 4))
            lines += done
    if line:
        lines.append(line)
    return lines


_MARKS = {True: ("yes", "green"), False: ("no", "red"), None: ("?", "dim")}


def _checklist_line(marks: dict[str, bool | None]) -> None:
    """'  Checklist: location yes · budget yes · need ?' (wrapped where it does not fit)."""
    room = terminal_width()
    parts: list[str | tuple[str, str]] = ["  Checklist: "]
    used = width("  Checklist: ")
    first = True
    for c, v in marks.items():
        word, style = _MARKS[v]
        piece = f"{c} {word}"
        gap = "" if first else _SEP
        if not first and used + len(gap) + width(piece) > room:
            echo(*parts)
            parts, used, gap = ["             "], 13, ""
        parts += [f"{gap}{c} ", (word, style)]
        used += width(gap + piece)
        first = False
    echo(*parts)


def _minute(moment: str | None) -> tuple[str, str]:
    """A moment as the timeline shows it, to the minute, local ('2026-07-20 23:00'), and its
    zone's label ('CEST'); as it is, with no label, when it is not a stored moment."""
    from pipectl.localtime import label, local

    if not moment:
        return "", ""
    try:
        here = local(moment)
    except (ValueError, OverflowError):
        return str(moment), ""
    return f"{here:%Y-%m-%d %H:%M}", label(here)


def _note_lines(event: Row) -> list[str]:
    """An event's note as its lines (a note read from stdin may have several), the next
    step it logged at the end of the last."""
    text = (event.get("text") or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.strip("\n").split("\n")] if text.strip() else []
    if event.get("next_action"):
        step = f"[next: {event['next_action']}" + (
            f", due {event['due']}]" if event.get("due") else "]")
        if lines:
            lines[-1] += " " + step
        else:
            lines = [step]
    return lines


def _timeline(events: list[Row], pipeline: Pipeline, total: int, earlier: int) -> None:
    """One line per event, like ``git log --oneline``: its time to the minute (the zone said
    once, in the heading), what happened, then its note; what does not fit wraps under it."""
    from pipectl.localtime import zone_name
    from pipectl.views.table import safe

    times = [_minute(e["at"]) for e in events]
    zones = {z for _, z in times if z} | {_minute(e.get("undone_at"))[1] for e in events
                                          if e.get("voided_by") is not None and e.get("undone_at")}
    zones.discard("")
    zone = zones.pop() if len(zones) == 1 else zone_name()
    # who recorded the events: said once when one person did (events from before pipectl
    # kept it have none), else beside each event
    actors = {e.get("actor") or "" for e in events}
    known = actors - {""}
    one_actor = next(iter(known)) if len(known) == 1 else ""
    head = f"last {len(events)} of {total} events" if earlier else count(total, "event")
    head += f", times {zone}" if events else ""
    if one_actor:
        head += f", all by {one_actor}" if "" not in actors else f", by {one_actor} where known"
    for line in wrapped(f"Timeline ({head})"):
        echo((line, "bold"))
    room = terminal_width()
    for e, (at, _) in zip(events, times, strict=True):
        what = _describe(e, pipeline)
        spans: list[tuple[str, str]] = [(safe(what), "")]
        if e.get("voided_by") is not None:  # undone: kept in the history, marked (issue 16)
            spans = [("[undone] ", "bold"), (safe(what), "strike")]
        if e.get("actor") and not one_actor:  # who recorded it, when they differ
            spans.append((safe(f" (by {e['actor']})"), "dim"))
        if e.get("voided_by") is not None:
            who = f" by {e['undone_by']}" if e.get("undone_by") else ""
            when = _minute(e.get("undone_at"))[0].replace(" ", _GLUE)  # kept on one line
            spans.append((safe(f" [undone{who} at {when}]"), "dim"))
        notes = [safe(line) for line in _note_lines(e)]
        lead = f"{at:<16}  "
        pad = " " * width(lead)
        text_room = max(room - width(lead), 12) if room < UNLIMITED else UNLIMITED
        if notes and e["kind"] == "note":  # a note's text is what happened: on its line
            spans.append((": " + notes.pop(0), ""))
        elif notes and sum(width(t) for t, _ in spans) + width(" — " + notes[0]) <= text_room:
            spans.append((" — " + notes.pop(0), ""))  # the note after what happened
        elif notes:  # else on lines of its own, under what happened
            notes[0] = "— " + notes[0]
        for k, part in enumerate(_hanging(spans, text_room)):
            echo(lead if k == 0 else pad + "  ", *part)
        # a note's further lines (or the whole note, when it did not fit): under what
        # happened, indented by two; what does not fit of a line, by two more
        for note in notes:
            first = pad if note.startswith("— ") else pad + "  "
            for k, part in enumerate(_hanging([(note, "")], room - width(first))):
                echo(first if k == 0 else first + "  ", *part)


def _hanging(spans: list[tuple[str, str]], room: int) -> list[list[tuple[str, str]]]:
    """A line wrapped at spaces to ``room`` cells, its lines after the first to ``room - 2``
    (they are indented by two more)."""
    from pipectl.views.table import _wrap_spans

    if room >= UNLIMITED:
        return [_unglued(spans)]
    room = max(room, 12)
    first, *rest = _wrap_spans(spans, room)
    if not rest:
        return [_unglued(first)]
    more: list[tuple[str, str]] = []
    for k, line in enumerate(rest):
        more += ([(" ", "")] if k else []) + line
    return [_unglued(first), *(_unglued(x) for x in _wrap_spans(more, room - 2))]


_GLUE = "\u00a0"  # a space where a line must not break (a date and its time)


def _unglued(spans: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(t.replace(_GLUE, " "), s) for t, s in spans]


def _timeline_table(events: list[Row], pipeline: Pipeline, earlier: int) -> None:
    """The timeline with --plain: a tab-separated table (When, What, Note, By), a note of
    several lines joined with "; "."""
    by = any(e.get("actor") for e in events)
    table = Table(Column("When"), Column("What"), Column("Note"),
                  *([Column("By")] if by else []),
                  title="Timeline" if not earlier else f"Timeline (the last {len(events)} events)")
    for e in events:
        what: Any = _describe(e, pipeline)
        if e.get("voided_by") is not None:  # undone: kept in the history, marked (issue 16)
            who = f" by {e['undone_by']}" if e.get("undone_by") else ""
            what = [f"[undone] {what}", f"undone{who} at {shown(e.get('undone_at'))}"]
        table.add_row(shown(e["at"]), what, list(_note_lines(e)),
                      *([e.get("actor") or ""] if by else []))
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


def _stacked(columns: list[dict[str, Any]]) -> bool:
    """The board as one row per stage (``_board_rows``) when a column per stage would leave
    each less than 18 cells (an amount and its currency, a name's start), or with --plain."""
    from pipectl.views.table import plain_output

    if plain_output():
        return True
    room = terminal_width()
    return room < UNLIMITED and room < 3 * len(columns) + 1 + 18 * len(columns)


def _board_rows(columns: list[dict[str, Any]]) -> None:
    """The board on a narrow terminal: a row per open stage, its name, count and value per
    currency on the left, its largest deals one a line with their amounts beside them. With
    --plain: a row per deal (stage, id, name, value)."""
    from pipectl.views.table import plain_output

    if plain_output():
        flat = Table(Column("Stage"), Column("ID"), Column("Deal"), Column("Value"))
        for col in columns:
            for row in col["_rows"]:
                flat.add_row(col["stage"], str(row["id"]), row["name"],
                             money_cell(row["value_minor"], row["currency"]))
        flat.write()
        return
    # a stage's totals go under its deals' values when, beside its name, they would leave
    # the deals' names less than 20 cells (huge amounts): never the names before the totals
    amounts = [money_cell(v, cur) for col in columns for cur, v in col["_value"].items()]
    values_w = max([5, *(width(money_cell(r["value_minor"], r["currency"]))
                         for col in columns for r in col["_rows"])])
    label_w = max([5, *(max(width(col["stage"]), width(count(col["count"], "deal")))
                        for col in columns)])
    below = terminal_width() - 10 - max([label_w, *map(width, amounts)]) - values_w < 20
    table = Table(Column("Stage", flexible=False),
                  Column("Deals" if below else "Deals (largest first)", min_width=20),
                  Column("Value", justify="right", flexible=False), lines=True)
    for col in columns:
        names: list[str | Styled] = []
        values: list[str | Styled] = []
        for row in col["_rows"]:
            names.append(Styled((f"#{row['id']}", "bold"), f" {row['name']}"))
            values.append(money_cell(row["value_minor"], row["currency"]))
        if col["count"] > len(col["_rows"]):
            names.append(Styled((f"+{col['count'] - len(col['_rows'])} more", "dim")))
        totals = [Styled((money_cell(v, cur), "dim")) for cur, v in sorted(col["_value"].items())]
        if below and totals:
            names = (names or [Styled(("(empty)", "dim"))]) + [
                Styled(("total", "dim")), *([""] * (len(totals) - 1))]
            values = values + [""] * (len(names) - len(totals) - len(values)) + totals
        stage: list[str | Styled] = [
            Styled((col["stage"].replace("_", " ").title(), "bold")),
            count(col["count"], "deal"), *([] if below else totals),
        ]
        table.add_row(stage, names or [Styled(("(empty)", "dim"))], values or [""])
    table.write()


def board(columns: list[dict[str, Any]]) -> None:
    """A table with one column per open stage: its top deals, then count and totals (on a
    narrow terminal, a row per stage: ``_board_rows``)."""
    if _stacked(columns):
        _board_rows(columns)
        _board_total(columns, stacked=True)
        return
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
    _board_total(columns)


def _board_total(columns: list[dict[str, Any]], stacked: bool = False) -> None:
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
    said = (f"Open pipeline: {count(n, 'deal')}, {totals_cell(dict(total))}; weighted "
            f"{totals_cell(wtotal)}")
    lines = wrapped(said)
    echo(("Open pipeline:", "bold"), lines[0].removeprefix("Open pipeline:"))
    for line in lines[1:]:
        echo(line)
    if not stacked:
        echo(("rows: deals (largest first), count, value, weighted value (w)", "dim"))


def wrapped(text: str, indent: str = "  ") -> list[str]:
    """``text`` wrapped at spaces to the terminal (piped: one line), never between an amount
    and its currency; the lines after the first indented."""
    import textwrap

    room = terminal_width()
    if room >= UNLIMITED or width(text) <= room:
        return [text]
    import re

    glued = re.sub(r"(?<=\d) (?=[A-Z]{3}(?![A-Za-z]))| (?=\+ )", "\0", text)
    lead = glued[: len(glued) - len(glued.lstrip(" "))]
    return [line.replace("\0", " ") for line in textwrap.wrap(
        glued.lstrip(" "), room, initial_indent=lead, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False)] or [""]


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
    # Words are never broken: on a narrow terminal the order, then who may skip a stage
    # (the rules below say it too), then the aliases are left out.
    drops = {"#": 1, "May be skipped": 2, "Aliases": 3}
    table = Table(*(Column(c, wrap=c in ("Label", "Aliases", "May be skipped"),
                           flexible=c in ("Label", "Aliases", "May be skipped"),
                           drop=drops.get(c, 0))
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
