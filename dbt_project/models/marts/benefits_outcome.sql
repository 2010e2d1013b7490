-- Kept per cell (kept_counts, macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group', 'exit_type'], cell_rows='cohort', provisional_months=12
) }}

with cohort as (
    {{ kept_rows('int_benefits_cohort') }}
),

counts as (
    {{ kept_counts('cohort', ['period_end', 'la_code', 'substance_group', 'exit_type'], [
        [kept_count(), 'cohort'],
        [kept_count_if('oow_at_start'), 'oow_at_start'],
        [kept_count_if('oow_at_6_months'), 'oow_at_6_months'],
        [kept_count_if('oow_at_12_months'), 'oow_at_12_months'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('oow_at_start', 'cohort') }} as rate_at_start,
        {{ rate('oow_at_6_months', 'cohort') }} as rate_at_6_months,
        {{ rate('oow_at_12_months', 'cohort') }} as rate_at_12_months,
        {{ provisional() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, exit_type,
    cohort, oow_at_start, oow_at_6_months, oow_at_12_months, rate_at_start, rate_at_6_months, rate_at_12_months,
    provisional
from expanded
