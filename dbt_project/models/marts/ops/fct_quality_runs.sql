with

results as (

    select * from {{ ref('stg_ops__quality_results') }}

),

final as (

    select
        {{ surrogate_key(['run_id', 'batch', 'expectation_type', 'kwargs']) }}
            as quality_result_key,
        run_id,
        checked_at,
        suite,
        batch as table_name,
        expectation_type,
        column_name,
        cast(kwargs as varchar) as expectation_kwargs,
        success,
        observed_value,
        unexpected_count,
        element_count,
        outcome as run_outcome,
        bool_and(success) over (partition by run_id) as run_success,
        candidate_path

    from results

)

select * from final
