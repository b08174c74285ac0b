with

source as (

    select * from {{ source('orchestration', '_run_failures') }}

),

renamed as (

    select
        failed_at,
        dag_id,
        task_id,
        run_id,
        attempt,
        source as pull_source,
        error as error_message

    from source

)

select * from renamed
