"""Linkage on Apache Spark (`OUTCOMES_LINK_ENGINE=spark`): the local engine's stages, with the
work that grows with the pairs distributed — blocking as Spark SQL joins over the identity and
block-key table, scoring by the local partition function (`linkage.engine.score_chunk`) through
`mapInPandas`, connected components by iterative joins (contraction), each component's person-level
decisions by the local functions (`linkage.run.cluster_local`) through `applyInPandas` — and the
spine, link events and quality written by the local writers (`linkage.run.finish`).

PySpark is imported only when the engine runs: `linkage.spark.engine.link_spark`.
"""
