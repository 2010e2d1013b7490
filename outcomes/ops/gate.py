"""The quality gate between the build and publication.

Publication stops (the previous published tables and report stay as they are, the run fails with
the reasons) when, for the month the run publishes:
- a delivery was rejected and no later delivery of the same source and extract_date replaced it;
- a source's quarantined share of delivered rows exceeds its limit;
- a source pair's match rate moved by more than the allowed points since the previous linkage run.
A failing dbt test stops the run earlier, at the build.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field


@dataclass
class GateConfig:
    # Share of a month's delivered rows a source may quarantine (0.05 = 5 %), and per-source overrides.
    quarantine_limit: float = 0.05
    quarantine_limits: dict[str, float] = field(default_factory=dict)
    # How far a source pair's match rate may move between linkage runs, in percentage points.
    match_rate_points: float = 5.0

    @classmethod
    def from_env(cls, **overrides) -> GateConfig:
        """Defaults, then $OUTCOMES_GATE_QUARANTINE_LIMIT / $OUTCOMES_GATE_MATCH_RATE_POINTS, then `overrides`."""
        config = cls()
        if "OUTCOMES_GATE_QUARANTINE_LIMIT" in os.environ:
            config.quarantine_limit = float(os.environ["OUTCOMES_GATE_QUARANTINE_LIMIT"])
        if "OUTCOMES_GATE_MATCH_RATE_POINTS" in os.environ:
            config.match_rate_points = float(os.environ["OUTCOMES_GATE_MATCH_RATE_POINTS"])
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config

    def limit(self, source: str) -> float:
        return self.quarantine_limits.get(source, self.quarantine_limit)


class GateClosed(Exception):
    """Publication stopped; the message lists every reason."""


def month_bounds(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of `as_of`'s month and `as_of`: the deliveries the run publishes for the first time."""
    return as_of.replace(day=1), as_of


def gate_reasons(backend, as_of: dt.date, config: GateConfig, new_rejections: list[str] | None = None) -> list[str]:
    """Every reason to stop publishing as of `as_of` (empty: the gate is open)."""
    first, last = month_bounds(as_of)
    reasons = []
    with backend.transaction() as s:
        rejected = s.fetch(
            "select r.file_name, r.source, r.extract_date, r.reason from events.deliveries r "
            "where r.status = 'rejected' and r.extract_date between :a and :b and not exists ("
            "select 1 from events.deliveries ok where ok.status = 'applied' and ok.source = r.source "
            "and ok.extract_date = r.extract_date and ok.ledger_id > r.ledger_id) order by r.file_name",
            {"a": first, "b": last},
        ).to_pylist()
        undated = set(new_rejections or []) - {r["file_name"] for r in rejected}
        for name in sorted(undated):
            reason = s.scalar(
                "select max(reason) from events.deliveries where status = 'rejected' and file_name = :f", {"f": name}
            )
            rejected.append({"file_name": name, "reason": reason})
        shares = s.fetch(
            "select source, sum(rows_delivered) as delivered, sum(rows_quarantined) as quarantined "
            "from events.deliveries where status = 'applied' and extract_date between :a and :b "
            "group by source order by source",
            {"a": first, "b": last},
        ).to_pylist()
        moves = _match_rate_moves(s, as_of)
    for r in rejected:
        reasons.append(f"delivery {r['file_name']} was rejected: {r['reason']}")
    for q in shares:
        share = (q["quarantined"] or 0) / q["delivered"] if q["delivered"] else 0.0
        if share > config.limit(q["source"]):
            reasons.append(
                f"{q['source']}: {share:.1%} of rows quarantined in {first:%Y-%m} "
                f"({q['quarantined']:,} of {q['delivered']:,}; limit {config.limit(q['source']):.1%})"
            )
    for pair, before, now in moves:
        points = abs(now - before) * 100
        if points > config.match_rate_points:
            reasons.append(
                f"match rate {pair} moved {points:.1f} points ({before:.3f} to {now:.3f}; "
                f"limit {config.match_rate_points:g})"
            )
    return reasons


def _match_rate_moves(s, as_of: dt.date) -> list[tuple[str, float, float]]:
    """(source pair, previous rate, rate) of the latest linkage run known on `as_of` against the run before it."""
    exists = s.scalar(
        "select count(*) from information_schema.tables where table_schema = 'linkage' and table_name = 'quality'"
    )
    if not exists:
        return []
    # Latest by knowledge date, then run: a past date linked afterwards is not the latest run of a later date.
    latest = s.fetch(
        "select run_id, as_of from linkage.quality where as_of <= :d order by as_of desc, run_id desc limit 1",
        {"d": as_of},
    ).to_pylist()
    if not latest:
        return []
    run, run_as_of = latest[0]["run_id"], latest[0]["as_of"]
    previous = s.scalar(
        "select run_id from linkage.quality where as_of < :d order by as_of desc, run_id desc limit 1",
        {"d": run_as_of},
    )
    if previous is None:
        return []
    rows = s.fetch(
        "select a.source_a || '-' || a.source_b as pair, b.match_rate as before, a.match_rate as now "
        "from linkage.quality a join linkage.quality b on b.source_a = a.source_a and b.source_b = a.source_b "
        "where a.run_id = :r and b.run_id = :p and a.match_rate is not null and b.match_rate is not null "
        "order by pair",
        {"r": run, "p": previous},
    ).to_pylist()
    return [(r["pair"], float(r["before"]), float(r["now"])) for r in rows]


def check_gate(backend, as_of: dt.date, config: GateConfig, new_rejections: list[str] | None = None) -> None:
    reasons = gate_reasons(backend, as_of, config, new_rejections)
    if reasons:
        raise GateClosed(f"publication of {as_of} stopped: " + "; ".join(reasons))
