"""The former disclosure rule, the dbt macro `disclose` used before the disclosure step: it
published only the per-mart tables and, for each, primary suppression of counts 1-4, then within
each group of cells (a published England row with its areas; a cohort shared with another table)
with exactly one suppressed cell, the smallest non-zero other cell, four rounds of passes.

Kept as the yardstick the integer program must not lose more people than, table by table
(control.former_limits), and for bench/disclosure.py's before/after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.disclosure.cells import SMALL_MAX, SMALL_MIN
from outcomes.disclosure.tables import Published

_P = ["period_type", "period_label", "period_end"]
# The former published models' `groupings` (git show 673bd72^^:dbt_project/models/published/):
# a list of partition columns (every count), or (columns, counts) for a total published elsewhere.
FORMER_GROUPINGS: dict[str, list] = {
    "successful_completion": [[*_P, "substance_group"]],
    "sustained_recovery": [[*_P, "substance_group"]],
    "proven_reoffending": [
        [*_P, "substance_group", "exit_type"],
        ([*_P, "la_code", "substance_group"], ["cohort"]),
    ],
    "convictions_before_after": [
        [*_P, "substance_group", "retention", "offence_scope"],
        ([*_P, "la_code", "substance_group", "offence_scope"], ["cohort"]),
    ],
    "drug_related_deaths": [["year", "year_basis", "sex", "age_band", "treatment_status"]],
    "deaths_after_treatment": [],
    "treatment_flow": [
        [*_P, "substance_group", "setting", "housing_status", "age_band"],
        ([*_P, "la_code", "substance_group"], ["in_treatment"]),
    ],
    "benefits_outcome": [[*_P, "substance_group", "exit_type"]],
    "linkage_quality": [],
}
FORMER_ROUNDS = 4


def former_macro(frame: pd.DataFrame, table: Published) -> dict[str, np.ndarray]:
    """The former macro's suppression flags per count of a per-mart table: each pass, in a group
    with exactly one suppressed cell, the first cell ordered by (suppressed last, zeros after
    non-zeros, value, the table's key) is suppressed too.

    The table's key order is taken once as a rank (a stable sort of the key columns; rows with one
    key keep their order, as a stable sort by the key would), and each pass orders by integers
    (numpy's lexsort): the flags of a stable pandas sort by (group, class, value, key), in a
    fraction of its time."""
    dims = list(table.family.dims)
    flags = {c: frame[c].between(SMALL_MIN, SMALL_MAX).to_numpy() for c in table.counts}
    entries = [e if isinstance(e, tuple) else (e, list(table.counts)) for e in FORMER_GROUPINGS.get(table.name, [])]
    if not entries or not len(frame):
        return flags
    rank = np.empty(len(frame), np.int64)
    rank[frame.reset_index(drop=True).sort_values(dims, kind="stable").index.to_numpy()] = np.arange(len(frame))
    groups = [frame.groupby(by, dropna=False, sort=False).ngroup().to_numpy() for by, _ in entries]
    for _ in range(FORMER_ROUNDS):
        for (_, counts), group in zip(entries, groups, strict=True):
            for count in counts:
                hidden = flags[count].copy()
                value = frame[count].to_numpy()
                alone = np.bincount(group, weights=hidden, minlength=group.max() + 1) == 1
                cls = np.where(hidden, 2, np.where(value == 0, 1, 0))
                order = np.lexsort((rank, value, cls, group))
                _, first = np.unique(group[order], return_index=True)
                first = order[first]
                hidden[first[alone[group[first]]]] = True
                flags[count] = hidden
    return flags
