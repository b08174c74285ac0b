with

source as (

    {{ raw_rows_not_yet_staged(source('utilities', 'utility_kpi_monthly_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        -- payload, as sent (contract org.urbanflow.utility.kpi.v1)
        data ->> '$.city_code' as city_code,
        data ->> '$.utility' as utility_name,
        data ->> '$.service' as service,
        data ->> '$.month' as month,
        cast(data ->> '$.coverage_pct' as double) as coverage_pct,
        cast(data ->> '$.hours_of_supply_per_day' as double) as hours_of_supply_per_day,
        cast(data ->> '$.non_revenue_water_pct' as double) as non_revenue_water_pct,
        cast(data ->> '$.connections' as bigint) as connections,
        data ->> '$.source_file' as source_file,
        cast(data ->> '$.row' as integer) as source_row,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
