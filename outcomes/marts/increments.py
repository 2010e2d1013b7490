"""Incremental builds: what the last build saw, and which records and persons changed since.

Each successful build writes a watermark (`marts_state.build_watermarks`): its knowledge date, the
last delivery ledger id and linkage run id it could see, the first extract date and a hash of the
dbt project. The next build as of the same or a later date recomputes only the persons touched
since: records with events (dated on or before the new date) applied after the watermark's ledger
id or dated after its knowledge date, records with link events of later runs or dated after it
(assignments, merges, splits, unlinks, review decisions, past dates linked afterwards), and every
person such a record belongs to in the spine now or belonged to in the last build's spine. dbt's
incremental models read the two tables written here (`marts_state.changed_records`,
`marts_state.changed_persons`; dbt_project/macros/increments.sql). Anything the watermark cannot
vouch for (no valid watermark, an earlier date, a changed project, a new first extract date,
missing staging tables, `--full-refresh`) makes the build a full one, and says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from outcomes.marts.dbt import PROJECT_DIR

SCHEMA = "marts_state"
WATERMARKS = f"{SCHEMA}.build_watermarks"
CHANGED_RECORDS = f"{SCHEMA}.changed_records"
CHANGED_SPINE = f"{SCHEMA}.changed_spine"
CHANGED_PERSONS = f"{SCHEMA}.changed_persons"
# marts_state.<model>__replaced and __added: the rows a person-level model kept per cell replaced
# and added in this build (dbt_project/macros/increments.sql, write_changed_rows).
REPLACED_SUFFIX = "__replaced"
ADDED_SUFFIX = "__added"
# The previous build's spine: the incremental spine model still holds it when the next build plans.
STAGED_SPINE = "staging.stg_linkage__person_records"

DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {WATERMARKS} (
        built_at timestamp not null, as_of date not null, mode varchar not null, reason varchar,
        max_ledger_id bigint not null, max_run_id bigint not null, first_extract date not null,
        model_version varchar not null, changed_records bigint, changed_persons bigint,
        seconds double precision, valid boolean not null)""",
]


@dataclass(frozen=True)
class Watermark:
    """What a build could see: changes after it are the next build's work."""

    as_of: dt.date
    max_ledger_id: int
    max_run_id: int
    first_extract: dt.date
    model_version: str


@dataclass
class Plan:
    """A build's mode (`full` or `incremental`), why, and the extent of an incremental one."""

    mode: str
    reason: str
    current: Watermark
    previous: Watermark | None = None
    changed_records: int | None = None
    changed_persons: int | None = None

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    def line(self) -> str:
        if self.incremental:
            return (
                f"incremental build since {self.previous.as_of}: {self.changed_records:,} changed records, "
                f"{self.changed_persons:,} persons recomputed"
            )
        return f"full build: {self.reason}"


def model_version() -> str:
    """sha256 of the dbt project (config, models, macros), the code that decides what changed (this
    module, the event store's as-of query, the spine's ranking) and dbt's version: a build by other
    code than the last one's cannot reuse its tables."""
    from importlib.metadata import version

    import linkage.schema
    import outcomes.eventstore.schema

    digest = hashlib.sha256(f"dbt-core {version('dbt-core')}\n".encode())
    code = (Path(__file__), Path(outcomes.eventstore.schema.__file__), Path(linkage.schema.__file__))
    files = [PROJECT_DIR / "dbt_project.yml", *code]
    files += sorted(p for folder in ("models", "macros") for p in (PROJECT_DIR / folder).rglob("*") if p.is_file())
    for path in files:
        label = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path.name
        digest.update(f"{label}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def current_watermark(backend, as_of: dt.date) -> Watermark:
    with backend.transaction() as s:
        ledger = s.scalar("select coalesce(max(ledger_id), 0) from events.deliveries")
        run = s.scalar("select coalesce(max(run_id), 0) from linkage.runs")
        first = s.scalar(
            "select min(extract_date) from events.deliveries where status = 'applied' and extract_date <= :d",
            {"d": as_of},
        )
    return Watermark(as_of, int(ledger), int(run), first, model_version())


def last_watermark(backend) -> Watermark | None:
    """The last successful build's watermark; None when there is none or a build failed since
    (a failed build may have updated some incremental tables and not others)."""
    with backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        rows = s.fetch(
            f"select as_of, max_ledger_id, max_run_id, first_extract, model_version, valid from {WATERMARKS} "
            "order by built_at desc limit 1"
        ).to_pylist()
    if not rows or not rows[0]["valid"]:
        return None
    r = rows[0]
    return Watermark(r["as_of"], int(r["max_ledger_id"]), int(r["max_run_id"]), r["first_extract"], r["model_version"])


def _table_exists(backend, schema: str, name: str) -> bool:
    with backend.transaction() as s:
        return bool(
            s.scalar(
                "select count(*) from information_schema.tables where table_schema = :s and table_name = :n",
                {"s": schema, "n": name},
            )
        )


def plan_build(backend, as_of: dt.date, full_refresh: bool = False) -> Plan:
    """Full or incremental, and why. An incremental plan has written the changed records and
    persons, and refuses (WarehouseError) when a changed record is missing from the spine."""
    current = current_watermark(backend, as_of)
    previous = last_watermark(backend)
    reason = None
    if full_refresh:
        reason = "--full-refresh asked for"
    elif previous is None:
        reason = "no complete earlier build to start from"
    elif as_of < previous.as_of:
        reason = f"as of {as_of}, earlier than the last build's {previous.as_of}"
    elif previous.model_version != current.model_version:
        reason = "the dbt project or its code changed since the last build"
    elif previous.first_extract != current.first_extract:
        reason = f"the first extract date moved from {previous.first_extract} to {current.first_extract}"
    elif not _table_exists(backend, "staging", "stg_linkage__person_records"):
        reason = "the last build's staging tables are missing"
    if reason:
        return Plan("full", reason, current, previous)
    assert previous is not None
    records, persons = _write_changes(backend, previous, current)
    return Plan("incremental", "", current, previous, records, persons)


def _date(d: dt.date) -> str:
    return f"cast('{d.isoformat()}' as date)"


def changed_as_of_function(source: str) -> str:
    """`marts_state.<source>_changed_as_of(date)`: the event store's as-of state
    (outcomes.eventstore.schema) of the changed records only. The record filter comes before the
    ranking window, so an incremental build ranks the changed records' events, not every event
    (neither DuckDB nor PostgreSQL pushes a semi-join below a window). A function, not a table: it
    copies no identity field out of the event store."""
    return f"{SCHEMA}.{source}_changed_as_of"


def _changed_as_of_ddl(source: str, dialect: str) -> str:
    from outcomes.contract import SOURCES
    from outcomes.eventstore.schema import RETRACTIONS, SQL_TYPES, latest_sql

    cols = ", ".join(SOURCES[source].column_names)
    retracted = ", ".join(f"'{r}'" for r in RETRACTIONS)
    changed = f"record_id in (select record_id from {CHANGED_RECORDS} where source = '{source}')"
    body = (
        f"select {cols} from ({latest_sql(source, f'extract_date <= as_of_date and {changed}')}) latest "
        f"where event_type not in ({retracted})"
    )
    name = changed_as_of_function(source)
    if dialect == "duckdb":
        return f"create or replace macro {name}(as_of_date) as table {body}"
    typed = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in SOURCES[source].columns)
    return (
        f"create or replace function {name}(as_of_date date) returns table ({typed}) "
        f"language sql stable as $$ {body} $$"
    )


def _write_changes(backend, previous: Watermark, current: Watermark) -> tuple[int, int]:
    from linkage.schema import spine_sql
    from outcomes.contract import SOURCES
    from outcomes.warehouse.target import WarehouseError

    # A change dated after the new date is not in its state: the build that reaches its date
    # finds it by date. Literals, not parameters: PostgreSQL takes no parameters in `create table as`.
    since, until = _date(previous.as_of), _date(current.as_of)
    new_events = [
        f"select '{source}' as source, record_id from events.{source} "
        f"where extract_date <= {until} and (applied_in > {previous.max_ledger_id} or extract_date > {since})"
        for source in SOURCES
    ]
    new_links = (
        "select source, record_id from linkage.link_events "
        f"where as_of <= {until} and (run_id > {previous.max_run_id} or as_of > {since})"
    )
    changed = "exists (select 1 from {t} c where c.source = {a}.source and c.record_id = {a}.record_id)"
    with backend.transaction() as s:
        for table in (CHANGED_RECORDS, CHANGED_SPINE, CHANGED_PERSONS):
            s.execute(f"drop table if exists {table}")
        s.execute(f"create table {CHANGED_RECORDS} as " + " union ".join([*new_events, new_links]))
        for source in SOURCES:
            s.execute(_changed_as_of_ddl(source, backend.dialect))
        # The spine as of the new date, for the changed records only (linkage.schema.spine_sql): the
        # record filter joins the date filter on the link events (alias `e`) before the ranking window,
        # which is by record, so only the changed records' events are ranked (neither DuckDB nor
        # PostgreSQL pushes a semi-join below a window: ranking every link event cost 0.46 s of the
        # plan's 0.72 s of CPU at 100,000 people), as stg_linkage__person_records does.
        s.execute(
            f"create table {CHANGED_SPINE} as " + spine_sql(f"{until} and {changed.format(t=CHANGED_RECORDS, a='e')}")
        )
        # The refusal of outcomes build, for the changed records (the others were in the last build's spine).
        missing = {}
        for source in SOURCES:
            n = s.scalar(
                f"select count(*) from {changed_as_of_function(source)}({until}) st "
                f"where not exists (select 1 from {CHANGED_SPINE} sp where sp.source = '{source}' "
                "and sp.record_id = st.record_id)"
            )
            if n:
                missing[source] = int(n)
        if missing:
            per_source = ", ".join(f"{n:,} {source}" for source, n in missing.items())
            raise WarehouseError(
                f"{sum(missing.values()):,} applied records are not in the person spine as of {current.as_of} "
                f"({per_source}): the marts would leave them out; run `outcomes link` first "
                "(or `outcomes build --link-first`)"
            )
        s.execute(
            f"create table {CHANGED_PERSONS} as select person_id from {CHANGED_SPINE} union "
            f"select person_id from {STAGED_SPINE} old where {changed.format(t=CHANGED_RECORDS, a='old')}"
        )
        if backend.dialect == "postgresql":  # statistics for dbt's plans: new tables have none until autovacuum
            for table in (CHANGED_RECORDS, CHANGED_SPINE, CHANGED_PERSONS):
                s.execute(f"analyze {table}")
        records = int(s.scalar(f"select count(*) from {CHANGED_RECORDS}"))
        persons = int(s.scalar(f"select count(*) from {CHANGED_PERSONS}"))
    return records, persons


def begin(backend) -> None:
    """Invalidate every watermark before dbt runs: a build that fails part-way leaves the
    incremental tables inconsistent, so the next build must be a full one."""
    with backend.transaction() as s:
        s.execute(f"update {WATERMARKS} set valid = false where valid")


def replaced_rows(backend) -> dict[str, int]:
    """Per person-level model kept per cell, the rows this build's `replace_changed` replaced
    (`marts_state.<model>__replaced`, dbt_project/macros/increments.sql: the rows the marts
    subtracted); none after a full build or after finish()."""
    return _copied_rows(backend, REPLACED_SUFFIX)


def added_rows(backend) -> dict[str, int]:
    """Per person-level model kept per cell, the rows this build added (`marts_state.<model>__added`:
    the rows the marts added; a row recomputed unchanged is not among them); none after a full build
    or after finish()."""
    return _copied_rows(backend, ADDED_SUFFIX)


def _copied_rows(backend, suffix: str) -> dict[str, int]:
    with backend.transaction() as s:
        names = [n for n in _replaced_tables(s) if n.endswith(suffix)]
        return {n.removesuffix(suffix): int(s.scalar(f"select count(*) from {SCHEMA}.{n}")) for n in names}


def _replaced_tables(s) -> list[str]:
    """The copies of replaced and added rows (marts_state.<model>__replaced, __added)."""
    names = (
        s.fetch("select table_name from information_schema.tables where table_schema = :s", {"s": SCHEMA})
        .column(0)
        .to_pylist()
    )
    return sorted(n for n in names if n.endswith((REPLACED_SUFFIX, ADDED_SUFFIX)))


# The schemas a build writes into in place (incremental models, the watermarks).
WRITTEN_IN_PLACE = ("staging", "intermediate", "marts", "research", SCHEMA)


def vacuum_dead_rows(backend) -> list[str]:
    """On PostgreSQL, VACUUM (ANALYZE) every table of the build's schemas holding dead rows, and
    return their names. An incremental build deletes rows in place (replace_all rewrites its small
    tables whole, replace_changed and write_changed_rows the changed persons' rows, begin() the
    watermarks): each month leaves the rows it replaced dead, for autovacuum to reclaim when it runs
    (with it off, as on a server tuned for bulk loads, they stay, and every later month scans them).
    A plain vacuum takes no lock readers wait on; it runs outside a transaction, after dbt's. The
    statistics (pg_stat_user_tables) are those of dbt's connections, closed when its process ended.
    DuckDB reclaims a deleted row's space itself (at its checkpoints): nothing to do.
    Housekeeping, run after the build's watermark is written: only tables this role may vacuum
    (their owner's privileges), and a table that fails (a lock or statement timeout) is logged
    and left for the next build, not a failed build."""
    if backend.dialect != "postgresql":
        return []
    with backend.transaction() as s:
        tables = (
            s.fetch(
                "select quote_ident(st.schemaname) || '.' || quote_ident(st.relname) from pg_stat_user_tables st "
                "join pg_tables t on t.schemaname = st.schemaname and t.tablename = st.relname "
                "where st.schemaname = any(:schemas) and st.n_dead_tup > 0 and pg_has_role(t.tableowner, 'USAGE') "
                "order by 1",
                {"schemas": list(WRITTEN_IN_PLACE)},
            )
            .column(0)
            .to_pylist()
        )
    done = []
    if tables:
        with backend.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            for table in tables:
                try:
                    con.exec_driver_sql(f"vacuum (analyze) {table}")
                except Exception as error:
                    logging.getLogger(__name__).warning("vacuum of %s left for the next build: %s", table, error)
                    continue
                done.append(table)
    return done


def finish(backend, plan: Plan, seconds: float) -> None:
    """Record a successful build's watermark, and drop the copies of the rows it replaced (the marts
    have counted them: no later build may read them, and they need not wait for one)."""
    w = plan.current
    with backend.transaction() as s:
        for name in _replaced_tables(s):
            s.execute(f"drop table if exists {SCHEMA}.{name}")
        s.execute(
            f"insert into {WATERMARKS} (built_at, as_of, mode, reason, max_ledger_id, max_run_id, first_extract, "
            "model_version, changed_records, changed_persons, seconds, valid) values (:built_at, :as_of, :mode, "
            ":reason, :ledger, :run, :first, :version, :records, :persons, :seconds, true)",
            {
                "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                "as_of": w.as_of,
                "mode": plan.mode,
                "reason": plan.reason or None,
                "ledger": w.max_ledger_id,
                "run": w.max_run_id,
                "first": w.first_extract,
                "version": w.model_version,
                "records": plan.changed_records,
                "persons": plan.changed_persons,
                "seconds": round(seconds, 3),
            },
        )
