"""The extract contract (shared/spec/extracts.md) and outcome code lists (shared/spec/outcomes.md), typed out
from the spec text: the oracle does not import the warehouse's own contract module."""

from __future__ import annotations

import re

SOURCES = ("treatment", "convictions", "benefits", "deaths")
DELIVERY_TYPE = {"treatment": "full", "convictions": "delta", "benefits": "delta", "deaths": "delta"}
SPEC_VERSION = 1

# Column types: "string", "date", "bool", "list" (list of strings; `|`-separated in CSV).
IDENTITY_COLUMNS = {
    "record_id": "string",
    "source_person_key": "string",
    "forename_initial": "string",
    "surname_initial": "string",
    "forename_token": "string",
    "surname_token": "string",
    "surname_soundex_token": "string",
    "forename_bloom": "string",
    "surname_bloom": "string",
    "date_of_birth": "date",
    "sex": "string",
    "postcode_district": "string",
}

SOURCE_COLUMNS = {
    "treatment": {
        "provider_code": "string",
        "la_code": "string",
        "setting": "string",
        "referral_source": "string",
        "referral_date": "date",
        "treatment_start_date": "date",
        "discharge_date": "date",
        "discharge_reason": "string",
        "substance_1": "string",
        "substance_2": "string",
        "substance_3": "string",
        "injecting_status": "string",
        "housing_status": "string",
    },
    "convictions": {
        "offence_date": "date",
        "disposal_date": "date",
        "offence_code": "string",
        "offence_group": "string",
        "trigger_offence": "bool",
        "disposal_type": "string",
        "custody_release_date": "date",
        "record_status": "string",
        "police_force_code": "string",
    },
    "benefits": {
        "benefit_type": "string",
        "uc_conditionality": "string",
        "spell_start": "date",
        "spell_end": "date",
        "record_status": "string",
    },
    "deaths": {
        "date_of_death": "date",
        "date_of_registration": "date",
        "underlying_cause": "string",
        "contributory_causes": "list",
        "drugs_mentioned": "list",
        "controlled_drug_mentioned": "bool",
        "la_code": "string",
        "record_status": "string",
    },
}


def columns(source: str) -> dict[str, str]:
    """Every column of a source's delivery with its type, identity block first."""
    return {**IDENTITY_COLUMNS, **SOURCE_COLUMNS[source]}


NOT_NULL = {
    "treatment": ("record_id", "treatment_start_date", "substance_1"),
    "convictions": ("record_id", "offence_date", "disposal_date"),
    "benefits": ("record_id", "spell_start"),
    "deaths": ("record_id", "date_of_death", "date_of_registration"),
}

SUCCESSFUL_REASONS = frozenset({"completed_drug_free", "completed_alcohol_free", "completed_occasional_user"})
TRANSFER_REASONS = frozenset({"transferred_not_in_custody", "transferred_in_custody"})
DISCHARGE_REASONS = (
    SUCCESSFUL_REASONS
    | TRANSFER_REASONS
    | {
        "dropped_out",
        "withdrawn_by_provider",
        "retained_in_custody",
        "declined_treatment",
        "onward_referral_refused",
        "died",
    }
)
OPIATES = frozenset({"heroin", "methadone_illicit", "other_opiate"})
SUBSTANCES = OPIATES | {
    "crack",
    "cocaine",
    "cannabis",
    "amphetamine",
    "benzodiazepine",
    "ecstasy",
    "ketamine",
    "nps",
    "alcohol",
    "other",
}

CODE_LISTS = {
    "treatment": {
        "sex": {"M", "F", "U"},
        "setting": {"community", "prison", "residential", "inpatient"},
        "referral_source": {"self", "criminal_justice", "gp", "hospital", "social_services", "other"},
        "discharge_reason": DISCHARGE_REASONS,
        "substance_1": SUBSTANCES,
        "substance_2": SUBSTANCES,
        "substance_3": SUBSTANCES,
        "injecting_status": {"never", "previously", "currently", "unknown"},
        "housing_status": {"no_fixed_abode", "housing_problem", "no_problem", "unknown"},
    },
    "convictions": {
        "sex": {"M", "F", "U"},
        "offence_group": {
            "theft",
            "burglary",
            "robbery",
            "fraud",
            "handling",
            "drug_possession",
            "drug_supply",
            "violence",
            "sexual",
            "criminal_damage",
            "public_order",
            "motoring",
            "breach",
            "other",
        },
        "disposal_type": {
            "custody",
            "suspended_sentence",
            "community_order",
            "fine",
            "conditional_discharge",
            "absolute_discharge",
            "caution",
            "other",
        },
        "record_status": {"active", "quashed"},
    },
    "benefits": {
        "sex": {"M", "F", "U"},
        "benefit_type": {"JSA", "ESA", "IS", "IB", "UC", "PIP", "DLA", "CA", "PC"},
        "uc_conditionality": {
            "searching_for_work",
            "no_work_requirements",
            "planning_for_work",
            "preparing_for_work",
            "working_with_requirements",
            "no_conditionality",
        },
        "record_status": {"active", "withdrawn"},
    },
    "deaths": {
        "sex": {"M", "F", "U"},
        "record_status": {"active", "amended"},
    },
}

# (later, earlier): the later date must not be before the earlier one.
DATE_ORDER = {
    "treatment": [("discharge_date", "treatment_start_date")],
    "convictions": [("disposal_date", "offence_date")],
    "benefits": [("spell_end", "spell_start")],
    "deaths": [("date_of_registration", "date_of_death")],
}

RETRACTING_STATUS = {"convictions": "quashed", "benefits": "withdrawn"}

ICD10_CODE = re.compile(r"\A[A-Z][0-9]{2}[0-9X]?\Z")

OUT_OF_WORK_BENEFITS = frozenset({"JSA", "ESA", "IS", "IB"})
OUT_OF_WORK_UC_CONDITIONALITY = frozenset(
    {"searching_for_work", "no_work_requirements", "planning_for_work", "preparing_for_work"}
)

ENGLAND = "E92000001"
UNKNOWN = "unknown"


def _icd_range(letter: str, low: int, high: int) -> set[str]:
    return {f"{letter}{n:02d}" for n in range(low, high + 1)}


# ICD-10 groups read the first three characters of the underlying cause.
DRUG_MISUSE_CAUSES = frozenset(_icd_range("F", 11, 16) | {"F18", "F19"})
DRUG_POISONING_CAUSES = frozenset(
    DRUG_MISUSE_CAUSES | _icd_range("X", 40, 44) | _icd_range("X", 60, 64) | {"X85"} | _icd_range("Y", 10, 14)
)


def is_drug_poisoning(underlying_cause: str | None) -> bool:
    return underlying_cause is not None and underlying_cause[:3] in DRUG_POISONING_CAUSES


def is_drug_misuse(underlying_cause: str | None, controlled_drug_mentioned: bool | None) -> bool:
    if underlying_cause is None:
        return False
    if underlying_cause[:3] in DRUG_MISUSE_CAUSES:
        return True
    return is_drug_poisoning(underlying_cause) and controlled_drug_mentioned is True
