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
  Strategy `replace_differing`, for the marts and research tables (docs/marts.md, "Incremental
  builds"): the model's select is computed in full, as in a full build, but only the rows that
  differ from the table are written. Writing is what costs in these tables: each carries its grain
  as a primary key, and inserting a row into the key's index costs several times computing it.
  The new rows' grain is checked first (a repeated key fails the build, as the primary key fails
  a full one). The stamp column (config `as_of_column`, the build's date in every row of a mart)
  is set for every row, an update in place of a column outside the key; then every row of the
  table whose key the new rows lack, or whose other columns differ from the new row of its key
  (null-safe: `is not distinct from`), is deleted, and every new row whose key the table no
  longer holds is inserted. The table is then the model's rows exactly: a row left has the key
  and every value of a new row, and every other new row is inserted. The key is the model's
  `primary_key` constraint (its contract).
#}
{% macro get_incremental_replace_differing_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set temp = arg_dict['temp_relation'] -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set keys = [] -%}
    {%- for constraint in model.get('constraints', []) -%}
        {%- if constraint.get('type') == 'primary_key' -%}{%- do keys.extend(constraint.get('columns')) -%}{%- endif -%}
    {%- endfor -%}
    {%- if not keys -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_differing' needs a primary_key constraint") }}
    {%- endif -%}
    {%- set key_list = keys | join(', ') -%}
    {%- set repeated = run_query('select count(*) from (select ' ~ key_list ~ ' from ' ~ temp ~ ' group by ' ~ key_list ~ ' having count(*) > 1) as repeated') -%}
    {%- if repeated.columns[0].values()[0] > 0 -%}
        {{ exceptions.raise_compiler_error("the grain (" ~ key_list ~ ") of " ~ target ~ " repeats in the new rows") }}
    {%- endif -%}
    {%- set same_key = [] -%}
    {%- for k in keys -%}{%- do same_key.append('new_row.' ~ k ~ ' = old_row.' ~ k) -%}{%- endfor -%}
    {%- set differs = [] -%}
    {%- for c in names if c not in keys -%}{%- do differs.append('new_row.' ~ adapter.quote(c) ~ ' is distinct from old_row.' ~ adapter.quote(c)) -%}{%- endfor -%}
    {%- set stamp = config.get('as_of_column') -%}
    {%- if stamp %}
    update {{ target }} set {{ stamp }} = {{ as_of_date() }} where {{ stamp }} <> {{ as_of_date() }};
    {%- endif %}
    delete from {{ target }} where ({{ key_list }}) in (
        select {{ key_list }} from {{ target }} as old_row
        where not exists (select 1 from {{ temp }} as new_row where {{ same_key | join(' and ') }})
        union all
        select {% for k in keys %}old_row.{{ k }}{{ ", " if not loop.last }}{% endfor %}
        from {{ target }} as old_row inner join {{ temp }} as new_row on {{ same_key | join(' and ') }}
        where {{ differs | join(' or ') if differs else 'false' }}
    );
    insert into {{ target }} ({{ get_quoted_csv(names) }})
    select {% for c in names %}new_row.{{ adapter.quote(c) }}{{ ", " if not loop.last }}{% endfor %}
    from {{ temp }} as new_row
    where not exists (select 1 from {{ target }} as old_row where {{ same_key | join(' and ') }})
{%- endmacro %}
