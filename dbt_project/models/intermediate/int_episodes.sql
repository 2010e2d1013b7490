-- Episodes grouped into journeys (docs/marts.md): in (start, episode_id) order an episode starts
-- a new journey when it begins more than 21 days after the latest discharge of every earlier
-- episode, an open earlier episode counting as never discharged. Journeys never interleave, so
-- the running maximum over all earlier episodes is the current journey's latest discharge.
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id', write_changed_only=true,
    changed_rows=is_changed_person('person_id')
) }}

with episodes as (
    select * from {{ ref('stg_treatment__episodes') }}
    {% if is_incremental() %}where {{ is_changed_person('person_id') }}{% endif %}
),

ordered as (
    select
        episodes.*,
        max(coalesce(discharge_date, cast('9999-12-31' as date))) over (
            partition by person_id order by start_date, episode_id
            rows between unbounded preceding and 1 preceding
        ) as earlier_latest_discharge
    from episodes
),

flagged as (
    select
        ordered.*,
        case
            when earlier_latest_discharge is null then 1
            when {{ days_between('earlier_latest_discharge', 'start_date') }} > 21 then 1
            else 0
        end as starts_journey
    from ordered
),

numbered as (
    select
        flagged.*,
        sum(starts_journey) over (
            partition by person_id order by start_date, episode_id
            rows between unbounded preceding and current row
        ) as journey_number
    from flagged
)

select
    episode_id,
    person_id,
    {{ dbt.concat(["person_id", "'/'", dbt.cast("journey_number", dbt.type_string())]) }} as journey_id,
    cast(journey_number as integer) as journey_number,
    la_code,
    setting,
    housing_status,
    injecting_status,
    start_date,
    discharge_date,
    discharge_reason,
    substance_1,
    substance_2,
    substance_3,
    sex,
    age_at_start
from numbered
