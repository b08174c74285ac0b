-- The current version of every IATI activity, one row per DAC purpose-code sector with the share
-- of the activity it represents and the plan theme of that sector; an activity without a DAC
-- sector gets a single `unassigned` row (share 1), so its money never silently disappears.
with

activities as (

    select * from {{ ref('stg_iati__activities') }}
    qualify
        row_number() over (
            partition by source_urn, iati_identifier
            order by last_updated desc nulls last, event_time desc, kafka_offset desc
        ) = 1

),

shares as (

    {{ iati_sector_shares('activities', ['source_urn', 'iati_identifier']) }}

),

final as (

    select
        activities.source_urn,
        activities.iati_identifier,
        activities.reporting_org_ref,
        activities.reporting_org_name,
        activities.title as activity_title,
        activities.city_code,
        activities.last_updated,
        shares.sector_code,
        shares.sector_percentage,
        coalesce(shares.sector_share, 1.0) as sector_share,
        coalesce(sector_themes.theme_code, 'unassigned') as theme_code
    from activities
    left join shares
        on
            activities.source_urn = shares.source_urn
            and activities.iati_identifier = shares.iati_identifier
    left join {{ ref('ref_iati_sector_themes') }} as sector_themes
        on shares.sector_code = sector_themes.sector_code

)

select * from final
