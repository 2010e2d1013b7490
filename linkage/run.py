"""One linkage run: link every record not linked yet into the person spine.

The first run links everything and trains the model; later runs compare only new records
(against the spine and each other) with the stored model, so a month's cost grows with the new
records, not the history. Existing persons keep their ids; when new evidence joins two of them,
the later id is merged into the earlier one and the move is recorded as link events.

A run as of a date before a date linked already (a past date linked afterwards, `PastRun`) links
the records known on its date that the spine as of then lacks, beneath the later runs: it never
changes the spine as of a later date.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage import incremental as inc
from linkage import model as fs
from linkage.blocking import candidate_pairs, comparable_pairs
from linkage.cluster import (
    Decisions,
    NodeVariants,
    PersonEvidence,
    UnionFind,
    decide,
    node_keys,
    node_spans,
    review_queue,
)
from linkage.compare import Comparer
from linkage.engine import (
    CHUNK,
    MEMORY_DEFAULT,
    chunk_for_memory,
    fit_chunk,
    node_pairs,
    parse_size,
    score_pairs,
    tf_arrays,
    train,
)
from linkage.engine import score_chunk as engine_score_chunk
from linkage.records import (
    IDENTITY,
    IdentityArrow,
    RecordIds,
    SpilledFrame,
    build_variants,
    code_identity,
    drop_columns,
    first_rows,
    identity_rows,
    learn_aliases,
    load_records,
    shed_identity,
)
from linkage.review import load_decisions
from linkage.schema import DDL, spine_as_of_sql
from linkage.spec import IDENTITY as SPEC

LINK_AT = SPEC.link_at  # match weight (log2 odds) for an automatic link: SPEC.link_probability
REVIEW_AT = SPEC.review_at  # below this a pair is a non-link; between, clerical review
PERSON_PREFIX = "PS"
COMPARISONS = SPEC.names


@dataclass
class LinkResult:
    run_id: int
    as_of: dt.date | None
    model_version: str
    records_new: int = 0
    variants: int = 0
    candidate_pairs: int = 0
    links: int = 0
    reviews: int = 0
    merges: int = 0
    splits: int = 0
    persons_new: int = 0
    seconds: float = 0.0
    chunks: int = 0
    stages: dict = field(default_factory=dict)  # seconds per stage
    # the process's CPU seconds per stage (every thread's, DuckDB's too): on a loaded machine the
    # wall time of a stage counts the other processes' time too, its CPU time does not
    stages_cpu: dict = field(default_factory=dict)
    blocking: list = field(default_factory=list)  # (pass, pairs, new pairs, reduction ratio, completeness)
    quality: pd.DataFrame | None = None
    expected: pd.DataFrame | None = None  # the model's expected precision and recall per source pair
    later: dt.date | None = None  # a past date's run: the next date linked already, beneath whose run it slots
    ids_reused: int = 0  # of its new persons, how many carry the person id the later spine gives them
    moved_later: int = 0  # records it links that move to the later spine's person on `later` (merge/split)
    unlinked_later: int = 0  # records it links that the later spine does not hold (retracted by then)
    relatives: pd.DataFrame | None = None  # relatives' configurations and their probabilities (cluster.decide)
    incremental: bool = False  # read only the records the new ones touch (linkage.incremental)
    records_read: int = 0  # records read into the run (the whole as-of state unless incremental)
    ledger_id: int | None = None  # the event store's ledger id the run read up to (None: given its records)
    delta: str = ""  # how an incremental run found its new and changed records: "ledger" or "whole state"
    prescored: inc.Prescored | None = None  # an incremental run's identities scored before reading records whole
    memory_limit: int | None = None  # the run's memory budget in bytes (None: none set)
    partitions: list = field(default_factory=list)  # a partitioned first run's runs (linkage.partitioned)

    def lines(self) -> list[str]:
        out = [
            f"run {self.run_id} (as of {self.as_of}, model {self.model_version}): {self.records_new:,} new records, "
            f"{self.candidate_pairs:,} candidate pairs, {self.links:,} links, {self.reviews:,} to clerical review, "
            f"{self.merges:,} records moved by merges, {self.splits:,} by splits, {self.persons_new:,} new persons "
            f"({self.seconds:.1f} s)"
        ]
        if self.partitions:
            out.append(
                f"  a first run in {len(self.partitions)} partitions (linkage.partitioned): "
                + ", ".join(f"{p.records_new:,}" for p in self.partitions)
                + " new records"
            )
        if self.later is not None:
            out.append(
                f"  beneath the run as of {self.later}: {self.ids_reused:,} of the new persons keep that run's "
                f"person id, {self.moved_later:,} records move to that run's person on {self.later}, "
                f"{self.unlinked_later:,} leave the spine then (not known on {self.later})"
            )
        if self.blocking:
            out.append("  blocking pass: pairs, new pairs, reduction ratio, pair completeness (true pairs found)")
            for name, pairs, new, rr, pc in self.blocking:
                complete = "" if pc is None else f", completeness {pc:.4f}"
                out.append(f"    {name}: {pairs:,} pairs, {new:,} new, reduction ratio {rr:.6f}{complete}")
        if self.quality is not None:
            for q in self.quality.itertuples():
                expected = (
                    f"; expected by the model {q.expected_precision:.4f} / {q.expected_recall:.4f}"
                    if pd.notna(q.expected_precision)
                    else ""
                )
                if pd.notna(q.pairwise_precision):
                    out.append(
                        f"  {q.source_a}-{q.source_b}: precision {q.pairwise_precision:.4f}, recall "
                        f"{q.pairwise_recall:.4f}, F1 {q.pairwise_f1:.4f}; match rate {q.match_rate:.3f}{expected}"
                    )
        if self.relatives is not None and not self.relatives.empty:
            out.append("  pairs that look like relatives (rule, configuration: pairs, probability of one person)")
            for r in self.relatives.itertuples():
                out.append(f"    {r.rule}, {r.configuration}: {r.pairs:,}, {r.probability:.2f}")
        return out


def link(
    backend,
    truth: Path | None = None,
    retrain: bool = False,
    as_of: dt.date | None = None,
    records: pd.DataFrame | None = None,
    chunk: int = CHUNK,
    on_stage: Callable[[str], None] | None = None,
    incremental: bool | None = None,
    memory_limit: str | None = None,
    partitions: int | str | None = None,
    part: bool = False,
    learned=None,
) -> LinkResult:
    """Link every record not linked yet. `records` (source, record_id and the identity block)
    replaces reading the event store's as-of state, e.g. straight from deliveries; then give
    `as_of`. With `truth`, blocking reports pair completeness and quality is measured.
    `on_stage` is told each stage's name as it ends (progress display). `incremental` (default:
    whenever the stored keys are in step) reads only what the new records touch; False reads the
    whole population. `memory_limit` (e.g. "4GB"; default $OUTCOMES_LINK_MEMORY, else 4GB) is
    DuckDB's memory limit for the run and sizes the scoring chunks (engine.chunk_for_memory).

    The named stages, each a function of its inputs (docs/linkage.md draws them):
    read -> block -> score -> decide -> cluster -> write. `prepare` (read, block), `score_chunk`
    and `finish` (decide, cluster, write) run them apart (the refresh DAG scores the chunks as
    mapped tasks, linkage.stages).

    A first run asked to (`partitions` > 1, or "auto" and its estimated peak exceeds the budget;
    default $OUTCOMES_LINK_PARTITIONS, else one pass) links its records partition by partition
    (linkage.partitioned); `part` marks one such partition's run
    (`records` a part of the as-of state: the records linked before stay); `learned`
    (partitioned.Learned), given to the first partition's run, holds what the model learns from
    every partition's records (the forename aliases and term frequencies), not from its own."""
    limit = apply_memory_limit(backend, memory_limit)
    if not part:
        from linkage import partitioned

        plan = partitioned.plan(backend, records, as_of, limit, partitions)
        if plan is not None:
            box = [records]  # handed over: the driver holds the only reference and frees it
            del records
            return partitioned.link_parts(backend, box, plan, truth, retrain, as_of, chunk, on_stage, limit)
    if chunk == CHUNK and limit is not None:
        chunk = chunk_for_memory(limit)
    started = time.perf_counter()
    lap = _Laps({}, on_stage)
    inputs = read(backend, truth, retrain, as_of, records, lap, incremental, started, limit, part)
    if isinstance(inputs, LinkResult):
        return inputs
    inputs.learned = learned
    inputs.result.memory_limit = limit
    del records
    state = block(inputs)
    if not state.result.incremental and state.identity is not None:
        # a whole-population run's identity block per variant is read again only by `write`: held
        # on disk meanwhile (records.SpilledFrame), not beside scoring's and clustering's frames
        state.identity = SpilledFrame(state.identity)
    scored = [score(state, chunk)]  # handed over: decide_stage frees it once node pairs are made
    return write(backend, cluster(decide_stage(state, scored, None, lambda: _decided_links(backend))))


def score(state: LinkState, chunk: int = CHUNK) -> pd.DataFrame:
    """Stage `score`: the candidate pairs compared and weighed in chunks of `chunk` (recordlinkage
    comparisons, the model's weights); only pairs at or above the review level are kept."""
    # a chunk no larger than what the budget leaves beside the run's frames (the same scored pairs)
    chunk = fit_chunk(chunk, state.result.memory_limit, _resident_bytes())
    scored, state.result.chunks = score_pairs(
        state.variants, state.pairs, state.spec, state.comparer, state.model, chunk
    )
    state.pairs = None
    state.lap("scoring")
    return scored


def fit_duckdb(backend, limit: int | None, share: float = 0.5) -> None:
    """DuckDB's memory limit for the writing that follows: what the budget leaves beside the
    process's own memory now (its resident memory less DuckDB's buffers), at most `share` of the
    budget and at least 256 MiB, so that the run's records in pandas and DuckDB's buffers together
    stay within the budget where they can. Nothing without a budget or a DuckDB warehouse."""
    con = getattr(backend, "con", None)
    if limit is None or getattr(backend, "dialect", None) != "duckdb" or con is None:
        return
    buffers = int(con.execute("select coalesce(sum(memory_usage_bytes), 0) from duckdb_memory()").fetchall()[0][0])
    own = max(_resident_bytes() - buffers, 0)
    _duckdb_limit(backend, min(max(limit - own, 256 << 20), int(limit * share)))


def _duckdb_limit(backend, size: int) -> None:
    con = getattr(backend, "con", None)
    if getattr(backend, "dialect", None) == "duckdb" and con is not None:
        con.execute(f"set memory_limit = '{max(size // (1 << 20), 64)}MiB'")


def _resident_bytes() -> int:
    """The process's resident memory now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def apply_memory_limit(backend, memory_limit: str | int | None = None) -> int | None:
    """The run's memory budget in bytes (`memory_limit`, else $OUTCOMES_LINK_MEMORY, else
    engine.MEMORY_DEFAULT); a DuckDB warehouse gets half of it as its `memory_limit` (PostgreSQL's
    memory is the server's). None when the budget is "none"."""
    text = memory_limit or os.environ.get("OUTCOMES_LINK_MEMORY") or MEMORY_DEFAULT
    if str(text).strip().lower() in ("none", "0", "off"):
        return None
    limit = parse_size(text)
    _duckdb_limit(backend, limit // 2)
    return limit


class _Laps:
    """Seconds per stage of a run, and the progress callback told as each ends."""

    def __init__(self, stages: dict[str, float], on_stage: Callable[[str], None] | None) -> None:
        self.stages, self.on_stage, self.mark = stages, on_stage, time.perf_counter()
        self.cpu: dict[str, float] = {}  # the process's CPU seconds per stage (LinkResult.stages_cpu)
        self.cpu_mark = time.process_time()

    def __call__(self, stage: str) -> None:
        release_memory()  # what the stage freed, back to the system (counted in its time)
        now, cpu = time.perf_counter(), time.process_time()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + now - self.mark, 3)
        self.cpu[stage] = round(self.cpu.get(stage, 0.0) + cpu - self.cpu_mark, 3)
        self.mark, self.cpu_mark = now, cpu
        if self.on_stage is not None:
            self.on_stage(stage)


def release_memory() -> None:
    """Give the pages the heap has freed back to the system (Arrow's pool, glibc's `malloc_trim`), so that a
    stage's freed frames leave room for the next stage and for DuckDB's buffers rather than
    staying in the process's resident memory. Nothing where the C library has no such call."""
    pa.default_memory_pool().release_unused()  # Arrow's own pool (the slices written to the warehouse)
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


@dataclass
class LinkState:
    """A run between its stages: what `prepare` found, for scoring and `finish`."""

    result: LinkResult
    spec: object
    r: pd.DataFrame
    variants: pd.DataFrame
    comparer: Comparer
    model: fs.Model
    known: pd.DataFrame
    stored: pa.Table
    stats: list
    pairs: pd.DataFrame | None
    is_new: np.ndarray
    max_person: int
    truth: Path | None
    lap: _Laps
    started: float
    reviews: pd.DataFrame
    applied: int
    past: PastRun | None = None
    incremental: bool = False  # read only what the new records touch: record_keys is upserted, not rewritten
    identity: pd.DataFrame | None = None  # the identity block once per variant (records.shed_identity)
    ids: RecordIds | None = None  # the record ids: `r` holds their codes (`rid`), not strings
    model_json: str | None = None  # a model made by this run, as written (made once it is decided)


@dataclass
class PastRun:
    """What a run as of a date before a date linked already needs of the later spine.

    Such a run links the records known on its date that the spine as of that date lacks, with the
    stored model and the review decisions made by then. Persons as of its date stay as they are
    (never joined to each other nor split: the later spines hold them already). A new person takes
    a person id the later spine gives its records where it can (`_past_ids`: most records first),
    unless the id was in use on the run's date; otherwise a new id. Each record it links then
    meets the later spine on `later`: a `merge` or `split` link event where the later run put it
    in another person, an `unlink` where the later run did not hold it; these rank beneath the
    later run's own events (linkage.schema.spine_sql), so no spine as of a later date changes."""

    later: dt.date  # the earliest knowledge date after the run's that a run was made for
    later_spine: pd.DataFrame  # source, record_id, person_id: the spine as of `later`
    seen_ids: set  # person ids of every link event known on the run's date: not given to others
    identified: pd.DataFrame  # source, record_id of the records linkage.identities holds already


def prepare(
    backend,
    truth: Path | None = None,
    retrain: bool = False,
    as_of: dt.date | None = None,
    records: pd.DataFrame | None = None,
    on_stage: Callable[[str], None] | None = None,
    blocker: Callable | None = None,
    incremental: bool | None = None,
    memory_limit: str | None = None,
) -> LinkState | LinkResult:
    """Read and block (the stages `read` and `block`): the candidate pairs to score, or the
    finished result when nothing is new (and no review decision waits). `blocker` replaces
    `candidate_pairs` (same arguments and result; the pairs may be a distributed engine's, see
    `engine.take_pairs`). `incremental` (default: whenever it can) reads only the records the
    new ones touch (linkage.incremental); False takes the whole population as the first run does."""
    limit = apply_memory_limit(backend, memory_limit)
    started = time.perf_counter()
    stages: dict[str, float] = {}
    lap = _Laps(stages, on_stage)
    inputs = read(backend, truth, retrain, as_of, records, lap, False if blocker else incremental, started, limit)
    del records  # the run's frame shares their columns: not held beside it through `block`
    if isinstance(inputs, LinkResult):
        return inputs
    inputs.result.memory_limit = limit
    return block(inputs, blocker)


@dataclass
class Inputs:
    """What the `read` stage gives `block`: the records (all of the as-of state, or in an
    incremental run those the new records touch), the spine of those records, the model and the
    review decisions."""

    result: LinkResult
    records: pd.DataFrame  # source, record_id, identity block
    known: pd.DataFrame  # source, record_id, person_id of the records linked already
    is_new: np.ndarray
    model: fs.Model | None
    stored: pa.Table
    reviews: pd.DataFrame
    applied: int
    max_person: int
    truth: Path | None
    lap: _Laps
    started: float
    past: PastRun | None = None
    facts: inc.Blocks | None = None  # an incremental run's whole-population blocking facts
    learned: object | None = None  # a partitioned first run's aliases and term frequencies (partitioned.Learned)


def read(
    backend,
    truth: Path | None,
    retrain: bool,
    as_of: dt.date | None,
    records: pd.DataFrame | None,
    lap: _Laps,
    incremental: bool | None = None,
    started: float | None = None,
    memory_limit: int | None = None,
    part: bool = False,
) -> Inputs | LinkResult:
    """Stage `read`: from the warehouse, what the run links. The whole as-of state on a first
    run, a past date's run, with --retrain, or `incremental=False`; otherwise only the new and
    changed records and the records of the persons they may touch (linkage.incremental), with
    DuckDB's share of the budget (`memory_limit`, bytes) cut to `inc.read_share` while it reads.
    `part`: `records` are a part of the as-of state (linkage.partitioned), none retracted."""
    started = time.perf_counter() if started is None else started
    spec = SPEC
    facts = None
    with backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        inc.ensure(s, getattr(backend, "dialect", "duckdb"))
        run_id = int(s.scalar("select coalesce(max(run_id), 0) + 1 from linkage.runs"))
        if as_of is None:
            as_of = s.scalar("select max(extract_date) from events.deliveries where status = 'applied'")
        after = "select min(as_of) from linkage.runs where as_of > :d"  # a later date linked already
        later = None if as_of is None else s.scalar(after, {"d": as_of})
        past = None
        stored = s.fetch("select model_version, model_json from linkage.models order by trained_in_run desc limit 1")
        model = fs.Model.from_json(stored["model_json"][0].as_py()) if stored.num_rows and not retrain else None
        if model is not None and not model.fits(spec):
            model = None  # a model of other comparisons or levels: estimate a new one
        incremental = incremental is not False and later is None and model is not None and inc.in_step(s, as_of)
        known = None
        if incremental:
            pass  # read below, with the delta
        elif later is None:
            known = s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()
        else:  # a past date linked after a later one: what is linked as of its date, and the later spine
            known = s.fetch(spine_as_of_sql(), {"as_of": as_of}).to_pandas()
            seen = s.fetch("select distinct person_id from linkage.link_events where as_of <= :d", {"d": as_of})
            past = PastRun(
                later,
                s.fetch(spine_as_of_sql(), {"as_of": later}).to_pandas(),
                set(seen.column(0).to_pylist()),
                s.fetch("select distinct source, record_id from linkage.identities").to_pandas(),
            )
        reviews = load_decisions(s, as_of if past is not None else None)
        applied = int(s.scalar("select coalesce(max(review_decisions), 0) from linkage.runs"))
        max_person = (
            s.scalar(
                f"select max(cast(substr(person_id, {len(PERSON_PREFIX) + 1}) as bigint)) from linkage.link_events"
            )
            or 0
        )

    if past is not None and retrain:
        raise ValueError(
            f"--retrain cannot link {as_of}: a run as of {later} exists, and a past date is linked with the "
            "stored model"
        )
    # Decisions logged since the last run are applied by the next run of the latest date, not by a past date's.
    has_pending = past is None and not reviews.empty and int(reviews["decision_id"].max()) > applied
    model_version = model.version if model is not None else f"fs-{run_id}"
    result = LinkResult(run_id, as_of, model_version, stages=lap.stages, stages_cpu=lap.cpu)
    if incremental:
        result.incremental = True
        if memory_limit is not None:  # the month's reads scan, and would keep, the stored tables' pages
            _duckdb_limit(backend, inc.read_share(memory_limit))
        with backend.transaction() as s:
            given, after, dates = None, None, None
            if records is not None:
                given = records[["source", "record_id", *IDENTITY]]
                if "record_date" in records:
                    dates = records[["source", "record_id", "record_date"]]
            else:  # only the records with events the last run did not see, when it kept its ledger id
                result.ledger_id, after = inc.ledger_id(s), inc.since(s)
            result.delta = "ledger" if after is not None else "whole state"
            delta = inc.read_delta(s, as_of, given, after, part)
            lap("read_delta")
            inc.keep_blocks(s, spec)  # the kept blocking facts, in step with the stored keys (read_blocks)
            result.records_new = int(delta.changed["is_new"].sum())
            if result.records_new == 0 and not has_pending:
                if memory_limit is not None:
                    _duckdb_limit(backend, memory_limit // 2)  # DuckDB's half again, as the run began
                result.seconds = time.perf_counter() - started
                return result  # the changed records are stored; the spine is as it was
            s.execute("delete from linkage.key_state")  # in step again when this run writes
            facts = inc.block_facts(s, spec)
            inc.candidate_nodes(s, spec, facts)
            if truth is not None:  # pair completeness counts the true pairs of the whole population
                inc.add_truth_nodes(s, truth, delta.changed[delta.changed["is_new"]])
            lap("read_blocks")
            # the candidate nodes' identities blocked and scored first: only the nodes of a pair
            # at or above the review level (and of new and changed records) are read whole
            result.prescored = inc.score_first(s, spec, model, facts, truth)
            lap("score_first")
            pending = reviews[reviews["decision_id"] > applied] if has_pending else reviews.iloc[:0]
            inc.add_review_nodes(s, pending)
            inc.close_over_persons(s)
            lap("read_persons")
            records = inc.load_records(s)
            if dates is None:  # linkage.cluster: persons in time, as the whole path reads them
                dates = inc.record_dates(s, as_of)
            records = records.merge(dates, on=["source", "record_id"], how="left")
        del delta
        known = records.loc[records["person_id"].notna(), ["source", "record_id", "person_id"]]
        known = known.reset_index(drop=True)
        is_new = records["person_id"].isna().to_numpy()
        records = records.drop(columns="person_id")
    else:
        if records is None:
            with backend.transaction() as s:  # read before the records: a later delivery is read again, not missed
                result.ledger_id = inc.ledger_id(s)
            records = load_records(backend, as_of)
        else:
            records = _given_records(records)
        if known.empty:  # a first run: every record is new (no merge hashing every record's key)
            is_new = np.ones(len(records), dtype=bool)
        else:
            is_new = (
                records[["source", "record_id"]].merge(known[["source", "record_id"]], how="left", indicator=True)[
                    "_merge"
                ]
                == "left_only"
            ).to_numpy()
        result.records_new = int(is_new.sum())
    lap("load")
    result.incremental, result.records_read = bool(incremental), len(records)
    if not is_new.any() and not has_pending:
        result.seconds = time.perf_counter() - started
        return result
    if past is not None and model is None:
        raise ValueError(
            f"no stored model fits the comparisons: link the latest date first (it estimates a new model version), "
            f"then {as_of}"
        )
    result.later = later
    return Inputs(
        result, records, known, is_new, model, stored, reviews, applied, max_person, truth, lap, started, past, facts
    )


def _given_records(records: pd.DataFrame) -> pd.DataFrame:
    """The run's own frame of the records a caller gave: their source, record_id, identity block
    and (linkage.cluster: persons in time) record_date. Where the caller's frame holds just those
    columns in that order on a plain index (as `records_frame` makes them), a shallow copy: its
    columns are the caller's, not copies of them (the run adds and deletes columns of its own
    frame and never writes into a column), so that reading costs no second copy of every record;
    otherwise the columns taken and copied."""
    dated = ["record_date"] if "record_date" in records else []
    cols = ["source", "record_id", *IDENTITY, *dated]
    plain = isinstance(records.index, pd.RangeIndex) and records.index.start == 0 and records.index.step == 1
    if plain and list(records.columns) == cols:
        records = records.copy(deep=False)
    else:
        records = records[cols].reset_index(drop=True)
    if records["date_of_birth"].dtype != "datetime64[ns]":
        records["date_of_birth"] = pd.to_datetime(records["date_of_birth"])
    return records


def block(inputs: Inputs, blocker: Callable | None = None) -> LinkState:
    """Stage `block`: nodes and variants of the records read, the candidate pairs of every
    blocking pass (only pairs holding a new identity after the first run), and the model (trained
    here on a first run or with --retrain)."""
    spec = SPEC
    result, records, known, is_new, model = inputs.result, inputs.records, inputs.known, inputs.is_new, inputs.model
    stored, reviews, applied, max_person = inputs.stored, inputs.reviews, inputs.applied, inputs.max_person
    truth, lap, started, past, facts = inputs.truth, inputs.lap, inputs.started, inputs.past, inputs.facts
    learned = inputs.learned
    run_id, model_version = result.run_id, result.model_version
    inputs.__dict__.clear()  # the records go with `r` below
    r, variants = build_variants(records)
    del records
    # the identity block once per variant from here on (needed again only to write identities and
    # record_keys; the variants, blocking, training and aliases read the variants' own columns):
    # not held once per record through blocking and training
    identity = shed_identity(r, variants)
    release_memory()
    r["is_new"] = is_new
    result.variants = len(variants) if facts is None else facts.variants
    first_run = known.empty and facts is None
    # the variants holding a new record (a first run blocks every variant: none made)
    new_variants = None if first_run else pd.Index(np.unique(r["variant"].to_numpy()[is_new]))
    # record ids as integer codes from here on (`rid`), strings again only where rows are written
    ids = RecordIds.encode(r)
    # (an incremental run's blocking figures are score_first's: no labels needed again)
    label = _truth_labels(truth, r, ids, len(variants)) if truth is not None and _own_figures(facts) else None
    release_memory()  # the truth's rows, before the comparer's arrays are made
    known = ids.with_codes(known)  # `rid`: -1 for a record the run does not hold
    reviews = _review_codes(reviews, ids)
    # the comparer keeps a copy of the columns it compares only (Comparer), not of the blocking keys
    if model is None:  # a partitioned first run's aliases are learned from every partition (`learned`)
        aliases = (
            learned.aliases
            if learned is not None
            else {"forename": sorted(learn_aliases(_keyed_names(variants, identity, r), "forename_token"))}
        )
        comparer = Comparer(variants, spec, {k: frozenset(v) for k, v in aliases.items()})
    else:
        comparer = Comparer(variants, spec, model.alias_sets())
    lap("variants")
    # a month whose first scoring kept its pairs: those pairs, over the records read whole
    prescored = None if facts is None or _own_figures(facts) else inc.scored_pairs(variants, facts)
    if prescored is not None:  # (the whole population's blocking figures: inc.score_first's)
        pairs, stats = prescored, facts.stats
    elif facts is not None:  # the subset's blocks, capped and counted as the whole population's
        pairs, stats = candidate_pairs(
            variants, spec, new_variants, label, oversized=facts.oversized, comparable=facts.comparable
        )
        if not _own_figures(facts):  # the whole population's blocking figures (inc.score_first)
            stats = facts.stats
    else:
        pairs, stats = (blocker or candidate_pairs)(variants, spec, new_variants, label)
    lap("blocking")
    if model is None:
        model = train(variants, pairs, spec, comparer, model_version, comparable_pairs(variants, spec), seed=run_id)
        model.aliases = aliases
        # counted per variant, weighted by its records: no string per record (a partitioned first
        # run's: counted over every partition's records as they were read)
        model.tf = (
            learned.tf
            if learned is not None
            else fs.term_frequencies(variants, spec, np.bincount(r["variant"].to_numpy(), minlength=len(variants)))
        )
    # past blocking and training, the variants serve the term frequencies and the nodes (the
    # comparer holds its own columns): the blocking keys and the other identity columns go
    # (a column alone in its block, as build_variants makes them, deleted without copying the others)
    drop_columns(variants, [c for c in variants.columns if c not in _scored_columns(spec)])
    # the identity columns the variants no longer hold, as codes (written back decoded)
    identity = code_identity(identity, keep=set(variants.columns))
    lap("training")
    result.blocking = [(p.name, p.pairs, p.new_pairs, p.reduction_ratio, p.pair_completeness) for p in stats]
    result.candidate_pairs = len(pairs) if _own_figures(facts) else facts.candidate_pairs
    return LinkState(
        result,
        spec,
        r,
        variants,
        comparer,
        model,
        known,
        stored,
        stats,
        pairs,
        is_new,
        max_person,
        truth,
        lap,
        started,
        reviews,
        applied,
        past,
        facts is not None,
        identity,
        ids,
    )


def _own_figures(facts: inc.Blocks | None) -> bool:
    """Whether the run's own blocking gives its blocking figures (not `inc.score_first`'s)."""
    return facts is None or facts.stats is None


def _keyed_names(variants: pd.DataFrame, identity: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
    """The variants' nodes, forename tokens and source person keys, for `learn_aliases`: each
    variant's records share its node and tokens (the variant key), so the keyed (node, token)
    pairs are those of the records, the aliases the same."""
    if "source_person_key" in identity:
        key = identity["source_person_key"].to_numpy()
    else:  # held per record (a key that differs within a variant): a node's key is its records'
        key = r["source_person_key"].to_numpy()[first_rows(r["variant"].to_numpy())]
    return pd.DataFrame(
        {
            "node": variants["node"].to_numpy(),
            "forename_token": variants["forename_token"].to_numpy(),
            "source_person_key": key,
        },
        copy=False,
    )


def _scored_columns(spec) -> set[str]:
    """The variants' columns read after training: nodes and sources, and the values of the
    term-frequency adjustment (`model.tf_keys`)."""
    tf = {x for c in spec.comparisons if c.tf for x in (c.column, c.tf_by) if x is not None}
    return {"node", "source", *tf}


def score_chunk(state: LinkState, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Weights of one chunk of candidate pairs (variant positions `a`, `b`), those worth keeping."""
    return engine_score_chunk(
        state.comparer, state.model, state.spec, tf_arrays(state.variants, state.spec, state.model), a, b
    )


def finish(
    backend, state: LinkState, scored: pd.DataFrame | list[pd.DataFrame], clustering: Callable | None = None
) -> LinkResult:
    """The stages after scoring: decide, cluster, write (from every chunk's scored pairs).
    `clustering` replaces `cluster_local` (same arguments and result: linkage.spark decides
    the connected parts apart). `scored` as a list of one frame hands it over: the list is
    emptied and the frame freed once node pairs are made, not held through clustering and
    writing."""
    decided = decide_stage(state, scored, clustering, lambda: _decided_links(backend))
    return write(backend, cluster(decided))


@dataclass
class Decided:
    """What the `decide` stage gives `cluster`: the node pairs and the decisions made on them."""

    state: LinkState
    pairs_by_node: pd.DataFrame
    clustered: Clustered


@dataclass
class Spine:
    """What the `cluster` stage gives `write`: the persons as link events, the decisions as rows,
    the identities of the records linked for the first time, and the run's records with their
    persons (for linkage.record_keys)."""

    state: LinkState
    events: pd.DataFrame
    decided: pa.Table
    identities: np.ndarray  # positions in `state.r` of the records whose identities this run stores
    expected: pd.DataFrame
    same: dict | None = None  # columns of `events` holding one value in every event (added as written)


def decide_stage(
    state: LinkState,
    scored: pd.DataFrame | list[pd.DataFrame],
    clustering: Callable | None,
    decided_links: Callable[[], pd.DataFrame],
) -> Decided:
    """Stage `decide`: node pairs from the scored variant pairs (engine.node_pairs), then the
    decisions on them, persons' evidence and constraints read (`cluster_local`, or `clustering`:
    the same arguments and result). `decided_links` reads the links decided before (needed only
    where a reviewer parts a person). `scored` as a list of one frame is emptied: the scored pairs
    are freed once node pairs are made."""
    result, spec, r, variants, comparer, model = (
        state.result,
        state.spec,
        state.r,
        state.variants,
        state.comparer,
        state.model,
    )
    known, stored, reviews, past, lap = state.known, state.stored, state.reviews, state.past, state.lap
    run_id, model_version = result.run_id, result.model_version
    lap("scoring")
    pairs_by_node = node_pairs(scored.pop() if isinstance(scored, list) else scored, variants, spec, comparer, model)
    del scored  # the caller's list is empty: the scored pairs go now, not after writing
    lap("node_pairs")

    trained_now = model_version not in (stored["model_version"].to_pylist() if stored.num_rows else [])
    learned = None if trained_now else model.relatives
    ids = state.ids
    if clustering is None or ids is None:  # the run's records by their codes (`rid`)
        coded = decided_links if ids is None else (lambda: _review_codes(decided_links(), ids))
        inputs = ClusterInputs(r, known, reviews, past is not None, coded, pairs_by_node)
    else:  # another engine's clustering reads records by (source, record_id): their names, for it
        named = ids.named(r)  # every column it may read (node, dates, variant), the codes named
        inputs = ClusterInputs(
            named, known.drop(columns="rid"), reviews, past is not None, decided_links, pairs_by_node
        )
    clustered = (clustering or cluster_local)(
        inputs,
        variants,
        comparer,
        spec,
        model,
        run_id,
        learned,
    )
    del inputs
    decisions = clustered.decisions
    # the queue a reviewer is given: one pair per two persons left apart (cluster.review_queue)
    decisions.review = review_queue(decisions.review, clustered.root_of)
    if trained_now:  # learned with the model; none seen: later runs send such pairs to review
        model.relatives = {} if decisions.relatives is None else _learned_relatives(decisions.relatives)
    result.links, result.reviews = len(decisions.links), len(decisions.review)
    result.relatives = decisions.relatives
    # A model made by this run is written as the text it is now (its relatives learned): its term
    # frequencies, a dict entry per value, are not held through the spine and write stages.
    state.model_json = model.to_json() if trained_now else None
    if "record_date" in r:  # the records' dates served the persons in time (clustering) only
        drop_columns(r, ["record_date"])
    lap("clustering")
    state.variants = state.comparer = state.model = None  # not needed past the decisions
    return Decided(state, pairs_by_node, clustered)


def cluster(decided: Decided) -> Spine:
    """Stage `cluster`: persons from the decisions — person ids (an existing person keeps its
    earliest id, a new one is numbered in a fixed order, a part a review splits off is new), and
    the link events: assignments of the new records, merges and splits of existing ones."""
    state, pairs_by_node, clustered = decided.state, decided.pairs_by_node, decided.clustered
    decisions, review_joined = clustered.decisions, clustered.review_joined
    result, r, known, is_new, max_person = state.result, state.r, state.known, state.is_new, state.max_person
    reviews, applied, past, lap, ids = state.reviews, state.applied, state.past, state.lap, state.ids
    run_id, as_of, model_version = result.run_id, result.as_of, result.model_version
    node_codes, nodes = pd.factorize(r["node"])
    existing = _known_rows(r, known)

    # Person ids: a cluster keeps its earliest existing id; others are new, numbered in a fixed order.
    # A person parted by a review keeps its id on the part holding its first record; the other
    # parts are new persons (split events).
    root_of_node = np.array([clustered.root_of(n) for n in nodes], dtype=object)
    # each record's person as a code (`root_code`: the roots numbered as `roots`), not a Python
    # object a record: the person ids and their order are read per root, then taken by code
    root_of_node_code, roots = pd.factorize(root_of_node)
    root_code = root_of_node_code[node_codes].astype(np.int32 if len(roots) < 2**31 else np.int64)
    del node_codes, root_of_node_code
    # one mapping, read three times below (a Series: its index's hash table, not a dict of every node)
    node_root = pd.Series(root_of_node, index=nodes, copy=False)
    existing_ids = existing.assign(root=existing["node"].map(node_root))
    claims = existing_ids.groupby("root")["person_id"].min()
    parted = claims[claims.duplicated(keep=False)]
    split_roots: set = set()
    if not parted.empty:
        holders = existing_ids.merge(parted.rename("claim").reset_index(), on="root")
        holders = holders[holders["person_id"] == holders["claim"]].sort_values(_record_key(holders))
        keeper = holders.drop_duplicates("claim").set_index("claim")["root"]
        split_roots = set(parted.index[parted.index.to_numpy() != keeper.reindex(parted.to_numpy()).to_numpy()])
        claims = claims.drop(list(split_roots))
    existing_ids = claims
    # deterministic order of new persons: by their smallest (source, record_id)
    # (the records' order by source and record id: one sort of positions, no copy of the columns;
    # each person's first place in it, from the codes: no hash of a Python object a record)
    in_order = root_code[_record_order(r)]
    seen, at_first = np.unique(in_order, return_index=True)
    del in_order
    first = pd.Series(roots.take(seen[np.argsort(at_first, kind="stable")]) if len(seen) else roots[:0])
    del seen, at_first
    fresh = first[~first.isin(existing_ids.index)].tolist()
    del first
    if past is None:
        new_ids = {x: f"{PERSON_PREFIX}{max_person + i + 1:09d}" for i, x in enumerate(fresh)}
    else:
        fresh_codes = np.flatnonzero(pd.Series(roots).isin(set(fresh)).to_numpy())
        at = np.flatnonzero(np.isin(root_code, fresh_codes))
        members = ids.named(r[["source", "rid"]].iloc[at]).assign(root=roots.take(root_code[at]))
        new_ids, result.ids_reused = _past_ids(past, members, max_person)
    person_of_root = {**existing_ids.to_dict(), **new_ids}
    # each root's person id (a root none names: missing, as a map of every record gave), by code
    person_of_code = pd.Series(roots).map(person_of_root).to_numpy(dtype=object)
    r["person_id"] = person_of_code[root_code]
    del root_code, person_of_code
    result.persons_new = len(new_ids)
    expected = _expected_quality(pairs_by_node, node_root)
    result.expected = expected

    linked_nodes = set(decisions.links["a"]) | set(decisions.links["b"])
    node_known = set(existing["node"])
    new_rows = r if is_new.all() else r[r["is_new"]]
    # a code a record (not a 10-character string: every record of a first run has an event)
    decided_by = pd.Categorical.from_codes(
        np.where(new_rows["node"].isin(node_known), 0, np.where(new_rows["node"].isin(linked_nodes), 1, 2)),
        ["source_key", "link", "new_person"],
    )
    # record ids by their codes (`rid`): named slice by slice as written; the columns are views
    # of the records' (copy=False: not consolidated into copies), every record's in a first run
    events = pd.DataFrame(
        {
            "source": new_rows["source"],
            "rid": new_rows["rid"],
            "person_id": new_rows["person_id"],
            "decided_by": decided_by,
        },
        copy=False,
    )
    # the same in every assignment: added slice by slice as written, unless other events join them
    same = {"previous_person_id": None, "event": "assign", "as_of": as_of}
    # each node's person now (a first run has no existing records: no mapping of every record)
    now = dict(zip(r["node"], r["person_id"], strict=False)) if len(existing) else {}
    moved = existing.assign(now=existing["node"].map(now), root=existing["node"].map(node_root))
    del now, node_root
    moved = moved[moved["now"] != moved["person_id"]]
    if past is not None:
        moved = moved.iloc[:0]  # a past date's run moves no record linked as of its date
    split = moved["root"].isin(split_roots).to_numpy()
    by_review = split | moved["root"].isin(review_joined).to_numpy()
    result.merges, result.splits = int((~split).sum()), int(split.sum())
    # A reviewer's decision is known from the time it was made: the spine as of any earlier
    # date does not show what it changed.
    review_day = as_of
    pending = reviews[reviews["decision_id"] > applied] if not reviews.empty else reviews
    if not pending.empty:
        review_day = max(as_of, pd.Timestamp(pending["decided_at"].max()).date()) if as_of else None
    merges = pd.DataFrame(
        {
            "source": moved["source"],
            "rid": moved["rid"],
            "person_id": moved["now"],
            "previous_person_id": moved["person_id"],
            "event": np.where(split, "split", "merge"),
            "decided_by": np.where(by_review, "review", "link"),
            "as_of": np.where(by_review, review_day, as_of),
        }
    )
    if past is not None:
        beneath = _beneath(past, ids.named(new_rows[["source", "rid", "person_id"]]), known)
        beneath.insert(1, "rid", ids.codes(beneath["source"].to_numpy(), beneath["record_id"].to_numpy()))
        beneath = beneath.drop(columns="record_id")  # each a record of the run (`new_rows`)
        result.unlinked_later = int((beneath["event"] == "unlink").sum())
        result.moved_later = len(beneath) - result.unlinked_later
    else:
        beneath = merges.iloc[:0]
    if len(merges) or len(beneath):  # (a first run's events stay as made: no copy, its codes kept)
        events = events.assign(**same)[[*merges.columns]]
        same = {}
        events = pd.concat([x for x in (events, merges, beneath) if len(x) or x is events], ignore_index=True)
    # run_id, weight and model_version, the same in every event, are added slice by slice as written

    decided = _decisions_table(run_id, model_version, decisions, pairs_by_node, r, ids)
    # The identities to store, as positions in `r` (written in slices: the rows are not copied).
    identities = np.arange(len(r)) if is_new.all() else np.flatnonzero(r["is_new"].to_numpy())
    if past is not None:  # one identity per record: the later run's, where it linked the record
        rows = ids.named(pd.DataFrame({c: r[c].to_numpy()[identities] for c in ("source", "rid")}))
        held = rows.merge(past.identified, how="left", indicator=True)["_merge"]
        identities = identities[(held == "left_only").to_numpy()]
    lap("spine")
    return Spine(state, events, decided, identities, expected, same)


def write(backend, spine: Spine) -> LinkResult:
    """Stage `write`: the run's rows to the warehouse in one transaction (blocking figures,
    identities, link events, decisions, the model when new, the run, linkage.record_keys), then
    the quality tables."""
    state, events, decided, identities, expected, same = (
        spine.state,
        spine.events,
        spine.decided,
        spine.identities,
        spine.expected,
        spine.same or {},
    )
    result, r, stats, model_json, stored, truth = (
        state.result,
        state.r,
        state.stats,
        state.model_json,
        state.stored,
        state.truth,
    )
    reviews, applied, past, lap, started = state.reviews, state.applied, state.past, state.lap, state.started
    incremental, identity, ids = state.incremental, state.identity, state.ids
    run_id, as_of, model_version = result.run_id, result.as_of, result.model_version
    state.__dict__.clear()
    spine.__dict__.clear()
    result.seconds = time.perf_counter() - started
    blocking = pd.DataFrame(
        [{"run_id": run_id, "as_of": as_of, "pass": p.name, "pass_order": i, **p.row()} for i, p in enumerate(stats)]
    ).drop(columns="name")
    blocking = blocking.astype({"true_pairs_found": "Int64", "pair_completeness": "float64"})
    if isinstance(identity, SpilledFrame):  # (`link`: held on disk since blocking)
        identity = identity.load()
    release_memory()
    fit_duckdb(backend, result.memory_limit)  # DuckDB's share: what the run's frames leave of the budget
    with backend.transaction() as s:
        s.insert("linkage.blocking_passes", pa.Table.from_pandas(blocking, preserve_index=False))
        _insert_identities(s, r, identities, run_id, identity, ids=ids)
        _insert(
            s,
            "linkage.link_events",
            events,
            same={**same, "run_id": run_id, "weight": None, "model_version": model_version},
            ids=ids,
        )
        s.insert("linkage.pair_decisions", decided)
        if model_version not in (stored["model_version"].to_pylist() if stored.num_rows else []):
            s.insert(
                "linkage.models",
                pa.table({"model_version": [model_version], "trained_in_run": [run_id], "model_json": [model_json]}),
            )
        s.insert(
            "linkage.runs",
            pa.Table.from_pylist(
                [
                    {
                        "run_id": run_id,
                        "as_of": as_of,
                        "model_version": model_version,
                        "records_new": result.records_new,
                        "variants": result.variants,
                        "candidate_pairs": result.candidate_pairs,
                        "links": result.links,
                        "reviews": result.reviews,
                        "merges": result.merges,
                        "persons_new": result.persons_new,
                        "seconds": result.seconds,
                        # a past date's run applies the decisions made by its date only: it leaves the mark as it is
                        "review_decisions": (
                            int(reviews["decision_id"].max()) if not reviews.empty and past is None else applied
                        ),
                        "splits": result.splits,
                        "expected_precision": _overall(expected, "precision"),
                        "expected_recall": _overall(expected, "recall"),
                        "blocking": repr([b[:3] for b in result.blocking]),
                        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    }
                ]
            ),
        )
    from linkage.report import (
        quality_in_step,
        rebuild_quality_records,
        update_quality_records,
        write_quality,
        write_quality_kept,
    )

    moved = ids.named(events[["source", "rid", "person_id"]]) if incremental else None  # read by the month only
    del identities, events, decided
    if past is None:
        # The stored keys and spine, for the next run to read what it touches: a transaction of its
        # own, once the rows above are freed. Until it commits `linkage.key_state` names an earlier
        # run (or none), so a run that fails here leaves the next one to take the whole path. The
        # quality report's records (linkage.quality_records) are kept in step in the same transaction.
        with backend.transaction() as s:
            inc.write(
                s,
                r,
                run_id,
                as_of,
                whole=not incremental,
                ledger=result.ledger_id,
                moved=moved,
                rebuild=False,
                expand=lambda part: ids.named(identity_rows(part, identity)),
            )
            del r, identity, ids  # the run's records, before DuckDB groups the stored keys
            release_memory()
            fit_duckdb(backend, result.memory_limit)
            if not incremental:
                inc.rebuild_blocks(s, SPEC)
            lap("write")
            if incremental and quality_in_step(s, truth):
                update_quality_records(s, moved, truth)
            else:  # a whole-population run; kept records from before, or without the truth given now
                rebuild_quality_records(s, truth)
    del moved
    if past is not None:
        del r, identity, ids
    lap("quality" if past is None else "write")  # keeping the quality counts (in the keys' transaction)
    if past is None:
        result.quality = write_quality_kept(backend, run_id, as_of, truth, expected)
    else:
        result.quality = write_quality(backend, run_id, as_of, truth, expected, as_of)
    if result.memory_limit is not None:
        _duckdb_limit(backend, result.memory_limit // 2)  # DuckDB's half again, as the run began
    lap("quality")
    return result


@dataclass
class ClusterInputs:
    """What clustering reads of a run (all of it, or one connected part's rows of each)."""

    # records: source, record_id (or its code `rid`, records.RecordIds: a link run's own), node
    r: pd.DataFrame
    known: pd.DataFrame  # records linked already: source, record_id (and `rid` where `r` has it), person_id
    reviews: pd.DataFrame  # reviewers' decisions (load_decisions; `left_rid`, `right_rid` where `r` has `rid`)
    past: bool  # a past date's run: persons as of its date are neither joined nor split
    decided_links: Callable[[], pd.DataFrame]  # the links decided so far (read when a review parts a person)
    pairs_by_node: pd.DataFrame  # scored node pairs (engine.node_pairs)


@dataclass
class Clustered:
    root_of: Callable[[str], str]  # a node's person's root node
    decisions: Decisions
    review_joined: set  # roots of persons a reviewer's match joined
    uf: UnionFind | None = None


def cluster_local(
    inputs: ClusterInputs,
    variants: pd.DataFrame,
    comparer: Comparer,
    spec,
    model: fs.Model,
    seed: int,
    learned: dict | None,
    defer: bool = False,
    relatives: tuple[pd.DataFrame, dict] | None = None,
) -> Clustered:
    """Persons from node pairs: existing persons first, as they are (but parted where a reviewer
    said two of their records are two people); then reviewers' matches; then new evidence by
    weight (cluster.decide; `defer` and `relatives` as there)."""
    r, known, reviews, past = inputs.r, inputs.known, inputs.reviews, inputs.past
    nodes = pd.unique(r["node"])
    keys = node_keys(r)
    reviewed = _review_nodes(reviews, r)
    for row in reviewed[reviewed["decision"] == "non-match"].itertuples():
        side = f"sides of review decision {row.decision_id}"
        keys.setdefault(row.node_a, {})[side] = frozenset(["a"])
        keys.setdefault(row.node_b, {})[side] = frozenset(["b"])
    if past:  # persons as of a past date are as the later spines hold them: none joins another
        held = _known_rows(r[[*_record_key(r), "node"]], known)
        for node, ids in held.groupby("node")["person_id"]:
            keys.setdefault(node, {})["existing person"] = frozenset(ids)
    uf = UnionFind(nodes, keys, node_spans(r))
    existing = _known_rows(r, known)
    to_part = []
    for _, group in existing.groupby("person_id", sort=True)["node"]:
        members = group.unique()
        if not past and _parted(members, keys):  # a past date's run splits no person
            to_part.append(members)
            continue
        roots = [uf.find(n) for n in members]
        for other in roots[1:]:
            ra, rb = uf.find(roots[0]), uf.find(other)
            if ra != rb:
                uf.union(ra, rb)
    matches = reviewed[reviewed["decision"] == "match"]
    if to_part:
        _replay(inputs.decided_links(), uf, to_part, r, matches)
    review_joined = set()
    for a, b in matches[["node_a", "node_b"]].itertuples(index=False):
        ra, rb = uf.find(a), uf.find(b)
        if ra != rb and uf.conflict(ra, rb) is None:
            uf.union(ra, rb)
            review_joined.add(uf.find(a))
    persons = _person_evidence(spec, model, variants, comparer, seed, learned)
    decisions = decide(
        inputs.pairs_by_node,
        uf,
        spec.link_at,
        spec.queue_at,
        spec.corroborate,
        persons,
        defer,
        relatives,
        corroborated_at=model.link_at(spec),
    )
    return Clustered(uf.find, decisions, review_joined, uf)


def _past_ids(past: PastRun, members: pd.DataFrame, max_person: int) -> tuple[dict, int]:
    """Person ids of a past date's new persons (`members`: source, record_id, root of their records).
    A person takes a person id the later spine gives its records, pairs of the most records first
    (then in the order of the persons' first records), unless another person took that id or it was
    in use on the run's date; a person left without one gets a new id. Also how many kept a later id."""
    m = members.sort_values(["source", "record_id"]).reset_index(drop=True)
    m["at"] = np.arange(len(m))
    m = m.merge(past.later_spine, on=["source", "record_id"], how="left")  # keeps the order
    roots = m.drop_duplicates("root")[["root", "at"]].rename(columns={"at": "first"})
    pairs = (
        m.dropna(subset=["person_id"])
        .groupby(["root", "person_id"], as_index=False)
        .agg(n=("at", "size"), at=("at", "min"))
    )
    pairs = pairs.merge(roots, on="root").sort_values(["n", "first", "at"], ascending=[False, True, True])
    taken, ids = set(past.seen_ids), {}
    for root, pid in pairs[["root", "person_id"]].itertuples(index=False):
        if root not in ids and pid not in taken:
            ids[root] = pid
            taken.add(pid)
    reused = len(ids)
    for root in roots["root"]:
        if root not in ids:
            ids[root] = f"{PERSON_PREFIX}{max_person + len(ids) - reused + 1:09d}"
    return ids, reused


def _beneath(past: PastRun, assigned: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """Link events, on the later date, that hand a past date's records over to the later spine: a
    record the later spine holds under another person moves to it (`merge` where that person holds
    records of several persons as of the past date, else `split`); a record it does not hold
    (retracted by then) is `unlink`ed. They rank beneath the later run's own events."""
    keys = ["source", "record_id"]
    mine = assigned[[*keys, "person_id"]]
    later = past.later_spine.rename(columns={"person_id": "later_id"})
    now = mine.merge(later, on=keys, how="left")
    both = pd.concat([known[[*keys, "person_id"]], mine], ignore_index=True).merge(later, on=keys)
    persons = both.groupby("later_id")["person_id"].nunique()
    joins = set(persons[persons > 1].index)
    moved = now[now["later_id"].notna() & (now["later_id"] != now["person_id"])]
    gone = now[now["later_id"].isna()]
    return pd.DataFrame(
        {
            "source": pd.concat([moved["source"], gone["source"]]),
            "record_id": pd.concat([moved["record_id"], gone["record_id"]]),
            "person_id": pd.concat([moved["later_id"], gone["person_id"]]),
            "previous_person_id": pd.concat([moved["person_id"], gone["person_id"]]),
            "event": np.concatenate(
                [np.where(moved["later_id"].isin(joins), "merge", "split"), np.full(len(gone), "unlink")]
            ).astype(object),
            "decided_by": "later_run",
            "as_of": past.later,
        }
    ).reset_index(drop=True)


def _person_evidence(spec, model, variants, comparer, seed: int, learned: dict | None) -> PersonEvidence:
    """What decisions read beyond a node pair: per source, the weight of "keyed differently";
    each node's identities; and the relatives' probabilities learned when the model was trained
    (a later, smaller run reuses them rather than learning from its few new pairs)."""
    key_weight: dict[str, float] = {}
    for c in spec.comparisons:
        if c.kind == "key":
            w = model.weights(c.name)
            key_weight.update({g: float(w[2 * i]) for i, g in enumerate(c.groups)})
    nodes = NodeVariants(variants["node"].to_numpy())  # each node's variant positions, one array for all
    return PersonEvidence(
        key_weight, nodes, comparer.levels, spec.link_probability, spec.review_probability, seed, learned
    )


def _learned_relatives(table: pd.DataFrame) -> dict[str, float]:
    rows = table[["rule", "configuration", "probability"]].itertuples(index=False)
    return {f"{r}|{c}": round(float(p), 6) for r, c, p in rows}


def _record_key(r: pd.DataFrame) -> list[str]:
    """How `r`'s records are named: by their codes (`rid`, a link run's, records.RecordIds), or by
    (source, record_id) (another engine's part of a run)."""
    return ["rid"] if "rid" in r else ["source", "record_id"]


def _known_rows(r: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """The records of `r` linked already, with their person ids (an inner merge with `known`); a
    first run's none without hashing every record's key."""
    key = _record_key(r)
    known = known[[*key, "person_id"]]
    if key == ["rid"]:
        known = known[known["rid"].to_numpy() >= 0]
    if known.empty:
        return r.iloc[:0].merge(known, on=key, how="inner")
    return r.merge(known, on=key, how="inner")


def _review_codes(frame: pd.DataFrame, ids: RecordIds) -> pd.DataFrame:
    """Pairs of records (left_/right_source, left_/right_record_id) with their codes in the run
    (`left_rid`, `right_rid`; -1 for a record it does not hold)."""
    return ids.with_codes(frame, ("left_", "right_"))


def _record_order(r: pd.DataFrame) -> np.ndarray:
    """Positions of `r` in the order of (source, record_id), as `sort_values(["source", "record_id"])`
    gives them: source by source, the record ids sorted as Python compares them (what pandas sorts
    an object column by), without factorising every record id. Records by their codes (`rid`) sort
    by them: the codes are in that order (records.RecordIds)."""
    if "rid" in r:
        return np.argsort(r["rid"].to_numpy(), kind="stable")
    source = r["source"].to_numpy(dtype=object)
    record = r["record_id"].to_numpy(dtype=object)
    parts = []
    for name in sorted(pd.unique(source)):
        at = np.flatnonzero(source == name)
        parts.append(at[np.argsort(record[at], kind="stable")])
    return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


def _decisions_table(run_id, model_version, decisions, node_pairs, r, ids: RecordIds) -> pa.Table:
    """Each link and review with the comparison vector and weight of its deciding pair."""
    parts = []
    for kind, table in (("link", decisions.links), ("review", decisions.review)):
        if table.empty:
            continue
        best = table[["a", "b"]].merge(node_pairs, on=["a", "b"], how="left")
        if kind == "review":
            best["reason"] = table["why"].to_numpy()
        else:
            best["reason"] = None
        best["decision"] = kind
        parts.append(best)
    if not parts:
        return pa.table({"run_id": pa.array([], pa.int64())})
    d = pd.concat(parts, ignore_index=True)
    # each variant's first record by source and record id, for the variants decided on only
    variant = r["variant"].to_numpy()
    mine = np.isin(variant, np.union1d(d["va"].to_numpy(), d["vb"].to_numpy()))
    rep = pd.DataFrame({"variant": variant[mine], "source": r["source"].to_numpy()[mine]})
    rep["rid"] = r["rid"].to_numpy()[mine]  # codes in the order of (source, record_id)
    rep = rep.sort_values(["variant", "rid"], kind="stable").drop_duplicates("variant").set_index("variant")
    out = pd.DataFrame(
        {
            "run_id": run_id,
            "left_source": rep["source"].reindex(d["va"]).to_numpy(),
            "left_record_id": ids.objects(rep["rid"].reindex(d["va"]).to_numpy()),
            "right_source": rep["source"].reindex(d["vb"]).to_numpy(),
            "right_record_id": ids.objects(rep["rid"].reindex(d["vb"]).to_numpy()),
            **{f"{c}_level": d[c].astype("int16").to_numpy() for c in COMPARISONS},
            "weight": d["weight"].to_numpy(),
            "probability": fs.probability(d["weight"].to_numpy()),
            "decision": d["decision"].to_numpy(),
            "reason": d["reason"].to_numpy(),
            "model_version": model_version,
        }
    )
    return pa.Table.from_pandas(out, preserve_index=False)


def _truth_labels(truth: Path, r: pd.DataFrame, ids: RecordIds, n_variants: int) -> np.ndarray:
    """Each variant's true person as an integer code (-1 unknown), from the ground truth: the
    person of its first record (in `r`'s order) that the truth names, persons numbered in the
    order those records come. Read in Arrow source by source (only that source's record ids and
    persons at a time), each record found by its code (`ids.codes`) and each person by its place
    among the truth's distinct persons (read as a dictionary), not by merging a Python string a
    record twice nor by holding every truth row's strings at once."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(truth) / "records.parquet"
    # the distinct persons, once: the Parquet reader gives the column as a dictionary
    chunks = pq.read_table(path, columns=["person_id"], read_dictionary=["person_id"]).column(0)
    chunks = chunks.unify_dictionaries().chunks  # one dictionary for every chunk
    persons = chunks[0].dictionary if chunks else pa.array([], pa.string())
    del chunks
    code = np.full(len(ids.ids), -1, dtype=np.int64)  # each record code's person
    for name, (a, b) in ids.bounds.items():
        t = pq.read_table(path, columns=["record_id", "person_id"], filters=[("source", "=", name)])
        if not t.num_rows:
            continue
        at = pc.index_in(t.column("record_id"), value_set=ids.ids.slice(a, b - a)).to_numpy(zero_copy_only=False)
        person = pc.index_in(t.column("person_id"), value_set=persons).to_numpy(zero_copy_only=False)
        del t
        keep = ~pd.isna(at) & ~pd.isna(person)  # a record the run holds, with a person
        at, person = at[keep].astype(np.int64) + a, person[keep].astype(np.int64)
        code[at[::-1]] = person[::-1]  # the first truth row of a record
        del at, person, keep
    per_record = code[r["rid"].to_numpy()]
    named = np.flatnonzero(per_record >= 0)  # records with a true person, in r's order
    variant = r["variant"].to_numpy()[named]
    _, first = np.unique(variant, return_index=True)
    first.sort()  # each variant's first such record, in r's order
    label = np.full(n_variants, -1, dtype=np.int64)
    label[variant[first]] = pd.factorize(per_record[named[first]])[0]
    return label


def _insert_identities(
    session,
    r: pd.DataFrame,
    positions: np.ndarray,
    run_id: int,
    identity: pd.DataFrame | None = None,
    rows: int = inc.SLICE,
    ids: RecordIds | None = None,
) -> None:
    """`linkage.identities`: the records of `r` at `positions` (source, record_id, node, identity
    block, run), in slices of `rows` (only a slice is ever copied); the identity columns that
    `identity` holds once per variant (records.shed_identity) are taken from there; record ids
    from `ids` where `r` holds their codes (`rid`)."""
    cols = ["source", _record_key(r)[-1], "node", *IDENTITY]
    # the identity block's columns taken in Arrow from their variants (IdentityArrow), the rest
    # of a slice's columns converted from `r`; written as `_insert` writes a frame
    coded = IdentityArrow(identity)
    held = [c for c in cols if c in r.columns]
    for start in range(0, len(positions), rows):
        part = r.iloc[positions[start : start + rows]]
        table = pa.Table.from_pandas(part[held], preserve_index=False)
        back = coded.columns(part["variant"].to_numpy()) if identity is not None else {}
        table = pa.table(
            {
                **{c: (table[c] if c in held else back[c]) for c in cols},
                "run_id": pa.array(np.full(len(part), run_id, dtype=np.int64)),
            }
        )
        _insert_arrow(session, "linkage.identities", table, ids)


def _insert(
    session,
    table: str,
    frame: pd.DataFrame,
    rows: int = inc.SLICE,
    same: dict | None = None,
    ids: RecordIds | None = None,
) -> None:
    """Insert a data frame in slices, so that its Arrow copy stays small whatever its size
    (dates of birth as dates, categories as their values); `same`: columns holding one value in
    every row, added to each slice rather than held for every row; `ids`: the record ids of a
    `rid` column of codes, written in its place as `record_id` (taken in Arrow, slice by slice)."""
    for start in range(0, len(frame), rows):
        part = frame.iloc[start : start + rows]
        if same:
            part = part.assign(**same)
        _insert_arrow(session, table, pa.Table.from_pandas(part, preserve_index=False), ids)


def _insert_arrow(session, table: str, part: pa.Table, ids: RecordIds | None = None) -> None:
    """`_insert`'s slice in Arrow: record codes named, categories as their values, dates of birth as
    dates."""
    if ids is not None and "rid" in part.column_names:
        i = part.column_names.index("rid")
        part = part.set_column(i, "record_id", ids.names(part["rid"].to_numpy()))
    for i, f in enumerate(part.schema):
        if pa.types.is_dictionary(f.type):
            part = part.set_column(i, f.name, part[f.name].cast(f.type.value_type))
    if "date_of_birth" in part.column_names:
        i = part.column_names.index("date_of_birth")
        part = part.set_column(i, "date_of_birth", part["date_of_birth"].cast(pa.date32()))
    session.insert(table, part)


def _with_nodes(frame: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
    """Pairs of records (left_/right_source, left_/right_record_id) with their two nodes
    (`node_a`, `node_b`); pairs naming a record no longer held (retracted since) are left out.
    Where `r` names its records by code, `frame` carries the codes too (`left_rid`, `right_rid`)."""
    if "rid" in r:
        where = r[["rid", "node"]]
        return frame.merge(where.rename(columns={"rid": "left_rid", "node": "node_a"}), on="left_rid").merge(
            where.rename(columns={"rid": "right_rid", "node": "node_b"}), on="right_rid"
        )
    where = r[["source", "record_id", "node"]]
    return frame.merge(
        where.rename(columns={"source": "left_source", "record_id": "left_record_id", "node": "node_a"}),
        on=["left_source", "left_record_id"],
    ).merge(
        where.rename(columns={"source": "right_source", "record_id": "right_record_id", "node": "node_b"}),
        on=["right_source", "right_record_id"],
    )


def _review_nodes(reviews: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
    """Reviewers' decisions (the latest per pair) with the nodes of their two records."""
    cols = ["decision_id", "decision", "node_a", "node_b"]
    if reviews.empty:
        return pd.DataFrame(columns=cols)
    return _with_nodes(reviews, r).sort_values("decision_id")[cols].reset_index(drop=True)


def _parted(members, keys: dict) -> bool:
    """Whether these nodes hold both sides of a reviewer's non-match (or two deaths)."""
    seen: dict = {}
    for n in members:
        for k, v in keys.get(n, {}).items():
            if seen.setdefault(k, v) != v:
                return True
    return False


def _decided_links(backend) -> pd.DataFrame:
    with backend.transaction() as s:
        return s.fetch(
            "select left_source, left_record_id, right_source, right_record_id, weight "
            "from linkage.pair_decisions where decision = 'link'"
        ).to_pandas()


def _replay(links: pd.DataFrame, uf: UnionFind, groups: list, r: pd.DataFrame, matches: pd.DataFrame) -> None:
    """Rebuild persons a review parts from the evidence that made them: every link decided
    between their nodes (`links`, and reviewers' matches first), in descending weight, none that
    would join the two sides of a non-match."""
    edges = _with_nodes(links, r)
    forced = matches[["node_a", "node_b"]].assign(weight=np.inf)
    edges = pd.concat([forced, edges[["node_a", "node_b", "weight"]]], ignore_index=True)
    edges = edges.sort_values("weight", ascending=False, kind="mergesort")
    for members in groups:
        inside = set(members)
        mine = edges[edges["node_a"].isin(inside) & edges["node_b"].isin(inside)]
        for a, b in mine[["node_a", "node_b"]].itertuples(index=False):
            ra, rb = uf.find(a), uf.find(b)
            if ra != rb and uf.conflict(ra, rb) is None:
                uf.union(ra, rb)


def _expected_quality(pairs_by_node: pd.DataFrame, root: dict) -> pd.DataFrame:
    """The model's own estimate of precision and recall per source pair, over the node pairs it
    scored at or above the review level: expected precision is the mean match probability of
    the pairs that ended in one person, expected recall their probabilities' sum over all pairs'
    (matches the blocking never proposed, or scored below review, are not counted)."""
    from outcomes.contract import SOURCES

    order = {s: i for i, s in enumerate(SOURCES)}
    cols = ["source_a", "source_b", "expected_precision", "expected_recall", "p_linked", "n_linked", "p_all"]
    if pairs_by_node.empty:
        return pd.DataFrame(columns=cols)
    a, b = pairs_by_node["a"], pairs_by_node["b"]
    p = fs.probability(pairs_by_node["weight"].to_numpy())
    if isinstance(root, pd.Series):  # the nodes' positions: no string split nor lookup a pair
        at = _expected_by_position(a.to_numpy(), b.to_numpy(), root, order)
        if at is not None:
            first, second, names, same = at
            d = pd.DataFrame(
                {"a": first, "b": second, "p_linked": p * same, "n_linked": same.astype(int), "p_all": p},
                copy=False,
            )
            g = d.groupby(["a", "b"], as_index=False)[["p_linked", "n_linked", "p_all"]].sum()
            g.insert(0, "source_b", names[g.pop("b").to_numpy()])
            g.insert(0, "source_a", names[g.pop("a").to_numpy()])
            g = g.sort_values(["source_a", "source_b"], kind="stable", ignore_index=True)
            g["expected_precision"] = g["p_linked"] / g["n_linked"].where(g["n_linked"] > 0)
            g["expected_recall"] = g["p_linked"] / g["p_all"].where(g["p_all"] > 0)
            return g[cols]
    sa, sb = a.str.split("|", n=1).str[0], b.str.split("|", n=1).str[0]
    swap = sa.map(order) > sb.map(order)
    same = a.map(root).to_numpy() == b.map(root).to_numpy()
    d = pd.DataFrame(
        {
            "source_a": np.where(swap, sb, sa),
            "source_b": np.where(swap, sa, sb),
            "p_linked": p * same,
            "n_linked": same.astype(int),
            "p_all": p,
        }
    )
    g = d.groupby(["source_a", "source_b"], as_index=False)[["p_linked", "n_linked", "p_all"]].sum()
    g["expected_precision"] = g["p_linked"] / g["n_linked"].where(g["n_linked"] > 0)
    g["expected_recall"] = g["p_linked"] / g["p_all"].where(g["p_all"] > 0)
    return g[cols]


def _expected_by_position(a: np.ndarray, b: np.ndarray, root: pd.Series, order: dict):
    """For `_expected_quality`, from the nodes' positions in `root`'s index (each node's person's
    root): each pair's two sources as codes into `names` (the first by `order`, as there), and
    whether the pair's nodes ended in one person; a source is read once per distinct node of the
    pairs, not once per pair. None where a pair names a node `root` does not hold."""
    index = root.index
    ia, ib = index.get_indexer(a), index.get_indexer(b)
    if len(ia) and (min(ia.min(), ib.min()) < 0 or not index.is_unique):
        return None
    person = pd.factorize(root.to_numpy())[0]
    same = person[ia] == person[ib]
    held = np.union1d(ia, ib)  # the distinct nodes of the pairs, by position
    source, names = pd.factorize(np.array([n.split("|", 1)[0] for n in index.to_numpy()[held]], dtype=object))
    names = np.asarray(names, dtype=object)
    sa, sb = source[np.searchsorted(held, ia)], source[np.searchsorted(held, ib)]
    rank = pd.Series(names, dtype=object).map(order).to_numpy(dtype="float64")  # NaN: not a known source
    swap = rank[sa] > rank[sb]
    return np.where(swap, sb, sa), np.where(swap, sa, sb), names, same


def _overall(expected: pd.DataFrame | None, what: str) -> float | None:
    if expected is None or expected.empty:
        return None
    if what == "precision":
        n = expected["n_linked"].sum()
        return float(expected["p_linked"].sum() / n) if n else None
    total = expected["p_all"].sum()
    return float(expected["p_linked"].sum() / total) if total else None
