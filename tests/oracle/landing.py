"""Reads the raw deliveries of a landing folder and computes each source's state as of a date.

Written from shared/spec/extracts.md (and the documented readings of docs/event-store.md and
expectations/README.md), without the warehouse's ingest or event-store code:

- a delivery is `{source}_{YYYYMMDD}_{seq:02d}.parquet|csv` with its `.manifest.json`; one that does not
  match its manifest or the spec's columns is rejected whole; the same data file (sha256) twice is a no-op;
- deliveries with `extract_date <= as_of` are applied in `(extract_date, seq)` order;
- a row breaking a row-level rule (spec section 4) is skipped (the warehouse quarantines it): in a delta
  the record keeps its earlier version, and in a full snapshot it is neither changed nor deleted;
- treatment: the latest snapshot holds every record; one absent from it is deleted;
- convictions, benefits, deaths: the latest row of each record wins; `quashed` / `withdrawn` retract it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.oracle import codes

FILE_NAME = re.compile(r"\A(treatment|convictions|benefits|deaths)_([0-9]{8})_([0-9]{2})\.(parquet|csv)\Z")
ISO_DATE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
CSV_TRUE = {"true", "t", "1", "yes", "y"}
CSV_FALSE = {"false", "f", "0", "no", "n"}


@dataclass(frozen=True)
class Delivery:
    source: str
    extract_date: dt.date
    seq: int
    data_path: Path
    sha256: str

    @property
    def order(self) -> tuple[dt.date, int]:
        return (self.extract_date, self.seq)


@dataclass(frozen=True)
class Rejected:
    file: str
    reason: str


@dataclass(frozen=True)
class QuarantinedRow:
    source: str
    file: str
    record_id: str | None
    rules: tuple[str, ...]


@dataclass
class LandingState:
    """Each source's records (record_id -> row dict) as of `as_of`, and what was set aside on the way."""

    as_of: dt.date
    records: dict[str, dict[str, dict]]
    applied: list[Delivery] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Delivery] = field(default_factory=list)
    quarantined: list[QuarantinedRow] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# Deliveries


def _check_delivery(path: Path) -> tuple[Delivery | None, str | None]:
    """The delivery in `path`, or the reason it is rejected whole."""
    m = FILE_NAME.match(path.name)
    if m is None:
        return None, "file name is not {source}_{YYYYMMDD}_{seq}.parquet|csv"
    source, ymd, seq, fmt = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    try:
        extract_date = dt.datetime.strptime(ymd, "%Y%m%d").date()
    except ValueError:
        return None, "extract date in the file name is not a date"
    manifest_path = path.with_name(path.name[: -len(fmt) - 1] + ".manifest.json")
    if not manifest_path.exists():
        return None, "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "manifest is not JSON"
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    checks = [
        (manifest.get("source") == source, "manifest source differs from the file name"),
        (manifest.get("spec_version") == codes.SPEC_VERSION, "unknown spec_version"),
        (manifest.get("extract_date") == extract_date.isoformat(), "manifest extract_date differs from the name"),
        (manifest.get("delivery_type") == codes.DELIVERY_TYPE[source], "wrong delivery_type for the source"),
        (manifest.get("sha256") == digest, "sha256 does not match the data file"),
    ]
    for ok, reason in checks:
        if not ok:
            return None, reason
    try:
        if fmt == "parquet":
            schema = pq.read_schema(path)
            names, row_count = schema.names, pq.ParquetFile(path).metadata.num_rows
            type_problem = _parquet_type_problem(source, schema)
        else:
            with path.open(encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                names = next(reader, [])
                row_count = sum(1 for _ in reader)
            type_problem = None
    except (OSError, ValueError, pa.ArrowException, csv.Error):
        return None, "data file cannot be read"
    if manifest.get("row_count") != row_count:
        return None, "row_count does not match the data file"
    if len(names) != len(set(names)) or set(names) != set(codes.columns(source)):
        return None, "columns are not the spec's"
    if type_problem:
        return None, type_problem
    return Delivery(source, extract_date, seq, path, digest), None


def _parquet_type_problem(source: str, schema: pa.Schema) -> str | None:
    """A Parquet delivery's columns must have the spec's types (an all-null column may be typed null)."""
    for name, kind in codes.columns(source).items():
        t = schema.field(name).type
        ok = {
            "string": pa.types.is_string(t) or pa.types.is_large_string(t),
            "date": pa.types.is_date(t),
            "bool": pa.types.is_boolean(t),
            "list": (pa.types.is_list(t) or pa.types.is_large_list(t))
            and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)),
        }[kind]
        if not (ok or pa.types.is_null(t)):
            return f"column {name} is not of type {kind}"
    return None


def scan_landing(landing: Path) -> tuple[list[Delivery], list[Rejected], list[Delivery]]:
    """Valid deliveries in `(extract_date, seq)` order, rejected files, and exact repeats (no-ops)."""
    accepted: list[Delivery] = []
    rejected: list[Rejected] = []
    for path in sorted(Path(landing).iterdir()):
        if path.name.endswith(".manifest.json"):
            data_files = [path.with_name(path.name.replace(".manifest.json", s)) for s in (".parquet", ".csv")]
            if not any(p.exists() for p in data_files):
                rejected.append(Rejected(path.name, "manifest without a data file"))
            continue
        delivery, reason = _check_delivery(path)
        if delivery is None:
            rejected.append(Rejected(path.name, reason))
        else:
            accepted.append(delivery)
    # Two different data files for one (source, extract_date, seq): the order is undefined, reject both.
    keys = Counter((d.source, d.extract_date, d.seq) for d in accepted)
    clashing = [d for d in accepted if keys[(d.source, d.extract_date, d.seq)] > 1]
    rejected += [Rejected(d.data_path.name, "another data file has the same source, date and seq") for d in clashing]
    accepted = sorted((d for d in accepted if d not in clashing), key=lambda d: (d.order, d.source))
    seen: set[str] = set()
    unique, repeats = [], []
    for d in accepted:
        (repeats if d.sha256 in seen else unique).append(d)
        seen.add(d.sha256)
    return unique, rejected, repeats


def default_as_of(landing: Path) -> dt.date:
    """The latest extract date of a valid delivery in the landing folder."""
    deliveries, _, _ = scan_landing(landing)
    if not deliveries:
        raise ValueError(f"no valid delivery in {landing}")
    return max(d.extract_date for d in deliveries)


# ---------------------------------------------------------------------------------------------------------
# Rows


def _read_rows(delivery: Delivery) -> list[tuple[dict, list[str]]]:
    """Every row of a delivery as a dict of Python values, with the rules its values break on reading
    (an unparseable date, a boolean that is neither true nor false)."""
    types = codes.columns(delivery.source)
    if delivery.data_path.suffix == ".parquet":
        rows = pq.read_table(delivery.data_path).to_pylist()
        for row in rows:
            for name, kind in types.items():
                if kind == "list" and row[name] is None:
                    row[name] = []
        return [(row, []) for row in rows]
    table = pacsv.read_csv(
        delivery.data_path,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in types},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    out = []
    for text_row in table.to_pylist():
        row, problems = {}, []
        for name, kind in types.items():
            value = text_row[name]
            if kind == "date" and value is not None:
                try:
                    if not ISO_DATE.match(value):
                        raise ValueError(value)
                    value = dt.date.fromisoformat(value)
                except ValueError:
                    problems.append(f"date_unparseable:{name}")
                    value = None
            elif kind == "bool" and value is not None:
                if value.strip().lower() in CSV_TRUE:
                    value = True
                elif value.strip().lower() in CSV_FALSE:
                    value = False
                else:
                    problems.append(f"code_list:{name}")
                    value = None
            elif kind == "list":
                value = [] if value is None or value == "" else value.split("|")
            row[name] = value
        out.append((row, problems))
    return out


def row_rules(source: str, row: dict, extract_date: dt.date) -> list[str]:
    """The row-level rules of extracts.md section 4 that `row` breaks (null values only break not-null)."""
    broken = []
    types = codes.columns(source)
    for name in codes.NOT_NULL[source]:
        if row[name] is None:
            broken.append(f"not_null:{name}")
    if source == "treatment" and row["discharge_date"] is not None and row["discharge_reason"] is None:
        broken.append("discharge_reason_missing")
    for name, allowed in codes.CODE_LISTS[source].items():
        if row[name] is not None and row[name] not in allowed:
            broken.append(f"code_list:{name}")
    dates = [name for name, kind in types.items() if kind == "date"]
    for name in dates:
        if row[name] is not None and row[name] > extract_date:
            broken.append(f"date_after_extract:{name}")
    for later, earlier in codes.DATE_ORDER[source]:
        if row[later] is not None and row[earlier] is not None and row[later] < row[earlier]:
            broken.append(f"date_order:{later}<{earlier}")
    dob = row["date_of_birth"]
    if dob is not None:
        for name in dates:
            if name != "date_of_birth" and row[name] is not None and dob > row[name]:
                broken.append(f"dob_after_event:{name}")
    if source == "deaths":
        cause = row["underlying_cause"]
        if cause is not None and not codes.ICD10_CODE.match(cause):
            broken.append("icd10_malformed:underlying_cause")
        if any(c is None or not codes.ICD10_CODE.match(c) for c in row["contributory_causes"]):
            broken.append("icd10_malformed:contributory_causes")
    return broken


def _valid_and_quarantined(delivery: Delivery) -> tuple[list[dict], list[QuarantinedRow]]:
    rows = _read_rows(delivery)
    ids = Counter(row["record_id"] for row, _ in rows if row["record_id"] is not None)
    valid, quarantined = [], []
    for row, reading_problems in rows:
        rules = reading_problems + row_rules(delivery.source, row, delivery.extract_date)
        if row["record_id"] is not None and ids[row["record_id"]] > 1:
            rules.append("duplicate:record_id")
        if rules:
            quarantined.append(QuarantinedRow(delivery.source, delivery.data_path.name, row["record_id"], tuple(rules)))
        else:
            valid.append(row)
    return valid, quarantined


# ---------------------------------------------------------------------------------------------------------
# As-of state


def state_as_of(landing: Path, as_of: dt.date) -> LandingState:
    deliveries, rejected, repeats = scan_landing(landing)
    state = LandingState(as_of=as_of, records={s: {} for s in codes.SOURCES}, rejected=rejected)
    state.duplicates = [d for d in repeats if d.extract_date <= as_of]
    for delivery in deliveries:
        if delivery.extract_date > as_of:
            continue
        valid, quarantined = _valid_and_quarantined(delivery)
        state.applied.append(delivery)
        state.quarantined += quarantined
        records = state.records[delivery.source]
        if codes.DELIVERY_TYPE[delivery.source] == "full":
            snapshot = {row["record_id"]: row for row in valid}
            # A quarantined row is neither a change nor a deletion: its record keeps its last valid version.
            for q in quarantined:
                if q.record_id is not None and q.record_id in records and q.record_id not in snapshot:
                    snapshot[q.record_id] = records[q.record_id]
            state.records[delivery.source] = snapshot
        else:
            retracting = codes.RETRACTING_STATUS.get(delivery.source)
            for row in valid:
                if retracting is not None and row["record_status"] == retracting:
                    records.pop(row["record_id"], None)
                else:
                    records[row["record_id"]] = row
    return state
