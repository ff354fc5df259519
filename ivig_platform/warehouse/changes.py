"""Which sites a refresh must rebuild, and whether it may build incrementally at all.

A nightly refresh usually brings one or two site deliveries. An incremental build starts
from the published file and replaces only the rows of the sites whose deliveries changed;
everything here is pure so the decision can be pinned by tabular tests, and the refresh
says which way it built and why (a full build is never silent).

A site's rows in `landed.*` come from its accepted delivery and its rows in
`quality.quarantine` from all its landed (accepted or superseded) deliveries
(warehouse/build.py), so a site has changed when that set of deliveries — their ids,
content and which one is in force — differs between the published `quality.site_delivery`
and this run's. A site present on one side only (new, or removed from the inbox) has
changed too. A delivery the quality gate holds back is rejected, so it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from ivig_platform.states import ACCEPTED, SUPERSEDED
from ivig_platform.warehouse.build import BuildScope
from ivig_platform.warehouse.state import INBOX_ENTRIES, PUBLISHED_KEY

# The columns of `quality.site_delivery` that decide a site's landed and quarantined rows.
_ROW_SOURCE = ("delivery_id", "status", "content_sha256")

FULL_REQUESTED = "--full-refresh was given"
NO_PUBLISHED_FILE = "no published warehouse to start from"
NO_STATE = "the published warehouse has no recorded state"
NOT_THE_PUBLISHED_FILE = "the published warehouse is not the one the recorded state describes"
REKEY = "the pseudonym key changes (rekey)"
UNREADABLE = "the published warehouse's quality.site_delivery cannot be read"


def _site_sources(site_delivery: pl.DataFrame) -> pl.DataFrame:
    """site → its landed deliveries (id, status, content), as one comparable string."""
    landed = site_delivery.filter(pl.col("status").is_in([ACCEPTED, SUPERSEDED]))
    return (
        landed.sort("site_id", "delivery_id")
        .group_by("site_id", maintain_order=True)
        .agg(pl.concat_str([pl.col(c).fill_null("") for c in _ROW_SOURCE], separator="\0")
             .str.join("\n").alias("sources"))
    )


def changed_sites(published: pl.DataFrame, current: pl.DataFrame) -> frozenset[str]:
    """The sites whose landed or quarantined rows differ between two `site_delivery` frames.

    `published`: the published file's `quality.site_delivery`; `current`: this run's
    (`build.delivery_status` with the gate's held-back deliveries).
    """
    joined = _site_sources(published).join(
        _site_sources(current), on="site_id", how="full", coalesce=True, suffix="_now")
    differs = joined.filter(pl.col("sources").ne_missing(pl.col("sources_now")))
    return frozenset(differs["site_id"].to_list())


def full_build_reason(state: Mapping[str, str], recorded: Mapping[str, str] | None,
                      published_identity: str | None, *,
                      full_refresh: bool = False, rekey: bool = False) -> str | None:
    """Why this refresh must build in full, or None when it may start from the published file.

    `state`: this run's `state.current_state`; `recorded`: the state written at the last
    publish (`state.read_state`), whose `PUBLISHED_KEY` entry names the file it describes;
    `published_identity`: the file published now (`state.published_identity`). Everything
    but the inbox must match: the code, dbt project, protocol, plans, libraries and key the
    published file was built by.
    """
    if full_refresh:
        return FULL_REQUESTED
    if rekey:
        return REKEY
    if published_identity is None:
        return NO_PUBLISHED_FILE
    if recorded is None:
        return NO_STATE
    if recorded.get(PUBLISHED_KEY) != published_identity:
        return NOT_THE_PUBLISHED_FILE
    differing = sorted(
        name for name in (set(state) | set(recorded)) - INBOX_ENTRIES - {PUBLISHED_KEY}
        if state.get(name) != recorded.get(name))
    if differing:
        return "the published warehouse was built differently: " + ", ".join(differing)
    return None


def build_scope(reason: str | None, published_file: Path,
                published: pl.DataFrame | None, current: pl.DataFrame) -> BuildScope:
    """The build this refresh runs: full for `reason` (`full_build_reason`), else from a
    copy of `published_file` rebuilding the sites whose rows changed (`changed_sites`)."""
    if reason is None and published is None:
        reason = UNREADABLE
    if reason is not None:
        return BuildScope(reason=reason)
    return BuildScope(start_from=published_file, sites=changed_sites(published, current))
