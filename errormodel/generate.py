"""The error model end to end: clean population in, deliveries with named errors and their
ground truth out."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from errormodel.deliveries import CleanPopulationError, list_deliveries, record_dates, rewrite
from errormodel.persons import make_persons
from errormodel.rates import ERROR_CLASSES
from errormodel.records import recorded
from outcomes.pseudonymise.delivery import PARQUET_OPTIONS, DeliveryFiles
from outcomes.pseudonymise.identity import identity_block
from outcomes.pseudonymise.keyed import Pseudonymiser

# The evaluation providers' key. Fixed, so the same seed gives the same files; it protects
# nothing (the population is synthetic) and is not the key of any real or synthetic provider.
EVALUATION_KEY = hashlib.sha256(b"outcomes warehouse independent error model: evaluation key").digest()

ERRORS_SCHEMA = pa.schema([("source", pa.string()), ("record_id", pa.string()), ("error_class", pa.string())])
NAMESAKES_SCHEMA = pa.schema([("person_a", pa.string()), ("person_b", pa.string()), ("kind", pa.string())])
IDENTITIES_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("record_id", pa.string()),
        ("person_id", pa.string()),
        ("source_person_id", pa.string()),
        ("forename", pa.string()),
        ("surname", pa.string()),
        ("date_of_birth", pa.date32()),
        ("sex", pa.string()),
        ("postcode", pa.string()),
    ]
)

CLEAR_PERSONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("forename", pa.string()),
        ("surname", pa.string()),
        ("date_of_birth", pa.date32()),
        ("sex", pa.string()),
        ("postcode", pa.string()),
        ("married_surname", pa.string()),
        ("moved_to", pa.string()),
        ("proneness", pa.float64()),
    ]
)


@dataclass
class ErrorModelResult:
    out: Path
    scale: float
    seed: int
    counts: pd.DataFrame  # error_class, source, unit, eligible, applied, target, rate
    deliveries: list[DeliveryFiles]
    namesakes: pd.DataFrame

    def rate(self, error_class: str, source: str = "all") -> float:
        row = self.counts[(self.counts["error_class"] == error_class) & (self.counts["source"] == source)]
        if row.empty:
            raise KeyError(f"no count for {error_class} in {source}")
        return float(row["rate"].iloc[0])


def _prepare(out: Path, overwrite: bool) -> tuple[Path, Path]:
    landing, truth = out / "landing", out / "truth"
    for d in (landing, truth):
        if d.exists() and any(d.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{d} is not empty: choose an empty folder or pass overwrite")
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
    return landing, truth


def _write(df: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, **PARQUET_OPTIONS)


def generate(
    clean_dir: Path, out: Path, scale: float = 1.0, seed: int = 0, overwrite: bool = False
) -> ErrorModelResult:
    """Rewrite the clean population in `clean_dir` with every error class at `scale` times its rate."""
    clean_dir, out = Path(clean_dir), Path(out)
    if not 0 <= scale <= 10:
        raise ValueError(f"scale is a multiplier of the default rates from 0 to 10, not {scale}")
    if out.resolve() == clean_dir.resolve():
        raise ValueError("the output folder must not be the clean population's folder")
    truth_in = clean_dir / "truth"
    for name in ("records.parquet", "persons.parquet"):
        if not (truth_in / name).exists():
            raise CleanPopulationError(f"no ground truth at {truth_in / name}: give an `outcomes synth` output folder")
    deliveries = list_deliveries(clean_dir / "landing")
    truth_records = pq.read_table(truth_in / "records.parquet").to_pandas()
    persons_table = pq.read_table(truth_in / "persons.parquet")
    truth_persons = persons_table.to_pandas()

    dates = record_dates(deliveries)
    records = dates.merge(truth_records, on=["source", "record_id"], how="left", validate="one_to_one")
    unknown = records["person_id"].isna()
    if unknown.any():
        first = records.loc[unknown].iloc[0]
        raise CleanPopulationError(
            f"{int(unknown.sum())} delivered records are not in the ground truth"
            f" (first: {first.source} {first.record_id})"
        )
    missing_people = ~records["person_id"].isin(truth_persons["person_id"])
    if missing_people.any():
        raise CleanPopulationError(f"{int(missing_people.sum())} records belong to persons not in persons.parquet")

    persons = make_persons(truth_persons, records[["person_id", "day"]], seed, scale)
    ident, errors, counts = recorded(records, persons.table, seed, scale)

    landing, truth = _prepare(out, overwrite)
    p = Pseudonymiser(EVALUATION_KEY)
    written = []
    for source, clear in ident.groupby("source", sort=True):
        clear = clear.reset_index(drop=True)
        block = identity_block(p, source, clear)
        table = pa.table(block)
        index = pd.Index(clear["record_id"])
        for d in deliveries:
            if d.source == source:
                written.append(rewrite(d, table, index, landing))

    shutil.copyfile(truth_in / "records.parquet", truth / "records.parquet")
    _write_persons(persons_table, persons, truth / "persons.parquet")
    err = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=ERRORS_SCHEMA.names)
    err = err.sort_values(["source", "record_id", "error_class"], kind="mergesort", ignore_index=True)
    _write(err, ERRORS_SCHEMA, truth / "errors.parquet")
    _write(persons.namesakes, NAMESAKES_SCHEMA, truth / "namesakes.parquet")
    _write(ident, IDENTITIES_SCHEMA, truth / "identities.parquet")
    _write(_clear_persons(persons.table), CLEAR_PERSONS_SCHEMA, truth / "persons_clear.parquet")
    return ErrorModelResult(out, scale, seed, _counts(counts, persons, scale), written, persons.namesakes)


def _write_persons(original: pa.Table, persons, path: Path) -> None:
    """The truth's persons with the namesakes' dates of birth and pairs (same schema as the input)."""
    df = original.to_pandas()
    mine = persons.table.set_index("person_id")
    df["date_of_birth"] = mine.loc[df["person_id"], "dob"].to_numpy().astype("datetime64[D]")
    twin = persons.namesakes.set_index("person_b")["person_a"]
    df["twin_of"] = df["person_id"].map(twin).astype(object).where(df["person_id"].isin(twin.index), None)
    table = pa.Table.from_pandas(df, schema=original.schema, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(original.schema.metadata), path, **PARQUET_OPTIONS)


def _clear_persons(t: pd.DataFrame) -> pd.DataFrame:
    """Each person's identity before any error: what the records should have said."""
    return pd.DataFrame(
        {
            "person_id": t["person_id"],
            "forename": t["forename"],
            "surname": t["surname"],
            "date_of_birth": t["dob"].to_numpy().astype("datetime64[D]"),
            "sex": t["sex"],
            "postcode": t["district"],
            "married_surname": t["married_surname"],
            "moved_to": t["new_district"],
            "proneness": t["proneness"],
        }
    )


def _counts(counts, persons, scale: float) -> pd.DataFrame:
    rows = []
    for name, cls in ERROR_CLASSES.items():
        if "all" in cls.rates:
            eligible, applied = persons.eligible.get(name, 0), persons.applied.get(name, 0)
            rows.append((name, "all", cls.unit, eligible, applied, cls.rate("all", scale)))
            continue
        for source in cls.rates:
            eligible, applied = counts.eligible[(name, source)], counts.applied[(name, source)]
            rows.append((name, source, cls.unit, eligible, applied, cls.rate(source, scale)))
    df = pd.DataFrame(rows, columns=["error_class", "source", "unit", "eligible", "applied", "target"])
    df["rate"] = np.where(df["eligible"] > 0, df["applied"] / df["eligible"].clip(lower=1), np.nan)
    return df
