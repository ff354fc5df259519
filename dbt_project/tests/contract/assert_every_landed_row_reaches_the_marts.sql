-- Nothing landed is lost between landed and the marts (protocol: never a silent drop): each
-- mart holds exactly as many rows as its landed table. Fails with one row per mismatch.

{%- set pairs = [
    ('stg_landed__patients', 'dim_patient'),
    ('stg_landed__ivig_cycles', 'fct_ivig_cycle'),
    ('stg_landed__assessments', 'fct_assessment'),
    ('stg_landed__adverse_events', 'fct_adverse_event'),
] %}

{%- for landed, mart in pairs %}
select
    '{{ mart }}' as mart,
    (select count(*) from {{ ref(landed) }}) as landed_rows,
    (select count(*) from {{ ref(mart) }}) as mart_rows
where (select count(*) from {{ ref(landed) }}) <> (select count(*) from {{ ref(mart) }})
{% if not loop.last %}union all{% endif %}
{%- endfor %}
