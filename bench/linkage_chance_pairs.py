"""Benchmark: what finer keys on the chance-heavy blocking passes would cut, and what they would lose.

    python bench/linkage_chance_pairs.py --population DIR

DIR is the output of `outcomes synth` (landing/ and truth/). The first run's variants and
candidate pairs are made as `link()` makes them (`build_variants`, `candidate_pairs` with the
real spec), each variant labelled with its true person (its first record's). For each of the
passes whose chance pairs grow fastest (docs/linkage.md) and each candidate finer key (a column
the pair must also agree on), it prints the pairs only that pass finds — chance and true — and
what the finer key would keep of each; and, as the measure of recall at stake, the true pairs it
would drop whose two variants no other true candidate pair joins (by connected components of the
true pairs left): a true pair another path joins is still linkable. Ratios are of the same run's
unrefined pass (the reference). Figures for docs/scale.md; never a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CANDIDATES = {
    "soundex+initial+postcode": ("surname_token", "forename_token", "birth_decade"),
    "forename+birth_year+postcode": ("birth_month", "surname_soundex_token"),
    "dob+forename": ("surname_soundex_token", "postcode_district"),
}


def main() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from linkage.blocking import candidate_pairs
    from linkage.records import build_variants, records_from_deliveries
    from linkage.spec import IDENTITY as SPEC

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=Path, required=True)
    args = p.parse_args()
    records, _ = records_from_deliveries(args.population / "landing")
    truth = pd.read_parquet(args.population / "truth" / "records.parquet", columns=["source", "record_id", "person_id"])
    r, variants = build_variants(records)
    first = r[["source", "record_id", "variant"]].merge(truth.drop_duplicates(["source", "record_id"]), how="left")
    first = first.dropna(subset=["person_id"]).drop_duplicates("variant")
    label = np.full(len(variants), -1, dtype=np.int64)
    label[first["variant"].to_numpy()] = pd.factorize(first["person_id"])[0]
    del first, truth, records, r
    pairs, stats = candidate_pairs(variants, SPEC)
    a, b, mask = pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64), pairs["passes"].to_numpy()
    true = (label[a] == label[b]) & (label[a] >= 0)
    n = len(variants)
    variants["birth_decade"] = variants["birth_year"] // 10
    print(f"{n:,} variants, {len(pairs):,} candidate pairs, {int(true.sum()):,} of them true")

    def unreachable(drop: np.ndarray) -> int:
        keep = true & ~drop
        graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
        comp = connected_components(graph, directed=False)[1]
        lost = drop & true
        return int((comp[a[lost]] != comp[b[lost]]).sum())

    names = [s.name for s in stats[:-1]]
    print(
        "| pass | finer key | pairs only it finds (chance, true) | chance kept | true kept "
        "| true pairs no other path joins |"
    )
    print("|---|---|---|---|---|---|")
    for name, extra in CANDIDATES.items():
        only = mask == (1 << names.index(name))
        chance, hit = int((only & ~true).sum()), int((only & true).sum())
        print(f"| {name} | (none: drop the pass) | {chance:,}, {hit:,} | 0 | 0 | {unreachable(only):,} |")
        for col in extra:
            x, y = variants[col].to_numpy()[a], variants[col].to_numpy()[b]
            same = pd.Series(x).eq(pd.Series(y)).fillna(False).to_numpy(dtype=bool)
            drop = only & ~same
            kept_c, kept_t = int((only & same & ~true).sum()), int((only & same & true).sum())
            print(
                f"| {name} | + {col} | {chance:,}, {hit:,} | {kept_c:,} ({kept_c / max(chance, 1):.3f}) | "
                f"{kept_t:,} ({kept_t / max(hit, 1):.3f}) | {unreachable(drop):,} |"
            )


if __name__ == "__main__":
    main()
