-- Two names of drug_terminology that reduce to the same matching key (drug_name_key) must
-- mean the same drug, or a site's name would map to two classes. Fails on each ambiguous key.

with

keyed as (

    select
        {{ drug_name_key('drug_name') }} as drug_name_key,
        generic_name,
        drug_class,
        atc_code

    from {{ ref('drug_terminology') }}

)

select drug_name_key, count(distinct generic_name || drug_class || atc_code) as n_meanings
from keyed
group by drug_name_key
having count(distinct generic_name || drug_class || atc_code) > 1
    or drug_name_key is null
