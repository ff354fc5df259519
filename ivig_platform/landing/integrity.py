"""What a manifest promises about the files beside it, and checking that promise.

Each Parquet file is read back after it is written: the bytes on disk must be a whole
Parquet file with the rows and columns written, and those bytes' size and SHA-256 go
into the manifest's `landed_files`. A landing is then usable only if every file it lists
is there with that size and hash. Hashing is cheap next to what it protects (200 sites,
~1,400 files, 13 MB: about 0.1 s), so every refresh checks every landing it uses.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import polars as pl

from ivig_platform.landing.readers import sha256_file

FileRecord = dict[str, int | str]  # {"bytes": size, "sha256": hex digest}


def write_verified(frame: pl.DataFrame, path: Path) -> FileRecord:
    """Write `frame` as Parquet, read it back, and return the record of the bytes checked.

    The bytes read back must be a whole Parquet file (its footer is at the end, so a file
    cut short has none) holding the frame's rows and columns; the record describes
    exactly those bytes, so a manifest never names a file that was cut short or written
    wrong. The footer is enough: parsing every page again doubled the cost of writing
    (200 sites: ~2 s) and catches nothing a short write does not already show.
    """
    from pyarrow import parquet  # here: importing pyarrow costs ~1 s at the CLI's start

    frame.write_parquet(path)
    data = path.read_bytes()
    try:
        footer = parquet.read_metadata(io.BytesIO(data))
        complete = footer.num_rows == frame.height and \
            footer.schema.to_arrow_schema().names == frame.columns
    except Exception:  # not a Parquet file at all: as unusable as a wrong one
        complete = False
    if not complete:
        raise OSError(f"{path.name} did not read back as written")
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_problems(folder: Path, landed_files: dict[str, FileRecord],
                  expected: list[str]) -> list[str]:
    """Why the files in `folder` are not the ones the manifest lists (empty list: they are).

    `expected` are the files a landing of its status must have: a manifest that does not
    list one of them is as damaged as a missing file.
    """
    problems = [f"{name} not listed in the manifest" for name in expected
                if name not in landed_files]
    for name, record in sorted(landed_files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing (the manifest lists it)")
            continue
        size = path.stat().st_size
        if size != record["bytes"]:
            problems.append(f"{name} has {size} bytes, the manifest lists {record['bytes']}")
        elif sha256_file(path) != record["sha256"]:
            problems.append(f"{name} differs from the file landed (SHA-256)")
    return problems


def legacy_problems(folder: Path, row_counts: dict[str, int]) -> list[str]:
    """The checks possible on a landing whose manifest predates `landed_files`.

    Without recorded hashes, only presence and the row count in each Parquet footer
    (against the manifest's counts) can be checked; a file altered in place with the same
    number of rows goes unnoticed, which the caller says in its reason.
    """
    problems: list[str] = []
    for name, rows in sorted(row_counts.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        try:
            found = pl.scan_parquet(path).select(pl.len()).collect().item()
        except Exception:  # any reader error means the same thing here: unusable
            problems.append(f"{name} is not a readable Parquet file")
            continue
        if found != rows:
            problems.append(f"{name} has {found} rows, the manifest lists {rows}")
    return problems

