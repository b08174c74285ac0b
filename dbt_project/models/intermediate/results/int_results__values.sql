-- Every result figure partners report, harmonised to one shape: who (partner, activity),
-- where (city, country), what (theme, indicator, unit), when (period start, year) and for
-- whom (sex, age).
-- Three inputs: results pushed through the API, IATI result actuals, HXL #reached counts.
-- Revisions are resolved per input (the latest event for the same figure wins).
with

pushed as (

    select
        'partner_api' as result_source,
        pushed.source_urn,
        pushed.activity_id,
        pushed.city_code,
        themes.theme_code,
        pushed.indicator_code,
        case
            when length(pushed.period) = 4 then make_date(cast(pushed.period as integer), 1, 1)
            when pushed.period like '%-Q%'
                then
                    make_date(
                        cast(left(pushed.period, 4) as integer),
                        (cast(right(pushed.period, 1) as integer) - 1) * 3 + 1,
                        1
                    )
            else cast(pushed.period || '-01' as date)
        end as period_start,
        pushed.sex,
        coalesce(pushed.age_group, 'all') as age_group,
        pushed.value,
        cast(null as varchar) as value_text,
        pushed.unit as unit_as_sent,
        pushed.event_id,
        pushed.ingested_at
    from {{ ref('stg_partner__results') }} as pushed
    left join {{ ref('ref_partner_themes') }} as themes
        on pushed.theme_as_sent = themes.theme_as_sent
    qualify
        row_number() over (
            partition by
                pushed.source_urn, pushed.activity_id, pushed.city_code, pushed.theme_as_sent,
                pushed.indicator_code, pushed.period, pushed.sex, pushed.age_group
            order by pushed.event_time desc, pushed.kafka_offset desc
        ) = 1

),

iati_actuals as (

    select * from {{ ref('stg_iati__results') }}
    where measurement = 'actual'
    qualify
        row_number() over (
            partition by
                source_urn, iati_identifier, result_index, indicator_index, period_index,
                cast(dimensions as varchar), cast(location_refs as varchar)
            order by last_updated desc nulls last, event_time desc, kafka_offset desc
        ) = 1

),

activity_main_theme as (

    -- An IATI indicator missing from ref_result_indicators counts for the activity's main theme.
    select
        source_urn,
        iati_identifier,
        arg_max(theme_code, sector_share) as theme_code
    from {{ ref('int_iati__activity_sectors') }}
    group by source_urn, iati_identifier

),

iati as (

    select
        'iati' as result_source,
        iati_actuals.source_urn,
        iati_actuals.iati_identifier as activity_id,
        iati_actuals.city_code,
        coalesce(mapped.theme_code, activity_main_theme.theme_code, 'unassigned') as theme_code,
        coalesce(
            mapped.indicator_code,
            trim(regexp_replace(lower(iati_actuals.indicator_title), '[^a-z0-9]+', '_', 'g'), '_')
        ) as indicator_code,
        iati_actuals.period_start,
        coalesce(iati_actuals.sex, 'total') as sex,
        'all' as age_group,
        iati_actuals.value,
        iati_actuals.value_text,
        cast(null as varchar) as unit_as_sent,
        iati_actuals.event_id,
        iati_actuals.ingested_at
    from iati_actuals
    left join {{ ref('ref_result_indicators') }} as mapped
        on iati_actuals.indicator_title = mapped.indicator_title
    left join activity_main_theme
        on
            iati_actuals.source_urn = activity_main_theme.source_urn
            and iati_actuals.iati_identifier = activity_main_theme.iati_identifier

),

hxl_reached as (

    select
        'hxl' as result_source,
        source_urn,
        dataset as activity_id,
        city_code,
        'migration_cities' as theme_code,
        case population_group when 'all' then 'people_reached' else 'migrants_reached' end
            as indicator_code,
        reported_date as period_start,
        sex,
        age_group,
        people as value,
        cast(null as varchar) as value_text,
        'people' as unit_as_sent,
        event_id,
        ingested_at
    from {{ ref('int_hxl__people_counts') }}
    where hashtag = '#reached'

),

unioned as (

    select * from pushed
    union all
    select * from iati
    union all
    select * from hxl_reached

),

final as (

    select
        unioned.result_source,
        unioned.source_urn,
        unioned.activity_id,
        unioned.city_code,
        cities.country_iso3,
        unioned.theme_code,
        unioned.indicator_code,
        indicators.indicator_name,
        coalesce(indicators.unit, unioned.unit_as_sent) as unit,
        coalesce(indicators.counts_people, false) as counts_people,
        coalesce(indicators.is_women_empowerment, false) as is_women_empowerment,
        unioned.period_start,
        year(unioned.period_start) as period_year,
        unioned.sex,
        unioned.age_group,
        unioned.value,
        unioned.value_text,
        unioned.event_id,
        unioned.ingested_at
    from unioned
    left join {{ ref('ref_cities') }} as cities
        on unioned.city_code = cities.city_code
    left join {{ ref('ref_indicators') }} as indicators
        on unioned.indicator_code = indicators.indicator_code

)

select * from final
