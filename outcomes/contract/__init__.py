"""The extract specification (shared/spec/extracts.md) as code.

Everything that reads or writes a delivery — the providers' pseudonymisation tool, the synthetic
population, ingestion and the tests — takes columns, types and code lists from here, so the
contract is written down once.
"""

from outcomes.contract.codes import (
    BENEFIT_TYPES,
    DISCHARGE_REASONS,
    OFFENCE_GROUPS,
    OPIATES,
    OUT_OF_WORK_BENEFITS,
    OUT_OF_WORK_UC_CONDITIONALITY,
    SUBSTANCES,
    SUCCESSFUL_COMPLETION_REASONS,
    TRANSFER_REASONS,
)
from outcomes.contract.extracts import (
    SOURCES,
    SPEC_VERSION,
    Column,
    Source,
    arrow_schema,
    delivery_filename,
    manifest_filename,
    parse_delivery_filename,
)

__all__ = [
    "BENEFIT_TYPES",
    "DISCHARGE_REASONS",
    "OFFENCE_GROUPS",
    "OPIATES",
    "OUT_OF_WORK_BENEFITS",
    "OUT_OF_WORK_UC_CONDITIONALITY",
    "SOURCES",
    "SPEC_VERSION",
    "SUBSTANCES",
    "SUCCESSFUL_COMPLETION_REASONS",
    "TRANSFER_REASONS",
    "Column",
    "Source",
    "arrow_schema",
    "delivery_filename",
    "manifest_filename",
    "parse_delivery_filename",
]
