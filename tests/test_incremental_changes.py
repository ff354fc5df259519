"""Which sites an incremental build rebuilds, and when it may build incrementally at all
(ivig_platform/warehouse/changes.py; issue 12, point 1)."""

from __future__ import annotations

import polars as pl
import pytest

from ivig_platform.warehouse.build import SITE_DELIVERY_SCHEMA
from ivig_platform.warehouse.changes import (
    FULL_REQUESTED,
    NO_PUBLISHED_FILE,
    NO_STATE,
    NOT_THE_PUBLISHED_FILE,
    REKEY,
    changed_sites,
    full_build_reason,
)
from ivig_platform.warehouse.state import PUBLISHED_KEY


def _site_delivery(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """(site, delivery, status, content) rows as a `quality.site_delivery` frame."""
    columns = ["site_id", "delivery_id", "status", "content_sha256"]
    frame = pl.DataFrame(rows, schema={c: SITE_DELIVERY_SCHEMA[c] for c in columns},
                         orient="row")
    return frame.with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in SITE_DELIVERY_SCHEMA.items()
        if name not in frame.columns
    ).select(list(SITE_DELIVERY_SCHEMA))


A1 = ("A", "2026-01", "accepted", "a1")
B1 = ("B", "2026-01", "accepted", "b1")
# (published rows, this run's rows, sites that changed, why)
CHANGE_CASES = [
    ([A1, B1], [A1, B1], set(), "nothing changed"),
    ([A1, B1], [("A", "2026-01", "superseded", "a1"), ("A", "2026-02", "accepted", "a2"), B1],
     {"A"}, "a re-delivery"),
    ([A1, B1], [("A", "2026-01", "accepted", "a1*"), B1], {"A"},
     "the same delivery id with other content"),
    ([A1, B1], [A1], {"B"}, "a site removed from the inbox"),
    ([A1], [A1, B1], {"B"}, "a new site"),
    ([A1, B1], [A1, ("A", "2026-02", "rejected", "a2"), B1], set(),
     "a rejected or held-back re-delivery leaves the site as it was"),
    ([A1, ("A", "2026-02", "rejected", "a2"), B1],
     [("A", "2026-01", "superseded", "a1"), ("A", "2026-02", "accepted", "a2"), B1],
     {"A"}, "a delivery held back before is accepted now"),
    ([("A", "2026-02", "accepted", "a2"), B1],
     [("A", "2026-01", "superseded", "a1"), ("A", "2026-02", "accepted", "a2"), B1],
     {"A"}, "an older delivery appears: its quarantine rows join the site's"),
    ([], [A1, B1], {"A", "B"}, "nothing published yet"),
    ([A1, B1], [], {"A", "B"}, "every site removed"),
]


@pytest.mark.parametrize(("published", "current", "expected", "why"), CHANGE_CASES,
                         ids=[case[-1] for case in CHANGE_CASES])
def test_changed_sites_are_those_whose_landed_deliveries_differ(published, current, expected,
                                                                 why):
    assert changed_sites(_site_delivery(published), _site_delivery(current)) == expected


STATE = {"inbox": "/inbox", "inbox_fingerprint": "i1", "code_fingerprint": "c1",
         "configuration_fingerprint": "p1", "library_fingerprint": "l1",
         "key_fingerprint": "k1", "settle_seconds": "0.0"}
RECORDED = {**STATE, PUBLISHED_KEY: "100:1"}
# (this run's state, recorded state, published identity, full_refresh, rekey, reason)
REASON_CASES = [
    (STATE, RECORDED, "100:1", False, False, None),
    ({**STATE, "inbox_fingerprint": "i2", "inbox": "/other"}, RECORDED, "100:1", False, False,
     None),
    (STATE, RECORDED, "100:1", True, False, FULL_REQUESTED),
    (STATE, RECORDED, "100:1", False, True, REKEY),
    (STATE, RECORDED, None, False, False, NO_PUBLISHED_FILE),
    (STATE, None, "100:1", False, False, NO_STATE),
    (STATE, RECORDED, "200:2", False, False, NOT_THE_PUBLISHED_FILE),
    ({**STATE, "code_fingerprint": "c2"}, RECORDED, "100:1", False, False,
     "the published warehouse was built differently: code_fingerprint"),
    ({**STATE, "configuration_fingerprint": "p2", "library_fingerprint": "l2"}, RECORDED,
     "100:1", False, False,
     "the published warehouse was built differently: configuration_fingerprint, "
     "library_fingerprint"),
    ({**STATE, "key_fingerprint": "k2"}, RECORDED, "100:1", False, False,
     "the published warehouse was built differently: key_fingerprint"),
]


@pytest.mark.parametrize(("state", "recorded", "identity", "full_refresh", "rekey", "reason"),
                         REASON_CASES)
def test_incremental_only_from_the_published_file_built_the_same_way(
        state, recorded, identity, full_refresh, rekey, reason):
    assert full_build_reason(state, recorded, identity, full_refresh=full_refresh,
                             rekey=rekey) == reason
