"""Tables of the `events` and `quarantine` schemas, generated from the contract.

Types are the portable subset (varchar, date, boolean, bigint, timestamp) so the same DDL runs
on DuckDB and PostgreSQL; list columns are stored as `|`-separated text, as in the spec's CSV.
"""

from __future__ import annotations

from outcomes.contract import SOURCES

SQL_TYPES = {"string": "varchar", "date": "date", "bool": "boolean", "list": "varchar"}

# Event types: full snapshots give new/changed/deleted; deltas give upsert/amended or a retraction.
RETRACTIONS = ("deleted", "quashed", "withdrawn")
EVENT_META = (
    ("delivery_id", "varchar not null"),  # sha256 of the delivered data file
    ("applied_in", "bigint not null"),  # ledger_id of the transaction that wrote the event
    ("extract_date", "date not null"),
    ("seq", "bigint not null"),
    ("event_type", "varchar not null"),
    ("row_hash", "varchar"),
    ("ingested_at", "timestamp not null"),
)

LEDGER = """create table if not exists events.deliveries (
    ledger_id bigint primary key,
    delivery_id varchar not null,
    manifest_sha256 varchar,
    file_name varchar not null,
    source varchar,
    extract_date date,
    seq bigint,
    delivery_type varchar,
    status varchar not null,
    reason varchar,
    rows_delivered bigint,
    rows_applied bigint,
    rows_quarantined bigint,
    rows_unchanged bigint,
    events_written bigint,
    archive_path varchar,
    ingested_at timestamp not null
)"""

RELEASES = """create table if not exists quarantine.releases (
    source varchar not null,
    record_id varchar not null,
    quarantined_in varchar not null,
    released_by varchar not null,
    released_extract_date date not null,
    ingested_at timestamp not null
)"""


def event_table(source: str) -> str:
    return f"events.{source}"


def quarantine_table(source: str) -> str:
    return f"quarantine.{source}_rows"


def ddl() -> list[str]:
    statements = ["create schema if not exists events", "create schema if not exists quarantine", LEDGER, RELEASES]
    for name, source in SOURCES.items():
        cols = [f"{c.name} {SQL_TYPES[c.type]}" for c in source.columns]
        meta = [f"{n} {t}" for n, t in EVENT_META]
        statements.append(f"create table if not exists {event_table(name)} ({', '.join(meta + cols)})")
        statements.append(
            f"create index if not exists {name}_record_idx on {event_table(name)} (record_id, extract_date, seq)"
        )
        # Quarantined rows keep every delivered value as text: a bad date cannot sit in a date column.
        qcols = [f"{c.name} varchar" for c in source.columns]
        statements.append(
            f"create table if not exists {quarantine_table(name)} (delivery_id varchar not null, "
            f"extract_date date not null, seq bigint not null, row_number bigint not null, rules varchar not null, "
            f"ingested_at timestamp not null, {', '.join(qcols)})"
        )
    statements.append(
        "create or replace view quarantine.rejected_deliveries as select ledger_id, file_name, source, extract_date, "
        "seq, delivery_id, reason, ingested_at from events.deliveries where status = 'rejected'"
    )
    for name in SOURCES:
        statements.append(
            f"create or replace view quarantine.{name}_open as select q.* from {quarantine_table(name)} q "
            f"where not exists (select 1 from quarantine.releases r where r.source = '{name}' "
            f"and r.record_id = q.record_id and r.quarantined_in = q.delivery_id)"
        )
    return statements


def latest_sql(source: str, until: str) -> str:
    """The latest event per record among events satisfying the predicate `until` (SQL text)."""
    return (
        f"select * from (select e.*, row_number() over (partition by record_id "
        f"order by extract_date desc, seq desc, applied_in desc) as version_rank "
        f"from {event_table(source)} e where {until}) ranked where version_rank = 1"
    )


def as_of_sql(source: str, as_of: str = ":as_of") -> str:
    """Every record in its latest version known on `as_of`, without retracted ones.

    Only the record's own columns: which delivery carried a version depends on the order
    deliveries arrived in, the state itself does not.
    """
    cols = ", ".join(SOURCES[source].column_names)
    retracted = ", ".join(f"'{r}'" for r in RETRACTIONS)
    return (
        f"select {cols} from ({latest_sql(source, f'extract_date <= {as_of}')}) latest "
        f"where event_type not in ({retracted})"
    )


def state_at_key_sql(source: str) -> str:
    """record_id and row_hash of the state just after delivery key (:d, :s), retractions excluded."""
    retracted = ", ".join(f"'{r}'" for r in RETRACTIONS)
    until = "(extract_date < :d or (extract_date = :d and seq <= :s))"
    return f"select record_id, row_hash from ({latest_sql(source, until)}) latest where event_type not in ({retracted})"


def as_of_functions(dialect: str) -> list[str]:
    """`events.<source>_as_of(date)`: the as-of state as a table function on both backends."""
    out = []
    for name, source in SOURCES.items():
        body = as_of_sql(name, "as_of_date")
        if dialect == "duckdb":
            out.append(f"create or replace macro events.{name}_as_of(as_of_date) as table {body}")
        else:
            cols = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in source.columns)
            out.append(
                f"create or replace function events.{name}_as_of(as_of_date date) returns table ({cols}) "
                f"language sql stable as $$ {body} $$"
            )
        out.append(f"create or replace view events.{name}_current as {as_of_sql(name, 'date ' + repr('9999-12-31'))}")
    return out
