with

source as (

    {{ raw_rows_not_yet_staged(source('gdacs', 'hazard_gdacs_event_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.hazard.event.v1)
        data ->> '$.hazard_type' as hazard_type_code,
        cast(data ->> '$.hazard_event_id' as bigint) as hazard_event_id,
        cast(data ->> '$.episode_id' as bigint) as episode_id,
        data ->> '$.name' as event_name,
        data ->> '$.alert_level' as alert_level,
        cast(data ->> '$.alert_score' as double) as alert_score,
        {{ payload_timestamp('$.from_time') }} as from_time,
        {{ payload_timestamp('$.to_time') }} as to_time,
        {{ payload_timestamp('$.modified_time') }} as modified_time,
        data ->> '$.country_iso3' as country_iso3,
        data ->> '$.city_code' as city_code,
        data ->> '$.place_match' as place_match,
        cast(data ->> '$.distance_km' as double) as distance_km,
        cast(data ->> '$.latitude' as double) as latitude,
        cast(data ->> '$.longitude' as double) as longitude,
        cast(data ->> '$.people_affected' as bigint) as people_affected,
        cast(data ->> '$.severity' as double) as severity,
        data ->> '$.severity_unit' as severity_unit,
        data ->> '$.severity_text' as severity_text,
        data ->> '$.glide' as glide,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
