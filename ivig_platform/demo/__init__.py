"""Deterministic demo inbox: 18 Spanish hospitals' extracts reproducing the published study.

``write_demo_inbox(inbox)`` writes the site deliveries (protocol §2, every format variant of
§4, bad rows for every quarantine rule of §5, a newer delivery the quality gate holds back and a
sparse site it warns about) and returns a ``DemoTruth`` with what a correct platform must land,
quarantine, hold back and publish.
"""

from ivig_platform.demo.generator import write_demo_inbox
from ivig_platform.demo.truth import DemoTruth

__all__ = ["DemoTruth", "write_demo_inbox"]
