"""Exchange rates: record one (``pipectl rate set``), withdraw one (``rate rm``), list them,
and the book of every rate that conversions (``--in``) read.

Rates are append-only, as a deal's history is: a correction is a new row for the same pair and
moment, which supersedes the old one there; a withdrawal is a row without a rate. Nothing is
fetched from a network: pipectl knows the rates the user recorded, and no others.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipectl.domain.rates import (
    Converter,
    Rate,
    RateBook,
    moment_text,
    pair_text,
    parse_rate,
    valid,
)
from pipectl.errors import NotFound, UsageError
from pipectl.services import clock
from pipectl.store import rates as store
from pipectl.store.db import snapshot, transaction
from pipectl.values import currency_code, iso


@dataclass(frozen=True)
class Recorded:
    rate: Rate
    previous: str | None  # the rate it replaced at that moment (None: none was there)
    changed: bool  # False: that very rate was already in force there; nothing was written


def arguments(source: str, target: str, rate: str | None = None) -> tuple[str, str, str | None]:
    """The pair and the rate as given, checked (UsageError): what a command checks before it
    opens the database."""
    s, t = _pair(source, target)
    return s, t, None if rate is None else parse_rate(rate)


def _pair(source: str, target: str) -> tuple[str, str]:
    s, t = currency_code(source), currency_code(target)
    if s == t:
        raise UsageError(f"a rate converts between two currencies, not {s} into itself")
    return s, t


def moment(at: str | datetime | None) -> str:
    """--at of a rate (a date means the start of that day, a time without an offset is local:
    ``localtime.zone``), which may not lie in the future (a rate is recorded once it is
    known); default: the start of today (the user's date)."""
    from pipectl.localtime import today, zone
    from pipectl.values import FUTURE_SLACK, parse_moment, utc_moment

    now = clock.now()
    if at is None:
        return iso(parse_moment(today(now).isoformat(), "--at", zone()))
    when = parse_moment(at, zone=zone()) if isinstance(at, str) else utc_moment(at)
    if when > now + FUTURE_SLACK:
        shown = at if isinstance(at, str) else iso(at)
        raise UsageError(f"--at {shown!r} ({iso(when)}) is in the future",
                         hint="record a rate once it is known; until then figures convert at "
                         "the latest rate recorded")
    return iso(when)


def record(conn: sqlite3.Connection, source: str, target: str, rate: str,
           at: str | datetime | None = None) -> Recorded:
    """One unit of ``source`` is worth ``rate`` units of ``target`` from ``at`` on (default:
    today). Another rate already recorded for that pair and moment is superseded (kept);
    the same rate again changes nothing."""
    s, t = _pair(source, target)
    text = parse_rate(rate)
    when = moment(at)
    with transaction(conn):
        recorded_at = iso(clock.now())
        before = store.latest(conn, s, t, when)
        previous = before.rate if before is not None else None
        if previous is not None and previous == text:
            return Recorded(before, previous, changed=False)  # type: ignore[arg-type]
        row = Rate(source=s, target=t, at=when, rate=text, recorded_at=recorded_at)
        new_id = store.record(conn, row)
    return Recorded(Rate(s, t, when, text, recorded_at, new_id), previous, changed=True)


def remove(conn: sqlite3.Connection, source: str, target: str,
           at: str | datetime) -> Recorded:
    """Withdraw the rate of this pair in force from exactly ``at``: as if it had never been
    recorded (the row stays, superseded by a withdrawal)."""
    s, t = _pair(source, target)
    when = moment(at)
    with transaction(conn):
        before = store.latest(conn, s, t, when)
        if before is None or before.rate is None:
            pair = pair_text(s, t)
            raise NotFound(f"no {pair} rate is recorded at {moment_text(when)}",
                           hint="pipectl rate list shows each rate with its moment")
        row = Rate(source=s, target=t, at=when, rate=None, recorded_at=iso(clock.now()))
        new_id = store.record(conn, row)
    return Recorded(Rate(s, t, when, None, row.recorded_at, new_id), before.rate, changed=True)


@dataclass(frozen=True)
class Listed:
    rate: Rate
    # "current" (the rate of its pair and moment), "corrected" (a later row at that moment
    # replaced it), "withdrawn" (a later row withdrew that moment's rate), "withdrawal", or
    # "invalid" (written around pipectl; db check names it; conversions leave it out)
    state: str
    until: str | None  # current rates: the moment the pair's next rate takes over


def listing(conn: sqlite3.Connection, every: bool = False) -> list[Listed]:
    """The current rates, by pair and moment; ``every``: each row ever recorded, with its
    state (corrected and withdrawn rows, and withdrawals, too)."""
    with snapshot(conn):
        rows = store.all_rates(conn)
    latest: dict[tuple[str, str, str], Rate] = {}
    for r in rows:  # oldest recorded first: the last one seen is the latest
        if valid(r):
            latest[(r.source, r.target, r.at)] = r
    current: dict[tuple[str, str], list[str]] = {}
    for (s, t, at), r in sorted(latest.items()):
        if r.rate is not None:
            current.setdefault((s, t), []).append(at)
    out = []
    for r in sorted(rows, key=lambda r: (r.source, r.target, r.at, r.recorded_at, r.id)):
        last = latest.get((r.source, r.target, r.at))
        if last is None or not valid(r):
            state = "invalid"
        elif last is r:
            state = "withdrawal" if r.rate is None else "current"
        else:
            state = "withdrawn" if last.rate is None else "corrected"
        if not every and state != "current":
            continue
        later = [m for m in current.get((r.source, r.target), []) if m > r.at]
        out.append(Listed(r, state, later[0] if later and state == "current" else None))
    return out


def book(conn: sqlite3.Connection) -> RateBook:
    """Every rate recorded, for conversions (inside the caller's read, or one of its own)."""
    if conn.in_transaction:
        return RateBook(store.all_rates(conn))
    with snapshot(conn):
        return RateBook(store.all_rates(conn))


# ---------------------------------------------------------------- figures converted (--in)


def convert_report(conn: sqlite3.Connection, report: Any, into: str) -> tuple[Any, Converter]:
    """``pipectl report``'s figures (``reports.summary.Report``) in ``into``, at the rates in
    force at its as-of moment (``reports.convert.report``)."""
    from pipectl.reports import convert

    conv = book(conn).converter(into, report.as_of)
    return convert.report(report, conv), conv


def convert_breakdown(conn: sqlite3.Connection, grouped: Any, into: str
                      ) -> tuple[Any, Converter]:
    """``report --by``'s rows in ``into``, at the rates in force at its as-of moment."""
    from pipectl.reports import convert

    conv = book(conn).converter(into, grouped.as_of)
    return convert.breakdown(grouped, conv), conv


def convert_forecast(conn: sqlite3.Connection, result: Any, into: str, as_of: str
                     ) -> tuple[Any, list[Converter], Converter]:
    """``pipectl forecast``'s periods in ``into``, each at the rates in force when its
    forecast was read, and its deals without a close date at the as-of moment's
    (``reports.convert.forecast``); ``result`` is ``services.reports.Forecast``, changed in
    place and returned with each period's converter and the as-of one."""
    from pipectl.reports import convert

    periods, undated, convs, now = convert.forecast(result.periods, result.no_close_date,
                                                    book(conn), into, as_of)
    result.periods, result.no_close_date = periods, undated
    return result, convs, now
