{#-
    Post-hook of the incremental indicator marts. They are delete+insert on the rows of
    int_indicators__observations staged since their last run, so a row whose observation left
    int_indicators__observations (an SDMX deletion, see its post-hook) is never replaced: this
    deletes it. Scoped to stay cheap on every run: only rows built before an SDMX deletion of the
    same publisher, place and period was staged are candidates (none on most runs), and a
    candidate goes only if the intermediate model no longer yields its key under the mart's own
    filter, so other observations of that place and period, or a re-published one, stay.
    Renders nothing on a full refresh (the table was just rebuilt from the intermediate model).
-#}
{% macro delete_rows_of_deleted_observations(
    unique_key, key_columns, observations_filter='true'
) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ unique_key }} in (
            with

            deletions as (

                select
                    source_urn,
                    city_code,
                    time_period,
                    staged_at
                from {{ ref('stg_sdmx__observations') }}
                where is_deletion

            ),

            candidates as (

                select
                    mart.{{ unique_key }} as row_key,
                    mart.source_urn,
                    mart.city_code,
                    mart.period
                from {{ this }} as mart
                where exists (
                    select 1
                    from deletions
                    where
                        deletions.source_urn = mart.source_urn
                        and deletions.city_code is not distinct from mart.city_code
                        and deletions.time_period = mart.period
                        and deletions.staged_at > mart.staged_at
                )

            ),

            remaining as (

                select {{ surrogate_key(key_columns) }} as row_key
                from {{ ref('int_indicators__observations') }} as observations
                where
                    ({{ observations_filter }})
                    and exists (
                        select 1
                        from candidates
                        where
                            candidates.source_urn = observations.source_urn
                            and candidates.city_code is not distinct from observations.city_code
                            and candidates.period = observations.time_period
                    )

            )

            select candidates.row_key
            from candidates
            where candidates.row_key not in (select remaining.row_key from remaining)
        )
    {%- endif -%}
{%- endmacro %}
