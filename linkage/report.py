"""Linkage quality per source pair (outcomes.md §8) and match rates by sex, age band and region,
so that biased linkage is visible. Ground truth, where there is any (synthetic data), adds
precision, recall and F1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.quality import clusters, cross_pairwise
from outcomes.contract import SOURCES
from outcomes.reference import local_authorities, postcode_districts

AGE_BANDS = [
    (0, 20, "<20"),
    (20, 30, "20-29"),
    (30, 40, "30-39"),
    (40, 50, "40-49"),
    (50, 70, "50-69"),
    (70, 200, "70+"),
]


def _age_band(dob: pd.Series, as_of: dt.date) -> pd.Series:
    age = (pd.Timestamp(as_of) - pd.to_datetime(dob)).dt.days / 365.25
    out = pd.Series("unknown", index=dob.index, dtype=object)
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age < high)] = label
    return out


def _region(district: pd.Series) -> pd.Series:
    pcd = postcode_districts().drop_duplicates("postcode_district")
    la = pcd.set_index("postcode_district")["la_code"]
    region = local_authorities().set_index("la_code")["region_name"]
    return district.map(la).map(region).fillna("unknown")


def write_quality(
    backend,
    run_id: int,
    as_of,
    truth: Path | None,
    expected: pd.DataFrame | None = None,
    spine_as_of: dt.date | None = None,
) -> pd.DataFrame:
    """Quality of the current spine, or of the spine as of `spine_as_of` (a past date's run: the
    current spine is a later date's)."""
    from linkage.schema import spine_as_of_sql

    spine_sql = "linkage.person_records" if spine_as_of is None else f"({spine_as_of_sql()})"
    with backend.transaction() as s:
        spine = s.fetch(
            "select p.source, p.record_id, p.person_id, i.sex, i.date_of_birth, i.postcode_district "
            f"from {spine_sql} p join linkage.identities i using (source, record_id)",
            None if spine_as_of is None else {"as_of": spine_as_of},
        ).to_pandas()
        reviews = s.fetch(
            "select left_source, right_source, count(*) as n from linkage.pair_decisions "
            "where decision = 'review' and run_id = :run group by 1, 2",
            {"run": run_id},
        ).to_pandas()
    if truth is not None:
        t = pd.read_parquet(Path(truth) / "records.parquet")
        spine = spine.merge(t.rename(columns={"person_id": "true_person"}), on=["source", "record_id"], how="left")
    has_truth = "true_person" in spine and spine["true_person"].notna().all()
    # persons as integer codes: every figure below counts and groups them (a few times faster
    # than grouping their strings over the whole spine)
    spine["person_id"] = pd.factorize(spine["person_id"])[0]
    if has_truth:
        spine["true_person"] = pd.factorize(spine["true_person"])[0]
    sources = list(SOURCES)
    persons_with = {s: set(spine.loc[spine["source"] == s, "person_id"]) for s in sources}
    rows = []
    for i, a in enumerate(sources):
        for b in sources[i:]:
            ra = spine[spine["source"] == a]
            if a == b:
                per_person = ra.groupby("person_id").size()
                linked = int(ra["person_id"].map(per_person).gt(1).sum())
            else:
                linked = int(ra["person_id"].isin(persons_with[b]).sum())
            rev = reviews[
                ((reviews["left_source"] == a) & (reviews["right_source"] == b))
                | ((reviews["left_source"] == b) & (reviews["right_source"] == a))
            ]["n"].sum()
            row = {
                "run_id": run_id,
                "as_of": as_of,
                "source_a": a,
                "source_b": b,
                "records_a": len(ra),
                "records_b": int((spine["source"] == b).sum()),
                "linked_records": linked,
                "match_rate": linked / len(ra) if len(ra) else None,
                "review_pairs": int(rev),
            }
            if has_truth:
                p, r, f = cross_pairwise(spine["person_id"], spine["true_person"], spine["source"], a, b)
                sub = spine[spine["source"].isin([a, b])]
                cp, cr, cf = clusters(sub["person_id"], sub["true_person"])
                row.update(
                    pairwise_precision=p,
                    pairwise_recall=r,
                    pairwise_f1=f,
                    cluster_precision=cp,
                    cluster_recall=cr,
                    cluster_f1=cf,
                )
            rows.append(row)
    quality = pd.DataFrame(rows)
    if expected is not None and not expected.empty:
        quality = quality.merge(
            expected[["source_a", "source_b", "expected_precision", "expected_recall"]],
            on=["source_a", "source_b"],
            how="left",
        )
    for col in (
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "cluster_precision",
        "cluster_recall",
        "cluster_f1",
        "expected_precision",
        "expected_recall",
    ):
        if col not in quality:
            quality[col] = np.nan

    # Match rates: share of each source's records whose person is in treatment, by group.
    in_treatment = spine["person_id"].isin(persons_with["treatment"])
    true_in_treatment = None
    if has_truth:
        treated = set(spine.loc[spine["source"] == "treatment", "true_person"])
        true_in_treatment = spine["true_person"].isin(treated)
    dims = {
        "sex": spine["sex"].fillna("U"),
        "age_band": _age_band(spine["date_of_birth"], as_of),
        "region": _region(spine["postcode_district"]),
    }
    rates = []
    for source in sources[1:]:
        mask = spine["source"] == source
        for dim, values in dims.items():
            frame = pd.DataFrame({"value": values[mask], "linked": in_treatment[mask]})
            if true_in_treatment is not None:
                frame["true"] = true_in_treatment[mask]
            for value, g in frame.groupby("value"):
                rates.append(
                    {
                        "run_id": run_id,
                        "as_of": as_of,
                        "source": source,
                        "dimension": dim,
                        "value": value,
                        "records": len(g),
                        "linked_to_treatment": int(g["linked"].sum()),
                        "rate": g["linked"].mean(),
                        "true_rate": g["true"].mean() if true_in_treatment is not None else None,
                    }
                )
    groups = _by_group(spine, sources, dims, has_truth, run_id, as_of)
    with backend.transaction() as s:
        s.insert("linkage.quality", pa.Table.from_pandas(quality, preserve_index=False))
        s.insert("linkage.quality_by_group", pa.Table.from_pandas(groups, preserve_index=False))
        if rates:
            s.insert("linkage.match_rates", pa.Table.from_pandas(pd.DataFrame(rates), preserve_index=False))
    return quality


def _by_group(spine: pd.DataFrame, sources, dims: dict, has_truth: bool, run_id: int, as_of) -> pd.DataFrame:
    """For every ordered source pair (a, b) and group of a's records: the share of them linked
    to a record of b (to another record of a when a = b), as linked and as the truth has it
    (both ways round: convictions linked to treatment by sex is not treatment to convictions)."""
    rows = []
    size = spine.groupby(["person_id", "source"]).size()
    true_size = spine.groupby(["true_person", "source"]).size() if has_truth else None
    for a in sources:
        mask = (spine["source"] == a).to_numpy()
        sub = spine[mask]
        for b in sources:
            need = 2 if a == b else 1
            linked = size.reindex(pd.MultiIndex.from_arrays([sub["person_id"], [b] * len(sub)])).fillna(0) >= need
            frame = pd.DataFrame({"linked": linked.to_numpy()})
            if has_truth:
                truly = true_size.reindex(pd.MultiIndex.from_arrays([sub["true_person"], [b] * len(sub)]))
                frame["true"] = truly.fillna(0).to_numpy() >= need
            for dim, values in dims.items():
                frame["value"] = values[mask].to_numpy()
                g = frame.groupby("value")
                part = pd.DataFrame({"records_a": g.size(), "linked_records": g["linked"].sum()})
                part["true_match_rate"] = g["true"].mean() if has_truth else np.nan
                part = part.reset_index()
                part.insert(0, "dimension", dim)
                part.insert(0, "source_b", b)
                part.insert(0, "source_a", a)
                rows.append(part)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    out["match_rate"] = out["linked_records"] / out["records_a"]
    out.insert(0, "as_of", as_of)
    out.insert(0, "run_id", run_id)
    return out.astype({"records_a": "int64", "linked_records": "int64", "true_match_rate": "float64"})
