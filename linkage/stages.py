"""A linkage run in stages that may run in different processes (the refresh DAG's mapped tasks):

    prepare_chunks(backend, work)  -> paths of candidate-pair chunks (Parquet)
    score_chunk_file(path)         -> path of that chunk's scored pairs (one task per chunk)
    finish_chunks(backend, paths)  -> LinkResult (clustering, person ids, the writes)

With the Spark engine (`engine="spark"`, or $OUTCOMES_LINK_ENGINE), `prepare_chunks` runs the
whole linkage on the cluster (linkage.spark) and leaves its result as a run with nothing to
score: one empty chunk, which the scoring and finishing tasks pass through.

Only paths pass between them. The work folder holds the run's state between stages (pickled:
our own files, never read from elsewhere); it may hold identity tokens, so it lives beside the
warehouse and `finish_chunks` removes it.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.engine import CHUNK, chunk_for_memory, chunks
from linkage.engines import engine_name, link_function
from linkage.run import LinkResult, LinkState, apply_memory_limit, finish, prepare, score_chunk

STATE = "state.pkl"
SCORING = "scoring.pkl"


def prepare_chunks(backend, work: Path, chunk: int = CHUNK, engine: str | None = None, **kwargs) -> list[str]:
    """Run `prepare` and write its candidate pairs in chunks of `chunk` (by default sized from the
    memory budget: `memory_limit`, $OUTCOMES_LINK_MEMORY); at least one chunk (empty when nothing
    is new, or when the Spark engine linked everything already), so a mapped task always has
    something to map over."""
    if chunk == CHUNK:
        limit = apply_memory_limit(backend, kwargs.get("memory_limit"))
        chunk = CHUNK if limit is None else chunk_for_memory(limit)
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if engine_name(engine) == "spark":
        state = link_function("spark")(backend, **kwargs)
    else:
        state = prepare(backend, **kwargs)
    paths = []
    if isinstance(state, LinkResult):
        _dump(work / STATE, state)
        empty = pd.DataFrame({"a": np.array([], np.int64), "b": np.array([], np.int64)})
        empty.to_parquet(work / "pairs_0000.parquet", index=False)
        return [str(work / "pairs_0000.parquet")]
    pairs = state.pairs
    for i, s in enumerate(chunks(len(pairs), chunk) or [slice(0, 0)]):
        path = work / f"pairs_{i:04d}.parquet"
        pairs.iloc[s][["a", "b"]].reset_index(drop=True).to_parquet(path, index=False)
        paths.append(str(path))
    state.pairs = None
    state.lap.on_stage = None  # a callback of this process only
    _dump(
        work / SCORING,
        {"spec": state.spec, "variants": state.variants, "comparer": state.comparer, "model": state.model},
    )
    _dump(work / STATE, state)
    return paths


def score_chunk_file(path: str) -> str:
    """Score one chunk written by `prepare_chunks`; return the path of its scored pairs."""
    source = Path(path)
    out = source.with_name(source.name.replace("pairs_", "scored_"))
    scoring = source.parent / SCORING
    pairs = pd.read_parquet(source)
    if not scoring.exists():  # nothing new: nothing to score
        pairs.to_parquet(out, index=False)
        return str(out)
    parts = _load(scoring)
    state = LinkState.__new__(LinkState)
    state.__dict__.update(parts)
    scored = score_chunk(state, pairs["a"].to_numpy(), pairs["b"].to_numpy())
    scored.to_parquet(out, index=False)
    return str(out)


def finish_chunks(backend, paths: list[str]) -> LinkResult:
    """Gather every chunk's scored pairs and finish the run; remove the work folder."""
    work = Path(paths[0]).parent
    state = _load(work / STATE)
    try:
        if isinstance(state, LinkResult):
            return state
        scored = [pd.concat([pd.read_parquet(p) for p in sorted(paths)], ignore_index=True)]
        state.result.chunks = len(paths)
        result = finish(backend, state, scored)  # the list handed over: emptied once node pairs are made
        result.seconds = round(sum(result.stages.values()), 3)  # the stages ran apart: their sum
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dump(path: Path, value) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)
