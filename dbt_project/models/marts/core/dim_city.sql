-- One row per programme city, with its country: the join analysts should never have to write.
with cities as (
    select * from {{ ref('ref_cities') }}
),

countries as (
    select * from {{ ref('ref_countries') }}
)

select
    cities.city_code,
    cities.city_name,
    cities.country_iso3,
    cities.country_iso2,
    countries.country_m49,
    cities.country_name,
    countries.un_region,
    countries.un_subregion,
    cities.population,
    cities.is_secondary_city,
    cities.latitude,
    cities.longitude
from cities
left join countries on cities.country_iso3 = countries.country_iso3
