"""`pipectl forecast`: per period, the open deals expected to close in it, and for periods that
are over, what was actually won in them and which forecast deals slipped.

"The forecast for a period is the pipeline as it stood when the period began" (domain.md): the
forecast of a period that has begun is read from the snapshot just before its first moment
(every event strictly before ``start``); a period still in the future is forecast from the
pipeline as of the as-of moment. A deal is in a period's forecast when it was open in that
snapshot and its expected close date (as of then) lies in the period. Its weight is its own
probability as of then, else its stage's in its pipeline's definition in force then.

Two blind spots are shown beside the periods: the deals open at the as-of moment with no
expected close date (in no period's forecast), and, for the current period, the deals *added*
to it since it began (open at the as-of moment, expected to close in it, and not in its
forecast: their close date moved into it, they got one, they are new, or they were reopened).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pipectl.reports import snapshot
from pipectl.reports.money import Money
from pipectl.reports.periods import Window, midnight
from pipectl.values import iso, weighted_minor


@dataclass(frozen=True, slots=True)
class Slipped:
    id: int
    name: str
    owner: str | None
    value_minor: int | None
    currency: str
    close_date_then: str | None  # expected close when the period began
    status_after: str  # open or lost at the end of the period
    close_date_after: str | None  # expected close at the end of the period


@dataclass(frozen=True, slots=True)
class Added:
    id: int
    name: str
    owner: str | None
    value_minor: int | None
    currency: str
    close_date: str  # expected close at the as-of moment (in the period)
    close_date_then: str | None  # expected close when the period began
    was: str  # moved, undated, new, closed or other_pipeline: what it was when the period began


@dataclass(slots=True)
class PeriodForecast:
    period: Window
    state: str  # over, current or future
    forecast_as_of: str  # the snapshot the forecast was read from
    forecast: Money
    forecast_ids: list[int]
    won: Money | None = None  # all deals won in the period (over or current), forecast or not
    won_forecast: Money | None = None  # of which were in the forecast
    won_ids: list[int] = field(default_factory=list)
    slipped: list[Slipped] | None = None  # forecast deals not won in the period (over only)
    added: Money | None = None  # open now, expected in the period, not forecast (current only)
    added_deals: list[Added] | None = None


@dataclass(slots=True)
class Forecast:
    periods: list[PeriodForecast]
    no_close_date: Money  # deals open at the as-of moment without an expected close date
    no_close_date_ids: list[int]


def _before(day) -> str:
    return iso(midnight(day) - timedelta(seconds=1))


def build(
    conn: sqlite3.Connection, as_of: str, periods: list[Window], owner: str | None = None,
    pipeline: str | None = None,
) -> list[PeriodForecast]:
    """The periods of ``build_all``."""
    return build_all(conn, as_of, periods, owner, pipeline).periods


# (conn, moment -> definitions in force, owner, since) -> moment -> snapshot table
Snapshots = Callable[[sqlite3.Connection, dict[str, dict], str | None, str], dict[str, str]]


def _one_pass(conn: sqlite3.Connection, in_force: dict[str, dict], owner: str | None,
              since: str) -> dict[str, str]:
    """moment -> its snapshot table, every one built from one pass over the history; only
    the deals the figures can select (open in a snapshot, or won since ``since``). Without
    names: the few deals listed (slipped, added) take theirs from ``deals`` (at 1M deals,
    copying 430k names into the tables cost ~0.5 s)."""
    return snapshot.build_many(conn, in_force, owner, open_or_won_since=since)


def build_all(
    conn: sqlite3.Connection, as_of: str, periods: list[Window], owner: str | None = None,
    pipeline: str | None = None, snapshots: Snapshots = _one_pass,
) -> Forecast:
    """``pipeline``: only the deals in the pipeline of that name: in it when the period began
    (forecast) or when they were won (actual). A forecast deal that moved into another
    pipeline and was won there in the period did not slip. ``snapshots`` builds the tables
    (tests give it one full ``snapshot.build`` per moment, to prove the one pass equal)."""
    from pipectl.store import pipelines as store

    only = None if pipeline is None else store.by_name(conn, pipeline, as_of).id
    # Every snapshot the periods read (before each begun period, at the end of each one over,
    # and at the as-of moment), built together from one pass over the history.
    moments = {as_of}
    for period in periods:
        start, end = period.start_iso(), period.end_iso()
        if start <= as_of:
            moments.add(_before(period.start))
            if end <= as_of:
                moments.add(_before(period.end))
    in_force = {moment: store.all_in_force(conn, moment) for moment in sorted(moments)}
    # the figures select only deals open in a snapshot or won in a period that has begun
    since = min((p.start_iso() for p in periods if p.start_iso() <= as_of), default=as_of)
    tables = snapshots(conn, in_force, owner, since)

    def snap(moment: str) -> tuple[str, dict]:
        """The snapshot at ``moment`` and the pipelines' definitions in force then."""
        defs = in_force[moment]
        return tables[moment], {only: defs[only]} if only is not None else defs

    mine = "" if only is None else " AND pipeline_id = :pid"
    out: list[PeriodForecast] = []
    try:
        for period in periods:
            start, end = period.start_iso(), period.end_iso()
            if end <= as_of:
                state = "over"
            elif start <= as_of:
                state = "current"
            else:
                state = "future"
            moment = _before(period.start) if state != "future" else as_of
            t, defs = snap(moment)
            params = {"ps": period.start.isoformat(), "pe": period.end.isoformat(), "pid": only}
            in_forecast = "status = 'open' AND close_date >= :ps AND close_date < :pe" + mine
            fc, fc_ids = _money(conn, t, in_forecast, params, defs)
            item = PeriodForecast(period, state, moment, fc, fc_ids)
            if state != "future":
                end_moment = _before(period.end) if state == "over" else as_of
                e, _ = snap(end_moment)
                won_any = "status = 'won' AND won_at >= :s AND won_at < :e"
                won_in = won_any + mine
                p2 = {"s": start, "e": end, "pid": only}
                item.won, item.won_ids = _money(conn, e, won_in, p2, weighted=False)
                item.won_forecast, _ = _money(
                    conn, e, f"{won_in} AND id IN (SELECT id FROM {t} WHERE {in_forecast})",
                    {**p2, **params}, weighted=False,
                )
                if state == "over":
                    item.slipped = _slipped(conn, t, e, in_forecast, won_any, {**p2, **params})
                else:
                    item.added, item.added_deals = _added(conn, t, e, in_forecast, mine, params,
                                                          snap(as_of)[1])
            out.append(item)
        now, defs = snap(as_of)
        undated, undated_ids = _money(
            conn, now, "status = 'open' AND close_date IS NULL" + mine, {"pid": only}, defs)
    finally:
        for table in tables.values():
            snapshot.drop(conn, table)
    return Forecast(out, undated, undated_ids)


def _money(
    conn: sqlite3.Connection, t: str, where: str, params: dict, defs: dict | None = None,
    weighted: bool = True,
) -> tuple[Money, list[int]]:
    """Count, value and (with ``defs``, the definitions of the snapshot's moment) weighted
    value of the deals of ``t`` that match ``where``, per currency, and their ids in order.
    One pass over the table reads the few matching deals; Python adds them up, exactly (its
    integers do not overflow)."""
    weighted = weighted and defs is not None
    prob = "NULL"
    if defs is not None and weighted:
        default = snapshot.stage_case(defs, "probability", "stage", "pipeline_id")
        prob = f"coalesce(probability, {default})"
    count: dict[str, int] = {}
    value: dict[str, int | None] = {}
    raw: dict[str, int] = {}
    ids = []
    m = Money()
    for id_, cur, v, p in conn.execute(
            f"SELECT id, currency, value_minor, {prob} FROM {t} WHERE {where}", params):
        ids.append(id_)
        count[cur] = count.get(cur, 0) + 1
        if v is None:
            m.without_value += 1
            value.setdefault(cur, None)
            continue
        value[cur] = (value.get(cur) or 0) + v
        if p is not None:
            raw[cur] = raw.get(cur, 0) + v * p
    for cur in sorted(count):
        m.count += count[cur]
        if value[cur] is not None:
            m.value[cur] = value[cur]  # type: ignore[assignment]
            if weighted:
                m.weighted[cur] = weighted_minor(raw.get(cur, 0))
                m.exact[cur] = raw.get(cur, 0)
    ids.sort()
    return m, ids


def _slipped(
    conn: sqlite3.Connection, t: str, e: str, in_forecast: str, won_in: str, params: dict
) -> list[Slipped]:
    rows = conn.execute(
        f"""SELECT f.id, d.name, d.owner, f.value_minor, f.currency, f.close_date,
                   e.status, e.close_date
            FROM {t} f JOIN {e} e ON e.id = f.id JOIN deals d ON d.id = f.id
            WHERE f.{in_forecast.replace(' AND ', ' AND f.')}
              AND NOT (e.{won_in.replace(' AND ', ' AND e.')})
            ORDER BY f.currency, f.value_minor IS NULL, f.value_minor DESC, f.id""",
        params,
    )
    return [Slipped(*r) for r in rows]


def _added(
    conn: sqlite3.Connection, t: str, e: str, in_forecast: str, mine: str, params: dict,
    defs: dict,
) -> tuple[Money, list[Added]]:
    """The deals of the as-of snapshot ``e`` open and expected to close in the period that
    were not in its forecast (snapshot ``t``, when it began): count, value and weighted value
    (``defs``: the definitions in force at the as-of moment), and each with what it was then,
    by currency, largest value first (amounts in different currencies are never ranked
    against each other)."""
    def where(a: str) -> str:
        return (f"{a}status = 'open' AND {a}close_date >= :ps AND {a}close_date < :pe"
                + ("" if not mine else f" AND {a}pipeline_id = :pid")
                + f" AND {a}id NOT IN (SELECT id FROM {t} WHERE {in_forecast})")

    money, _ = _money(conn, e, where(""), params, defs)
    rows = conn.execute(
        f"""SELECT n.id, d.name, d.owner, n.value_minor, n.currency, n.close_date, f.close_date,
                   CASE WHEN f.id IS NULL THEN 'new'
                        WHEN f.status <> 'open' THEN 'closed'
                        WHEN :pid IS NOT NULL AND f.pipeline_id <> :pid THEN 'other_pipeline'
                        WHEN f.close_date IS NULL THEN 'undated'
                        ELSE 'moved' END
            FROM {e} n JOIN deals d ON d.id = n.id LEFT JOIN {t} f ON f.id = n.id
            WHERE {where("n.")}
            ORDER BY n.currency, n.value_minor IS NULL, n.value_minor DESC, n.id""",
        params,
    )
    return money, [Added(*r) for r in rows]
