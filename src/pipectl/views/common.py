"""Shared output helpers: JSON printing, money cells, the Rich console of the progress bar.

Tables and styled lines are written by ``pipectl.views.table`` (no Rich).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pipectl.values import format_money

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A Rich console bound to the current stdout or stderr (CliRunner swaps them per test).

    Only the import progress bar (views/transfer.py) still draws with Rich. Markup and emoji
    codes are off: its label holds a file name, users' text that must print as typed.
    """
    from rich.console import Console

    return Console(
        file=sys.stderr if stderr else sys.stdout, highlight=False, markup=False, emoji=False
    )


def count(n: int, noun: str) -> str:
    """'1 deal', '2 deals' (nouns whose plural takes an s)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def note(text: str) -> None:
    """A one-line remark on stderr, beside a command's output (which it never changes)."""
    sys.stderr.write(f"note: {text}\n")


def print_json(data: Any) -> None:
    import json  # here, not at the top: table commands do not pay for it

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _json_items(out: Any, items: Iterable[Any], indent: str) -> int:
    """Write ``items`` as the elements of a JSON array (``indent``: the array's own), exactly
    as ``json.dumps(list(items), indent=2)`` lays them out there; returns how many."""
    import json

    n = 0
    for item in items:
        body = json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n  " + indent)
        out.write(("[\n  " if n == 0 else ",\n  ") + indent + body)
        n += 1
    out.write("[]" if n == 0 else "\n" + indent + "]")
    return n


def print_json_list(items: Iterable[Any]) -> None:
    """A JSON array written item by item, exactly as ``print_json(list(items))`` would be."""
    _json_items(sys.stdout, items, "")
    sys.stdout.write("\n")


def print_json_ending_with_list(head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """A JSON object: the keys of ``head``, then ``key`` holding an array written item by
    item: exactly what ``print_json({**head, key: list(items)})`` would print, in flat
    memory."""
    import json

    out = sys.stdout
    start = json.dumps(head, ensure_ascii=False, indent=2)
    out.write((start[:-2] + ",\n  " if head else "{\n  ") + json.dumps(key, ensure_ascii=False)
              + ": ")
    _json_items(out, items, "  ")
    out.write("\n}\n")


def print_json_with_list(key: str, items: Iterable[Any], tail: Callable[[int], dict]) -> None:
    """A JSON object whose first key, ``key``, holds an array written item by item, followed
    by the keys of ``tail(n)`` (``n``: how many items there were): exactly what
    ``print_json({key: list(items), **tail(n)})`` would print, in flat memory."""
    import json

    out = sys.stdout
    out.write("{\n  " + json.dumps(key, ensure_ascii=False) + ": ")
    n = _json_items(out, items, "  ")
    rest = json.dumps(tail(n), ensure_ascii=False, indent=2)
    out.write(",\n" + rest[2:] + "\n" if rest != "{}" else "\n}\n")


def money(minor: int | None, currency: str) -> str | None:
    """Exact decimal string for JSON, or None."""
    return None if minor is None else format_money(minor, currency)


def money_cell(minor: int | None, currency: str) -> str:
    """Human form with thousands separators: '12,000.50 EUR'; '-' when unknown."""
    if minor is None:
        return "-"
    whole, _, frac = format_money(minor, currency).partition(".")
    grouped = f"{int(whole):,}"
    return f"{grouped}.{frac} {currency}" if frac else f"{grouped} {currency}"


def totals_cell(totals: dict[str, int]) -> str:
    """Several currencies, never added together: '12,000.00 EUR + 3,000.00 USD'."""
    if not totals:
        return "-"
    return " + ".join(money_cell(v, c) for c, v in sorted(totals.items()))
