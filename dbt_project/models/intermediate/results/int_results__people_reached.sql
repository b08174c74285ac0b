-- People reached per reporter: one row per result source × partner × activity × city × theme ×
-- indicator × year × sex, for indicators that count people, all ages only (an age band is a part of
-- "all", never added to it). Periods within a year add up (they are flows: new people per period).
-- A missing `total` is derived as female + male, so every reporter has a total row.
with

values_by_year as (

    select
        {{ result_figure_grain() }},
        period_year,
        sex,
        sum(value) as people
    from {{ ref('int_results__values') }}
    where counts_people and age_group = 'all' and value is not null
    group by all

),

derived_totals as (

    select
        {{ result_figure_grain() }},
        period_year,
        'total' as sex,
        sum(people) as people
    from values_by_year as by_sex
    where
        sex in ('female', 'male')
        and not exists (
            select 1 as found
            from values_by_year as totals
            where
                totals.sex = 'total'
                and totals.result_source = by_sex.result_source
                and totals.source_urn = by_sex.source_urn
                and totals.activity_id = by_sex.activity_id
                and totals.city_code is not distinct from by_sex.city_code
                and totals.theme_code = by_sex.theme_code
                and totals.indicator_code = by_sex.indicator_code
                and totals.period_year = by_sex.period_year
        )
    group by all

)

select
    *,
    false as is_derived_total
from values_by_year
union all
select
    *,
    true as is_derived_total
from derived_totals
