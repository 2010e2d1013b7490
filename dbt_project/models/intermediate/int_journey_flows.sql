-- treatment_flow's journey rows (outcomes.md §5): a `start` row per journey and rolling period in
-- which it starts, with its first episode's area, setting, housing and age band, and an `exit` row
-- per journey and period in which it exits, with its exit episode's. The mart only counts these
-- rows (and int_persons_in_treatment's).
-- `is_effective` (effective treatment, start rows): a successful exit, or 84 days or more from start
-- to exit; null while the journey is open, as it then depends on as_of (the mart decides it).
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

journeys as (
    select * from {{ ref('int_journeys') }}
)

{#-
  An incremental build writes the changed persons' rows of every period and everyone's rows of the
  periods new since the last build: the changed persons' journeys joined with every period, and
  the others' with the new periods only (the same rows as the join of all with that condition,
  without the range join of every journey with every period first).
-#}
{%- if is_incremental() %},

new_periods as (
    select * from periods where period_end > {{ previous_as_of() }}
),

changed_journeys as (
    select * from journeys where {{ is_changed_person('person_id') }}
),

unchanged_journeys as (
    -- not exists, not `not in`: no NULL semantics to trip on, and PostgreSQL keeps it a hash anti-join
    -- however many persons changed
    select * from journeys
    where not exists (select 1 from {{ changed_persons_relation() }} as c where c.person_id = journeys.person_id)
)
{%- set pairs = [('periods', 'changed_journeys'), ('new_periods', 'unchanged_journeys')] %}
{%- else %}
{%- set pairs = [('periods', 'journeys')] %}
{%- endif %}

{% for pair in pairs -%}
select
    periods.period_end,
    journeys.person_id,
    journeys.journey_id,
    'start' as flow,
    journeys.first_la_code as la_code,
    journeys.substance_group,
    journeys.first_setting as setting,
    journeys.first_housing_status as housing_status,
    {{ age_band('journeys.first_age_at_start') }} as age_band,
    journeys.start_date,
    journeys.exit_type,
    case
        when journeys.exit_type = 'successful' then true
        when journeys.exit_date is null then null
        else {{ days_between('journeys.start_date', 'journeys.exit_date') }} >= 84
    end as is_effective
from {{ pair[0] }} as periods
inner join {{ pair[1] }} as journeys
    on journeys.start_date >= periods.period_start and journeys.start_date <= periods.period_end

union all


select
    periods.period_end,
    journeys.person_id,
    journeys.journey_id,
    'exit',
    journeys.exit_la_code,
    journeys.substance_group,
    journeys.exit_setting,
    journeys.exit_housing_status,
    {{ age_band('journeys.exit_age_at_start') }},
    journeys.start_date,
    journeys.exit_type,
    null
from {{ pair[0] }} as periods
inner join {{ pair[1] }} as journeys
    on journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
{% if not loop.last %}
union all
{% endif %}
{%- endfor %}
