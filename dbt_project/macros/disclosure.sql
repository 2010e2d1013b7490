{#
  A published table from its cells in the restricted `disclosure` schema, where `outcomes publish`
  (outcomes/disclosure, docs/disclosure.md) has flagged each count to suppress: counts from 1 to 4
  and the secondary cells chosen across every published table so that no suppressed count can be
  recovered, even to an interval narrower than 1-4, from any published total.

  Here a flagged count becomes null, and so does every rate built on it; `suppressed` is true when
  any count of the row is null. dims and keep pass through unchanged.
#}
{% macro controlled(name, dims, counts, rates={}, keep=[]) -%}
select
    as_of,
    {% for c in dims + keep %}{{ c }},
    {% endfor -%}
    {% for c in counts %}case when {{ c }}__suppressed then null else {{ c }} end as {{ c }},
    {% endfor -%}
    {% for r, inputs in rates.items() %}case when {% for i in inputs %}{{ i }}__suppressed{{ " or " if not loop.last }}{% endfor %} then null else {{ r }} end as {{ r }},
    {% endfor -%}
    ({% for c in counts %}{{ c }}__suppressed{{ " or " if not loop.last }}{% endfor %}) as suppressed
from {{ source('disclosure', name) }}
{%- endmacro %}
