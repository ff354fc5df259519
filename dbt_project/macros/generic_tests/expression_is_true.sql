{#- Row invariant: fails on each row where the SQL expression is not true (false or NULL). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
