{#- Failed attempts of the UrbanFlow DAGs for the Pipeline Health dashboard: one row per failed
    task attempt, with the error's first line (200 characters) for tables. -#}
with

failures as (

    select * from {{ ref('stg_ops__run_failures') }}

),

final as (

    select
        {{ surrogate_key(['failed_at', 'dag_id', 'task_id', 'attempt']) }} as run_failure_key,
        failed_at,
        cast(failed_at as date) as failed_on,
        dag_id,
        task_id,
        run_id,
        attempt,
        pull_source,
        left(split_part(error_message, chr(10), 1), 200) as error_summary,
        error_message

    from failures

)

select * from final
