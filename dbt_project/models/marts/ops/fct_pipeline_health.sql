{#- The health DAG's snapshots for the Pipeline Health dashboard: one row per snapshot × measure ×
    subject, the latest snapshot flagged, so a chart shows either the trend or the current state. -#}
with

snapshots as (

    select * from {{ ref('stg_ops__pipeline_health') }}

),

final as (

    select
        {{ surrogate_key(['checked_at', 'measure', 'subject']) }} as pipeline_health_key,
        checked_at,
        measure,
        subject,
        measured_value,
        checked_at = max(checked_at) over () as is_latest

    from snapshots

)

select * from final
