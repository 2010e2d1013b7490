{#
  The knowledge date of the build: var('as_of') (unit tests set it), else the environment variable
  OUTCOMES_AS_OF (`outcomes build` sets it: outcomes/marts/dbt.py), else the latest applied
  extract_date. The environment is read only when a model runs, never while dbt parses: the parsed
  project does not depend on the date, and dbt's partial parsing keeps it from build to build (a
  var passed with --vars would make dbt re-parse the whole project each time it changes).
#}
{% macro as_of_date() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('OUTCOMES_AS_OF', '') or none -%}
    {%- endif -%}
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
