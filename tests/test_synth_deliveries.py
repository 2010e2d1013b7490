"""Every delivery `outcomes synth` writes conforms to the extract spec (extracts.md §1–4)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from outcomes.contract import SOURCES, arrow_schema, codes
from outcomes.contract.extracts import parse_delivery_filename
from tests.conftest import SMALL

HEX64 = re.compile(r"^[0-9a-f]{64}$")
ICD10 = re.compile(codes.ICD10_PATTERN)


def deliveries(landing: Path) -> list[Path]:
    return sorted(p for p in landing.iterdir() if p.suffix == ".parquet")


def test_one_delivery_per_source_and_month(small_population):
    files = deliveries(small_population / "landing")
    assert len(files) == len(SOURCES) * SMALL.months
    for f in files:
        assert (f.parent / f.name.replace(".parquet", ".manifest.json")).exists()
    assert not list((small_population / "landing").glob("*key*"))


@pytest.fixture(scope="module")
def parsed(small_population):
    out = []
    for f in deliveries(small_population / "landing"):
        manifest = json.loads(f.with_name(f.name.replace(".parquet", ".manifest.json")).read_text())
        out.append((f, manifest, pq.read_table(f)))
    return out


def test_manifests_match_their_files(parsed):
    for f, manifest, table in parsed:
        name = parse_delivery_filename(f.name)
        assert set(manifest) == {
            "source",
            "spec_version",
            "extract_date",
            "delivery_type",
            "row_count",
            "sha256",
            "producer",
        }
        assert manifest["source"] == name.source
        assert manifest["extract_date"] == name.extract_date.isoformat()
        assert manifest["spec_version"] == 1
        assert manifest["delivery_type"] == SOURCES[name.source].delivery_type
        assert manifest["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert manifest["row_count"] == table.num_rows
        # extract dates are month ends
        assert (name.extract_date + dt.timedelta(days=1)).day == 1


def test_exact_columns_and_types(parsed):
    for f, _, table in parsed:
        source = parse_delivery_filename(f.name).source
        assert table.schema.equals(arrow_schema(source), check_metadata=False), f.name


def test_identity_block_values(parsed):
    for f, _, table in parsed:
        df = table.select([c.name for c in SOURCES["treatment"].columns if c.identity or c.name == "record_id"])
        df = df.to_pandas()
        assert df["record_id"].notna().all() and df["record_id"].is_unique, f.name
        for col in ("forename_token", "surname_token", "surname_soundex_token", "source_person_key"):
            assert df[col].dropna().map(lambda v: bool(HEX64.match(v))).all(), (f.name, col)
        for col in ("forename_bloom", "surname_bloom"):
            assert df[col].dropna().map(lambda v: len(base64.b64decode(v, validate=True)) == 64).all(), (f.name, col)
        for col in ("forename_initial", "surname_initial"):
            assert df[col].dropna().str.fullmatch("[A-Z]").all(), (f.name, col)
        assert df["sex"].isin(codes.SEXES).all()
        # an initial, token and filter are null together: all derive from one normalised name
        for part in ("forename", "surname"):
            nulls = df[[f"{part}_initial", f"{part}_token", f"{part}_bloom"]].isna()
            assert (nulls.all(axis=1) | ~nulls.any(axis=1)).all()


def test_code_lists_not_nulls_and_row_rules(parsed):
    """No synthetic row breaks a section-4 rule: quarantine tests corrupt rows on purpose."""
    for f, manifest, table in parsed:
        source = SOURCES[manifest["source"]]
        extract_date = dt.date.fromisoformat(manifest["extract_date"])
        df = table.to_pandas()
        for col in source.columns:
            values = df[col.name]
            if not col.nullable:
                assert values.notna().all(), (f.name, col.name)
            if col.codes:
                assert values.dropna().isin(col.codes).all(), (f.name, col.name, set(values.dropna()) - set(col.codes))
            if col.type == "date":
                assert (values.dropna() <= extract_date).all(), (f.name, col.name)
                dob = df["date_of_birth"]
                assert (dob.isna() | values.isna() | (dob <= values)).all(), (f.name, col.name)
        rules = {
            "treatment": ("treatment_start_date", "discharge_date"),
            "benefits": ("spell_start", "spell_end"),
            "convictions": ("offence_date", "disposal_date"),
            "deaths": ("date_of_death", "date_of_registration"),
        }
        first, then = rules[source.name]
        both = df[first].notna() & df[then].notna()
        assert (df.loc[both, first] <= df.loc[both, then]).all(), f.name
        if source.name == "treatment":
            assert (df["discharge_date"].isna() == df["discharge_reason"].isna()).all()
        if source.name == "deaths":
            assert df["underlying_cause"].map(lambda c: bool(ICD10.match(c))).all()
            for causes in df["contributory_causes"]:
                assert all(ICD10.match(c) for c in causes)
        if source.name == "benefits":
            uc = df["benefit_type"] == "UC"
            assert df.loc[~uc, "uc_conditionality"].isna().all()
            assert df.loc[uc, "uc_conditionality"].notna().all()


def test_ground_truth_covers_every_record(small_population, parsed):
    truth = pq.read_table(small_population / "truth" / "records.parquet").to_pandas()
    persons = pq.read_table(small_population / "truth" / "persons.parquet").to_pandas()
    assert truth.groupby("source")["record_id"].apply(lambda s: s.is_unique).all()
    assert set(truth["person_id"]) <= set(persons["person_id"])
    assert len(persons) == SMALL.persons
    for f, manifest, table in parsed:
        known = set(truth.loc[truth["source"] == manifest["source"], "record_id"])
        assert set(table["record_id"].to_pylist()) <= known, f.name
