"""import and export: bring a pipeline in from a CRM file, take it out as CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipectl.cli.common import JSON_HELP, connect
from pipectl.errors import UsageError

LARGE = 2_000_000  # bytes: a progress bar from this size on, when stderr is a terminal


def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="CSV or JSON file to import; - reads standard input."),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="csv or json. Default: from the name (.csv, .json), else from the first "
            "character ([ or { is JSON).",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="hubspot, pipedrive, salesforce, maven or pipectl. Default: detected from the "
            "header, else columns named like fields.",
        ),
    ] = None,
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=FIELD",
            help="Feed a column to a field (repeatable); COLUMN=- leaves a column out.",
        ),
    ] = None,
    stage_maps: Annotated[
        list[str] | None,
        typer.Option(
            "--stage-map",
            metavar="THEIR STAGE=STAGE",
            help="Map one of the file's stages to a stage of the pipeline (repeatable). "
            "Remembered for the next import of the same source into that pipeline.",
        ),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            metavar="NAME",
            envvar="PIPECTL_PIPELINE",
            help="The pipeline the deals go into; the file's stage names are read as its "
            "stages. Default: the default pipeline. (A pipectl export of format 2 names each "
            "deal's own.)",
        ),
    ] = None,
    create_pipeline: Annotated[
        str | None,
        typer.Option(
            "--create-pipeline",
            metavar="NAME",
            help="Make a new pipeline NAME from the file's own stage names (in the order the "
            "preset knows, else as first seen; won and lost as the preset or pipectl reads "
            "them) and import into it. A pipectl JSON export brings its pipelines' "
            "definitions: those are used instead, and a pipeline it names that the database "
            "lacks is made without this option.",
        ),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            metavar="FILE",
            help="The history of FILE's deals: a Salesforce OpportunityHistory file, or the "
            "event log of a pipectl CSV export (pipectl export --events).",
        ),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option(
            "--currency",
            envvar="PIPECTL_CURRENCY",
            help="Currency of amounts without a currency column. Default: USD.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="The file's encoding (e.g. cp1252). Default: detected."),
    ] = None,
    dayfirst: Annotated[
        bool, typer.Option("--dayfirst", help="Read 1/2/2024 as 1 February.")
    ] = False,
    decimal: Annotated[
        str | None,
        typer.Option(
            "--decimal",
            metavar="point|comma",
            help="How the files write decimals: point (1,234.50) or comma (1.234,50, e.g. "
            "--decimal comma). Default: the point; a file whose amounts read two ways (1.500: "
            "1.50 or 1,500.00) and none shows which is refused until this says.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and report; write nothing.")
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Import a file that was imported before although its deals without a ref "
            "would be added a second time.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Import deals from a CRM export or a spreadsheet: every row or none.

    Importing the same ref again updates that deal (new events) instead of duplicating it.
    Importing the same file again when it has deals without a ref is refused (--again).
    Bad rows are reported with row number, column and reason, and nothing is written.
    See docs/import-export.md for each CRM.

    Examples:

      pipectl import sales_pipeline.csv --preset maven

      pipectl import deals.csv --preset hubspot --currency GBP --dry-run

      pipectl import Opportunity.csv --preset salesforce --history OpportunityHistory.csv

      pipectl import leads.csv --map "Deal Title=name" --stage-map "Hot=proposal"

      pipectl import backup.json

      pipectl import deals.csv --history events.csv

      pipectl import emea.csv --pipeline emea

      pipectl import sales_pipeline.csv --preset maven --create-pipeline maven

      gunzip -c deals.csv.gz | pipectl import -
    """
    from pipectl.services import transfer
    from pipectl.values import DEFAULT_CURRENCY, currency_code
    from pipectl.views.transfer import print_errors, print_summary, progress_bar

    source = getattr(ctx.get_parameter_source("pipeline"), "name", None)
    if create_pipeline is not None and source == "ENVIRONMENT":
        pipeline = None  # --create-pipeline names where the deals go, over PIPECTL_PIPELINE
    opts = transfer.Options(
        fmt=fmt,
        preset=preset,
        maps=list(maps or []),
        stage_maps=list(stage_maps or []),
        currency=currency_code(currency) if currency else DEFAULT_CURRENCY,
        currency_given=bool(currency),
        encoding=encoding,
        dayfirst=dayfirst,
        decimal=decimal,
        dry_run=dry_run,
        history=history,
        pipeline=pipeline,
        create_pipeline=create_pipeline,
        again=again,
    )
    transfer.check_files(file, history)
    conn = connect(ctx)
    large = file.is_file() and file.stat().st_size >= LARGE
    with progress_bar(f"importing {file.name}", large and not as_json) as update:
        try:
            summary = transfer.import_file(conn, file, opts, update)
        except transfer.ImportFailed as exc:
            print_errors(exc.summary, as_json)
            raise
    print_summary(summary, as_json)


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE: a new file (never overwritten, unless --force) that appears "
            "only complete; an interrupted export leaves none. Default: standard output.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With -o: replace FILE if it exists, atomically (for a cron job): the new "
            "export takes its name in one rename once complete, keeping its permissions; "
            "a failed or interrupted export leaves the old file as it was.",
        ),
    ] = False,
    status: Annotated[str, typer.Option("--status", help="open, won, lost or all.")] = "all",
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="The event log: in JSON, each deal with its events; in CSV, one row per event.",
        ),
    ] = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Do not neutralise CSV cells a spreadsheet would run as formulas."
        ),
    ] = False,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            metavar="NAME",
            help="Only the deals of this pipeline. Default: every pipeline (PIPECTL_PIPELINE "
            "is not read here: a backup is never cut to one pipeline by the environment).",
        ),
    ] = None,
) -> None:
    """Export deals (and with --events their history) as CSV or JSON.

    CSV cells starting with = + - @ TAB or CR get a leading apostrophe so that a spreadsheet
    shows them instead of running them (--raw opts out); pipectl import removes it again, so
    export then import round-trips exactly.

    Examples:

      pipectl export -o deals.csv

      pipectl export --format json --events -o pipeline.json

      pipectl export --status won --format json | jq '.deals | length'

      pipectl export --pipeline "Agency retainers" --format json --events -o agency.json

      pipectl export --format json --events -o /backups/pipeline.json --force
    """
    from pipectl.services import transfer
    from pipectl.values import optional_text

    fmt = fmt.lower()
    if fmt not in ("csv", "json"):
        raise UsageError(f"--format {fmt!r} is not csv or json")
    status = status.lower()
    if status not in ("open", "won", "lost", "all"):
        raise UsageError(f"--status {status!r} is not one of open, won, lost, all")
    if force and output is None:
        raise UsageError("--force replaces the file given with -o; there is none",
                         hint="add -o FILE")
    if output is not None and not force:
        from pipectl.paths import expand

        target = expand(output)
        if target.is_file() and not target.is_symlink():
            raise UsageError(f"{target} exists; pipectl never overwrites a file",
                             hint="pick a new name, or add --force to replace it")
    conn = connect(ctx)
    n = transfer.export(conn, output, fmt=fmt, status=status, events=events, raw=raw,
                        pipeline=optional_text(pipeline, "--pipeline"), force=force)
    if output is not None:
        what = "events" if events and fmt == "csv" else "deals"
        typer.echo(f"Exported {n} {what} to {output}", err=True)


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command()(export)
