-- One row per programme country with how many programme cities it has.
with countries as (
    select * from {{ ref('ref_countries') }}
),

cities as (
    select
        country_iso3,
        count(*) as city_count,
        sum(population) as city_population
    from {{ ref('ref_cities') }}
    group by country_iso3
)

select
    countries.country_iso3,
    countries.country_iso2,
    countries.country_m49,
    countries.country_name,
    countries.un_region,
    countries.un_subregion,
    coalesce(cities.city_count, 0) as city_count,
    coalesce(cities.city_population, 0) as city_population
from countries
left join cities on countries.country_iso3 = cities.country_iso3
