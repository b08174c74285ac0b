-- Households in upgraded homes per reporter (result source × partner × activity) × city × theme ×
-- year, from partners' results (API pushes and IATI actuals). The counting rule is in the model
-- docs (doc block `fct_housing_upgraded`): `is_city_figure` marks the one row per city and year
-- that city, country and programme totals add up.
with

results as (

    select * from {{ ref('int_results__values') }}
    where
        indicator_code = 'households_upgraded'
        and age_group = 'all'
        and value is not null

),

by_reporter as (

    -- Within one reporter the periods of a year add up (households upgraded in each period).
    select
        result_source,
        source_urn,
        activity_id,
        city_code,
        theme_code,
        period_year,
        sum(value) filter (where sex = 'female') as female_headed_households,
        sum(value) filter (where sex = 'male') as male_headed_households,
        sum(value) filter (where sex = 'total') as reported_households,
        max(ingested_at) as loaded_at
    from results
    group by all

),

counted as (

    -- A reporter without a total counts its female- plus male-headed households.
    select
        *,
        coalesce(
            reported_households,
            coalesce(female_headed_households, 0) + coalesce(male_headed_households, 0)
        ) as households_upgraded,
        reported_households is null as is_derived_total
    from by_reporter

)

select
    {{ surrogate_key([
        'counted.result_source', 'counted.source_urn', 'counted.activity_id', 'counted.city_code',
        'counted.theme_code', 'counted.period_year',
    ]) }} as housing_upgraded_key,
    counted.result_source,
    counted.source_urn,
    counted.activity_id,
    counted.city_code,
    cities.city_name,
    cities.country_iso3,
    cities.country_name,
    counted.theme_code,
    counted.period_year,
    counted.female_headed_households,
    counted.male_headed_households,
    counted.households_upgraded,
    counted.is_derived_total,
    -- Reporters in the same city and year may have upgraded the same homes: the city counts
    -- once, at the largest figure (ties broken by reporter so exactly one row is marked).
    counted.city_code is not null
    and row_number() over (
        partition by counted.city_code, counted.period_year
        order by
            counted.households_upgraded desc,
            counted.result_source asc,
            counted.source_urn asc,
            counted.activity_id asc,
            counted.theme_code asc
    ) = 1 as is_city_figure,
    counted.loaded_at
from counted
left join {{ ref('ref_cities') }} as cities
    on counted.city_code = cities.city_code
