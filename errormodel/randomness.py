"""Randomness that belongs to a record or a person, not to the order of processing.

Every draw is a function of (seed, what it is about, a stream number): a record's identity is
the same in every snapshot that carries it, and does not change when other records come or go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def bases(seed: int, *parts: Iterable[str] | str) -> np.ndarray:
    """One 64-bit base per row: BLAKE2b of the seed and the row's parts (strings or arrays)."""
    arrays = [np.asarray(p, dtype=object) for p in parts]
    n = max((a.size for a in arrays if a.ndim), default=1)
    cols = [np.broadcast_to(a, (n,)) for a in arrays]
    out = np.empty(n, dtype=np.uint64)
    prefix = f"{seed}\x1f".encode()
    for i in range(n):
        text = "\x1f".join(str(c[i]) for c in cols).encode()
        out[i] = int.from_bytes(hashlib.blake2b(prefix + text, digest_size=8).digest(), "big")
    return out


def _mix(z: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: a bijection that spreads every input bit over the output
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform(base: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws, one per base, independent across streams."""
    with np.errstate(over="ignore"):
        z = _mix(base + np.uint64(stream + 1) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def pick(base: np.ndarray, stream: int, n: int | np.ndarray) -> np.ndarray:
    """Uniform integers in [0, n)."""
    return np.minimum((uniform(base, stream) * n).astype(np.int64), np.asarray(n) - 1)


def weighted(base: np.ndarray, stream: int, cum: np.ndarray) -> np.ndarray:
    """Indices drawn by cumulative weights `cum` (ending at 1)."""
    return np.searchsorted(cum, uniform(base, stream), side="right").clip(0, len(cum) - 1)
