-- Persons in treatment in each rolling period (an episode overlaps it), with the person's latest
-- episode in the period: its area, setting, housing and age, and its journey's substance group;
-- and successful_completion's person flags (outcomes.md §1): the person's latest journey exit in
-- the period (by exit date, then journey start) is successful, and then no re-presentation within
-- 6 months of it. The mart only counts these rows.
-- Incremental by person: an incremental build recomputes the changed persons, and everyone's
-- periods new since the last build (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id'), new_periods='period_end',
    keep_replaced=true, post_hook="{{ drop_replaced() }}"
) }}

with periods as (
    select * from {{ ref('int_periods') }} where period_type = 'rolling_12_months'
),

episodes as (
    select * from {{ ref('int_episodes') }}
),

overlapping as (
    select
        periods.period_end,
        episodes.*,
        row_number() over (
            partition by periods.period_end, episodes.person_id
            order by episodes.start_date desc, episodes.episode_id desc
        ) as latest_rank
    from periods
    inner join episodes
        on episodes.start_date <= periods.period_end
        and (episodes.discharge_date is null or episodes.discharge_date >= periods.period_start)
        {% if is_incremental() %}and {{ is_changed_person_or_new_period('episodes.person_id', 'periods.period_end') }}{% endif %}
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
        {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}
)

select
    overlapping.period_end,
    overlapping.person_id,
    overlapping.episode_id,
    overlapping.journey_id,
    overlapping.la_code,
    overlapping.setting,
    overlapping.housing_status,
    {{ age_band('overlapping.age_at_start') }} as age_band,
    journeys.substance_group,
    exits.exit_type = 'successful' as is_successful,
    exits.exit_type = 'successful' and not exists (
        select 1 from journeys as later
        where later.person_id = overlapping.person_id
            and later.start_date > exits.exit_date
            and later.start_date < {{ add_months(add_days('exits.exit_date', 1), 6) }}
    ) as is_not_representing
from overlapping
inner join journeys on journeys.journey_id = overlapping.journey_id
left join exits
    on exits.period_end = overlapping.period_end and exits.person_id = overlapping.person_id and exits.exit_rank = 1
where overlapping.latest_rank = 1
