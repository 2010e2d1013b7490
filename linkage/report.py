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
from linkage.records import true_persons
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


def _insert_quality(backend, quality: pd.DataFrame, groups: pd.DataFrame, rates: list[dict]) -> None:
    """A run's quality tables, in one transaction."""
    with backend.transaction() as s:
        s.insert("linkage.quality", pa.Table.from_pandas(quality, preserve_index=False))
        s.insert("linkage.quality_by_group", pa.Table.from_pandas(groups, preserve_index=False))
        if rates:
            s.insert("linkage.match_rates", pa.Table.from_pandas(pd.DataFrame(rates), preserve_index=False))


def _pair_row(run_id, as_of, a: str, b: str, records_a: int, records_b: int, linked: int, reviews) -> dict:
    """A quality row's counts for sources a and b: records, a's linked records, the review pairs."""
    rev = reviews[
        ((reviews["left_source"] == a) & (reviews["right_source"] == b))
        | ((reviews["left_source"] == b) & (reviews["right_source"] == a))
    ]["n"].sum()
    return {
        "run_id": run_id,
        "as_of": as_of,
        "source_a": a,
        "source_b": b,
        "records_a": records_a,
        "records_b": records_b,
        "linked_records": linked,
        "match_rate": linked / records_a if records_a else None,
        "review_pairs": int(rev),
    }


def _truth_fields(pairwise: tuple, cluster: tuple) -> dict:
    """A quality row's figures against ground truth: pairwise and cluster precision, recall, F1."""
    p, r, f = pairwise
    cp, cr, cf = cluster
    return {
        "pairwise_precision": p,
        "pairwise_recall": r,
        "pairwise_f1": f,
        "cluster_precision": cp,
        "cluster_recall": cr,
        "cluster_f1": cf,
    }


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
            row = _pair_row(run_id, as_of, a, b, len(ra), int((spine["source"] == b).sum()), linked, reviews)
            if has_truth:
                sub = spine[spine["source"].isin([a, b])]
                row.update(
                    _truth_fields(
                        cross_pairwise(spine["person_id"], spine["true_person"], spine["source"], a, b),
                        clusters(sub["person_id"], sub["true_person"]),
                    )
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
    _insert_quality(backend, quality, groups, rates)
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
# person (ground truth, when given) and the identity fields the match rates group by (as first
# linked); `linkage.quality_persons` the records of each source each person holds (`n_<source>`),
# `linkage.quality_true_persons` each true person's (`t_<source>`): a row a person, so that a
# month writes a row a person it touched, not a row a record of theirs. Every figure of
# `write_quality` is a sum of contributions of records, persons, true persons or (person, true
# person) cells, kept in two tables:
#
# - `linkage.quality_counts`: per dimension (sex, date of birth, postcode district), source and
#   value, the records and how many of them are linked to (and truly of a person with) a record of
#   each source; the age bands and regions are made from them when the report is written;
# - `linkage.quality_truth`: per source pair, the pairs within predicted persons, true persons and
#   both (quality.cross_pairwise's counts, doubled), the predicted persons, the exact ones and the
#   true persons over the records of the pair (quality.clusters' counts).
#
# A whole-population run computes them over every record. An incremental run touches only the
# persons of the records it wrote link events for (their new and former persons), the true persons
# of its new records and the persons holding their records: it subtracts those rows'
# contributions, moves and adds records, counts those persons again, and adds the rows'
# contributions again. Integer counts, so the figures are
# `write_quality`'s over the whole spine exactly (tests/test_linkage_incremental.py).

_KEYS = ["source", "record_id"]
_DIMS = ("sex", "age_band", "region")


def _n_cols(prefix: str) -> str:
    return ", ".join(f"{prefix}_{s} bigint" for s in SOURCES)


QUALITY_DDL = [
    """create table if not exists linkage.quality_records (
        source varchar not null, record_id varchar not null, person_id varchar not null, true_person varchar,
        sex varchar, date_of_birth date, postcode_district varchar)""",
    f"create table if not exists linkage.quality_persons (person_id varchar not null, {_n_cols('n')})",
    f"create table if not exists linkage.quality_true_persons (true_person varchar not null, {_n_cols('t')})",
    f"""create table if not exists linkage.quality_counts (
        dimension varchar not null, source varchar not null, value varchar, records bigint,
        {_n_cols("n")}, {_n_cols("t")})""",
    """create table if not exists linkage.quality_truth (
        source_a varchar not null, source_b varchar not null, within_both bigint, within_person bigint,
        within_true bigint, exact bigint, clusters bigint, true_persons bigint)""",
]
_BASE = "source, record_id, person_id, true_person, sex, date_of_birth, postcode_district"
_ALL = f"{_BASE}, {', '.join(f'n_{s}' for s in SOURCES)}, {', '.join(f't_{s}' for s in SOURCES)}"


def _count_by(key: str) -> str:
    return ", ".join(f"sum(case when source = '{s}' then 1 else 0 end) as {key}_{s}" for s in SOURCES)


def _pairs() -> list[tuple[str, str]]:
    sources = list(SOURCES)
    return [(a, b) for i, a in enumerate(sources) for b in sources[i:]]


def _ensure(session, migrate: bool = False) -> None:
    # `migrate`: a quality_records of the layout before the per-person counts (its rows held their
    # person's counts) is narrowed in place and the persons counted from it, not dropped — its true
    # persons came from ground truth a later run without it could not rebuild
    old = migrate and session.scalar(
        "select count(*) from information_schema.columns where table_schema = 'linkage' "
        f"and table_name = 'quality_records' and column_name = 'n_{next(iter(SOURCES))}'"
    )
    if old:
        session.execute(f"create table linkage.quality_records__kept as select {_BASE} from linkage.quality_records")
        session.execute("drop table linkage.quality_records")
    for statement in QUALITY_DDL:
        session.execute(statement)
    if old:
        kept = "linkage.quality_records__kept"
        session.execute(f"insert into linkage.quality_records ({_BASE}) select {_BASE} from {kept}")
        session.execute("drop table linkage.quality_records__kept")
        for table in ("quality_persons", "quality_true_persons"):
            session.execute(f"delete from linkage.{table}")
        _count_persons(session)


def _with_counts(rows: str) -> str:
    """A query of `rows` (quality_records' columns: a table, or a query in brackets, no alias)
    with `_ALL`'s columns: each row's person's records per source (`linkage.quality_persons`) and
    its true person's (`linkage.quality_true_persons`; 0 without one)."""
    base = ", ".join(f"r.{c}" for c in _BASE.split(", "))
    n = ", ".join(f"p.n_{s}" for s in SOURCES)
    t = ", ".join(f"coalesce(t.t_{s}, 0) as t_{s}" for s in SOURCES)
    return (
        f"select {base}, {n}, {t} from {rows} r join linkage.quality_persons p on p.person_id = r.person_id "
        "left join linkage.quality_true_persons t on t.true_person = r.true_person"
    )


def _count_persons(session, persons: str = "", trues: str = "") -> None:
    """`linkage.quality_persons` and `quality_true_persons` counted over `quality_records`: of the
    persons and true persons of its rows where `persons` and `trues` hold (every one by default;
    a condition takes every record of a person, or none of them)."""
    session.execute(
        f"insert into linkage.quality_persons (person_id, {', '.join(f'n_{s}' for s in SOURCES)}) "
        f"select person_id, {_count_by('n')} from linkage.quality_records "
        f"{f'where {persons} ' if persons else ''}group by person_id"
    )
    session.execute(
        f"insert into linkage.quality_true_persons (true_person, {', '.join(f't_{s}' for s in SOURCES)}) "
        f"select true_person, {_count_by('t')} from linkage.quality_records where true_person is not null "
        f"{f'and {trues} ' if trues else ''}group by true_person"
    )


def rebuild_quality_records(session, truth: Path | None) -> None:
    """`linkage.quality_records` from the current spine (linkage.person_records) and
    linkage.identities, as `write_quality` joins them (true persons from `truth`), each person's
    and true person's records per source (`quality_persons`, `quality_true_persons`), and the kept
    counts over all of them."""
    _ensure(session, migrate=True)
    for table in ("quality_records", "quality_persons", "quality_true_persons"):
        session.execute(f"delete from linkage.{table}")
    true_person, join = "cast(null as varchar)", ""
    if truth is not None:
        _truth_file_table(session, Path(truth) / "records.parquet")
        true_person = "t.true_person"
        join = "left join linkage.work_quality_truth t on t.source = p.source and t.record_id = p.record_id"
    session.execute(
        f"insert into linkage.quality_records ({_BASE}) select p.source, p.record_id, p.person_id, "
        f"{true_person} as true_person, i.sex, i.date_of_birth, i.postcode_district from linkage.person_records p "
        f"join linkage.identities i on i.source = p.source and i.record_id = p.record_id {join}"
    )
    session.execute("drop table if exists linkage.work_quality_truth")
    _count_persons(session)
    has_truth = truth is not None and _all_true(session)
    session.execute("drop table if exists linkage.work_quality_rows")
    session.execute(f"create table linkage.work_quality_rows as {_with_counts('linkage.quality_records')}")
    dims, figures = _contributions(session, "linkage.work_quality_rows", has_truth)
    session.execute("drop table if exists linkage.work_quality_rows")
    session.execute("delete from linkage.quality_counts")
    session.execute("delete from linkage.quality_truth")
    _store(session, dims, figures)


def _all_true(session) -> bool:
    row = session.fetch("select count(*) as n, count(true_person) as t from linkage.quality_records").to_pylist()[0]
    return row["n"] == row["t"]


def _truth_table(session, frame: pd.DataFrame) -> None:
    """`linkage.work_quality_truth`: source, record_id, true_person."""
    session.execute("drop table if exists linkage.work_quality_truth")
    session.execute(
        "create table linkage.work_quality_truth (source varchar not null, record_id varchar not null, "
        "true_person varchar not null)"
    )
    for start in range(0, len(frame), 500_000):
        part = frame.iloc[start : start + 500_000][[*_KEYS, "true_person"]]
        session.insert("linkage.work_quality_truth", pa.Table.from_pandas(part, preserve_index=False))


def _truth_file_table(session, path: Path, rows: int = 500_000) -> None:
    """`linkage.work_quality_truth` from the truth's Parquet file, `rows` rows at a time in Arrow
    (the rows `_truth_table` inserts from the whole file read into pandas: a Python string a record
    id, 1.4 GB at a million people, beside DuckDB's buffers)."""
    import pyarrow.parquet as pq

    _truth_table(session, pd.DataFrame({"source": [], "record_id": [], "true_person": []}))
    f = pq.ParquetFile(path)
    for batch in f.iter_batches(batch_size=rows, columns=[*_KEYS, "person_id"]):
        part = pa.Table.from_batches([batch]).select([*_KEYS, "person_id"]).rename_columns([*_KEYS, "true_person"])
        session.insert("linkage.work_quality_truth", part)
        del part, batch


def quality_in_step(session, truth: Path | None) -> bool:
    """Whether the kept quality records can be updated by a month (there are some, and with
    ground truth every one has its true person: otherwise rebuild them)."""
    _ensure(session, migrate=True)
    row = session.fetch("select count(*) as n, count(true_person) as t from linkage.quality_records").to_pylist()[0]
    if row["n"] == 0:
        return False
    return truth is None or (
        row["n"] == row["t"] and bool(session.scalar("select count(*) from linkage.quality_truth"))
    )


def update_quality_records(session, events: pd.DataFrame, truth: Path | None) -> None:
    """Bring `linkage.quality_records`, the per-person counts and the kept counts in step after a
    run of the latest date whose link events are `events` (source, record_id, person_id): their
    records take their new person (a new record comes in, its identity fields from
    linkage.identities, written before); the touched persons' and true persons' counts are
    counted again; the kept counts change by the touched rows' contributions after less before.

    The touched rows (every record of the persons the events move records from and to, of the
    true persons of the new records and of the persons holding those) are read twice, before and
    after; of `quality_records` only the moved records' persons are updated and the new records
    inserted (a row holds no count of its person's: those are a row a person, in
    `quality_persons`), so a month writes a row a touched person and a row a new record, not
    every record of the persons it touched."""
    _ensure(session)
    moved = events[[*_KEYS, "person_id"]].drop_duplicates(_KEYS, keep="last")
    for table, cols in (
        ("work_quality_moves", "person_id varchar not null"),
        ("work_quality_p", "person_id varchar"),
        ("work_quality_t", "true_person varchar"),
    ):
        session.execute(f"drop table if exists linkage.{table}")
        keys = "source varchar not null, record_id varchar not null, " if table == "work_quality_moves" else ""
        session.execute(f"create table linkage.{table} ({keys}{cols})")
    session.insert("linkage.work_quality_moves", pa.Table.from_pandas(moved, preserve_index=False))
    # the moved records held already, with their former persons (one pass over quality_records)
    session.execute("drop table if exists linkage.work_quality_held")
    session.execute(
        "create table linkage.work_quality_held as select q.source, q.record_id, q.person_id "
        "from linkage.quality_records q join linkage.work_quality_moves m "
        "on q.source = m.source and q.record_id = m.record_id"
    )
    fresh = (
        "not exists (select 1 from linkage.work_quality_held h where h.source = m.source and h.record_id = m.record_id)"
    )
    new = session.fetch(f"select m.source, m.record_id from linkage.work_quality_moves m where {fresh}").to_pandas()
    truths = pd.DataFrame({"source": [], "record_id": [], "true_person": []})
    if truth is not None and not new.empty:
        truths = true_persons(truth, keys=new).rename(columns={"person_id": "true_person"})
    _truth_table(session, truths)
    # touched: the persons of the moved records (new and former), the true persons of the new
    # records, and every person holding a record of those true persons
    session.execute(
        "insert into linkage.work_quality_p select person_id from linkage.work_quality_moves "
        "union select person_id from linkage.work_quality_held"
    )
    session.execute("insert into linkage.work_quality_t select distinct true_person from linkage.work_quality_truth")
    if not truths.empty:
        session.execute(
            "insert into linkage.work_quality_p select distinct q.person_id from linkage.quality_records q "
            "where q.true_person in (select true_person from linkage.work_quality_t) "
            "and q.person_id not in (select person_id from linkage.work_quality_p)"
        )
    has_truth = truth is not None
    mine = (
        "person_id in (select person_id from linkage.work_quality_p) "
        "or true_person in (select true_person from linkage.work_quality_t)"
    )
    touched = f"(select * from linkage.quality_records where {mine})"
    session.execute("drop table if exists linkage.work_quality_rows")
    session.execute(f"create table linkage.work_quality_rows as {_with_counts(touched)}")
    before = _contributions(session, "linkage.work_quality_rows", has_truth)
    # the records as they are now: moved records take their person, new ones come in; then the
    # touched persons and true persons counted again, over their records (all of them here)
    session.execute(
        "update linkage.quality_records set person_id = m.person_id from linkage.work_quality_moves m "
        "where m.source = linkage.quality_records.source and m.record_id = linkage.quality_records.record_id "
        "and m.person_id <> linkage.quality_records.person_id"
    )
    session.execute("drop table if exists linkage.work_quality_new")
    session.execute(
        "create table linkage.work_quality_new as select m.source, m.record_id, m.person_id, "
        "t.true_person, i.sex, i.date_of_birth, i.postcode_district from linkage.work_quality_moves m "
        "join linkage.identities i on i.source = m.source and i.record_id = m.record_id "
        f"left join linkage.work_quality_truth t on t.source = m.source and t.record_id = m.record_id where {fresh}"
    )
    session.execute(f"insert into linkage.quality_records ({_BASE}) select {_BASE} from linkage.work_quality_new")
    session.execute(
        "delete from linkage.quality_persons where person_id in (select person_id from linkage.work_quality_p)"
    )
    session.execute(
        "delete from linkage.quality_true_persons where true_person in (select true_person from linkage.work_quality_t)"
    )
    _count_persons(
        session,
        "person_id in (select person_id from linkage.work_quality_p)",
        "true_person in (select true_person from linkage.work_quality_t)",
    )
    # the touched rows now (all of them: a moved record was touched before, a new one is its
    # person's): those read before, moved records with their person, and the new ones
    now = (
        "(select r.source, r.record_id, coalesce(m.person_id, r.person_id) as person_id, r.true_person, r.sex, "
        "r.date_of_birth, r.postcode_district from linkage.work_quality_rows r left join linkage.work_quality_moves m "
        f"on m.source = r.source and m.record_id = r.record_id union all select {_BASE} from linkage.work_quality_new)"
    )
    session.execute("drop table if exists linkage.work_quality_after")
    session.execute(f"create table linkage.work_quality_after as {_with_counts(now)}")
    after = _contributions(session, "linkage.work_quality_after", has_truth)
    # only the counts of the values the touched rows hold are read and written again
    delta = _add(after[0], before[0], -1)
    session.execute("drop table if exists linkage.work_quality_keys")
    session.execute("create table linkage.work_quality_keys (dimension varchar, source varchar, value varchar)")
    session.insert("linkage.work_quality_keys", pa.Table.from_pandas(delta[_DIM_KEYS], preserve_index=False))
    same = "k.dimension = c.dimension and k.source = c.source and not (k.value is distinct from c.value)"
    dims = session.fetch(
        "select c.* from linkage.quality_counts c "
        f"where exists (select 1 from linkage.work_quality_keys k where {same})"
    ).to_pandas()
    dims = _add(dims, delta, 1)
    session.execute(
        "delete from linkage.quality_counts where exists (select 1 from linkage.work_quality_keys k "
        f"where {same.replace('c.', 'linkage.quality_counts.')})"
    )
    session.execute("drop table if exists linkage.work_quality_keys")
    figures = session.fetch("select * from linkage.quality_truth").to_pandas()
    # without truth this run, no truth figures are kept (a later run with truth rebuilds them)
    figures = _add(_add(figures, after[1], 1), before[1], -1) if has_truth and len(figures) else None
    session.execute("delete from linkage.quality_truth")
    _store(session, dims[dims["records"] != 0], figures)
    for table in (
        "work_quality_moves",
        "work_quality_held",
        "work_quality_p",
        "work_quality_t",
        "work_quality_rows",
        "work_quality_after",
        "work_quality_new",
        "work_quality_truth",
    ):
        session.execute(f"drop table if exists linkage.{table}")


_DIM_KEYS = ["dimension", "source", "value"]
_TRUTH_KEYS = ["source_a", "source_b"]


def _add(kept: pd.DataFrame, delta: pd.DataFrame, sign: int) -> pd.DataFrame:
    keys = _DIM_KEYS if "dimension" in kept.columns else _TRUTH_KEYS
    values = [c for c in kept.columns if c not in keys]
    both = pd.concat([kept, delta.assign(**{c: sign * delta[c] for c in values})], ignore_index=True)
    return both.groupby(keys, as_index=False, dropna=False)[values].sum()


def _kept(session) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    dims = session.fetch("select * from linkage.quality_counts").to_pandas()
    figures = session.fetch("select * from linkage.quality_truth").to_pandas()
    return dims, (figures if len(figures) else None)


def _store(session, dims: pd.DataFrame, figures: pd.DataFrame | None) -> None:
    ints = {c: "int64" for c in dims.columns if c not in _DIM_KEYS}
    session.insert("linkage.quality_counts", pa.Table.from_pandas(dims.astype(ints), preserve_index=False))
    if figures is not None:
        ints = {c: "int64" for c in figures.columns if c not in _TRUTH_KEYS}
        session.insert("linkage.quality_truth", pa.Table.from_pandas(figures.astype(ints), preserve_index=False))


def _contributions(session, rows: str, has_truth: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The counts the report is made of, over the rows of the table `rows` (quality_records'
    columns): per dimension, source and value, and with truth per source pair."""

    def flags(prefix: str) -> str:
        return ", ".join(
            f"cast(sum(case when coalesce({prefix}_{b}, 0) >= (case when source = '{b}' then 2 else 1 end) "
            f"then 1 else 0 end) as bigint) as {prefix}_{b}"
            for b in SOURCES
        )

    parts = []
    for dim, key in (
        ("sex", "coalesce(sex, 'U')"),
        ("age_band", "cast(date_of_birth as varchar)"),
        ("region", "postcode_district"),
    ):
        parts.append(
            f"select '{dim}' as dimension, source, {key} as value, count(*) as records, {flags('n')}, {flags('t')} "
            f"from {rows} group by source, {key}"
        )
    dims = session.fetch(" union all ".join(parts)).to_pandas()
    if not has_truth:
        return dims, None
    sums = ", ".join(f"sum(c_{s}) as c_{s}" for s in SOURCES)
    cells = f"(select person_id, true_person, {_count_by('c')} from {rows} group by person_id, true_person) x"
    pairs = _pairs()

    def products() -> str:  # twice the pairs within one source, so that every count is an integer
        return ", ".join(
            f"sum(c_{a} * (c_{a} - 1)) as p{i}" if a == b else f"sum(2 * c_{a} * c_{b}) as p{i}"
            for i, (a, b) in enumerate(pairs)
        )

    within = [
        session.fetch(f"select {products()} from {table}").to_pylist()[0]
        for table in (
            cells,
            f"(select person_id, {sums} from {cells} group by person_id) y",
            f"(select true_person, {sums} from {cells} group by true_person) y",
        )
    ]
    clusters = []
    for a, b in pairs:
        n = f"n_{a}" if a == b else f"n_{a} + n_{b}"
        t = f"t_{a}" if a == b else f"t_{a} + t_{b}"
        row = session.fetch(
            "select count(*) as clusters, coalesce(sum(case when k = 1 and sp = st then 1 else 0 end), 0) as exact "
            f"from (select person_id, count(distinct true_person) as k, min({n}) as sp, min({t}) as st from {rows} "
            f"where source in ('{a}', '{b}') group by person_id) x"
        ).to_pylist()[0]
        trues = session.scalar(f"select count(distinct true_person) from {rows} where source in ('{a}', '{b}')")
        clusters.append((int(row["exact"]), int(row["clusters"]), int(trues)))
    figures = pd.DataFrame(
        {
            "source_a": [a for a, _ in pairs],
            "source_b": [b for _, b in pairs],
            "within_both": [int(within[0][f"p{i}"] or 0) for i in range(len(pairs))],
            "within_person": [int(within[1][f"p{i}"] or 0) for i in range(len(pairs))],
            "within_true": [int(within[2][f"p{i}"] or 0) for i in range(len(pairs))],
            "exact": [c[0] for c in clusters],
            "clusters": [c[1] for c in clusters],
            "true_persons": [c[2] for c in clusters],
        }
    )
    return dims, figures


def write_quality_kept(backend, run_id: int, as_of, truth: Path | None, expected: pd.DataFrame | None = None):
    """`write_quality` of the current spine, from the kept counts (linkage.quality_counts and
    quality_truth, kept in step by the run): the same rows in linkage.quality, quality_by_group and
    match_rates."""
    sources = list(SOURCES)
    with backend.transaction() as s:
        _ensure(s)
        has_truth = truth is not None and _all_true(s)
        dims, figures = _kept(s)
        reviews = s.fetch(
            "select left_source, right_source, count(*) as n from linkage.pair_decisions "
            "where decision = 'review' and run_id = :run group by 1, 2",
            {"run": run_id},
        ).to_pandas()
    cols = ["records", *(f"n_{b}" for b in sources), *(f"t_{b}" for b in sources)]
    by_dim = {}
    for dim in _DIMS:
        frame = dims[dims["dimension"] == dim].copy()
        if dim == "age_band":
            frame["value"] = _age_band(pd.to_datetime(frame["value"]), as_of)
        elif dim == "region":
            frame["value"] = _region(frame["value"])
        by_dim[dim] = frame.groupby(["source", "value"], as_index=False)[cols].sum()
    per_source = by_dim["sex"].groupby("source")[cols].sum()
    count = {a: int(per_source["records"].get(a, 0)) for a in sources}
    truth_rows = figures.set_index(_TRUTH_KEYS) if has_truth and figures is not None else None

    rows = []
    for a, b in _pairs():
        linked = int(per_source[f"n_{b}"].get(a, 0))
        row = _pair_row(run_id, as_of, a, b, count[a], count[b], linked, reviews)
        if truth_rows is not None:
            f = truth_rows.loc[(a, b)]
            row.update(
                _truth_fields(
                    _prf(int(f["within_both"]) // 2, int(f["within_person"]) // 2, int(f["within_true"]) // 2),
                    _clusters_prf(int(f["exact"]), int(f["clusters"]), int(f["true_persons"])),
                )
            )
        rows.append(row)
    quality = _finish_quality(pd.DataFrame(rows), expected)

    rates, groups = [], []
    for a in sources:
        for b in sources:
            for dim in _DIMS:
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
    _insert_quality(backend, quality, out, rates)
    return quality


def _clusters_prf(exact: int, clusters: int, persons: int) -> tuple[float, float, float]:
    """quality.clusters from its counts: exact predicted persons over predicted, and over true."""
    precision = exact / clusters if clusters else 1.0
    recall = exact / persons if clusters else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
