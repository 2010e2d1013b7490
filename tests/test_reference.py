"""Reference data: real GSS codes, complete lookups, ICD-10 groups that follow the ONS rule."""

from __future__ import annotations

from outcomes.contract import codes
from outcomes.reference import (
    icd10_causes,
    local_authorities,
    offence_codes,
    police_forces,
    postcode_districts,
    regions,
)

DRUG_POISONING_3 = (
    {f"F{n}" for n in (11, 12, 13, 14, 15, 16, 18, 19)}
    | {f"X{n}" for n in range(40, 45)}
    | {f"X{n}" for n in range(60, 65)}
    | {"X85"}
    | {f"Y{n}" for n in range(10, 15)}
)


def test_local_authorities_are_english_upper_tier_gss_codes():
    las = local_authorities()
    assert las["la_code"].is_unique
    assert las["la_code"].str.fullmatch(r"E(06|08|09|10)\d{6}").all()
    assert 150 <= len(las) <= 155
    assert {"E10000016", "E06000063", "E06000065", "E09000001"} <= set(las["la_code"])  # Kent, Cumberland, ...
    assert not {"E10000006", "E10000023", "E10000027"} & set(las["la_code"])  # abolished in 2023
    assert set(las["region_code"]) <= set(regions()["region_code"])
    assert set(las["police_force_code"]) <= set(police_forces()["police_force_code"])
    assert 55e6 < las["population"].sum() < 58e6


def test_every_authority_has_postcode_districts():
    pcd = postcode_districts()
    counts = pcd.groupby("la_code").size()
    assert set(counts.index) == set(local_authorities()["la_code"])
    assert (counts >= 2).all()
    assert pcd["postcode_district"].str.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?").all()


def test_offence_codes_use_the_spec_groups():
    off = offence_codes()
    assert off["offence_code"].is_unique
    assert set(off["offence_group"]) <= set(codes.OFFENCE_GROUPS)
    assert off.loc[off["offence_group"] == "breach", "trigger_offence"].eq(False).all()
    # Theft Act 1968 offences are trigger offences (Schedule 6); making off (Theft Act 1978) is not.
    assert off.loc[off["offence_code"].str.startswith("TH68"), "trigger_offence"].all()
    assert not off.loc[off["offence_code"] == "TH78011", "trigger_offence"].any()


def test_icd10_causes_follow_the_ons_drug_poisoning_rule():
    causes = icd10_causes()
    assert causes["icd10_code"].str.fullmatch(codes.ICD10_PATTERN[1:-1]).all()
    expected = causes["icd10_code"].str[:3].isin(DRUG_POISONING_3)
    assert (causes["drug_poisoning"] == expected).all()
    assert (causes["cause_group"] == "drug_poisoning").eq(causes["drug_poisoning"]).all()
    for excluded in ("F10", "F17", "X45", "Y15"):
        assert not causes.loc[causes["icd10_code"].str[:3] == excluded, "drug_poisoning"].any()
