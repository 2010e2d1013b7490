with cohort as (
    select * from {{ ref('int_reoffending_cohort') }}
),

counts as (
    {{ with_england('cohort', ['period_end', 'la_code', 'substance_group', 'exit_type_12m'], [
        ['cast(count(*) as bigint)', 'cohort'],
        [count_if('reoffences_12m > 0'), 'reoffenders'],
        ['cast(sum(reoffences_12m) as bigint)', 'reoffences'],
    ]) }}
),

rated as (
    select
        period_end, la_code, substance_group, exit_type_12m as exit_type, cohort, reoffenders, reoffences,
        {{ rate('reoffenders', 'cohort') }} as rate,
        {{ rate('reoffences', 'reoffenders') }} as reoffences_per_reoffender,
        {{ add_months('period_end', 18) }} > {{ as_of_date() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, exit_type,
    cohort, reoffenders, reoffences, rate, reoffences_per_reoffender, provisional
from expanded
