"""The named error classes, what each one counts, and its rate per source (docs/error-model.md
gives the published figure or the assumption behind each rate)."""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("treatment", "convictions", "benefits", "deaths")


@dataclass(frozen=True)
class ErrorClass:
    name: str
    unit: str  # what the rate is a share of: the eligible records, persons or person-sources
    rates: dict[str, float]  # per source; "all" for a person-level class
    fields: tuple[str, ...]  # the recorded identity fields the class changes

    def rate(self, source: str, scale: float) -> float:
        """The rate at a scale, capped below one (a class cannot apply to more than everyone)."""
        return min(self.rates.get(source, 0.0) * scale, 0.95)


def _per_source(treatment: float, convictions: float, benefits: float, deaths: float) -> dict[str, float]:
    return {"treatment": treatment, "convictions": convictions, "benefits": benefits, "deaths": deaths}


ERROR_CLASSES: dict[str, ErrorClass] = {
    c.name: c
    for c in (
        ErrorClass("typing_error", "records with a name", _per_source(0.02, 0.03, 0.01, 0.01), ("forename", "surname")),
        ErrorClass(
            "nickname", "records whose forename has a nickname", _per_source(0.08, 0.10, 0.02, 0.01), ("forename",)
        ),
        ErrorClass(
            "forename_initial_only", "records with a forename", _per_source(0.05, 0.002, 0.001, 0.0), ("forename",)
        ),
        ErrorClass(
            "surname_change_marriage",
            "women aged 16 to 50 at some record, with records on two dates or more",
            {"all": 0.10},
            ("surname",),
        ),
        ErrorClass(
            "dob_day_month_swap",
            "records with a date of birth whose day is 12 or less and not its month",
            _per_source(0.010, 0.010, 0.003, 0.002),
            ("date_of_birth",),
        ),
        ErrorClass(
            "dob_year_off", "records with a date of birth", _per_source(0.006, 0.010, 0.002, 0.002), ("date_of_birth",)
        ),
        ErrorClass(
            "dob_missing", "records with a date of birth", _per_source(0.010, 0.005, 0.002, 0.001), ("date_of_birth",)
        ),
        ErrorClass(
            "postcode_moved", "persons with records on two dates or more", {"all": 0.25}, ("postcode_district",)
        ),
        ErrorClass(
            "postcode_missing",
            "records with a postcode district",
            _per_source(0.05, 0.08, 0.02, 0.02),
            ("postcode_district",),
        ),
        ErrorClass("sex_unknown", "records with a known sex", _per_source(0.010, 0.003, 0.002, 0.001), ("sex",)),
        ErrorClass(
            "duplicate_key",
            "persons with two records or more in the source",
            _per_source(0.04, 0.05, 0.02, 0.0),
            ("person_key",),
        ),
        ErrorClass(
            "duplicate_key_alias",
            "persons with two records or more in the source",
            _per_source(0.01, 0.05, 0.005, 0.0),
            ("person_key", "forename", "surname", "date_of_birth"),
        ),
        ErrorClass("person_key_missing", "records", _per_source(0.0, 0.01, 0.005, 0.02), ("person_key",)),
        ErrorClass("namesake_twin", "persons with records", {"all": 0.005}, ()),
        ErrorClass("namesake_father_son", "men with records", {"all": 0.005}, ()),
    )
}
KEY_CLASSES = ("duplicate_key", "duplicate_key_alias", "person_key_missing")
NAMESAKE_CLASSES = ("namesake_twin", "namesake_father_son")
