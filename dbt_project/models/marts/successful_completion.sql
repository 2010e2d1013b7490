-- Counts of the person flags int_persons_in_treatment keeps (incremental by person).
with person_flags as (
    select period_end, la_code, substance_group, is_successful, is_not_representing
    from {{ ref('int_persons_in_treatment') }}
),

counts as (
    {{ with_england('person_flags', ['period_end', 'la_code', 'substance_group'], [
        ['cast(count(*) as bigint)', 'in_treatment'],
        [count_if('is_successful'), 'successful_completions'],
        [count_if('is_not_representing'), 'not_representing'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('not_representing', 'in_treatment') }} as rate,
        {{ add_months('period_end', 6) }} > {{ as_of_date() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group,
    in_treatment, successful_completions, not_representing, rate, provisional
from expanded
