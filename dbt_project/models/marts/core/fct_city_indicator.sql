-- City-level SDG indicators from the national statistics offices (SDMX): one row per publisher ×
-- city × series × period × sex × age group, the latest revision. The publisher is in the grain so
-- two agencies reporting the same city, series and period stand side by side.
-- A deleted SDMX observation leaves int_indicators__observations; the post-hook drops its row
-- here too (same key columns and filter as below).
-- depends_on: {{ ref('stg_sdmx__observations') }}
{{ config(post_hook="{{ delete_rows_of_deleted_observations(
    'city_indicator_key',
    ['source_urn', 'city_code', 'series_code', 'time_period', 'sex', 'age_group'],
    \"data_source = 'sdmx' and area_level = 'city'\"
) }}") }}

with

observations as (

    select * from {{ ref('int_indicators__observations') }}
    where data_source = 'sdmx' and area_level = 'city'
        and {{ staged_after_last_run() }}

),

final as (

    select
        {{ surrogate_key([
            'source_urn', 'city_code', 'series_code', 'time_period', 'sex', 'age_group',
        ]) }} as city_indicator_key,
        city_code,
        city_name,
        country_iso3,
        country_name,
        sdg_indicator,
        series_code,
        indicator_name,
        theme,
        time_period as period,
        period_type,
        period_year,
        period_start,
        sex,
        age_group,
        value,
        unit,
        obs_status,
        source_urn,
        ingested_at as loaded_at,
        staged_at

    from observations

)

select * from final
