"""Named, independent random streams derived from the demo seed.

Each part of the generator draws from its own stream, so changing how one part draws does not
shift the numbers of another.  Names are hashed with CRC-32 (stable across processes, unlike
Python's salted ``hash``).
"""

from __future__ import annotations

import zlib

import numpy as np


def child_rng(seed: int, name: str) -> np.random.Generator:
    """A PCG64 generator for the part of the demo called ``name``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
