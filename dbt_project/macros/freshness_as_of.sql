{#-
    The moment freshness is measured at (TIMESTAMP WITH TIME ZONE, like landed.loaded_at):
    the var `freshness_as_of` when given (reproducible runs, tests), else now.
-#}
{% macro freshness_as_of() -%}
    {%- if var('freshness_as_of', none) is none -%}
        now()
    {%- else -%}
        cast('{{ var("freshness_as_of") }}' as timestamptz)
    {%- endif -%}
{%- endmacro %}
