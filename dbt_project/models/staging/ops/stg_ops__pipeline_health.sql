with

source as (

    select * from {{ source('orchestration', '_pipeline_health') }}

),

renamed as (

    select
        checked_at,
        measure,
        subject,
        value as measured_value

    from source

)

select * from renamed
