"""Which true pairs the linkage misses, and why: the evidence behind the recall figures.

    python bench/linkage_missed.py --population DIR [--warehouse W.duckdb] [--unreviewed]

DIR holds landing/ and truth/ (`outcomes synth` or `python -m errormodel`). Without --warehouse
the population is linked into a fresh DuckDB warehouse first (the real `link()`, records straight
from the deliveries); with it, the warehouse's spine and decisions are read as they are.

A true person the spine holds as several persons is split into parts: the largest, and the
others. Every record pair across two parts is a missed pair; it is put down to the smaller part,
and that part to the best pair the run sent to clerical review between it and the rest of the
true person (`linkage.pair_decisions`): its reason and what its comparison levels show —

- `forename differs`: everything may agree but the forename (twins look so; so does a second key
  under an alias forename);
- `dob years apart`: names agree, dates of birth 1 to 10 years apart (a second key under an
  earlier date of birth; two namesakes of one district);
- `surname differs`: forename and date of birth agree, the surname does not (a marriage, a
  second key under another surname; namesakes of the clamped synthetic birth date);
- `dob far apart`: more than ten years (a father and son);
- `other`: none of these (several errors at once);

or `no pair sent to review`: no pair of the two parts scored the review level (several errors,
or no blocking pass proposed it). Printed: missed record pairs per source pair and category, and
each source pair's recall; then the review pairs left by the relatives' probabilities against
the truth (per rule and configuration: pairs, the probability learned, the share that is one
person; and, in the largest configuration, that share by the levels of sex, postcode and key:
whether any comparison tells the second keys from the twins). With --unreviewed, the parts no
pair of which reached review: whether any of their variant pairs was a candidate (the blocking
passes rebuilt from the deliveries), the weight of the best one under the stored model had it
been one, the fields it agrees on and the error classes of the parts' records (errormodel truth).
For docs/linkage.md; never a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ORDER = ["treatment", "convictions", "benefits", "deaths"]
REASONS = {  # the reasons of linkage.cluster.decide, by their first words
    "weight between r": "weight under the link level",
    "the persons hold": "the persons hold other keys of a source",
    "forenames disagr": "relatives' probability under the link level",
    "dates of birth d": "relatives' probability under the link level",
}


def pattern(row) -> str:
    if row.forename_level == 0:
        return "forename differs"
    if row.dob_level == 1:
        return "dob years apart"
    if row.surname_level == 0:
        return "surname differs"
    if row.dob_level == 0:
        return "dob far apart"
    return "other"


def missed_pairs(spine: pd.DataFrame, truth: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Missed record pairs per (category, source pair)."""
    r = spine.merge(truth, on=["source", "record_id"], suffixes=("", "_true"))
    parts = r.groupby(["person_id_true", "person_id", "source"]).size().unstack(fill_value=0)
    parts = parts.reindex(columns=ORDER, fill_value=0)
    split = parts.groupby(level=0).size()
    parts = parts[parts.index.get_level_values(0).isin(split[split > 1].index)]
    # best review pair between each part and the rest of its true person
    where = r.set_index(["source", "record_id"])[["person_id", "person_id_true"]]
    rv = reviews.join(where, on=["left_source", "left_record_id"]).join(
        where, on=["right_source", "right_record_id"], rsuffix="_r"
    )
    rv = rv[(rv["person_id_true"] == rv["person_id_true_r"]) & (rv["person_id"] != rv["person_id_r"])]
    rv = rv.assign(category=[f"{pattern(x)}: {REASONS.get(x.reason[:16], x.reason)}" for x in rv.itertuples()])
    both = pd.concat(
        [
            rv[["person_id", "weight", "category"]],
            rv[["person_id_r", "weight", "category"]].rename(columns={"person_id_r": "person_id"}),
        ]
    )
    best = both.sort_values("weight", ascending=False).drop_duplicates("person_id").set_index("person_id")
    rows = []
    for _, g in parts.groupby(level=0):
        g = g.droplevel(0)
        size = g.sum(axis=1).sort_values(ascending=False, kind="mergesort")
        ids = list(size.index)
        for i, x in enumerate(ids):
            for y in ids[:i]:  # x is the smaller of the two parts
                why = best["category"].get(x, "no pair sent to review")
                for k, a in enumerate(ORDER):
                    for b in ORDER[k:]:
                        n = g.at[x, a] * g.at[y, b] + (g.at[x, b] * g.at[y, a] if a != b else 0)
                        if n:
                            rows.append((why, f"{a}-{b}", int(n), x, y))
    return pd.DataFrame(rows, columns=["category", "pair", "missed", "part", "other"])


FIELDS = {  # identity fields whose agreement a blocking pass keys on, as in linkage.spec.IDENTITY
    "forename": "forename_token",
    "surname": "surname_token",
    "soundex": "surname_soundex_token",
    "initial": "forename_initial",
    "dob": "date_of_birth",
    "year": "birth_year",
    "postcode": "postcode_district",
}


def stored_model_and_variants(spine: pd.DataFrame, population: Path, warehouse: Path):
    """The warehouse's latest stored model, and the population's records rebuilt from its
    deliveries as the run builds them: (model, records with their variant and spine person,
    variants)."""
    from linkage.model import Model
    from linkage.records import build_variants, records_from_deliveries
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(warehouse)), read_only=True) as backend, backend.transaction() as s:
        stored = s.fetch("select model_json from linkage.models order by trained_in_run desc limit 1")
    model = Model.from_json(stored["model_json"][0].as_py())
    records, _ = records_from_deliveries(population / "landing")
    r, variants = build_variants(records)
    return model, r.merge(spine, on=["source", "record_id"]), variants


def unreviewed(missed: pd.DataFrame, spine: pd.DataFrame, population: Path, warehouse: Path) -> None:
    """The parts no pair of which reached the review level: were their record pairs ever
    candidates (blocking), at what weight (the stored model, variant pairs as scored), what
    a candidate pair would have weighed, and which error classes their records carry."""
    from linkage.blocking import candidate_pairs
    from linkage.compare import Comparer
    from linkage.engine import tf_arrays
    from linkage.spec import IDENTITY as spec

    none = missed[missed["category"] == "no pair sent to review"]
    if none.empty:
        return
    model, r, variants = stored_model_and_variants(spine, population, warehouse)
    pairs, _ = candidate_pairs(variants, spec)
    cand = set((pairs["a"].to_numpy() << 32 | pairs["b"].to_numpy()).tolist())
    print(f"\ncandidate pairs: {len(pairs):,}; variants {len(variants):,}")
    by_part = {k: np.unique(v) for k, v in r.groupby("person_id")["variant"]}
    errors = pd.read_parquet(population / "truth" / "errors.parquet", columns=["source", "record_id", "error_class"])
    classes = errors.merge(r[["source", "record_id", "person_id"]], on=["source", "record_id"])
    classes = {k: set(c) for k, c in classes.groupby("person_id")["error_class"]}
    comparer = Comparer(variants, spec, model.alias_sets())
    tf = tf_arrays(variants, spec)
    node = variants["node"].to_numpy()
    parts = none.groupby(["part", "other"])["missed"].sum()
    a_all, b_all, which = [], [], []
    for k, (x, y) in enumerate(parts.index):
        va, vb = np.meshgrid(by_part[x], by_part[y], indexing="ij")
        a, b = np.minimum(va, vb).ravel(), np.maximum(va, vb).ravel()
        keep = node[a] != node[b]
        a_all.append(a[keep]), b_all.append(b[keep]), which.append(np.full(keep.sum(), k))
    a, b, which = np.concatenate(a_all), np.concatenate(b_all), np.concatenate(which)
    vec = comparer.vectors(a, b)
    weight = model.score(vec, spec, {c: v[a] for c, v in tf.items()})
    is_cand = np.array([(int(x) << 32 | int(y)) in cand for x, y in zip(a, b, strict=True)])
    va, vb = variants.iloc[a], variants.iloc[b]
    agree = pd.DataFrame(
        {f: (va[c].to_numpy() == vb[c].to_numpy()) & va[c].notna().to_numpy() for f, c in FIELDS.items()}
    )
    f = pd.DataFrame({"k": which, "weight": weight, "cand": is_cand}).join(agree)
    f = f.join(vec[["forename", "surname", "dob"]].add_suffix("_level"))
    per = f.groupby("k").agg(candidate=("cand", "any"), best_any=("weight", "max"))
    per["best_candidate"] = f[f["cand"]].groupby("k")["weight"].max()
    best = f.sort_values("weight", ascending=False).drop_duplicates("k").set_index("k").sort_index()
    per = per.join(best[[*FIELDS, "forename_level", "surname_level", "dob_level"]])
    per["missed"] = parts.to_numpy()
    per["classes"] = [
        " + ".join(sorted(classes.get(x, set()) | classes.get(y, set()))) or "(none)" for x, y in parts.index
    ]
    review = spec.review_at
    at, never = "candidate", "never a candidate"
    per["was"] = np.where(
        per["candidate"],
        np.where(per["best_candidate"] >= review, f"{at}, at review level as a variant pair", f"{at}, under review"),
        np.where(per["best_any"] >= review, f"{never}, would reach review", f"{never}, would not reach review"),
    )
    pd.set_option("display.width", 250)
    print("\nparts with no pair at the review level (part pairs; missed record pairs):")
    print(per.groupby("was").agg(part_pairs=("missed", "size"), missed=("missed", "sum")).to_markdown())
    never = per[~per["candidate"]]
    bands = pd.cut(never["best_any"], [-np.inf, -10, review, 0, spec.link_at, np.inf])
    print(f"\nnever a candidate: weight of the best pair had it been one (bands; link level {spec.link_at:.2f}):")
    print(
        never.groupby(bands, observed=True).agg(part_pairs=("missed", "size"), missed=("missed", "sum")).to_markdown()
    )
    print("\n... by the levels of its forename, surname and date of birth:")
    lv = never.groupby(["forename_level", "surname_level", "dob_level"]).agg(
        part_pairs=("missed", "size"), missed=("missed", "sum"), weight=("best_any", "median")
    )
    print(lv.sort_values("missed", ascending=False).head(15).round(2).to_markdown())
    print("\nweight of the best candidate pair (bands), candidate parts:")
    c = per[per["candidate"]]
    bands = pd.cut(c["best_candidate"], [-np.inf, -20, -10, -5, review, np.inf])
    print(c.groupby(bands, observed=True).agg(part_pairs=("missed", "size"), missed=("missed", "sum")).to_markdown())
    print("\nwhat the best-weighing pair of each part pair agrees on (fields; 1 = agree):")
    agree_cols = list(FIELDS)
    g = per.groupby(["was", *agree_cols]).agg(part_pairs=("missed", "size"), missed=("missed", "sum"))
    print(g.sort_values("missed", ascending=False).head(25).to_markdown())
    print("\nerror classes on the two parts' records (a part pair counts under each class):")
    ex = per.assign(cls=per["classes"].str.split(" \\+ ")).explode("cls")
    table = ex.groupby(["cls", "was"])["missed"].sum().unstack(fill_value=0)
    print(table.loc[table.sum(axis=1).sort_values(ascending=False).index].to_markdown())
    n = per["classes"].str.count(r"\+") + 1
    print("\nclasses per part pair:", per.groupby(n)["missed"].agg(["size", "sum"]).to_dict())


GROUPS = {  # identity fields that go together in a consensus identity (tokens determine the rest)
    "forename": ["forename_token", "forename_bloom", "forename_initial"],
    "surname": ["surname_token", "surname_bloom", "surname_soundex_token", "surname_initial"],
    "dob": ["date_of_birth"],
    "sex": ["sex"],
    "postcode": ["postcode_district"],
}


def consensus(missed: pd.DataFrame, spine: pd.DataFrame, population: Path, warehouse: Path) -> None:
    """Evidence from a person's other records for the parts no pair of which reached review: per
    person of the spine holding two identities or more, its *consensus* identity (each field's
    value held by most of its records, missing only where all are), kept where it is none of the
    person's own identities (its records' errors outvoted). Blocked by the spec's passes against
    every identity (and every other consensus), scored by the stored model: how many candidate
    pairs that adds, and how many of the missed part pairs it would carry to the review and link
    levels (the consensus of one part against the other part's identities or consensus)."""
    from linkage.blocking import candidate_pairs
    from linkage.compare import Comparer
    from linkage.engine import tf_arrays
    from linkage.records import add_birth_keys
    from linkage.spec import IDENTITY as spec

    model, r, variants = stored_model_and_variants(spine, population, warehouse)
    base, _ = candidate_pairs(variants, spec)
    many = r.groupby("person_id")["variant"].nunique()
    rr = r[r["person_id"].isin(many[many >= 2].index)]
    cons = pd.DataFrame({"person_id": many[many >= 2].index})
    for cols in GROUPS.values():  # each field group's value held by most of the person's records
        top = rr.dropna(subset=cols[:1]).groupby(["person_id", cols[0]]).size().rename("n").reset_index()
        top = top.sort_values(["person_id", "n"], ascending=[True, False]).drop_duplicates("person_id")
        full = rr.drop_duplicates(["person_id", cols[0]])[["person_id", *cols]]
        cons = cons.merge(top[["person_id", cols[0]]].merge(full, on=["person_id", cols[0]]), how="left")
    cons.insert(0, "source", "consensus")
    cons.insert(0, "node", "consensus|" + cons["person_id"].astype(str))
    rows = cons
    cons = pd.DataFrame(rows)
    own = r.drop_duplicates("variant")
    key = ["forename_token", "surname_token", "date_of_birth", "sex", "postcode_district"]
    held = set(map(tuple, own[["person_id", *key]].astype(str).to_numpy()))
    new_id = ~pd.Series([tuple(x) in held for x in cons[["person_id", *key]].astype(str).to_numpy()])
    cons = cons[new_id.to_numpy()].reset_index(drop=True)
    person_of = cons.pop("person_id").to_numpy()
    cons["date_of_birth"] = pd.to_datetime(cons["date_of_birth"])
    base_cols = [c for c in variants.columns if c in cons.columns]
    allv = pd.concat([variants[base_cols], cons[base_cols]], ignore_index=True)
    add_birth_keys(allv)
    first_new = len(variants)
    pairs, _ = candidate_pairs(allv, spec, new=pd.RangeIndex(first_new, len(allv)))
    person = np.concatenate(
        [
            pd.Series(variants.index).map(r.drop_duplicates("variant").set_index("variant")["person_id"]).to_numpy(),
            person_of,
        ]
    )
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    cross = person[a] != person[b]
    a, b = a[cross], b[cross]
    print(f"\nconsensus identities new to their person: {len(cons):,} (of {len(rows):,} persons with 2+ identities)")
    print(f"candidate pairs: {len(base):,} by the identities; consensus adds {len(a):,} across persons")
    comparer = Comparer(allv, spec, model.alias_sets())
    tf = tf_arrays(allv, spec)
    weight = model.score(comparer.vectors(a, b), spec, {c: v[a] for c, v in tf.items()})
    found = pd.DataFrame({"x": person[a], "y": person[b], "weight": weight})
    found = pd.concat([found, found.rename(columns={"x": "y", "y": "x"})]).groupby(["x", "y"])["weight"].max()
    none = missed[missed["category"] == "no pair sent to review"]
    parts = none.groupby(["part", "other", "pair"])["missed"].sum().reset_index()
    parts["weight"] = found.reindex(
        pd.MultiIndex.from_frame(parts[["part", "other"]].set_axis(["x", "y"], axis=1))
    ).to_numpy()
    parts["level"] = np.select(
        [parts["weight"] >= spec.link_at, parts["weight"] >= spec.review_at], ["link", "review"], "none"
    )
    print("missed record pairs with no pair at the review level, by what the consensus would reach:")
    print(parts.pivot_table(index="level", columns="pair", values="missed", aggfunc="sum", fill_value=0).to_markdown())
    over = found[found >= spec.link_at]
    at_review = int((found >= spec.review_at).sum()) // 2
    print(f"person pairs the consensus carries to the link level: {len(over) // 2:,}; to review {at_review:,}")
    truth = pd.read_parquet(population / "truth" / "records.parquet", columns=["source", "record_id", "person_id"])
    t = r[["source", "record_id", "person_id"]].merge(truth, on=["source", "record_id"], suffixes=("", "_true"))
    true_of = t.groupby("person_id")["person_id_true"].agg(lambda x: x.mode().iloc[0])
    o = over.reset_index()
    o = o[o["x"] < o["y"]]
    o["one"] = o["x"].map(true_of).to_numpy() == o["y"].map(true_of).to_numpy()
    print(f"... of which one true person: {int(o['one'].sum()):,} of {len(o):,}")


def relatives_against_truth(reviews: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The review pairs the relatives' probabilities left (reason "... (one person in p% of such
    pairs: configuration)"): per rule and configuration, pairs, learned and true share of one
    person; and for the configuration with most pairs, the true share by sex, postcode and key
    levels."""
    where = truth.set_index(["source", "record_id"])["person_id"]
    left = where.reindex(pd.MultiIndex.from_frame(reviews[["left_source", "left_record_id"]])).to_numpy()
    right = where.reindex(pd.MultiIndex.from_frame(reviews[["right_source", "right_record_id"]])).to_numpy()
    found = reviews["reason"].str.extract(r"^(\w+) .*one person in (\d+)% of such pairs: ([^)]+)\)$")
    r = reviews.assign(rule=found[0], learned=found[1].astype(float) / 100, configuration=found[2], one=left == right)
    r = r[r["configuration"].notna()]
    per = r.groupby(["rule", "configuration"]).agg(
        pairs=("one", "size"), learned=("learned", "first"), one_person=("one", "mean")
    )
    if r.empty:
        return per, per
    top = per["pairs"].idxmax()
    g = r[(r["rule"] == top[0]) & (r["configuration"] == top[1])]
    levels = g.groupby(["sex_level", "postcode_level", "key_level"]).agg(
        pairs=("one", "size"), one_person=("one", "mean")
    )
    return per.reset_index(), levels.reset_index().assign(configuration=f"{top[0]}: {top[1]}")


def true_pairs(truth: pd.DataFrame, spine: pd.DataFrame) -> pd.Series:
    t = truth.merge(spine[["source", "record_id"]], on=["source", "record_id"])
    n = t.groupby(["person_id", "source"]).size().unstack(fill_value=0).reindex(columns=ORDER, fill_value=0)
    out = {}
    for k, a in enumerate(ORDER):
        for b in ORDER[k:]:
            out[f"{a}-{b}"] = int((n[a] * (n[a] - 1) // 2).sum() if a == b else (n[a] * n[b]).sum())
    return pd.Series(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=Path, required=True)
    p.add_argument("--warehouse", type=Path)
    p.add_argument("--unreviewed", action="store_true", help="diagnose the parts no pair of which reached review")
    p.add_argument("--consensus", action="store_true", help="what persons' consensus identities would find of them")
    args = p.parse_args()
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    warehouse = args.warehouse
    if warehouse is None:
        from linkage.records import records_from_deliveries
        from linkage.run import link

        warehouse = Path(tempfile.mkdtemp(prefix="linkage-missed-")) / "w.duckdb"
        records, as_of = records_from_deliveries(args.population / "landing")
        with connect(resolve_target(str(warehouse))) as backend:
            link(backend, records=records, as_of=as_of)
    with connect(resolve_target(str(warehouse))) as backend, backend.transaction() as s:
        spine = s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()
        reviews = s.fetch(
            "select left_source, left_record_id, right_source, right_record_id, forename_level, surname_level, "
            "dob_level, sex_level, postcode_level, key_level, weight, reason from linkage.pair_decisions "
            "where decision = 'review'"
        ).to_pandas()
    truth = pd.read_parquet(args.population / "truth" / "records.parquet", columns=["source", "record_id", "person_id"])
    missed = missed_pairs(spine, truth, reviews)
    table = missed.pivot_table(index="category", columns="pair", values="missed", aggfunc="sum", fill_value=0)
    total = true_pairs(truth, spine)
    table = table.reindex(columns=[c for c in total.index if c in table.columns])
    table.loc["all missed"] = table.sum()
    recall = 1 - table.loc["all missed"] / total.reindex(table.columns)
    pd.set_option("display.width", 250)
    print(table.astype(np.int64).to_markdown())
    print("\ntrue pairs per source pair:", total.to_dict())
    print("recall per source pair:", recall.round(4).to_dict())
    per, levels = relatives_against_truth(reviews, truth)
    print("\nreview pairs left by the relatives' probabilities, against the truth:")
    print(per.round(4).to_markdown(index=False))
    print(levels.round(4).to_markdown(index=False))
    if args.unreviewed:
        unreviewed(missed, spine, args.population, warehouse)
    if args.consensus:
        consensus(missed, spine, args.population, warehouse)


if __name__ == "__main__":
    main()
