"""Opening the published warehouse read-only, whichever backend keeps it.

Every reader of the published state (`ivig status|sql|report|explain`, the drift
references, the audit trail, the check deltas, `connect`) goes through here with the
path it always used, `WAREHOUSE/ivig.duckdb`: on the single-file backend that file is
opened read-only as before; on a lake warehouse (`WAREHOUSE/lake.json`, warehouse/lake.py)
the lake is attached read-only at the published snapshot, as catalog `ivig`, and
selected, so the same SQL reads the same tables. Any other path (a run's build file, a
kept version) is a plain DuckDB file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ivig_platform.warehouse.lake import Lake, current, lake_of, open_published
from ivig_platform.warehouse.publish import PUBLISHED_NAME, published_path


def lake_for(path: Path) -> Lake | None:
    """The lake whose published state `path` names (None: `path` is a DuckDB file)."""
    path = Path(path)
    return lake_of(path.parent) if path.name == PUBLISHED_NAME else None


def published_exists(path: Path) -> bool:
    """Whether there is something to read at `path` (on a lake: a publication row)."""
    lake = lake_for(path)
    return Path(path).is_file() if lake is None else current(lake) is not None


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    lake = lake_for(path)
    return duckdb.connect(str(path), read_only=True) if lake is None else open_published(lake)


def open_if_published(path: Path) -> duckdb.DuckDBPyConnection | None:
    """`open_read_only`, or None when nothing is published at `path`: the readers' one
    call (on a lake, one connection looks the publication up and attaches at it)."""
    lake = lake_for(path)
    if lake is None:
        return duckdb.connect(str(path), read_only=True) if Path(path).is_file() else None
    return open_published(lake, missing_ok=True)


def describe_published(warehouse: Path) -> str:
    """How the published state is named to people: the file, or the lake's snapshot."""
    lake = lake_of(Path(warehouse))
    if lake is None:
        return str(published_path(Path(warehouse)))
    published = current(lake)
    return lake.name() if published is None else lake.name(published.snapshot,
                                                           published.run_id)


def connect(warehouse: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection on WAREHOUSE's published state, for analysts.

    The single file is opened read-only; a lake is attached at its published snapshot
    and selected. Either way `SELECT * FROM marts.dim_patient` works, and the connection
    keeps reading what was published when it opened, whatever refreshes publish later
    (a new connection sees them).
    """
    con = open_if_published(published_path(Path(warehouse)))
    if con is None:
        raise FileNotFoundError(f"no published warehouse at {describe_published(warehouse)} "
                                "(run `ivig refresh` first)")
    return con
