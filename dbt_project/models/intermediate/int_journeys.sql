-- One row per treatment journey: start, open or exit (date, reason, type), substance group, and
-- the first and exit episodes whose attributes the marts report by.
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id', write_changed_only=true,
    changed_rows=is_changed_person('person_id')
) }}

with episodes as (
    select * from {{ ref('int_episodes') }}
    {% if is_incremental() %}where {{ is_changed_person('person_id') }}{% endif %}
),

ranked as (
    select
        episodes.*,
        row_number() over (partition by journey_id order by start_date, episode_id) as first_rank,
        row_number() over (
            partition by journey_id order by discharge_date desc, episode_id desc
        ) as exit_rank
    from episodes
),

substances as (
    select journey_id, substance_1 as substance from episodes
    union all
    select journey_id, substance_2 from episodes where substance_2 is not null
    union all
    select journey_id, substance_3 from episodes where substance_3 is not null
),

substance_flags as (
    select
        journey_id,
        max(case when substance in ('heroin', 'methadone_illicit', 'other_opiate') then 1 else 0 end) as has_opiate,
        max(case when substance = 'alcohol' then 1 else 0 end) as has_alcohol,
        max(case when substance <> 'alcohol' then 1 else 0 end) as has_other
    from substances
    group by journey_id
),

journeys as (
    select
        journey_id,
        min(person_id) as person_id,
        min(journey_number) as journey_number,
        min(start_date) as start_date,
        max(case when discharge_date is null then 1 else 0 end) as is_open
    from episodes
    group by journey_id
),

with_next as (
    select
        journeys.*,
        lead(start_date) over (partition by person_id order by journey_number) as next_journey_start
    from journeys
)

select
    j.person_id,
    j.journey_id,
    j.journey_number,
    j.start_date,
    j.is_open = 1 as is_open,
    case when j.is_open = 1 then null else x.discharge_date end as exit_date,
    case when j.is_open = 1 then null else x.discharge_reason end as exit_reason,
    case
        when j.is_open = 1 then null
        when x.discharge_reason in ('completed_drug_free', 'completed_alcohol_free', 'completed_occasional_user')
            then 'successful'
        when x.discharge_reason in ('transferred_not_in_custody', 'transferred_in_custody') then 'transferred'
        when x.discharge_reason = 'died' then 'died'
        else 'unsuccessful'
    end as exit_type,
    case
        when s.has_opiate = 1 then 'opiate'
        when s.has_alcohol = 1 and s.has_other = 1 then 'non_opiate_and_alcohol'
        when s.has_alcohol = 1 then 'alcohol_only'
        else 'non_opiate_only'
    end as substance_group,
    j.next_journey_start,
    f.la_code as first_la_code,
    f.setting as first_setting,
    f.housing_status as first_housing_status,
    f.age_at_start as first_age_at_start,
    case when j.is_open = 1 then null else x.episode_id end as exit_episode_id,
    case when j.is_open = 1 then null else x.la_code end as exit_la_code,
    case when j.is_open = 1 then null else x.setting end as exit_setting,
    case when j.is_open = 1 then null else x.housing_status end as exit_housing_status,
    case when j.is_open = 1 then null else x.age_at_start end as exit_age_at_start
from with_next as j
inner join ranked as f on f.journey_id = j.journey_id and f.first_rank = 1
inner join ranked as x on x.journey_id = j.journey_id and x.exit_rank = 1
inner join substance_flags as s on s.journey_id = j.journey_id
