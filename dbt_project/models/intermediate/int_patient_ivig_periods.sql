-- The IVIG period of each landed patient (protocol §7): index date = start of the first
-- cycle, last cycle date = start of the last one. Patients without a landed cycle are kept
-- with n_cycles 0 and NULL dates, which takes them out of every window and overlap below.

with

patients as (

    select patient_key, site_id from {{ ref('stg_landed__patients') }}

),

cycles as (

    select * from {{ ref('stg_landed__ivig_cycles') }}

),

cycle_rollup as (

    select
        patient_key,
        count(*) as n_cycles,
        min(start_date) as index_date,
        max(start_date) as last_cycle_date,
        sum(dose_g) as total_dose_g

    from cycles
    group by patient_key

),

periods as (

    select
        patients.patient_key,
        patients.site_id,
        coalesce(cycle_rollup.n_cycles, 0) as n_cycles,
        cycle_rollup.index_date,
        cycle_rollup.last_cycle_date,
        cycle_rollup.total_dose_g,
        coalesce(cycle_rollup.n_cycles, 0) > 0 as has_landed_cycle

    from patients
    left join cycle_rollup on patients.patient_key = cycle_rollup.patient_key

)

select * from periods
