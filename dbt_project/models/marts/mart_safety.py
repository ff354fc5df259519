"""mart_safety: adverse events and IVIG discontinuations of the analysed patients (§1, §8).

A dbt Python model calling `ivig_platform.stats.safety_table`; the categories it always
shows are the contract's codes and "discontinued after an adverse event" is the primary
plan's definition, both read from the `protocol` tables.
"""

from ivig_platform.stats.dbt_models import safety_of


def model(dbt, session):
    dbt.config(materialized="table")
    # The patient-level marts are incremental by site (macros/rebuilt_sites.sql): their row
    # order depends on which sites the last builds rebuilt. Sorted here, the figures are the
    # same to the last bit however the file was built (sums depend on their order).
    # one literal dbt.source call per table: dbt finds a Python model's sources by
    # reading these calls, so a name in a variable would not be a dependency
    protocol_tables = {
        "fields": dbt.source("protocol", "fields").pl(),
        "vocabularies": dbt.source("protocol", "vocabularies").pl(),
        "analysis_plans": dbt.source("protocol", "analysis_plans").pl(),
    }
    return safety_of(
        adverse_events=dbt.ref("fct_adverse_event").order("all").pl(),
        patients=dbt.ref("dim_patient").order("all").pl(),
        cycles=dbt.ref("fct_ivig_cycle").order("all").pl(),
        protocol=protocol_tables,
    )
