-- Table 1 agrees with dim_patient: for the whole analysed cohort, each count of mart_cohort
-- equals the number of analysed patients with that flag. Fails on each disagreeing row.

{%- set checks = {
    'patients': 'true',
    'sex_female': "sex = 'F'",
    'sex_male': "sex = 'M'",
    'ssc_subtype_diffuse': "ssc_subtype = 'diffuse'",
    'ssc_subtype_limited': "ssc_subtype = 'limited'",
    'overlap_iim': 'overlap_iim',
    'indication_myositis': 'indication_myositis',
    'on_corticosteroid': 'on_corticosteroid',
    'on_immunosuppressant': 'on_immunosuppressant',
    'on_biologic': 'on_biologic',
    'ivig_stopped': 'ivig_stop_reason is not null',
} %}

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
