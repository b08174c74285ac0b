{#-
    One row per DAC purpose-code sector (IATI sector vocabulary 1) in the `sectors` JSON array of
    `relation`, with the share of the parent it represents. IATI: the percentages of one vocabulary
    add up to 100; when none is given the parent is split equally between its sectors.
    `keys` are the columns identifying the parent (activity, or transaction).
-#}
{% macro iati_sector_shares(relation, keys) -%}
    select
        {% for key in keys %}{{ key }},
        {% endfor -%}
        sector_code,
        sector_percentage,
        coalesce(
            sector_percentage / 100.0,
            1.0 / count(*) over (partition by {{ keys | join(', ') }})
        ) as sector_share
    from (
        select
            {% for key in keys %}parent.{{ key }},
            {% endfor -%}
            sector.code as sector_code,
            sector.percentage as sector_percentage
        from {{ relation }} as parent
        cross join
            unnest(
                from_json(
                    parent.sectors,
                    '[{"vocabulary": "VARCHAR", "code": "VARCHAR", "percentage": "DOUBLE"}]'
                )
            ) as sectors (sector)
        where sector.vocabulary = '1'
    ) as dac_sectors
{%- endmacro %}
