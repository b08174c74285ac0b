with

source as (

    select * from {{ source('orchestration', '_source_freshness') }}

),

renamed as (

    select
        checked_at,
        source_name,
        table_name,
        status as freshness_status,
        max_loaded_at,
        max_loaded_age_s,
        warn_after_s,
        error_after_s,
        error as error_message

    from source

)

select * from renamed
