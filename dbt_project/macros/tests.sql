{# A combination of columns is unique (our own: no dbt hub packages). #}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#
  None of `columns` is null: one query for the columns a model must always fill, instead of a
  not_null test (a dbt node, a query) per column. Marts, research and published tables have
  contracts and carry not_null constraints instead.
#}
{% test not_null_columns(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    where {% for c in columns %}{{ c }} is null{{ " or " if not loop.last }}{% endfor %}
{% endtest %}

{# No published count lies between 1 and 4 (outcomes.md §7). #}
{% test no_small_counts(model, columns) %}
    select * from {{ model }}
    where {% for c in columns %}{{ c }} between 1 and 4{{ " or " if not loop.last }}{% endfor %}
{% endtest %}

{#
  Data tests in an incremental build check the rows it wrote (docs/marts.md, "Incremental builds").
  dbt wraps the model under every generic test in get_where_subquery(); this one adds, in an
  incremental build only (OUTCOMES_PREVIOUS_AS_OF set) and for a model of strategy
  `replace_changed`, the rows that build rewrote: its `changed_rows` predicate, and its periods new
  since the last build (`new_periods`). The other rows are as the last build left them, and its
  tests passed on them (a build's watermark is written only after its tests pass; the project, so
  the tests, are the same). A row-wise test (not_null, not_null_columns, accepted_values) then needs only the rewritten
  rows; a uniqueness test (unique, unique_combination) every row whose key a rewritten row has: a
  duplicate of an untouched row with a rewritten one is caught, two untouched rows passed before.
  A model with `replaced_keys` (rows rewritten for keys found in the new rows), any other test, and
  every test of a full build check the whole table.
#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- set scope = rewritten_rows_scope(relation) if execute else '' -%}
    {%- if scope -%}{%- do conditions.append('(' ~ scope ~ ')') -%}{%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro rewritten_rows_scope(relation) -%}
    {%- if not env_var('OUTCOMES_PREVIOUS_AS_OF', '') or not model.get('attached_node') -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set tested = graph.nodes.get(model.attached_node) -%}
    {%- if tested is none or tested.config.get('incremental_strategy') != 'replace_changed'
          or tested.config.get('replaced_keys') or not tested.config.get('changed_rows') -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set rewritten = '(' ~ tested.config.get('changed_rows') ~ ')' -%}
    {%- if tested.config.get('new_periods') -%}
        {%- set rewritten = rewritten ~ ' or ' ~ tested.config.get('new_periods') ~ ' > ' ~ previous_as_of() -%}
    {%- endif -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- if test.get('name') in ('not_null', 'not_null_columns', 'accepted_values') -%}
        {%- do return(rewritten) -%}
    {%- elif test.get('name') == 'unique' -%}
        {%- set keys = [kwargs.get('column_name')] -%}
    {%- elif test.get('name') == 'unique_combination' -%}
        {%- set keys = kwargs.get('columns') -%}
    {%- else -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- do return('(' ~ keys | join(', ') ~ ') in (select ' ~ keys | join(', ') ~ ' from ' ~ relation ~ ' where ' ~ rewritten ~ ')') -%}
{%- endmacro %}
