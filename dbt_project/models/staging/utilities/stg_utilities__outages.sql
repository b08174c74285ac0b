with

source as (

    {{ raw_rows_not_yet_staged(source('utilities', 'utility_service_outage_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.utility.outage.v1)
        data ->> '$.outage_id' as outage_id,
        data ->> '$.city_code' as city_code,
        data ->> '$.service' as service,
        data ->> '$.area' as area,
        {{ payload_timestamp('$.started_at') }} as started_at,
        {{ payload_timestamp('$.ended_at') }} as ended_at,
        cast(data ->> '$.customers_affected' as bigint) as customers_affected,
        data ->> '$.cause' as cause,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
