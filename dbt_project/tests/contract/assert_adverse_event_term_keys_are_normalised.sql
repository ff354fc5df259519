-- The seed adverse_event_terms states each term_key by hand; it must equal what
-- normalise_text makes of term_as_reported, or the lookup would silently miss.
-- Fails on each seed row whose key is out of step.

select term_as_reported, term_key, {{ normalise_text('term_as_reported') }} as expected_key
from {{ ref('adverse_event_terms') }}
where term_key is distinct from {{ normalise_text('term_as_reported') }}
