"""dbt layer of the platform: builds the marts of protocol §8 in a build file."""

from ivig_platform.modeling.dbt_build import (
    DBT_PROJECT_DIR,
    DbtOutcome,
    NodeOutcome,
    build_marts,
)

__all__ = ["DBT_PROJECT_DIR", "DbtOutcome", "NodeOutcome", "build_marts"]
