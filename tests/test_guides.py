"""Every SQL query of docs/for-evaluators.md and docs/for-researchers.md runs on the small synthetic
warehouse (tests/report_warehouse.py) and gives the answer its `-- answer:` comments document
(the markers are explained in docs/for-evaluators.md, "Reading the answers")."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from outcomes.eventstore import connect
from outcomes.report.funnel import wilson_interval
from outcomes.warehouse import resolve_target

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDES = ("for-evaluators.md", "for-researchers.md")
OPERATORS = {"<": operator.lt, "<=": operator.le, "=": operator.eq, "<>": operator.ne, ">=": operator.ge}
OPERATORS[">"] = operator.gt
TOKEN = re.compile(r"\s*(<=|>=|<>|<|>|=)\s*")


@dataclass
class Query:
    guide: str
    question: str
    sql: str
    answers: list[str]

    @property
    def id(self) -> str:
        return f"{self.guide.removesuffix('.md')}: {self.question}"


def guide_queries(guide: str) -> list[Query]:
    """Every fenced ```sql block of a guide, under the heading (## or ###) it answers."""
    text = (DOCS / guide).read_text(encoding="utf-8")
    queries, question = [], ""
    for match in re.finditer(r"^#{2,3} ([^\n]+)$|^```sql\n(.*?)^```", text, re.S | re.M):
        if match.group(1):
            question = match.group(1).strip()
            continue
        block = match.group(2)
        answers = [m.strip() for m in re.findall(r"^-- answer:(.*)$", block, re.M)]
        queries.append(Query(guide, question, block, answers))
    return queries


QUERIES = [q for guide in GUIDES for q in guide_queries(guide)]


def test_both_guides_answer_questions_with_documented_queries():
    for guide in GUIDES:
        queries = [q for q in QUERIES if q.guide == guide]
        assert len(queries) >= 5, guide
        for q in queries:
            assert q.question, f"{guide}: a query under no question"
            kinds = {a.split()[0] for a in q.answers}
            assert "columns" in kinds and len(kinds) >= 3, f"{q.id}: document the columns and two more answers"


def _value(term: str, row: dict):
    if term in row:
        return row[term]
    if term.startswith("'") and term.endswith("'"):
        return term[1:-1]
    try:
        return float(term)
    except ValueError:
        raise AssertionError(f"{term!r} is neither a column of the answer nor a number") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def check_answer(marker: str, columns: list[str], rows: list[dict]) -> None:
    """Assert one `-- answer:` marker on a query's result."""
    kind, _, rest = marker.partition(" ")
    if kind == "columns":
        assert columns == _names(rest)
    elif kind == "rows":
        op, number = rest.split()
        assert OPERATORS[op](len(rows), int(number)), f"{len(rows)} rows"
    elif kind == "ordered":
        keys = [(k.split()[0], k.endswith(" desc")) for k in _names(rest.removeprefix("by "))]
        expected = list(rows)
        for column, descending in reversed(keys):
            expected.sort(key=lambda r, c=column: (r[c] is None, r[c]), reverse=descending)
        assert rows == expected
    elif kind == "unique":
        keys = [tuple(r[c] for c in _names(rest)) for r in rows]
        assert len(keys) == len(set(keys))
    elif kind == "each":
        parts = TOKEN.split(rest)
        terms, ops = parts[::2], parts[1::2]
        assert ops, f"no comparison in {marker!r}"
        for row in rows:
            values = [_value(t.strip(), row) for t in terms]
            for left, op, right in zip(values, ops, values[1:], strict=False):
                assert left is not None and right is not None, f"null in {marker!r}: {row}"
                assert OPERATORS[op](left, right), f"{marker!r} fails on {row}"
    elif kind == "values":
        column, _, allowed = rest.partition(" in ")
        assert {r[column.strip()] for r in rows} <= set(_names(allowed))
    elif kind == "wilson":
        counts, _, bounds = rest.partition("->")
        (x, n), (lo, hi) = _names(counts), _names(bounds)
        for row in rows:
            assert (row[lo], row[hi]) == pytest.approx(wilson_interval(row[x], row[n]), abs=1e-6), row
    else:
        raise AssertionError(f"unknown answer marker {marker!r}")


@pytest.fixture(scope="module")
def warehouse(report_warehouse):
    with connect(resolve_target(report_warehouse[0]), read_only=True) as backend:
        yield backend


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_a_guide_query_gives_its_documented_answer(warehouse, query):
    with warehouse.transaction() as s:
        result = s.fetch(query.sql)
    rows = result.to_pylist()
    for marker in query.answers:
        check_answer(marker, result.column_names, rows)


def test_the_answer_checks_can_fail():
    rows = [{"a": 1, "b": 2.0, "x": 5, "n": 10, "lo": 0.2366, "hi": 0.7634}, {"a": 3, "b": 1.0, "x": 0, "n": 4}]
    rows[1] |= {"lo": 0.0, "hi": 0.49}
    columns = list(rows[0])
    for marker in (
        "columns a, x",
        "rows >= 3",
        "ordered by b",
        "unique n, n",
        "each a < b",
        "each 0 <= a <= 2",
        "values a in 1, 2",
        "wilson x, n -> lo, hi",
    ):
        with pytest.raises(AssertionError):
            check_answer(marker, columns, rows if "unique" not in marker else [rows[0], rows[0]])
    check_answer("ordered by b desc", columns, rows)
    check_answer("each 0 <= a <= 3", columns, rows)
