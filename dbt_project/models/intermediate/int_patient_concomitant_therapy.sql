-- Per patient: on a treatment class if any treatment of that class overlaps the IVIG period
-- (int_treatments_ivig_overlap). Every landed patient gets a row; no overlap means false.

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
        bool_or(drug_class = 'corticosteroid') as on_corticosteroid,
        bool_or(drug_class = 'immunosuppressant') as on_immunosuppressant,
        bool_or(drug_class = 'biologic') as on_biologic,
        bool_or(drug_class = 'other') as on_other_therapy,
        count(*) as n_overlapping_treatments,
        count(*) filter (where drug_class = 'unmapped') as n_overlapping_unmapped

    from overlapping
    group by patient_key

),

therapy as (

    select
        periods.patient_key,
        coalesce(per_patient.on_corticosteroid, false) as on_corticosteroid,
        coalesce(per_patient.on_immunosuppressant, false) as on_immunosuppressant,
        coalesce(per_patient.on_biologic, false) as on_biologic,
        coalesce(per_patient.on_other_therapy, false) as on_other_therapy,
        coalesce(per_patient.n_overlapping_treatments, 0) as n_overlapping_treatments,
        coalesce(per_patient.n_overlapping_unmapped, 0) as n_overlapping_unmapped

    from periods
    left join per_patient on periods.patient_key = per_patient.patient_key

)

select * from therapy
