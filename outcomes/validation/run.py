"""Run a source's great-expectations suite (expectations/<source>.json) over one delivery's rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from outcomes.contract import SOURCES
from outcomes.validation.derive import with_derived_columns
from outcomes.validation.rules import EXTRACT_DATE_PARAMETER, SUITE_PREFIX, rule_names

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"

# COMPLETE is the result format that returns every failing row's index; the values themselves are
# excluded so no cell value is ever held in (or logged from) a result.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}


class SuiteError(RuntimeError):
    """A suite could not be loaded or could not be evaluated (never a data problem: those are failures)."""


@dataclass(frozen=True)
class RowValidation:
    """Which rows of one delivery break which rule of extracts.md section 4."""

    source: str
    extract_date: dt.date
    row_count: int
    rules: tuple[str, ...]  # every rule checked, in report order
    failures: pd.DataFrame  # columns `row` (int, position in the frame) and `rule` (str), one row per pair
    by_rule: dict[str, int]  # rows failing each rule, for the rules with at least one failing row

    @property
    def failed_rows(self) -> int:
        """Distinct rows breaking at least one rule."""
        return int(self.failures["row"].nunique())

    @property
    def passed(self) -> bool:
        return self.failures.empty

    def summary(self) -> str:
        """One line for logs: rule names and counts only, never a value."""
        head = (
            f"{self.source} (extract_date {self.extract_date.isoformat()}): {self.row_count} rows checked "
            f"against {len(self.rules)} rules"
        )
        if self.passed:
            return f"{head}; all pass"
        counts = ", ".join(f"{rule}={n}" for rule, n in self.by_rule.items())
        return f"{head}; {self.failed_rows} rows fail {len(self.by_rule)} rules: {counts}"


@dataclass
class _Engine:
    batch_definition: Any
    suites: dict[str, Any]
    columns: dict[str, list[str]]  # the columns each suite reads: GX is given only these


_ENGINE: _Engine | None = None
_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence GX's own logging and warnings for the duration (progress bars are off in the context).

    The parent `great_expectations` logger's level covers loggers GX creates meanwhile; the existing
    ones are disabled too, since some GX modules set their own level, overriding an inherited one.
    """
    parent = logging.getLogger("great_expectations")
    gx_loggers = [parent] + [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if name.startswith("great_expectations.") and isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.disabled) for logger in gx_loggers]
    level = parent.level
    parent.setLevel(logging.CRITICAL + 1)
    for logger in gx_loggers:
        logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        parent.setLevel(level)
        for logger, disabled in saved:
            logger.disabled = disabled


def suite_columns(config: dict[str, Any]) -> list[str]:
    """The columns a serialised suite reads (its expectations' columns and row-condition columns)."""
    columns: list[str] = []
    for expectation in config["expectations"]:
        kwargs = expectation["kwargs"]
        columns += [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        condition = kwargs.get("row_condition")
        if isinstance(condition, dict) and "column" in condition:
            columns.append(condition["column"]["name"])
    return list(dict.fromkeys(columns))


def load_suite(source: str, suites_dir: Path = SUITES_DIR) -> tuple[Any, list[str]]:
    """The GX suite of `source` from its JSON file, checked to hold exactly the rules of the contract,
    and the columns it reads."""
    from great_expectations.core import ExpectationSuite

    path = suites_dir / f"{source}.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SuiteError(f"no suite for {source}: {path} is missing") from e
    suite = ExpectationSuite(**config)
    if len(suite.expectations) != len(config.get("expectations", ())):
        raise SuiteError(f"{path}: GX could not read every expectation")
    loaded = list(dict.fromkeys(e.meta["rule"] for e in suite.expectations))
    if suite.name != SUITE_PREFIX + source or loaded != rule_names(source):
        raise SuiteError(f"{path} does not match the contract: run `python expectations/build_suites.py`")
    return suite, suite_columns(config)


def _engine() -> _Engine:
    """The process's one GX context, pandas batch definition and the four suites (built on first use)."""
    global _ENGINE
    if _ENGINE is None:
        with _quiet():
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )
        with _quiet():  # again, now that GX's own loggers exist
            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            context = gx.get_context(mode="ephemeral", project_config=config)
            asset = context.data_sources.add_pandas("deliveries").add_dataframe_asset("delivery_rows")
            batch_definition = asset.add_batch_definition_whole_dataframe("whole_delivery")
            loaded = {source: load_suite(source) for source in SOURCES}
        _ENGINE = _Engine(
            batch_definition,
            {source: suite for source, (suite, _) in loaded.items()},
            {source: columns for source, (_, columns) in loaded.items()},
        )
    return _ENGINE


def _raised(exception_info: Any) -> bool:
    if not exception_info:
        return False
    if "raised_exception" in exception_info:
        return bool(exception_info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in exception_info.values())


def validate_rows(source: str, frame: pd.DataFrame, extract_date: dt.date) -> RowValidation:
    """Check every row of one delivery of `source` against the row-level rules (extracts.md section 4).

    `frame` holds exactly the spec columns of the source in spec order; dates are text
    ('YYYY-MM-DD' or as delivered) or None, list columns lists of str or None. Row numbers in
    the result are positions in `frame`.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    expected = SOURCES[source].column_names
    if list(frame.columns) != expected:
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        raise ValueError(f"{source} frame columns differ from the spec (missing {missing}, unexpected {extra})")
    if isinstance(extract_date, dt.datetime) or not isinstance(extract_date, dt.date):
        raise TypeError("extract_date must be a datetime.date")

    yyyymmdd = extract_date.year * 10_000 + extract_date.month * 100 + extract_date.day
    rules = tuple(rule_names(source))
    rows: dict[str, set[int]] = {rule: set() for rule in rules}
    with _LOCK:
        engine = _engine()
        # Only the columns the suite reads go to GX: less to copy, and no identity token ever reaches it.
        data = with_derived_columns(source, frame)[engine.columns[source]]
        with _quiet():
            batch = engine.batch_definition.get_batch(batch_parameters={"dataframe": data})
            result = batch.validate(
                engine.suites[source],
                result_format=RESULT_FORMAT,
                expectation_parameters={EXTRACT_DATE_PARAMETER: yyyymmdd},
            )
        for r in result.results:
            rule = r.expectation_config.meta["rule"]
            if _raised(r.exception_info):
                raise SuiteError(f"great-expectations could not evaluate rule {rule} on {source}")
            if r.success:
                continue
            index = r.result.get("unexpected_index_list")
            if index is None:
                raise SuiteError(f"great-expectations returned no failing rows for rule {rule} on {source}")
            rows[rule].update(int(i) for i in index)
        del result  # only row positions leave this function

    pairs = [(row, rule) for rule in rules for row in sorted(rows[rule])]
    failures = pd.DataFrame(pairs, columns=["row", "rule"]).astype({"row": "int64", "rule": "object"})
    failures = failures.sort_values(["row"], kind="stable", ignore_index=True)
    by_rule = {rule: len(rows[rule]) for rule in rules if rows[rule]}
    return RowValidation(source, extract_date, len(frame), rules, failures, by_rule)
