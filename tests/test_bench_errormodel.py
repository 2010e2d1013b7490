"""The pure parts of bench/linkage_errormodel.py: a population made once and only whole, and the
memory sampler's thread stopped.

The measurement itself is a benchmark, run on purpose (docs/linkage.md), never a test.
"""

from __future__ import annotations

import subprocess
import threading
import time

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
