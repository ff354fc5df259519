with

source as (

    select * from {{ source('landed', 'adverse_events') }}

),

renamed as (

    select

        ---------- ids
        -- adverse events have no natural key: a row is identified by where it came from
        {{ surrogate_key(['site_id', 'delivery_id', 'source_file', 'source_row']) }} as adverse_event_id,
        cast(patient_key as varchar) as patient_key,
        cast(site_id as varchar) as site_id,

        ---------- attributes
        cast(onset_date as date) as onset_date,
        cast(term as varchar) as term_as_reported,
        cast(severity as varchar) as severity,
        cast(serious as boolean) as serious,
        cast(related as varchar) as related,
        cast(action as varchar) as action,

        ---------- provenance
        cast(delivery_id as varchar) as delivery_id,
        cast(source_file as varchar) as source_file,
        cast(source_row as integer) as source_row,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
