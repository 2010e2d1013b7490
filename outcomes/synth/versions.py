"""When each fact reaches the warehouse: record versions by delivery month, per source.

Treatment arrives as monthly full snapshots (an episode appears, later shows its discharge,
may have its discharge reason corrected, or vanishes when the provider withdraws it); the other
sources arrive as deltas (new rows, then amended, quashed or withdrawn rows).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from outcomes.contract import DISCHARGE_REASONS, arrow_schema
from outcomes.pseudonymise.identity import identity_block
from outcomes.pseudonymise.keyed import Pseudonymiser
from outcomes.synth.benefits import Spells
from outcomes.synth.calendar import DeliveryCalendar
from outcomes.synth.deaths import Deaths
from outcomes.synth.noise import recorded_identity
from outcomes.synth.offending import Offences
from outcomes.synth.people import People
from outcomes.synth.sampling import random_ids, reporting_lag
from outcomes.synth.treatment import Episodes

NOT_YET = np.iinfo(np.int32).max


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    mask = ~valid if valid is not None else None
    return pa.array(days.astype(np.int32), pa.date32(), mask=mask)


def _strings(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string(), from_pandas=True)


def version_months(v1: np.ndarray, *changes: np.ndarray, last: np.ndarray | None = None):
    """(record index, delivery month) of every version: the first delivery and each later month
    in which something about the record changed, once per month, none after `last` (a retraction)."""
    rec = np.concatenate([np.arange(len(v1))] * (1 + len(changes)))
    month = np.concatenate([v1, *changes])
    ok = (month < NOT_YET) & (month >= v1[rec])
    if last is not None:
        ok &= month <= last[rec]
    pairs = np.unique(np.stack([rec[ok], month[ok]]), axis=1)
    return pairs[0], pairs[1]


class ChunkDeliveries:
    """Per source, the rows each delivery month carries for one chunk of people."""

    def __init__(
        self,
        cal: DeliveryCalendar,
        pseudonymiser: Pseudonymiser,
        people: People,
        geo,
        noise: float,
        rng: np.random.Generator,
        extra_rng: np.random.Generator | None = None,
    ) -> None:
        self.cal, self.p, self.people, self.geo, self.noise, self.rng = cal, pseudonymiser, people, geo, noise, rng
        self.extra_rng = extra_rng
        self.by_month: dict[str, dict[int, list[pa.Table]]] = {}
        self.truth: list[tuple[str, np.ndarray, np.ndarray]] = []

    def _identity(self, source, rows, day, record_id, **kw) -> dict[str, pa.Array]:
        clear = recorded_identity(
            self.rng, self.people, rows, day, source, record_id, self.noise, extra=self.extra_rng, **kw
        )
        self.truth.append((source, record_id, self.people.person_id[rows]))
        return identity_block(self.p, source, clear)

    def _emit(self, source: str, table: pa.Table, month: np.ndarray) -> None:
        month = np.asarray(month)
        order = np.argsort(month, kind="stable")
        sorted_month = month[order]
        bounds = np.flatnonzero(np.r_[True, sorted_month[1:] != sorted_month[:-1]]) if len(month) else []
        per_month = self.by_month.setdefault(source, {})
        for i, b in enumerate(bounds):
            m = int(sorted_month[b])
            if m >= self.cal.months:
                break  # not yet known at the last extract date
            e = bounds[i + 1] if i + 1 < len(bounds) else len(month)
            per_month.setdefault(m, []).append(table.take(pa.array(order[b:e])))

    # -- treatment: full snapshots -------------------------------------------------------------
    def treatment(self, eps: Episodes) -> None:
        rng, cal = self.rng, self.cal
        n = len(eps)
        # A few episodes are duplicates keyed in error and later withdrawn by the provider.
        dup = np.flatnonzero(rng.random(n) < 0.015)
        src = np.concatenate([np.arange(n), dup])
        m = len(src)
        record_id = random_ids(rng, "TE", m)
        start, end, reason = eps.start[src], eps.end[src], eps.reason[src]
        known = cal.delivery_index(start, reporting_lag(rng, m, 0.85, 0.08, 6))
        closed = end <= cal.window_end
        discharge_known = np.where(
            closed,
            np.maximum(
                known, cal.delivery_index(np.minimum(end, cal.window_end), reporting_lag(rng, m, 0.80, 0.12, 4))
            ),
            NOT_YET,
        )
        withdrawn = np.full(m, NOT_YET, dtype=np.int64)
        withdrawn[n:] = known[n:] + rng.integers(1, 7, m - n)
        # Some discharge reasons are first recorded wrongly and corrected a few months later.
        corrected = closed & (rng.random(m) < 0.03) & (reason != "died")
        corrected_from = np.array(DISCHARGE_REASONS[:-1], dtype=object)[rng.integers(0, len(DISCHARGE_REASONS) - 1, m)]
        corrected &= corrected_from != reason
        correction_month = np.where(corrected, discharge_known + rng.integers(1, 7, m), -1)

        rows = eps.row[src]
        ident = self._identity(
            "treatment",
            rows,
            start,
            record_id,
            no_address=eps.housing_status[src] == "no_fixed_abode",
            id_suffix=eps.client_suffix[src],
        )
        base = pa.table(
            {
                **ident,
                "provider_code": _strings(eps.provider_code[src]),
                "la_code": _strings(self.geo.la_codes[eps.la[src]]),
                "setting": _strings(eps.setting[src]),
                "referral_source": _strings(eps.referral_source[src]),
                "referral_date": _dates(eps.referral_date[src], eps.referral_date[src] >= 0),
                "treatment_start_date": _dates(start),
                "substance_1": _strings(eps.substance_1[src]),
                "substance_2": _strings(eps.substance_2[src]),
                "substance_3": _strings(eps.substance_3[src]),
                "injecting_status": _strings(eps.injecting_status[src]),
                "housing_status": _strings(eps.housing_status[src]),
            }
        )
        schema = arrow_schema("treatment")
        per_month = self.by_month.setdefault("treatment", {})
        for month in range(cal.months):
            show = np.flatnonzero((known <= month) & (withdrawn > month))
            if not len(show):
                continue
            discharged = discharge_known[show] <= month
            wrong = (correction_month[show] > month) & discharged
            shown_reason = np.where(wrong, corrected_from[show], reason[show])
            snapshot = base.take(pa.array(show))
            snapshot = snapshot.append_column("discharge_date", _dates(end[show], discharged))
            snapshot = snapshot.append_column(
                "discharge_reason", pa.array(np.where(discharged, shown_reason, None), pa.string())
            )
            per_month.setdefault(month, []).append(snapshot.select(schema.names))

    # -- convictions: deltas ---------------------------------------------------------------------
    def convictions(self, off: Offences) -> None:
        rng, cal = self.rng, self.cal
        n = len(off.row)
        record_id = random_ids(rng, "CV", n)
        v1 = cal.delivery_index(off.disposal_day, reporting_lag(rng, n, 0.80, 0.12, 12))
        release_known = np.where(off.release_day >= 0, np.maximum(v1, cal.delivery_index(off.release_day)), NOT_YET)
        quash = np.where(rng.random(n) < 0.01, v1 + rng.integers(1, 13, n), NOT_YET)
        fix = np.where(off.corrected_code != None, v1 + rng.integers(1, 7, n), NOT_YET)  # noqa: E711
        ident = self._identity("convictions", off.row, off.offence_day, record_id)
        force = self.geo.force_codes[off.la]
        # Each version is the row as the PNC holds it at that delivery.
        sel, at = version_months(v1, release_known, fix, quash, last=quash)
        code = np.where(fix[sel] <= at, off.corrected_code[sel], off.code[sel])
        table = pa.table(
            {
                **{k: v.take(pa.array(sel)) for k, v in ident.items()},
                "offence_date": _dates(off.offence_day[sel]),
                "disposal_date": _dates(off.disposal_day[sel]),
                "offence_code": _strings(code),
                "offence_group": _strings(off.group[sel]),
                "trigger_offence": pa.array(off.trigger[sel], pa.bool_()),
                "disposal_type": _strings(off.disposal[sel]),
                "custody_release_date": _dates(off.release_day[sel], release_known[sel] <= at),
                "record_status": _strings(np.where(quash[sel] <= at, "quashed", "active")),
                "police_force_code": _strings(force[sel]),
            }
        )
        self._emit("convictions", table, at)

    # -- benefits: deltas --------------------------------------------------------------------------
    def benefits(self, sp: Spells) -> None:
        rng, cal = self.rng, self.cal
        n = len(sp.row)
        record_id = random_ids(rng, "BS", n)
        v1 = cal.delivery_index(sp.start, reporting_lag(rng, n, 0.85, 0.10, 3))
        ended = sp.end <= cal.window_end
        end_known = np.where(
            ended,
            np.maximum(
                v1, cal.delivery_index(np.minimum(sp.end, cal.window_end), reporting_lag(rng, n, 0.85, 0.10, 3))
            ),
            NOT_YET,
        )
        withdraw = np.where(rng.random(n) < 0.01, v1 + rng.integers(1, 7, n), NOT_YET)
        ident = self._identity("benefits", sp.row, sp.start, record_id)
        sel, at = version_months(v1, end_known, withdraw, last=withdraw)
        table = pa.table(
            {
                **{k: v.take(pa.array(sel)) for k, v in ident.items()},
                "benefit_type": _strings(sp.benefit_type[sel]),
                "uc_conditionality": _strings(sp.uc_conditionality[sel]),
                "spell_start": _dates(sp.start[sel]),
                "spell_end": _dates(sp.end[sel], end_known[sel] <= at),
                "record_status": _strings(np.where(withdraw[sel] <= at, "withdrawn", "active")),
            }
        )
        self._emit("benefits", table, at)

    # -- deaths: deltas ----------------------------------------------------------------------------
    def deaths(self, d: Deaths) -> None:
        rng, cal = self.rng, self.cal
        n = len(d.row)
        record_id = random_ids(rng, "DR", n)
        v1 = cal.delivery_index(d.registration, reporting_lag(rng, n, 0.7, 0.3, 1))
        amend = np.where(d.amended_cause != None, v1 + rng.integers(1, 7, n), NOT_YET)  # noqa: E711
        ident = self._identity("deaths", d.row, d.day, record_id)
        sel, at = version_months(v1, amend)
        amended = amend[sel] <= at
        table = pa.table(
            {
                **{k: v.take(pa.array(sel)) for k, v in ident.items()},
                "date_of_death": _dates(d.day[sel]),
                "date_of_registration": _dates(d.registration[sel]),
                "underlying_cause": _strings(np.where(amended, d.amended_cause[sel], d.cause[sel])),
                "contributory_causes": pa.array([d.contributory[i] for i in sel], pa.list_(pa.string())),
                "drugs_mentioned": pa.array([d.drugs[i] for i in sel], pa.list_(pa.string())),
                "controlled_drug_mentioned": pa.array(d.controlled[sel], pa.bool_()),
                "la_code": _strings(self.geo.la_codes[d.la[sel]]),
                "record_status": _strings(np.where(amended, "amended", "active")),
            }
        )
        self._emit("deaths", table, at)
