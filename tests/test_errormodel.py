"""The independent error model (errormodel/): rates, determinism, spec-conforming deliveries, and
each error class changing what it says it changes."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import errormodel
from errormodel import ERROR_CLASSES, generate, pairs_by_class
from errormodel.names import name_lists
from errormodel.persons import PRONENESS_SHAPE
from outcomes.contract import SOURCES
from tests import test_synth_deliveries as spec_checks


@pytest.fixture(scope="module")
def model(clean_population, tmp_path_factory):
    out = tmp_path_factory.mktemp("errormodel")
    return generate(clean_population, out, scale=1.0, seed=5)


@pytest.fixture(scope="module")
def model3(clean_population, tmp_path_factory):
    out = tmp_path_factory.mktemp("errormodel3")
    return generate(clean_population, out, scale=3.0, seed=5)


def _read(result, name: str) -> pd.DataFrame:
    return pq.read_table(result.out / "truth" / name).to_pandas()


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def _within(applied: int, eligible: int, target: float, clustering: float = 0.0) -> bool:
    """Within four standard deviations (and one unit) of the target. Records of one person share
    a proneness (mean 1, variance 1/PRONENESS_SHAPE), so beside the binomial variance there is
    target² · Var(proneness) · Σ n(n − 1) over the persons' n eligible records (`clustering`)."""
    expected = eligible * target
    variance = expected * (1 - target) + target**2 / PRONENESS_SHAPE * clustering
    return abs(applied - expected) <= 4 * math.sqrt(max(variance, 1.0)) + 1


def _clustering(result) -> dict[str, float]:
    """Σ n(n − 1) over persons' records, per source."""
    n = _read(result, "records.parquet").groupby(["source", "person_id"]).size()
    return (n * (n - 1)).groupby(level="source").sum().astype(float).to_dict()


@pytest.mark.parametrize("which", ["model", "model3"])
def test_applied_rates_near_targets(which, request):
    result = request.getfixturevalue(which)
    counts = result.counts
    records = _read(result, "records.parquet")["source"].value_counts()
    clustering = _clustering(result)
    checked = 0
    for r in counts.itertuples(index=False):
        assert r.target == pytest.approx(min(ERROR_CLASSES[r.error_class].rates[r.source] * result.scale, 0.95)), (
            r.error_class
        )
        if r.eligible == 0:
            continue
        # the eligible records' share of the source's, squared: their pairs within persons
        share = r.eligible / records[r.source] if r.unit.startswith("records") and r.source in records else 0.0
        c = clustering.get(r.source, 0.0) * share**2
        assert _within(r.applied, r.eligible, r.target, c), (r.error_class, r.source, r.applied, r.eligible, r.target)
        checked += r.target > 0
    assert checked >= 40
    # every class is applied somewhere
    applied = counts.groupby("error_class")["applied"].sum()
    assert (applied.reindex(list(ERROR_CLASSES)) > 0).all(), applied[applied == 0]


def test_scale_three_triples_the_errors(model, model3):
    one = _read(model, "errors.parquet")["error_class"].value_counts()
    three = _read(model3, "errors.parquet")["error_class"].value_counts()
    for cls in ("typing_error", "nickname", "postcode_missing", "duplicate_key", "dob_year_off"):
        assert 2.0 < three[cls] / one[cls] < 4.0, cls


def test_same_seed_byte_identical_other_seed_differs(clean_population, model, tmp_path):
    again = generate(clean_population, tmp_path / "again", scale=1.0, seed=5)
    assert _digests(again.out) == _digests(model.out)
    other = generate(clean_population, tmp_path / "other", scale=1.0, seed=6)
    mine, theirs = _digests(other.out / "landing"), _digests(model.out / "landing")
    assert mine.keys() == theirs.keys()
    nonempty = [d.data.name for d in model.deliveries if d.row_count]
    assert nonempty and all(mine[k] != theirs[k] for k in nonempty)


def test_refuses_to_mix_with_earlier_output(clean_population, model):
    with pytest.raises(FileExistsError, match="not empty"):
        generate(clean_population, model.out)


def test_bad_input_named(tmp_path):
    with pytest.raises(errormodel.CleanPopulationError, match="no ground truth"):
        generate(tmp_path, tmp_path / "out")


@pytest.fixture(scope="module")
def parsed(model):
    out = []
    for f in spec_checks.deliveries(model.out / "landing"):
        manifest = json.loads(f.with_name(f.name.replace(".parquet", ".manifest.json")).read_text())
        out.append((f, manifest, pq.read_table(f)))
    return out


def test_deliveries_pass_the_spec_checks(model, parsed, clean_population):
    assert [f.name for f, _, _ in parsed] == [f.name for f in spec_checks.deliveries(clean_population / "landing")]
    spec_checks.test_manifests_match_their_files(parsed)
    spec_checks.test_exact_columns_and_types(parsed)
    spec_checks.test_identity_block_values(parsed)
    spec_checks.test_code_lists_not_nulls_and_row_rules(parsed)
    truth = _read(model, "records.parquet")
    for f, manifest, table in parsed:
        assert manifest["producer"] == "errormodel"
        known = set(truth.loc[truth["source"] == manifest["source"], "record_id"])
        assert set(table["record_id"].to_pylist()) <= known, f.name


def test_source_columns_unchanged_identity_replaced(clean_population, parsed):
    for f, _, table in parsed:
        clean = pq.read_table(clean_population / "landing" / f.name)
        spec = SOURCES[f.name.split("_")[0]]
        own = [c.name for c in spec.columns if not c.identity]
        assert table.select(own).equals(clean.select(own)), f.name
        if table.num_rows:
            assert table["forename_token"].to_pylist() != clean["forename_token"].to_pylist(), f.name


def test_truth_schemas_match_synth(clean_population, model):
    for name in ("records.parquet", "persons.parquet"):
        mine = pq.read_schema(model.out / "truth" / name)
        assert mine.equals(pq.read_schema(clean_population / "truth" / name), check_metadata=False), name
    assert (model.out / "truth" / "records.parquet").read_bytes() == (
        clean_population / "truth" / "records.parquet"
    ).read_bytes()
    errors = _read(model, "errors.parquet")
    assert list(errors.columns) == ["source", "record_id", "error_class"]
    assert set(errors["error_class"]) <= set(ERROR_CLASSES)
    assert not errors.duplicated().any()
    assert list(_read(model, "namesakes.parquet").columns) == ["person_a", "person_b", "kind"]


def test_a_record_has_one_identity_in_every_snapshot(parsed):
    frames = [t.to_pandas() for f, _, t in parsed if f.name.startswith("treatment")]
    snapshots = pd.concat(frames, ignore_index=True)
    identity = [c.name for c in SOURCES["treatment"].columns if c.identity]
    assert snapshots.groupby("record_id").size().max() > 1
    assert (snapshots.groupby("record_id")[identity].nunique(dropna=False) <= 1).all().all()


# -- each class changes what it should ----------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(model3):
    """Every record's identity as recorded, its person's clean identity, and its classes."""
    ident = _read(model3, "identities.parquet")
    clear = _read(model3, "persons_clear.parquet")
    errors = _read(model3, "errors.parquet")
    classes = errors.groupby(["source", "record_id"])["error_class"].agg(frozenset)
    df = ident.merge(clear, on="person_id", suffixes=("", "_clean"))
    df["classes"] = [classes.get((s, r), frozenset()) for s, r in zip(df["source"], df["record_id"], strict=True)]
    return df


def _only(df: pd.DataFrame, cls: str, fields: set[str]) -> pd.DataFrame:
    """Records with `cls` and no other class touching the same fields."""
    others = {c for c, k in ERROR_CLASSES.items() if c != cls and fields & set(k.fields)}
    others |= {"surname_change_marriage"} & (others | {cls}) if "surname" in fields else set()
    keep = df["classes"].map(lambda s: cls in s and not (s & (others - {cls})))
    out = df[keep]
    assert len(out) > 3, cls
    return out


def test_day_month_swap_swaps(recorded):
    r = _only(recorded, "dob_day_month_swap", {"date_of_birth"})
    got, clean = pd.to_datetime(r["date_of_birth"]), pd.to_datetime(r["date_of_birth_clean"])
    assert (got.dt.day == clean.dt.month).all() and (got.dt.month == clean.dt.day).all()
    assert (got.dt.year == clean.dt.year).all() and (got != clean).all()


def test_year_one_out(recorded):
    r = _only(recorded, "dob_year_off", {"date_of_birth"})
    got, clean = pd.to_datetime(r["date_of_birth"]), pd.to_datetime(r["date_of_birth_clean"])
    assert ((got.dt.year - clean.dt.year).abs() == 1).all() and (got.dt.month == clean.dt.month).all()


def test_missing_fields_are_missing(recorded):
    assert _only(recorded, "dob_missing", {"date_of_birth"})["date_of_birth"].isna().all()
    assert _only(recorded, "postcode_missing", {"postcode_district"})["postcode"].isna().all()
    assert (_only(recorded, "sex_unknown", {"sex"})["sex"] == "U").all()
    assert _only(recorded, "person_key_missing", {"person_key"})["source_person_id"].isna().all()
    initials = _only(recorded, "forename_initial_only", {"forename"})
    assert (initials["forename"].str.len() == 1).all()
    assert (initials["forename"] == initials["forename_clean"].str[0]).all()


def test_nicknames_come_from_the_list(recorded):
    r = _only(recorded, "nickname", {"forename"})
    nick = name_lists().nicknames
    assert all(f in nick[c] for f, c in zip(r["forename"], r["forename_clean"], strict=True))


def test_typing_error_is_one_keying_slip(recorded):
    r = _only(recorded, "typing_error", {"forename", "surname"})
    for f, s, fc, sc in zip(r["forename"], r["surname"], r["forename_clean"], r["surname_clean"], strict=True):
        wrong = [(a, b) for a, b in ((f, fc), (s, sc)) if a != b]
        assert len(wrong) == 1
        a, b = wrong[0]
        assert a[0] == b[0] and abs(len(a) - len(b)) <= 1


def test_marriage_changes_surname_after_the_wedding(recorded):
    r = recorded[recorded["classes"].map(lambda s: "surname_change_marriage" in s)]
    plain = r[r["classes"].map(lambda s: not s & {"typing_error", "duplicate_key_alias"})]
    assert len(plain) > 3
    assert (plain["surname"] == plain["married_surname"]).all()
    assert (plain["surname"] != plain["surname_clean"]).all()
    # the same women's records before the change carry the maiden name
    women = set(r["person_id"])
    before = recorded[recorded["person_id"].isin(women) & recorded["classes"].map(lambda s: not s)]
    assert len(before) > 0 and (before["surname"] == before["surname_clean"]).all()


def test_moved_records_carry_the_new_district(recorded):
    r = _only(recorded, "postcode_moved", {"postcode_district"})
    assert (r["postcode"] == r["moved_to"]).all() and (r["postcode"] != r["postcode_clean"]).all()


def test_duplicate_key_gives_a_second_key_within_a_source(recorded):
    dup = recorded[recorded["classes"].map(lambda s: bool(s & {"duplicate_key", "duplicate_key_alias"}))]
    assert len(dup) > 0
    keyed = recorded[recorded["source_person_id"].notna()]
    for (source, person), _ in dup.groupby(["source", "person_id"]):
        rows = keyed[(keyed["source"] == source) & (keyed["person_id"] == person)]
        second = rows["classes"].map(lambda s: "duplicate_key" in s)
        assert rows["source_person_id"].nunique() <= 2, (source, person)
        assert not set(rows.loc[second, "source_person_id"]) & set(rows.loc[~second, "source_person_id"])
    # no key belongs to two people
    keyed = recorded.dropna(subset=["source_person_id"])
    assert (keyed.groupby(["source", "source_person_id"])["person_id"].nunique() == 1).all()
    alias = recorded[recorded["classes"].map(lambda s: s == {"duplicate_key", "duplicate_key_alias"})]
    differs = (
        (alias["forename"] != alias["forename_clean"])
        | (alias["surname"] != alias["surname_clean"])
        | (alias["date_of_birth"] != alias["date_of_birth_clean"])
    )
    assert len(alias) > 3 and differs.mean() > 0.9


def test_duplicate_key_shows_in_the_delivered_keys(model3, recorded):
    dup = recorded[recorded["classes"].map(lambda s: "duplicate_key" in s) & (recorded["source"] == "convictions")]
    tables = [pq.read_table(f).to_pandas() for f in sorted((model3.out / "landing").glob("convictions_*.parquet"))]
    delivered = pd.concat(tables).drop_duplicates("record_id").merge(_read(model3, "records.parquet"), on="record_id")
    keys = delivered[delivered["person_id"].isin(set(dup["person_id"]))]
    per_person = keys.groupby("person_id")["source_person_key"].nunique()
    # two keys each, unless the key is missing from all of one key's records
    assert per_person.max() == 2 and (per_person == 2).mean() > 0.9


def test_namesakes_share_all_identifiers_but_one(model3):
    pairs = _read(model3, "namesakes.parquet")
    clear = _read(model3, "persons_clear.parquet").set_index("person_id")
    persons = _read(model3, "persons.parquet").set_index("person_id")
    assert set(pairs["kind"]) == {"twin", "father_son"}
    for a, b, kind in pairs.itertuples(index=False):
        x, y = clear.loc[a], clear.loc[b]
        same = {f for f in ("forename", "surname", "date_of_birth", "postcode") if x[f] == y[f]}
        if kind == "twin":
            assert same == {"surname", "date_of_birth", "postcode"}, (a, b)
        else:
            assert same == {"forename", "surname", "postcode"}, (a, b)
            assert x["sex"] == y["sex"] == "M"
            assert 20 * 365 <= (y["date_of_birth"] - x["date_of_birth"]).days <= 45 * 366
        assert persons.loc[b, "twin_of"] == a
        assert persons.loc[b, "date_of_birth"] == y["date_of_birth"]
    assert not set(pairs["person_a"]) & set(pairs["person_b"])


def test_pairs_by_class(model3):
    pairs = pairs_by_class(model3.out / "truth")
    assert set(pairs["error_class"]) == {c for c, k in ERROR_CLASSES.items() if k.fields}
    truth = _read(model3, "records.parquet").set_index(["source", "record_id"])["person_id"]
    a = truth.loc[list(zip(pairs["source_a"], pairs["record_id_a"], strict=True))].to_numpy()
    b = truth.loc[list(zip(pairs["source_b"], pairs["record_id_b"], strict=True))].to_numpy()
    assert (a == b).all() and (a == pairs["person_id"].to_numpy()).all()
    assert ((pairs["source_a"] < pairs["source_b"]) | (pairs["record_id_a"] < pairs["record_id_b"])).all()
    # pairs across sources as well as within
    assert (pairs["source_a"] != pairs["source_b"]).any() and (pairs["source_a"] == pairs["source_b"]).any()
    ident = _read(model3, "identities.parquet").set_index(["source", "record_id"])
    swap = pairs[pairs["error_class"] == "dob_day_month_swap"]
    da = ident.loc[list(zip(swap["source_a"], swap["record_id_a"], strict=True)), "date_of_birth"].to_numpy()
    db = ident.loc[list(zip(swap["source_b"], swap["record_id_b"], strict=True)), "date_of_birth"].to_numpy()
    assert len(swap) > 0 and (da != db).all()
    within = pairs[(pairs["error_class"] == "duplicate_key") & (pairs["source_a"] == pairs["source_b"])]
    ka = ident.loc[list(zip(within["source_a"], within["record_id_a"], strict=True)), "source_person_id"].to_numpy()
    kb = ident.loc[list(zip(within["source_b"], within["record_id_b"], strict=True)), "source_person_id"].to_numpy()
    assert len(within) > 0 and (ka != kb).all()


def test_cli_prints_applied_beside_target(clean_population, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "errormodel", "--clean", str(clean_population), "--out", str(tmp_path), "--scale", "3"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert "duplicate_key_alias" in run.stdout and "target" in run.stdout and "15.00%" in run.stdout
    fail = subprocess.run(
        [sys.executable, "-m", "errormodel", "--clean", str(tmp_path / "none"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert fail.returncode == 1 and "no ground truth" in fail.stdout


def test_shares_no_code_with_synth():
    """The error model is the independent check: it must not import outcomes.synth."""
    package = Path(errormodel.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n == "outcomes.synth" or n.startswith("outcomes.synth.") for n in names), path
    # every module of the package is imported at load time (no imports inside functions)
    code = (
        "import sys, errormodel, errormodel.__main__;"
        "assert not [m for m in sys.modules if m.startswith('outcomes.synth')], 'outcomes.synth imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recall_and_namesake_helpers(model3):
    truth = _read(model3, "records.parquet").rename(columns={"person_id": "person"})
    perfect = errormodel.recall_by_class(model3.out / "truth", truth)
    assert (perfect["recall"] == 1.0).all() and (perfect["pairs"] > 0).all()
    assert not errormodel.namesake_links(model3.out / "truth", truth)["linked"].any()
    # a linkage that keeps every record apart links nothing; one that lumps everyone links namesakes
    apart = truth.assign(person=truth["source"] + truth["record_id"])
    assert (errormodel.recall_by_class(model3.out / "truth", apart)["recall"] == 0.0).all()
    lumped = truth.assign(person="everyone")
    assert errormodel.namesake_links(model3.out / "truth", lumped)["linked"].all()
    with pytest.raises(ValueError, match="missing person"):
        errormodel.recall_by_class(model3.out / "truth", truth.drop(columns="person"))


def test_will_not_write_over_its_input(clean_population):
    with pytest.raises(ValueError, match="must not be"):
        generate(clean_population, clean_population)


def test_ingestion_accepts_every_delivery_and_row(model):
    """The ingest's own checks: file level (name, manifest, sha256, schema) for every delivery, and
    the great-expectations row rules for the last delivery of each source."""
    from outcomes.ingest.landing import check, discover
    from outcomes.ingest.rows import canonical_text
    from outcomes.ingest.validate import rules_by_row

    checked = [check(d) for d in discover(model.out / "landing")]
    assert len(checked) == len(model.deliveries)
    assert not [(d.path.name, d.reason) for d in checked if d.reason]
    last = {d.source: d for d in sorted(checked, key=lambda d: d.extract_date)}
    for source, d in last.items():
        assert d.table.num_rows > 0, source
        assert rules_by_row(source, canonical_text(d.table, source), d.extract_date) == {}, source


def test_errors_cluster_in_error_prone_people(recorded):
    """Record-level rates are multiplied by a person's proneness (mean 1): the most prone quarter
    of people have several times the errors of the least prone quarter."""
    record_level = {"typing_error", "nickname", "postcode_missing", "dob_year_off", "sex_unknown", "dob_missing"}
    errors = recorded["classes"].map(lambda s: len(s & record_level))
    quartile = pd.qcut(recorded["proneness"], 4, labels=False)
    per = errors.groupby(quartile).mean()
    assert per[3] > 3 * per[0], per
    by_person = recorded.drop_duplicates("person_id")["proneness"]
    assert by_person.mean() == pytest.approx(1.0, abs=0.1) and by_person.var() == pytest.approx(0.5, abs=0.15)
