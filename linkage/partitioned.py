"""A first run partition by partition, within its memory budget (issue 14).

A first run reads every record, blocks and scores them together: its peak grows with the records
(about `ONE_PASS_BYTES` a record beside `FIXED` and DuckDB's half of the budget, docs/scale.md), so
at two million people it would not fit a laptop's budget. When the estimate exceeds the budget,
the first run is made as a sequence of runs of the same knowledge date: the first partition as a
first run (it trains the model), each further partition through the monthly path
(linkage.incremental) as if it were a delivery: only its records and the stored candidate nodes
that block with them are read, scored in bounded chunks, and only the persons they touch are
clustered again; where a partition's record joins persons of earlier partitions, the move is
recorded as a link event (an assignment to the earlier person, or a merge), as a month records it.
Every run is as of the same date, so the spine as of that date is the last run's and no spine as
of an earlier date changes.

The partitions: records by their month of birth, `(year * 12 + month) mod k` (no date of birth:
the first partition). Most blocking passes key on the date of birth, and two of the others on its
year and month: a person's records mostly fall into one partition, so a further partition's
candidate nodes are mostly those of persons with a changed or mistyped date of birth, and every
partition is a sample of the whole population for the EM estimates the first one makes (its
aliases and term frequencies are learned from every partition's records as they are read:
`Learned`). `k` is the smallest count for which every partition's run fits the budget by its
estimate (`part_estimate`, `worst`: fitted to each partition's measured peak). The event store's
as-of state is read once, into a spill a partition (`PartSpill`), on DuckDB; on PostgreSQL,
whose fetch holds a whole result, a partition at a time by a query of its own (`_read_by_parts`).

Partitioning is asked for, not automatic (`partitions`: "auto" or a count, else
$OUTCOMES_LINK_PARTITIONS; unset: one pass): it costs CPU and pairwise recall (docs/scale.md, branch
mem14), so a million people, which fit this machine in one pass and meet the quality bars there,
must not fall into it by the default 4 GB budget. With the current terms (21d5f4a) the plan takes
29 partitions at 250,000 people under 1.2 GB (estimated at most 1,144 MiB): that plan's peak, CPU
and recall are not measured. Measured, each on the commit named: at 500,000 people under 2 GB,
14 partitions (21d5f4a) peaked at 1,931 MiB (1.3% over), 2.27 times the one-pass run's CPU, pairwise
recall 1.1-1.2 points under the one pass on the convictions pairs; at 250,000 people under 1.2 GB
(77754a8, the terms before), 31 partitions peaked at 1,119 MiB with 3.39 times the CPU, recall
about 0.8 points under.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ONE_PASS_BYTES = 530  # the one-pass first run's frames a record (two million, projected: docs/scale.md)
FIXED = 256 << 20  # beside the records and DuckDB: the interpreter and its libraries (247 MiB measured)
# A partition's run, beside FIXED and DuckDB's buffers: a cost of its own whatever its size, a record
# of the partition, a record linked by the partitions before it. Fitted to each partition's measured
# peak at 250,000 people (32 partitions under 1.2 GB) and 500,000 people (9 partitions under 2 GB);
# docs/scale.md, branch mem14. The model's whole-population term frequencies (15 MB of JSON at
# 250,000 people), held by every partition's run, are within PART_FIXED there.
PART_FIXED = 350 << 20
PART_BYTES = 1_950
STORED_BYTES = 42
DUCK_BYTES = 256  # DuckDB's buffers a stored record, up to its half (the warehouse's bytes a record on disk)
AUTO = "auto"  # partition when the estimate exceeds the budget
PARTITIONS_ENV = "OUTCOMES_LINK_PARTITIONS"
MAX_PARTS = 64  # more partitions than this: each run's fixed cost (the stored keys' facts) dominates
KEY_SQL = (
    "coalesce(cast(extract(year from date_of_birth) as bigint) * 12 "
    "+ cast(extract(month from date_of_birth) as bigint), 0)"
)


class BudgetTooSmall(ValueError):
    """Even one partition of the first run cannot fit the memory budget."""


@dataclass
class Plan:
    """How a first run is partitioned: `parts` partitions of records by `key % parts`; `counts`:
    the records of each key (month of birth, 0 none); `largest`: records of the largest partition."""

    parts: int
    counts: pd.Series
    records: int
    largest: int
    limit: int | None


def duckdb_share(limit: int | None, stored: int) -> int:
    """DuckDB's buffers while a run reads `stored` records of the warehouse: DUCK_BYTES a record, at
    most its share of the budget (run.apply_memory_limit: half of it)."""
    return stored * DUCK_BYTES if limit is None else min(limit // 2, stored * DUCK_BYTES)


def estimate(records: int, limit: int | None = None, per_record: int | None = None, stored: int | None = None) -> int:
    """A run's estimated peak resident memory (bytes) for `records` records under the budget
    `limit`: the fixed cost, DuckDB's buffers (of `stored` records, default `records`), and
    `per_record` bytes a record (default the one-pass first run's, ONE_PASS_BYTES; a partition's
    run: PART_BYTES)."""
    per = ONE_PASS_BYTES if per_record is None else per_record
    return FIXED + duckdb_share(limit, records if stored is None else stored) + records * per


def part_estimate(part: int, stored: int, limit: int | None) -> int:
    """A partition's run's estimated peak (bytes): `part` records of its own, `stored` records linked
    by the partitions before it. Each costs FIXED and PART_FIXED (a run's own, whatever its size:
    about 650 MiB between a partition's stages at 250,000 people) and PART_BYTES a record of the
    partition. The first (`stored` 0) is a first run: DuckDB's buffers of its records (at most half
    the budget). A later one is a month over the stored state: DuckDB's buffers while a month reads
    (at most its read share, `incremental.read_share`; the write stage's share is fitted to what the
    process leaves, `run.fit_duckdb`) and STORED_BYTES a stored record (what the month's SQL stages
    hold of the whole stored state). Measured: docs/scale.md, branch mem14."""
    if not stored:
        return FIXED + PART_FIXED + duckdb_share(limit, part) + part * PART_BYTES
    from linkage.incremental import read_share

    duck = (part + stored) * DUCK_BYTES
    if limit is not None:
        duck = min(duck, read_share(limit))
    return FIXED + PART_FIXED + duck + part * PART_BYTES + stored * STORED_BYTES


def room(limit: int, stored: int) -> int:
    """Records a partition's run can hold within `limit` by the estimate, the warehouse holding
    `stored` records (every partition's: a later partition's run reads the stored keys and holds a
    term of them, STORED_BYTES a record; 0 or less: none)."""
    from linkage.incremental import read_share

    duck = min(read_share(limit), stored * DUCK_BYTES)
    return (limit - FIXED - PART_FIXED - duck - stored * STORED_BYTES) // PART_BYTES


def worst(largest: int, total: int, limit: int | None) -> int:
    """The largest estimate of any partition's run, its largest partition holding `largest` of
    `total` records: that partition as the first (a first run), or as a later one beside every
    other partition's records stored (a smaller later partition beside more stored records
    estimates less, since PART_BYTES exceeds STORED_BYTES)."""
    return max(part_estimate(largest, 0, limit), part_estimate(largest, total - largest, limit))


def _need(largest: int, total: int) -> int:
    """The smallest budget in whole MiB whose estimate fits partitions of `largest` of `total`
    records. DuckDB's share grows with the budget (a quarter of it above 1 GiB while a month reads),
    so raising the budget raises the estimate: the estimate is taken again at the budget it gives
    until it no longer falls (a fixed point: the estimate grows by less than the budget does), then
    rounded up to a whole MiB, the figure named, which the estimate accepts."""
    need = worst(largest, total, None)
    for _ in range(200):
        again = worst(largest, total, need)
        if again >= need:
            break
        need = again
    need = -(-need // (1 << 20)) << 20
    while worst(largest, total, need) > need:  # not reached: each step above is accepted
        need += 1 << 20
    return need


def parts_for(counts: pd.Series, limit: int | None, parts: int | None = None) -> tuple[int, int]:
    """The partition count and its largest partition's records: `parts` when given; else one when
    the estimate fits `limit`, otherwise the smallest count whose largest partition fits.
    BudgetTooSmall when none does (the budget below the fixed cost, or more than MAX_PARTS needed)."""
    keys = counts.index.to_numpy(dtype=np.int64)
    values = counts.to_numpy(dtype=np.int64)

    def largest(k: int) -> int:
        return int(np.bincount(keys % k, weights=values, minlength=k).max()) if len(keys) else 0

    total = int(values.sum())
    if parts is not None:
        return max(int(parts), 1), largest(max(int(parts), 1))
    if limit is None or estimate(total, limit) <= limit:
        return 1, total
    most = largest(MAX_PARTS)
    if worst(most, total, limit) > limit and room(limit, total) <= 0:
        raise BudgetTooSmall(
            f"a memory budget of {limit / 2**20:,.0f} MiB is below the first run's fixed cost (the interpreter's "
            f"{FIXED / 2**20:,.0f} MiB, a partition's run's own {PART_FIXED / 2**20:,.0f} MiB, DuckDB's share of the "
            f"budget and {STORED_BYTES} bytes a stored record while a later partition links): no partition of its "
            f"{total:,} records fits; raise --memory-limit (to at least {_need(most, total) >> 20:,} MiB at "
            f"{MAX_PARTS} partitions)"
        )
    for k in range(2, MAX_PARTS + 1):
        big = largest(k)
        if worst(big, total, limit) <= limit:
            return k, big
    fits, need = max(room(limit, total), 0), _need(most, total)
    raise BudgetTooSmall(
        f"a memory budget of {limit / 2**20:,.0f} MiB holds about {fits:,} records a partition: the first run's "
        f"{total:,} records need more than {MAX_PARTS} partitions (its largest partition, records by month of "
        f"birth, holds more); raise --memory-limit to at least {need >> 20:,} MiB"
    )


def plan(
    backend,
    records: pd.DataFrame | None,
    as_of: dt.date | None,
    limit: int | None,
    partitions: int | str | None = None,
) -> Plan | None:
    """The partitions of a first run (None: one pass). Only a first run (no link event stored yet)
    is partitioned, and only when asked (`partitions`, else $OUTCOMES_LINK_PARTITIONS): a count
    > 1 as given, or "auto" when the estimate of its records exceeds the budget `limit` (bytes;
    None: no budget)."""
    partitions = wanted(partitions)
    if partitions is None or (partitions == AUTO and limit is None):
        return None
    if partitions == AUTO:
        partitions = None
    from linkage.schema import DDL

    with backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        if s.fetch("select 1 from linkage.link_events limit 1").num_rows:
            return None  # not a first run: the month's path bounds its own reads
    counts = key_counts(backend, records, as_of)
    parts, largest = parts_for(counts, limit, partitions)
    if parts <= 1:
        return None
    return Plan(parts, counts, int(counts.sum()), largest, limit)


def wanted(partitions: int | str | None) -> int | str | None:
    """What was asked: `partitions`, else $OUTCOMES_LINK_PARTITIONS, as "auto" or a count > 1;
    None for one pass (unset, empty, "off", "1"). A clear error for anything else."""
    given = partitions if partitions is not None else os.environ.get(PARTITIONS_ENV)
    text = str(given).strip().lower() if given is not None else ""
    if text in ("", "off", "none"):
        return None
    if text == AUTO:
        return AUTO
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PARTS:
        source = "" if partitions is not None else f" (from {PARTITIONS_ENV})"
        raise ValueError(f"partitions must be 'auto', 'off' or a count from 1 to {MAX_PARTS}, not {given!r}{source}")
    return int(text) if int(text) > 1 else None


def record_keys(dob) -> np.ndarray:
    """Each record's partition key: year * 12 + month of its date of birth (0 where none)."""
    when = pd.DatetimeIndex(pd.to_datetime(pd.Series(dob), errors="coerce"))
    key = when.year.to_numpy(dtype="float64") * 12 + when.month.to_numpy(dtype="float64")
    return np.nan_to_num(key, nan=0.0).astype(np.int64)


def key_counts(backend, records: pd.DataFrame | None, as_of: dt.date | None) -> pd.Series:
    """Records per partition key, of the given records or of the as-of state in the event store."""
    if records is not None:
        return pd.Series(record_keys(records["date_of_birth"].to_numpy())).value_counts().sort_index()
    from outcomes.contract import SOURCES
    from outcomes.eventstore.schema import as_of_sql

    day = _as_of(backend, as_of) or dt.date(9999, 12, 31)
    parts = []
    with backend.transaction() as s:
        for source in SOURCES:
            t = s.fetch(
                f"select {KEY_SQL} as k, count(*) as n from ({as_of_sql(source)}) st group by 1", {"as_of": day}
            ).to_pandas()
            parts.append(t)
    both = pd.concat(parts, ignore_index=True)
    if both.empty:
        return pd.Series(dtype=np.int64)
    return both.groupby("k")["n"].sum().astype(np.int64).sort_index()


def _as_of(backend, as_of):
    if as_of is not None:
        return as_of
    with backend.transaction() as s:
        return s.scalar("select max(extract_date) from events.deliveries where status = 'applied'")


@dataclass
class Learned:
    """What the model of a partitioned first run learns from every partition's records, not the
    first partition's alone (given to its run, `link(learned=)`): the forename aliases
    (`records.learn_aliases` over every keyed record: the one-pass run's) and the term frequencies
    (`model.term_frequencies`, counted record by record as each slice is read: the one-pass run's).
    A first partition's own would be a sample's: by month of birth, every date of birth it holds
    is whole in it, so its dates of birth are `parts` times as frequent as in the population and
    the others unseen, and an alias seen in two nodes of the population is seen in one."""

    aliases: dict
    tf: dict


class _Frequencies:
    """Term-frequency counts summed slice by slice (`model.tf_keys`, as `term_frequencies` keys them)."""

    def __init__(self) -> None:
        from linkage.spec import IDENTITY as SPEC

        self.comparisons = [c for c in SPEC.comparisons if c.tf]
        self.columns = sorted({x for c in self.comparisons for x in (c.column, c.tf_by) if x is not None})
        self.counts: dict[str, pd.Series] = {}

    def add(self, frame: pd.DataFrame) -> None:
        from linkage.model import tf_keys

        if "date_of_birth" in frame:
            frame = frame.assign(date_of_birth=pd.to_datetime(frame["date_of_birth"]))
        for c in self.comparisons:
            n = tf_keys(frame, c).value_counts(dropna=True)
            old = self.counts.get(c.name)
            self.counts[c.name] = n if old is None else old.add(n, fill_value=0).astype(np.int64)

    def tf(self) -> dict:
        """As `model.term_frequencies` makes them: a value's records over all (or its group's, with `tf_by`)."""
        out = {}
        for c in self.comparisons:
            n = self.counts.get(c.name, pd.Series(dtype=np.int64)).astype(np.int64)
            n = n[n > 0]
            if c.tf_by is None:
                freq = n.to_numpy() / n.sum()
            else:
                group = n.index.str.split("|", n=1).str[0].to_numpy()
                size = n.groupby(group, sort=False).sum()
                freq = n.to_numpy() / size.reindex(group).to_numpy()
            out[c.name] = dict(zip(n.index.tolist(), freq.tolist(), strict=True))
        return out


def _aliases(keyed: pd.DataFrame) -> dict:
    """The forename aliases of keyed records (node, forename_token, source_person_key), as the
    one-pass run learns them."""
    from linkage.records import learn_aliases

    return {"forename": sorted(learn_aliases(keyed, "forename_token"))}


def _learned_from_frame(frame: pd.DataFrame) -> Learned:
    """`Learned` from the given records (every partition's), a slice at a time."""
    from linkage.records import node_names

    counts = _Frequencies()
    for start in range(0, len(frame), SLICE):
        counts.add(frame.iloc[start : start + SLICE][counts.columns])
    keyed = frame.loc[
        frame["source_person_key"].notna() & frame["forename_token"].notna(),
        ["source", "record_id", "source_person_key", "forename_token"],
    ]
    keyed = pd.DataFrame(
        {
            "node": node_names(keyed),
            "forename_token": keyed["forename_token"].to_numpy(),
            "source_person_key": keyed["source_person_key"].to_numpy(),
        }
    )
    return Learned(_aliases(keyed), counts.tf())


def _spilled(frame: pd.DataFrame, parts: int) -> list:
    """The given records held partition by partition on disk (the frame is then freed by the
    caller), each read back whole in its turn: `records.SpilledFrame`s, whose files are unlinked as
    soon as written, so no identity is left named on disk however the run ends, a kill included."""
    from linkage.records import SpilledFrame

    key = record_keys(frame["date_of_birth"].to_numpy()) % parts
    return [SpilledFrame(frame.iloc[np.flatnonzero(key == i)].reset_index(drop=True)) for i in range(parts)]


def _read_part(backend, as_of: dt.date, parts: int, i: int) -> pd.DataFrame:
    """Partition `i` of `parts` of the event store's as-of state, as records.load_records reads it
    (a scan of the as-of state a partition: `_read_once` reads them all in one)."""
    from linkage.records import IDENTITY, RECORD_DATE, records_frame
    from outcomes.contract import SOURCES
    from outcomes.eventstore.schema import as_of_sql

    def tables():
        with backend.transaction() as s:
            for source in SOURCES:
                cols = ", ".join(["record_id", *IDENTITY, f"{RECORD_DATE[source]} as record_date"])
                sql = (
                    f"select {cols} from ({as_of_sql(source)}) st where mod({KEY_SQL}, {parts}) = {i} "
                    "order by record_id"
                )
                yield source, s.fetch(sql, {"as_of": as_of})

    return records_frame(tables())


SLICE = 100_000  # rows of the as-of state taken from DuckDB at once while it is read into partitions


class PartSpill:
    """Rows held on disk a partition each, written once and read back once: Arrow IPC streams,
    encrypted under a key held only in memory (`records.Sealed`: they hold identities), in files of
    a private temporary folder (mode 0700), each opened for writing and for reading and the folder
    removed at once, as `records.SpilledFrame` does, so nothing named is left on disk however the
    run ends (a kill included: the kernel frees an unlinked file with its last handle), and no
    identity reaches disk, or /proc/<pid>/fd, in the clear."""

    def __init__(self, parts: int, schema: pa.Schema, folder: str | None = None) -> None:
        from linkage.records import sealed_files

        self._files = sealed_files(parts, folder)
        self._writers = [pa.ipc.new_stream(f, schema) for f in self._files]
        self.rows = [0] * parts

    def write(self, i: int, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writers[i].write_batch(batch)
            self.rows[i] += batch.num_rows

    def close(self) -> None:
        """Every stream ended (then readable)."""
        for w in self._writers:
            w.close()
        for f in self._files:
            f.close()  # its last chunk sealed
        self._writers = []

    def discard(self) -> None:
        """Every file freed, read or not."""
        for f in self._files:
            f.discard()

    def load(self, i: int) -> pa.Table:
        """Partition `i`'s rows, read once (its file then freed)."""
        return pa.ipc.open_stream(pa.py_buffer(self._files[i].read_back())).read_all()


def _streams(session) -> bool:
    """Whether `_read_once` can read through this session a slice at a time: DuckDB's Arrow reader
    streams a query's result. PostgreSQL's `fetch` returns its result as one Arrow table (read
    through a server-side cursor, but kept whole), so a source's whole as-of state would sit in
    memory uncounted by the estimate: there each partition is read by a query of its own."""
    return type(session).__name__ == "DuckDBSession" and getattr(session, "con", None) is not None


def _batches(session, sql: str, params: dict):
    """A DuckDB query's rows in Arrow record batches of SLICE rows, streamed: the result is never
    whole in memory (DuckDB only: `_streams`)."""
    from outcomes.eventstore.backend import _NAMED

    if not _streams(session):
        raise TypeError(f"{type(session).__name__} does not stream a query's rows: read a partition at a time")
    yield from session.con.sql(_NAMED.sub(r"$\1", sql), params=params).to_arrow_reader(SLICE)


def _keyed(session, source: str, as_of: dt.date) -> pd.DataFrame:
    """A source's keyed forename tokens of the as-of state, as `learn_aliases` reads them."""
    t = session.fetch(_keyed_sql(source), {"as_of": as_of}).to_pandas()
    return pd.DataFrame(
        {"node": f"{source}|k|" + t["k"].astype(object), "forename_token": t["t"], "source_person_key": t["k"]}
    )


def _read_by_parts(backend, as_of: dt.date, parts: int, learned: list | None = None) -> Iterator[pd.DataFrame]:
    """Every partition of the as-of state by a query of its own a partition and source (`_read_part`),
    where the backend does not stream (PostgreSQL): no more than a partition's rows in memory at
    once. `learned` (a list): a `Learned` of every partition's records appended first, the term
    frequencies counted a partition at a time (so each partition is read twice)."""
    from outcomes.contract import SOURCES

    if learned is not None:
        counts = _Frequencies()
        for i in range(parts):
            frame = _read_part(backend, as_of, parts, i)
            counts.add(frame[counts.columns])
            del frame
        with backend.transaction() as s:
            keyed = [_keyed(s, source, as_of) for source in SOURCES]
        learned.append(Learned(_aliases(pd.concat(keyed, ignore_index=True)), counts.tf()))
        del keyed, counts
    for i in range(parts):
        yield _read_part(backend, as_of, parts, i)


def _keyed_sql(source: str) -> str:
    """A source's distinct (source person key, forename token) of the as-of state, of the keys
    holding two tokens or more (the rows `learn_aliases` reads: a node of one token pairs none)."""
    from outcomes.eventstore.schema import as_of_sql

    return (
        "select k, t from (select k, t, count(*) over (partition by k) as n from (select distinct "
        f"source_person_key as k, forename_token as t from ({as_of_sql(source)}) st "
        "where source_person_key is not null and forename_token is not null) d) w where n > 1"
    )


def _read_once(backend, as_of: dt.date, parts: int, learned: list | None = None) -> Iterator[pd.DataFrame]:
    """Every partition of the event store's as-of state from one scan a source (not one a
    partition and source; DuckDB, whose scan streams: `_streams`, elsewhere `_read_by_parts`):
    each slice's rows sent to their partition's `PartSpill`, then each
    partition read back in its turn, its rows in record id order as `_read_part` gives them.
    `learned` (a list): a `Learned` of every partition's records appended before the first
    partition is given (the term frequencies counted from the same slices)."""
    import pyarrow.compute as pc

    from linkage.records import IDENTITY, RECORD_DATE, records_frame
    from outcomes.contract import SOURCES
    from outcomes.eventstore.schema import as_of_sql

    spills: dict[str, PartSpill] = {}
    counts = _Frequencies() if learned is not None else None
    keyed = []
    try:
        with backend.transaction() as s:
            for source in SOURCES:
                if learned is not None:
                    keyed.append(_keyed(s, source, as_of))
                cols = ", ".join(["record_id", *IDENTITY, f"{RECORD_DATE[source]} as record_date"])
                sql = f"select {cols}, mod({KEY_SQL}, {parts}) as part_ from ({as_of_sql(source)}) st"
                for batch in _batches(s, sql, {"as_of": as_of}):
                    part = batch.column(batch.num_columns - 1)
                    rows = batch.select(list(range(batch.num_columns - 1)))
                    if counts is not None:
                        counts.add(rows.select(counts.columns).to_pandas(date_as_object=False))
                    spill = spills.get(source)
                    if spill is None:
                        spill = spills[source] = PartSpill(parts, rows.schema)
                    order = pc.sort_indices(part)
                    rows, part = rows.take(order), part.take(order).to_numpy(zero_copy_only=False)
                    bounds = np.searchsorted(part, np.arange(parts + 1))
                    for i in range(parts):
                        if bounds[i + 1] > bounds[i]:
                            spill.write(i, rows.slice(bounds[i], bounds[i + 1] - bounds[i]))
                    del batch, rows, part
                if source in spills:
                    spills[source].close()
        if learned is not None:
            learned.append(Learned(_aliases(pd.concat(keyed, ignore_index=True)), counts.tf()))
            del keyed, counts
        for i in range(parts):

            def tables(i=i):
                for source, spill in spills.items():
                    table = spill.load(i)
                    yield source, table.sort_by("record_id")
                    del table

            yield records_frame(tables())
    finally:
        for spill in spills.values():
            spill.discard()


def _partitions(backend, box: list, plan: Plan, as_of, learned: list | None = None) -> Iterator[pd.DataFrame]:
    """Each partition's records in turn (given ones spilled first, else the event store's as-of
    state read once into partitions); `learned` (a list) gets a `Learned` of every partition's
    records before the first partition is given."""
    if box and box[0] is not None:
        frame = box.pop()
        if learned is not None:
            learned.append(_learned_from_frame(frame))
        spilled = _spilled(frame, plan.parts)
        del frame
        while spilled:
            yield spilled.pop(0).load()
    else:
        if plan.limit is not None:  # the scans stream into the spills: DuckDB at a month's read share, not
            # half the budget (its window over a source's as-of state held up to 300 MiB more at 250,000
            # people under 1.2 GB); the first partition's run sets half again (run.apply_memory_limit)
            from linkage.incremental import read_share
            from linkage.run import _duckdb_limit

            _duckdb_limit(backend, read_share(plan.limit))
        with backend.transaction() as s:
            streams = _streams(s)
        read = _read_once if streams else _read_by_parts
        yield from read(backend, as_of, plan.parts, learned)


def link_parts(
    backend,
    box: list,
    plan: Plan,
    truth: Path | None = None,
    retrain: bool = False,
    as_of: dt.date | None = None,
    chunk: int | None = None,
    on_stage: Callable[[str], None] | None = None,
    memory_limit: int | None = None,
):
    """The first run, partition by partition (`box`: a list holding the given records or None,
    emptied here; `plan` from `plan`): one run a partition, all as of the same date, the first a
    first run, the others the monthly path's; the result sums theirs (`partitions`: each run's)."""
    from linkage import incremental as inc
    from linkage.engine import CHUNK
    from linkage.run import LinkResult, link

    started = time.perf_counter()
    given = bool(box) and box[0] is not None
    if not given:
        box.clear()
    as_of = _as_of(backend, as_of)
    if as_of is None:
        raise ValueError("a partitioned first run needs a knowledge date: give as_of, or apply a delivery first")
    ledger = None
    if not given:  # read before the records: a delivery applied meanwhile is read again by the next run
        with backend.transaction() as s:
            ledger = inc.ledger_id(s)
    budget = "none" if memory_limit is None else memory_limit
    runs: list = []
    learned: list | None = [] if retrain or not _stored_model_fits(backend) else None
    for i, records in enumerate(_partitions(backend, box, plan, as_of, learned)):
        if records.empty:
            continue
        first = not runs
        if not first:  # checked before linking: a run's link events cannot be taken back
            with backend.transaction() as s:
                if not inc.in_step(s, as_of):
                    raise RuntimeError(
                        f"partition {i + 1} of {plan.parts} cannot be linked by the monthly path: the stored keys are "
                        "not in step with the earlier partitions' runs"
                    )
        res = link(
            backend,
            truth=truth,
            retrain=retrain and first,
            as_of=as_of,
            records=records,
            chunk=CHUNK if chunk is None else chunk,
            on_stage=on_stage,
            incremental=False if first else None,
            memory_limit=budget,
            part=True,
            learned=learned[0] if first and learned else None,
        )
        del records
        if first and learned:
            learned.clear()  # the whole population's term frequencies: the model holds them now
        if not first and not res.incremental and res.records_new:
            raise RuntimeError(
                f"partition {i + 1} of {plan.parts} was not linked by the monthly path: the stored keys are not in "
                "step with the first partition's run"
            )
        runs.append(res)
    if ledger is not None and runs:
        with backend.transaction() as s:  # the ledger the whole run read up to, as a one-pass run keeps it
            s.execute("update linkage.key_state set ledger_id = :l", {"l": ledger})
    return _combined(runs, LinkResult, as_of, time.perf_counter() - started, memory_limit)


def _stored_model_fits(backend) -> bool:
    """Whether the first partition's run will use a stored model rather than train one: as
    `run.read` decides, the newest stored model, if it fits the spec (one of other comparisons or
    levels is set aside and a new one trained: that one must learn from every partition too)."""
    from linkage.model import Model
    from linkage.spec import IDENTITY as SPEC

    with backend.transaction() as s:
        stored = s.fetch("select model_json from linkage.models order by trained_in_run desc limit 1")
    return bool(stored.num_rows) and Model.from_json(stored["model_json"][0].as_py()).fits(SPEC)


def _combined(runs: list, LinkResult, as_of, seconds: float, limit):
    """One result for the partitioned run: counts summed, stages' seconds summed, the blocking
    figures and quality of the last run (the whole spine's), each run's own in `partitions`."""
    last = runs[-1]
    out = LinkResult(last.run_id, as_of, runs[0].model_version)
    for name in ("records_new", "candidate_pairs", "links", "reviews", "merges", "splits", "persons_new", "chunks"):
        setattr(out, name, sum(getattr(r, name) for r in runs))
    out.records_read = sum(r.records_read for r in runs)
    out.variants = last.variants
    for r in runs:
        for k, v in r.stages.items():
            out.stages[k] = round(out.stages.get(k, 0.0) + v, 3)
        for k, v in r.stages_cpu.items():
            out.stages_cpu[k] = round(out.stages_cpu.get(k, 0.0) + v, 3)
    out.blocking, out.quality, out.expected = last.blocking, last.quality, last.expected
    out.relatives = runs[0].relatives  # learned with the model, by the first partition's run
    out.seconds, out.memory_limit = seconds, limit
    out.partitions = [dataclasses.replace(r, quality=None, expected=None, partitions=[]) for r in runs]
    return out
