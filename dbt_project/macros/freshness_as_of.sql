{#-
    The moment freshness is measured at, as a UTC TIMESTAMP (landed.loaded_at is UTC without
    time zone): the var `freshness_as_of` when given (reproducible runs, tests), else now.
-#}
{% macro freshness_as_of() -%}
    {%- if var('freshness_as_of', none) is none -%}
        (now() at time zone 'UTC')
    {%- else -%}
        cast('{{ var("freshness_as_of") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}
