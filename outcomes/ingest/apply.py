"""Applying deliveries to the event store, each in one transaction.

Ordering is by delivery key `(extract_date, seq)`, then by `applied_in` (the ledger id of the
transaction that wrote an event), so a delivery that arrives late still takes effect at its own
knowledge date. A late full snapshot also re-reconciles the next later snapshot from its
archived file, so the state on every date is the same whatever order deliveries arrived in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from outcomes.contract import SOURCES
from outcomes.eventstore.backend import Backend, Session
from outcomes.eventstore.schema import (
    EVENT_META,
    as_of_functions,
    ddl,
    event_table,
    quarantine_table,
    state_at_key_sql,
)
from outcomes.ingest.archive import archive, read_archived
from outcomes.ingest.landing import Delivery, check, discover
from outcomes.ingest.rows import canonical_text, row_hashes, typed
from outcomes.ingest.validate import RulesByRow, ValidationPool, rules_by_row

STATUS_EVENTS = {"active": "upsert", "amended": "amended", "quashed": "quashed", "withdrawn": "withdrawn"}


@dataclass
class Outcome:
    file_name: str
    status: str  # applied, rejected
    source: str | None = None
    reason: str | None = None
    rows_delivered: int = 0
    rows_applied: int = 0
    rows_quarantined: int = 0
    rows_unchanged: int = 0
    events: Counter = field(default_factory=Counter)
    quarantined_by_rule: Counter = field(default_factory=Counter)

    def line(self) -> str:
        if self.status == "rejected":
            return f"{self.file_name}: rejected: {self.reason}"
        parts = [f"{self.file_name}: applied {self.rows_applied:,} of {self.rows_delivered:,} rows"]
        if self.events:
            parts.append("events " + ", ".join(f"{n:,} {k}" for k, n in sorted(self.events.items())))
        if self.rows_unchanged:
            parts.append(f"{self.rows_unchanged:,} unchanged")
        if self.rows_quarantined:
            rules = ", ".join(f"{r} {n:,}" for r, n in sorted(self.quarantined_by_rule.items()))
            parts.append(f"quarantined {self.rows_quarantined:,} ({rules})")
        return "; ".join(parts)


class Prepared(NamedTuple):
    """A checked delivery's rows in canonical text, their hashes, and their validation if under way."""

    text: pa.Table | None
    hashes: pa.Array | None
    validated: Future | None


@dataclass
class IngestReport:
    outcomes: list[Outcome]
    already_applied: int
    already_rejected: int


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


# A run with at least this much data to apply validates in a worker process (see `Ingestor`).
WORKER_MIN_BYTES = 32 * 1024 * 1024


class Ingestor:
    """Applies deliveries to the event store.

    `validate` replaces great-expectations' `validate_rows` (same signature; run in this process).
    `workers`: 1 validates in one worker process, overlapping with applying (the next delta is
    validated while the current delivery is applied); 0 validates in this process; None (the
    default) uses the worker when the deliveries to apply hold at least `WORKER_MIN_BYTES` of data
    and `validate` is the default. The outcome is the same either way.
    """

    def __init__(
        self,
        backend: Backend,
        archive_root: Path,
        validate: Callable | None = None,
        clock: Callable[[], dt.datetime] = _now,
        workers: int | None = None,
        horizon: dt.date | None = None,
    ) -> None:
        if workers not in (None, 0, 1):
            raise ValueError("workers must be None, 0 or 1")
        if workers == 1 and validate is not None:
            raise ValueError("a custom validate runs in this process: use workers=0 or None")
        self.backend, self.archive_root, self.validate, self.clock = backend, Path(archive_root), validate, clock
        self.workers = 0 if validate is not None else workers
        # The latest extract_date accepted: the caller's today (the CLI takes the clock), else the clock's.
        self.horizon = horizon
        self._pool: ValidationPool | None = None

    def ensure_schema(self) -> None:
        with self.backend.transaction() as s:
            for statement in ddl() + as_of_functions(self.backend.dialect):
                s.execute(statement)

    # ---------------------------------------------------------------------------------------
    def ingest(
        self,
        landing: Path,
        on_delivery: Callable[[Outcome], None] | None = None,
        on_wait: Callable[[], None] | None = None,
        until: dt.date | None = None,
    ) -> IngestReport:
        """Apply every delivery due; one ingest per warehouse at a time (`on_wait` is called when this
        one has to wait for another to finish, which it then does). With `until`, only deliveries whose
        extract_date is on or before it (later ones wait for their own run; files whose name gives no
        date are still rejected)."""
        with self.backend.exclusive(on_wait):
            return self._ingest(landing, on_delivery, until)

    def _ingest(
        self, landing: Path, on_delivery: Callable[[Outcome], None] | None, until: dt.date | None = None
    ) -> IngestReport:
        self.ensure_schema()
        with self.backend.transaction() as s:
            ledger = s.fetch("select delivery_id, manifest_sha256, status from events.deliveries").to_pylist()
        applied = {r["delivery_id"] for r in ledger if r["status"] == "applied"}
        rejected = {(r["delivery_id"], r["manifest_sha256"]) for r in ledger if r["status"] == "rejected"}

        def due(d: Delivery) -> bool:
            return d.data_sha256 not in applied and (d.data_sha256, d.manifest_sha256) not in rejected

        report = IngestReport([], 0, 0)
        found = discover(landing)
        found.sort(key=_name_key)
        if until is not None:
            found = [d for d in found if _name_key(d)[1] == dt.date.max or _name_key(d)[1] <= until]
        workers = self.workers
        if workers is None:
            size = sum(d.path.stat().st_size for d in found if due(d) and d.path.is_file())
            workers = 1 if size >= WORKER_MIN_BYTES else 0
        self._pool = ValidationPool() if workers else None
        # With the worker, a thread prepares the next delivery due while this one is applied (reading,
        # checking, hashing: Arrow and DuckDB work that runs outside the GIL) and starts its validation
        # if it is a delta. Only that one delivery is prepared ahead, so at most two are in memory.
        preparer = ThreadPoolExecutor(1, thread_name_prefix="prepare-delivery") if workers else None
        ahead: dict[int, Future] = {}  # by position in `found`
        try:
            for i, d in enumerate(found):
                early = ahead.pop(i, None)
                if not due(d):  # e.g. the same data as a delivery just applied, under another name
                    if d.data_sha256 in applied:
                        report.already_applied += 1
                    else:
                        report.already_rejected += 1
                    if early is not None:
                        early.exception()  # wait for it, whatever it found: the delivery is passed over
                else:
                    prepared = early.result() if early is not None else self._prepare(d, validate_delta=False)
                    if preparer is not None:
                        nxt = next((j for j in range(i + 1, len(found)) if due(found[j])), None)
                        if nxt is not None and nxt not in ahead:
                            ahead[nxt] = preparer.submit(self._prepare, found[nxt], validate_delta=True)
                    outcome = self.apply(d, prepared=prepared)
                    del prepared
                    (
                        applied.add(d.data_sha256)
                        if outcome.status == "applied"
                        else rejected.add((d.data_sha256, d.manifest_sha256))
                    )
                    report.outcomes.append(outcome)
                    if on_delivery:
                        on_delivery(outcome)
                d.table = None  # at most this delivery and the next one are held
        finally:
            if preparer is not None:
                preparer.shutdown(wait=True, cancel_futures=True)
            if self._pool is not None:
                self._pool.close()  # stops at once if validations are still waiting
                self._pool = None
        return report

    def _prepare(self, d: Delivery, validate_delta: bool) -> Prepared:
        """Check a delivery against its manifest and the spec (reading it), and put its rows in canonical
        text with their hashes; with `validate_delta`, start validating a delta's rows in the worker.

        A delta's validation reads only its own rows, so it can run while earlier deliveries are
        applied; a full snapshot's depends on the state they leave, so it waits for its turn.
        """
        if d.table is None and d.reason is None:
            check(d, self.horizon if self.horizon is not None else self.clock().date())
        if d.reason is not None:
            return Prepared(None, None, None)
        text = canonical_text(d.table, d.source)
        validated = None
        if validate_delta and self._pool is not None and d.delivery_type == "delta":
            validated = self._pool.submit(d.source, text, d.extract_date)
        return Prepared(text, row_hashes(text), validated)

    # ---------------------------------------------------------------------------------------
    def apply(self, d: Delivery, prepared: Prepared | None = None) -> Outcome:
        """Apply one delivery (checked and `prepared` by `_prepare`, or here)."""
        if prepared is None:
            prepared = self._prepare(d, validate_delta=False)
        if d.reason is None:
            with self.backend.transaction() as s:
                conflict = s.scalar(
                    "select file_name from events.deliveries where status = 'applied' and source = :src "
                    "and extract_date = :d and seq = :s",
                    {"src": d.source, "d": d.extract_date, "s": d.seq},
                )
            if conflict:
                d.reason = (
                    f"conflicts with applied delivery {conflict} (same source, extract_date and seq): "
                    "a correction needs the next seq"
                )
        if d.reason is not None:
            return self._reject(d)
        source = d.source
        text, hashes, validated = prepared
        archived = archive(self.archive_root, source, d.data_sha256, d.path, d.table)
        now = self.clock()
        with self.backend.transaction() as s:
            ledger_id = s.scalar("select coalesce(max(ledger_id), 0) + 1 from events.deliveries")
            meta = {
                "delivery_id": d.data_sha256,
                "applied_in": ledger_id,
                "extract_date": d.extract_date,
                "seq": d.seq,
                "ingested_at": now,
            }
            outcome = Outcome(d.name, "applied", source, rows_delivered=text.num_rows)
            duplicated = _duplicated(text["record_id"])

            state = None
            unchanged = np.zeros(text.num_rows, dtype=bool)
            if d.delivery_type == "full":
                state = s.fetch(state_at_key_sql(source), {"d": d.extract_date, "s": d.seq})
                unchanged = _same_as_state(text["record_id"], hashes, state) & ~duplicated

            if validated is not None and d.delivery_type != "full":
                rules = validated.result()
            else:
                rules = self._validate(text, ~unchanged, d.extract_date, source)
            bad = np.zeros(text.num_rows, dtype=bool)
            bad[list(rules)] = True
            good = ~bad
            outcome.rows_quarantined = int(bad.sum())
            outcome.rows_applied = int(good.sum())
            outcome.rows_unchanged = int(unchanged.sum())
            for row_rules in rules.values():
                outcome.quarantined_by_rule.update(row_rules)
            self._quarantine(s, source, text, bad, rules, meta)

            if d.delivery_type == "full":
                events = self._snapshot_events(source, text, hashes, good & ~unchanged, state, meta)
            else:
                status = text["record_status"].to_numpy(zero_copy_only=False)[good]
                kinds = _event_kinds(status)
                events = _events(typed(text.filter(pa.array(good)), source), kinds, hashes.filter(pa.array(good)), meta)
            s.insert(event_table(source), events)
            outcome.events.update(_count(events["event_type"]))
            self._release(s, source, text["record_id"].filter(pa.array(good)), d)
            if d.delivery_type == "full":
                for k, n in self._reconcile_next(s, source, d, ledger_id, now).items():
                    outcome.events[f"{k} (reconciling a later snapshot)"] += n
            self._record(s, ledger_id, d, "applied", now, outcome, archive_path=str(archived))
        return outcome

    def _reject(self, d: Delivery) -> Outcome:
        if d.row_count is None:
            d.row_count = _rows_in_file(d.path)
        outcome = Outcome(d.name, "rejected", d.source, d.reason, rows_delivered=d.row_count or 0)
        with self.backend.transaction() as s:
            ledger_id = s.scalar("select coalesce(max(ledger_id), 0) + 1 from events.deliveries")
            self._record(s, ledger_id, d, "rejected", self.clock(), outcome)
        return outcome

    @staticmethod
    def _record(
        s: Session,
        ledger_id: int,
        d: Delivery,
        status: str,
        at: dt.datetime,
        outcome: Outcome,
        archive_path: str | None = None,
    ) -> None:
        """The delivery's row in the ledger, `events.deliveries`."""
        row = {
            "ledger_id": ledger_id,
            "delivery_id": d.data_sha256,
            "manifest_sha256": d.manifest_sha256,
            "file_name": d.name,
            "source": d.source,
            "extract_date": d.extract_date,
            "seq": d.seq,
            "delivery_type": d.delivery_type,
            "status": status,
            "reason": d.reason,
            "rows_delivered": d.row_count if status == "rejected" else outcome.rows_delivered,
            "rows_applied": outcome.rows_applied,
            "rows_quarantined": outcome.rows_quarantined,
            "rows_unchanged": outcome.rows_unchanged,
            "events_written": sum(outcome.events.values()),
            "archive_path": archive_path,
            "ingested_at": at,
        }
        s.insert("events.deliveries", pa.Table.from_pylist([row], schema=LEDGER_SCHEMA))

    # ---------------------------------------------------------------------------------------
    def _validate(self, text: pa.Table, check: np.ndarray, extract_date: dt.date, source: str) -> RulesByRow:
        """Rules broken, by row position; only rows in `check` are validated."""
        positions = np.flatnonzero(check)
        if not len(positions):
            return {}
        subset = len(positions) < text.num_rows
        rows = text.take(pa.array(positions)) if subset else text
        if self._pool is not None:
            found = self._pool.submit(source, rows, extract_date).result()
        else:
            found = rules_by_row(source, rows, extract_date, self.validate)
        return {int(positions[row]): rules for row, rules in found.items()} if subset else found

    def _quarantine(
        self, s: Session, source: str, text: pa.Table, bad: np.ndarray, rules: dict[int, set[str]], meta: dict
    ) -> None:
        positions = np.flatnonzero(bad)
        if not len(positions):
            return
        rows = text.take(pa.array(positions))
        n = len(positions)
        head = pa.table(
            {
                "delivery_id": pa.array([meta["delivery_id"]] * n, pa.string()),
                "extract_date": pa.array([meta["extract_date"]] * n, pa.date32()),
                "seq": pa.array([meta["seq"]] * n, pa.int64()),
                "row_number": pa.array(positions + 1, pa.int64()),
                "rules": pa.array(["; ".join(sorted(rules[int(p)])) for p in positions], pa.string()),
                "ingested_at": pa.array([meta["ingested_at"]] * n, pa.timestamp("us")),
            }
        )
        for name in rows.column_names:
            head = head.append_column(name, rows[name])
        s.insert(quarantine_table(source), head)

    def _snapshot_events(self, source, text, hashes, write, state, meta) -> pa.Table:
        """new / changed rows of a full snapshot, and `deleted` for records it no longer holds (in
        record_id order)."""
        known = _strings(state["record_id"])
        ids = _strings(text["record_id"])
        mask = pa.array(write)
        seen = pc.is_in(ids.filter(mask), value_set=known).to_numpy(zero_copy_only=False)
        kinds = np.where(seen, "changed", "new").astype(object)
        changed = _events(typed(text.filter(mask), source), kinds, hashes.filter(mask), meta)
        gone = known.filter(pc.invert(pc.is_in(known, value_set=ids.drop_null())))
        return pa.concat_tables([changed, _deleted(source, gone.take(pc.sort_indices(gone)), meta)])

    def _release(self, s: Session, source: str, valid_ids: pa.Array | pa.ChunkedArray, d: Delivery) -> None:
        """Quarantined records that this delivery brings valid are released (earlier deliveries only)."""
        open_rows = s.fetch(
            f"select record_id, delivery_id from quarantine.{source}_open "
            "where extract_date < :d or (extract_date = :d and seq < :s)",
            {"d": d.extract_date, "s": d.seq},
        )
        if not open_rows.num_rows:
            return
        hit = pc.fill_null(pc.is_in(_strings(open_rows["record_id"]), value_set=_strings(valid_ids).drop_null()), False)
        released = open_rows.filter(pa.array(hit))
        if released.num_rows:
            n = released.num_rows
            s.insert(
                "quarantine.releases",
                pa.table(
                    {
                        "source": pa.array([source] * n, pa.string()),
                        "record_id": released["record_id"],
                        "quarantined_in": released["delivery_id"],
                        "released_by": pa.array([d.data_sha256] * n, pa.string()),
                        "released_extract_date": pa.array([d.extract_date] * n, pa.date32()),
                        "ingested_at": pa.array([self.clock()] * n, pa.timestamp("us")),
                    }
                ),
            )

    def _reconcile_next(self, s: Session, source: str, d: Delivery, ledger_id: int, now) -> Counter:
        """After a late snapshot, make the state at the next later snapshot equal that snapshot again."""
        later = s.fetch(
            "select delivery_id, extract_date, seq, archive_path from events.deliveries where status = 'applied' "
            "and source = :src and (extract_date > :d or (extract_date = :d and seq > :s)) "
            "order by extract_date, seq limit 1",
            {"src": source, "d": d.extract_date, "s": d.seq},
        ).to_pylist()
        if not later:
            return Counter()
        t = later[0]
        text = canonical_text(read_archived(Path(t["archive_path"])), source)
        hashes = row_hashes(text)
        quarantined = s.fetch(
            f"select distinct record_id from {quarantine_table(source)} where delivery_id = :id",
            {"id": t["delivery_id"]},
        )
        held = pc.is_in(_strings(text["record_id"]), value_set=_strings(quarantined["record_id"]))
        valid = ~pc.fill_null(held, False).to_numpy(zero_copy_only=False)
        state = s.fetch(state_at_key_sql(source), {"d": t["extract_date"], "s": t["seq"]})
        write = valid & ~_same_as_state(text["record_id"], hashes, state)
        meta = {
            "delivery_id": t["delivery_id"],
            "applied_in": ledger_id,
            "extract_date": t["extract_date"],
            "seq": t["seq"],
            "ingested_at": now,
        }
        events = self._snapshot_events(source, text, hashes, write, state, meta)
        s.insert(event_table(source), events)
        return _count(events["event_type"])


LEDGER_SCHEMA = pa.schema(
    [
        ("ledger_id", pa.int64()),
        ("delivery_id", pa.string()),
        ("manifest_sha256", pa.string()),
        ("file_name", pa.string()),
        ("source", pa.string()),
        ("extract_date", pa.date32()),
        ("seq", pa.int64()),
        ("delivery_type", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("rows_delivered", pa.int64()),
        ("rows_applied", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("rows_unchanged", pa.int64()),
        ("events_written", pa.int64()),
        ("archive_path", pa.string()),
        ("ingested_at", pa.timestamp("us")),
    ]
)
_META_TYPES = {
    "delivery_id": pa.string(),
    "applied_in": pa.int64(),
    "extract_date": pa.date32(),
    "seq": pa.int64(),
    "ingested_at": pa.timestamp("us"),
}


def _rows_in_file(path: Path) -> int | None:
    """The rows a rejected Parquet file holds, from its footer (so the ledger says how many rows the
    rejection covers); None when that cannot be told without reading the file."""
    if path.suffix != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError):
        return None


def _name_key(d: Delivery) -> tuple:
    from outcomes.contract.extracts import parse_delivery_filename

    n = parse_delivery_filename(d.path.name)
    return (n.source, n.extract_date, n.seq, d.name) if n else ("~", dt.date.max, 0, d.name)


def _strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string array (a fetch of no rows from PostgreSQL has no type)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    return values.cast(pa.string())


def _count(values: pa.Array | pa.ChunkedArray) -> Counter:
    """How many times each value occurs."""
    return Counter({v["values"]: v["counts"] for v in pc.value_counts(values).to_pylist()})


def _duplicated(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows whose (non-null) record_id occurs on more than one row."""
    codes = _strings(ids).dictionary_encode()
    index = pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(index[index >= 0], minlength=len(codes.dictionary))
    return (index >= 0) & (counts[np.maximum(index, 0)] > 1) if len(counts) else np.zeros(len(index), dtype=bool)


def _event_kinds(status: np.ndarray) -> np.ndarray:
    """The event type of each delta row from its record_status (`upsert` for any other value)."""
    kinds = np.full(len(status), "upsert", dtype=object)
    for value, kind in STATUS_EVENTS.items():
        kinds[status == value] = kind
    return kinds


def _same_as_state(ids: pa.Array | pa.ChunkedArray, hashes: pa.Array, state: pa.Table) -> np.ndarray:
    """Rows whose record is in `state` with the same row_hash (`state` holds one row per record)."""
    pos = pc.index_in(_strings(ids), value_set=_strings(state["record_id"]))
    same = pc.equal(_strings(state["row_hash"]).take(pos), _strings(hashes))
    return pc.fill_null(same, False).to_numpy(zero_copy_only=False)


def _events(rows: pa.Table, kinds: np.ndarray, hashes: pa.Array, meta: dict) -> pa.Table:
    n = rows.num_rows
    cols = {}
    for name, _ in EVENT_META:
        if name == "event_type":
            cols[name] = pa.array(kinds, pa.string()) if n else pa.array([], pa.string())
        elif name == "row_hash":
            cols[name] = hashes
        else:
            cols[name] = pa.repeat(pa.scalar(meta[name], _META_TYPES[name]), n)
    for name in rows.column_names:
        cols[name] = rows[name]
    return pa.table(cols)


def _deleted(source: str, record_ids: pa.Array, meta: dict) -> pa.Table:
    n = len(record_ids)
    rows = {}
    for c in SOURCES[source].columns:
        t = {"date": pa.date32(), "bool": pa.bool_()}.get(c.type, pa.string())
        rows[c.name] = pa.array(record_ids, pa.string()) if c.name == "record_id" else pa.nulls(n, t)
    return _events(pa.table(rows), np.array(["deleted"] * n, dtype=object), pa.nulls(n, pa.string()), meta)


def ingest(landing: Path, backend: Backend, archive_root: Path, on_delivery=None) -> IngestReport:
    return Ingestor(backend, archive_root).ingest(landing, on_delivery)
