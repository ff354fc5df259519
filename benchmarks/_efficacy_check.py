"""Does the plain-script baseline compute the platform's figures? Its efficacy rows against
`marts.mart_efficacy` of the cold warehouse.

Usage: python -m benchmarks._efficacy_check WAREHOUSE SCRIPT_SUMMARY_JSON RESULT_JSON

The harness runs this after the `script` scenario, untimed, in a process of its own (the
harness stays small: a child's max RSS starts at its parent's size). The published file
is opened read-only, as an analyst would. A baseline that computes other numbers is no
baseline, so the result says `matches` and, when not, the first difference.

Compared, per (subgroup, subgroup_value, measure): the counts, the means and medians of
baseline, post and change, and the two p-values, floats to 9 significant digits
(`math.isclose`, rel 1e-9; the two sides run the same Polars code over the same rows, so
only the order of a float sum could move them).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

KEY = ("subgroup", "subgroup_value", "measure")
COUNTS = ("n_paired", "n_baseline_only", "n_post_only", "n_responders")
FLOATS = ("baseline_mean", "baseline_median", "post_mean", "post_median", "mean_change",
          "ttest_p", "wilcoxon_p")
REL_TOL, ABS_TOL = 1e-9, 1e-12


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def compare_efficacy(script: list[dict], mart: list[dict]) -> dict:
    """`matches`, the number of rows of each side and the first difference (None if none):
    a row on one side only, or a column whose values differ."""
    def keyed(rows: list[dict]) -> dict[tuple, dict]:
        return {tuple(r.get(k) for k in KEY): r for r in rows}

    mine, theirs = keyed(script), keyed(mart)
    result = {"matches": False, "rows_script": len(script), "rows_mart": len(mart),
              "compared": [*COUNTS, *FLOATS], "first_difference": None}
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        if key not in theirs or key not in mine:
            result["first_difference"] = {
                "row": dict(zip(KEY, key, strict=True)),
                "only_in": "script" if key in mine else "mart_efficacy"}
            return result
        for column in (*COUNTS, *FLOATS):
            a, b = mine[key].get(column), theirs[key].get(column)
            if not _same(a, b):
                result["first_difference"] = {"row": dict(zip(KEY, key, strict=True)),
                                              "column": column, "script": a,
                                              "mart_efficacy": b}
                return result
    result["matches"] = len(script) == len(mart) and len(script) > 0
    if not result["matches"]:
        result["first_difference"] = {"rows": f"{len(script)} rows from the script, "
                                              f"{len(mart)} in mart_efficacy"}
    return result


def mart_efficacy(warehouse: Path) -> list[dict]:
    """`marts.mart_efficacy` of the published file, read-only."""
    import duckdb

    from ivig_platform.warehouse.publish import published_path

    con = duckdb.connect(str(published_path(warehouse)), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM marts.mart_efficacy")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def main(argv: list[str]) -> int:
    warehouse, summary_path, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    script = json.loads(summary_path.read_text()).get("efficacy", [])
    result = compare_efficacy(script, mart_efficacy(warehouse))
    out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
