with

source as (

    {{ raw_rows_not_yet_staged(source('unsdg', 'stats_unsdg_observation_v1')) }}

),

renamed as (

    select
        {{ cloudevent_envelope_columns() }},

        {{ stats_observation_columns() }},

        {{ kafka_lineage_columns() }}

    from source

),

deduplicated as (

    {{ first_copy_per_event('renamed') }}

)

select * from deduplicated
