"""Reading the clean population's deliveries and writing them again with new identity blocks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from outcomes.contract import SOURCES
from outcomes.contract.extracts import parse_delivery_filename
from outcomes.pseudonymise.delivery import DeliveryFiles, DeliveryWriter

PRODUCER = "errormodel"
# The date a record's identity is taken at: when the episode, offence, spell or death happened.
EVENT_DATE = {
    "treatment": "treatment_start_date",
    "convictions": "offence_date",
    "benefits": "spell_start",
    "deaths": "date_of_death",
}


class CleanPopulationError(ValueError):
    """The input folder is not a population the error model can rewrite; the message says why."""


@dataclass(frozen=True)
class Delivery:
    path: Path
    source: str
    extract_date: dt.date
    seq: int


def list_deliveries(landing: Path) -> list[Delivery]:
    if not landing.is_dir():
        raise CleanPopulationError(f"no landing folder at {landing}")
    out = []
    for path in sorted(landing.iterdir()):
        name = parse_delivery_filename(path.name)
        if name is None:
            continue
        if name.suffix != "parquet":
            raise CleanPopulationError(f"{path.name}: the error model reads Parquet deliveries only")
        if name.source not in SOURCES:
            raise CleanPopulationError(f"{path.name}: unknown source {name.source!r}")
        out.append(Delivery(path, name.source, name.extract_date, name.seq))
    if not out:
        raise CleanPopulationError(f"no deliveries in {landing}")
    return out


def _days(col: pa.ChunkedArray) -> np.ndarray:
    """Dates as days since 1970 (int64); missing dates as the largest int64."""
    days = pc.cast(pc.cast(col, pa.date32()), pa.int32())
    return pc.fill_null(pc.cast(days, pa.int64()), np.iinfo(np.int64).max).to_numpy()


def record_dates(deliveries: list[Delivery]) -> pd.DataFrame:
    """source, record_id, day (earliest event date over its versions), earliest (its earliest date
    of any kind: a date of birth must not come after it)."""
    frames = []
    for d in deliveries:
        spec = SOURCES[d.source]
        dates = [c.name for c in spec.columns if c.type == "date" and not c.identity]
        t = pq.read_table(d.path, columns=["record_id", *dates])
        stacked = np.stack([_days(t[c]) for c in dates], axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "source": d.source,
                    "record_id": t["record_id"].to_numpy(zero_copy_only=False),
                    "day": _days(t[EVENT_DATE[d.source]]),
                    "earliest": stacked.min(axis=1),
                }
            )
        )
    all_rows = pd.concat(frames, ignore_index=True)
    out = all_rows.groupby(["source", "record_id"], as_index=False, sort=True).agg(
        day=("day", "min"), earliest=("earliest", "min")
    )
    return out


def rewrite(d: Delivery, identity: pa.Table, index: pd.Index, out_dir: Path) -> DeliveryFiles:
    """The delivery with its identity block replaced (source columns and row order unchanged)."""
    table = pq.read_table(d.path)
    rows = index.get_indexer(table["record_id"].to_numpy(zero_copy_only=False))
    if (rows < 0).any():
        raise CleanPopulationError(f"{d.path.name}: {int((rows < 0).sum())} rows have no identity")
    new = identity.take(pa.array(rows))
    spec = SOURCES[d.source]
    columns = {c.name: (new[c.name] if c.identity or c.name == "record_id" else table[c.name]) for c in spec.columns}
    writer = DeliveryWriter(out_dir, d.source, d.extract_date, d.seq, PRODUCER)
    writer.write(pa.table(columns))
    return writer.close()
