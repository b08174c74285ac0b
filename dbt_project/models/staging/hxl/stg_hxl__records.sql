with

source as (

    {{ raw_rows_not_yet_staged(source('hxl', 'partner_hxl_record_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.hxl.record.v1, v2 adds warnings)
        data ->> '$.dataset' as dataset,
        cast(data ->> '$.row' as integer) as source_row,
        cast(data ->> '$.column' as integer) as source_column,
        data ->> '$.hashtag' as hashtag,
        data -> '$.attributes' as hxl_attributes,
        data ->> '$.sex' as sex,
        data ->> '$.age_group' as age_group,
        data ->> '$.population_group' as population_group,
        cast(data ->> '$.value' as double) as people,
        data ->> '$.header' as header,
        data ->> '$.country_code' as country_iso3,
        data ->> '$.admin1' as admin1_name,
        data ->> '$.admin2' as admin2_name,
        data ->> '$.location' as location_name,
        data ->> '$.location_code' as location_code,
        data ->> '$.city_code' as city_code,
        data ->> '$.date' as reported_date_text,
        data -> '$.warnings' as row_warnings,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
