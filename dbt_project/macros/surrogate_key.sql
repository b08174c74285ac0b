{#-
    md5 of the given columns joined by '|', with nulls spelled out so (a, null) and (null, a)
    differ. Same idea as dbt_utils.generate_surrogate_key, kept here to avoid a package download.
-#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|'
    {%- for column in columns %},
        coalesce(cast({{ column }} as varchar), '_uf_null_')
    {%- endfor %}
    ))
{%- endmacro %}
