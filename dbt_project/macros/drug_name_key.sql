{#-
    Matching key of a drug name (protocol §3: matching ignores case, accents and a trailing
    dose or form). Applied alike to the terminology seed and to the names sites write.

    1. normalise_text: lower case, no accents, single spaces, trimmed;
       brand marks (® ™) dropped, hyphens and underscores read as spaces.
    2. Cut the name where a dose or a form begins, keeping what precedes it:
       - at the first digit ("prednisona 5 mg", "cellcept500mg", "dexametasona 4 mg/ml");
       - at an opening bracket, comma or semicolon ("urbason (metilprednisolona)");
       - at a form or route word standing after the name ("metotrexato comprimidos",
         "urbason inyectable", "rituximab iv").
       The first word is never cut, so a name is never emptied.
    "Micofenolato de Mofetilo 500 mg comprimidos" -> 'micofenolato de mofetilo'.
-#}
{% macro drug_name_key(expr) -%}
    {%- set form_words = [
        'comprimidos?', 'comp', 'cp', 'cps', 'tabletas?', 'tablets?', 'tabs?',
        'capsulas?', 'capsules?', 'caps', 'grageas?', 'sobres?', 'viales?', 'vial',
        'ampollas?', 'amp', 'jeringas?', 'plumas?', 'pen', 'inyectables?', 'inyeccion',
        'injection', 'inj', 'solucion', 'solution', 'suspension', 'concentrado', 'polvo',
        'perfusion', 'infusion', 'oral', 'orales', 'iv', 'ev', 'sc', 'im', 'intravenos[oa]',
        'subcutane[oa]', 'intramuscular', 'retard', 'efg', 'gastrorresistentes?',
        'recubiertos?', 'dispersables?', 'liberacion', 'dosis', 'mg', 'mcg', 'ml'
    ] -%}
    {%- set cleaned -%}
        regexp_replace(regexp_replace(lower(strip_accents({{ expr }})), '[®™©]', '', 'g'), '[-_]', ' ', 'g')
    {%- endset -%}
    nullif(trim(regexp_replace(
        {{ normalise_text(cleaned) }},
        '^(\S+?.*?)\s*(?:\d|[(\[,;]|\s(?:{{ form_words | join("|") }})(?:\s|$)).*$',
        '\1'
    )), '')
{%- endmacro %}
