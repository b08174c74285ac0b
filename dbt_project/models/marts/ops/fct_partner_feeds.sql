{#- Feed status per partner, for My feeds and `GET /v1/feeds`: one row per partner × CloudEvents
    source × raw table. Accepted = distinct events staged from the partner topics (a retry with the
    same source and id counts once), refused = what the sink dead-lettered and what the push API
    refused, attributed to the source, from fct_dead_letters, and how many of its result figures count toward the plan's targets with the
    rules of fct_strategic_progress. -#}
{%- set partner_feeds = [
    'stg_partner__results',
    'stg_iati__activities',
    'stg_iati__results',
    'stg_iati__transactions',
    'stg_hxl__records',
] -%}
{#- The raw table each result source of int_results__values is read from. -#}
{%- set result_tables = {
    'partner_api': 'partner_push_result_v1',
    'iati': 'partner_iati_result_v1',
    'hxl': 'partner_hxl_record_v1',
} -%}

with

accepted as (

    {% for model in partner_feeds -%}
        select
            source_urn,
            replace(kafka_topic, '.', '_') as raw_table,
            count(distinct event_id) as events_accepted,
            min(event_time) as first_event_time,
            max(event_time) as last_event_time,
            max(ingested_at) as last_ingested_at
        from {{ ref(model) }}
        where source_urn like 'urn:partner:%'
        group by source_urn, kafka_topic
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}

),

refused as (

    select
        source_urn,
        raw_table,
        cast(sum(dead_letter_count) as bigint) as events_refused,
        cast(coalesce(sum(dead_letter_count) filter (where refused_by = 'api'), 0) as bigint)
            as events_refused_by_api,
        max(last_dead_lettered_at) as last_dead_lettered_at
    from {{ ref('fct_dead_letters') }}
    where source_urn like 'urn:partner:%'
    group by source_urn, raw_table

),

result_figures as (

    -- counting rules of fct_strategic_progress: people reached in a city, all ages, as a total (or
    -- as the female and male figures the plan adds up when no total was sent), and
    -- women's-empowerment results in a city
    select
        source_urn,
        case result_source
            {%- for result_source, table in result_tables.items() %}
                when '{{ result_source }}' then '{{ table }}'
            {%- endfor %}
        end as raw_table,
        city_code is not null and (
            indicator_code = 'people_reached' and age_group = 'all' and value is not null
            and (sex = 'total' or not bool_or(sex = 'total') over (
                partition by {{ result_figure_grain() }}, period_year, age_group
            ))
            or is_women_empowerment and (value > 0 or value_text is not null)
        ) as counts_toward_targets
    from {{ ref('int_results__values') }}
    where source_urn like 'urn:partner:%'

),

figures as (

    select
        source_urn,
        raw_table,
        count(*) as figures_reported,
        count(*) filter (where counts_toward_targets) as figures_toward_targets
    from result_figures
    group by source_urn, raw_table

),

feeds as (

    select
        coalesce(accepted.source_urn, refused.source_urn) as source_urn,
        coalesce(accepted.raw_table, refused.raw_table) as raw_table,
        coalesce(accepted.events_accepted, 0) as events_accepted,
        coalesce(refused.events_refused, 0) as events_refused,
        coalesce(refused.events_refused_by_api, 0) as events_refused_by_api,
        accepted.first_event_time,
        accepted.last_event_time,
        accepted.last_ingested_at,
        refused.last_dead_lettered_at
    from accepted
    full outer join refused
        on
            accepted.source_urn = refused.source_urn
            and accepted.raw_table = refused.raw_table

),

partners as (

    select
        partner_code,
        partner_urn,
        partner_name
    from {{ ref('dim_partner') }}
    where is_current

)

select
    {{ surrogate_key(['feeds.source_urn', 'feeds.raw_table']) }} as partner_feed_key,
    -- urn:partner:<slug>[:<feed>] names the partner by its slug, or by its IATI organisation URN
    coalesce(by_urn.partner_code, split_part(feeds.source_urn, ':', 3)) as partner_slug,
    coalesce(by_urn.partner_name, by_slug.partner_name) as partner_name,
    feeds.source_urn,
    feeds.raw_table,
    feeds.events_accepted + feeds.events_refused as events_sent,
    feeds.events_accepted,
    feeds.events_refused,
    feeds.events_refused_by_api,
    feeds.events_accepted / nullif(feeds.events_accepted + feeds.events_refused, 0) * 100.0
        as accepted_percent,
    feeds.first_event_time,
    feeds.last_event_time,
    feeds.last_ingested_at,
    date_diff('second', feeds.last_ingested_at, now()) / 3600.0 as freshness_hours,
    feeds.last_dead_lettered_at,
    coalesce(figures.figures_reported, 0) as figures_reported,
    coalesce(figures.figures_toward_targets, 0) as figures_toward_targets,
    now() as measured_at
from feeds
left join partners as by_urn
    on 'urn:partner:' || split_part(feeds.source_urn, ':', 3) = by_urn.partner_urn
left join partners as by_slug
    on split_part(feeds.source_urn, ':', 3) = by_slug.partner_code
left join figures
    on
        feeds.source_urn = figures.source_urn
        and feeds.raw_table = figures.raw_table
