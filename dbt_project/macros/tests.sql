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
  The staging and intermediate models check their rows as they write them: a statement at the end
  of the model's own transaction (the post-hook `check_rows()`, dbt_project.yml), not dbt test
  nodes (each a node of its own, a query and dbt's work per node: about 30 in a build). meta
  `grain`: columns no two rows share; meta `not_null`: columns always filled. A violation raises
  an error in the model, which rolls back its rows and fails the build (no watermark is written, so
  the next build is a full one). In an incremental build, a model of strategy `replace_changed`
  (without `replaced_keys`) checks the rows it rewrote (rewritten_rows): nulls among them, and
  duplicates among every row whose key one of them has (a duplicate needs at least one rewritten row:
  two untouched rows passed the check of the build that wrote them, a build of this very project).
  A model that writes only the rows that differ (write_changed_rows) narrows both to the rows its
  write inserted (written_rows_relation): a row it kept unchanged passed the last build's check,
  and a duplicate needs an inserted row (branch dbt13).
  Every other model, and every model in a full build, checks its whole table.
#}
{% macro check_rows() -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set grain = meta.get('grain') or [] -%}
    {%- set not_null = meta.get('not_null') or [] -%}
    {%- if not execute or not (grain or not_null) -%}{{ return('') }}{%- endif -%}
    {%- set rewritten = rewritten_rows() if is_incremental() else '' -%}
    {%- set written = written_rows_relation() if rewritten else '' -%}
    {%- set checks = [] -%}
    {%- if grain -%}
        {%- set keys = grain | join(', ') -%}
        {%- if written -%}
            {%- set scope = ' where (' ~ keys ~ ') in (select ' ~ keys ~ ' from ' ~ written ~ ')' -%}
        {%- elif rewritten -%}
            {%- set scope = ' where (' ~ keys ~ ') in (select ' ~ keys ~ ' from ' ~ this ~ ' where ' ~ rewritten ~ ')' -%}
        {%- else -%}
            {%- set scope = '' -%}
        {%- endif -%}
        {%- do checks.append("select 'two rows share the grain (" ~ keys ~ ")' as problem from (select " ~ keys
            ~ " from " ~ this ~ scope ~ " group by " ~ keys ~ " having count(*) > 1) as duplicated") -%}
    {%- endif -%}
    {%- if not_null -%}
        {%- set nulls = [] -%}
        {%- for c in not_null -%}{%- do nulls.append(c ~ ' is null') -%}{%- endfor -%}
        {%- if written -%}
            {%- do checks.append("select 'a null in (" ~ not_null | join(', ') ~ ")' as problem from " ~ written
                ~ " where " ~ nulls | join(' or ')) -%}
        {%- else -%}
            {%- do checks.append("select 'a null in (" ~ not_null | join(', ') ~ ")' as problem from " ~ this ~ " where "
                ~ ('(' ~ rewritten ~ ') and ' if rewritten else '') ~ '(' ~ nulls | join(' or ') ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {%- set check = adapter.dispatch('fail_on_rows')(this.identifier, checks | join(' union all ')) -%}
    {%- if written and not config.get('keep_replaced') -%}
        {%- set check = check ~ ';\n    drop table if exists ' ~ written -%}
    {%- endif -%}
    {{ return(check) }}
{%- endmacro %}

{# Raise an error naming `name` and the first problem `query` returns, if it returns a row. #}
{% macro default__fail_on_rows(name, query) -%}
    do $check$ begin
        if exists ({{ query }}) then
            raise exception '{{ name }}: %', (select problem from ({{ query }}) as violations limit 1);
        end if;
    end $check$
{%- endmacro %}

{% macro duckdb__fail_on_rows(name, query) -%}
    select error('{{ name }}: ' || problem) from ({{ query }}) as violations limit 1
{%- endmacro %}

{#
  The rows an incremental build rewrote in the running model, when it is of strategy
  `replace_changed` without `replaced_keys`: its `changed_rows` predicate, and its periods new since
  the last build (`new_periods`); '' otherwise (the whole table is to be checked).
#}
{% macro rewritten_rows() -%}
    {%- if not env_var('OUTCOMES_PREVIOUS_AS_OF', '') or config.get('incremental_strategy') != 'replace_changed'
          or config.get('replaced_keys') or not config.get('changed_rows') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rewritten = '(' ~ config.get('changed_rows') ~ ')' -%}
    {%- if config.get('new_periods') -%}
        {%- set rewritten = rewritten ~ ' or ' ~ config.get('new_periods') ~ ' > ' ~ previous_as_of() -%}
    {%- endif -%}
    {{ return(rewritten) }}
{%- endmacro %}
