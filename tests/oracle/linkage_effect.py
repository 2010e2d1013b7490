"""How far the linkage's errors move England's rates: the marts against the oracle over the truth.

    python -m tests.oracle.linkage_effect --population DIR --warehouse W.duckdb

DIR is an `outcomes synth` output whose deliveries were ingested and linked (with or without
--truth) into W, and W was built (`outcomes build`). Prints, per rate of the outcome marts, how
many England cells there are, how many moved, and by how much, beside the bound that the
linkage errors allow (`england_rate_differences` explains it).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tests.oracle.codes import ENGLAND
from tests.oracle.marts import RECOVERY_FLAGS

# Each rate of a person-level share and the count of persons it divides by.
RATES: dict[str, dict[str, str]] = {
    "successful_completion": {"rate": "in_treatment"},
    "sustained_recovery": {f"{flag}_rate": "cohort" for flag in RECOVERY_FLAGS},
    "proven_reoffending": {"rate": "cohort"},
    "benefits_outcome": {f"rate_{at}": "cohort" for at in ("at_start", "at_6_months", "at_12_months")},
}


def linked_records(backend) -> pa.Table:
    """The spine's person of every record (source, record_id, person_id), as the oracle reads truth."""
    with backend.transaction() as s:
        return s.fetch("select source, record_id, person_id from linkage.person_records order by source, record_id")


def misclustered(spine: pa.Table, truth: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The records of the people the linkage got wrong, as two person maps: spine persons whose
    records are not exactly one true person's, and true persons whose records are not exactly one
    spine person's. Only the records the warehouse holds count (those in the spine: a record never
    applied is in neither the marts nor the oracle's state); one without a true person is wrong."""
    columns = ["source", "record_id", "person_id"]
    linked, true = spine.select(columns).to_pandas(), truth.select(columns).to_pandas()
    both = linked.merge(true, on=["source", "record_id"], how="left", suffixes=("_linked", "_true"))

    def wrong(by: str, other: str) -> pd.Index:
        mine = both.dropna(subset=[by]).groupby(by)
        partners = mine[other].nunique(dropna=False)
        partner = mine[other].first()  # NaN when the only partner is missing
        partner_size = both.dropna(subset=[other]).groupby(other).size().reindex(partner).to_numpy()
        right = (partners == 1) & partner.notna() & (partner_size == mine.size().to_numpy())
        return partners.index[~right.to_numpy()]

    def records_of(people: pd.Index, side: str) -> pa.Table:
        rows = both[both[f"person_id_{side}"].isin(people)]
        return pa.table(
            {
                "source": pa.array(rows["source"], pa.string()),
                "record_id": pa.array(rows["record_id"], pa.string()),
                "person_id": pa.array(rows[f"person_id_{side}"], pa.string()),
            }
        )

    return (
        records_of(wrong("person_id_linked", "person_id_true"), "linked"),
        records_of(wrong("person_id_true", "person_id_linked"), "true"),
    )


def people(records: pa.Table) -> int:
    return len(set(records.column("person_id").to_pylist()))


def _england(frame: pd.DataFrame, grain: list[str]) -> pd.DataFrame:
    frame = frame[frame["la_code"] == ENGLAND]
    return frame.assign(**{c: frame[c].astype(str) for c in grain})


def england_rate_differences(
    marts: dict[str, pd.DataFrame],
    true: dict[str, pd.DataFrame],
    wrong_linked: dict[str, pd.DataFrame],
    wrong_true: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """One row per England cell and rate: the mart's value (over the spine), the oracle's over the
    truth, their difference, both denominators, and how many people of each denominator the
    linkage got wrong (`wrong_linked`, `wrong_true`: the oracle over only those people's records).

    A rate k/n mixes the rate r of the people linked right (the same on both sides) with that of
    the b people linked wrong: |k/n - r| <= b/n. So |difference| <= b/n + b'/n' (`bound`)."""
    rows = []
    for mart, rates in RATES.items():
        truth = true[mart]
        measures = [c for c in truth.columns if truth[c].dtype.kind in "if"]
        grain = [c for c in truth.columns if c not in measures and c not in ("as_of", "provisional")]
        merged = _england(marts[mart], grain).merge(
            _england(truth, grain), on=grain, how="outer", suffixes=("_linked", "_true")
        )
        denominators = set(rates.values())
        for side, wrong in (("wrong_linked", wrong_linked), ("wrong_true", wrong_true)):
            counts = _england(wrong[mart], grain)[[*grain, *denominators]]
            merged = merged.merge(counts.rename(columns={d: f"{d}_{side}" for d in denominators}), on=grain, how="left")
        for rate, denominator in rates.items():
            n = pd.to_numeric(merged[f"{denominator}_linked"]).fillna(0).astype(int)
            n_true = pd.to_numeric(merged[f"{denominator}_true"]).fillna(0).astype(int)
            b = pd.to_numeric(merged[f"{denominator}_wrong_linked"]).fillna(0).astype(int)
            b_true = pd.to_numeric(merged[f"{denominator}_wrong_true"]).fillna(0).astype(int)
            frame = pd.DataFrame(
                {
                    "mart": mart,
                    "rate": rate,
                    "cell": merged[grain].agg("|".join, axis=1),
                    "linked": pd.to_numeric(merged[f"{rate}_linked"]),
                    "true": pd.to_numeric(merged[f"{rate}_true"]),
                    "denominator": n,
                    "true_denominator": n_true,
                    "wrong": b,
                    "true_wrong": b_true,
                    "bound": b / n.where(n > 0) + b_true / n_true.where(n_true > 0),
                }
            )
            rows.append(frame[(n > 0) & (n_true > 0)])  # a rate on both sides
    out = pd.concat(rows, ignore_index=True)
    return out.assign(difference=out["linked"] - out["true"])


def summary(differences: pd.DataFrame) -> pd.DataFrame:
    """Per rate: England cells, how many moved, mean and largest absolute difference (also over
    cells of 100 people or more), and the largest share of its bound that a difference uses."""
    d = differences.assign(
        moved=differences["difference"] != 0,
        absolute=differences["difference"].abs(),
        large=differences["difference"].abs().where(differences["denominator"] >= 100),
        of_bound=(differences["difference"].abs() / differences["bound"]).fillna(0.0),
    )
    return (
        d.groupby(["mart", "rate"], sort=False)
        .agg(
            cells=("absolute", "size"),
            moved=("moved", "sum"),
            mean_abs_difference=("absolute", "mean"),
            max_abs_difference=("absolute", "max"),
            max_abs_difference_100=("large", "max"),
            max_share_of_bound=("of_bound", "max"),
        )
        .reset_index()
    )


def effect(landing: Path, truth_file: Path, spine: pa.Table, marts: dict[str, pd.DataFrame], as_of) -> tuple:
    """(differences, people linked wrong): the oracle over the truth and over the wrong people's
    records on each side, against `marts` (built over `spine`)."""
    from tests.oracle import compute_marts

    wrong_linked, wrong_true = misclustered(spine, pq.read_table(truth_file))
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(wrong_linked, Path(tmp) / "linked.parquet")
        pq.write_table(wrong_true, Path(tmp) / "true.parquet")
        differences = england_rate_differences(
            marts,
            compute_marts(landing, truth_file, as_of),
            compute_marts(landing, Path(tmp) / "linked.parquet", as_of),
            compute_marts(landing, Path(tmp) / "true.parquet", as_of),
        )
    return differences, people(wrong_linked) + people(wrong_true)


def main() -> None:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    marts: dict[str, pd.DataFrame] = {}
    with connect(resolve_target(args.warehouse)) as backend:
        spine = linked_records(backend)
        with backend.transaction() as s:
            for mart in RATES:
                marts[mart] = s.fetch(f"select * from marts.{mart}").to_pandas()
    as_of = marts["successful_completion"]["as_of"].iloc[0]
    truth = args.population / "truth" / "records.parquet"
    differences, wrong = effect(args.population / "landing", truth, spine, marts, as_of)
    print(f"as of {as_of}; people the linkage split or merged: {wrong:,}")
    print(
        "| mart | rate | England cells | moved | mean abs. difference | max abs. difference "
        "| max, cells of 100+ | max share of bound |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in summary(differences).itertuples():
        print(
            f"| {r.mart} | {r.rate} | {r.cells:,} | {r.moved:,} | {r.mean_abs_difference:.4f} | "
            f"{r.max_abs_difference:.4f} | {r.max_abs_difference_100:.4f} | {r.max_share_of_bound:.2f} |"
        )


if __name__ == "__main__":
    main()
