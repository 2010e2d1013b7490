-- Kept per cell (kept_counts, macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group', 'exit_type'], cell_rows='cohort', provisional_months=18
) }}

with kept as (
    {{ kept_rows('int_reoffending_cohort') }}
),

cohort as (
    select kept_sign, period_end, la_code, substance_group, exit_type_12m as exit_type, reoffences_12m from kept
),

counts as (
    {{ kept_counts('cohort', ['period_end', 'la_code', 'substance_group', 'exit_type'], [
        [kept_count(), 'cohort'],
        [kept_count_if('reoffences_12m > 0'), 'reoffenders'],
        [kept_sum('reoffences_12m'), 'reoffences'],
    ]) }}
),

rated as (
    select
        period_end, la_code, substance_group, exit_type, cohort, reoffenders, reoffences,
        {{ rate('reoffenders', 'cohort') }} as rate,
        {{ rate('reoffences', 'reoffenders') }} as reoffences_per_reoffender,
        {{ provisional() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, exit_type,
    cohort, reoffenders, reoffences, rate, reoffences_per_reoffender, provisional
from expanded
