"""Benchmark: synthesis of 100,000 and 1,000,000 people (wall time, peak memory, rows/s).

    python bench/synth.py [--sizes 100000 1000000] [--out /tmp/bench-synth]

Each size runs in a fresh process so that its peak memory is its own. Times are also given as
multiples of a CPU calibration measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _measure import calibration_seconds, in_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-synth"))
    args = parser.parse_args()
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    print(f"{'persons':>10} {'wall s':>8} {'x calib':>8} {'peak MiB':>9} {'rows':>12} {'rows/s':>10} {'disk MiB':>9}")
    for persons in args.sizes:
        out = args.out / str(persons)
        shutil.rmtree(out, ignore_errors=True)
        r = in_child(
            "from pathlib import Path\n"
            "from outcomes.synth.generator import SynthConfig, synthesise\n"
            f"res = synthesise(SynthConfig(persons={persons}), Path({str(out)!r}))\n"
            "result = {'rows': sum(res.rows_by_source.values())}\n"
        )
        disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        print(
            f"{persons:>10,} {r['wall_s']:>8.1f} {r['wall_s'] / reference:>8.1f} {r['peak_mib']:>9.0f} "
            f"{r['rows']:>12,} {r['rows'] / r['wall_s']:>10,.0f} {disk:>9.0f}"
        )
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
