"""mart_efficacy: the paired analysis of protocol §7 under the primary plan (§8).

A dbt Python model: it runs in the refresh's own Python and calls the Polars functions of
`ivig_platform.stats`, so the figures are those the statistics have always had (R-exact
tests and all), now inside dbt's lineage, docs and tests. The plan (measures, responder
rules, subgroups, summary conventions) is read from the `protocol` tables of the build
file; the labelled baseline and post assessments from fct_assessment.
"""

from ivig_platform.stats.dbt_models import efficacy_of_primary_plan


def model(dbt, session):
    dbt.config(materialized="table")
    # The patient-level marts are incremental by site (macros/rebuilt_sites.sql): their row
    # order depends on which sites the last builds rebuilt. Sorted here, the figures are the
    # same to the last bit however the file was built (sums depend on their order).
    # one literal dbt.source call per table: dbt finds a Python model's sources by
    # reading these calls, so a name in a variable would not be a dependency
    protocol_tables = {
        "protocol_info": dbt.source("protocol", "protocol_info").pl(),
        "analysis_plans": dbt.source("protocol", "analysis_plans").pl(),
        "plan_measures": dbt.source("protocol", "plan_measures").pl(),
        "plan_subgroups": dbt.source("protocol", "plan_subgroups").pl(),
    }
    return efficacy_of_primary_plan(
        assessments=dbt.ref("fct_assessment").order("all").pl(),
        patients=dbt.ref("dim_patient").order("all").pl(),
        protocol=protocol_tables,
    )
