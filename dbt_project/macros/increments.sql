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
    {%- if config.get('keep_replaced') or config.get('write_changed_only') %}
    {%- if replaced_keys -%}
        {{ exceptions.raise_compiler_error("keep_replaced or write_changed_only and replaced_keys do not go together") }}
    {%- endif -%}
    {{ write_changed_rows(target, arg_dict['temp_relation'], columns,
        predicate ~ (' or ' ~ new_periods ~ ' > ' ~ previous_as_of() if new_periods else ''),
        config.get('keep_replaced')) }}
    {%- else %}
    delete from {{ target }} where {{ predicate }}
    {%- if new_periods %} or {{ new_periods }} > {{ previous_as_of() }}{% endif %}
    {%- if replaced_keys %} or {{ replaced_keys }} in (select {{ replaced_keys }} from {{ arg_dict['temp_relation'] }}){% endif %};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
    {%- endif %}
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

{#
  Marts kept per cell (docs/marts.md, "Incremental builds"). A person-level model with config
  `keep_replaced=true` writes only the rows that differ (write_changed_rows): the rows it deletes,
  which the last build's marts counted, are copied to marts_state.<model>__replaced, the rows it
  inserts to marts_state.<model>__added. A mart then adds the added rows and subtracts the replaced
  ones (kept_rows, `kept_sign` +1 or -1) to the counts it holds, cell by cell (kept_counts), and
  rewrites only the cells they fall in (strategy replace_cells). Every other build of the model
  drops the copies (drop_replaced, a post-hook), so a mart can never read one left by an earlier
  build, and `outcomes build` drops every copy when the build ends (increments.finish()).
#}
{% macro replaced_relation(model_name) -%}marts_state.{{ model_name }}__replaced{%- endmacro %}
{% macro added_relation(model_name) -%}marts_state.{{ model_name }}__added{%- endmacro %}

{#
  The write of a model that writes only the rows that differ (config `keep_replaced`, the models kept
  per cell, or `write_changed_only`), in place of replace_changed's delete and insert. The rows in
  scope (`predicate`: the changed persons' and the new periods') that the model's new rows do not
  repeat column for column are replaced (deleted by the model's grain, meta `grain` or its primary
  key: no two rows of the table share it; a null in a grain column the model does not declare filled
  matches a null); the new rows the table does not hold already are added (inserted). A row the
  build recomputes unchanged (most of a changed person's earlier periods) is neither deleted nor
  written again: the table's writes, and the checkpoint that stores them, are the rows that changed.
  The table ends with exactly the rows a delete of the scope and an insert of the new rows would
  leave: `except`, which compares nulls as equal, is the multiset difference here, as the grain
  makes every row of the table and of the new rows distinct (set `except` is a hash anti-join on
  DuckDB; `except all` numbers the copies of every row by a window over all columns first, about
  four times the CPU: branch dbt13, docs/marts.md). New rows that break the grain (a key repeated
  by mistake) are all inserted besides, for the model's grain check to catch, as a delete and
  insert would. Temporary names carry the model's schema as well as its name.
  With `kept` (keep_replaced) the replaced and added rows stay, for the marts, in
  marts_state.<model>__replaced and __added (the marts add the added rows and subtract the replaced
  ones: kept_rows); otherwise they are temporary tables of the model's own connection.
#}
{% macro write_changed_rows(target, temp, columns, predicate, kept) -%}
    {%- set grain = ((config.get('meta') or {}).get('grain') or []) | list -%}
    {%- for c in model.get('constraints', []) if not grain and c.get('type') == 'primary_key' -%}
        {%- do grain.extend(c.get('columns')) -%}
    {%- endfor -%}
    {%- if not grain -%}
        {{ exceptions.raise_compiler_error("writing only the rows that differ needs the model's meta grain or primary key") }}
    {%- endif -%}
    {#- A grain column the model declares filled (meta not_null, a primary key, a not_null
        constraint) is matched by `=`, any other by `is not distinct from`: a null in it matches a
        null (the delete is by the replaced rows' grain, and `in` or `=` never match a null). -#}
    {%- set filled = ((config.get('meta') or {}).get('not_null') or []) | list -%}
    {%- for c in model.get('constraints', []) if c.get('type') == 'primary_key' -%}
        {%- do filled.extend(c.get('columns')) -%}
    {%- endfor -%}
    {%- for name, column in (model.get('columns') or {}).items() -%}
        {%- for c in column.get('constraints', []) if c.get('type') in ('not_null', 'primary_key') -%}
            {%- do filled.append(name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set keys = grain | join(', ') -%}
    {%- set temp_name = target.schema ~ '__' ~ target.identifier -%}
    {%- set held = temp_name ~ '__dbt_held' -%}
    {%- set replaced = replaced_relation(target.identifier) if kept else temp_name ~ '__dbt_replaced' -%}
    {%- set added = added_relation(target.identifier) if kept else temp_name ~ '__dbt_added' -%}
    {%- set kind = 'table' if kept else 'temporary table' %}
    drop table if exists {{ replaced }};
    drop table if exists {{ added }};
    drop table if exists {{ held }};
    create temporary table {{ held }} as select {{ columns }} from {{ target }} where {{ predicate }};
    create {{ kind }} {{ replaced }} as
        select {{ columns }} from {{ held }} except select {{ columns }} from {{ temp }};
    create {{ kind }} {{ added }} as
        select * from (select {{ columns }} from {{ temp }} except select {{ columns }} from {{ held }}) as fresh
        union all
        select {{ columns }} from {{ temp }} as recomputed where exists (
            select 1 from (select {{ keys }} from {{ temp }} group by {{ keys }} having count(*) > 1) as doubled
            where {% for k in grain %}recomputed.{{ k }} {{ '=' if k in filled else 'is not distinct from' }} doubled.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
        );
    drop table {{ held }};
    delete from {{ target }} as kept where exists (
        select 1 from {{ replaced }} as gone
        where {% for k in grain %}kept.{{ k }} {{ '=' if k in filled else 'is not distinct from' }} gone.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
    );
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ added }}
    {%- if not kept %};
    drop table {{ replaced }}
    {%- if not (config.get('meta') or {}).get('grain') %};
    drop table {{ added }}
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{#
  The rows the write of the running model inserted (write_changed_rows), in an incremental build of
  a model that writes only the rows that differ; '' otherwise. The model's grain check (check_rows)
  reads them, and drops the temporary table of a `write_changed_only` model when done.
#}
{% macro written_rows_relation() -%}
    {%- if not is_incremental() or not env_var('OUTCOMES_PREVIOUS_AS_OF', '')
          or not (config.get('keep_replaced') or config.get('write_changed_only')) -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(added_relation(this.identifier) if config.get('keep_replaced')
              else this.schema ~ '__' ~ this.identifier ~ '__dbt_added') }}
{%- endmacro %}

{% macro drop_replaced() -%}
    {%- if execute and not is_incremental() -%}
        drop table if exists {{ replaced_relation(this.identifier) }};
        drop table if exists {{ added_relation(this.identifier) }}
    {%- endif -%}
{%- endmacro %}

{#
  The rows of person-level model `model_name` (incremental by person and new period, with
  keep_replaced) a mart counts, with `kept_sign`: every row (+1) in a full build; in an incremental
  one the rows this run added (+1) and the rows it replaced (-1) (write_changed_rows).
#}
{% macro kept_rows(model_name) -%}
    {%- set relation = ref(model_name) -%}
    {%- if is_incremental() %}
    select 1 as kept_sign, * from {{ added_relation(model_name) }}
    union all
    select -1 as kept_sign, * from {{ replaced_relation(model_name) }}
    {%- else %}
    select 1 as kept_sign, * from {{ relation }}
    {%- endif %}
{%- endmacro %}

{# Measures of kept rows: a row count, a conditional count, an integer sum (each a bigint). #}
{% macro kept_count() -%}cast(sum(kept_sign) as bigint){%- endmacro %}
{% macro kept_count_if(condition) -%}cast(sum(case when {{ condition }} then kept_sign else 0 end) as bigint){%- endmacro %}
{% macro kept_sum(expression) -%}cast(sum(kept_sign * ({{ expression }})) as bigint){%- endmacro %}

{#
  The counts of a mart by `dims` with England rows (with_england) over `relation` (kept rows, the
  `measures` built with kept_count/kept_count_if/kept_sum). In an incremental build: only the
  cells the kept rows fall in, each the counts the mart holds (its rolling-period rows, England's
  included) plus the cell's sum of the kept rows, England's the sum of its areas' (every measure is
  an integer count or sum, so the figures are exact). A cell left with no rows comes out with its
  counts 0; strategy replace_cells deletes it and writes the others.
#}
{% macro kept_counts(relation, dims, measures) -%}
    {%- if is_incremental() -%}
    with delta as (
        select
            {% for d in dims %}{{ d }}, {% endfor %}
            {% for m in measures %}{{ m[0] }} as {{ m[1] }}{{ ", " if not loop.last }}{% endfor %}
        from {{ relation }}
        group by {{ dims | join(', ') }}
    ),
    combined as (
        select {% for d in dims %}{{ d }}, {% endfor %}{% for m in measures %}{{ m[1] }}, {% endfor %}0 as is_delta
        from {{ this }}
        where period_type = 'rolling_12_months'
        union all
        select {% for d in dims %}{{ d }}, {% endfor %}{% for m in measures %}{{ m[1] }}, {% endfor %}1 from delta
        union all
        select
            {% for d in dims %}{{ "'E92000001'" if d == 'la_code' else d }}, {% endfor %}
            {% for m in measures %}{{ m[1] }}, {% endfor %}1
        from delta
    )
    select
        {% for d in dims %}{{ d }}, {% endfor %}
        {% for m in measures %}cast(sum({{ m[1] }}) as bigint) as {{ m[1] }}{{ ", " if not loop.last }}{% endfor %}
    from combined
    group by {{ dims | join(', ') }}
    having max(is_delta) = 1
    {%- else -%}
    {{ with_england(relation, dims, measures) }}
    {%- endif -%}
{%- endmacro %}

{#
  Strategy `replace_cells` (marts kept per cell): the model's rows are the cells it recomputed
  (config `cells`: the grain but the period type and label; `cell_rows`: an expression of the
  row's counts, 0 for a cell left with no rows). A cell the table holds gets the new figures in
  place (an update of columns outside the key: writing into the key's index again, as a delete and
  insert would, costs more than the whole table written anew), a cell left with no rows is deleted,
  a new one inserted; every other row gets the build's `as_of` (and `provisional`, if the mart has
  it: config `provisional_months`), the only columns of a cell that depend on the date alone.
#}
{% macro get_incremental_replace_cells_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set temp = arg_dict['temp_relation'] -%}
    {%- set cells = config.get('cells') -%}
    {%- set cell_rows = config.get('cell_rows') -%}
    {%- if not cells or not cell_rows -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_cells' needs the model configs cells and cell_rows") }}
    {%- endif -%}
    {%- set grain = ['period_type', 'period_label'] + cells -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set columns = get_quoted_csv(names) -%}
    {%- set same_row -%}
        {% for c in grain %}cell.{{ c }} = kept.{{ c }}{{ " and " if not loop.last }}{% endfor %}
    {%- endset -%}
    {%- set months = config.get('provisional_months') %}
    update {{ target }} as kept set
        {% for c in names if c not in grain %}{{ adapter.quote(c) }} = cell.{{ adapter.quote(c) }}{{ ", " if not loop.last }}{% endfor %}
    from (select * from {{ temp }} where {{ cell_rows }} > 0) as cell
    where {{ same_row }};
    delete from {{ target }} as kept where exists (
        select 1 from {{ temp }} as cell where {{ same_row }} and not ({{ cell_rows }} > 0)
    );
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ temp }} as cell
    where {{ cell_rows }} > 0 and not exists (select 1 from {{ target }} as kept where {{ same_row }});
    update {{ target }} set as_of = {{ as_of_date() }}
        {%- if months %}, provisional = {{ provisional('period_end', months) }}{% endif %}
    where as_of <> {{ as_of_date() }}
{%- endmacro %}

{#
  Strategy `replace_all`: the small tables that every build computes whole (int_periods,
  drug_related_deaths, deaths_after_treatment, linkage_quality) are incremental models whose rows
  are all replaced, in one transaction, by the model's rows: the table, its constraints and
  comments stay. A table materialisation would create a new table, swap it in by two renames, drop
  the old one and write the comments of every column again (15 to 19 statements and dbt's work for
  each, against 8: about a tenth of a second of dbt's CPU per model and build). A full build
  (--full-refresh) creates them anew as tables, and a build of another project is a full one (its
  watermark), so the columns are always the model's.
#}
{% macro get_incremental_replace_all_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
