{#- dbt's source freshness verdicts for the Pipeline Health dashboard: one row per check × source
    table, ages and thresholds in hours, the latest check flagged. -#}
with

checks as (

    select * from {{ ref('stg_ops__source_freshness') }}

),

final as (

    select
        {{ surrogate_key(['checked_at', 'source_name', 'table_name']) }} as source_freshness_key,
        checked_at,
        source_name,
        table_name,
        source_name || '.' || table_name as source_table,
        freshness_status,
        freshness_status in ('pass', 'warn') as is_fresh_enough,
        max_loaded_at,
        max_loaded_age_s / 3600.0 as max_loaded_age_hours,
        warn_after_s / 3600.0 as warn_after_hours,
        error_after_s / 3600.0 as error_after_hours,
        error_message,
        checked_at = max(checked_at) over () as is_latest

    from checks

)

select * from final
