-- Kept per cell (kept_counts, macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group'], cell_rows='cohort', provisional_months=18
) }}

with cohort as (
    {{ kept_rows('int_sustained_recovery_cohort') }}
),

counts as (
    {{ kept_counts('cohort', ['period_end', 'la_code', 'substance_group'], [
        [kept_count(), 'cohort'],
        [kept_count_if('no_representation'), 'no_representation'],
        [kept_count_if('no_reoffending'), 'no_reoffending'],
        [kept_count_if('alive'), 'alive'],
        [kept_count_if('off_out_of_work_benefits'), 'off_out_of_work_benefits'],
        [kept_count_if('sustained_recovery'), 'sustained_recovery'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('no_representation', 'cohort') }} as no_representation_rate,
        {{ rate('no_reoffending', 'cohort') }} as no_reoffending_rate,
        {{ rate('alive', 'cohort') }} as alive_rate,
        {{ rate('off_out_of_work_benefits', 'cohort') }} as off_out_of_work_benefits_rate,
        {{ rate('sustained_recovery', 'cohort') }} as sustained_recovery_rate,
        {{ provisional() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group,
    cohort, no_representation, no_reoffending, alive, off_out_of_work_benefits, sustained_recovery,
    no_representation_rate, no_reoffending_rate, alive_rate, off_out_of_work_benefits_rate, sustained_recovery_rate,
    provisional
from expanded
