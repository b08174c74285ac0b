{#-
    The columns every indicator mart built on int_indicators__observations shares (one row per
    publisher × series key × period): where, when and for whom the value is.
-#}
{% macro indicator_place_period_columns() -%}
    area_level,
    city_code,
    city_name,
    country_iso3,
    country_name,
    time_period as period,
    period_year,
    period_start,
    sex,
    age_group
{%- endmacro %}
