-- Protocol §7: a patient without a landed cycle stays in dim_patient (n_cycles 0, index date
-- and age NULL, therapy flags false) but leaves every analysis: no analysis timepoint in
-- fct_assessment and no place in table 1's counts. Fails with one row per breach.

with

patients as (

    select * from {{ ref('dim_patient') }}

),

no_cycle_patients as (

    select * from patients where n_cycles = 0

),

dim_breaches as (

    select patient_key, 'dim_patient: index date, age or a therapy flag set' as breach
    from no_cycle_patients
    where index_date is not null
        or last_cycle_date is not null
        or age_at_index is not null
        {%- for drug_class in protocol()['therapy_classes'] %}
        or on_{{ drug_class }}
        {%- endfor %}
        or is_analysed

),

timepoint_breaches as (

    select assessments.patient_key, 'fct_assessment: analysis timepoint' as breach
    from {{ ref('fct_assessment') }} as assessments
    inner join no_cycle_patients on assessments.patient_key = no_cycle_patients.patient_key
    where assessments.analysis_timepoint is not null

),

cohort_breaches as (

    select cast(null as varchar) as patient_key, 'mart_cohort: patients <> analysed patients' as breach
    from {{ ref('mart_cohort') }} as cohort
    where cohort.subgroup = 'all'
        and cohort.characteristic = 'patients'
        and cohort.n <> (select count(*) from patients where n_cycles > 0)

)

select * from dim_breaches
union all
select * from timepoint_breaches
union all
select * from cohort_breaches
