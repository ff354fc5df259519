-- One row per landed IVIG cycle (protocol §8).
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_rebuilt_sites() }}") }}
-- incremental by site (macros/rebuilt_sites.sql); depends_on: {{ source('quality', 'build_scope') }}

with

cycles as (

    select * from {{ ref('stg_landed__ivig_cycles') }}

),

periods as (

    select patient_key, index_date from {{ ref('int_patient_ivig_periods') }}

),

final as (

    select
        cycles.patient_key,
        cycles.site_id,
        cycles.cycle_number,
        cycles.start_date,
        cycles.dose_g,
        -- dose per kg of body weight; NULL when the site gave no weight for the cycle
        cycles.dose_g / nullif(cycles.weight_kg, 0) as dose_g_per_kg,

        ---------- beyond §8
        cycles.weight_kg,
        date_diff('day', periods.index_date, cycles.start_date) as days_from_index,
        cycles.delivery_id

    from cycles
    inner join periods on cycles.patient_key = periods.patient_key

)

select * from final
{{ only_rebuilt_sites() }}
