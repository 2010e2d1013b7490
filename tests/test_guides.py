"""Every SQL query of docs/for-evaluators.md and docs/for-researchers.md runs on the small synthetic
warehouse (tests/report_warehouse.py) and gives the answer its `-- answer:` comments document
(the markers are explained in docs/for-evaluators.md, "Reading the answers")."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from decimal import Decimal
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


TOLERANCE = 1e-9  # PostgreSQL computes `1.0 * a / b` in numeric, DuckDB in double: equal to rounding


def _value(term: str, row: dict):
    if term in row:
        value = row[term]
        return float(value) if isinstance(value, Decimal) else value
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
                close = isinstance(left, float) and isinstance(right, float) and abs(left - right) <= TOLERANCE
                if close and op in ("<=", ">=", "="):
                    continue
                assert OPERATORS[op](left, right), f"{marker!r} fails on {row}"
    elif kind == "values":
        column, _, allowed = rest.partition(" in ")
        assert {r[column.strip()] for r in rows} <= set(_names(allowed))
    elif kind == "wilson":
        counts, _, bounds = rest.partition("->")
        (x, n), (lo, hi) = _names(counts), _names(bounds)
        for row in rows:
            bounds = (float(row[lo]), float(row[hi]))
            assert bounds == pytest.approx(wilson_interval(row[x], row[n]), abs=1e-6), row
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


PG_TYPES = {"VARCHAR": "varchar", "DATE": "date", "BIGINT": "bigint", "INTEGER": "integer", "BOOLEAN": "boolean"}
PG_TYPES["DOUBLE"] = "double precision"
ROLES = {"for-evaluators.md": "outcomes_evaluation", "for-researchers.md": "outcomes_researcher"}


@pytest.mark.postgres
def test_the_guides_queries_run_on_postgresql_under_each_guides_role(report_warehouse):
    """The marts, research and published tables copied into PostgreSQL with the warehouse's grants:
    every query of a guide gives its documented answer under that guide's role, and each role is
    refused the schema the other guide's reader has and it has not."""
    from outcomes.marts.roles import apply_grants
    from tests.backends import fresh_postgres_url

    with connect(resolve_target(report_warehouse[0]), read_only=True) as duck, duck.transaction() as s:
        names = [
            f"{r['table_schema']}.{r['table_name']}"
            for r in s.fetch(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('marts', 'research', 'published')"
            ).to_pylist()
        ]
        copies = {n: (s.fetch(f"describe {n}").to_pylist(), s.fetch(f"select * from {n}")) for n in names}
    with fresh_postgres_url() as url, connect(resolve_target(url)) as pg:
        with pg.transaction() as s:
            for schema in ("marts", "research", "published"):
                s.execute(f"create schema {schema}")
            for name, (columns, rows) in copies.items():
                typed = ", ".join(f"{c['column_name']} {PG_TYPES[c['column_type']]}" for c in columns)
                s.execute(f"create table {name} ({typed})")
                s.insert(name, rows)
        apply_grants(pg)
        for q in QUERIES:
            with pg.transaction() as s:
                s.execute(f"set local role {ROLES[q.guide]}")
                result = s.fetch(q.sql)
                for marker in q.answers:
                    check_answer(marker, result.column_names, result.to_pylist())
        for role, forbidden in (("outcomes_evaluation", "research"), ("outcomes_researcher", "marts")):
            with pytest.raises(Exception, match="permission denied"), pg.transaction() as s:
                s.execute(f"set local role {role}")
                s.fetch(f"select count(*) from {forbidden}.sustained_recovery")
