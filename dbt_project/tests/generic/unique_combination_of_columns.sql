{#-
    Fails for every combination of `combination_of_columns` that occurs more than once.
    Same contract as dbt_utils.unique_combination_of_columns, without the package download.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
