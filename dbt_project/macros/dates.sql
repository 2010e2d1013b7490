{# Calendar arithmetic of docs/marts.md, portable across DuckDB, PostgreSQL, Spark and Trino. #}

{# The same day n months later, clipped to the month's end (2024-01-31 + 1 month = 2024-02-29). #}
{% macro add_months(d, n) -%}
    cast({{ dbt.dateadd('month', n, d) }} as date)
{%- endmacro %}

{% macro add_days(d, n) -%}
    cast({{ dbt.dateadd('day', n, d) }} as date)
{%- endmacro %}

{% macro days_between(a, b) -%}
    {{ dbt.datediff(a, b, 'day') }}
{%- endmacro %}

{# Whole years from date of birth to d (null when either is unknown). #}
{% macro age_years(dob, d) -%}
    case when {{ dob }} is null or {{ d }} is null then null else cast(
        extract(year from {{ d }}) - extract(year from {{ dob }})
        - case when extract(month from {{ d }}) * 100 + extract(day from {{ d }})
                    < extract(month from {{ dob }}) * 100 + extract(day from {{ dob }}) then 1 else 0 end
    as integer) end
{%- endmacro %}

{% macro age_band(age) -%}
    case
        when {{ age }} is null then 'unknown'
        when {{ age }} < 20 then '<20'
        when {{ age }} < 30 then '20-29'
        when {{ age }} < 40 then '30-39'
        when {{ age }} < 50 then '40-49'
        when {{ age }} < 70 then '50-69'
        else '70+'
    end
{%- endmacro %}
