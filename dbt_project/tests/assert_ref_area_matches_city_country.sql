-- The SDMX REF_AREA sent with an observation should be the country of its city in ref_cities.
-- A mismatch means a wrong city code or a wrong seed row; warn, since the city code is what
-- marts use.
{{ config(severity='warn') }}

select
    data_source,
    series_key,
    time_period,
    city_code,
    ref_area_code,
    country_iso3
from {{ ref('int_indicators__observations') }}
where
    data_source = 'sdmx'
    and area_level = 'city'
    and country_iso3 is not null
    and ref_area_code is distinct from country_iso3
