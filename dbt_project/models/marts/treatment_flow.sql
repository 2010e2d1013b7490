-- Treatment flow (outcomes.md §5). Each count takes its dimensions from one episode: persons in
-- treatment from their latest episode in the period, starts from the journey's first episode,
-- exits from its exit episode (docs/marts.md §5).
{#
  Kept per cell (kept_counts, macros/increments.sql). Effective treatment of an open journey
  depends on as_of: a row added this run counts it as of the build's date, a row replaced as of
  the last build's, and an open journey's start rows the table kept (not added this run) that
  reached 84 days since the last build are counted again both ways (+1 as of now, -1 as of then).
#}
{{ config(
    materialized='incremental', incremental_strategy='replace_cells', on_schema_change='append_new_columns',
    cells=['period_end', 'la_code', 'substance_group', 'setting', 'housing_status', 'age_band'],
    cell_rows='in_treatment + new_journeys + exits_successful + exits_unsuccessful + exits_transferred + exits_died'
) }}

with in_treatment as (
    select kept_sign, period_end, la_code, substance_group, setting, housing_status, age_band,
        1 as in_treatment, 0 as new_journeys, 0 as effective_treatment,
        0 as exits_successful, 0 as exits_unsuccessful, 0 as exits_transferred, 0 as exits_died
    from ({{ kept_rows('int_persons_in_treatment') }}) as kept
),

-- Journey starts and exits per period, kept per person by int_journey_flows (incremental).
journey_flows as (
    {{ kept_rows('int_journey_flows') }}
    {%- if is_incremental() %}
    union all
    select signs.kept_sign, open_starts.*
    from {{ ref('int_journey_flows') }} as open_starts
    cross join (select 1 as kept_sign union all select -1) as signs
    where open_starts.flow = 'start' and open_starts.is_effective is null
        and not exists (
            select 1 from {{ added_relation('int_journey_flows') }} as added
            where added.period_end = open_starts.period_end and added.journey_id = open_starts.journey_id
                and added.flow = open_starts.flow
        )
        and {{ days_between('open_starts.start_date', previous_as_of()) }} < 84
        and {{ days_between('open_starts.start_date', as_of_date()) }} >= 84
    {%- endif %}
),

starts as (
    select
        kept_sign, period_end, la_code, substance_group, setting, housing_status, age_band,
        0, 1,
        case
            when is_effective then 1
            {%- if is_incremental() %}
            when is_effective is null and kept_sign < 0 and {{ days_between('start_date', previous_as_of()) }} >= 84 then 1
            when is_effective is null and kept_sign > 0 and {{ days_between('start_date', as_of_date()) }} >= 84 then 1
            {%- else %}
            when is_effective is null and {{ days_between('start_date', as_of_date()) }} >= 84 then 1
            {%- endif %}
            else 0
        end,
        0, 0, 0, 0
    from journey_flows
    where flow = 'start'
),

exits as (
    select
        kept_sign, period_end, la_code, substance_group, setting, housing_status, age_band,
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
    {{ kept_counts('flows', ['period_end', 'la_code', 'substance_group', 'setting', 'housing_status', 'age_band'], [
        [kept_sum('in_treatment'), 'in_treatment'],
        [kept_sum('new_journeys'), 'new_journeys'],
        [kept_sum('exits_successful'), 'exits_successful'],
        [kept_sum('exits_unsuccessful'), 'exits_unsuccessful'],
        [kept_sum('exits_transferred'), 'exits_transferred'],
        [kept_sum('exits_died'), 'exits_died'],
        [kept_sum('effective_treatment'), 'effective_treatment'],
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
