-- Treatment flow (outcomes.md §5). Each count takes its dimensions from one episode: persons in
-- treatment from their latest episode in the period, starts from the journey's first episode,
-- exits from its exit episode (docs/marts.md §5).
with periods as (
    select * from {{ ref('int_periods') }} where period_type = 'rolling_12_months'
),

journeys as (
    select * from {{ ref('int_journeys') }}
),

in_treatment as (
    select period_end, la_code, substance_group, setting, housing_status, age_band,
        1 as in_treatment, 0 as new_journeys, 0 as effective_treatment,
        0 as exits_successful, 0 as exits_unsuccessful, 0 as exits_transferred, 0 as exits_died
    from {{ ref('int_persons_in_treatment') }}
),

starts as (
    select
        periods.period_end, journeys.first_la_code, journeys.substance_group, journeys.first_setting,
        journeys.first_housing_status, {{ age_band('journeys.first_age_at_start') }},
        0, 1,
        case
            when journeys.exit_type = 'successful' then 1
            when {{ days_between('journeys.start_date', 'coalesce(journeys.exit_date, ' ~ as_of_date() ~ ')') }} >= 84
                then 1
            else 0
        end,
        0, 0, 0, 0
    from periods
    inner join journeys
        on journeys.start_date >= periods.period_start and journeys.start_date <= periods.period_end
),

exits as (
    select
        periods.period_end, journeys.exit_la_code, journeys.substance_group, journeys.exit_setting,
        journeys.exit_housing_status, {{ age_band('journeys.exit_age_at_start') }},
        0, 0, 0,
        case when journeys.exit_type = 'successful' then 1 else 0 end,
        case when journeys.exit_type = 'unsuccessful' then 1 else 0 end,
        case when journeys.exit_type = 'transferred' then 1 else 0 end,
        case when journeys.exit_type = 'died' then 1 else 0 end
    from periods
    inner join journeys
        on journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
),

flows as (
    select * from in_treatment
    union all
    select * from starts
    union all
    select * from exits
),

counts as (
    {{ with_england('flows', ['period_end', 'la_code', 'substance_group', 'setting', 'housing_status', 'age_band'], [
        ['cast(sum(in_treatment) as bigint)', 'in_treatment'],
        ['cast(sum(new_journeys) as bigint)', 'new_journeys'],
        ['cast(sum(exits_successful) as bigint)', 'exits_successful'],
        ['cast(sum(exits_unsuccessful) as bigint)', 'exits_unsuccessful'],
        ['cast(sum(exits_transferred) as bigint)', 'exits_transferred'],
        ['cast(sum(exits_died) as bigint)', 'exits_died'],
        ['cast(sum(effective_treatment) as bigint)', 'effective_treatment'],
    ]) }}
),

expanded as (
    {{ expand_periods('counts') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, setting, housing_status, age_band,
    in_treatment, new_journeys, exits_successful, exits_unsuccessful, exits_transferred, exits_died,
    effective_treatment
from expanded
