"""The as-of records of every source attached to their true person, and treatment journeys built from
episodes (docs/marts.md, "Building blocks")."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyarrow.parquet as pq

from tests.oracle import codes
from tests.oracle.dates import ONE_DAY, add_months
from tests.oracle.landing import LandingState, state_as_of

JOIN_DAYS = 21


@dataclass(frozen=True)
class Episode:
    record_id: str
    person_id: str
    start: dt.date
    discharge: dt.date | None
    reason: str | None
    la_code: str
    setting: str
    housing_status: str
    date_of_birth: dt.date | None
    substances: tuple[str, ...]

    @property
    def is_open(self) -> bool:
        return self.discharge is None

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """In treatment during [first, last]."""
        return self.start <= last and (self.discharge is None or self.discharge >= first)


def exit_type_of(reason: str) -> str:
    if reason in codes.SUCCESSFUL_REASONS:
        return "successful"
    if reason in codes.TRANSFER_REASONS:
        return "transferred"
    if reason == "died":
        return "died"
    return "unsuccessful"


def substance_group_of(substances: set[str]) -> str:
    if substances & codes.OPIATES:
        return "opiate"
    if "alcohol" in substances:
        return "non_opiate_and_alcohol" if substances - {"alcohol"} else "alcohol_only"
    return "non_opiate_only"


@dataclass(frozen=True)
class Journey:
    """A person's journey: its episodes in (start, record_id) order (fixed once built)."""

    person_id: str
    episodes: tuple[Episode, ...]

    @property
    def first_episode(self) -> Episode:
        return self.episodes[0]

    @property
    def start(self) -> dt.date:
        return self.episodes[0].start

    @cached_property
    def is_open(self) -> bool:
        return any(e.is_open for e in self.episodes)

    @cached_property
    def exit_episode(self) -> Episode | None:
        """The episode with the latest (discharge_date, record_id); none while the journey is open."""
        if self.is_open:
            return None
        return max(self.episodes, key=lambda e: (e.discharge, e.record_id))

    @property
    def exit_date(self) -> dt.date | None:
        e = self.exit_episode
        return None if e is None else e.discharge

    @property
    def exit_type(self) -> str | None:
        e = self.exit_episode
        return None if e is None else exit_type_of(e.reason)

    @cached_property
    def substance_group(self) -> str:
        return substance_group_of({s for e in self.episodes for s in e.substances})

    def exits_in(self, first: dt.date, last: dt.date) -> bool:
        return self.exit_date is not None and first <= self.exit_date <= last


def build_journeys(episodes: list[Episode]) -> list[Journey]:
    """One person's journeys. Episodes in (start, record_id) order; an episode starts a new journey when it
    is the first, or when it starts more than 21 days after the latest discharge of all earlier episodes
    (an open earlier episode counting as never discharged)."""
    groups: list[list[Episode]] = []
    latest_discharge: dt.date | None = None
    any_open = False
    for episode in sorted(episodes, key=lambda e: (e.start, e.record_id)):
        starts_new = not groups or (not any_open and episode.start > latest_discharge + dt.timedelta(days=JOIN_DAYS))
        if starts_new:
            groups.append([episode])
        else:
            groups[-1].append(episode)
        if episode.is_open:
            any_open = True
        elif latest_discharge is None or episode.discharge > latest_discharge:
            latest_discharge = episode.discharge
    return [Journey(group[0].person_id, tuple(group)) for group in groups]


@dataclass(frozen=True)
class Offence:
    record_id: str
    person_id: str
    offence_date: dt.date
    disposal_date: dt.date
    offence_group: str | None
    trigger_offence: bool


def proven_offences(offences: list[Offence], a: dt.date, b: dt.date, trigger_only: bool = False) -> list[Offence]:
    """Proven offences in the window [a, b): not breach, a <= offence_date < b, disposal before b + 6 months.
    (Quashed rows are already out of the as-of state.)"""
    waiting_end = add_months(b, 6)
    return [
        o
        for o in offences
        if o.offence_group != "breach"
        and a <= o.offence_date < b
        and o.disposal_date < waiting_end
        and (o.trigger_offence or not trigger_only)
    ]


@dataclass(frozen=True)
class Spell:
    record_id: str
    person_id: str
    benefit_type: str | None
    uc_conditionality: str | None
    start: dt.date
    end: dt.date | None

    @property
    def is_out_of_work(self) -> bool:
        if self.benefit_type in codes.OUT_OF_WORK_BENEFITS:
            return True
        return self.benefit_type == "UC" and self.uc_conditionality in codes.OUT_OF_WORK_UC_CONDITIONALITY

    def covers(self, t: dt.date) -> bool:
        return self.start <= t and (self.end is None or self.end >= t)


@dataclass(frozen=True)
class Death:
    record_id: str
    person_id: str
    date_of_death: dt.date
    date_of_registration: dt.date
    underlying_cause: str | None
    controlled_drug_mentioned: bool | None
    la_code: str
    sex: str
    date_of_birth: dt.date | None

    @property
    def is_drug_poisoning(self) -> bool:
        return codes.is_drug_poisoning(self.underlying_cause)

    @property
    def is_drug_misuse(self) -> bool:
        return codes.is_drug_misuse(self.underlying_cause, self.controlled_drug_mentioned)


@dataclass
class Population:
    """Everything the marts read, by true person, as of `as_of`."""

    as_of: dt.date
    first_extract_date: dt.date | None
    landing_state: LandingState
    journeys: dict[str, list[Journey]] = field(default_factory=dict)
    offences: dict[str, list[Offence]] = field(default_factory=lambda: defaultdict(list))
    spells: dict[str, list[Spell]] = field(default_factory=lambda: defaultdict(list))
    deaths: list[Death] = field(default_factory=list)
    unmatched_records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    death_by_person: dict[str, Death] = field(default_factory=dict)

    def person_death(self, person_id: str) -> Death | None:
        """A person's death: their earliest date_of_death (ties by record_id)."""
        return self.death_by_person.get(person_id)

    def next_journey_start(self, journey: Journey) -> dt.date | None:
        later = [j.start for j in self.journeys[journey.person_id] if j.start > journey.start]
        return min(later) if later else None

    def journey_starts_in(self, person_id: str, first: dt.date, end_excl: dt.date) -> bool:
        return any(first <= j.start < end_excl for j in self.journeys.get(person_id, []))

    def out_of_work_spells(self, person_id: str) -> list[Spell]:
        return [s for s in self.spells.get(person_id, []) if s.is_out_of_work]

    def finish(self) -> None:
        for d in sorted(self.deaths, key=lambda d: (d.date_of_death, d.record_id)):
            self.death_by_person.setdefault(d.person_id, d)


def _dim(value: str | None) -> str:
    return codes.UNKNOWN if value is None else value


def load_population(landing: Path, truth: Path, as_of: dt.date) -> Population:
    """Read the deliveries known at `as_of` and attach each record to its true person (truth/records.parquet).
    `truth` is the truth folder or the records.parquet file itself."""
    truth = Path(truth)
    records_file = truth / "records.parquet" if truth.is_dir() else truth
    person_of = {
        (r["source"], r["record_id"]): r["person_id"]
        for r in pq.read_table(records_file, columns=["source", "record_id", "person_id"]).to_pylist()
    }
    state = state_as_of(Path(landing), as_of)
    first = min((d.extract_date for d in state.applied), default=None)
    pop = Population(as_of=as_of, first_extract_date=first, landing_state=state)

    def person(source: str, record_id: str) -> str | None:
        p = person_of.get((source, record_id))
        if p is None:
            pop.unmatched_records[source] += 1
        return p

    episodes_by_person: dict[str, list[Episode]] = defaultdict(list)
    for rid, r in state.records["treatment"].items():
        if (pid := person("treatment", rid)) is None:
            continue
        substances = tuple(s for s in (r["substance_1"], r["substance_2"], r["substance_3"]) if s is not None)
        episodes_by_person[pid].append(
            Episode(
                record_id=rid,
                person_id=pid,
                start=r["treatment_start_date"],
                discharge=r["discharge_date"],
                reason=r["discharge_reason"],
                la_code=_dim(r["la_code"]),
                setting=_dim(r["setting"]),
                housing_status=_dim(r["housing_status"]),
                date_of_birth=r["date_of_birth"],
                substances=substances,
            )
        )
    pop.journeys = {pid: build_journeys(eps) for pid, eps in episodes_by_person.items()}

    for rid, r in state.records["convictions"].items():
        if (pid := person("convictions", rid)) is None:
            continue
        pop.offences[pid].append(
            Offence(rid, pid, r["offence_date"], r["disposal_date"], r["offence_group"], r["trigger_offence"] is True)
        )
    for rid, r in state.records["benefits"].items():
        if (pid := person("benefits", rid)) is None:
            continue
        pop.spells[pid].append(
            Spell(rid, pid, r["benefit_type"], r["uc_conditionality"], r["spell_start"], r["spell_end"])
        )
    for rid, r in state.records["deaths"].items():
        if (pid := person("deaths", rid)) is None:
            continue
        pop.deaths.append(
            Death(
                record_id=rid,
                person_id=pid,
                date_of_death=r["date_of_death"],
                date_of_registration=r["date_of_registration"],
                underlying_cause=r["underlying_cause"],
                controlled_drug_mentioned=r["controlled_drug_mentioned"],
                la_code=_dim(r["la_code"]),
                sex="U" if r["sex"] is None else r["sex"],
                date_of_birth=r["date_of_birth"],
            )
        )
    pop.finish()
    return pop


def follow_up(index: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The follow-up of N months after `index`: [f, add_months(f, N)) with f = index + 1 day."""
    f = index + ONE_DAY
    return f, add_months(f, months)
