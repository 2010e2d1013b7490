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

{#
  A mart row is provisional while its follow-up window is open: `period_end` plus the mart's
  follow-up in months (provisional_months: the model's config `provisional_months`, the one place
  each mart states it) is after the build's date. Strategy replace_cells recomputes the flag of
  the rows it keeps with the same macro (`months` given). dbt's unit tests compile a model without
  its config: they override provisional_months with the value (models/marts/_marts__unit_tests.yml).
#}
{% macro provisional_months() -%}
    {{ return(config.get('provisional_months')) }}
{%- endmacro %}

{% macro provisional(period_end='period_end', months=none) -%}
    {%- set months = months if months is not none else provisional_months() -%}
    {%- if execute and months is none -%}
        {{ exceptions.raise_compiler_error("provisional() needs the model config provisional_months") }}
    {%- endif -%}
    {{ add_months(period_end, months) }} > {{ as_of_date() }}
{%- endmacro %}
