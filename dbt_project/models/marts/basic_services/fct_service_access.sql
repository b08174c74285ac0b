-- Access to water (SDG 6.1.1), sanitation (6.2.1) and electricity (7.1.1), percent of the
-- population, by publisher × city or country × period × sex.
with

observations as (

    select * from {{ ref('int_indicator_observations') }}
    where sdg_indicator in ('6.1.1', '6.2.1', '7.1.1')

)

select
    {{ surrogate_key(['data_source', 'series_key', 'time_period']) }} as service_access_key,
    data_source,
    case sdg_indicator
        when '6.1.1' then 'water'
        when '6.2.1' then 'sanitation'
        when '7.1.1' then 'electricity'
    end as service,
    sdg_indicator,
    series_code,
    indicator_name,
    area_level,
    city_code,
    city_name,
    country_iso3,
    country_name,
    time_period as period,
    period_year,
    period_start,
    sex,
    value as access_pct,
    source_urn,
    ingested_at as loaded_at
from observations
