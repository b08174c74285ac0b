{#- raw._quality_results appears with the first `urbanflow check|publish`; until then this model
    is empty (same columns) instead of failing the whole build. -#}
{%- set results_source = source('quality', '_quality_results') -%}
{%- set results_exist = execute and adapter.get_relation(
    database=results_source.database,
    schema=results_source.schema,
    identifier=results_source.identifier,
) is not none -%}

with

results as (

    {% if results_exist -%}
        select * from {{ results_source }}
    {%- else -%}
        select
            cast(null as varchar) as run_id,
            cast(null as timestamptz) as checked_at,
            cast(null as varchar) as suite,
            cast(null as varchar) as batch,
            cast(null as varchar) as expectation_type,
            cast(null as varchar) as column_name,
            cast(null as json) as kwargs,
            cast(null as boolean) as success,
            cast(null as varchar) as observed_value,
            cast(null as bigint) as unexpected_count,
            cast(null as bigint) as element_count,
            cast(null as varchar) as outcome,
            cast(null as varchar) as candidate_path
        where false
    {%- endif %}

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
