-- HXL people counts, one row per partner × dataset × cell: a re-sent file re-sends every cell, and
-- the latest copy of a cell wins. Dates become period start and year; cities come from ref_cities.
with

records as (

    select * from {{ ref('stg_hxl__records') }}
    qualify
        row_number() over (
            partition by source_urn, dataset, source_row, source_column
            order by event_time desc, kafka_offset desc
        ) = 1

),

final as (

    select
        records.source_urn,
        records.dataset,
        records.source_row,
        records.source_column,
        records.hashtag,
        records.population_group,
        records.sex,
        records.age_group,
        records.people,
        records.city_code,
        coalesce(cities.country_iso3, records.country_iso3) as country_iso3,
        records.admin1_name,
        records.admin2_name,
        records.location_name,
        records.reported_date_text,
        case length(records.reported_date_text)
            when 4 then make_date(cast(records.reported_date_text as integer), 1, 1)
            when 7 then cast(records.reported_date_text || '-01' as date)
            else cast(records.reported_date_text as date)
        end as reported_date,
        cast(left(records.reported_date_text, 4) as integer) as reported_year,
        records.event_id,
        records.ingested_at
    from records
    left join {{ ref('ref_cities') }} as cities
        on records.city_code = cities.city_code

)

select * from final
