{#
  Incremental builds (docs/marts.md, "Incremental builds"). `outcomes build` decides between a full
  and an incremental build (outcomes/marts/increments.py). For an incremental build it writes the
  records with events or link events new since the last build (marts_state.changed_records) and
  every person those records belong or belonged to (marts_state.changed_persons), and passes the
  last build's knowledge date (macro previous_as_of). Person-level models then recompute only
  those persons; a full build runs dbt with --full-refresh. The tables are read by name, not as
  dbt sources: they exist only for incremental runs, and unit tests never see them.
#}

{% macro changed_persons_relation() -%}marts_state.changed_persons{%- endmacro %}
{% macro changed_records_relation() -%}marts_state.changed_records{%- endmacro %}

{# `column` (a person id) belongs to a person whose records changed since the last build. #}
{% macro is_changed_person(column) -%}
    {{ column }} in (select person_id from {{ changed_persons_relation() }})
{%- endmacro %}

{# `column` (a record id of `source`) is a record with new events or link events. #}
{% macro is_changed_record(column, source) -%}
    {{ column }} in (select record_id from {{ changed_records_relation() }} where source = '{{ source }}')
{%- endmacro %}

{#
  The knowledge date of the last build, on which every period ending later is new: var
  `previous_as_of`, else the environment variable OUTCOMES_PREVIOUS_AS_OF that `outcomes build`
  sets for an incremental build, read only when a model runs (macros/as_of.sql says why).
#}
{% macro previous_as_of() -%}
    {%- set value = var('previous_as_of', none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('OUTCOMES_PREVIOUS_AS_OF', '') or none -%}
    {%- endif -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#
  Rows of a period-level model to compute in an incremental run: every period of the changed
  persons, and the periods new since the last build of everyone else (their earlier periods are
  functions of their unchanged records).
#}
{% macro is_changed_person_or_new_period(person_column, period_column) -%}
    ({{ is_changed_person(person_column) }} or {{ period_column }} > {{ previous_as_of() }})
{%- endmacro %}

{#
  Strategy `replace_changed`: delete+insert where the delete covers every changed key, not only
  the keys of the new rows (a person whose last record was unlinked or retracted has no new rows,
  and dbt's own delete+insert would leave their old ones behind). The model's `changed_rows`
  config is that predicate over the target table (is_changed_person / is_changed_record); a model
  of persons and periods also names its `new_periods` column, whose periods ending after the last
  build are recomputed for everyone and so deleted first too (a rerun never duplicates them). A
  model that recomputes other rows of unchanged persons names their key in `replaced_keys`: the
  rows of every key among the new rows are deleted first too.
#}
{% macro get_incremental_replace_changed_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set predicate = config.get('changed_rows') -%}
    {%- if not predicate -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_changed' needs the model config changed_rows") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set new_periods = config.get('new_periods') -%}
    {%- set replaced_keys = config.get('replaced_keys') %}
    delete from {{ target }} where {{ predicate }}
    {%- if new_periods %} or {{ new_periods }} > {{ previous_as_of() }}{% endif %}
    {%- if replaced_keys %} or {{ replaced_keys }} in (select {{ replaced_keys }} from {{ arg_dict['temp_relation'] }}){% endif %};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{# The row of `relation` (with columns source, record_id) is a record with new events or link events. #}
{% macro is_changed_source_record(relation) -%}
    exists (
        select 1 from {{ changed_records_relation() }} as changed
        where changed.source = {{ relation }}.source and changed.record_id = {{ relation }}.record_id
    )
{%- endmacro %}

{#
  The as-of state of the changed records of one source (marts_state.<source>_changed_as_of, the
  event store's as-of query with the record filter before its window: outcomes/marts/increments.py).
#}
{% macro changed_events_as_of(source_name) -%}
    marts_state.{{ source_name }}_changed_as_of({{ as_of_date() }})
{%- endmacro %}

{#
  Column and table comments (persist_docs) are written when a model's table is created. An
  incremental build (OUTCOMES_PREVIOUS_AS_OF set) inserts into tables a build of this very project
  created (the watermark's project hash, which covers every description, is this one's), so the
  comments on an incremental model's table are already these: it skips the comment statements and
  the column lookup they need (about four statements per model). Every other model, and every model
  of a full build, writes them as dbt does.
#}
{% macro default__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- if env_var('OUTCOMES_PREVIOUS_AS_OF', '') and is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(dbt.default__persist_docs(relation, model, for_relation, for_columns)) }}
{%- endmacro %}
