"""Sources, columns, types and file names of a delivery (extracts.md sections 1–3)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from outcomes.contract import codes

SPEC_VERSION = 1

ColumnType = Literal["string", "date", "bool", "list"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "date": pa.date32(),
    "bool": pa.bool_(),
    "list": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    codes: tuple[str, ...] | None = None
    # Identity columns are the only personal data a delivery carries; they never leave `linkage`.
    identity: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Source:
    name: str
    delivery_type: Literal["full", "delta"]
    columns: tuple[Column, ...]
    # Column that retracts or replaces an earlier row with the same record_id (deltas only).
    status_column: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


IDENTITY_BLOCK: tuple[Column, ...] = (
    Column("record_id", "string", nullable=False),
    Column("source_person_key", "string", identity=True),
    Column("forename_initial", "string", identity=True),
    Column("surname_initial", "string", identity=True),
    Column("forename_token", "string", identity=True),
    Column("surname_token", "string", identity=True),
    Column("surname_soundex_token", "string", identity=True),
    Column("forename_bloom", "string", identity=True),
    Column("surname_bloom", "string", identity=True),
    Column("date_of_birth", "date", identity=True),
    Column("sex", "string", codes=codes.SEXES, identity=True),
    Column("postcode_district", "string", identity=True),
)

TREATMENT = Source(
    "treatment",
    "full",
    (
        *IDENTITY_BLOCK,
        Column("provider_code", "string"),
        Column("la_code", "string"),
        Column("setting", "string", codes=codes.SETTINGS),
        Column("referral_source", "string", codes=codes.REFERRAL_SOURCES),
        Column("referral_date", "date"),
        Column("treatment_start_date", "date", nullable=False),
        Column("discharge_date", "date"),
        Column("discharge_reason", "string", codes=codes.DISCHARGE_REASONS),
        Column("substance_1", "string", nullable=False, codes=codes.SUBSTANCES),
        Column("substance_2", "string", codes=codes.SUBSTANCES),
        Column("substance_3", "string", codes=codes.SUBSTANCES),
        Column("injecting_status", "string", codes=codes.INJECTING_STATUSES),
        Column("housing_status", "string", codes=codes.HOUSING_STATUSES),
    ),
)

CONVICTIONS = Source(
    "convictions",
    "delta",
    (
        *IDENTITY_BLOCK,
        Column("offence_date", "date", nullable=False),
        Column("disposal_date", "date", nullable=False),
        Column("offence_code", "string"),
        Column("offence_group", "string", codes=codes.OFFENCE_GROUPS),
        Column("trigger_offence", "bool"),
        Column("disposal_type", "string", codes=codes.DISPOSAL_TYPES),
        Column("custody_release_date", "date"),
        Column("record_status", "string", codes=codes.CONVICTION_STATUSES),
        Column("police_force_code", "string"),
    ),
    status_column="record_status",
)

BENEFITS = Source(
    "benefits",
    "delta",
    (
        *IDENTITY_BLOCK,
        Column("benefit_type", "string", codes=codes.BENEFIT_TYPES),
        Column("uc_conditionality", "string", codes=codes.UC_CONDITIONALITY),
        Column("spell_start", "date", nullable=False),
        Column("spell_end", "date"),
        Column("record_status", "string", codes=codes.BENEFIT_STATUSES),
    ),
    status_column="record_status",
)

DEATHS = Source(
    "deaths",
    "delta",
    (
        *IDENTITY_BLOCK,
        Column("date_of_death", "date", nullable=False),
        Column("date_of_registration", "date", nullable=False),
        Column("underlying_cause", "string"),
        Column("contributory_causes", "list"),
        Column("drugs_mentioned", "list"),
        Column("controlled_drug_mentioned", "bool"),
        Column("la_code", "string"),
        Column("record_status", "string", codes=codes.DEATH_STATUSES),
    ),
    status_column="record_status",
)

SOURCES: dict[str, Source] = {s.name: s for s in (TREATMENT, CONVICTIONS, BENEFITS, DEATHS)}


def arrow_schema(source: str) -> pa.Schema:
    """The Parquet schema of a delivery of `source`."""
    return pa.schema([pa.field(c.name, c.arrow_type) for c in SOURCES[source].columns])


_FILENAME = re.compile(r"^(?P<source>[a-z]+)_(?P<date>\d{8})_(?P<seq>\d{2})\.(?P<suffix>parquet|csv)$")


def delivery_filename(source: str, extract_date: dt.date, seq: int, suffix: str = "parquet") -> str:
    return f"{source}_{extract_date:%Y%m%d}_{seq:02d}.{suffix}"


def manifest_filename(data_filename: str) -> str:
    stem, _, _ = data_filename.rpartition(".")
    return f"{stem}.manifest.json"


@dataclass(frozen=True)
class DeliveryName:
    source: str
    extract_date: dt.date
    seq: int
    suffix: str


def parse_delivery_filename(filename: str) -> DeliveryName | None:
    """The parts of a data file's name, or None when the name is not a delivery's."""
    m = _FILENAME.match(filename)
    if not m:
        return None
    try:
        date = dt.datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        return None
    return DeliveryName(m["source"], date, int(m["seq"]), m["suffix"])
