-- Reporting periods: the 12 months ending each month end from the first applied extract to
-- `as_of`; financial years (ending 31 March) and calendar years (31 December) repeat those rows.
-- Every row replaced by each build (strategy replace_all, macros/increments.sql).
{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='append_new_columns') }}
with bounds as (
    select min(extract_date) as first_extract
    from {{ source('events', 'deliveries') }}
    where status = 'applied' and extract_date <= {{ as_of_date() }}
),

months as (
    {{ dbt.generate_series(600) }}
),

ends as (
    select
        {{ dbt.last_day(add_months('bounds.first_extract', 'months.generated_number - 1'), 'month') }} as period_end
    from bounds
    cross join months
),

rolling as (
    select
        cast(period_end as date) as period_end,
        {{ add_days(add_months('period_end', -12), 1) }} as period_start,
        cast(extract(year from period_end) as integer) as period_year,
        cast(extract(month from period_end) as integer) as period_month
    from ends
    where period_end <= {{ as_of_date() }}
)

select
    'rolling_12_months' as period_type,
    {{ dbt.concat([dbt.cast("period_year", dbt.type_string()), "'-'",
                   "lpad(" ~ dbt.cast("period_month", dbt.type_string()) ~ ", 2, '0')"]) }} as period_label,
    period_start,
    period_end
from rolling
union all
select
    'financial_year',
    {{ dbt.concat([dbt.cast("period_year - 1", dbt.type_string()), "'-'",
                   "substring(" ~ dbt.cast("period_year", dbt.type_string()) ~ ", 3, 2)"]) }},
    period_start,
    period_end
from rolling
where period_month = 3
union all
select
    'calendar_year',
    {{ dbt.cast("period_year", dbt.type_string()) }},
    period_start,
    period_end
from rolling
where period_month = 12
