-- Each landed adverse event with its term coded through the adverse_event_terms seed: the
-- reported term, normalised (lower case, no accents, single spaces), is looked up by key; the
-- English preferred term and its system organ class come back. A term not in the seed keeps
-- its normalised wording as term and no SOC.

with

adverse_events as (

    select * from {{ ref('stg_landed__adverse_events') }}

),

terms as (

    select term_key, preferred_term, soc from {{ ref('adverse_event_terms') }}

),

keyed as (

    select
        *,
        {{ normalise_text('term_as_reported') }} as term_key

    from adverse_events

),

coded as (

    select
        keyed.adverse_event_id,
        keyed.patient_key,
        keyed.site_id,
        keyed.onset_date,
        coalesce(terms.preferred_term, lower(trim(keyed.term_as_reported))) as term,
        keyed.term_as_reported,
        keyed.term_key,
        terms.soc,
        terms.preferred_term is not null as is_coded,
        keyed.severity,
        keyed.serious,
        keyed.related,
        keyed.action,
        keyed.delivery_id

    from keyed
    left join terms on keyed.term_key = terms.term_key

)

select * from coded
