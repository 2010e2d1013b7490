{# A floating type every target knows by this name (DuckDB, PostgreSQL, Trino and Spark accept it). #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}
{% macro default__type_double() %}double precision{% endmacro %}
{% macro spark__type_double() %}double{% endmacro %}
{% macro trino__type_double() %}double{% endmacro %}

{# numerator / denominator as a double, null when the denominator is 0 or null. #}
{% macro rate(numerator, denominator, scale=1) -%}
    case when coalesce({{ denominator }}, 0) = 0 then null
         else cast({{ numerator }} as {{ type_double() }}) * {{ scale }} / {{ denominator }} end
{%- endmacro %}

{% macro count_if(condition) -%}
    cast(sum(case when {{ condition }} then 1 else 0 end) as bigint)
{%- endmacro %}

{#
  Aggregate `relation` by `dims` and add England rows (la_code = E92000001) that count every row
  once. `measures` is a list of [expression, name] pairs of aggregate expressions, each a count or
  a sum (a bigint): an England row sums its areas' rows (by_area, a few rows per area) instead of
  aggregating every row of `relation` a second time. Sums of integers are exact, so the figures
  are the same.
#}
{% macro with_england(relation, dims, measures) -%}
    with by_area as (
        select
            {% for d in dims %}{{ d }}, {% endfor %}
            {% for m in measures %}{{ m[0] }} as {{ m[1] }}{{ ", " if not loop.last }}{% endfor %}
        from {{ relation }}
        group by {{ dims | join(', ') }}
    )
    select * from by_area
    union all
    select
        {% for d in dims %}{{ "'E92000001'" if d == 'la_code' else d }} as {{ d }}, {% endfor %}
        {% for m in measures %}cast(sum({{ m[1] }}) as bigint) as {{ m[1] }}{{ ", " if not loop.last }}{% endfor %}
    from by_area
    group by {{ dims | reject('equalto', 'la_code') | join(', ') }}
{%- endmacro %}

{# Rolling-period rows of `relation` repeated for every period type ending on the same date. #}
{% macro expand_periods(relation) -%}
    select
        {{ as_of_date() }} as as_of,
        periods.period_type,
        periods.period_label,
        {{ relation }}.*
    from {{ relation }}
    inner join {{ ref('int_periods') }} as periods on periods.period_end = {{ relation }}.period_end
{%- endmacro %}
