-- Each landed assessment placed against its patient's IVIG period under every analysis plan
-- in force (source protocol.analysis_plans), and the protocol §7 analysis timepoint it fills
-- under that plan, if any:
--   baseline: the latest assessment of the measure dated from index - baseline_days_before
--             up to the index date, both inclusive;
--   post:     among assessments post_min_days .. post_max_days after the last cycle start
--             (inclusive), the one nearest to last cycle start + post_target_days; on a tie
--             (one before, one after the target at the same distance) the later.
-- The windows cannot meet (baseline ends at the index, post starts after the last cycle), so
-- a row is baseline, post or neither. Patients without a landed cycle have no index date:
-- their rows get NULL days and no timepoint.

with

assessments as (

    select * from {{ ref('stg_landed__assessments') }}

),

periods as (

    select patient_key, index_date, last_cycle_date from {{ ref('int_patient_ivig_periods') }}

),

plans as (

    select
        analysis_plan,
        is_primary,
        baseline_days_before,
        post_target_days,
        post_min_days,
        post_max_days

    from {{ source('protocol', 'analysis_plans') }}

),

placed as (

    select
        assessments.*,
        periods.index_date,
        periods.last_cycle_date,
        date_diff('day', periods.index_date, assessments.assessment_date) as days_from_index,
        date_diff('day', periods.last_cycle_date, assessments.assessment_date)
            as days_from_last_cycle

    from assessments
    left join periods on assessments.patient_key = periods.patient_key

),

in_windows as (

    select
        plans.analysis_plan,
        plans.is_primary,
        plans.post_target_days,
        placed.*,
        coalesce(
            placed.days_from_index between -plans.baseline_days_before and 0, false
        ) as in_baseline_window,
        coalesce(
            placed.days_from_last_cycle between plans.post_min_days and plans.post_max_days,
            false
        ) as in_post_window

    from placed
    cross join plans

),

ranked as (

    select
        *,
        row_number() over (
            partition by analysis_plan, patient_key, measure, in_baseline_window
            order by assessment_date desc
        ) as baseline_rank,
        row_number() over (
            partition by analysis_plan, patient_key, measure, in_post_window
            order by abs(days_from_last_cycle - post_target_days), assessment_date desc
        ) as post_rank

    from in_windows

),

windowed as (

    select
        analysis_plan,
        is_primary,
        assessment_id,
        patient_key,
        site_id,
        measure,
        assessment_date,
        value,
        value_as_reported,
        unit_as_reported,
        index_date,
        last_cycle_date,
        days_from_index,
        days_from_last_cycle,
        in_baseline_window,
        in_post_window,
        case
            when in_baseline_window and baseline_rank = 1 then 'baseline'
            when in_post_window and post_rank = 1 then 'post'
        end as analysis_timepoint,
        delivery_id

    from ranked

)

select * from windowed
