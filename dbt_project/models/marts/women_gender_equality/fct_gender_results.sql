-- Sex-disaggregated results: one row per reporter × activity × city × theme × indicator × year with
-- the female, male and total figures side by side and the gap between women and men.
-- Counts add up over the periods of a year; percentages keep the year's latest period.
with

results as (

    select * from {{ ref('int_results__values') }}
    where value is not null and age_group = 'all'

),

by_year as (

    select
        {{ result_figure_grain() }},
        any_value(indicator_name) as indicator_name,
        any_value(unit) as unit,
        period_year,
        sex,
        case
            when any_value(unit) = 'percent' then arg_max(value, period_start)
            else sum(value)
        end as value,
        max(ingested_at) as loaded_at
    from results
    group by all

),

pivoted as (

    select
        {{ result_figure_grain() }},
        any_value(indicator_name) as indicator_name,
        any_value(unit) as unit,
        period_year,
        max(value) filter (where sex = 'female') as female_value,
        max(value) filter (where sex = 'male') as male_value,
        max(value) filter (where sex = 'total') as reported_total_value,
        max(loaded_at) as loaded_at
    from by_year
    group by all
    having count(*) filter (where sex in ('female', 'male')) > 0

)

select
    {{ surrogate_key([
        'result_source', 'source_urn', 'activity_id', 'city_code', 'theme_code',
        'indicator_code', 'period_year',
    ]) }} as gender_result_key,
    result_source,
    source_urn,
    activity_id,
    city_code,
    country_iso3,
    theme_code,
    indicator_code,
    indicator_name,
    unit,
    period_year,
    female_value,
    male_value,
    case
        when reported_total_value is not null then reported_total_value
        when unit <> 'percent' then coalesce(female_value, 0) + coalesce(male_value, 0)
    end as total_value,
    female_value - male_value as gender_gap,
    case
        when unit <> 'percent' and coalesce(female_value, 0) + coalesce(male_value, 0) > 0
            then female_value / (coalesce(female_value, 0) + coalesce(male_value, 0))
    end as female_share,
    loaded_at
from pivoted
