-- Counts of the person flags int_persons_in_treatment keeps (incremental by person); kept per
-- cell: an incremental build adds the rows rewritten and subtracts those replaced (kept_counts).
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group'], cell_rows='in_treatment', provisional_months=6
) }}

with person_flags as (
    {{ kept_rows('int_persons_in_treatment') }}
),

counts as (
    {{ kept_counts('person_flags', ['period_end', 'la_code', 'substance_group'], [
        [kept_count(), 'in_treatment'],
        [kept_count_if('is_successful'), 'successful_completions'],
        [kept_count_if('is_not_representing'), 'not_representing'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('not_representing', 'in_treatment') }} as rate,
        {{ provisional() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group,
    in_treatment, successful_completions, not_representing, rate, provisional
from expanded
