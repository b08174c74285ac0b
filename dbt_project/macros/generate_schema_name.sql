{#-
    Use the folder's custom schema as is (staging, intermediate, marts, seeds) instead of dbt's
    default "<target schema>_<custom schema>", so publish, Great Expectations and Superset can name
    mart tables as marts.<table> whatever the target. Nodes without a custom schema go to the
    target schema (main).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
