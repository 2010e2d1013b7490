"""England's headline figures computed by the independent oracle (tests/oracle) over two person
maps: the truth and the linkage spine. Their difference is what linkage error does to them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tests.oracle import compute_marts
from tests.oracle.codes import ENGLAND


def england_figures(marts: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Proven reoffending (cohort, reoffenders) per financial year (provisional ones too), drug poisoning deaths by
    treatment status at death (registration years, all together) and person-years after
    treatment exits (all exits), for England."""
    out: dict[str, float] = {}
    pr = marts["proven_reoffending"]
    pr = pr[(pr["la_code"] == ENGLAND) & (pr["period_type"] == "financial_year")]
    for label, g in pr.groupby("period_label"):
        out[f"reoffending {label} cohort"] = float(g["cohort"].sum())
        out[f"reoffending {label} reoffenders"] = float(g["reoffenders"].sum())
    d = marts["drug_related_deaths"]
    d = d[(d["la_code"] == ENGLAND) & (d["year_basis"] == "registration")]
    for status, g in d.groupby("treatment_status"):
        out[f"drug poisoning deaths {status}"] = float(g["drug_poisoning_deaths"].sum())
    out["person-years after treatment"] = float(marts["deaths_after_treatment"]["person_years"].sum())
    return out


def through_linkage(landing: Path, truth: Path, spine: Path, as_of: dt.date) -> pd.DataFrame:
    """Each figure from the truth and through the spine, with the relative difference."""
    true = england_figures(compute_marts(landing, truth, as_of))
    linked = england_figures(compute_marts(landing, spine, as_of))
    rows = [{"figure": k, "truth": v, "linked": linked.get(k, 0.0)} for k, v in true.items()]
    frame = pd.DataFrame(rows)
    frame["relative_difference"] = (frame["linked"] - frame["truth"]) / frame["truth"].where(frame["truth"] != 0)
    return frame
