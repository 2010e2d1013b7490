"""Linkage quality per source pair (outcomes.md §8) and match rates by sex, age band and region,
so that biased linkage is visible. Ground truth, where there is any (synthetic data), adds
precision, recall and F1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.quality import _prf, clusters, cross_pairwise
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
    quality = _finish_quality(pd.DataFrame(rows), expected)

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


def _finish_quality(quality: pd.DataFrame, expected: pd.DataFrame | None) -> pd.DataFrame:
    """The model's expected precision and recall beside each source pair; absent figures as NaN."""
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


# -- The quality report kept in step, month by month ---------------------------------------------
#
# `linkage.quality_records` holds one row per record of the current spine: its person, its true
# person (ground truth, when given), and the identity fields the match rates group by. A
# whole-population run rebuilds it from the spine; an incremental run updates only the records it
# wrote link events for (a record's person changes only by an event of a run of the latest date).
# Every figure of `write_quality` is then a count: of records by source and group, with flags for
# their person's (and true person's) records of each source, and of records per (person, true
# person) cell. Those counts are `group by`s in the warehouse (no record in pandas); the figures
# are computed from them with the same integer and float arithmetic as `write_quality` over the
# whole spine, so they are identical (tests/test_linkage_incremental.py).

_KEYS = ["source", "record_id"]


def rebuild_quality_records(session, truth: Path | None) -> None:
    """`linkage.quality_records` from the current spine (linkage.person_records) and
    linkage.identities, as `write_quality` joins them; true persons from `truth`."""
    session.execute("delete from linkage.quality_records")
    session.execute(
        "insert into linkage.quality_records (source, record_id, person_id, sex, date_of_birth, postcode_district) "
        "select p.source, p.record_id, p.person_id, i.sex, i.date_of_birth, i.postcode_district "
        "from linkage.person_records p join linkage.identities i on i.source = p.source and i.record_id = p.record_id"
    )
    if truth is not None:
        _fill_truth(session, truth)


def update_quality_records(session, events: pd.DataFrame, truth: Path | None) -> None:
    """Bring `linkage.quality_records` in step after a run of the latest date whose link events
    are `events` (source, record_id, person_id): their records take their new person (a new record
    its identity fields from linkage.identities, written before); the rest are as they were."""
    moved = events[[*_KEYS, "person_id"]].drop_duplicates(_KEYS, keep="last")
    session.execute("drop table if exists linkage.work_quality_moves")
    session.execute(
        "create table linkage.work_quality_moves (source varchar not null, record_id varchar not null, "
        "person_id varchar not null)"
    )
    session.insert("linkage.work_quality_moves", pa.Table.from_pandas(moved, preserve_index=False))
    session.execute("drop table if exists linkage.work_quality_rows")
    session.execute(
        "create table linkage.work_quality_rows as select w.source, w.record_id, w.person_id, q.true_person, "
        "i.sex, i.date_of_birth, i.postcode_district from linkage.work_quality_moves w "
        "join linkage.identities i on i.source = w.source and i.record_id = w.record_id "
        "left join linkage.quality_records q on q.source = w.source and q.record_id = w.record_id"
    )
    session.execute(
        "delete from linkage.quality_records where exists (select 1 from linkage.work_quality_moves w "
        "where w.source = linkage.quality_records.source and w.record_id = linkage.quality_records.record_id)"
    )
    session.execute(
        "insert into linkage.quality_records (source, record_id, person_id, true_person, sex, date_of_birth, "
        "postcode_district) select source, record_id, person_id, true_person, sex, date_of_birth, postcode_district "
        "from linkage.work_quality_rows"
    )
    for table in ("work_quality_moves", "work_quality_rows"):
        session.execute(f"drop table if exists linkage.{table}")
    if truth is not None:
        _fill_truth(session, truth)


def _fill_truth(session, truth: Path) -> None:
    """True persons of the records that have none yet (all of them on a rebuild, a month's new
    records otherwise), from the ground truth."""
    missing = session.fetch("select source, record_id from linkage.quality_records where true_person is null")
    if missing.num_rows == 0:
        return
    t = pd.read_parquet(Path(truth) / "records.parquet", columns=[*_KEYS, "person_id"])
    found = missing.to_pandas().merge(t, on=_KEYS).rename(columns={"person_id": "true_person"})
    if found.empty:
        return
    session.execute("drop table if exists linkage.work_quality_truth")
    session.execute(
        "create table linkage.work_quality_truth (source varchar not null, record_id varchar not null, "
        "true_person varchar not null)"
    )
    session.insert("linkage.work_quality_truth", pa.Table.from_pandas(found, preserve_index=False))
    session.execute(
        "update linkage.quality_records set true_person = w.true_person from linkage.work_quality_truth w "
        "where w.source = linkage.quality_records.source and w.record_id = linkage.quality_records.record_id"
    )
    session.execute("drop table if exists linkage.work_quality_truth")


def _count_by(sources, key: str) -> str:
    return ", ".join(f"sum(case when source = '{s}' then 1 else 0 end) as {key}_{s}" for s in sources)


def write_quality_kept(backend, run_id: int, as_of, truth: Path | None, expected: pd.DataFrame | None = None):
    """`write_quality` of the current spine, from `linkage.quality_records` (kept in step by the
    run): the same rows in linkage.quality, quality_by_group and match_rates."""
    sources = list(SOURCES)
    with backend.transaction() as s:
        counts = s.fetch("select count(*) as n, count(true_person) as t from linkage.quality_records").to_pylist()[0]
        has_truth = truth is not None and counts["n"] == counts["t"]
        s.execute("drop table if exists linkage.work_quality")
        truth_join = (
            f"left join (select true_person, {_count_by(sources, 't')} from linkage.quality_records "
            "group by true_person) tc on tc.true_person = q.true_person"
            if has_truth
            else ""
        )
        t_cols = ", ".join(f"tc.t_{b}" for b in sources) if has_truth else ", ".join(f"0 as t_{b}" for b in sources)
        s.execute(
            "create table linkage.work_quality as select q.source, q.sex, q.date_of_birth, q.postcode_district, "
            f"{', '.join(f'pc.n_{b}' for b in sources)}, {t_cols} from linkage.quality_records q "
            f"join (select person_id, {_count_by(sources, 'n')} from linkage.quality_records group by person_id) pc "
            f"on pc.person_id = q.person_id {truth_join}"
        )

        def flags(prefix: str) -> str:
            return ", ".join(
                f"sum(case when {prefix}_{b} >= (case when source = '{b}' then 2 else 1 end) then 1 else 0 end) "
                f"as {prefix}_{b}"
                for b in sources
            )

        by_dim = {}
        for dim, key in (("sex", "coalesce(sex, 'U')"), ("age_band", "date_of_birth"), ("region", "postcode_district")):
            by_dim[dim] = s.fetch(
                f"select source, {key} as value, count(*) as records, {flags('n')}, {flags('t')} "
                f"from linkage.work_quality group by source, {key}"
            ).to_pandas()
        s.execute("drop table if exists linkage.work_quality")
        truth_figures = _truth_figures(s, sources) if has_truth else None
        reviews = s.fetch(
            "select left_source, right_source, count(*) as n from linkage.pair_decisions "
            "where decision = 'review' and run_id = :run group by 1, 2",
            {"run": run_id},
        ).to_pandas()
    by_dim["age_band"]["value"] = _age_band(by_dim["age_band"]["value"], as_of)
    by_dim["region"]["value"] = _region(by_dim["region"]["value"])
    cols = ["records", *(f"n_{b}" for b in sources), *(f"t_{b}" for b in sources)]
    for dim, frame in by_dim.items():
        by_dim[dim] = frame.groupby(["source", "value"], as_index=False)[cols].sum()
    per_source = by_dim["sex"].groupby("source")[cols].sum()
    count = {a: int(per_source["records"].get(a, 0)) for a in sources}

    rows = []
    for i, a in enumerate(sources):
        for b in sources[i:]:
            linked = int(per_source[f"n_{b}"].get(a, 0))
            rev = reviews[
                ((reviews["left_source"] == a) & (reviews["right_source"] == b))
                | ((reviews["left_source"] == b) & (reviews["right_source"] == a))
            ]["n"].sum()
            row = {
                "run_id": run_id,
                "as_of": as_of,
                "source_a": a,
                "source_b": b,
                "records_a": count[a],
                "records_b": count[b],
                "linked_records": linked,
                "match_rate": linked / count[a] if count[a] else None,
                "review_pairs": int(rev),
            }
            if has_truth:
                p, r, f = _prf(*truth_figures[(a, b)][:3])
                cp, cr, cf = _clusters_prf(*truth_figures[(a, b)][3:])
                row.update(
                    pairwise_precision=p,
                    pairwise_recall=r,
                    pairwise_f1=f,
                    cluster_precision=cp,
                    cluster_recall=cr,
                    cluster_f1=cf,
                )
            rows.append(row)
    quality = _finish_quality(pd.DataFrame(rows), expected)

    rates, groups = [], []
    for a in sources:
        for b in sources:
            for dim in ("sex", "age_band", "region"):
                g = by_dim[dim]
                g = g[g["source"] == a]
                part = pd.DataFrame(
                    {
                        "run_id": run_id,
                        "as_of": as_of,
                        "source_a": a,
                        "source_b": b,
                        "dimension": dim,
                        "value": g["value"].to_numpy(),
                        "records_a": g["records"].to_numpy(),
                        "linked_records": g[f"n_{b}"].to_numpy(),
                        "true_match_rate": g[f"t_{b}"].to_numpy() / g["records"].to_numpy() if has_truth else np.nan,
                    }
                )
                groups.append(part)
                if b == "treatment" and a != "treatment":
                    for row in part.itertuples(index=False):
                        rates.append(
                            {
                                "run_id": run_id,
                                "as_of": as_of,
                                "source": a,
                                "dimension": dim,
                                "value": row.value,
                                "records": int(row.records_a),
                                "linked_to_treatment": int(row.linked_records),
                                "rate": row.linked_records / row.records_a,
                                "true_rate": row.true_match_rate if has_truth else None,
                            }
                        )
    out = pd.concat(groups, ignore_index=True)
    out["match_rate"] = out["linked_records"] / out["records_a"]
    out = out.astype({"records_a": "int64", "linked_records": "int64", "true_match_rate": "float64"})
    with backend.transaction() as s:
        s.insert("linkage.quality", pa.Table.from_pandas(quality, preserve_index=False))
        s.insert("linkage.quality_by_group", pa.Table.from_pandas(out, preserve_index=False))
        if rates:
            s.insert("linkage.match_rates", pa.Table.from_pandas(pd.DataFrame(rates), preserve_index=False))
    return quality


def _truth_figures(session, sources) -> dict:
    """Per source pair (a, b): the pairs of an a and a b record (two records of a when a = b) in
    one predicted person and one true person, in one predicted person, in one true person
    (quality.cross_pairwise's counts); and over the records of a and b, the predicted persons, the
    exact ones (all one true person, all of it: quality.clusters) and the true persons. Counted in
    the warehouse over the (person, true person) cells of `linkage.quality_records`."""
    session.execute("drop table if exists linkage.work_quality_cells")
    session.execute(
        f"create table linkage.work_quality_cells as select person_id, true_person, {_count_by(sources, 'c')} "
        "from linkage.quality_records group by person_id, true_person"
    )
    pairs = [(a, b) for i, a in enumerate(sources) for b in sources[i:]]

    def products(prefix: str) -> str:  # twice the pairs within one source (halved below: exact integers)
        return ", ".join(
            f"sum({prefix}_{a} * ({prefix}_{a} - 1)) as p{i}"
            if a == b
            else f"sum(2 * {prefix}_{a} * {prefix}_{b}) as p{i}"
            for i, (a, b) in enumerate(pairs)
        )

    sums = ", ".join(f"sum(c_{s}) as c_{s}" for s in sources)
    counts = [
        session.fetch(f"select {products('c')} from {table}").to_pylist()[0]
        for table in (
            "linkage.work_quality_cells",
            f"(select person_id, {sums} from linkage.work_quality_cells group by person_id) per",
            f"(select true_person, {sums} from linkage.work_quality_cells group by true_person) per",
        )
    ]
    out = {}
    for i, (a, b) in enumerate(pairs):
        n = f"c_{a}" if a == b else f"c_{a} + c_{b}"
        row = session.fetch(
            f"with c as (select person_id, true_person, {n} as n from linkage.work_quality_cells where {n} > 0), "
            "pp as (select person_id, count(*) as k, sum(n) as size, min(true_person) as t from c group by person_id), "
            "tt as (select true_person, sum(n) as size from c group by true_person) "
            "select (select count(*) from pp) as clusters, (select count(*) from tt) as persons, "
            "(select count(*) from pp join tt on tt.true_person = pp.t where pp.k = 1 and pp.size = tt.size) as exact"
        ).to_pylist()[0]
        out[(a, b)] = (
            *(int(c[f"p{i}"] or 0) // 2 for c in counts),
            int(row["exact"]),
            int(row["clusters"]),
            int(row["persons"]),
        )
    session.execute("drop table if exists linkage.work_quality_cells")
    return out


def _clusters_prf(exact: int, clusters: int, persons: int) -> tuple[float, float, float]:
    """quality.clusters from its counts: exact predicted persons over predicted, and over true."""
    precision = exact / clusters if clusters else 1.0
    recall = exact / persons if clusters else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
