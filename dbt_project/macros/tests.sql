{# A combination of columns is unique (our own: no dbt hub packages). #}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{# No published count lies between 1 and 4 (outcomes.md §7). #}
{% test no_small_counts(model, columns) %}
    select * from {{ model }}
    where {% for c in columns %}{{ c }} between 1 and 4{{ " or " if not loop.last }}{% endfor %}
{% endtest %}
