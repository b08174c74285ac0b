with

source as (

    {{ raw_rows_not_yet_staged(source('utilities', 'utility_meter_reading_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.utility.meter_reading.v1)
        data ->> '$.meter_id' as meter_id,
        data ->> '$.city_code' as city_code,
        data ->> '$.service' as service,
        data ->> '$.kind' as meter_kind,
        {{ payload_timestamp('$.reading_time') }} as reading_time,
        cast(data ->> '$.value' as double) as reading_value,
        data ->> '$.unit' as unit,
        cast(data ->> '$.cumulative' as boolean) as is_cumulative,
        data ->> '$.site_id' as site_id,
        cast(data ->> '$.sequence' as bigint) as reading_sequence,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
