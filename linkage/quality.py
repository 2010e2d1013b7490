"""Linkage quality against ground truth: pairwise and cluster-level precision, recall, F1."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(counts: pd.Series) -> int:
    c = counts.to_numpy(dtype=np.int64)
    return int((c * (c - 1) // 2).sum())


def pairwise(pred: pd.Series, true: pd.Series) -> tuple[float, float, float]:
    """Precision, recall, F1 over record pairs (pairs counted from cluster sizes)."""
    df = pd.DataFrame({"p": pred.to_numpy(), "t": true.to_numpy()})
    tp = _pairs(df.groupby(["p", "t"]).size())
    pp = _pairs(df.groupby("p").size())
    tt = _pairs(df.groupby("t").size())
    return _prf(tp, pp, tt)


def cross_pairwise(pred: pd.Series, true: pd.Series, source: pd.Series, a: str, b: str) -> tuple[float, float, float]:
    """Precision, recall, F1 over pairs of one record from source a and one from source b."""
    df = pd.DataFrame({"p": pred.to_numpy(), "t": true.to_numpy(), "s": source.to_numpy()})
    if a == b:
        sub = df[df["s"] == a]
        return pairwise(sub["p"], sub["t"])

    def cross(keys):
        ca = df[df["s"] == a].groupby(keys).size()
        cb = df[df["s"] == b].groupby(keys).size()
        j = ca.to_frame("x").join(cb.to_frame("y"), how="inner")
        return int((j["x"] * j["y"]).sum())

    return _prf(cross(["p", "t"]), cross(["p"]), cross(["t"]))


def clusters(pred: pd.Series, true: pd.Series) -> tuple[float, float, float]:
    """Share of predicted clusters that are exactly one true person (precision) and of true
    persons found as exactly one predicted cluster (recall)."""
    df = pd.DataFrame({"p": pred.to_numpy(), "t": true.to_numpy()})
    exact = df.groupby("p")["t"].nunique().eq(1) & df.groupby("p").size().eq(
        df.groupby("p")["t"].first().map(df.groupby("t").size())
    )
    precision = exact.mean() if len(exact) else 1.0
    recall = exact.sum() / df["t"].nunique() if len(df) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def _prf(tp: int, predicted: int, actual: int) -> tuple[float, float, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
