"""The synthetic population end to end: people, their histories, and monthly deliveries.

People are made in fixed-size chunks, each from its own random stream derived from the seed,
and every delivery is streamed to disk a chunk at a time, so memory is bounded by the chunk and
the output depends only on the seed and the options, never on the machine.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from outcomes.contract import SOURCES
from outcomes.pseudonymise.delivery import PARQUET_OPTIONS, DeliveryFiles, DeliveryWriter
from outcomes.pseudonymise.keyed import Pseudonymiser
from outcomes.synth.benefits import make_spells
from outcomes.synth.calendar import DeliveryCalendar
from outcomes.synth.deaths import CauseTable, cut_treatment_at_death, make_deaths
from outcomes.synth.offending import OffenceTable, make_offences
from outcomes.synth.people import GROUPS, KINDS, Geography, NamePools, make_people
from outcomes.synth.stats import SynthStats
from outcomes.synth.treatment import journeys_of, make_treatment
from outcomes.synth.versions import ChunkDeliveries

CHUNK_SIZE = 25_000  # part of the output's definition: changing it changes the population
PRODUCER = "outcomes synth"


@dataclass(frozen=True)
class SynthConfig:
    persons: int = 20_000
    seed: int = 42
    start: str = "2023-04"
    months: int = 36
    history_months: int = 48
    noise: float = 1.0

    def __post_init__(self) -> None:
        if self.persons < 1:
            raise ValueError("persons must be at least 1")
        if not 0.0 <= self.noise <= 5.0:
            raise ValueError("noise is a multiplier from 0 (no identifier errors) to 5")


@dataclass
class SynthResult:
    config: SynthConfig
    deliveries: list[DeliveryFiles]
    stats: SynthStats
    rows_by_source: Counter = field(default_factory=Counter)


def provider_key(seed: int) -> bytes:
    """The simulated providers' shared key: held in memory only, never written anywhere."""
    return hashlib.sha256(f"outcomes synthetic provider key {seed}".encode()).digest()


TRUTH_RECORDS = pa.schema([("source", pa.string()), ("record_id", pa.string()), ("person_id", pa.string())])
TRUTH_PERSONS = pa.schema(
    [
        ("person_id", pa.string()),
        ("kind", pa.string()),
        ("substance_group", pa.string()),
        ("sex", pa.string()),
        ("date_of_birth", pa.date32()),
        ("la_code", pa.string()),
        ("twin_of", pa.string()),
        ("date_of_death", pa.date32()),
    ]
)


def synthesise(
    config: SynthConfig, out: Path, overwrite: bool = False, on_chunk: Callable[[int, int], None] | None = None
) -> SynthResult:
    landing, truth = out / "landing", out / "truth"
    for d in (landing, truth):
        if d.exists() and any(d.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{d} is not empty: choose an empty folder or pass --overwrite")
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)

    cal = DeliveryCalendar(config.start, config.months, config.history_months)
    pseudonymiser = Pseudonymiser(provider_key(config.seed))
    pools, geo, causes, offences = NamePools(), Geography(), CauseTable(), OffenceTable()
    writers = {
        (s, m): DeliveryWriter(landing, s, cal.extract_dates[m], 1, PRODUCER)
        for s in SOURCES
        for m in range(cal.months)
    }
    records_out = pq.ParquetWriter(truth / "records.parquet", TRUTH_RECORDS, **PARQUET_OPTIONS)
    persons_out = pq.ParquetWriter(truth / "persons.parquet", TRUTH_PERSONS, **PARQUET_OPTIONS)
    stats = SynthStats(cal)
    chunks = range(0, config.persons, CHUNK_SIZE)
    for number, first in enumerate(chunks):
        rng = np.random.default_rng([config.seed, number])
        n = min(CHUNK_SIZE, config.persons - first)
        people = make_people(rng, first, n, cal, pools, geo, config.noise)
        episodes = make_treatment(rng, people, cal, geo)
        deaths = make_deaths(rng, people, journeys_of(episodes), cal, causes)
        episodes = cut_treatment_at_death(rng, episodes, deaths, n, cal)
        journeys = journeys_of(episodes)
        death_day = np.full(n, np.iinfo(np.int64).max)
        death_day[deaths.row] = deaths.day
        offs = make_offences(rng, people, journeys, death_day, cal, offences)
        spells = make_spells(rng, people, journeys, death_day, cal)
        stats.add(people, episodes, journeys, deaths, offs, spells, causes)

        # identifier classes added later draw from a stream of their own: the rest is unchanged
        extra_rng = np.random.default_rng([config.seed, number, 1])
        out_chunk = ChunkDeliveries(cal, pseudonymiser, people, geo, config.noise, rng, extra_rng)
        out_chunk.treatment(episodes)
        out_chunk.convictions(offs)
        out_chunk.benefits(spells)
        out_chunk.deaths(deaths)
        for source, months in out_chunk.by_month.items():
            for m in sorted(months):
                writers[(source, m)].write(pa.concat_tables(months[m]))
        for source, record_id, person_id in out_chunk.truth:
            records_out.write_table(
                pa.table(
                    {
                        "source": pa.array(np.full(len(record_id), source, dtype=object), pa.string()),
                        "record_id": pa.array(record_id, pa.string()),
                        "person_id": pa.array(person_id, pa.string()),
                    },
                    schema=TRUTH_RECORDS,
                )
            )
        persons_out.write_table(_persons_table(people, geo, death_day, cal))
        if on_chunk:
            on_chunk(number + 1, len(chunks))
    records_out.close()
    persons_out.close()
    result = SynthResult(config, [w.close() for w in writers.values()], stats)
    for d in result.deliveries:
        result.rows_by_source[d.data.name.split("_")[0]] += d.row_count
    return result


def _persons_table(people, geo, death_day, cal) -> pa.Table:
    dead = death_day <= cal.window_end
    twin = np.array([f"P{i:08d}" if i >= 0 else None for i in people.twin_of], dtype=object)
    return pa.table(
        {
            "person_id": pa.array(people.person_id, pa.string()),
            "kind": pa.array(np.array(KINDS, dtype=object)[people.kind], pa.string()),
            "substance_group": pa.array(
                np.where(people.group >= 0, np.array(GROUPS, dtype=object)[people.group.clip(0)], None), pa.string()
            ),
            "sex": pa.array(people.sex, pa.string()),
            "date_of_birth": pa.array(people.dob.astype(np.int32), pa.date32()),
            "la_code": pa.array(geo.la_codes[people.la], pa.string()),
            "twin_of": pa.array(twin, pa.string()),
            "date_of_death": pa.array(np.where(dead, death_day, 0).astype(np.int32), pa.date32(), mask=~dead),
        },
        schema=TRUTH_PERSONS,
    )
