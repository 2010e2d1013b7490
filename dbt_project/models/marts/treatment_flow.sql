-- Treatment flow (outcomes.md §5). Each count takes its dimensions from one episode: persons in
-- treatment from their latest episode in the period, starts from the journey's first episode,
-- exits from its exit episode (docs/marts.md §5).
with in_treatment as (
    select period_end, la_code, substance_group, setting, housing_status, age_band,
        1 as in_treatment, 0 as new_journeys, 0 as effective_treatment,
        0 as exits_successful, 0 as exits_unsuccessful, 0 as exits_transferred, 0 as exits_died
    from {{ ref('int_persons_in_treatment') }}
),

-- Journey starts and exits per period, kept per person by int_journey_flows (incremental).
journey_flows as (
    select * from {{ ref('int_journey_flows') }}
),

starts as (
    select
        period_end, la_code, substance_group, setting, housing_status, age_band,
        0, 1,
        case
            when is_effective then 1
            when is_effective is null and {{ days_between('start_date', as_of_date()) }} >= 84 then 1
            else 0
        end,
        0, 0, 0, 0
    from journey_flows
    where flow = 'start'
),

exits as (
    select
        period_end, la_code, substance_group, setting, housing_status, age_band,
        0, 0, 0,
        case when exit_type = 'successful' then 1 else 0 end,
        case when exit_type = 'unsuccessful' then 1 else 0 end,
        case when exit_type = 'transferred' then 1 else 0 end,
        case when exit_type = 'died' then 1 else 0 end
    from journey_flows
    where flow = 'exit'
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
