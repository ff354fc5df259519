-- Whether each landed treatment overlaps its patient's IVIG period [index date, last cycle
-- date] (protocol §7, concomitant therapy). Both ends are inclusive. Missing dates:
--   * no start and no end: counts as overlapping when the primary plan says so (protocol §7,
--     `undated_overlaps`: true in v1);
--   * no start only: open to the past, overlaps if it ends on or after the index date;
--   * no end only: open to the future, overlaps if it starts on or before the last cycle.
-- A patient without a landed cycle has no IVIG period: nothing of theirs overlaps.

with

treatments as (

    select * from {{ ref('int_treatments_classified') }}

),

periods as (

    select * from {{ ref('int_patient_ivig_periods') }}

),

overlap as (

    select
        treatments.*,
        periods.index_date,
        periods.last_cycle_date,
        coalesce(
            periods.has_landed_cycle
            and case
                when treatments.start_date is null and treatments.end_date is null
                    then {{ 'true' if protocol()['undated_overlaps'] else 'false' }}
                else coalesce(treatments.start_date <= periods.last_cycle_date, true)
                    and coalesce(treatments.end_date >= periods.index_date, true)
            end,
            false
        ) as overlaps_ivig_period

    from treatments
    left join periods on treatments.patient_key = periods.patient_key

)

select * from overlap
