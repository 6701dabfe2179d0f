"""Daily commands: add, list, show, advance, qualify, lose, reopen, edit, note, rm."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer

from pipectl.cli.common import (
    AT_HELP,
    IN_HELP,
    JSON_HELP,
    OWNER_HELP,
    at_arg,
    connect,
    connect_for_owner,
    in_arg,
    positive_limit,
)
from pipectl.errors import UsageError


def _text(value: str | None, field: str, required: bool = False) -> str | None:
    from pipectl.values import clean_text, optional_text

    if required:
        return clean_text(value or "", field, required=True)
    return optional_text(value, field)


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()  # (None: started with stdin closed)


def _done(message: str) -> None:
    typer.echo(message)


def _told(told: list[tuple[str, str]]) -> None:
    """What a write's service said beside its result (a "did you mean", a duplicate), one
    line each on stderr: ``note: ...``, ``warning: ...``."""
    for kind, text in told:
        typer.echo(f"{kind}: {text}", err=True)


def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deal's name, e.g. the prospect or opportunity.")],
    company: Annotated[
        str | None, typer.Option("--company", "-c", help="The prospect's company.")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="The person you deal with.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="The contact's email.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The contact's phone.")] = None,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            "-v",
            help="Expected value, e.g. 12000.50 or 1,234.50 (the decimals follow a point; "
            "1.500 or 1,500, which readers differ on, is refused: write 1.50 or 1500).",
        ),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option("--currency", envvar="PIPECTL_CURRENCY", help="ISO 4217 code. Default: USD."),
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", "-o", help="The salesperson who owns it.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Where the lead came from.")
    ] = None,
    close: Annotated[
        str | None, typer.Option("--close", help="Expected close date, YYYY-MM-DD.")
    ] = None,
    probability: Annotated[
        int | None,
        typer.Option(
            "--probability", "-p", help="Its own win probability in percent (else the stage's)."
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option("--stage", "-s", help="Start stage. Default: the pipeline's first stage."),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            envvar="PIPECTL_PIPELINE",
            help="The pipeline it goes into. Default: the default pipeline.",
        ),
    ] = None,
    prequalified: Annotated[
        str | None,
        typer.Option(
            "--prequalified",
            metavar="REASON",
            help="Mark it pre-qualified (needed to start in meeting or later).",
        ),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", "-n", help="A first note.")] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the new deal's id.")
    ] = False,
) -> None:
    """Log a prospect as a new deal and print its id.

    Examples:

      pipectl add "Acme renewal" --company Acme --value 12000 --currency EUR --close 2026-12-15

      pipectl add "Nguyễn Văn An" --stage meeting --prequalified "referred by a customer"
    """
    from pipectl.models import NewDeal
    from pipectl.services import deals
    from pipectl.values import (
        DEFAULT_CURRENCY,
        currency_code,
        parse_date,
        parse_probability,
        parse_typed_money,
    )

    cur = currency_code(currency) if currency is not None else DEFAULT_CURRENCY
    new = NewDeal(
        name=_text(name, "name", required=True) or "",
        stage=stage,
        pipeline=_text(pipeline, "--pipeline"),
        currency=cur,
        value_minor=parse_typed_money(value, cur) if value is not None else None,
        company=_text(company, "company"),
        contact=_text(contact, "contact"),
        email=_text(email, "email"),
        phone=_text(phone, "phone"),
        owner=_text(owner, "owner"),
        source=_text(source, "source"),
        close_date=parse_date(close, "--close") if close else None,
        probability=parse_probability(probability) if probability is not None else None,
        prequalified=_text(prequalified, "--prequalified"),
        note=_text(note, "note"),
    )
    if prequalified is not None and not new.prequalified:
        raise UsageError("--prequalified needs a reason")
    at_ = at_arg(at)
    conn = connect(ctx)
    told: list[tuple[str, str]] = []
    deal_id, the_pipeline, first = deals.add(conn, new, at_, told=told)
    if as_json:
        from pipectl.views.common import print_json
        from pipectl.views.deals import deal_json

        row, _, in_pipeline = deals.get(conn, deal_id)
        print_json(deal_json(row, in_pipeline))
    elif quiet:
        typer.echo(deal_id)
    else:
        where = f" in {the_pipeline.name}" if new.pipeline else ""
        _done(f"Added deal {deal_id}: {new.name} ({first}){where}")
    _told(told)


def list_(
    ctx: typer.Context,
    stage: Annotated[
        str | None, typer.Option("--stage", "-s", help="Only deals in this stage.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="open, won, lost, closed (won or lost) or all. Default: open; with --closed: "
            "closed.",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", "-o", help=OWNER_HELP)
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search", "-q",
            help="Text in name, company, contact, email, owner, source, ref or notes, accents "
            "and case aside: --search lodz finds Łódź.",
        ),
    ] = None,
    closed: Annotated[
        str | None,
        typer.Option(
            "--closed",
            metavar="FROM..TO",
            help="Only deals won or lost in [FROM, TO) (UTC dates, TO excluded; either end "
            "may be left out), e.g. 2026-10-01..2027-01-01 or 2026-10-01.. ; lists won and "
            "lost deals unless --status says which.",
        ),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option(
            "--created",
            metavar="FROM..TO",
            help="Only deals created in [FROM, TO) (UTC dates, TO excluded; either end may be "
            "left out), e.g. ..2026-07-01.",
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="stage, value, close, age or updated. By value, amounts are compared within "
            "a currency (grouped by currency), or converted with --in, e.g. --sort value "
            "--in EUR.",
        ),
    ] = "stage",
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many deals (0: all).")
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            envvar="PIPECTL_PIPELINE",
            help="Only this pipeline's deals. Default: every pipeline (--stage: the default one).",
        ),
    ] = None,
    into: Annotated[str | None, typer.Option("--in", metavar="CURRENCY", help=IN_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    totals: Annotated[
        bool,
        typer.Option(
            "--totals",
            help="With --json: an object {deals, total, shown, totals} (the deals, how many "
            "match, how many are shown, count and value per currency) instead of the bare "
            "array of deals, e.g. pipectl list --status won --closed 2026-10-01.. --json "
            "--totals. The table always ends with the totals.",
        ),
    ] = False,
) -> None:
    """List deals (open ones by default) as a table, with their totals per currency.

    The Close column shows when a won or lost deal closed, and an open deal's expected close
    date. The last lines count the deals that match ("3 of 21 deals" when --limit cut the
    list) and total their value per currency, over all of them. --in adds a column of values
    converted at the rates in force now, and their total (a currency with no rate stays as it
    is); with --json each deal gets "value_in".

    Examples:

      pipectl list --stage proposal --owner "Anna Kowalska"

      pipectl list --status all --search nguyen --sort value --limit 20

      pipectl list --status won --closed 2026-10-01..2027-01-01

      pipectl list --created 2026-11-01.. --json --totals

      pipectl list --sort value --in EUR
    """
    from pipectl.services import reports
    from pipectl.values import clean_text

    closed_in = reports.date_range(closed, "--closed") if closed is not None else None
    created_in = reports.date_range(created, "--created") if created is not None else None
    status = reports.listing_status(status, sort, closed_in is not None)
    from pipectl.views import deals as view

    search = clean_text(search, "--search") if search is not None else None
    target = in_arg(into)
    conn, owner = connect_for_owner(ctx, owner)
    with reports.deals(
        conn,
        pipeline=(_text(pipeline, "--pipeline") or "") if pipeline is not None else None,
        stage=stage,
        status=status,
        owner=owner,
        search=search,
        sort=sort,
        limit=positive_limit(limit) or None,
        columns=None if as_json else view.TABLE_COLUMNS,
        closed=closed_in,
        created=created_in,
        with_totals=totals or not as_json,
        into=target,
    ) as found:
        known = found.pipelines
        conv = found.converter
        if as_json and totals:
            view.list_json(found.rows, known, found.totals or [], conv)
        elif as_json:
            from pipectl.views.common import print_json_list

            if conv is None:
                print_json_list(view.deal_json(r, known[r["pipeline_id"]]) for r in found.rows)
            else:
                from pipectl.views.rates import deal_json_in

                print_json_list(deal_json_in(r, known[r["pipeline_id"]], conv)
                                for r in found.rows)
        else:
            said = [f"{what} {r.label}" for what, r in (("closed", closed_in),
                                                          ("created", created_in)) if r]
            view.deal_table(found.rows, known, totals=found.totals, filters=said,
                            converter=conv)


def show(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    all_events: Annotated[
        bool,
        typer.Option("--all", "-a", help="Every event of the timeline, not only the last 10, "
                     "e.g. pipectl show 12 --all (--json always has them all)."),
    ] = False,
) -> None:
    """Show a deal, its qualification checklist and the timeline of its events.

    The timeline lists the last 10 events and counts the earlier ones; --all lists them all.

    Examples:

      pipectl show 12

      pipectl show 12 --all
    """
    from pipectl.services import deals

    conn = connect(ctx)
    row, events, pipeline = deals.get(conn, deal_id)
    if as_json:
        from pipectl.views.common import print_json
        from pipectl.views.deals import deal_json, event_json

        print_json({**deal_json(row, pipeline), "events": [event_json(e) for e in events]})
    else:
        from pipectl.views.deals import show as render

        render(row, events, pipeline, all_events=all_events)


def advance(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    to: Annotated[
        str | None, typer.Option("--to", "-t", help="Target stage (a skip or a move back).")
    ] = None,
    prequalified: Annotated[
        str | None,
        typer.Option(
            "--prequalified",
            metavar="REASON",
            help="Skip qualification: why the deal is already qualified.",
        ),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", "-n", help="A note kept with the move.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Move a deal one stage forward, or to --to STAGE where the rules allow.

    Leaving qualification needs the checklist (pipectl qualify); a pre-qualified deal may go from
    prospecting to meeting; proposal may go straight to won; moving back is allowed.

    Examples:

      pipectl advance 12

      pipectl advance 12 --to won

      pipectl advance 7 --to meeting --prequalified "long-time contact, budget confirmed"

      pipectl advance 12 --to meeting --note "they reopened the price"
    """
    from pipectl.services import deals

    reason = _text(prequalified, "--prequalified")
    when = at_arg(at)
    conn = connect(ctx)
    move = deals.advance(conn, deal_id, to, reason, _text(note, "note"), when).move
    what = {"back": "moved back", "skip": "skipped ahead"}.get(move.direction.value, "advanced")
    _done(f"Deal {deal_id} {what}: {move.from_stage} -> {move.to_stage}")


def qualify(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    met: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[CRITERION]...",
            show_default=False,
            help="Criteria of the deal's pipeline that are met.",
        ),
    ] = None,
    unmet: Annotated[
        list[str] | None,
        typer.Option(
            "--not", metavar="CRITERION", help="A criterion checked and not met (repeatable)."
        ),
    ] = None,
    location: Annotated[
        bool | None, typer.Option("--location/--no-location", help="Somewhere we sell to.")
    ] = None,
    budget: Annotated[
        bool | None, typer.Option("--budget/--no-budget", help="They can pay for it.")
    ] = None,
    authority: Annotated[
        bool | None,
        typer.Option("--authority/--no-authority", help="We talk to someone who decides."),
    ] = None,
    need: Annotated[
        bool | None, typer.Option("--need/--no-need", help="Our product fits a real need.")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", "-n", help="A note kept with the change.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Record the qualification checklist of a deal's pipeline.

    Name the criteria that are met; --not CRITERION records one checked and not met. The
    default pipeline's criteria (location, budget, authority, need) also have flags of their
    own.

    Examples:

      pipectl qualify 12 location budget

      pipectl qualify 12 authority need --note "CFO signs; pain is manual invoicing"

      pipectl qualify 12 --budget --no-authority
    """
    from pipectl.services import deals

    changes: dict[str, bool] = {}
    for given, value in [*((m, True) for m in met or []), *((u, False) for u in unmet or [])]:
        name = (_text(given, "criterion", required=True) or "").casefold()
        if changes.get(name, value) is not value:
            raise UsageError(f"{name} is given as met and as not met")
        changes[name] = value
    flags = {"location": location, "budget": budget, "authority": authority, "need": need}
    for name, value in flags.items():
        if value is not None:
            if changes.get(name, value) is not value:
                raise UsageError(f"{name} is given as met and as not met")
            changes[name] = value
    if not changes and note is None:
        raise UsageError(
            "nothing to record",
            hint="name the criteria that are met, or --not CRITERION (pipectl show ID lists them)",
        )
    when = at_arg(at)
    conn = connect(ctx)
    done = deals.qualify(conn, deal_id, changes, _text(note, "note"), when)
    marks = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in done.changed.items()) or "no change"
    line = f"Deal {deal_id} checklist: {marks}."
    if done.checklist.passes():
        line += f" It passes: pipectl advance {deal_id}"
    else:
        line += f" Missing: {', '.join(done.checklist.missing())}"
    _done(line)


def lose(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it was lost (required).")],
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Close an open deal as lost, with a reason.

    Example:

      pipectl lose 12 --reason "chose a competitor on price"
    """
    from pipectl.services import deals

    text = _text(reason, "--reason", required=True) or ""
    when = at_arg(at)
    conn = connect(ctx)
    told: list[tuple[str, str]] = []
    move = deals.lose(conn, deal_id, text, when, told=told).move
    _done(f"Deal {deal_id} lost at {move.from_stage}: {text}")
    _told(told)


def reopen(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage",
            "-s",
            help="Where to reopen it, only when its pipeline no longer has the stage it was "
            "lost at.",
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Reopen a lost deal in the stage it was lost at.

    Examples:

      pipectl reopen 12

      pipectl reopen 12 --stage proposal   # its pipeline dropped the stage it was lost at
    """
    from pipectl.services import deals

    when = at_arg(at)
    conn = connect(ctx)
    move = deals.reopen(conn, deal_id, when, stage).move
    _done(f"Deal {deal_id} reopened in {move.to_stage}")


def edit(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    company: Annotated[
        str | None, typer.Option("--company", help="New company ('' clears).")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="New contact ('' clears).")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="New email ('' clears).")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="New phone ('' clears).")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="New owner ('' clears).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="New source ('' clears).")] = None,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="New value ('' clears), e.g. 15000 or 1,234.50 (1.500 or 1,500 is refused as "
            "ambiguous).",
        ),
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="New currency (with --value).")
    ] = None,
    close: Annotated[
        str | None, typer.Option("--close", help="New expected close date ('' clears).")
    ] = None,
    probability: Annotated[
        str | None,
        typer.Option(
            "--probability", help="Own win probability in percent ('' returns to the stage's)."
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Change a deal's details. Value, close-date and probability changes are kept as events.

    Examples:

      pipectl edit 12 --value 15000 --close 2026-12-31

      pipectl edit 12 --owner "Łukasz" --probability 70
    """
    from pipectl.models import DealEdit
    from pipectl.services import deals, reports
    from pipectl.values import currency_code, parse_date, parse_probability, parse_typed_money

    texts = {}
    for field, given in (
        ("name", name),
        ("company", company),
        ("contact", contact),
        ("email", email),
        ("phone", phone),
        ("owner", owner),
        ("source", source),
    ):
        if given is not None:
            texts[field] = _text(given, field, required=field == "name")
    when = at_arg(at)
    conn = connect(ctx)
    row = reports.deal(conn, deal_id)
    cur = currency_code(currency) if currency is not None else None
    if cur and cur != row["currency"] and value is None and row["value_minor"] is not None:
        raise UsageError("changing the currency needs the value in it too", hint="add --value")
    change = DealEdit(
        texts=texts,
        value_minor=parse_typed_money(value, cur or row["currency"])
        if value and value.strip() else None,
        currency=cur,
        clear_value=value is not None and not value.strip(),
        close_date=parse_date(close, "--close") if close and close.strip() else None,
        clear_close=close is not None and not close.strip(),
        probability=(
            parse_probability(probability) if probability and probability.strip() else None
        ),
        clear_probability=probability is not None and not probability.strip(),
    )
    if change.is_empty():
        raise UsageError("nothing to change", hint="see pipectl edit --help")
    told: list[tuple[str, str]] = []
    changed = deals.edit(conn, deal_id, change, when, told=told)
    said = [_FIELD_WORDS.get(f, f) for f in changed]
    _done(f"Deal {deal_id}: " + (f"changed {', '.join(said)}" if said else "no change"))
    _told(told)


_FIELD_WORDS = {"value_minor": "value", "close_date": "expected close"}  # as the user says them


NOTE_HELP = ('What happened: a call, a meeting, an email; "-" reads it from standard input '
             "(newlines kept), e.g. from a file or an editor.")
NEXT_HELP = 'The next step to take; --next "" clears the logged step.'
DUE_HELP = ("When the next step is due: YYYY-MM-DD, today, tomorrow, a weekday (friday, fri: "
            "the next one), +3d, 2w, 1m; counted from the note's day, never before it.")


def _note_text(text: str, field: str = "note") -> str:
    """The note's text: as given, or, for "-", standard input (newlines kept)."""
    if text != "-":
        return _text(text, field, required=True) or ""
    from pipectl.values import clean_text

    if _interactive():
        typer.echo("Type the note; end it with Ctrl-D on a line of its own.", err=True)
    read = _stdin_text(field).replace("\r\n", "\n").replace("\r", "\n")
    if not read.strip():
        raise UsageError(f"{field}: standard input is empty", hint="pipectl note 12 - < call.txt")
    return clean_text(read, field, required=True, multiline=True)


def _stdin_text(field: str) -> str:
    """Standard input as UTF-8 text (a leading byte-order mark, as Windows editors write,
    dropped); other bytes are refused by name, not taken for text."""
    if sys.stdin is None:  # started with standard input closed (<&-)
        raise UsageError(f"{field}: there is no standard input to read",
                         hint="pipectl note 12 - < call.txt")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream only (no bytes under it)
        return sys.stdin.read().removeprefix("\ufeff")
    raw = stream.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{field}: standard input is not UTF-8 text (byte {e.start + 1} of "
                         f"{len(raw)})", hint="convert it first, e.g. iconv -f latin1 -t utf-8"
                         ) from None


def _due_arg(due: str | None, when: datetime | None) -> str | None:
    """--due as an ISO date, its relative forms counted from the note's day (--at, or today)."""
    if due is None:
        return None
    from pipectl.domain.days import parse_due
    from pipectl.services import clock

    return parse_due(due, clock.day(when)).isoformat()


def _step_said(action: str | None, due: str | None) -> str:
    return (f"; next: {action}" if action else "") + (f" (due {due})" if due else "")


def note(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help=NOTE_HELP)],
    next_action: Annotated[str | None, typer.Option("--next", help=NEXT_HELP)] = None,
    due: Annotated[str | None, typer.Option("--due", help=DUE_HELP)] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Log an activity on a deal, optionally with the next step and its due date.

    --due alone moves the due date of the step logged already; --next "" clears the step
    (pipectl done marks it done). A due date before the note's day is refused.

    Example:

      pipectl note 12 "Call with their CFO" --next "send revised quote" --due friday

      pipectl note 12 - < meeting-notes.txt
    """
    from pipectl.services import deals

    clear = next_action is not None and not next_action.strip()
    action = None if clear else _text(next_action, "--next")
    when = at_arg(at)
    due_date = _due_arg(due, when)
    if clear and due_date:
        raise UsageError('--next "" clears the next step: it takes no --due')
    body = _note_text(text)
    conn = connect(ctx)
    deals.note(conn, deal_id, body, action, due_date, when, clear_next=clear)
    if clear:
        _done(f"Noted on deal {deal_id}; next step cleared")
    elif due_date and not action:
        _done(f"Noted on deal {deal_id}; next step now due {due_date}")
    else:
        _done(f"Noted on deal {deal_id}" + _step_said(action, due_date))


def done(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    text: Annotated[str | None, typer.Option(
        "--note", help='What came of it, kept with the note "done: STEP"; "-" reads standard '
        "input.")] = None,
    next_action: Annotated[str | None, typer.Option(
        "--next", help="The step after this one (else the deal has no logged step).")] = None,
    due: Annotated[str | None, typer.Option("--due", help=DUE_HELP)] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Mark the deal's next step done (the one logged with note --next).

    Records a note "done: STEP" that clears the step, or sets the next one with --next. A
    deal with no step logged is refused (what its stage calls for is done by moving it).

    Example:

      pipectl done 12 --note "quote sent, they reply Monday" --next "call back" --due mon
    """
    from pipectl.services import deals

    action = _text(next_action, "--next")
    when = at_arg(at)
    due_date = _due_arg(due, when)
    body = _note_text(text, "--note") if text is not None else None
    conn = connect(ctx)
    step, _ = deals.done(conn, deal_id, body, action, due_date, when)
    _done(f"Deal {deal_id}: done: {step}" + (_step_said(action, due_date) if action
                                              else "; no next step logged now"))


def move(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    pipeline: Annotated[
        str, typer.Option("--pipeline", help="The pipeline it moves into.", show_default=False)
    ],
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage",
            "-s",
            help="Its stage there. Default: the first stage (a won deal: the won stage).",
        ),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", "-n", help="A note kept with the move.")
    ] = None,
    prequalified: Annotated[
        str | None,
        typer.Option(
            "--prequalified",
            metavar="REASON",
            help="Why an unqualified deal may land beyond the pipeline's gate.",
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
) -> None:
    """Move a deal into another pipeline, as an event (its history stays as it happened).

    A lost deal stays lost (--stage names the open stage it died at there); a won deal lands
    on a won stage.

    Examples:

      pipectl move 12 --pipeline "Agency retainers"

      pipectl move 12 --pipeline "Agency retainers" --stage pitch --note "a retainer after all"
    """
    from pipectl.services import deals

    target = _text(pipeline, "--pipeline", required=True) or ""
    when = at_arg(at)
    conn = connect(ctx)
    done = deals.move_to(
        conn,
        deal_id,
        target,
        stage,
        _text(note, "note"),
        when,
        _text(prequalified, "--prequalified"),
    )
    _done(
        f"Deal {deal_id} moved to pipeline {done.pipeline.name}: "
        f"{done.move.from_stage} -> {done.move.to_stage}"
    )


def rm(
    ctx: typer.Context,
    deal_id: Annotated[int, typer.Argument(metavar="ID", help="The deal's id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a deal and its whole history, for good. Asks first unless --yes.

    Without a terminal to ask on, it refuses unless --yes is given.

    Example:

      pipectl rm 12 --yes
    """
    from pipectl.services import deals, reports

    conn = connect(ctx)
    row = reports.deal(conn, deal_id)
    if not yes:
        if not _interactive():
            raise UsageError("rm needs confirmation and there is no terminal", hint="add --yes")
        if not typer.confirm(f"Delete deal {deal_id} ({row['name']}) and its history?"):
            typer.echo("nothing deleted", err=True)
            raise typer.Exit(1)
    deals.remove(conn, deal_id)
    _done(f"Deleted deal {deal_id}: {row['name']}")


def register(app: typer.Typer) -> None:
    app.command()(add)
    app.command("list")(list_)
    app.command()(show)
    app.command()(advance)
    app.command()(qualify)
    app.command()(lose)
    app.command()(reopen)
    app.command()(edit)
    app.command()(note)
    app.command()(done)
    app.command()(move)
    app.command()(rm)
