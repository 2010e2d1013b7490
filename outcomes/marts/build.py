"""`outcomes build` and `outcomes publish`: dbt over the warehouse as of a knowledge date, then a
content hash of every mart so that a rebuild as of the same date can be shown to be identical."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from outcomes.marts.dbt import run_dbt
from outcomes.marts.increments import Plan, added_rows, begin, finish, plan_build, replaced_rows, vacuum_dead_rows
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
    # What the table hashes depend on besides the rows (hash_engine): compare hashes of one engine.
    hashed_by: str = ""
    # Where dbt's process spent its time: its import, then the command (outcomes/marts/dbt_child.py).
    dbt_phases: dict[str, float] = field(default_factory=dict)
    # An incremental build: per person-level model kept per cell, the rows it replaced (the marts
    # subtracted them; their copies are dropped when the build ends: outcomes.marts.increments).
    replaced: dict[str, int] = field(default_factory=dict)
    # ...and the rows it added (a row recomputed unchanged is neither replaced nor added).
    added: dict[str, int] = field(default_factory=dict)

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
                "hashed_by": self.hashed_by,
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


def row_hash_sum_sql(dialect: str, relation: str) -> str:
    """One row of `relation`: its row count (`n`) and the sum of a 64-bit hash of every row (`h`),
    computed in the warehouse. A sum, not a sort: the same rows in any order, or written by an
    incremental build rather than a full one, give the same figure; a sum, not an xor, so that
    two equal rows do not cancel out. DuckDB hashes the row as a struct (`hash`), PostgreSQL as a
    record (`hash_record_extended`, PostgreSQL 14+); both sums are exact (HUGEINT, numeric)."""
    row = "_outcomes_hashed_row"
    if dialect == "duckdb":
        return f"select count(*) as n, cast(sum(hash({row})) as varchar) as h from {relation} as {row}"
    if dialect == "postgresql":
        return (
            f"select count(*) as n, cast(sum(hash_record_extended({row}, 0)) as varchar) as h from {relation} as {row}"
        )
    raise WarehouseError(f"no table hash for the {dialect} dialect")


def hash_engine(s, dialect: str) -> str:
    """What the row hashes depend on besides the rows: the engine and its version (DuckDB's `hash`
    may change between releases; PostgreSQL's hash functions between major versions)."""
    if dialect == "duckdb":
        return f"duckdb {s.scalar('select version()')}"
    return f"postgresql {int(s.scalar('show server_version_num')) // 10000}"


def hashed_with(backend) -> str:
    with backend.transaction() as s:
        return hash_engine(s, backend.dialect)


def table_digest(engine: str, columns: list[tuple[str, str]], rows: int, row_hash_sum) -> str:
    """sha256 of a table's engine, column names and types, row count and sum of row hashes."""
    text = "\n".join([engine, *(f"{name} {kind}" for name, kind in columns), str(rows), str(row_hash_sum or 0)])
    return hashlib.sha256(text.encode()).hexdigest()


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
    """Per table or view of `schemas`: an order-free content hash (table_digest of
    row_hash_sum_sql, computed in the warehouse: no row leaves it) and the row count."""
    hashes, rows = {}, {}
    in_schemas = ", ".join(f"'{x}'" for x in schemas)
    with backend.transaction() as s:
        engine = hash_engine(s, backend.dialect)
        columns = s.fetch(
            "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
            "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
            f"where c.table_schema in ({in_schemas}) and t.table_type in ('BASE TABLE', 'VIEW') "
            "order by c.table_schema, c.table_name, c.ordinal_position"
        ).to_pylist()
        tables: dict[str, list[tuple[str, str]]] = {}
        for c in columns:
            tables.setdefault(f"{c['table_schema']}.{c['table_name']}", []).append((c["column_name"], c["data_type"]))
        for name, cols in tables.items():
            r = s.fetch(row_hash_sum_sql(backend.dialect, name)).to_pylist()[0]
            rows[name] = int(r["n"])
            hashes[name] = table_digest(engine, cols, rows[name], r["h"])
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
    phases: dict[str, float] = {}
    results = run_dbt(
        target, args, str(plan.current.as_of), on_line=on_line, previous_as_of=previous_as_of, phases=phases
    )
    with connect(target) as backend:
        apply_grants(backend)
        hashes, rows = hash_tables(backend, ("marts", "research"))
        hashed_by = hashed_with(backend)
        replaced = replaced_rows(backend) if plan.incremental else {}
        added = added_rows(backend) if plan.incremental else {}
        seconds = time.perf_counter() - started
        finish(backend, plan, seconds)
        vacuum_dead_rows(backend)  # after the watermark: housekeeping cannot fail the build
    return BuildResult(
        plan.current.as_of,
        seconds,
        rows,
        hashes,
        _tests(results),
        _node_seconds(results),
        plan.mode,
        plan.line(),
        hashed_by=hashed_by,
        dbt_phases=phases,
        replaced=replaced,
        added=added,
    )


def publish(
    target: Target, as_of: dt.date | None = None, on_line: Callable[[str], None] | None = None, full: bool = False
) -> BuildResult:
    """Disclosure control over the marts (outcomes/disclosure), then dbt build of the `published`
    tables from its flagged cells, tests included. The components of cells the last publish solved
    with the same inputs keep its solution (outcomes.disclosure.control); `full` solves every one
    again. The tables are the same either way."""
    from outcomes.disclosure.control import control
    from outcomes.eventstore import connect

    started = time.perf_counter()
    with connect(target) as backend:
        as_of = as_of or _built_as_of(backend)
        disclosure = control(backend, full=full)
    results = run_dbt(target, ["build", "--select", "published"], str(as_of), on_line=on_line)
    with connect(target) as backend:
        apply_grants(backend)
        hashes, rows = hash_tables(backend, ("published",))
        hashed_by = hashed_with(backend)
    result = BuildResult(
        as_of, time.perf_counter() - started, rows, hashes, _tests(results), _node_seconds(results), hashed_by=hashed_by
    )
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
