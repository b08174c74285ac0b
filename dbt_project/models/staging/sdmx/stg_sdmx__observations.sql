-- A data set with action Delete sends a deletion event (contract v2, `action: delete`). The
-- post-hook removes every staged row that deletion supersedes (same publisher, dataflow, series
-- key and period, earlier by event time then Kafka offset); the deletion row itself stays, as
-- the marker int_indicators__observations needs to drop the observation on its next run.
{{ config(post_hook="
    delete from {{ this }}
    where
        not is_deletion
        and exists (
            select 1
            from {{ this }} as deletion
            where
                deletion.is_deletion
                and deletion.source_urn = {{ this }}.source_urn
                and deletion.dataflow = {{ this }}.dataflow
                and deletion.series_key = {{ this }}.series_key
                and deletion.time_period = {{ this }}.time_period
                and (
                    deletion.event_time > {{ this }}.event_time
                    or (
                        deletion.event_time = {{ this }}.event_time
                        and deletion.kafka_offset > {{ this }}.kafka_offset
                    )
                )
        )
") }}

with

source as (

    {{ raw_rows_not_yet_staged(source('sdmx', 'stats_sdmx_observation_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        {{ stats_observation_columns() }},
        data ->> '$.dimensions.FREQ' as freq_code,
        -- contract v2 (absent in v1 events: an upsert without annotations or extra measures)
        coalesce(data ->> '$.action', 'upsert') as observation_action,
        coalesce(data ->> '$.action', 'upsert') = 'delete' as is_deletion,
        data -> '$.annotations' as annotations,
        data -> '$.measures' as measures,

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
