with periods as (
    select * from {{ ref('int_periods') }} where period_type = 'rolling_12_months'
),

persons as (
    select * from {{ ref('int_persons_in_treatment') }}
),

journeys as (
    select * from {{ ref('int_journeys') }}
),

exits as (
    select
        periods.period_end,
        journeys.person_id,
        journeys.exit_date,
        journeys.exit_type,
        row_number() over (
            partition by periods.period_end, journeys.person_id
            order by journeys.exit_date desc, journeys.start_date desc
        ) as exit_rank
    from periods
    inner join journeys
        on journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
),

person_flags as (
    select
        persons.period_end,
        persons.la_code,
        persons.substance_group,
        exits.exit_type = 'successful' as is_successful,
        exits.exit_type = 'successful' and not exists (
            select 1 from journeys as later
            where later.person_id = persons.person_id
                and later.start_date > exits.exit_date
                and later.start_date < {{ add_months(add_days('exits.exit_date', 1), 6) }}
        ) as is_not_representing
    from persons
    left join exits
        on exits.period_end = persons.period_end and exits.person_id = persons.person_id and exits.exit_rank = 1
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
