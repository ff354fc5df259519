{#-
    Normalised form of free text for matching against terminology: lower case, accents
    removed (DuckDB strip_accents), runs of white space collapsed, surrounding spaces trimmed;
    an empty result is NULL. "  Cefalea  Intensa " -> 'cefalea intensa'.
-#}
{% macro normalise_text(expr) -%}
    nullif(trim(regexp_replace(lower(strip_accents({{ expr }})), '\s+', ' ', 'g')), '')
{%- endmacro %}
