-- dim_patient's cycle rollup agrees with fct_ivig_cycle: n_cycles, index date (first cycle
-- start) and last cycle date. Fails on each patient where they differ.

with

cycles as (

    select
        patient_key,
        count(*) as n_cycles,
        min(start_date) as first_start,
        max(start_date) as last_start

    from {{ ref('fct_ivig_cycle') }}
    group by patient_key

)

select
    patients.patient_key,
    patients.n_cycles,
    cycles.n_cycles as n_cycles_in_fct

from {{ ref('dim_patient') }} as patients
left join cycles on patients.patient_key = cycles.patient_key

where patients.n_cycles <> coalesce(cycles.n_cycles, 0)
    or patients.index_date is distinct from cycles.first_start
    or patients.last_cycle_date is distinct from cycles.last_start
