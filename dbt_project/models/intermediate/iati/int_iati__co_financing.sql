-- Money coming into IATI activities (transaction types 1 incoming funds, 11 incoming commitment,
-- 13 incoming pledge), split by theme like every IATI flow, with who provided it and whether it
-- counts as leveraged. It does unless its provider is the reporting org itself, the partner's core
-- funder (`ref_partners`), another member of the partnership, or not named at all; those rows keep
-- the reason, so no incoming money disappears unexplained.
with

incoming as (

    select
        *,
        nullif(trim(provider_org_ref), '') as provider_ref,
        nullif(lower(trim(provider_org_name)), '') as provider_name_key
    from {{ ref('int_iati__transactions_by_theme') }}
    where flow_type in ('incoming_funds', 'incoming_commitment', 'incoming_pledge')

),

activities as (

    select distinct
        source_urn,
        iati_identifier,
        reporting_org_ref,
        reporting_org_name,
        activity_title
    from {{ ref('int_iati__activity_sectors') }}

),

partners as (

    select * from {{ ref('ref_partners') }}

),

classified as (

    select
        incoming.source_urn,
        incoming.iati_identifier,
        incoming.transaction_index,
        incoming.sector_code,
        incoming.theme_code,
        incoming.flow_type,
        incoming.transaction_date,
        incoming.transaction_year,
        incoming.city_code,
        incoming.currency,
        incoming.value_in_theme,
        coalesce(incoming.provider_ref, 'name:' || incoming.provider_name_key) as co_financier_key,
        incoming.provider_ref as co_financier_ref,
        incoming.provider_org_name as co_financier_name,
        incoming.provider_org_type,
        activities.reporting_org_ref,
        activities.activity_title,
        reporting_partner.partner_code,
        coalesce(reporting_partner.partner_name, activities.reporting_org_name) as partner_name,
        case
            when incoming.provider_ref is null and incoming.provider_name_key is null
                then 'no_provider'
            when
                incoming.provider_ref = activities.reporting_org_ref
                or (
                    incoming.provider_ref is null
                    and incoming.provider_name_key = lower(activities.reporting_org_name)
                )
                then 'reporting_org'
            when
                incoming.provider_ref = reporting_partner.core_funder_ref
                or (
                    incoming.provider_ref is null
                    and incoming.provider_name_key = lower(reporting_partner.core_funder_name)
                )
                then 'core_funder'
            when member.partner_code is not null then 'partnership_member'
        end as not_leveraged_reason,
        incoming.event_id,
        incoming.ingested_at
    from incoming
    left join activities
        on
            incoming.source_urn = activities.source_urn
            and incoming.iati_identifier = activities.iati_identifier
    left join partners as reporting_partner
        on activities.reporting_org_ref = reporting_partner.iati_org_ref
    left join partners as member
        on
            incoming.provider_ref = member.iati_org_ref
            or (
                incoming.provider_ref is null
                and incoming.provider_name_key = lower(member.partner_name)
            )

)

select
    * exclude (provider_org_type),
    -- A provider typed differently on two transactions of one activity is one co-financier: give
    -- it one type (the highest code) so that its commitment and its payments meet in the mart.
    max(provider_org_type) over (
        partition by source_urn, iati_identifier, co_financier_key
    ) as co_financier_type_code,
    not_leveraged_reason is null as is_leveraged
from classified
