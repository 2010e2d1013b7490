"""Code lists of the extract specification, section 3."""

SEXES = ("M", "F", "U")

SETTINGS = ("community", "prison", "residential", "inpatient")
REFERRAL_SOURCES = ("self", "criminal_justice", "gp", "hospital", "social_services", "other")
INJECTING_STATUSES = ("never", "previously", "currently", "unknown")
HOUSING_STATUSES = ("no_fixed_abode", "housing_problem", "no_problem", "unknown")

SUCCESSFUL_COMPLETION_REASONS = (
    "completed_drug_free",
    "completed_alcohol_free",
    "completed_occasional_user",
)
TRANSFER_REASONS = ("transferred_not_in_custody", "transferred_in_custody")
DISCHARGE_REASONS = (
    *SUCCESSFUL_COMPLETION_REASONS,
    *TRANSFER_REASONS,
    "dropped_out",
    "withdrawn_by_provider",
    "retained_in_custody",
    "declined_treatment",
    "onward_referral_refused",
    "died",
)

OPIATES = ("heroin", "methadone_illicit", "other_opiate")
SUBSTANCES = (
    *OPIATES,
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
)

OFFENCE_GROUPS = (
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
)
DISPOSAL_TYPES = (
    "custody",
    "suspended_sentence",
    "community_order",
    "fine",
    "conditional_discharge",
    "absolute_discharge",
    "caution",
    "other",
)
CONVICTION_STATUSES = ("active", "quashed")

BENEFIT_TYPES = ("JSA", "ESA", "IS", "IB", "UC", "PIP", "DLA", "CA", "PC")
UC_CONDITIONALITY = (
    "searching_for_work",
    "no_work_requirements",
    "planning_for_work",
    "preparing_for_work",
    "working_with_requirements",
    "no_conditionality",
)
BENEFIT_STATUSES = ("active", "withdrawn")
OUT_OF_WORK_BENEFITS = ("JSA", "ESA", "IS", "IB")
OUT_OF_WORK_UC_CONDITIONALITY = UC_CONDITIONALITY[:4]

DEATH_STATUSES = ("active", "amended")

# `[A-Z][0-9]{2}[0-9X]?`, the only ICD-10 form a delivery may carry.
ICD10_PATTERN = r"^[A-Z][0-9]{2}[0-9X]?$"
