with

source as (

    select * from {{ source('quality', 'site_delivery') }}

),

renamed as (

    select

        ---------- ids
        cast(site_id as varchar) as site_id,
        cast(delivery_id as varchar) as delivery_id,

        ---------- outcome of landing
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(rows_landed as bigint) as rows_landed,
        cast(rows_quarantined as bigint) as rows_quarantined,
        cast(source_rows as bigint) as source_rows,
        cast(dropped_columns as varchar) as dropped_columns,

        ---------- provenance
        cast(content_sha256 as varchar) as content_sha256,
        cast(delivery_date as date) as delivery_date,
        cast(landed_at as timestamptz) as landed_at

    from source

)

select * from renamed
