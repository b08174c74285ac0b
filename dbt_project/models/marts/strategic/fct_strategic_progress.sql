-- Progress against the strategic plan's three headline targets, per year and per theme (theme
-- `all` = the plan-level figure). The double-counting rule is in the model docs
-- (doc block `strategic_double_counting`).
with

people as (

    select * from {{ ref('int_results__people_reached') }}
    where indicator_code = 'people_reached' and sex = 'total' and city_code is not null

),

people_by_city_theme as (

    -- Partners reporting the same indicator in the same city, theme and year may count the same
    -- people: count them once, at the highest figure reported.
    select
        city_code,
        theme_code,
        period_year,
        max(people) as people
    from people
    group by city_code, theme_code, period_year

),

people_by_city as (

    -- Across themes people may overlap too: the plan-level figure takes each city's largest theme.
    select
        city_code,
        period_year,
        max(people) as people
    from people_by_city_theme
    group by city_code, period_year

),

people_reached as (

    select
        'people_reached' as target_code,
        theme_code,
        period_year,
        sum(people) as achieved
    from people_by_city_theme
    group by theme_code, period_year
    union all
    select
        'people_reached' as target_code,
        'all' as theme_code,
        period_year,
        sum(people) as achieved
    from people_by_city
    group by period_year

),

women_results as (

    select distinct
        city_code,
        country_iso3,
        theme_code,
        period_year
    from {{ ref('int_results__values') }}
    where
        is_women_empowerment
        and city_code is not null
        and (value > 0 or value_text is not null)

),

women_places as (

    select
        'cities_women_empowerment' as target_code,
        coalesce(theme_code, 'all') as theme_code,
        period_year,
        count(distinct city_code) as achieved
    from women_results
    group by grouping sets ((theme_code, period_year), (period_year))
    union all
    select
        'countries_women_empowerment' as target_code,
        coalesce(theme_code, 'all') as theme_code,
        period_year,
        count(distinct country_iso3) as achieved
    from women_results
    group by grouping sets ((theme_code, period_year), (period_year))

),

years as (

    select distinct period_year from women_results

),

women_places_to_date as (

    -- Cities and countries are counted once however many years they report in.
    select
        'cities_women_empowerment' as target_code,
        coalesce(women_results.theme_code, 'all') as theme_code,
        years.period_year,
        count(distinct women_results.city_code) as achieved_to_date
    from years
    inner join women_results on years.period_year >= women_results.period_year
    group by grouping sets ((women_results.theme_code, years.period_year), (years.period_year))
    union all
    select
        'countries_women_empowerment' as target_code,
        coalesce(women_results.theme_code, 'all') as theme_code,
        years.period_year,
        count(distinct women_results.country_iso3) as achieved_to_date
    from years
    inner join women_results on years.period_year >= women_results.period_year
    group by grouping sets ((women_results.theme_code, years.period_year), (years.period_year))

),

progress as (

    select
        people_reached.target_code,
        people_reached.theme_code,
        people_reached.period_year,
        people_reached.achieved,
        sum(people_reached.achieved) over (
            partition by people_reached.target_code, people_reached.theme_code
            order by people_reached.period_year
        ) as achieved_to_date
    from people_reached
    union all
    select
        women_places.target_code,
        women_places.theme_code,
        women_places.period_year,
        women_places.achieved,
        women_places_to_date.achieved_to_date
    from women_places
    inner join women_places_to_date
        on
            women_places.target_code = women_places_to_date.target_code
            and women_places.theme_code = women_places_to_date.theme_code
            and women_places.period_year = women_places_to_date.period_year

)

select
    {{ surrogate_key(['progress.target_code', 'progress.theme_code', 'progress.period_year']) }}
        as strategic_progress_key,
    progress.target_code,
    targets.target_name,
    progress.theme_code,
    coalesce(themes.theme_name, 'All themes') as theme_name,
    progress.period_year,
    cast(progress.achieved as double) as achieved,
    cast(progress.achieved_to_date as double) as achieved_to_date,
    cast(targets.target_value as double) as target_value,
    targets.unit,
    progress.achieved_to_date / targets.target_value as share_of_target
from progress
inner join {{ ref('ref_strategic_targets') }} as targets
    on progress.target_code = targets.target_code
left join {{ ref('ref_themes') }} as themes
    on progress.theme_code = themes.theme_code
