with

source as (

    {{ raw_rows_not_yet_staged(source('iati', 'partner_iati_activity_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.iati.activity.v1)
        data ->> '$.iati_identifier' as iati_identifier,
        {{ payload_timestamp('$.last_updated') }} as last_updated,
        data ->> '$.reporting_org.ref' as reporting_org_ref,
        data ->> '$.reporting_org.type' as reporting_org_type,
        data ->> '$.reporting_org.name' as reporting_org_name,
        data ->> '$.title' as title,
        data ->> '$.status_code' as status_code,
        data ->> '$.status' as status,
        data ->> '$.default_currency' as default_currency,
        cast(data ->> '$.humanitarian' as boolean) as is_humanitarian,
        cast(data ->> '$.dates.planned_start' as date) as planned_start_date,
        cast(data ->> '$.dates.actual_start' as date) as actual_start_date,
        cast(data ->> '$.dates.planned_end' as date) as planned_end_date,
        cast(data ->> '$.dates.actual_end' as date) as actual_end_date,
        data ->> '$.city_code' as city_code,
        data -> '$.recipient_countries' as recipient_countries,
        data -> '$.locations' as locations,
        data -> '$.sectors' as sectors,
        data -> '$.participating_orgs' as participating_orgs,
        data -> '$.budgets' as budgets,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
