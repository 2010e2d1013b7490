-- Every row replaced by each build (strategy replace_all, macros/increments.sql).
{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='append_new_columns') }}
with follow_up as (
    select * from {{ ref('int_exit_follow_up') }}
),

counts as (
    select
        exit_year, exit_type, substance_group, time_since_exit,
        cast(sum(days_at_risk) as bigint) as days_at_risk,
        {{ count_if('died') }} as deaths_all_cause,
        {{ count_if('died_drug_poisoning') }} as deaths_drug_poisoning
    from follow_up
    group by exit_year, exit_type, substance_group, time_since_exit
)

select
    {{ as_of_date() }} as as_of,
    exit_year,
    exit_type,
    substance_group,
    time_since_exit,
    cast(days_at_risk as {{ type_double() }}) / 365.25 as person_years,
    deaths_all_cause,
    deaths_drug_poisoning,
    {{ rate('deaths_all_cause', 'days_at_risk', 365250) }} as rate_all_cause_per_1000py,
    {{ rate('deaths_drug_poisoning', 'days_at_risk', 365250) }} as rate_drug_poisoning_per_1000py
from counts
