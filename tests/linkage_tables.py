"""The tables a link run writes, each with the columns that order its rows: two runs that should
write the same thing are compared table by table on these."""

LINK_TABLES = {
    "linkage.link_events": "source, record_id, run_id, event",
    "linkage.pair_decisions": "left_source, left_record_id, right_source, right_record_id, decision",
    "linkage.identities": "source, record_id",
    "linkage.record_keys": "source, record_id",
    "linkage.quality": "source_a, source_b",
    "linkage.quality_by_group": "source_a, source_b, dimension, value",
    "linkage.match_rates": "source, dimension, value",
}
