"""Small vectorised sampling helpers shared by the generators."""

from __future__ import annotations

import numpy as np


def lognormal_days(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return np.exp(rng.normal(np.log(median), sigma, n))


def choice(rng: np.random.Generator, codes: tuple[str, ...] | list[str], p, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.asarray(codes, dtype=object)[rng.choice(len(codes), n, p=p / p.sum())]


def choice_by_class(rng: np.random.Generator, codes, table: np.ndarray, klass: np.ndarray) -> np.ndarray:
    """Draw codes row by row from a probability table indexed by each row's class."""
    table = np.asarray(table, dtype=float)
    cum = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(klass))
    idx = (u[:, None] > cum[klass]).sum(axis=1).clip(0, table.shape[1] - 1)
    return np.asarray(codes, dtype=object)[idx]


def reporting_lag(rng: np.random.Generator, n: int, on_time: float, next_month: float, longest: int) -> np.ndarray:
    """Months between a fact and the delivery that first carries it."""
    u = rng.random(n)
    late = rng.integers(2, max(longest, 2) + 1, n)
    return np.where(u < on_time, 0, np.where(u < on_time + next_month, 1, late))


def random_ids(rng: np.random.Generator, prefix: str, n: int) -> np.ndarray:
    """Opaque record ids: random, so that neither order nor neighbours reveal a person."""
    values = rng.integers(0, 2**60, n, dtype=np.int64)
    return np.array([f"{prefix}{v:015X}" for v in values], dtype=object)
