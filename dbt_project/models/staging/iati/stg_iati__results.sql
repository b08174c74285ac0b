with

source as (

    {{ raw_rows_not_yet_staged(source('iati', 'partner_iati_result_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.iati.result.v1)
        data ->> '$.iati_identifier' as iati_identifier,
        {{ payload_timestamp('$.last_updated') }} as last_updated,
        cast(data ->> '$.result_index' as integer) as result_index,
        data ->> '$.result_type_code' as result_type_code,
        data ->> '$.result_title' as result_title,
        cast(data ->> '$.indicator_index' as integer) as indicator_index,
        data ->> '$.indicator_title' as indicator_title,
        data ->> '$.indicator_measure_code' as indicator_measure_code,
        cast(data ->> '$.ascending' as boolean) as is_ascending,
        cast(data ->> '$.period_index' as integer) as period_index,
        cast(data ->> '$.period_start' as date) as period_start,
        cast(data ->> '$.period_end' as date) as period_end,
        cast(data ->> '$.baseline_year' as integer) as baseline_year,
        data ->> '$.measurement' as measurement,
        cast(data ->> '$.value' as double) as value,
        data ->> '$.value_text' as value_text,
        data ->> '$.sex' as sex,
        data -> '$.dimensions' as dimensions,
        data -> '$.location_refs' as location_refs,
        data ->> '$.city_code' as city_code,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
