{#-
    The payload columns of org.urbanflow.stats.observation.v1 (SDMX, World Bank and UN SDG API staging).
-#}
{% macro stats_observation_columns() -%}
-- payload, as sent (contract org.urbanflow.stats.observation.v1)
        data ->> '$.dataflow' as dataflow,
        data ->> '$.series_key' as series_key,
        data -> '$.dimensions' as dimensions,
        coalesce(data ->> '$.dimensions.SERIES', data ->> '$.dimensions.INDICATOR') as series_code,
        data ->> '$.dimensions.REF_AREA' as ref_area_code,
        data ->> '$.dimensions.CITY' as city_code,
        data ->> '$.dimensions.SEX' as sex_code,
        data ->> '$.dimensions.AGE' as age_code,
        data ->> '$.time_period' as time_period,
        cast(data ->> '$.value' as double) as obs_value,
        data ->> '$.attributes.UNIT_MEASURE' as unit_measure,
        try_cast(data ->> '$.attributes.UNIT_MULT' as integer) as unit_mult,
        data ->> '$.attributes.OBS_STATUS' as obs_status,
        data ->> '$.attributes.SOURCE_DETAIL' as source_detail,
        data -> '$.labels' as labels
{%- endmacro %}
