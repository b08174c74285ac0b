{#-
    Who reported a result figure and about what: the grain every model over int_results__values
    groups by, before the year and the sex.
-#}
{% macro result_figure_grain() -%}
    result_source,
    source_urn,
    activity_id,
    city_code,
    country_iso3,
    theme_code,
    indicator_code
{%- endmacro %}
