{#-
    Deterministic key of a row from the columns that identify it (md5 of their text, NULL
    written as a marker so (a, NULL) and (NULL, a) differ). The inputs are pseudonyms and
    provenance, never direct identifiers.
-#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|'
    {%- for column in columns %}, coalesce(cast({{ column }} as varchar), '<null>'){% endfor -%}
    ))
{%- endmacro %}
