-- Per patient: on a treatment class if any treatment of that class overlaps the IVIG period
-- (int_treatments_ivig_overlap). Every landed patient gets a row; no overlap means false.
-- One flag per therapy class of the primary plan (on_<class>); on_other_therapy for any other
-- mapped class of the drug terminology (var `protocol`).

{%- set classes = protocol()['therapy_classes'] %}
{%- set others = protocol()['drug_classes'] | reject('in', classes) | list %}
{%- set unmapped = protocol()['unmapped_class'] %}

with

periods as (

    select patient_key from {{ ref('int_patient_ivig_periods') }}

),

overlapping as (

    select * from {{ ref('int_treatments_ivig_overlap') }}
    where overlaps_ivig_period

),

per_patient as (

    select
        patient_key,
        {%- for drug_class in classes %}
        bool_or(drug_class = {{ sql_string(drug_class) }}) as on_{{ drug_class }},
        {%- endfor %}
        coalesce(bool_or(drug_class in (
            {%- for drug_class in others %}{{ sql_string(drug_class) }}{{ ", " if not loop.last }}{%- endfor %}
            {%- if not others %}null{% endif %})), false) as on_other_therapy,
        count(*) as n_overlapping_treatments,
        count(*) filter (where drug_class = {{ sql_string(unmapped) }}) as n_overlapping_unmapped

    from overlapping
    group by patient_key

),

therapy as (

    select
        periods.patient_key,
        {%- for drug_class in classes %}
        coalesce(per_patient.on_{{ drug_class }}, false) as on_{{ drug_class }},
        {%- endfor %}
        coalesce(per_patient.on_other_therapy, false) as on_other_therapy,
        coalesce(per_patient.n_overlapping_treatments, 0) as n_overlapping_treatments,
        coalesce(per_patient.n_overlapping_unmapped, 0) as n_overlapping_unmapped

    from periods
    left join per_patient on periods.patient_key = per_patient.patient_key

)

select * from therapy
