"""The row-level rules of extracts.md section 4, written as great-expectations suites.

One suite per source, generated from the contract (`outcomes.contract`): not-null columns, code
lists and date columns come from `SOURCES`, the ICD-10 form from `codes.ICD10_PATTERN`. The
committed JSON in `expectations/` is this module's output (`expectations/build_suites.py`).

Every expectation names its rule in `meta["rule"]` (one expectation per rule today; the runner
would take the union of a rule's expectations). Rule names name the column and never carry a value.

Some rules compare dates or look inside a list, which GX cannot do on the delivered text. For
those the suite reads *derived columns* that `outcomes.validation.derive` adds to a copy of the
frame before GX sees it (listed in each suite's `meta["derived_columns"]`):

- `<date column>__yyyymmdd`: the date as the number YYYYMMDD (e.g. 20240331) when the text is a
  real date in `YYYY-MM-DD` form, else null. Numbers compare exactly for every year 0001–9999
  and GX compares numeric columns vectorised.
- `<list column>__joined`: the list's elements joined with `|` (a `|` or `\\` inside an element
  is escaped with `\\`, so it can never pass for a separator); null for an empty or null list.

The delivery's `extract_date` is not in the suite: it is the suite parameter
`extract_date_yyyymmdd`, supplied for each delivery when the suite is run
(`batch.validate(suite, expectation_parameters={"extract_date_yyyymmdd": 20240331})`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from outcomes.contract import SOURCES
from outcomes.contract.codes import ICD10_PATTERN

SUITE_PREFIX = "outcomes_extract_rows_"
EXTRACT_DATE_PARAMETER = "extract_date_yyyymmdd"
DATE_SUFFIX = "__yyyymmdd"
JOINED_SUFFIX = "__joined"

# A real calendar date written YYYY-MM-DD, years 0001-9999, as one regex (the Gregorian calendar
# spelled out: 31-day months, 30-day months, February 1-28, and February 29 of leap years - years
# divisible by 4 but not by 100, or by 400). It accepts exactly what
# `datetime.strptime(value, "%Y-%m-%d")` accepts with zero-padded fields; a regex because GX runs it
# vectorised, where strptime row by row takes ~10 s per 200,000 rows and 4 date columns.
# `\A…\Z` rather than `^…$`: `$` would let a trailing newline through.
_MONTH_DAY = (
    "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"  # 31-day months
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"  # 30-day months
    "|02-(?:0[1-9]|1[0-9]|2[0-8])"  # February, any year
)
_LEAP_YEAR = "[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00"
DATE_REGEX = rf"\A(?:(?!0000)[0-9]{{4}}-(?:{_MONTH_DAY})|(?:{_LEAP_YEAR})-02-29)\Z"

_ICD10_CORE = "(?:" + ICD10_PATTERN.removeprefix("^").removesuffix("$") + ")"
ICD10_REGEX = rf"\A{_ICD10_CORE}\Z"
ICD10_LIST_REGEX = rf"\A{_ICD10_CORE}(?:\|{_ICD10_CORE})*\Z"

# Columns holding ICD-10 codes (extracts.md section 3, `deaths`): the contract types them as
# string / list only, so they are named here.
ICD10_COLUMNS: dict[str, tuple[str, ...]] = {"deaths": ("underlying_cause", "contributory_causes")}

# (later, earlier): the later date may not be before the earlier one (extracts.md section 4).
DATE_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "treatment": (("discharge_date", "treatment_start_date"),),
    "convictions": (("disposal_date", "offence_date"),),
    "benefits": (("spell_end", "spell_start"),),
    "deaths": (("date_of_registration", "date_of_death"),),
}

# extracts.md section 3, `treatment`: discharge_reason is "not null when discharge_date is set".
CONDITIONAL_NOT_NULL: dict[str, tuple[tuple[str, str, str], ...]] = {
    "treatment": (("discharge_reason_missing", "discharge_reason", "discharge_date"),),
}

# extracts.md section 3: a column that must stay null unless another says otherwise, as
# (rule, column, condition under which it must be null, what the spec says).
_NULL_WHILE_OPEN = {"type": "nullity", "column": {"name": "discharge_date"}, "is_null": True}
CONDITIONAL_NULL: dict[str, tuple[tuple[str, str, dict[str, Any], str], ...]] = {
    # discharge_reason: "null while open"
    "treatment": (("discharge_reason_while_open", "discharge_reason", _NULL_WHILE_OPEN, "the episode is open"),),
    # custody_release_date: "set for custody when known"
    "convictions": (
        (
            "custody_release_not_custody",
            "custody_release_date",
            {"type": "comparison", "column": {"name": "disposal_type"}, "operator": "!=", "parameter": "custody"},
            "the disposal is not custody",
        ),
    ),
    # uc_conditionality: "UC only"
    "benefits": (
        (
            "uc_conditionality_not_uc",
            "uc_conditionality",
            {"type": "comparison", "column": {"name": "benefit_type"}, "operator": "!=", "parameter": "UC"},
            "the benefit is not UC",
        ),
    ),
}

# extracts.md section 2 and 3: the written forms of identity and code columns, as regexes.
_BLOOM = r"\A[A-Za-z0-9+/]{86}==\Z"  # 512 bits = 64 bytes, base64: 86 characters and '=='
FORMATS: dict[str, tuple[str, str]] = {
    "forename_initial": (r"\A[A-Z]\Z", "one letter A-Z"),
    "surname_initial": (r"\A[A-Z]\Z", "one letter A-Z"),
    "forename_token": (r"\A[0-9a-fA-F]{64}\Z", "64 hex digits"),
    "surname_token": (r"\A[0-9a-fA-F]{64}\Z", "64 hex digits"),
    "surname_soundex_token": (r"\A[0-9a-fA-F]{64}\Z", "64 hex digits"),
    "forename_bloom": (_BLOOM, "a 512-bit Bloom filter in base64"),
    "surname_bloom": (_BLOOM, "a 512-bit Bloom filter in base64"),
    # the outward code of a UK postcode (A9, A99, AA9, AA99, A9A, AA9A)
    "postcode_district": (r"\A[A-Z]{1,2}[0-9][A-Z0-9]?\Z", "a postcode outward code such as ME14"),
    # an offence code of the Home Office / CJS standard list: two letters, five digits, a letter maybe
    "offence_code": (r"\A[A-Z]{2}[0-9]{5}[A-Z]?\Z", "an offence code such as TH68010"),
}


def reference_codes(column: str) -> tuple[str, ...] | None:
    """Codes a column takes from a lookup the warehouse ships (extracts.md section 5: `la_code`
    is the GSS code of an English upper-tier local authority)."""
    if column == "la_code":
        from outcomes.reference import local_authorities

        return tuple(sorted(local_authorities()["la_code"]))
    return None


DATE_OF_BIRTH = "date_of_birth"
RECORD_ID = "record_id"


def date_helper(column: str) -> str:
    return column + DATE_SUFFIX


def joined_helper(column: str) -> str:
    return column + JOINED_SUFFIX


@dataclass(frozen=True)
class Rule:
    """One rule of section 4 for one source: its stable name and the expectations that check it."""

    name: str
    description: str
    expectations: tuple[dict[str, Any], ...]


def _expectation(type_: str, rule: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": {"rule": rule}}


def _described(rule: Rule) -> Rule:
    """The rule with its description on each of its expectations (shown by GX as the expectation's text)."""
    return Rule(rule.name, rule.description, tuple({**e, "description": rule.description} for e in rule.expectations))


def _order_rule(name: str, text: str, later: str, earlier: str) -> Rule:
    """`later` must not fall before `earlier` on a row (either missing: not checked)."""
    return Rule(
        name,
        text,
        (
            _expectation(
                "expect_column_pair_values_a_to_be_greater_than_b",
                name,
                column_A=date_helper(later),
                column_B=date_helper(earlier),
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
    )


def rules_for(source: str) -> list[Rule]:
    """The rules of `source`, in the order they are reported."""
    spec = SOURCES[source]
    dates = [c.name for c in spec.columns if c.type == "date"]
    rules: list[Rule] = []

    for col in spec.columns:
        if not col.nullable:
            name = f"not_null:{col.name}"
            rules.append(
                Rule(
                    name,
                    f"`{col.name}` is null (a not-null column)",
                    (_expectation("expect_column_values_to_not_be_null", name, column=col.name),),
                )
            )
    for rule_name, column, when_set in CONDITIONAL_NOT_NULL.get(source, ()):
        rules.append(
            Rule(
                rule_name,
                f"`{column}` is null although `{when_set}` is set",
                (
                    _expectation(
                        "expect_column_values_to_not_be_null",
                        rule_name,
                        column=column,
                        row_condition={"type": "nullity", "column": {"name": when_set}, "is_null": False},
                    ),
                ),
            )
        )

    for rule_name, column, condition, when in CONDITIONAL_NULL.get(source, ()):
        rules.append(
            Rule(
                rule_name,
                f"`{column}` is set although {when}",
                (_expectation("expect_column_values_to_be_null", rule_name, column=column, row_condition=condition),),
            )
        )

    for col in spec.columns:
        codes = col.codes if col.codes is not None else reference_codes(col.name)
        if codes is not None:
            col = replace(col, codes=codes)
            name = f"code_list:{col.name}"
            rules.append(
                Rule(
                    name,
                    f"`{col.name}` is not one of its {len(col.codes)} codes",
                    (
                        _expectation(
                            "expect_column_values_to_be_in_set", name, column=col.name, value_set=list(col.codes)
                        ),
                    ),
                )
            )

    for col in spec.columns:
        if col.name in FORMATS:
            regex, form = FORMATS[col.name]
            name = f"format:{col.name}"
            rules.append(
                Rule(
                    name,
                    f"`{col.name}` is not {form}",
                    (_expectation("expect_column_values_to_match_regex", name, column=col.name, regex=regex),),
                )
            )

    for column in dates:
        name = f"date_unparseable:{column}"
        rules.append(
            Rule(
                name,
                f"`{column}` is not a real date written YYYY-MM-DD",
                (_expectation("expect_column_values_to_match_regex", name, column=column, regex=DATE_REGEX),),
            )
        )
    for column in dates:
        name = f"date_after_extract:{column}"
        rules.append(
            Rule(
                name,
                f"`{column}` is after the delivery's extract_date",
                (
                    _expectation(
                        "expect_column_values_to_be_between",
                        name,
                        column=date_helper(column),
                        max_value={"$PARAMETER": EXTRACT_DATE_PARAMETER},
                    ),
                ),
            )
        )

    for later, earlier in DATE_ORDER.get(source, ()):
        rules.append(_order_rule(f"date_order:{later}<{earlier}", f"`{later}` is before `{earlier}`", later, earlier))
    if DATE_OF_BIRTH in dates:
        for event in dates:
            if event != DATE_OF_BIRTH:
                rules.append(
                    _order_rule(
                        f"dob_after_event:{event}", f"`{DATE_OF_BIRTH}` is after `{event}`", event, DATE_OF_BIRTH
                    )
                )

    for column in ICD10_COLUMNS.get(source, ()):
        col = spec.column(column)
        name = f"icd10_malformed:{column}"
        if col.type == "list":
            expectation = _expectation(
                "expect_column_values_to_match_regex", name, column=joined_helper(column), regex=ICD10_LIST_REGEX
            )
            description = f"an element of `{column}` is not an ICD-10 code"
        else:
            expectation = _expectation("expect_column_values_to_match_regex", name, column=column, regex=ICD10_REGEX)
            description = f"`{column}` is not an ICD-10 code"
        rules.append(Rule(name, description, (expectation,)))

    name = f"duplicate:{RECORD_ID}"
    rules.append(
        Rule(
            name,
            f"`{RECORD_ID}` occurs on more than one row of the delivery (every such row fails)",
            (_expectation("expect_column_values_to_be_unique", name, column=RECORD_ID),),
        )
    )
    return [_described(r) for r in rules]


def rule_names(source: str) -> list[str]:
    return [r.name for r in rules_for(source)]


def derived_columns(source: str) -> dict[str, str]:
    """The derived columns the suite of `source` reads, with what each holds."""
    spec = SOURCES[source]
    out = {
        date_helper(c.name): f"`{c.name}` as the number YYYYMMDD when it is a real date written YYYY-MM-DD, else null"
        for c in spec.columns
        if c.type == "date"
    }
    for column in ICD10_COLUMNS.get(source, ()):
        if spec.column(column).type == "list":
            out[joined_helper(column)] = (
                f"the elements of `{column}` joined with '|' ('|' and '\\' inside an element escaped with '\\'); "
                "null when the list is empty or null"
            )
    return out


def suite_dict(source: str) -> dict[str, Any]:
    """The suite of `source` as GX 1.x serialises it (round-tripped through GX, so it is what GX loads)."""
    from great_expectations.core import ExpectationSuite

    rules = rules_for(source)
    suite = ExpectationSuite(
        name=SUITE_PREFIX + source,
        expectations=[dict(e) for r in rules for e in r.expectations],
        meta={
            "source": source,
            "spec": "shared/spec/extracts.md section 4 (row-level rules); generated by expectations/build_suites.py",
            "parameters": {EXTRACT_DATE_PARAMETER: "the delivery's extract_date as the number YYYYMMDD"},
            "derived_columns": derived_columns(source),
        },
    )
    expected = sum(len(r.expectations) for r in rules)
    if len(suite.expectations) != expected:  # GX logs and drops a configuration it cannot read
        raise RuntimeError(f"GX accepted {len(suite.expectations)} of the {expected} expectations of {source}")
    return suite.to_json_dict()
