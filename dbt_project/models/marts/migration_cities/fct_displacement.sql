-- Migrants and displaced people in our cities from partners' HXL tables (IOM DTM ...): people by
-- partner × dataset × city × date × HXL measure × population group × sex × age group. Rows outside
-- our cities keep a null city_code and their country, so country totals still add up.
with

counts as (

    select * from {{ ref('int_hxl__people_counts') }}

)

select
    {{ surrogate_key([
        'counts.source_urn', 'counts.dataset', 'counts.city_code', 'counts.country_iso3',
        'counts.reported_date', 'counts.hashtag', 'counts.population_group', 'counts.sex',
        'counts.age_group',
    ]) }} as displacement_key,
    counts.source_urn as partner_urn,
    counts.dataset,
    counts.city_code,
    any_value(cities.city_name) as city_name,
    counts.country_iso3,
    counts.reported_date,
    counts.reported_year,
    counts.hashtag as measure,
    counts.population_group,
    counts.sex,
    counts.age_group,
    sum(counts.people) as people,
    count(*) as cell_count,
    max(counts.ingested_at) as loaded_at
from counts
left join {{ ref('ref_cities') }} as cities
    on counts.city_code = cities.city_code
group by
    counts.source_urn,
    counts.dataset,
    counts.city_code,
    counts.country_iso3,
    counts.reported_date,
    counts.reported_year,
    counts.hashtag,
    counts.population_group,
    counts.sex,
    counts.age_group
