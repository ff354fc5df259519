-- Table 1 agrees with dim_patient: for the whole analysed cohort, each count of mart_cohort
-- equals the number of analysed patients with that flag. Fails on each disagreeing row.

{#- One check per code of the protocol's vocabularies and per therapy class (var protocol). -#}
{%- set checks = {'patients': 'true', 'ivig_stopped': 'ivig_stop_reason is not null'} %}
{%- for c in protocol_field_vocabulary('patients.sex') %}
    {%- do checks.update({'sex_' ~ (c.label | lower | replace(' ', '_')): 'sex = ' ~ sql_string(c.code)}) %}
{%- endfor %}
{%- for c in protocol_field_vocabulary('patients.ssc_subtype') %}
    {%- do checks.update({'ssc_subtype_' ~ c.code: 'ssc_subtype = ' ~ sql_string(c.code)}) %}
{%- endfor %}
{%- for field in ['overlap', 'indication'] %}
    {%- for c in protocol_field_vocabulary('patients.' ~ field) %}
        {%- do checks.update({field ~ '_' ~ c.code: field ~ '_' ~ c.code}) %}
    {%- endfor %}
{%- endfor %}
{%- for drug_class in protocol()['therapy_classes'] %}
    {%- do checks.update({'on_' ~ drug_class: 'on_' ~ drug_class}) %}
{%- endfor %}

with

expected as (

    {%- for characteristic, condition in checks.items() %}
    select '{{ characteristic }}' as characteristic, count(*) as n
    from {{ ref('dim_patient') }}
    where is_analysed and {{ condition }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

actual as (

    select characteristic, n
    from {{ ref('mart_cohort') }}
    where subgroup = 'all'

)

select expected.characteristic, expected.n as expected_n, actual.n as actual_n
from expected
left join actual on expected.characteristic = actual.characteristic
where actual.n is distinct from expected.n
