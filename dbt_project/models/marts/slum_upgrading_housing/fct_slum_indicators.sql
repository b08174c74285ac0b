-- Share of the urban population living in slums (SDG 11.1.1), by publisher × city or country ×
-- period × sex: what the Slum upgrading & housing dashboard charts.
with

observations as (

    select * from {{ ref('int_indicator_observations') }}
    where sdg_indicator = '11.1.1'

)

select
    {{ surrogate_key(['data_source', 'series_key', 'time_period']) }} as slum_indicator_key,
    data_source,
    area_level,
    city_code,
    city_name,
    country_iso3,
    country_name,
    time_period as period,
    period_year,
    period_start,
    sex,
    value as slum_population_pct,
    obs_status,
    source_urn,
    ingested_at as loaded_at
from observations
