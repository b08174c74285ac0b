with

source as (

    {{ raw_rows_not_yet_staged(source('iati', 'partner_iati_transaction_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.iati.transaction.v1)
        data ->> '$.iati_identifier' as iati_identifier,
        {{ payload_timestamp('$.last_updated') }} as last_updated,
        cast(data ->> '$.transaction_index' as integer) as transaction_index,
        data ->> '$.ref' as transaction_ref,
        data ->> '$.type_code' as transaction_type_code,
        data ->> '$.type' as transaction_type,
        cast(data ->> '$.date' as date) as transaction_date,
        cast(data ->> '$.value' as double) as value,
        data ->> '$.currency' as currency,
        cast(data ->> '$.value_date' as date) as value_date,
        data ->> '$.description' as description,
        data ->> '$.provider_org.ref' as provider_org_ref,
        data ->> '$.provider_org.name' as provider_org_name,
        data ->> '$.provider_org.type' as provider_org_type,
        data ->> '$.receiver_org.ref' as receiver_org_ref,
        data ->> '$.receiver_org.name' as receiver_org_name,
        data -> '$.sectors' as sectors,
        data ->> '$.city_code' as city_code,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
