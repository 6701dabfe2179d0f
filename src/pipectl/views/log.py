"""`pipectl log`: the activity across all deals, day by day (newest first), as text, JSON or
CSV. Each event in one line: its time, the deal, what happened."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from pipectl.views.common import money_cell

if TYPE_CHECKING:
    from pipectl.domain.pipeline import Pipeline

Row = dict[str, Any]
NAME_WIDTH = 24  # a deal's name is cut to this many cells on a terminal (piped: whole)


def day_of(at: str) -> str:
    """The day an event is listed under: its date in the user's time zone."""
    from pipectl.localtime import shown_date

    return shown_date(at)


def _time(at: str) -> str:
    from pipectl.localtime import local

    try:
        return f"{local(at):%H:%M}"
    except (ValueError, OverflowError):
        return at[11:16]


def day_header(day: str) -> str:
    """ "Monday 7 December 2026" (English, whatever the locale: the rest of pipectl is)."""
    d = date.fromisoformat(day)
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines() or [""]
    more = len(lines) - 1
    return lines[0] + (f" (+{more} line{'s' if more > 1 else ''})" if more else "")


def what(e: Row, pipelines: Mapping[int, Pipeline]) -> str:
    """What an event (or an undo) did, in a few words."""
    kind = e["kind"]
    p = pipelines.get(e["pipeline_id"]) if e.get("pipeline_id") is not None else None
    if kind == "undo":
        return f"undo: {e['summary']}"
    if kind == "created":
        text = f"created in {e['to_stage']}"
        if e.get("value_minor") is not None:
            text += f", {money_cell(e['value_minor'], e['currency'])}"
        return text
    if kind == "stage":
        a, b = e["from_stage"], e["to_stage"]
        if p is not None and b == p.won_key:
            return f"won (from {a})"
        back = p is not None and p.has(a) and p.has(b) and p.order(b) < p.order(a)
        return f"moved {'back ' if back else ''}{a} -> {b}"
    if kind == "lost":
        return f"lost at {e['from_stage']}" + (f" ({e['reason']})" if e.get("reason") else "")
    if kind == "reopened":
        return f"reopened in {e['to_stage']}"
    if kind == "pipeline":
        return f"moved to pipeline {e.get('new')}: {e['from_stage']} -> {e['to_stage']}"
    if kind == "checklist":
        from pipectl.domain.checklist import decode

        marks = decode(e.get("checks"))
        return "checklist: " + ", ".join(f"{c} {'yes' if v else 'no'}" for c, v in marks.items())
    if kind == "value":
        if e.get("value_minor") is None:
            return "value cleared"
        return f"value {money_cell(e['value_minor'], e['currency'])}"
    if kind == "close_date":
        return f"expected close {e.get('close_date') or 'cleared'}"
    if kind == "probability":
        prob = e.get("probability")
        return f"probability {prob}%" if prob is not None else "probability: the stage's"
    if kind == "edit":
        return f"{e['field']}: {e.get('old') or '-'} -> {e.get('new') or '-'}"
    if kind == "note":
        first = _first_line(e.get("text"))
        text = first if first.startswith("done: ") else f"note: {first}"  # pipectl done
        if e.get("next_action"):
            text += f" [next: {e['next_action']}" + (f", due {e['due']}]" if e.get("due")
                                                     else "]")
        elif e.get("due"):
            text += f" [due {e['due']}]"
        elif e.get("field") == "next_action" and not (e.get("text") or "").startswith("done:"):
            text += " [next step cleared]"
        return text
    return kind


def _item(e: Row, pipelines: Mapping[int, Pipeline]) -> Row:
    return {
        "at": e["at"],
        "day": day_of(e["at"]),
        "deal_id": e["deal_id"],
        "deal": e["deal_name"],
        "owner": e["deal_owner"],
        "kind": e["kind"],
        "what": what(e, pipelines),
        "text": e.get("text") if e["kind"] == "note" else None,
        "by": e.get("actor"),
        "undone": bool(e.get("undone")),
    }


def log_json(rows: list[Row], pipelines: Mapping[int, Pipeline], since: str, until: str) -> None:
    from pipectl.views.common import print_json

    print_json({"since": since, "until": until, "count": len(rows),
                "events": [_item(e, pipelines) for e in rows]})


CSV_COLUMNS = ("at", "day", "deal_id", "deal", "owner", "kind", "what", "text", "by", "undone")


def log_csv(rows: list[Row], pipelines: Mapping[int, Pipeline]) -> None:
    import csv

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for e in rows:
        item = _item(e, pipelines)
        item["undone"] = "true" if item["undone"] else "false"
        out.writerow(["" if item[c] is None else item[c] for c in CSV_COLUMNS])


def log_plain(rows: list[Row], pipelines: Mapping[int, Pipeline]) -> None:
    """--plain: a tab-separated row per event (day, time, deal id, deal, what), a header
    first, names and text whole: ``pipectl --plain log | grep Acme``."""
    from pipectl.views.table import Column, Table

    Table(Column("Day"), Column("Time"), Column("ID"), Column("Deal"), Column("What")).write(
        [day_of(e["at"]), _time(e["at"]), str(e["deal_id"]), e["deal_name"],
         what(e, pipelines) + (" (undone)" if e.get("undone") else "")] for e in rows)


def log_text(rows: list[Row], pipelines: Mapping[int, Pipeline], since: str, until: str,
             limited: bool) -> None:
    from pipectl.views.table import UNLIMITED, cut, echo, plain_output, terminal_width, width

    plain = plain_output()
    if plain:  # the rows on stdout, tab-separated; the footer (below) on stderr
        log_plain(rows, pipelines)
    if not rows:
        echo(f"Nothing happened from {since} to {until}.")
        return
    total = terminal_width()
    ids = max(len(str(e["deal_id"])) for e in rows) + 1
    longest = max(width(e["deal_name"]) for e in rows)
    names = longest if total >= UNLIMITED else min(longest, NAME_WIDTH)
    day = None
    for e in [] if plain else rows:
        if day_of(e["at"]) != day:
            if day is not None:
                echo()
            day = day_of(e["at"])
            echo((day_header(day), "bold"))
        name = cut(e["deal_name"], names)
        said = what(e, pipelines)
        room = total - (2 + 5 + 2 + ids + 1 + names + 2)
        if e.get("undone"):
            said += " (undone)"
        line = cut(said, room) if room >= 12 else said
        echo(f"  {_time(e['at'])}  ", (f"#{e['deal_id']}".rjust(ids), "dim"),
             f" {name}{' ' * (names - width(name))}  ",
             (line, "dim" if e.get("undone") else ""))
    from pipectl.localtime import label, local, zone_name

    shown = f"{len(rows)} event{'s' if len(rows) != 1 else ''}"
    labels = {label(local(e["at"])) for e in rows}  # a DST change between: the zone's name
    zone = labels.pop() if len(labels) == 1 else zone_name()
    if not plain:
        echo()
    echo((f"{shown} from {since} to {until} (times {zone})"
          + (" (the newest; -n shows more)" if limited else ""), "dim"))
