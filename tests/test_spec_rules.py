"""Every row rule the spec states has a check: the rules are read from the text of
shared/spec/extracts.md (section 4's list, and the column types and meanings of sections 2 and 3,
section 5 for `la_code`), not from the code's copy of the contract; each must be among the rules the
warehouse checks, and a row breaking it must be reported under that rule's name."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pytest

from outcomes.contract import SOURCES
from outcomes.ingest.rows import canonical_text, validation_frame
from outcomes.validation import validate_rows
from outcomes.validation.rules import rule_names
from tests.spec_text import _table_after, codes_in, source_columns, spec_text
from tests.test_validation import EXTRACT, corrupt, valid_frame


def _section(number: int) -> str:
    text = spec_text()
    start = text.index(f"## {number}.")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _columns(source: str) -> dict[str, tuple[str, str]]:
    """Column -> (type, meaning) as the spec writes them: the identity block, then the source's own."""
    identity = {}
    for row in _table_after("## 2. The identity block"):
        for name in re.findall(r"`([a-z_]+)`", row[0]):
            identity[name] = (row[1], row[2])
    return {**identity, **source_columns(source)}


def section4_clauses() -> list[str]:
    text = " ".join(_section(4).split())
    body = text[text.index("when:") + len("when:") : text.index("Quarantined rows")]
    return [c.strip().rstrip(".").removeprefix("or ").strip() for c in body.split(";") if c.strip()]


def rules_stated(source: str) -> set[str]:
    """The rule names the spec's text calls for on `source` (fails on a clause it cannot read)."""
    columns = _columns(source)
    dates = [c for c, (t, _) in columns.items() if t.startswith("date")]
    rules: set[str] = set()
    for clause in section4_clauses():
        named = re.findall(r"`([a-z_]+)`", clause)
        if clause == "a not-null column is null":
            rules |= {
                f"not_null:{c}" for c, (t, m) in columns.items() if "not null" in t or "not null" in m.split(";")[0]
            }
        elif clause == "a code is outside its list":
            rules |= {f"code_list:{c}" for c, (t, _) in columns.items() if codes_in(t) or t.startswith("code")}
            rules |= {f"code_list:{c}" for c, (t, _) in columns.items() if t == "boolean"}
            if "`la_code` values are GSS codes" in _section(5):
                rules |= {"code_list:la_code"} & {f"code_list:{c}" for c in columns}
        elif clause.startswith("a date does not parse or lies after"):
            rules |= {f"{kind}:{c}" for c in dates for kind in ("date_unparseable", "date_after_extract")}
        elif re.fullmatch(r"`[a-z_]+` is before `[a-z_]+`", clause):
            if all(n in columns for n in named):
                rules.add(f"date_order:{named[0]}<{named[1]}")
        elif clause == "`date_of_birth` is after any event date of the row":
            rules |= {f"dob_after_event:{c}" for c in dates if c != "date_of_birth"}
        elif clause == "an ICD-10 code is malformed":
            rules |= {f"icd10_malformed:{c}" for c, (t, _) in columns.items() if "ICD-10" in t}
        elif clause == "`record_id` repeats within the delivery":
            rules.add("duplicate:record_id")
        else:
            raise AssertionError(f"section 4 states a rule this test cannot read: {clause!r}")
    for column, (type_text, meaning) in columns.items():
        text = f"{type_text} | {meaning}"
        if re.search(r"not null when `([a-z_]+)` is set", meaning):
            rules.add(f"{column}_missing" if column != "discharge_reason" else "discharge_reason_missing")
        if "null while open" in meaning:
            rules.add(f"{column}_while_open")
        if meaning.strip() == "UC only":
            rules.add(f"{column}_not_uc")
        if meaning.startswith("set for custody"):
            rules.add("custody_release_not_custody")
        if re.search(r"string\(1\) A–Z|string\(64\) hex|base64|outward code", text) or meaning == "offence code":
            rules.add(f"format:{column}")
    return rules


def checks(source: str) -> set[str]:
    """What the warehouse checks: the suite's rules, and the boolean codes checked beside GX."""
    return set(rule_names(source)) | {f"code_list:{c.name}" for c in SOURCES[source].columns if c.type == "bool"}


def test_the_spec_text_is_read():
    assert len(section4_clauses()) == 10
    assert "format:forename_initial" in rules_stated("treatment")
    assert "discharge_reason_while_open" in rules_stated("treatment")
    assert "code_list:la_code" in rules_stated("deaths")
    assert "format:offence_code" in rules_stated("convictions")


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_rule_of_the_spec_has_a_check(source):
    missing = rules_stated(source) - checks(source)
    assert not missing, f"rules of extracts.md with no check on {source}: {sorted(missing)}"


STATED = sorted((s, r) for s in SOURCES for r in rules_stated(s) if r != "duplicate:record_id")


def _is_bool_rule(source: str, rule: str) -> bool:
    return rule.startswith("code_list:") and SOURCES[source].column(rule.split(":")[1]).type == "bool"


@pytest.fixture(scope="module")
def reported() -> dict[tuple[str, str], set[str]]:
    """The rules reported on a row made to break each stated rule (one GX run per source)."""
    out = {}
    for source in SOURCES:
        base = valid_frame(source)
        rows, where = base.to_dict("records"), {}
        for s, rule in STATED:
            if s == source and not _is_bool_rule(source, rule):
                row = {**rows[0], "record_id": f"BROKEN{len(rows)}"}
                corrupt(source, rule, row)
                where[rule] = len(rows)
                rows.append(row)
        frame = pd.DataFrame(rows, columns=base.columns).astype(object)
        result = validate_rows(source, frame.where(frame.notna(), None), EXTRACT)
        for rule, at in where.items():
            out[(source, rule)] = set(result.failures.loc[result.failures["row"] == at, "rule"])
    return out


@pytest.mark.parametrize(("source", "rule"), STATED, ids=[f"{s}-{r}" for s, r in STATED])
def test_a_row_breaking_a_stated_rule_is_reported_by_name(source, rule, reported):
    if _is_bool_rule(source, rule):
        # booleans are checked on the delivered text (a CSV "maybe"), beside GX
        base = valid_frame(source)
        frame = pd.DataFrame(base.to_dict("records")[:1], columns=base.columns).astype(object)
        text = canonical_text(pa.Table.from_pandas(frame, preserve_index=False), source)
        column = rule.split(":")[1]
        text = text.set_column(text.schema.get_field_index(column), column, pa.array(["maybe"]))
        _, bad = validation_frame(text, source)
        assert (0, rule) in bad
        return
    assert rule in reported[(source, rule)]
