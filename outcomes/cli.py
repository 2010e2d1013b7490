"""The `outcomes` command (interfaces.md)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="outcomes",
    help="Drug treatment outcomes warehouse: synthesise, pseudonymise, ingest, link, build, publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

Warehouse = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="DuckDB path or SQLAlchemy URL (default: $OUTCOMES_WAREHOUSE, else warehouse/outcomes.duckdb)",
        show_default=False,
    ),
]


def _fails_cleanly(fn):
    """Expected failures end with one line on stderr and exit status 2, never a traceback."""
    from outcomes.pseudonymise.extract import ExtractError
    from outcomes.pseudonymise.keyed import KeyFileError
    from outcomes.warehouse import WarehouseError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ExtractError, KeyFileError, WarehouseError, FileExistsError, FileNotFoundError, ValueError) as exc:
            typer.echo(f"outcomes {fn.__name__.rstrip('_')}: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _progress_enabled() -> bool:
    return err.is_terminal


@app.command()
@_fails_cleanly
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for landing/ and truth/")],
    persons: Annotated[int, typer.Option(help="People in the population")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files")] = 42,
    start: Annotated[str, typer.Option(help="First delivery month, YYYY-MM")] = "2023-04",
    months: Annotated[int, typer.Option(help="Monthly deliveries per source")] = 36,
    noise: Annotated[float, typer.Option(help="Identifier error multiplier (0 = clean identities)")] = 1.0,
    overwrite: Annotated[bool, typer.Option(help="Replace earlier output in --out")] = False,
    warehouse: Warehouse = None,  # noqa: ARG001 (every subcommand takes it; synth never touches it)
) -> None:
    """Write a synthetic population's deliveries and its ground truth."""
    from rich.progress import Progress

    from outcomes.synth.generator import SynthConfig, synthesise
    from outcomes.synth.report import summary_table

    config = SynthConfig(persons=persons, seed=seed, start=start, months=months, noise=noise)
    if _progress_enabled():
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("synthesising", total=None)
            result = synthesise(
                config, out_dir, overwrite, on_chunk=lambda done, total: bar.update(task, completed=done, total=total)
            )
    else:
        result = synthesise(config, out_dir, overwrite)
    out.print(summary_table(result))


@app.command()
@_fails_cleanly
def pseudonymise(
    source: Annotated[str, typer.Option(help="treatment, convictions, benefits or deaths")],
    in_file: Annotated[Path, typer.Option("--in", help="Identified extract, .csv or .parquet")],
    key_file: Annotated[Path, typer.Option(help="File holding the providers' key (at least 32 bytes)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Landing folder to write the delivery to")],
    extract_date: Annotated[str, typer.Option(help="Knowledge date of the extract, YYYY-MM-DD")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    warehouse: Warehouse = None,  # noqa: ARG001 (runs at the provider, far from any warehouse)
) -> None:
    """The providers' tool: turn an identified extract into a delivery and its manifest."""
    from outcomes.pseudonymise import load_key
    from outcomes.pseudonymise.extract import pseudonymise_extract

    try:
        date = dt.date.fromisoformat(extract_date)
    except ValueError:
        raise ValueError(f"--extract-date must be YYYY-MM-DD, not {extract_date!r}") from None
    files = pseudonymise_extract(in_file, source, load_key(key_file), out_dir, date, fmt)
    out.print(f"{files.data.name}: {files.row_count} rows, manifest {files.manifest.name}")


CreateFolder = Annotated[
    bool,
    typer.Option("--create-folder", help="Make the DuckDB file's folder if it does not exist (else that is an error)"),
]


@app.command()
@_fails_cleanly
def ingest(
    landing: Annotated[Path, typer.Option(help="Landing folder holding deliveries and manifests")],
    archive: Annotated[
        Path | None,
        typer.Option(
            help="Archive of delivered files (default: beside the DuckDB file, or "
            "$OUTCOMES_ARCHIVE, else warehouse/archive)",
            show_default=False,
        ),
    ] = None,
    warehouse: Warehouse = None,
    horizon: Annotated[
        str | None,
        typer.Option(
            help="The latest extract_date accepted, YYYY-MM-DD (default: today); a later one is rejected",
            show_default=False,
        ),
    ] = None,
    create_folder: CreateFolder = False,
) -> None:
    """Apply every delivery in LANDING not applied yet, in (source, extract_date, seq) order."""
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.warehouse import checked_target

    if not landing.is_dir():
        raise ValueError(f"landing folder {landing} does not exist")
    target = checked_target(warehouse, creating=True, create_folder=create_folder)
    with connect(target) as backend:
        # The clock is read here, at the edge: an ingest's acceptance depends on today, nothing it builds does.
        latest = _date_option("--horizon", horizon) if horizon is not None else dt.date.today()
        report = Ingestor(backend, archive or target.default_archive, horizon=latest).ingest(
            landing,
            on_delivery=lambda o: out.print(o.line(), highlight=False, soft_wrap=True),
            on_wait=lambda: err.print("waiting for another ingest of this warehouse to finish", highlight=False),
        )
    applied = sum(o.status == "applied" for o in report.outcomes)
    rejected = len(report.outcomes) - applied
    out.print(
        f"{applied} applied, {rejected} rejected; {report.already_applied} already applied, "
        f"{report.already_rejected} already rejected",
        highlight=False,
    )


@app.command()
@_fails_cleanly
def link(
    truth: Annotated[
        Path | None, typer.Option(help="Ground truth folder (synthetic data only) for precision and recall")
    ] = None,
    retrain: Annotated[bool, typer.Option(help="Estimate a new model version instead of the stored one")] = False,
    warehouse: Warehouse = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Link the records known on this date, YYYY-MM-DD (default: the latest applied extract_date)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Link every record not linked yet into the person spine."""
    from linkage.run import link as run_link
    from outcomes.eventstore import connect
    from outcomes.warehouse import checked_target
    from outcomes.warehouse.link_dates import check_can_link

    if truth is not None and not (truth / "records.parquet").exists():
        raise ValueError(f"no ground truth at {truth}: expected {truth / 'records.parquet'}")
    date = _as_of(as_of)
    with connect(checked_target(warehouse)) as backend:
        if date is not None:
            check_can_link(backend, date)
        result = run_link(backend, truth=truth, retrain=retrain, as_of=date)
    for line in result.lines():
        out.print(line, highlight=False, soft_wrap=True)


review_app = typer.Typer(help="Clerical review of the linkage: the queue out, decisions in.", no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("export")
@_fails_cleanly
def review_export(
    out_file: Annotated[Path, typer.Option("--out", help="File to write: .csv (to fill in) or .html (to read)")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or html (default: from the file's suffix)", show_default=False)
    ] = None,
    warehouse: Warehouse = None,
) -> None:
    """Write the clerical review queue: each pair's comparison levels and weights, and of each
    record only initials, sex, year of birth and postcode district."""
    from linkage.review import export_queue
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(warehouse)) as backend:
        n = export_queue(backend, out_file, fmt)
    out.print(f"{n} pairs to review written to {out_file}", highlight=False, soft_wrap=True)


@review_app.command("import")
@_fails_cleanly
def review_import(
    file: Annotated[Path, typer.Argument(help="The review CSV with decision (match / non-match) and reviewer filled")],
    warehouse: Warehouse = None,
) -> None:
    """Record reviewers' decisions as link events; the next `outcomes link` applies them."""
    from linkage.review import import_decisions
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(warehouse)) as backend:
        report = import_decisions(backend, file)
    for line in report.lines():
        out.print(line, highlight=False, soft_wrap=True)


AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Knowledge date YYYY-MM-DD (default: the latest applied extract_date)", show_default=False
    ),
]


def _as_of(value: str | None) -> dt.date | None:
    return None if value is None else _date_option("--as-of", value)


def _date_option(option: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} must be YYYY-MM-DD, not {value!r}") from None


def _dbt_progress(label: str):
    """A live line of dbt's progress on a terminal; nothing when output is not a terminal."""
    from contextlib import nullcontext

    if not _progress_enabled():
        return nullcontext(None)
    return err.status(label)


def _on_dbt_line(status):
    if status is None:
        return None

    def show(line: str) -> None:
        if " of " in line and ("START" in line or "OK" in line or "PASS" in line):
            status.update(line.split("  ", 1)[-1].strip()[:100])

    return show


def _print_build(result, kind: str) -> None:
    table = Table("table", "rows", "sha256", title=f"{kind} as of {result.as_of}")
    for name in sorted(result.hashes):
        table.add_row(name, f"{result.rows[name]:,}", result.hashes[name][:16])
    out.print(table)
    out.print(
        f"{kind}: {len(result.hashes)} tables, {result.tests} dbt tests passed, {result.seconds:.0f} s", highlight=False
    )
    slowest = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.slowest(3))
    if slowest:
        out.print(f"slowest dbt steps: {slowest}", highlight=False)


def _reports_dir(target) -> Path:
    import os

    if target.is_url:
        return Path(os.environ.get("OUTCOMES_REPORTS", "warehouse/reports"))
    return target.path.parent / "reports"


@app.command()
@_fails_cleanly
def build(as_of: AsOf = None, warehouse: Warehouse = None) -> None:
    """Build every outcome table (marts, research) as of a knowledge date, with dbt's tests."""
    from outcomes.marts import build as run_build
    from outcomes.warehouse import checked_target

    target = checked_target(warehouse)
    with _dbt_progress("dbt build") as status:
        result = run_build(target, _as_of(as_of), on_line=_on_dbt_line(status))
    manifest = _reports_dir(target) / f"build_{result.as_of}.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(result.to_json() + "\n")
    _print_build(result, "build")


@app.command()
@_fails_cleanly
def publish(
    report: Annotated[
        Path | None, typer.Option(help="Where to write the HTML report (default: reports folder)", show_default=False)
    ] = None,
    warehouse: Warehouse = None,
) -> None:
    """Write the disclosure-controlled `published` tables and the HTML report."""
    from outcomes.eventstore import connect
    from outcomes.marts import publish as run_publish
    from outcomes.report import write_report
    from outcomes.warehouse import checked_target

    target = checked_target(warehouse)
    with _dbt_progress("dbt build --select published") as status:
        result = run_publish(target, on_line=_on_dbt_line(status))
    _print_build(result, "publish")
    path = report or _reports_dir(target) / "outcomes_report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(target) as backend:
        write_report(backend, path)
    out.print(f"report: {path}", highlight=False)


@app.command()
@_fails_cleanly
def refresh(
    landing: Annotated[Path, typer.Option(help="Landing folder holding deliveries and manifests")],
    truth: Annotated[
        Path | None, typer.Option(help="Ground truth folder (synthetic data only) for linkage quality")
    ] = None,
    warehouse: Warehouse = None,
    create_folder: CreateFolder = False,
) -> None:
    """One monthly refresh: ingest, link, build, publish."""
    ingest(landing=landing, archive=None, warehouse=warehouse, horizon=None, create_folder=create_folder)
    link(truth=truth, retrain=False, warehouse=warehouse, as_of=None)
    build(as_of=None, warehouse=warehouse)
    publish(report=None, warehouse=warehouse)


@app.command()
@_fails_cleanly
def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write")],
    warehouse: Warehouse = None,
) -> None:
    """Write the outcomes report: tables and charts for every outcome, linkage and data quality."""
    from outcomes.eventstore import connect
    from outcomes.report import write_report
    from outcomes.warehouse import checked_target

    target = checked_target(warehouse)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with connect(target) as backend:
        write_report(backend, out_file)
    out.print(f"report: {out_file}", highlight=False)


@app.command()
@_fails_cleanly
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SQL statement")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    warehouse: Warehouse = None,
) -> None:
    """Run one read-only SQL statement against the warehouse."""
    from outcomes.warehouse import checked_target

    if fmt not in ("table", "csv", "json"):
        raise ValueError(f"--format is table, csv or json, not {fmt!r}")
    result = checked_target(warehouse).read_only_query(sql)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, sys.stdout.buffer)
    elif fmt == "json":
        typer.echo(json.dumps(result.to_pylist(), default=str))
    else:
        table = Table(*result.column_names)
        for row in result.to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)


def main() -> None:  # pragma: no cover - console script entry
    app()
