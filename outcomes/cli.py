"""The `outcomes` command (interfaces.md)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from contextlib import contextmanager
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
    """Progress on a terminal only: never in CI, logs or pipes (where it would be noise)."""
    import os

    return err.is_terminal and os.environ.get("CI", "").lower() not in ("true", "1")


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
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Knowledge date YYYY-MM-DD: link the records known on it (default: the latest applied extract_date)",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="local (one process) or spark (the cluster of $SPARK_MASTER, default local[2]); "
            "default $OUTCOMES_LINK_ENGINE, else local",
            show_default=False,
        ),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            envvar="OUTCOMES_LINK_MEMORY",
            help="Memory budget of the run, e.g. 4GB: DuckDB gets half of it and the scoring chunks are sized "
            "from it (default 4GB)",
            show_default=False,
        ),
    ] = None,
    partitions: Annotated[
        str | None,
        typer.Option(
            "--partitions",
            envvar="OUTCOMES_LINK_PARTITIONS",
            help="A first run partition by partition (local engine): 'auto' when its estimate exceeds "
            "--memory-limit, or a count; default one pass (slower and lower recall partitioned: docs/scale.md)",
            show_default=False,
        ),
    ] = None,
    warehouse: Warehouse = None,
) -> None:
    """Link every record not linked yet into the person spine, as of a knowledge date (also one before
    dates linked already: it is linked beneath them, their spines unchanged)."""
    from linkage.engines import link_function
    from outcomes.eventstore import connect
    from outcomes.warehouse import checked_target
    from outcomes.warehouse.link_dates import check_can_link

    if truth is not None and not (truth / "records.parquet").exists():
        raise ValueError(f"no ground truth at {truth}: expected {truth / 'records.parquet'}")
    date = _as_of(as_of)
    run_link = link_function(engine)
    asked = {}
    from linkage.partitioned import wanted

    if wanted(partitions) is not None:  # a bad value fails here, before the warehouse is opened
        from linkage.engines import engine_name

        if engine_name(engine) != "local":
            raise ValueError("--partitions partitions the local engine's first run; the spark engine does not take it")
        asked["partitions"] = partitions
    with connect(checked_target(warehouse)) as backend, _stage_progress("linking") as on_stage:
        if date is not None:
            check_can_link(backend, date)
        result = run_link(
            backend, truth=truth, retrain=retrain, as_of=date, on_stage=on_stage, memory_limit=memory_limit, **asked
        )
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


LINK_STAGES = (
    "load",
    "variants",
    "blocking",
    "training",
    "scoring",
    "node_pairs",
    "clustering",
    "spine",
    "write",
    "quality",
)


@contextmanager
def _stage_progress(label: str):
    """A bar over the linkage stages, with the elapsed time, on a terminal; yields the stage
    callback (None elsewhere, so nothing is drawn into logs)."""
    if not _progress_enabled():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task(f"{label}: load", total=len(LINK_STAGES))

        def on_stage(stage: str) -> None:
            done = LINK_STAGES.index(stage) + 1 if stage in LINK_STAGES else 0
            following = LINK_STAGES[done] if done < len(LINK_STAGES) else "done"
            bar.update(task, completed=done, description=f"{label}: {following}")

        yield on_stage


@contextmanager
def _dbt_progress(label: str):
    """A bar over dbt's nodes ("12 of 180 START ...") on a terminal; yields the line callback,
    None when output is not a terminal."""
    if not _progress_enabled():
        yield None
        return
    import re

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    node = re.compile(r"\b(\d+) of (\d+) (START|OK|PASS|WARN|ERROR|FAIL|SKIP)\b\s*(.*)")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def show(line: str) -> None:
            m = node.search(line)
            if m:
                n, total, kind, rest = int(m[1]), int(m[2]), m[3], m[4]
                done = n - 1 if kind == "START" else n
                bar.update(task, completed=done, total=total, description=f"{label}: {rest.split(' [')[0][:60]}")

        yield show


def _print_build(result, kind: str) -> None:
    table = Table("table", "rows", "sha256", title=f"{kind} as of {result.as_of}")
    for name in sorted(result.hashes):
        table.add_row(name, f"{result.rows[name]:,}", result.hashes[name][:16])
    out.print(table)
    out.print(
        f"{kind}: {len(result.hashes)} tables, {result.tests} dbt tests passed, {result.seconds:.0f} s", highlight=False
    )
    if result.plan:
        out.print(result.plan, highlight=False)
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
def build(
    as_of: AsOf = None,
    link_first: Annotated[
        bool,
        typer.Option(
            "--link-first",
            help="Link applied records missing from the spine as of the date first (default: refuse to build)",
        ),
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild every table from the event state (default: only the persons changed since the last build)",
        ),
    ] = False,
    warehouse: Warehouse = None,
) -> None:
    """Build every outcome table (marts, research) as of a knowledge date, with dbt's tests; only
    the persons with new events or links since the last build are recomputed when it allows."""
    from outcomes.marts import build as run_build
    from outcomes.warehouse import checked_target

    target = checked_target(warehouse)
    with _dbt_progress("dbt build") as on_line:
        result = run_build(target, _as_of(as_of), on_line=on_line, link_first=link_first, full_refresh=full_refresh)
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
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Knowledge date YYYY-MM-DD (default: that of the marts)", show_default=False),
    ] = None,
    warehouse: Warehouse = None,
    full: Annotated[
        bool, typer.Option("--full", help="Solve every component of cells again, none reused from the last publish")
    ] = False,
) -> None:
    """Write the disclosure-controlled `published` tables and the HTML report."""
    from outcomes.eventstore import connect
    from outcomes.marts import publish as run_publish
    from outcomes.report import write_report
    from outcomes.warehouse import checked_target

    target = checked_target(warehouse)
    with _dbt_progress("dbt build --select published") as on_line:
        result = run_publish(target, _as_of(as_of), on_line=on_line, full=full)
    _print_build(result, "publish")
    for line in result.disclosure:
        out.print(line, highlight=False)
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
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Refresh as of this date YYYY-MM-DD: the knowledge date is the latest extract_date on or "
            "before it (default: the latest delivered)",
            show_default=False,
        ),
    ] = None,
    warehouse: Warehouse = None,
    create_folder: CreateFolder = False,
) -> None:
    """One monthly refresh as of a knowledge date: ingest the deliveries up to it, link, build,
    the quality gate, publish. A closed gate stops before publishing (exit 2, with its reasons)."""
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.ops.gate import GateConfig, gate_reasons
    from outcomes.pipeline.tasks import knowledge_task
    from outcomes.warehouse import WarehouseError, checked_target

    if not landing.is_dir():
        raise ValueError(f"landing folder {landing} does not exist")
    target = checked_target(warehouse, creating=True, create_folder=create_folder)
    day = dt.date.fromisoformat(knowledge_task(str(landing), target.value, str(_as_of(as_of) or dt.date.max)))
    out.print(f"refresh as of {day}", highlight=False)
    with connect(target) as backend:
        ingested = Ingestor(backend, target.default_archive).ingest(
            landing, on_delivery=lambda o: out.print(o.line(), highlight=False, soft_wrap=True), until=day
        )
    link(truth=truth, retrain=False, as_of=str(day), warehouse=warehouse)
    build(as_of=str(day), link_first=False, warehouse=warehouse)
    with connect(target) as backend:
        new_rejections = [o.file_name for o in ingested.outcomes if o.status == "rejected"]
        reasons = gate_reasons(backend, day, GateConfig.from_env(), new_rejections)
    if reasons:
        raise WarehouseError(f"publication of {day} stopped by the quality gate: " + "; ".join(reasons))
    publish(report=_reports_dir(target) / f"outcomes_report_{day}.html", as_of=str(day), warehouse=warehouse)


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
