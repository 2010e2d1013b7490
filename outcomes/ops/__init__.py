"""Operations of the monthly refresh: knowledge dates, delivery sensors, the quality gate before
publication, and incidents (an `ops` schema row and an e-mail) when a task fails.

Kept light at import: DAG files import `outcomes.ops.sensors` and `outcomes.ops.notifier` at parse time.
"""
