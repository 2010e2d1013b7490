"""How far the linkage's errors move England's rates: the marts against the oracle over the truth.

    python -m tests.oracle.linkage_effect --population DIR --warehouse W.duckdb

DIR is an `outcomes synth` output whose deliveries were ingested and linked (with or without
--truth) into W, and W was built (`outcomes build`). Prints, per rate of the outcome marts, how
many England cells there are, how many moved, and by how much, beside the bound that the
linkage errors allow (tests/test_marts_linkage_error.py explains it).
"""

from __future__ import annotations

import argparse
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


def misclustered_people(spine: Path, truth: Path) -> int:
    """True persons whose records are not exactly one spine person's, plus spine persons whose
    records are not exactly one true person's."""
    columns = ["source", "record_id", "person_id"]
    linked = pq.read_table(spine, columns=columns).to_pandas()
    true = pq.read_table(truth, columns=columns).to_pandas()
    both = linked.merge(true, on=["source", "record_id"], suffixes=("_linked", "_true"))

    def imperfect(by: str, other: str) -> int:
        # A person is imperfect when its records have several persons on the other side, or when
        # the one person they have on the other side also holds records of someone else.
        partners = both.groupby(by)[other].nunique()
        sizes = both.groupby(by).size()
        other_sizes = both.groupby(other).size()
        single = partners[partners == 1].index
        first = both.drop_duplicates(by).set_index(by)[other]
        same_size = other_sizes.reindex(first.loc[single]).to_numpy() == sizes.loc[single].to_numpy()
        return int((partners > 1).sum() + (~same_size).sum())

    return imperfect("person_id_true", "person_id_linked") + imperfect("person_id_linked", "person_id_true")


def england_rate_differences(marts: dict[str, pd.DataFrame], true: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per England cell and rate: the mart's value, the oracle's over the truth, their
    difference, and the mart's denominator."""
    rows = []
    for mart, rates in RATES.items():
        truth = true[mart]
        measures = [c for c in truth.columns if truth[c].dtype.kind in "if"]
        grain = [c for c in truth.columns if c not in measures and c not in ("as_of", "provisional")]
        built = marts[mart][marts[mart]["la_code"] == ENGLAND]
        truth = truth[truth["la_code"] == ENGLAND]
        built = built.assign(**{c: built[c].astype(str) for c in grain})
        truth = truth.assign(**{c: truth[c].astype(str) for c in grain})
        # A cell that only one side has is a zero count on the other (marts list what occurs).
        merged = built.merge(truth, on=grain, how="outer", suffixes=("_linked", "_true"))
        for rate, denominator in rates.items():
            frame = pd.DataFrame(
                {
                    "mart": mart,
                    "rate": rate,
                    "period_type": merged["period_type"],
                    "period_end": merged["period_end"],
                    "cell": merged[grain].agg("|".join, axis=1),
                    "linked": pd.to_numeric(merged[f"{rate}_linked"]).fillna(0.0),
                    "true": pd.to_numeric(merged[f"{rate}_true"]).fillna(0.0),
                    "denominator": pd.to_numeric(merged[f"{denominator}_linked"]).fillna(0).astype(int),
                }
            )
            rows.append(frame[frame["denominator"] > 0])
    out = pd.concat(rows, ignore_index=True)
    return out.assign(difference=out["linked"] - out["true"])


def summary(differences: pd.DataFrame, misclustered: int) -> pd.DataFrame:
    """Per rate: England cells, how many moved, mean and largest absolute difference (also over
    cells of 100 people or more), and the largest share of its bound (2 c / n) that a difference uses."""
    d = differences.assign(
        moved=differences["difference"] != 0,
        absolute=differences["difference"].abs(),
        large=differences["difference"].abs().where(differences["denominator"] >= 100),
        of_bound=differences["difference"].abs() / (2 * misclustered / differences["denominator"]),
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


def main() -> None:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target
    from tests.oracle import compute_marts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    target = resolve_target(args.warehouse)
    marts: dict[str, pd.DataFrame] = {}
    with connect(target) as backend:
        spine = linked_records(backend)
        with backend.transaction() as s:
            for mart in RATES:
                marts[mart] = s.fetch(f"select * from marts.{mart}").to_pandas()
    as_of = marts["successful_completion"]["as_of"].iloc[0]
    truth = args.population / "truth" / "records.parquet"
    spine_file = Path(args.warehouse).with_suffix(".spine.parquet")
    pq.write_table(spine, spine_file)
    c = misclustered_people(spine_file, truth)
    differences = england_rate_differences(marts, compute_marts(args.population / "landing", truth, as_of))
    table = summary(differences, c)
    print(f"as of {as_of}; people the linkage split or merged (c): {c:,}")
    print(
        "| mart | rate | England cells | moved | mean abs. difference | max abs. difference "
        "| max, cells of 100+ | max share of 2c/n |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(
            f"| {r.mart} | {r.rate} | {r.cells:,} | {r.moved:,} | {r.mean_abs_difference:.4f} | "
            f"{r.max_abs_difference:.4f} | {r.max_abs_difference_100:.4f} | {r.max_share_of_bound:.3f} |"
        )


if __name__ == "__main__":
    main()
