"""rate set|list|rm: the exchange rates that --in converts figures with (recorded, never
fetched)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect

rate_app = typer.Typer(
    help="Exchange rates you record, for figures converted into one currency with --in.\n\n"
    "pipectl fetches no rate from anywhere: it converts only with the rates recorded here, "
    "each in force from its moment until the next rate of the same pair. Without a rate "
    "nothing is converted.\n\n"
    "Examples:\n\n  pipectl rate set USD EUR 0.92 --at 2026-11-30\n\n"
    "  pipectl rate list\n\n  pipectl report --in EUR",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FromArg = Annotated[str, typer.Argument(metavar="FROM", help="The currency converted from, "
                                        "e.g. USD.")]
ToArg = Annotated[str, typer.Argument(metavar="TO", help="The currency converted into, e.g. "
                                      "EUR.")]


def _when(at: str) -> str:
    from pipectl.localtime import shown_day_or_moment

    return shown_day_or_moment(at)


@rate_app.command("set")
def set_(
    ctx: typer.Context,
    source: FromArg,
    target: ToArg,
    rate: Annotated[str, typer.Argument(
        metavar="RATE", help="How many TO one FROM is worth, exactly as written, e.g. 0.92.")],
    at: Annotated[str | None, typer.Option(
        "--at", help="In force from this date (the start of that day) or moment, in your "
        "local time unless an offset is given, e.g. --at 2026-11-30. Default: today.")] = None,
) -> None:
    """Record that one FROM is worth RATE TO, from --at (default today) until the next rate.

    The rate is kept exactly as the decimal written (never a float). Recording another rate
    for the same pair and moment corrects it (the old one is kept, marked corrected). The
    other direction needs no rate of its own: TO -> FROM uses 1/RATE unless one is recorded.

    Examples:

      pipectl rate set USD EUR 0.92

      pipectl rate set EUR VND 27500 --at 2026-01-05
    """
    from pipectl.domain.rates import pair_text
    from pipectl.services import rates

    rates.arguments(source, target, rate)
    when = rates.moment(at)
    done = rates.record(connect(ctx), source, target, rate, when)
    r = done.rate
    pair = f"{pair_text(r.source, r.target)} {r.rate} from {_when(r.at)}"
    if not done.changed:
        typer.echo(f"Rate {pair} is already recorded; nothing changed")
    elif done.previous is not None:
        typer.echo(f"Corrected rate {pair} (was {done.previous})")
    else:
        typer.echo(f"Recorded rate {pair}")


@rate_app.command("list")
def list_(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option(
        "--all", help="Every rate ever recorded, corrected and withdrawn ones too, with its "
        "state, e.g. pipectl rate list --all.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the rates, by pair and moment: each in force from its moment until the next.

    Examples:

      pipectl rate list

      pipectl rate list --all --json
    """
    from pipectl.services import rates
    from pipectl.views import rates as view

    shown = rates.listing(connect(ctx), every)
    if as_json:
        from pipectl.views.common import print_json

        print_json(view.listing_json(shown))
    else:
        view.listing(shown, every)


@rate_app.command("rm")
def rm(
    ctx: typer.Context,
    source: FromArg,
    target: ToArg,
    at: Annotated[str, typer.Option(
        "--at", help="The moment the rate is in force from, as rate list shows it, e.g. "
        "--at 2026-11-30.")],
) -> None:
    """Withdraw a rate recorded by mistake: figures convert as if it had never been recorded.

    History is append-only: the rate stays in rate list --all, marked withdrawn.

    Example:

      pipectl rate rm USD EUR --at 2026-11-30
    """
    from pipectl.domain.rates import pair_text
    from pipectl.services import rates

    rates.arguments(source, target)
    when = rates.moment(at)
    done = rates.remove(connect(ctx), source, target, when)
    r = done.rate
    typer.echo(f"Withdrew rate {pair_text(r.source, r.target)} {done.previous} from "
               f"{_when(r.at)}")


def register(app: typer.Typer) -> None:
    app.add_typer(rate_app, name="rate")
