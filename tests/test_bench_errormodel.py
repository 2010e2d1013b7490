"""The pure parts of bench/linkage_errormodel.py: a population made once and only whole, and the
memory sampler's thread stopped.

The measurement itself is a benchmark, run on purpose (docs/linkage.md), never a test.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pandas as pd
import pytest

from tests.conftest import bench_module

WRITE = "from pathlib import Path\nout = Path({out})\nout.mkdir()\n(out / 'part').write_text('{text}')\n"


@pytest.fixture(scope="module")
def em():
    return bench_module("linkage_errormodel.py", "linkage_errormodel")


def test_a_population_is_made_under_a_temporary_name_and_renamed_when_whole(em, tmp_path):
    final = tmp_path / "em"
    assert em._made_once(final, WRITE.replace("{text}", "first")) == final
    assert (final / "part").read_text() == "first"
    assert not (tmp_path / "em.partial").exists()
    # made once: a second call finds it and does not make it again
    em._made_once(final, WRITE.replace("{text}", "second"))
    assert (final / "part").read_text() == "first"


def test_an_interrupted_making_is_not_taken_for_a_population(em, tmp_path):
    final = tmp_path / "clean"
    with pytest.raises(subprocess.CalledProcessError):
        em._made_once(final, WRITE.replace("{text}", "half") + "raise SystemExit(3)\n")
    assert not final.exists()
    assert (tmp_path / "clean.partial" / "part").read_text() == "half"
    # the next run throws the partial folder away and makes the population whole
    em._made_once(final, WRITE.replace("{text}", "whole"))
    assert (final / "part").read_text() == "whole"
    assert not (tmp_path / "clean.partial").exists()


def test_the_memory_sampler_stops_its_thread(em):
    before, start = threading.active_count(), em._Rss.now_mib()
    with em._Rss(every=0.001) as rss:
        assert threading.active_count() == before + 1
        buf = b"x" * (64 * 2**20)  # written, so resident
        deadline = time.monotonic() + 5
        while rss.peak < start + 60 and time.monotonic() < deadline:  # the sampler sees it
            time.sleep(0.001)
        del buf
        rss("stage")
    assert not rss._thread.is_alive()
    assert threading.active_count() == before
    peak, end = rss.marks["stage"]
    assert peak >= start + 60  # the 64 MiB held between two stage marks, freed before the mark
    assert end < peak - 30


def test_misses_by_record_and_error_class(em, tmp_path):
    rec = [("treatment", f"a{i}", "P1") for i in range(1, 5)] + [("convictions", f"b{i}", "P2") for i in (1, 2, 3)]
    truth = pd.DataFrame([*rec, ("deaths", "c1", "P3")], columns=["source", "record_id", "person_id"])
    truth.to_parquet(tmp_path / "records.parquet")
    errors = [("treatment", "a4", "typing_error"), ("treatment", "a1", "nickname")]
    pd.DataFrame(errors, columns=["source", "record_id", "error_class"]).to_parquet(tmp_path / "errors.parquet")
    names = [("P1", "P2", "twin"), ("P1", "P3", "twin")]
    pd.DataFrame(names, columns=["person_a", "person_b", "kind"]).to_parquet(tmp_path / "namesakes.parquet")
    # a4 put apart from P1's largest part; b3 joined to P1's person L1 (P2's largest is L3)
    linked = truth[["source", "record_id"]].assign(person_id=["L1", "L1", "L1", "L2", "L3", "L3", "L1", "L4"])
    summary, by_class = em.misses(linked, tmp_path)
    assert summary == {
        "records": 8,
        "apart": 2,
        "persons_split": 2,
        "true_persons": 3,
        "apart_by_source": {"convictions": 1, "deaths": 0, "treatment": 1},
        "joining_persons": 1,
        "joined_records": 4,
        "joined_records_without_error": 3,
        "namesake_pairs": 2,
        "namesake_pairs_joined": 1,
    }
    got = by_class.set_index("error_class")[["records", "apart"]].to_dict("index")
    assert got == {
        "none": {"records": 6, "apart": 1},
        "typing_error": {"records": 1, "apart": 1},
        "nickname": {"records": 1, "apart": 0},
    }
    assert by_class["error_class"].tolist() == ["none", "typing_error", "nickname"]  # most put apart first
