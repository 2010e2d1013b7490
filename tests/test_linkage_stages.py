"""The linkage run in stages (linkage.stages: prepare, score each chunk apart, finish), as the
refresh DAG's mapped tasks run it, writes the same spine and decisions as `link()` in one go."""

from __future__ import annotations

import shutil

import pytest

from outcomes.synth.generator import SynthConfig, synthesise
from tests.linkage_tables import LINK_TABLES as TABLES


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.warehouse import resolve_target

    root = tmp_path_factory.mktemp("stages")
    synthesise(SynthConfig(persons=300, seed=8, start="2024-01", months=2), root / "synth")
    target = resolve_target(str(root / "w" / "outcomes.duckdb"))
    with connect(target) as backend:
        Ingestor(backend, root / "archive").ingest(root / "synth" / "landing")
    return root / "w"


def _tables(path) -> dict:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(path / "outcomes.duckdb"))) as backend, backend.transaction() as s:
        return {t: s.fetch(f"select * from {t} order by {order}").to_pylist() for t, order in TABLES.items()}


def test_staged_run_writes_what_one_link_writes(ingested, tmp_path):
    from linkage.run import link
    from linkage.stages import finish_chunks, prepare_chunks, score_chunk_file
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    one, staged = tmp_path / "one", tmp_path / "staged"
    shutil.copytree(ingested, one)
    shutil.copytree(ingested, staged)
    with connect(resolve_target(str(one / "outcomes.duckdb"))) as backend:
        whole = link(backend)
    with connect(resolve_target(str(staged / "outcomes.duckdb"))) as backend:
        paths = prepare_chunks(backend, tmp_path / "work", chunk=200)
        assert len(paths) > 2  # several chunks, as the mapped tasks see them
        result = finish_chunks(backend, [score_chunk_file(p) for p in paths])
    assert not (tmp_path / "work").exists()
    assert (result.links, result.persons_new, result.candidate_pairs) == (
        whole.links,
        whole.persons_new,
        whole.candidate_pairs,
    )
    assert result.chunks == len(paths)
    assert _tables(staged) == _tables(one)

    # a second staged run finds nothing new: one empty chunk, nothing written
    with connect(resolve_target(str(staged / "outcomes.duckdb"))) as backend:
        paths = prepare_chunks(backend, tmp_path / "work")
        again = finish_chunks(backend, [score_chunk_file(p) for p in paths])
    assert len(paths) == 1 and again.records_new == 0
