"""The pure parts of bench/linkage_growth.py: the growth exponent fit and resuming from its JSON.

The measurement itself is a benchmark, run on purpose (docs/scale.md), never a test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def growth():
    return bench_module("linkage_growth.py", "linkage_growth")


def _run(records: int, link_s: float, peak_mib: float = 1000.0) -> dict:
    return {
        "records": records,
        "records_new": records,
        "link_s": link_s,
        "load_s": 1.0,
        "peak_mib": peak_mib,
        "stages": {},
    }


def test_exponent_is_the_slope_of_log_time_on_log_records(growth):
    records = [1e5, 2e5, 4e5, 8e5]
    assert growth.growth_exponent(records, [3 * n**1.5 for n in records]) == pytest.approx(1.5)
    assert growth.growth_exponent(records, [7.0] * 4) == pytest.approx(0.0)
    # least squares over every size, not the end points (which give exactly 1 here)
    noisy = [n * f for n, f in zip(records, (1.0, 1.1, 0.9, 1.0), strict=True)]
    slope = np.polyfit(np.log(records), np.log(noisy), 1)[0]
    assert growth.growth_exponent(records, noisy) == pytest.approx(slope)
    assert slope != pytest.approx(1.0, abs=0.01)


def test_exponent_needs_two_distinct_sizes(growth):
    assert growth.growth_exponent([], []) is None
    assert growth.growth_exponent([1e5], [10.0]) is None
    assert growth.growth_exponent([1e5, 1e5], [10.0, 12.0]) is None


def test_resume_keeps_measured_sizes_unless_forced(growth, tmp_path):
    path = tmp_path / "growth.json"
    figures = growth.load(path)
    assert growth.pending(figures, [250_000, 500_000], force=False) == [250_000, 500_000]

    done = {
        "persons": 250_000,
        "calibration_s": 1.0,
        "first": _run(2_000_000, 300.0),
        "monthly": _run(2_100_000, 280.0),
    }
    figures = growth.merge(figures, 250_000, done)
    path.write_text(json.dumps(figures))
    figures = growth.load(path)  # a later sitting
    assert growth.pending(figures, [250_000, 500_000], force=False) == [500_000]
    assert growth.pending(figures, [250_000, 500_000], force=True) == [250_000, 500_000]

    # a size with only its first run (the monthly run failed) is measured again
    half = {"persons": 500_000, "calibration_s": 1.0, "first": _run(4_000_000, 700.0)}
    assert growth.pending(growth.merge(figures, 500_000, half), [500_000], force=False) == [500_000]

    # merging a new size keeps the others, ordered by size; re-measuring replaces the entry whole
    later = growth.merge(
        figures,
        500_000,
        {"persons": 500_000, "calibration_s": 1.0, "first": _run(4_000_000, 700.0), "monthly": _run(4_200_000, 9.0)},
    )
    assert list(later["sizes"]) == ["250000", "500000"]
    assert later["sizes"]["250000"] == done
    assert list(growth.merge(later, 100_000, done)["sizes"]) == ["100000", "250000", "500000"]
    again = growth.merge(later, 250_000, {**done, "calibration_s": 2.0})
    assert again["sizes"]["250000"]["calibration_s"] == 2.0
    assert again["sizes"]["500000"] == later["sizes"]["500000"]
    assert figures["sizes"]["250000"]["calibration_s"] == 1.0  # merge does not change its input

    recs, secs = growth.series(later, "first", "link_s")
    assert (recs, secs) == ([2_000_000, 4_000_000], [300.0, 700.0])
    # in multiples of each size's own calibration (sittings on shared cores differ)
    assert growth.calibrated(again, "first") == ([2_000_000, 4_000_000], [150.0, 700.0])
