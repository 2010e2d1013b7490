"""Row-level validation of a delivery's rows for ingestion: in bounded chunks, optionally in a worker process.

The rules are the great-expectations suites run by `outcomes.validation.validate_rows`; this module
only decides how much of a delivery GX sees at once and in which process:

- **Chunks.** A delivery of more than `CHUNK_ROWS` rows is validated in chunks of about that many
  rows, so memory stays bounded however large an initial load is. Rows are dealt to chunks by
  their `record_id`, every row of one `record_id` to the same chunk, so the one rule that looks
  across rows (`duplicate:record_id`) finds exactly the rows it would find in the whole delivery.
- **A worker process.** `ValidationPool` runs the validation in one child process, so a large
  ingest validates the next delivery while the current one is being applied.

Only row positions and rule names come back, never a value.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import json
import math
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from outcomes.contract import SOURCES
from outcomes.ingest.rows import validation_frame

CHUNK_ROWS = 200_000

RulesByRow = dict[int, set[str]]


def chunk_positions(record_ids: pa.Array | pa.ChunkedArray, chunk_rows: int = CHUNK_ROWS) -> list[np.ndarray] | None:
    """Row positions of each chunk (ascending within a chunk), or None when one chunk holds every row.

    Every row of one `record_id` lands in the same chunk (rows without one go to the first chunk).
    """
    n = len(record_ids)
    parts = math.ceil(n / chunk_rows) if n else 1
    if parts <= 1:
        return None
    codes = pc.dictionary_encode(record_ids)
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks() if codes.num_chunks else pa.array([], pa.dictionary(pa.int32(), pa.string()))
    indices = pc.fill_null(codes.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    part = indices % parts  # distinct record_ids in order of first appearance, dealt round-robin
    order = np.argsort(part, kind="stable")
    bounds = np.cumsum(np.bincount(part, minlength=parts))[:-1]
    return [chunk for chunk in np.split(order, bounds) if len(chunk)]


@functools.cache
def validated_columns(source: str) -> frozenset[str]:
    """The delivered columns whose values validation reads: those the suite reads (a derived column
    counts as the column it derives from) and the booleans, whose codes are checked beside GX."""
    from outcomes.validation.rules import DATE_SUFFIX, JOINED_SUFFIX
    from outcomes.validation.run import SUITES_DIR, suite_columns

    config = json.loads((SUITES_DIR / f"{source}.json").read_text(encoding="utf-8"))
    read = {c.removesuffix(DATE_SUFFIX).removesuffix(JOINED_SUFFIX) for c in suite_columns(config)}
    return frozenset(read | {c.name for c in SOURCES[source].columns if c.type == "bool"})


def only_validated_columns(source: str, text: pa.Table) -> pa.Table:
    """`text` with every column that validation does not read emptied (all null): the same result,
    less to copy, and no identity column that no rule reads is sent to the worker or to great-expectations."""
    keep = validated_columns(source)
    columns = [
        text[name] if name in keep else pa.nulls(text.num_rows, text.schema.field(name).type)
        for name in text.column_names
    ]
    return pa.table(columns, names=text.column_names)


def rules_by_row(
    source: str,
    text: pa.Table,
    extract_date: dt.date,
    validate: Callable | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> RulesByRow:
    """The rules each row of `text` (a delivery's canonical text) breaks, by row position; rows
    breaking none are absent."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if validate is None:
        from outcomes.validation import validate_rows as validate
    rules: RulesByRow = {}
    if not text.num_rows:
        return rules
    text = only_validated_columns(source, text)
    chunks = chunk_positions(text["record_id"], chunk_rows)
    for positions in chunks or [None]:
        rows = text if positions is None else text.take(pa.array(positions))
        frame, bad_bools = validation_frame(rows, source)
        result = validate(source, frame, extract_date)
        del frame
        for row, rule in [*zip(result.failures["row"], result.failures["rule"], strict=True), *bad_bools]:
            at = int(row) if positions is None else int(positions[int(row)])
            rules.setdefault(at, set()).add(rule)
    return rules


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The worker's loop: read (source, text, extract_date) jobs, write ("ok", rules) or ("error", exception)."""
    from outcomes.validation.run import _engine

    _engine()  # load great-expectations and the suites before the first job arrives
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:
            return
        try:
            reply: tuple = ("ok", rules_by_row(*job))
        except Exception as exc:  # handed back to the caller, which raises it
            reply = ("error", exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot be pickled
            data = pickle.dumps(("error", RuntimeError(f"validation failed: {type(reply[1]).__name__}")))
        out.write(data)
        out.flush()


_WORKER = "import sys\nfrom outcomes.ingest.validate import serve\nserve(sys.stdin.buffer, sys.stdout.buffer)\n"


class ValidationPool:
    """One worker process validating deliveries (`rules_by_row`) in the order submitted, while the
    caller goes on; `submit` returns a Future of the rules by row.

    The worker is a fresh interpreter running `serve`, so it shares no threads
    or connections with the caller (DuckDB's in particular) and imports nothing of the caller's main
    module. It loads great-expectations once and keeps it. Jobs and replies are pickled through its
    stdin and stdout; a thread feeds the jobs, so `submit` does not wait for the worker.
    """

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])  # where `outcomes` is imported from
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: collections.deque[Future] = collections.deque()
        self._lock = threading.Lock()
        self._feeder = threading.Thread(target=self._feed, name="validation-feeder", daemon=True)
        self._reader = threading.Thread(target=self._read, name="validation-reader", daemon=True)
        self._feeder.start()
        self._reader.start()

    def submit(self, source: str, text: pa.Table, extract_date: dt.date) -> Future:
        future: Future = Future()
        if source in SOURCES:
            text = only_validated_columns(source, text)
        with self._lock:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the validation worker has exited (status {self._proc.returncode})")
            self._waiting.append(future)
            self._jobs.put((source, text, extract_date))
        return future

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while (job := self._jobs.get()) is not None:
                pickle.dump(job, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
                del job
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; the reader fails what is waiting
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        while True:
            try:
                status, value = pickle.load(stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                future = self._waiting.popleft()
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)
        code = self._proc.wait()
        with self._lock:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for future in waiting:
            future.set_exception(RuntimeError(f"the validation worker exited (status {code})"))

    def close(self) -> None:
        """Stop the worker: at once if jobs are still waiting (their results are not wanted), else
        when it has read the end of its input."""
        with self._lock:
            busy = bool(self._waiting)
        self._jobs.put(None)
        if busy:
            self._proc.kill()
        self._feeder.join()
        self._reader.join()

    def __enter__(self) -> ValidationPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
