{# The knowledge date of the build: var('as_of'), else the latest applied extract_date. #}
{% macro as_of_date() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none and execute -%}
        {%- set result = run_query("select max(extract_date) from events.deliveries where status = 'applied'") -%}
        {%- set value = result.columns[0].values()[0] -%}
    {%- endif -%}
    cast('{{ value if value is not none else "1900-01-01" }}' as date)
{%- endmacro %}

{#
  The as-of state of one source: the event store's own function (events.<source>_as_of), the only
  way downstream code reads events (docs/event-store.md). The source() call records the lineage.
#}
{% macro events_as_of(source_name) -%}
    {%- set lineage = source('events', source_name) -%}
    events.{{ source_name }}_as_of({{ as_of_date() }})
{%- endmacro %}
