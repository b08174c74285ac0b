with

source as (

    {{ raw_rows_not_yet_staged(source('partner', 'partner_push_result_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.partner.result.v1)
        data ->> '$.activity_id' as activity_id,
        data ->> '$.city_code' as city_code,
        data ->> '$.theme' as theme_as_sent,
        data ->> '$.indicator' as indicator_code,
        data ->> '$.period' as period,
        cast(data ->> '$.value' as double) as value,
        data ->> '$.unit' as unit,
        data ->> '$.sex' as sex,
        data ->> '$.age_group' as age_group,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
