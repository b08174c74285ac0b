-- The partnership's member organisations, one row per version of each partner (SCD2, from
-- `snap_partners`): the current row has `is_current` and no `valid_to`, so facts join on
-- `partner_code` (or `partner_urn`) with `is_current`, or on the version valid at a date.
with

versions as (

    select * from {{ ref('snap_partners') }}

),

org_types as (

    select * from {{ ref('ref_iati_organisation_types') }}

)

select
    versions.dbt_scd_id as partner_version_key,
    versions.partner_code,
    -- The CloudEvents source of the partner's IATI events (connectors.sources.iati.source_urn):
    -- the org ref lowercased, every run of other characters as one '-'.
    'urn:partner:'
    || trim(regexp_replace(lower(versions.iati_org_ref), '[^a-z0-9]+', '-', 'g'), '-')
        as partner_urn,
    versions.iati_org_ref,
    versions.partner_name,
    versions.iati_org_type_code,
    org_types.org_type_name as iati_org_type_name,
    versions.hq_country_iso3,
    versions.themes,
    versions.joined_year,
    versions.is_active,
    versions.core_funder_ref,
    versions.core_funder_name,
    cast(versions.dbt_valid_from as timestamptz) as valid_from,
    cast(versions.dbt_valid_to as timestamptz) as valid_to,
    versions.dbt_valid_to is null as is_current
from versions
left join org_types
    on versions.iati_org_type_code = org_types.org_type_code
