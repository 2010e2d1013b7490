-- Before/after conviction counts (2012 treatment-and-reconviction study). Not causal effects.
-- Kept per cell (kept_counts, macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group', 'retention', 'offence_scope'], cell_rows='cohort',
    provisional_months=30
) }}

with cohort as (
    {{ kept_rows('int_reoffending_cohort') }}
),

scoped as (
    select kept_sign, period_end, la_code, substance_group, retention_24m as retention, 'all' as offence_scope,
        offences_before, offences_after
    from cohort
    union all
    select kept_sign, period_end, la_code, substance_group, retention_24m, 'trigger',
        trigger_offences_before, trigger_offences_after
    from cohort
),

counts as (
    {{ kept_counts('scoped', ['period_end', 'la_code', 'substance_group', 'retention', 'offence_scope'], [
        [kept_count(), 'cohort'],
        [kept_sum('offences_before'), 'offences_before'],
        [kept_sum('offences_after'), 'offences_after'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('offences_after - offences_before', 'offences_before', 100) }} as percent_change,
        {{ provisional() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, retention, offence_scope,
    cohort, offences_before, offences_after, percent_change, provisional
from expanded
