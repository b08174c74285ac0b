{#
  Incremental models downstream of staging: a row is new for a model when it was staged after the
  model's last run. Staging stamps every appended row with the run's start (`staged_at`), and a
  model keeps the latest `staged_at` of what it read, so "new" is "staged_at above my maximum".
  Renders `true` on a full refresh or a first build.
#}
{% macro staged_after_last_run(column='staged_at') -%}
    {%- if is_incremental() -%}
        {{ column }} > (
            select coalesce(max(staged_at), timestamptz '1970-01-01') from {{ this }}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
