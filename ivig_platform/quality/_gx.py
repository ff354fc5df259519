"""Great Expectations, kept offline, file-free and fed pandas frames built from Polars.

Why pandas dataframe assets and not GX's SQL datasource on the DuckDB file: GX 1.x's
SqlAlchemy execution engine fails against DuckDB through duckdb-engine (an IndexError in
`SqlAlchemyExecutionEngine.resolve_metric_bundle`, GX issues #10738 and #11579), and the
frames the gate checks are small (one site, or the marts of a few thousand patients) and
partly derived in Polars anyway. So every batch is an in-memory pandas frame converted here,
column by column, with a fixed mapping that keeps the contract's type families visible to
`expect_column_values_to_be_of_type` (see TYPE_FAMILIES).

The context is ephemeral (in-memory stores, nothing written, no GX project folder needed),
analytics are off (GX_ANALYTICS_ENABLED=false before GX is imported, and
`analytics_enabled=False` in the context config) and progress bars are off. One context
serves the process; a lock serialises validations because GX contexts are not thread-safe
and the refresh runs sites in threads.
"""

from __future__ import annotations

import os
import threading
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402  (after the environment is set)
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
from great_expectations.core.expectation_validation_result import (  # noqa: E402
    ExpectationSuiteValidationResult,
)
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

# Contract type family -> the `type_` of expect_column_values_to_be_of_type, given how
# `to_pandas` converts each Polars type:
#   string    Utf8/Categorical/Enum -> pandas' string dtype (`str`, null -> NaN; pandas 2
#                                      gives object of str, which GX checks value by value)
#   integer   any integer width      -> pandas nullable Int64
#   float     Float32/64, Decimal    -> float64 (null -> NaN)
#   boolean   Boolean                -> pandas nullable boolean
#   date      Date (and naive Datetime, which this check cannot tell from a Date)
#                                    -> datetime64
#   timestamp Datetime with a time zone -> datetime64[.., tz] (pandas Timestamp)
#   list      List                   -> object column of Python lists
TYPE_FAMILIES: dict[str, str] = {
    "string": "str",
    "integer": "int64",
    "float": "float64",
    "boolean": "bool",
    "date": "datetime64",
    "timestamp": "Timestamp",
    "list": "list",
}

RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
# A pooled validation (many site deliveries in one frame, see quality/pooled.py) needs every
# unexpected row's index to attribute it to its delivery.
POOLED_RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 10}

_LOCK = threading.RLock()
_STATE: dict[str, Any] = {}


def new_context() -> Any:
    """A fresh ephemeral, offline context (nothing on disk, analytics and progress bars off)."""
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _batch_definition(asset_name: str) -> Any:
    if "context" not in _STATE:
        context = new_context()
        _STATE["context"] = context
        _STATE["datasource"] = context.data_sources.add_pandas("ivig_quality_frames")
        _STATE["definitions"] = {}
    definitions: dict[str, Any] = _STATE["definitions"]
    if asset_name not in definitions:
        asset = _STATE["datasource"].add_dataframe_asset(asset_name)
        definitions[asset_name] = asset.add_batch_definition_whole_dataframe("whole_frame")
    return definitions[asset_name]


def validate(suite: gx.ExpectationSuite, frame: pd.DataFrame, parameters: dict[str, Any],
             result_format: dict[str, Any] | None = None) -> ExpectationSuiteValidationResult:
    """Validate one in-memory frame against one suite (thread-safe)."""
    with _LOCK:
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(
            suite, result_format=result_format or RESULT_FORMAT,
            expectation_parameters=parameters,
        )


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Convert a Polars frame for GX with the fixed type mapping of TYPE_FAMILIES."""
    columns: dict[str, pd.Series] = {}
    for name, dtype in frame.schema.items():
        series = frame.get_column(name)
        if dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum):
            columns[name] = series.cast(pl.Utf8).to_pandas()
        elif dtype.is_integer():
            columns[name] = pd.Series(series.to_list(), dtype="Int64")
        elif dtype.is_float() or isinstance(dtype, pl.Decimal):
            columns[name] = pd.Series(series.cast(pl.Float64).to_numpy(), dtype="float64")
        elif dtype == pl.Boolean:
            columns[name] = pd.Series(series.to_list(), dtype="boolean")
        elif dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
            columns[name] = series.to_pandas()
        else:  # List, Struct, Null, ...: plain Python objects
            columns[name] = pd.Series(series.to_list(), dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(frame.height))
