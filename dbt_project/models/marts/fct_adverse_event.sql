-- One row per landed adverse event (protocol §8), term coded to an English preferred term
-- (int_adverse_events_coded).
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_rebuilt_sites() }}") }}
-- incremental by site (macros/rebuilt_sites.sql); depends_on: {{ source('quality', 'build_scope') }}

with

adverse_events as (

    select * from {{ ref('int_adverse_events_coded') }}

),

periods as (

    select patient_key, index_date from {{ ref('int_patient_ivig_periods') }}

),

final as (

    select
        adverse_events.patient_key,
        adverse_events.site_id,
        adverse_events.onset_date,
        adverse_events.term,
        adverse_events.severity,
        adverse_events.serious,
        adverse_events.related,
        adverse_events.action,

        ---------- beyond §8
        adverse_events.adverse_event_id,
        adverse_events.term_as_reported,
        adverse_events.soc,
        adverse_events.is_coded,
        date_diff('day', periods.index_date, adverse_events.onset_date) as days_from_index,
        adverse_events.delivery_id

    from adverse_events
    inner join periods on adverse_events.patient_key = periods.patient_key

)

select * from final
{{ only_rebuilt_sites() }}
