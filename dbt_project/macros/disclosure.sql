{#
  Disclosure control of outcomes.md §7 for one published table.

  - Primary: every count from 1 to 4 is suppressed (null), and every rate built on it.
  - Secondary: within each group of cells that add up to a total someone could know (a published
    England row, the other cells of a row or column group), a count suppressed alone could be
    recovered by subtraction, so the group's smallest non-zero published cell (else a zero, else
    the total itself) is suppressed with it. Groups are given as `groupings` (lists of partition
    columns: the cells sharing those values form one group, the England row included). Suppressing
    a cell in one grouping can leave another grouping with a single suppressed cell, so the passes
    repeat `rounds` times; tests/disclosure_attack.py attacks the result. A grouping is a list of
    columns (for every count) or {'by': [...], 'counts': [...]} when only some counts add up to a
    total published elsewhere.
  - Zeros are published unless picked as a secondary cell.

  dims: the grain columns; counts: count columns; rates: {rate column: [counts it is built on]};
  keep: other columns passed through unchanged.
#}
{% macro disclose(relation, dims, counts, rates={}, keep=[], groupings=[], rounds=4) -%}
{%- set passthrough = ['as_of'] + dims + keep -%}
{%- set carried = passthrough + (rates.keys() | list) -%}
{%- set order_tiebreak = dims | join(', ') -%}
with step_0 as (
    select
        {% for c in carried %}{{ c }}, {% endfor %}
        {% for c in counts %}{{ c }}, {{ c }} between 1 and 4 as {{ c }}__suppressed{{ ", " if not loop.last }}{% endfor %}
    from {{ relation }}
)
{%- set ns = namespace(step=0) %}
{%- for round in range(rounds) %}
{%- for entry in groupings %}
{%- set grouping = entry['by'] if entry is mapping else entry %}
{%- set grouped_counts = entry['counts'] if entry is mapping else counts %}
, step_{{ ns.step + 1 }} as (
    select
        {% for c in carried %}{{ c }}, {% endfor %}
        {% for c in counts -%}
        {{ c }},
        {{ c }}__suppressed {% if c in grouped_counts %}or (
            sum(case when {{ c }}__suppressed then 1 else 0 end) over (partition by {{ grouping | join(', ') }}) = 1
            and row_number() over (
                partition by {{ grouping | join(', ') }}
                order by case when {{ c }}__suppressed then 2 when {{ c }} = 0 then 1 else 0 end, {{ c }},
                    {{ order_tiebreak }}
            ) = 1
        ){% endif %} as {{ c }}__suppressed{{ ", " if not loop.last }}
        {% endfor %}
    from step_{{ ns.step }}
)
{%- set ns.step = ns.step + 1 %}
{%- endfor %}
{%- endfor %}
select
    {% for c in passthrough %}{{ c }}, {% endfor %}
    {% for c in counts -%}
    case when {{ c }}__suppressed then null else {{ c }} end as {{ c }},
    {% endfor %}
    {% for r, inputs in rates.items() -%}
    case when {% for i in inputs %}{{ i }}__suppressed{{ " or " if not loop.last }}{% endfor %} then null
         else {{ r }} end as {{ r }},
    {% endfor %}
    ({% for c in counts %}{{ c }}__suppressed{{ " or " if not loop.last }}{% endfor %}) as suppressed
from step_{{ ns.step }}
{%- endmacro %}
