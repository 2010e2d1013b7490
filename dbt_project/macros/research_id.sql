{# A research person id: a salted hash of the person id, so research tables never carry spine ids. #}
{% macro research_id(column) -%}
    {{ dbt.hash(dbt.concat(["'" ~ var('research_salt') ~ ":'", column])) }}
{%- endmacro %}
