"""The pool of sites, against which one site's distribution is compared (site_drift).

`pool_stats` collects, for every site_drift check of the parameter tables, the values of its
column (filtered by its condition, e.g. `measure=ck`) from every site's tables. A site's
delivery is compared with the pooled median of the *other* sites (leave-one-out, so a site
never dilutes its own error). Which sites, and when: drift_reference.py — the reference is
fixed the first time a delivery is gated, over the sites established in the last published
warehouse (else every site's newest landed delivery), and kept, so sites arriving later
cannot move an unchanged delivery's verdict.

The pooled median is taken over the other sites' medians, each site counting once (a large
site cannot outvote the rest), and on the log scale (unit errors are multiplicative: with an
even number of sites the middle two are averaged geometrically). So one wrong site among
three or more others cannot drag the reference far (it stays between the good sites), and
good sites are not held back for their neighbour's error. With fewer other sites than the
check's `min_sites` the check is not evaluated; sites with fewer than `min_values` values
take no part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from ivig_platform.quality.registry import Check, checks

VALUES_SCHEMA: dict[str, pl.DataType] = {"site_id": pl.Utf8(), "value": pl.Float64()}


def drift_checks() -> list[Check]:
    return [c for c in checks() if c.check_type == "site_drift"]


def drift_key(check: Check) -> str:
    """The key of a drift check's values in PoolStats: suite, column and condition."""
    return f"{check.suite}/{check.column}[{check.condition}]"


def drift_values(check: Check, tables: dict[str, pl.DataFrame]) -> pl.Series:
    """The values a drift check compares, taken from one site's landed tables."""
    table = tables.get(check.suite.removeprefix("landed."))
    if table is None or check.column not in table.columns:
        return pl.Series("value", [], dtype=pl.Float64)
    pair = check.condition_pair
    if pair is not None:
        if pair[0] not in table.columns:
            return pl.Series("value", [], dtype=pl.Float64)
        table = table.filter(pl.col(pair[0]).cast(pl.Utf8) == pair[1])
    return table.get_column(check.column).cast(pl.Float64, strict=False).drop_nulls()


@dataclass(frozen=True)
class PoolStats:
    """Values of every drift check, per site: `values[drift_key]` = frame (site_id, value)."""

    values: dict[str, pl.DataFrame] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> PoolStats:
        return cls({})

    def others(self, key: str, site_id: str) -> pl.Series:
        """The pooled values of every site but `site_id`."""
        frame = self.values.get(key)
        if frame is None:
            return pl.Series("value", [], dtype=pl.Float64)
        return frame.filter(pl.col("site_id") != site_id).get_column("value")

    def reference(self, key: str, site_id: str, min_values: int
                  ) -> tuple[float | None, int]:
        """The pooled median of the other sites and how many sites it stands on.

        The median of the other sites' medians (sites with at least `min_values` values), on
        the log scale when every median is positive (see the module docstring); None when
        no other site qualifies.
        """
        frame = self.values.get(key)
        if frame is None:
            return None, 0
        medians = (
            frame.filter(pl.col("site_id") != site_id)
            .group_by("site_id")
            .agg(pl.len().alias("n"), pl.col("value").median().alias("median"))
            .filter(pl.col("n") >= min_values)
            .get_column("median")
        )
        if medians.is_empty():
            return None, 0
        if (medians > 0).all():
            return math.exp(float(medians.log().median())), medians.len()
        return float(medians.median()), medians.len()

    def site_medians(self) -> pl.DataFrame:
        """Per drift key and site: n and median (for reports)."""
        parts = [
            frame.group_by("site_id").agg(
                pl.len().alias("n"), pl.col("value").median().alias("median")
            ).with_columns(pl.lit(key).alias("check"))
            for key, frame in self.values.items()
        ]
        if not parts:
            return pl.DataFrame(schema={"check": pl.Utf8, "site_id": pl.Utf8,
                                        "n": pl.UInt32, "median": pl.Float64})
        return pl.concat(parts).select("check", "site_id", "n", "median").sort("check", "site_id")


def pool_stats(per_site_tables: dict[str, dict[str, pl.DataFrame]]) -> PoolStats:
    """Pool the drift-check values of every site (`{site_id: {table: frame}}`).

    Pass the tables each site would publish if it passed: for a site with a new delivery,
    that delivery; for the others, their accepted delivery.
    """
    values: dict[str, pl.DataFrame] = {}
    for check in drift_checks():
        parts = [
            pl.DataFrame({"site_id": site_id, "value": drift_values(check, tables)},
                         schema=VALUES_SCHEMA)
            for site_id, tables in sorted(per_site_tables.items())
        ]
        values[drift_key(check)] = (
            pl.concat(parts) if parts else pl.DataFrame(schema=VALUES_SCHEMA)
        )
    return PoolStats(values)
