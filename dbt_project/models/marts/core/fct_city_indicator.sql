with

observations as (

    select * from {{ ref('int_city_indicator_observations') }}

),

final as (

    select
        {{ surrogate_key(['city_code', 'series_code', 'time_period', 'sex_code']) }}
            as city_indicator_key,
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
        value,
        unit,
        obs_status,
        source_urn,
        ingested_at as loaded_at

    from observations

)

select * from final
