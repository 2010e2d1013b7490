"""Helpers for benchmarks: run a workload in a child process and read its wall time and peak memory."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

# The knowledge date of a step's "earlier build": the last extract date before the latest month's.
EARLIER_AS_OF = (
    "select max(extract_date) from events.deliveries where status = 'applied' and extract_date < "
    "(select date_trunc('month', max(extract_date)) from events.deliveries where status = 'applied')"
)


def in_child(code: str) -> dict:
    """Run `code` in a fresh interpreter; it must print one JSON object as its last line.

    Returns that object with the child's wall time, its CPU time (user + system, its own and its
    children's) and peak resident memory in MiB: `peak_self_mib` of the child itself,
    `peak_children_mib` of the largest process it started (e.g. a validation worker), and their sum
    `peak_mib`, an upper bound of what the two held at once.
    """
    wrapper = (
        "import json, resource, time\n"
        "_t = time.perf_counter()\n"
        f"{code}\n"
        "_out = dict(result)\n"
        "_out['wall_s'] = time.perf_counter() - _t\n"
        "_out['peak_self_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "_out['peak_children_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "_out['peak_mib'] = _out['peak_self_mib'] + _out['peak_children_mib']\n"
        "_ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]\n"
        "_out['cpu_s'] = sum(r.ru_utime + r.ru_stime for r in _ru)\n"
        "print(json.dumps(_out))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def calibration_seconds(n: int = 300_000) -> float:
    """A fixed CPU-bound reference measured in the same run: n HMAC-SHA256 in Python.

    Figures are reported as multiples of it, since these machines are noisy.
    """
    key = b"k" * 32
    t = time.perf_counter()
    for i in range(n):
        hmac.new(key, str(i).encode(), hashlib.sha256).digest()
    return time.perf_counter() - t


def ensure_population(persons: int, population: Path) -> None:
    """Synthesise `persons` people (default settings) into `population` in a child process, unless
    its landing folder is already there; print how long it took."""
    if (population / "landing").exists():
        return
    r = in_child(
        "from pathlib import Path\nfrom outcomes.synth.generator import SynthConfig, synthesise\n"
        f"synthesise(SynthConfig(persons={persons}), Path({str(population)!r}), overwrite=True)\n"
        "result = {}\n"
    )
    print(f"synthesised {persons:,} people in {r['wall_s']:.0f} s", flush=True)
