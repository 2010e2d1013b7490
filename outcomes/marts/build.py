"""`outcomes build` and `outcomes publish`: dbt over the warehouse as of a knowledge date, then a
content hash of every mart so that a rebuild as of the same date can be shown to be identical."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv

from outcomes.marts.dbt import run_dbt
from outcomes.marts.increments import Plan, begin, finish, plan_build
from outcomes.marts.roles import apply_grants
from outcomes.warehouse.target import Target, WarehouseError

OUTCOME_MARTS = (
    "successful_completion",
    "sustained_recovery",
    "proven_reoffending",
    "convictions_before_after",
    "drug_related_deaths",
    "deaths_after_treatment",
    "treatment_flow",
    "benefits_outcome",
)
MARTS = (*OUTCOME_MARTS, "linkage_quality")
HASHED_SCHEMAS = ("marts", "research", "published")


@dataclass
class BuildResult:
    as_of: dt.date
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    tests: int = 0
    # dbt's execution time of each model and test, by unique_id: where a build's time goes.
    node_seconds: dict[str, float] = field(default_factory=dict)
    # `full` or `incremental` (outcomes.marts.increments), and the line that says why.
    mode: str = "full"
    plan: str = ""
    disclosure: list[str] = field(default_factory=list)  # `outcomes publish`: what suppression withheld

    def slowest(self, n: int = 5) -> list[tuple[str, float]]:
        """The `n` slowest dbt nodes, slowest first, by readable name (`node_name`)."""
        ranked = sorted(self.node_seconds.items(), key=lambda item: (-item[1], item[0]))[:n]
        return [(node_name(unique_id), seconds) for unique_id, seconds in ranked]

    def to_json(self) -> str:
        return json.dumps(
            {
                "as_of": str(self.as_of),
                "mode": self.mode,
                "plan": self.plan,
                "seconds": round(self.seconds, 1),
                "tests": self.tests,
                "tables": {t: {"rows": self.rows[t], "sha256": self.hashes[t]} for t in sorted(self.hashes)},
            },
            indent=2,
        )


def node_name(unique_id: str) -> str:
    """A dbt node's name without its kind and project: `model.outcomes.x` is `x`, a generic test
    `test.outcomes.not_null_x.<hash>` is `not_null_x`, a unit test is `<model>.<test>`."""
    kind, _, *parts = unique_id.split(".")
    if kind == "test" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def table_hash(table: pa.Table) -> str:
    """sha256 of a table's rows in a canonical order (all columns ascending) written as CSV."""
    if table.num_rows:
        table = table.sort_by([(name, "ascending") for name in table.column_names])
    buffer = io.BytesIO()
    pacsv.write_csv(table.combine_chunks(), buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _latest_extract(backend) -> dt.date:
    with backend.transaction() as s:
        ledger = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'events' and table_name = 'deliveries'"
        )
        value = s.scalar("select max(extract_date) from events.deliveries where status = 'applied'") if ledger else None
    if value is None:
        raise WarehouseError("nothing has been ingested yet: run `outcomes ingest --landing DIR` first")
    return value


def _check_ready(backend, as_of: dt.date, all_records: bool = True) -> None:
    """A linkage run as of the date exists, and (`all_records`) every applied record is in the spine
    (an incremental build checks only the changed records: outcomes.marts.increments)."""
    with backend.transaction() as s:
        linked = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'linkage' and table_name = 'runs'"
        )
        runs = s.scalar("select count(*) from linkage.runs where as_of <= :d", {"d": as_of}) if linked else 0
    if not runs:
        raise WarehouseError(f"no linkage run known on {as_of}: run `outcomes link --as-of {as_of}` before building")
    if not all_records:
        return
    missing = unlinked_records(backend, as_of)
    if missing:
        per_source = ", ".join(f"{n:,} {source}" for source, n in missing.items())
        raise WarehouseError(
            f"{sum(missing.values()):,} applied records are not in the person spine as of {as_of} ({per_source}): "
            "the marts would leave them out; run `outcomes link` first (or `outcomes build --link-first`)"
        )


def spine_coverage_sql(source: str) -> str:
    """Of `source`'s records in the as-of state, how many (`records`) and how many of them the spine
    as of the same date holds (`linked`); `:as_of` is the date. The build's refusal and the report's
    accounting both read it."""
    from linkage.schema import spine_as_of_sql
    from outcomes.eventstore.schema import as_of_sql

    return (
        f"select count(*) as records, count(sp.record_id) as linked from ({as_of_sql(source)}) st "
        f"left join ({spine_as_of_sql()}) sp on sp.source = '{source}' and sp.record_id = st.record_id"
    )


def unlinked_records(backend, as_of: dt.date) -> dict[str, int]:
    """Per source, the records in the as-of state that the spine as of the same date does not hold
    (the staging models inner-join the spine, so these would vanish from every mart)."""
    from outcomes.contract import SOURCES

    missing = {}
    with backend.transaction() as s:
        for source in SOURCES:
            row = s.fetch(spine_coverage_sql(source), {"as_of": as_of}).to_pylist()[0]
            n = int(row["records"]) - int(row["linked"])
            if n:
                missing[source] = n
    return missing


def hash_tables(backend, schemas=HASHED_SCHEMAS) -> tuple[dict[str, str], dict[str, int]]:
    hashes, rows = {}, {}
    with backend.transaction() as s:
        names = s.fetch(
            "select table_schema, table_name from information_schema.tables where table_schema in ("
            + ", ".join(f"'{x}'" for x in schemas)
            + ") and table_type in ('BASE TABLE', 'VIEW') "
            "order by table_schema, table_name"
        ).to_pylist()
        for n in names:
            name = f"{n['table_schema']}.{n['table_name']}"
            table = s.fetch(f"select * from {name}")
            hashes[name], rows[name] = table_hash(table), table.num_rows
    return hashes, rows


def _plan(target: Target, as_of: dt.date | None, link_first: bool, full_refresh: bool) -> Plan:
    from outcomes.eventstore import connect

    with connect(target) as backend:
        as_of = as_of or _latest_extract(backend)
        if link_first:
            from linkage.run import link

            link(backend, as_of=as_of)
        _check_ready(backend, as_of, all_records=False)
        plan = plan_build(backend, as_of, full_refresh)
        if not plan.incremental:
            _check_ready(backend, as_of)
        begin(backend)
    return plan


def build(
    target: Target,
    as_of: dt.date | None = None,
    on_line: Callable[[str], None] | None = None,
    link_first: bool = False,
    full_refresh: bool = False,
) -> BuildResult:
    """dbt build of staging, intermediate, marts and research tables as of `as_of`, tests included.
    Refuses when applied records are missing from the spine as of that date; `link_first` links them.
    Incremental when the last build allows it (outcomes.marts.increments), else, or with
    `full_refresh`, full; the tables are the same either way."""
    from outcomes.eventstore import connect

    started = time.perf_counter()
    plan = _plan(target, as_of, link_first, full_refresh)
    if on_line:
        on_line(plan.line())
    args = ["build", "--exclude", "published"]
    previous_as_of = None
    if plan.incremental:
        # Unit tests read only their fixtures: the project they test is the last build's (the
        # watermark's project hash is this one's), and a build with this project ran them and passed.
        args.append("test_type:unit")
        previous_as_of = str(plan.previous.as_of)
    else:
        args.append("--full-refresh")
    results = run_dbt(target, args, str(plan.current.as_of), on_line=on_line, previous_as_of=previous_as_of)
    with connect(target) as backend:
        apply_grants(backend)
        hashes, rows = hash_tables(backend, ("marts", "research"))
        seconds = time.perf_counter() - started
        finish(backend, plan, seconds)
    return BuildResult(
        plan.current.as_of, seconds, rows, hashes, _tests(results), _node_seconds(results), plan.mode, plan.line()
    )


def publish(target: Target, as_of: dt.date | None = None, on_line: Callable[[str], None] | None = None) -> BuildResult:
    """Disclosure control over the marts (outcomes/disclosure), then dbt build of the `published`
    tables from its flagged cells, tests included."""
    from outcomes.disclosure.control import control
    from outcomes.eventstore import connect

    started = time.perf_counter()
    with connect(target) as backend:
        as_of = as_of or _built_as_of(backend)
        disclosure = control(backend)
    results = run_dbt(target, ["build", "--select", "published"], str(as_of), on_line=on_line)
    with connect(target) as backend:
        apply_grants(backend)
        hashes, rows = hash_tables(backend, ("published",))
    result = BuildResult(as_of, time.perf_counter() - started, rows, hashes, _tests(results), _node_seconds(results))
    result.disclosure = disclosure.lines()
    return result


def _built_as_of(backend) -> dt.date:
    with backend.transaction() as s:
        built = s.scalar(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'successful_completion'"
        )
        value = s.scalar("select max(as_of) from marts.successful_completion") if built else None
    if value is None:
        raise WarehouseError("no marts yet: run `outcomes build` before publishing")
    return value


def _tests(results: list[dict]) -> int:
    return sum(r["unique_id"].startswith(("test.", "unit_test.")) for r in results)


def _node_seconds(results: list[dict]) -> dict[str, float]:
    return {r["unique_id"]: float(r.get("execution_time") or 0.0) for r in results}
