-- Freshness of each site's data (issue 3): one row per site seen by landing (in
-- quality.site_delivery or in landed). A site whose accepted delivery is dated more than
-- `freshness_warn_after_days` ago is 'warn', more than `freshness_error_after_days` ago (or
-- never accepted) 'error', else 'fresh'. Measured at `freshness_as_of` (default: now).
-- Read by `ivig status` and the run report; it never stops a publish.
--
-- The age counts from the delivery's date (quality.site_delivery.delivery_date: its
-- `delivery_id` when that is an ISO date, else the day landing received it), not from when
-- it landed: a rebuild lands every delivery again, and a delivery dated 139 days ago is
-- 139 days old however recently it was landed (issue 10, point 7).

with

deliveries as (

    select * from {{ ref('stg_quality__site_delivery') }}

),

landed_patients as (

    select * from {{ ref('stg_landed__patients') }}

),

sites as (

    select site_id, hospital, region from {{ ref('site_registry') }}

),

landed_by_site as (

    select
        site_id,
        max(delivery_id) as landed_delivery_id,
        max(loaded_at) as last_loaded_at,
        count(*) as n_patients

    from landed_patients
    group by site_id

),

deliveries_by_site as (

    select
        site_id,
        max(delivery_id) filter (where status = 'accepted') as accepted_delivery_id,
        max(delivery_date) filter (where status = 'accepted') as accepted_delivery_date,
        max(landed_at) filter (where status = 'accepted') as accepted_landed_at,
        count(*) as n_deliveries,
        count(*) filter (where status = 'rejected') as n_rejected,
        max(delivery_id) as latest_delivery_id,
        arg_max(status, delivery_id) as latest_delivery_status,
        arg_max(reason, delivery_id) as latest_delivery_reason

    from deliveries
    group by site_id

),

all_sites as (

    select site_id from deliveries_by_site
    union
    select site_id from landed_by_site

),

measured as (

    select
        all_sites.site_id,
        sites.hospital,
        sites.region,
        coalesce(deliveries_by_site.accepted_delivery_id, landed_by_site.landed_delivery_id)
            as accepted_delivery_id,
        -- the accepted delivery's date; a site only in landed (no delivery record): the
        -- day its data landed, in UTC
        coalesce(
            deliveries_by_site.accepted_delivery_date,
            cast(timezone('UTC', landed_by_site.last_loaded_at) as date)
        ) as accepted_delivery_date,
        -- when the accepted delivery landed: the source's loaded_at_field, else landing's record
        coalesce(landed_by_site.last_loaded_at, deliveries_by_site.accepted_landed_at)
            as accepted_loaded_at,
        coalesce(landed_by_site.n_patients, 0) as n_patients,
        coalesce(deliveries_by_site.n_deliveries, 0) as n_deliveries,
        coalesce(deliveries_by_site.n_rejected, 0) as n_rejected,
        deliveries_by_site.latest_delivery_id,
        deliveries_by_site.latest_delivery_status,
        deliveries_by_site.latest_delivery_reason,
        {{ freshness_as_of() }} as measured_at

    from all_sites
    left join landed_by_site on all_sites.site_id = landed_by_site.site_id
    left join deliveries_by_site on all_sites.site_id = deliveries_by_site.site_id
    left join sites on all_sites.site_id = sites.site_id

),

-- whole days from the delivery's date to the UTC day of measured_at: independent of the
-- session's time zone (a delivery dated in the future gives a negative count, shown as is)
aged as (

    select
        *,
        cast(
            cast(timezone('UTC', measured_at) as date) - accepted_delivery_date as integer
        ) as days_since_accepted_delivery

    from measured

),

final as (

    select
        site_id,
        hospital,
        region,
        accepted_delivery_id,
        accepted_delivery_date,
        accepted_loaded_at,
        days_since_accepted_delivery,
        case
            when days_since_accepted_delivery is null then 'error'
            when days_since_accepted_delivery > {{ var('freshness_error_after_days') }} then 'error'
            when days_since_accepted_delivery > {{ var('freshness_warn_after_days') }} then 'warn'
            else 'fresh'
        end as freshness_status,
        {{ var('freshness_warn_after_days') }} as warn_after_days,
        {{ var('freshness_error_after_days') }} as error_after_days,
        n_patients,
        n_deliveries,
        n_rejected,
        latest_delivery_id,
        latest_delivery_status,
        latest_delivery_reason,
        measured_at

    from aged

)

select * from final
