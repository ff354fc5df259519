"""Keyed pseudonyms for patient identifiers (protocol §6).

HMAC-SHA256 of site and identifier under a secret key from the environment: the same key
gives the same pseudonym on every refresh, the key never enters the warehouse, and
without it a pseudonym cannot be traced back even by someone holding the hospital's list
of medical record numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import polars as pl

KEY_VARIABLE = "IVIG_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16


class MissingKeyError(RuntimeError):
    pass


def load_key() -> bytes:
    """The pseudonymisation key; refusing to run without one keeps clear IDs out."""
    key = os.environ.get(KEY_VARIABLE, "")
    if not key:
        raise MissingKeyError(
            f"{KEY_VARIABLE} is not set: landing needs the study's pseudonymisation key "
            "(ask the coordinating centre; `ivig demo` makes one for its own folder)"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise MissingKeyError(
            f"{KEY_VARIABLE} is too short ({len(key)} characters; at least {MIN_KEY_LENGTH})"
        )
    return key.encode()


def key_fingerprint(key: bytes) -> str:
    """Identifies the key in manifests (so a new key re-lands) without revealing it."""
    return hmac.new(key, b"ivig-platform key fingerprint", hashlib.sha256).hexdigest()[:16]


def pseudonym(key: bytes, site_id: str, patient_id: str) -> str:
    message = f"{site_id}\x1f{patient_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def pseudonym_expr(ids: pl.Series, key: bytes, site_id: str) -> pl.Expr:
    """`patient_key` from `patient_id`, for a column whose identifiers are all in `ids`.

    One mapping serves every table of a delivery, so each identifier is hashed once.
    """
    old = ids.drop_nulls().unique()
    new = pl.Series([pseudonym(key, site_id, pid) for pid in old], dtype=pl.Utf8)
    return (
        pl.col("patient_id")
        .replace_strict(old, new, return_dtype=pl.Utf8)
        .alias("patient_key")
    )


def pseudonymise(frame: pl.DataFrame, key: bytes, site_id: str) -> pl.DataFrame:
    """Replace `patient_id` with `patient_key`; the clear identifier is dropped."""
    expr = pseudonym_expr(frame.get_column("patient_id"), key, site_id)
    return frame.with_columns(expr).drop("patient_id")
