"""The linkage's own state in the warehouse, so that a monthly run reads what the month touches.

`linkage.record_keys` holds one row per record the spine holds: its identity block as of the
latest run, its node, its person (the current spine) and the derived block keys (birth year,
month and day, day and month swapped); `present` is false for a record retracted since (kept so
that a record delivered again is not taken as new). Every run of the latest date maintains it:
the whole-population path rewrites it; the incremental path stores the new and changed records as
it reads them, then the persons of the records it wrote link events for.
`linkage.key_state` says which run left it in step with the spine (none: the next run takes the
whole-population path and rebuilds it).

The incremental read (`read_delta`, `candidate_nodes`, `close_over_persons`, `load_records`):

1. the identities of the records with events since the last run (the ledger id and date kept in
   `key_state`; the whole as-of state when a caller gives the records, or none is kept) go to a
   work table (`linkage.work_records`); compared column by column with `record_keys`, only the
   new and changed records come back (and the retracted ones are marked);
2. the new records' block keys (`linkage.work_new`) are joined with the stored keys, pass by pass
   (the spec's columns; blocks over `max_block` identities of the whole population left out, as
   the whole-population blocking leaves them): the candidate nodes;
3. those nodes, the nodes of new and changed records and of the records of pending review
   decisions are closed over persons (every record of their persons, every record of those
   records' nodes, until nothing is added) in `linkage.work_nodes`;
4. only those records are read into pandas, with their persons.

SQL is kept to what DuckDB and PostgreSQL both run; the indexes are PostgreSQL's (DuckDB joins by
hash and keeps ART indexes in memory: none are made there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.records import IDENTITY, add_birth_keys, node_names, true_persons
from linkage.schema import IDENTITY_COLS
from linkage.spec import Pass
from outcomes.contract import SOURCES

DERIVED = ["birth_year", "birth_month", "birth_day", "dob_swapped", "keyless_forename_token", "keyless_surname_token"]
KEYLESS = DERIVED[4:]
# Columns that make a record's identity (variant) within its node: records.VARIANT_KEY
VARIANT_COLS = ["node", "forename_token", "surname_token", "date_of_birth", "sex", "postcode_district"]
# The columns of a stored row any block key is made of (linkage.work_block_delta, keep_blocks)
BLOCK_DELTA_COLS = ["node", *IDENTITY, *DERIVED]

DDL = [
    f"""create table if not exists linkage.record_keys (
        source varchar not null, record_id varchar not null, node varchar not null, person_id varchar,
        present boolean not null, {IDENTITY_COLS}, birth_year integer, birth_month integer, birth_day integer,
        dob_swapped date, keyless_forename_token varchar, keyless_surname_token varchar)""",
    "create table if not exists linkage.key_state (run_id bigint not null, as_of date, ledger_id bigint)",
    # key_state from before the ledger id was kept: none (the next run compares the whole as-of state)
    "alter table linkage.key_state add column if not exists ledger_id bigint",
    "create table if not exists linkage.work_touched (source varchar not null, record_id varchar not null)",
    f"create table if not exists linkage.work_records (source varchar not null, record_id varchar not null, "
    f"{IDENTITY_COLS})",
    f"""create table if not exists linkage.work_new (
        source varchar not null, record_id varchar not null, node varchar not null, is_new boolean not null,
        {IDENTITY_COLS}, birth_year integer, birth_month integer, birth_day integer, dob_swapped date,
        keyless_forename_token varchar, keyless_surname_token varchar)""",
    "create table if not exists linkage.work_nodes (node varchar not null)",
    # the spec the kept blocking facts (block_variants, block_nodes, block_sizes) were made for
    "create table if not exists linkage.block_state (signature varchar not null)",
    # (tables made before the keyless keys)
    *(
        f"alter table linkage.{t} add column if not exists {c} varchar"
        for t in ("record_keys", "work_new")
        for c in KEYLESS
    ),
]
INDEXES = [  # PostgreSQL: the joins of the incremental read
    "create index if not exists record_keys_record on linkage.record_keys (source, record_id)",
    "create index if not exists record_keys_node on linkage.record_keys (node)",
    "create index if not exists record_keys_person on linkage.record_keys (person_id)",
    "create index if not exists record_keys_dob on linkage.record_keys (date_of_birth, surname_soundex_token)",
    "create index if not exists record_keys_names on linkage.record_keys (forename_token, surname_token)",
    "create index if not exists record_keys_district on linkage.record_keys "
    "(postcode_district, forename_initial, surname_soundex_token)",
    "create index if not exists work_records_record on linkage.work_records (source, record_id)",
]


def ensure(session, dialect: str) -> None:
    for statement in DDL:
        session.execute(statement)
    if dialect == "postgresql":
        for statement in INDEXES:
            session.execute(statement)


def with_keys(records: pd.DataFrame) -> pd.DataFrame:
    """Node and derived block keys of records (source, record_id and the identity block), as
    linkage.records.build_variants gives them to variants."""
    out = records[["source", "record_id", *IDENTITY]].copy()
    out["node"] = node_names(out)
    out["date_of_birth"] = pd.to_datetime(out["date_of_birth"])
    add_birth_keys(out)
    return out


def _arrow(frame: pd.DataFrame) -> pa.Table:
    t = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("date_of_birth", "dob_swapped"):
        if name in t.column_names:
            i = t.column_names.index(name)
            t = t.set_column(i, name, t[name].cast(pa.timestamp("us")).cast(pa.date32()))
    for name in ("birth_year", "birth_month", "birth_day"):
        if name in t.column_names:
            i = t.column_names.index(name)
            t = t.set_column(i, name, t[name].cast(pa.int32()))
    return t


SLICE = 100_000  # rows written at once: a slice's Arrow copy (about 50 MB of identities), not the population's


def insert(session, table: str, frame: pd.DataFrame, rows: int = SLICE) -> None:
    """Insert a frame in slices (dates as dates, the derived keys as integers)."""
    for start in range(0, len(frame), rows):
        session.insert(table, _arrow(frame.iloc[start : start + rows]))


def narrowed(session, table: str, alias: str, where: str) -> str:
    """A condition taking the rows of `table` (named `alias`) where `where` holds. On DuckDB by
    row id: `where` is evaluated over the columns it names alone, then only the rows it takes
    are read whole. (A month takes a few percent of the stored rows and of the events; joined
    directly, DuckDB reads and decompresses every column selected, the wide identity block with
    its Bloom filters, of every row before the join drops most of them.) Elsewhere `where`
    itself (PostgreSQL has its indexes)."""
    if not on_duckdb(session):
        return where
    return f"{alias}.rowid in (select {alias}.rowid from {table} {alias} where {where})"


def on_duckdb(session) -> bool:
    """Whether the session is DuckDB's (row ids), not PostgreSQL's."""
    from outcomes.eventstore.backend import DuckDBSession

    return isinstance(session, DuckDBSession)


READ_SHARE = 4  # a month's reads give DuckDB a quarter of the run's budget (`read_share`)
READ_FLOOR = 256 << 20


def read_share(budget: int) -> int:
    """DuckDB's memory limit while a month reads (bytes), for a run's budget of `budget` bytes:
    a quarter of it, at least 256 MiB, at most the half a run gives DuckDB otherwise. (An eighth
    failed at a million people: the grouped read of `read_identities` could not pin a block in
    256 MiB of a 2 GB budget; a quarter, 512 MiB, read it.)

    The month's SQL joins small work tables with scans of the stored tables (the event store,
    `record_keys`, the kept blocking facts): it needs little working memory, but DuckDB keeps
    every page it scanned in its buffer pool up to its limit, and those pages grow with the
    population (at 100,000 people under a 4 GB budget, about 360 MiB of the month's peak of
    about 900 MiB before any record came to pandas). Pages left out are read again from the
    file (the system's page cache) when a later query needs them. The write stage sets DuckDB's
    share again (`run.fit_duckdb`)."""
    return min(max(budget // READ_SHARE, READ_FLOOR), budget // 2)


def in_step(session, as_of) -> bool:
    """Whether `record_keys` is the spine of the latest run and this run is of that date or later."""
    state = session.fetch("select run_id, as_of from linkage.key_state").to_pylist()
    if len(state) != 1 or as_of is None:
        return False
    latest = session.fetch(
        "select run_id, as_of from linkage.runs where as_of = (select max(as_of) from linkage.runs) "
        "order by run_id desc limit 1"
    ).to_pylist()
    if not latest or latest[0]["run_id"] != state[0]["run_id"] or state[0]["as_of"] is None:
        return False
    return as_of >= state[0]["as_of"]


@dataclass
class Delta:
    changed: pd.DataFrame  # new and changed records: source, record_id, identity, node, keys, person_id, is_new
    retracted: int  # records of the spine no longer in the as-of state (marked absent)


def ledger_id(session) -> int:
    """The event store's latest ledger id (events.deliveries): what a run has read up to."""
    return int(session.scalar("select coalesce(max(ledger_id), 0) from events.deliveries"))


def since(session) -> tuple | None:
    """(as_of, ledger id) of the run that left `record_keys` in step, when it read the event store
    (None: it was given its records, or kept no ledger id; the next delta compares everything)."""
    rows = session.fetch("select as_of, ledger_id from linkage.key_state").to_pylist()
    if len(rows) != 1 or rows[0]["ledger_id"] is None or rows[0]["as_of"] is None:
        return None
    return rows[0]["as_of"], int(rows[0]["ledger_id"])


def read_delta(session, as_of, records: pd.DataFrame | None, after: tuple | None = None, part: bool = False) -> Delta:
    """The new and changed records of the as-of state (by SQL from the event store, or from
    `records`), upserted into `record_keys` (a changed record keeps its person; a new one has
    none yet); records retracted since are marked absent.

    With `after` (the last run's as-of date and ledger id, `since`) and no `records`, only the
    records with an event the last run did not see are read: applied after its ledger id, or dated
    after its date (and on or before this run's): their latest version as of this date, or their
    retraction. Events are appended, never rewritten, so the records without such an event are as
    the last run read them. Otherwise the whole as-of state is compared with `record_keys`.
    With `part`, `records` are a part of the as-of state (a partitioned first run's next partition,
    linkage.partitioned): the stored records they do not name are not retracted."""
    from outcomes.eventstore.schema import RETRACTIONS, as_of_sql, latest_sql

    cols = ", ".join(IDENTITY)
    session.execute("delete from linkage.work_records")
    session.execute("delete from linkage.work_touched")
    touched = records is None and after is not None
    if touched:
        retracted = ", ".join(f"'{r}'" for r in RETRACTIONS)
        for source in SOURCES:
            session.execute(
                f"insert into linkage.work_touched (source, record_id) select distinct '{source}', record_id "
                f"from events.{source} where extract_date <= :as_of "
                "and (applied_in > :ledger or extract_date > :since)",
                {"as_of": as_of, "ledger": after[1], "since": after[0]},
            )
            mine = narrowed(
                session,
                f"events.{source}",
                "e",
                "e.extract_date <= :as_of and e.record_id in "
                f"(select record_id from linkage.work_touched where source = '{source}')",
            )
            session.execute(
                f"insert into linkage.work_records (source, record_id, {cols}) "
                f"select '{source}', record_id, {cols} from ({latest_sql(source, mine)}) "
                f"latest where event_type not in ({retracted})",
                {"as_of": as_of},
            )
    elif records is None:
        for source in SOURCES:
            session.execute(
                f"insert into linkage.work_records (source, record_id, {cols}) "
                f"select '{source}', record_id, {cols} from ({as_of_sql(source)}) st",
                {"as_of": as_of},
            )
    else:
        insert(session, "linkage.work_records", records[["source", "record_id", *IDENTITY]])
        if part:  # a part of the as-of state: only its records' stored rows are compared
            session.execute(
                "insert into linkage.work_touched (source, record_id) select source, record_id "
                "from linkage.work_records"
            )
    # the stored rows compared: with only the touched records read (or a part given), their stored
    # rows alone, taken by one pass over `record_keys` (its wide identity columns read once, not by
    # each query below)
    stored = "linkage.record_keys"
    session.execute("drop table if exists linkage.work_stored")
    if touched or part:
        stored = "linkage.work_stored"
        session.execute(
            "create table linkage.work_stored as select k.* from linkage.record_keys k where "
            + narrowed(
                session,
                "linkage.record_keys",
                "k",
                "exists (select 1 from linkage.work_touched t where t.source = k.source and t.record_id = k.record_id)",
            )
        )
    same = " and ".join(f"not (w.{c} is distinct from k.{c})" for c in IDENTITY)
    changed = session.fetch(
        f"select w.source, w.record_id, {', '.join('w.' + c for c in IDENTITY)}, k.person_id, "
        "case when k.record_id is null then 1 else 0 end as is_new "
        f"from linkage.work_records w left join {stored} k on k.source = w.source "
        f"and k.record_id = w.record_id where k.record_id is null or not k.present or not ({same})"
    ).to_pandas()
    # gone: a present record not in the as-of state (of the records read, when only those touched
    # are: the stored rows taken are those records')
    within = "exists (select 1 from linkage.work_touched t where t.source = {k}.source and t.record_id = {k}.record_id)"
    gone = (
        "k.present and not exists (select 1 from linkage.work_records w "
        "where w.source = k.source and w.record_id = k.record_id)"
    )
    retracted = 0 if part else int(session.scalar(f"select count(*) from {stored} k where {gone}"))
    # the month's changes to the present rows, for the kept blocking facts (keep_blocks)
    # (the key columns only: added rows come from work_new, removed ones from record_keys)
    kc = ", ".join(f"k.{c}" for c in BLOCK_DELTA_COLS)
    session.execute("drop table if exists linkage.work_block_delta")
    session.execute(
        f"create table linkage.work_block_delta as select {kc}, cast(0 as integer) as d "
        "from linkage.record_keys k where 1 = 0"
    )
    if retracted:
        session.execute(f"insert into linkage.work_block_delta select {kc}, -1 from {stored} k where {gone}")
        session.execute(
            "update linkage.record_keys set present = false where present and not exists "
            "(select 1 from linkage.work_records w where w.source = linkage.record_keys.source "
            "and w.record_id = linkage.record_keys.record_id)"
            + (" and " + within.format(k="linkage.record_keys") if touched else "")
        )
    session.execute("delete from linkage.work_records")
    session.execute("delete from linkage.work_touched")
    keyed = with_keys(changed)
    keyed["person_id"] = changed["person_id"].to_numpy()
    keyed["is_new"] = changed["is_new"].to_numpy().astype(bool)
    session.execute("delete from linkage.work_new")
    insert(session, "linkage.work_new", keyed.drop(columns="person_id"))
    if not keyed["is_new"].all():  # the stored version of changed records (re-delivered ones are absent)
        session.execute(
            f"insert into linkage.work_block_delta select {kc}, -1 from {stored} k where k.present "
            "and exists (select 1 from linkage.work_new n where not n.is_new and n.source = k.source "
            "and n.record_id = k.record_id)"
        )
    if len(keyed) and not keyed["is_new"].all():  # new records have no stored row to replace
        session.execute(
            "delete from linkage.record_keys where exists (select 1 from linkage.work_new n "
            "where n.source = linkage.record_keys.source and n.record_id = linkage.record_keys.record_id)"
        )
    insert(session, "linkage.record_keys", keyed.drop(columns="is_new").assign(present=True))
    session.execute(f"insert into linkage.work_block_delta select {kc}, 1 from linkage.work_new k")
    session.execute("drop table if exists linkage.work_stored")
    return Delta(keyed, retracted)


@dataclass
class Blocks:
    """What the whole-population blocking would know, computed by SQL over the stored keys."""

    oversized: dict  # pass name -> (frame of the oversized blocks' keys, number of oversized blocks)
    comparable: int  # pairs involving a new identity that blocking could have proposed
    variants: int  # identities (variants) of the as-of state
    # set by `score_first`: the blocking figures and candidate pairs of the whole population's
    # blocking (the run's own blocking, over the persons read whole, finds only those scored)
    stats: list | None = None
    candidate_pairs: int | None = None
    # set by `score_first`: the pairs it kept (at or above the review level) as their two
    # identities' variant keys (`VARIANT_COLS`), for the run's own variants (`scored_pairs`)
    scored: pd.DataFrame | None = None


def block_facts_whole(session, spec) -> Blocks:
    """Oversized blocks per symmetric pass (over every present identity) and the comparable
    pairs involving a new identity (blocking.comparable_pairs), by SQL over one table of the
    present identities (`linkage.work_variants`, made once per run): the whole computation, which
    `block_facts` gives from the kept tables."""
    keys = _variant_keys(spec)
    session.execute("drop table if exists linkage.work_variants")
    session.execute(
        f"create table linkage.work_variants as select {', '.join('k.' + c for c in keys)}, "
        "max(case when n.record_id is null then 0 else 1 end) as fresh "
        "from linkage.record_keys k left join linkage.work_new n on n.source = k.source "
        f"and n.record_id = k.record_id and n.is_new where k.present group by {', '.join('k.' + c for c in keys)}"
    )
    oversized = {}
    for p in spec.passes:
        if not p.symmetric:
            oversized[p.name] = (None, 0)
            continue
        notnull = " and ".join(f"{c} is not null" for c in p.on)
        named = ", ".join(f"{c} as b{i}" for i, c in enumerate(p.on))
        out = ", ".join(f"b{i}" for i in range(len(p.on)))
        big = session.fetch(
            f"select {out} from (select {named} from linkage.work_variants where {notnull}) v "
            f"group by {out} having count(*) > :m",
            {"m": spec.max_block},
        ).to_pandas()
        oversized[p.name] = (big, len(big))
    counts = session.fetch(
        "select sum(k_all) as n_all, sum(k_all * (k_all - 1) / 2) as in_all, sum(k_old) as n_old, "
        "sum(k_old * (k_old - 1) / 2) as in_old from (select node, count(*) as k_all, sum(1 - fresh) as k_old "
        "from linkage.work_variants group by node) per"
    ).to_pylist()[0]
    session.execute("drop table if exists linkage.work_variants")
    n_all, in_all = int(counts["n_all"] or 0), int(counts["in_all"] or 0)
    n_old, in_old = int(counts["n_old"] or 0), int(counts["in_old"] or 0)
    total = n_all * (n_all - 1) // 2 - in_all
    old = n_old * (n_old - 1) // 2 - in_old
    return Blocks(oversized, max(total - old, 1), n_all)


def _variant_keys(spec) -> list[str]:
    """The columns of an identity (variant) with every pass's block key columns."""
    return list(dict.fromkeys([*VARIANT_COLS, *(c for p in spec.passes for c in p.columns)]))


def _size_cols(spec) -> list[str]:
    return list(dict.fromkeys(c for p in spec.passes if p.symmetric for c in p.on))


def _signature(spec) -> str:
    """What the kept blocking tables are keyed by: a spec whose passes differ rebuilds them."""
    passes = ";".join(f"{p.name}:{','.join(p.on)}" for p in spec.passes if p.symmetric)
    return "|".join(_variant_keys(spec)) + ";" + passes


def rebuild_blocks(session, spec) -> None:
    """The kept blocking facts from every present row of `record_keys` (the whole-population
    path, or kept tables missing or made for another spec): `linkage.block_variants` (present
    records per identity), `linkage.block_nodes` (identities per node), `linkage.block_sizes`
    (identities per block key of each symmetric pass) and `linkage.block_state` (their spec)."""
    keys, cols = _variant_keys(spec), _size_cols(spec)
    k = ", ".join(keys)
    for t in ("block_variants", "block_nodes", "block_sizes"):
        session.execute(f"drop table if exists linkage.{t}")
    session.execute("delete from linkage.block_state")
    session.execute(
        f"create table linkage.block_variants as select {k}, count(*) as records "
        f"from linkage.record_keys where present group by {k}"
    )
    session.execute(
        "create table linkage.block_nodes as select node, count(*) as variants "
        "from linkage.block_variants group by node"
    )
    session.execute(
        f"create table linkage.block_sizes as select cast('' as varchar) as pass_name, {', '.join(cols)}, "
        "cast(0 as bigint) as identities from linkage.record_keys where 1 = 0"
    )
    for p in spec.passes:
        if p.symmetric:
            on, notnull = ", ".join(p.on), " and ".join(f"{c} is not null" for c in p.on)
            session.execute(
                f"insert into linkage.block_sizes (pass_name, {on}, identities) select :name, {on}, count(*) "
                f"from linkage.block_variants where {notnull} group by {on}",
                {"name": p.name},
            )
    session.execute("insert into linkage.block_state (signature) values (:s)", {"s": _signature(spec)})


def _blocks_kept(session, spec) -> bool:
    rows = session.fetch("select signature from linkage.block_state").to_pylist()
    return len(rows) == 1 and rows[0]["signature"] == _signature(spec)


def _merge_counts(session, table: str, keys: list[str], count: str, delta: str, fixed=None) -> None:
    """Add `delta` (a query of keys and d) to `table`'s `count` per key (null keys equal), rows
    left at 0 removed. `fixed`: the rows of one pass in block_sizes (its name). The delta is
    taken once (`linkage.work_merge_delta`); the kept rows it names are found by one join, then
    deleted by their row ids on DuckDB (not joined again on every key)."""
    match = " and ".join(f"t.{c} is not distinct from x.{c}" for c in keys)
    k = ", ".join(keys)
    mine = f"t.pass_name = '{fixed}' and " if fixed else ""
    rowid = on_duckdb(session)
    for t in ("work_merge", "work_merge_delta", "work_merge_old"):
        session.execute(f"drop table if exists linkage.{t}")
    session.execute(f"create table linkage.work_merge_delta as {delta}")
    ids = "t.rowid as id, " if rowid else ""
    session.execute(
        f"create table linkage.work_merge_old as select {ids}{', '.join('t.' + c for c in keys)}, t.{count} as n "
        f"from linkage.{table} t where {mine}exists (select 1 from linkage.work_merge_delta x where {match})"
    )
    session.execute(
        f"create table linkage.work_merge as select {k}, sum(n) as n from (select {k}, n from linkage.work_merge_old "
        f"union all select {k}, d as n from linkage.work_merge_delta) u group by {k}"
    )
    if rowid:
        session.execute(f"delete from linkage.{table} where rowid in (select id from linkage.work_merge_old)")
    else:
        session.execute(
            f"delete from linkage.{table} t where {mine}exists (select 1 from linkage.work_merge x where {match})"
        )
    lead = "pass_name, " if fixed else ""
    value = f"'{fixed}', " if fixed else ""
    session.execute(
        f"insert into linkage.{table} ({lead}{k}, {count}) select {value}{k}, n from linkage.work_merge where n <> 0"
    )
    for t in ("work_merge", "work_merge_delta", "work_merge_old"):
        session.execute(f"drop table if exists linkage.{t}")


def keep_blocks(session, spec) -> None:
    """Bring the kept blocking facts in step with `record_keys` after `read_delta`: its added and
    removed rows (`linkage.work_block_delta`) change the records per identity; identities that
    appear or vanish change their node's count and their blocks' sizes. Only the month's rows and
    the kept rows they name are read. Rebuilt whole when not kept (or kept for another spec)."""
    if not _blocks_kept(session, spec):
        rebuild_blocks(session, spec)
        session.execute("drop table if exists linkage.work_block_delta")
        return
    keys = _variant_keys(spec)
    k = ", ".join(keys)
    match = " and ".join(f"v.{c} is not distinct from w.{c}" for c in keys)
    session.execute("drop table if exists linkage.work_block_change")
    session.execute(
        f"create table linkage.work_block_change as select {', '.join('w.' + c for c in keys)}, "
        "case when coalesce(v.records, 0) = 0 then 1 when coalesce(v.records, 0) + w.d = 0 then -1 else 0 end as d "
        f"from (select {k}, sum(d) as d from linkage.work_block_delta group by {k}) w "
        f"left join linkage.block_variants v on {match} where w.d <> 0"
    )
    _merge_counts(
        session,
        "block_variants",
        keys,
        "records",
        f"select {k}, sum(d) as d from linkage.work_block_delta group by {k}",
    )
    _merge_counts(
        session,
        "block_nodes",
        ["node"],
        "variants",
        "select node, sum(d) as d from linkage.work_block_change where d <> 0 group by node",
    )
    for p in spec.passes:
        if p.symmetric:
            on, notnull = ", ".join(p.on), " and ".join(f"{c} is not null" for c in p.on)
            _merge_counts(
                session,
                "block_sizes",
                list(p.on),
                "identities",
                f"select {on}, sum(d) as d from linkage.work_block_change where d <> 0 and {notnull} group by {on}",
                fixed=p.name,
            )
    session.execute("drop table if exists linkage.work_block_change")
    session.execute("drop table if exists linkage.work_block_delta")


def block_facts(session, spec) -> Blocks:
    """`block_facts_whole`'s figures from the kept tables (`keep_blocks`): the oversized blocks of
    each symmetric pass are its kept block sizes over `max_block`; the comparable pairs count from
    the identities per node, and the new identities (`linkage.work_new`) per node. Without kept
    tables for this spec, the whole computation."""
    if not _blocks_kept(session, spec):
        return block_facts_whole(session, spec)
    oversized = {}
    for p in spec.passes:
        if not p.symmetric:
            oversized[p.name] = (None, 0)
            continue
        out = ", ".join(f"{c} as b{i}" for i, c in enumerate(p.on))
        big = session.fetch(
            f"select {out} from linkage.block_sizes where pass_name = :name and identities > :m",
            {"name": p.name, "m": spec.max_block},
        ).to_pandas()
        oversized[p.name] = (big, len(big))
    keys = ", ".join(_variant_keys(spec))
    whole = session.fetch(
        "select sum(variants) as n, sum(cast(variants as bigint) * variants) as sq from linkage.block_nodes"
    ).to_pylist()[0]
    n_all, sq_all = int(whole["n"] or 0), int(whole["sq"] or 0)
    fresh = session.fetch(
        "select f.node, f.f, b.variants as k from (select node, count(*) as f from "
        f"(select distinct {keys} from linkage.work_new where is_new) u group by node) f "
        "join linkage.block_nodes b on b.node = f.node"
    ).to_pandas()
    f = fresh["f"].to_numpy().astype(object)
    kk = fresh["k"].to_numpy().astype(object)
    in_all = (sq_all - n_all) // 2
    n_old = n_all - int(f.sum())
    in_old = in_all - int(sum(k * (k - 1) // 2 - (k - g) * (k - g - 1) // 2 for k, g in zip(kk, f, strict=True)))
    total = n_all * (n_all - 1) // 2 - in_all
    old = n_old * (n_old - 1) // 2 - in_old
    return Blocks(oversized, max(total - old, 1), n_all)


def candidate_nodes(session, spec, blocks: Blocks) -> int:
    """Nodes of the stored identities that block with a new record in some pass (blocks too large
    for the whole population left out), with the nodes of new and changed records, into
    `linkage.work_nodes`; how many. The identities themselves (their variant keys, `VARIANT_COLS`)
    go to `linkage.work_match`, with those of the new records: every candidate pair of the whole
    population's blocking is between two of them (`read_identities(matched=True)`)."""
    session.execute("delete from linkage.work_nodes")
    session.execute("insert into linkage.work_nodes (node) select distinct node from linkage.work_new")
    vc = ", ".join(VARIANT_COLS)
    session.execute("drop table if exists linkage.work_match")
    session.execute(f"create table linkage.work_match as select distinct {vc} from linkage.work_new where is_new")
    # the stored side: the kept identities (`block_variants`: a row per present identity, its node
    # and every pass's keys; a third of the rows of `record_keys`, none of its other columns), as
    # `keep_blocks` leaves them in step; else every present row of `record_keys`
    kept = _blocks_kept(session, spec)
    stored, present = ("linkage.block_variants k", "") if kept else ("linkage.record_keys k", " and k.present")
    # (a pass keyed differently on its two sides, both ways round: a new record on either side)
    # In SQL: the stored identities found (most of a million people's month) never come to pandas;
    # the blocks too large for the whole population (`blocks.oversized`, few) go to a work table.
    ks = ", ".join("k." + c for c in VARIANT_COLS)
    # On DuckDB each pass keeps the stored rows' row ids (one integer a row found, made distinct
    # cheaply), and the identities are taken once at the end, by row id: a pass's join gives a
    # row per (new record, stored identity) sharing its key, and its distinct over six strings
    # cost more than the join. Elsewhere each pass keeps the identities themselves.
    by_rowid = on_duckdb(session)
    if by_rowid:
        session.execute("drop table if exists linkage.work_match_rows")
        session.execute("create table linkage.work_match_rows (id bigint not null)")
    for p in [*spec.passes, *(Pass(q.name, q.right_on, q.on) for q in spec.passes if not q.symmetric)]:
        right = list(p.right_on or p.on)
        on = " and ".join(f"n.{a} = k.{b}" for a, b in zip(p.on, right, strict=True))
        big, _ = blocks.oversized[p.name]
        skip = ""
        session.execute("drop table if exists linkage.work_big")
        if big is not None and len(big):
            named = ", ".join(f"{c} as c{i}" for i, c in enumerate(right))
            session.execute(f"create table linkage.work_big as select {named} from linkage.record_keys where 1 = 0")
            big = big.set_axis([f"c{i}" for i in range(len(right))], axis=1)
            session.insert("linkage.work_big", pa.Table.from_pandas(big, preserve_index=False))
            held = " and ".join(f"b.c{i} = k.{c}" for i, c in enumerate(right))
            skip = f" and not exists (select 1 from linkage.work_big b where {held})"
        # (a pair is of two nodes: an identity of the new record's own node makes none with it)
        into, what = ("work_match_rows", "k.rowid") if by_rowid else ("work_match", ks)
        session.execute(
            f"insert into linkage.{into} select distinct {what} from linkage.work_new n "
            f"join {stored} on {on} where n.is_new and k.node <> n.node{present}{skip}"
        )
        session.execute("drop table if exists linkage.work_big")
    if by_rowid:
        session.execute(
            f"insert into linkage.work_match select distinct {ks} from {stored} "
            "where k.rowid in (select id from linkage.work_match_rows)"
        )
        session.execute("drop table if exists linkage.work_match_rows")
    session.execute("insert into linkage.work_nodes (node) select distinct node from linkage.work_match")
    return _dedupe_nodes(session)


@dataclass
class Prescored:
    """What `score_first` read and kept."""

    identities: int  # identity rows (variants) read into pandas
    records: int  # the present records those identities stand for
    pairs: int  # candidate pairs (those of the whole population's blocking involving a new identity)
    scored: int  # of them, at or above the review level
    nodes: int  # nodes read whole next: of new and changed records, and of a pair scored


def read_identities(session, matched: bool = False) -> pd.DataFrame:
    """The identities (variants) of the present records of the nodes in `work_nodes`, one row a
    variant, as `records.build_variants` makes them of those records: the variant's key, the
    values of its first record (by record id) and its block keys; `record_id` its first record,
    `records` how many it holds, `is_new` whether one of them has no person yet (a new record).
    Grouped in the warehouse: a row a distinct identity comes to pandas, not a row a record.

    `matched`: only the identities `candidate_nodes` found blocking with a new record, and the
    new records' own (`linkage.work_match`), not every identity of their nodes."""
    from linkage.records import VARIANT_COLUMNS, VARIANT_KEY, first_rows, group_numbers

    cols = list(dict.fromkeys(["source", *VARIANT_KEY, *VARIANT_COLUMNS]))
    sel = ", ".join(f"k.{c}" for c in cols)
    if matched:
        same = " and ".join(f"m.{c} is not distinct from k.{c}" for c in VARIANT_COLS if c != "node")
        within = f"exists (select 1 from linkage.work_match m where m.node = k.node and {same})"
    else:
        within = "exists (select 1 from linkage.work_nodes w where w.node = k.node)"
    within = narrowed(session, "linkage.record_keys", "k", f"k.present and {within}")
    frame = session.fetch(
        f"select {sel}, min(k.record_id) as record_id, count(*) as records, "
        "max(case when k.person_id is null then 1 else 0 end) as is_new from linkage.record_keys k "
        f"where {within} group by {sel}"
    ).to_pandas()
    # a variant is its key (`VARIANT_KEY`): the other columns are its first record's, as
    # build_variants takes them (they follow from the tokens; where they differ within a key, the
    # rows are folded into one, the first record's values kept)
    frame = frame.iloc[np.argsort(frame["record_id"].to_numpy(dtype=object), kind="stable")]
    frame = frame.reset_index(drop=True)
    group = group_numbers(frame, VARIANT_KEY)
    first = first_rows(group)
    records = np.bincount(group, weights=frame["records"].to_numpy(), minlength=len(first)).astype(np.int64)
    fresh = np.zeros(len(first), dtype=np.int64)
    np.maximum.at(fresh, group, frame["is_new"].to_numpy().astype(np.int64))
    variants = frame.iloc[first].reset_index(drop=True)
    variants["records"] = records
    variants["is_new"] = fresh.astype(bool)
    variants["date_of_birth"] = pd.to_datetime(variants["date_of_birth"])
    add_birth_keys(variants)
    variants.index.name = "variant"
    return variants


def score_first(session, spec, model, blocks: Blocks, truth=None) -> Prescored:
    """Block and score the new records against the identities of the nodes in `work_nodes` (the
    candidate nodes, those of new and changed records, and any others added), before any record
    is read whole; then leave in `work_nodes` only the nodes of new and changed records and those
    holding an identity of a pair scored at or above the review level.

    Every pair the whole population's blocking proposes with a new identity is between a new
    identity and one of the candidate nodes (`candidate_nodes`), so these are its candidate
    pairs, with its blocking figures (`blocks.stats`, `blocks.candidate_pairs`: pair completeness
    too, with `truth`). A pair scored below the review level decides nothing (`engine.score_chunk`
    keeps none; `cluster.decide` reads none), so a node with none of its own is read whole only
    where the persons it shares a record with are (`close_over_persons`). The scores depend on
    the two identities and the stored model only (its term frequencies and aliases), so the run
    scores the same pairs again over the persons read whole, and decides as if it held them all."""
    from linkage.blocking import candidate_pairs
    from linkage.compare import Comparer
    from linkage.engine import score_pairs

    # without the truth, the identities that block with a new one (the pairs and their figures
    # are the same: a pair is of two identities sharing a block key); with it, every identity of
    # the nodes read, for the true pairs the figures count (`add_truth_nodes`)
    variants = read_identities(session, matched=truth is None)
    session.execute("drop table if exists linkage.work_match")
    new = pd.Index(np.flatnonzero(variants["is_new"].to_numpy()))
    if not len(new):  # no pair to score (a run for pending review decisions): the nodes as they are
        return Prescored(len(variants), int(variants["records"].sum()), 0, 0, _dedupe_nodes(session))
    label = None
    if truth is not None:  # each identity's true person: that of its first record (run._truth_labels)
        named = true_persons(truth, keys=variants[["source", "record_id"]]).drop_duplicates(["source", "record_id"])
        person = variants[["source", "record_id"]].merge(named, how="left")["person_id"]
        label = pd.factorize(person)[0].astype(np.int64)  # -1: not named
    comparer = Comparer(variants, spec, model.alias_sets())
    pairs, stats = candidate_pairs(variants, spec, new, label, oversized=blocks.oversized, comparable=blocks.comparable)
    scored, _ = score_pairs(variants, pairs, spec, comparer, model)
    blocks.stats, blocks.candidate_pairs = stats, len(pairs)
    keys = variants[VARIANT_COLS]
    blocks.scored = pd.concat(
        [
            keys.take(scored["a"].to_numpy()).reset_index(drop=True).add_prefix("a_"),
            keys.take(scored["b"].to_numpy()).reset_index(drop=True).add_prefix("b_"),
        ],
        axis=1,
    )
    node = variants["node"].to_numpy()
    kept = pd.unique(np.concatenate([node[scored["a"].to_numpy()], node[scored["b"].to_numpy()]]))
    session.execute("delete from linkage.work_nodes")
    session.execute("insert into linkage.work_nodes (node) select distinct node from linkage.work_new")
    if len(kept):
        session.insert("linkage.work_nodes", pa.Table.from_pandas(pd.DataFrame({"node": kept}), preserve_index=False))
    n = _dedupe_nodes(session)
    return Prescored(len(variants), int(variants["records"].sum()), len(pairs), len(scored), n)


def scored_pairs(variants: pd.DataFrame, blocks: Blocks) -> pd.DataFrame | None:
    """The candidate pairs the run's blocking would give over `variants` (the identities of the
    records read whole) that its scoring keeps: those `score_first` kept, found by their two
    identities' variant keys, as positions `a` < `b` in `variants`, in the order
    `blocking.candidate_pairs` gives them. None where `score_first` kept none to give, or an
    identity is not among `variants` (then the run blocks as before).

    Every candidate pair of the whole population's blocking that holds a new identity was
    scored first, and the nodes of those it kept are read whole: over `variants` the run's
    blocking finds the same pairs, and its scoring, from the same identities and model, keeps
    the same ones with the same weights. So only those go to scoring, in the blocking's order
    (`engine.node_pairs` keeps the first of pairs alike in weight and nodes)."""
    from linkage.records import group_numbers

    if blocks.scored is None:
        return None
    n, m = len(variants), len(blocks.scored)
    # the variants' keys and the pairs' two sides numbered together (a key a variant: `variants`
    # are grouped by it), each side's identity found by its number
    both = pd.concat(
        [
            variants[VARIANT_COLS].reset_index(drop=True),
            *(blocks.scored[[f"{x}_{c}" for c in VARIANT_COLS]].set_axis(VARIANT_COLS, axis=1) for x in ("a", "b")),
        ],
        ignore_index=True,
    )
    group = group_numbers(both, VARIANT_COLS)
    position = np.full(int(group.max()) + 1 if len(group) else 0, -1, dtype=np.int64)
    position[group[:n]] = np.arange(n, dtype=np.int64)
    at = position[group[n:]]
    if (at < 0).any():
        return None
    a, b = np.minimum(at[:m], at[m:]), np.maximum(at[:m], at[m:])
    key = np.unique((a << 32) | b)
    return pd.DataFrame({"a": key >> 32, "b": key & ((1 << 32) - 1)})


def _dedupe_nodes(session) -> int:
    nodes = session.fetch("select distinct node from linkage.work_nodes").to_pandas()
    session.execute("delete from linkage.work_nodes")
    session.insert("linkage.work_nodes", pa.Table.from_pandas(nodes, preserve_index=False))
    return len(nodes)


def add_review_nodes(session, pending: pd.DataFrame) -> None:
    """The nodes of the records named by review decisions not applied yet (a match joins their
    persons, a non-match may part one)."""
    if pending.empty:
        return
    sides = pd.concat(
        [
            pending[["left_source", "left_record_id"]].set_axis(["source", "record_id"], axis=1),
            pending[["right_source", "right_record_id"]].set_axis(["source", "record_id"], axis=1),
        ],
        ignore_index=True,
    )
    add_record_nodes(session, sides)


def add_truth_nodes(session, truth, new: pd.DataFrame) -> None:
    """With ground truth, the nodes of every record of the true persons of the new records, so
    that pair completeness counts the true pairs of the whole population (reading more persons
    whole changes no decision: the whole path reads them all)."""
    mine = true_persons(truth, keys=new)["person_id"]
    add_record_nodes(session, true_persons(truth, persons=set(mine))[["source", "record_id"]])


def add_record_nodes(session, records: pd.DataFrame) -> None:
    """Add to `work_nodes` the nodes of these records (source, record_id) that are present."""
    records = records[["source", "record_id"]].drop_duplicates()
    if records.empty:
        return
    session.execute("delete from linkage.work_records")
    session.insert("linkage.work_records", pa.Table.from_pandas(records, preserve_index=False))
    session.execute(
        "insert into linkage.work_nodes (node) select distinct k.node from linkage.record_keys k "
        "join linkage.work_records w on w.source = k.source and w.record_id = k.record_id where k.present"
    )
    session.execute("delete from linkage.work_records")


def close_over_persons(session) -> int:
    """Add to `work_nodes` every node holding a record of a person some node there holds a record
    of, until nothing is added; the number of nodes.

    By persons and nodes in turn, each time only from what the last step added: the persons of
    the records of the nodes added last (`linkage.work_frontier`) not seen yet
    (`linkage.work_persons`), then the nodes of those persons' records not held yet. Each step
    is one pass over `record_keys` giving distinct values; joining nodes to persons to nodes in
    one query would make a row for every pair of records of a person first."""
    n = _dedupe_nodes(session)
    for table, col in (("work_persons", "person_id"), ("work_frontier", "node"), ("work_found", "person_id")):
        session.execute(f"drop table if exists linkage.{table}")
        session.execute(f"create table linkage.{table} ({col} varchar not null)")
    session.execute("insert into linkage.work_frontier (node) select node from linkage.work_nodes")
    while True:
        session.execute("delete from linkage.work_found")
        session.execute(
            "insert into linkage.work_found (person_id) select distinct k.person_id from linkage.record_keys k "
            "where k.present and k.person_id is not null "
            "and exists (select 1 from linkage.work_frontier f where f.node = k.node) "
            "and not exists (select 1 from linkage.work_persons p where p.person_id = k.person_id)"
        )
        if not int(session.scalar("select count(*) from linkage.work_found")):
            break
        session.execute("insert into linkage.work_persons (person_id) select person_id from linkage.work_found")
        session.execute("delete from linkage.work_frontier")
        session.execute(
            "insert into linkage.work_frontier (node) select distinct k.node from linkage.record_keys k "
            "where k.present and exists (select 1 from linkage.work_found f where f.person_id = k.person_id) "
            "and not exists (select 1 from linkage.work_nodes w where w.node = k.node)"
        )
        added = int(session.scalar("select count(*) from linkage.work_frontier"))
        if not added:
            break
        session.execute("insert into linkage.work_nodes (node) select node from linkage.work_frontier")
        n += added
    for table in ("work_persons", "work_frontier", "work_found"):
        session.execute(f"drop table if exists linkage.{table}")
    return n


def load_records(session) -> pd.DataFrame:
    """The present records of the nodes in `work_nodes`: source, record_id, identity, person_id,
    in the order load_records gives (by source, then record id)."""
    cols = ", ".join(f"k.{c}" for c in ["source", "record_id", *IDENTITY, "person_id"])
    within = "k.present and exists (select 1 from linkage.work_nodes w where w.node = k.node)"
    r = session.fetch(
        f"select {cols} from linkage.record_keys k where {narrowed(session, 'linkage.record_keys', 'k', within)}"
    ).to_pandas()
    # their keys kept (`linkage.work_read`) for `record_dates`: from the rows read, not another pass
    # over `record_keys`
    session.execute("drop table if exists linkage.work_read")
    session.execute("create table linkage.work_read (source varchar not null, record_id varchar not null)")
    session.insert("linkage.work_read", pa.Table.from_pandas(r[["source", "record_id"]], preserve_index=False))
    # by source (in SOURCES' order), then record id as Python compares them (what sorting an object
    # column gives): positions sorted source by source, then one copy of the rows in that order
    # (not a copy for each of a sort key added, the sort, the key dropped and the index reset)
    source = r["source"].to_numpy(dtype=object)
    record = r["record_id"].to_numpy(dtype=object)
    parts = []
    for at in [*(np.flatnonzero(source == name) for name in SOURCES), np.flatnonzero(~np.isin(source, list(SOURCES)))]:
        parts.append(at[np.argsort(record[at], kind="stable")])
    r = r.take(np.concatenate(parts))
    r.index = pd.RangeIndex(len(r))
    r["date_of_birth"] = pd.to_datetime(r["date_of_birth"])
    return r


def record_dates(session, as_of) -> pd.DataFrame:
    """source, record_id, record_date of the records `load_records` read (`linkage.work_read`),
    from the event store's state on `as_of` (`records.RECORD_DATE`: linkage.cluster's persons in
    time, as the whole path reads them): only those records' events are ranked, and read whole
    (`narrowed`), not the whole store."""
    from linkage.records import RECORD_DATE
    from outcomes.eventstore.schema import latest_sql

    frames = []
    for source, column in RECORD_DATE.items():
        # the record filter inside the ranking: neither DuckDB nor PostgreSQL pushes it below a window
        mine = (
            "e.extract_date <= :as_of and e.record_id in "
            "(select record_id from linkage.work_read where source = :source)"
        )
        until = narrowed(session, f"events.{source}", "e", mine)
        sql = f"select record_id, {column} as record_date from ({latest_sql(source, until)}) latest"
        df = session.fetch(sql, {"as_of": as_of, "source": source}).to_pandas()
        df.insert(0, "source", source)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["record_date"] = pd.to_datetime(out["record_date"])
    return out


def write(
    session,
    r: pd.DataFrame,
    run_id: int,
    as_of,
    whole: bool,
    ledger: int | None = None,
    moved: pd.DataFrame | None = None,
    spec=None,
    rebuild: bool = True,
    expand: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> None:
    """Leave `record_keys` as the spine this run made and mark it in step with this run, and with
    the event store's ledger up to `ledger` (None: the run was given its records).

    `whole`: every record it held (`r`: source, record_id, identity, person_id), and the spine's
    retracted records, absent. Otherwise only the persons of the records it wrote link events for
    (`moved`: source, record_id, person_id): the read stored every new and changed record's
    identity and keys already (`read_delta`), and a record without an event keeps its person.
    The whole path rebuilds the kept blocking facts (`rebuild_blocks`; `spec`, the linkage's by
    default), unless `rebuild` is False: then the caller does, in the same transaction (link()
    frees the run's records first). `r` may hold other columns; it is read in slices, never copied
    whole; `expand` gives each slice its identity block where `r` holds it elsewhere (link():
    records.identity_rows)."""
    if spec is None:
        from linkage.spec import IDENTITY as spec
    if whole:
        session.execute("delete from linkage.record_keys")
    else:
        m = moved[["source", "record_id", "person_id"]].drop_duplicates(["source", "record_id"], keep="last")
        session.execute("drop table if exists linkage.work_moves")
        session.execute(
            "create table linkage.work_moves (source varchar not null, record_id varchar not null, "
            "person_id varchar not null)"
        )
        session.insert("linkage.work_moves", pa.Table.from_pandas(m, preserve_index=False))
        session.execute(
            "update linkage.record_keys set person_id = m.person_id from linkage.work_moves m "
            "where m.source = linkage.record_keys.source and m.record_id = linkage.record_keys.record_id"
        )
        session.execute("drop table if exists linkage.work_moves")
        r = r.iloc[:0]
    for start in range(0, len(r), SLICE):  # slices: the whole population's keys are never copied at once
        part = r.iloc[start : start + SLICE]
        if expand is not None:
            part = expand(part)
        keyed = with_keys(part)
        keyed["person_id"] = part["person_id"].to_numpy()
        keyed["present"] = True
        insert(session, "linkage.record_keys", keyed)
    if whole:
        session.execute(
            "insert into linkage.record_keys (source, record_id, node, person_id, present) "
            "select p.source, p.record_id, '', p.person_id, false from linkage.person_records p "
            "where not exists (select 1 from linkage.record_keys k where k.source = p.source "
            "and k.record_id = p.record_id)"
        )
    if whole and rebuild:
        rebuild_blocks(session, spec)
    for table in ("work_new", "work_nodes"):
        session.execute(f"delete from linkage.{table}")
    session.execute("drop table if exists linkage.work_read")
    session.execute("delete from linkage.key_state")
    session.insert(
        "linkage.key_state",
        pa.table(
            {
                "run_id": [run_id],
                "as_of": pa.array([as_of], pa.date32()),
                "ledger_id": pa.array([ledger], pa.int64()),
            }
        ),
    )
