"""The plain-script baseline of issue 12: the whole protocol in one process, no orchestration.

Usage: python -m benchmarks._script_child INBOX IN_FORCE_JSON SUMMARY_JSON

What a biostatistician would write instead of the platform: no Prefect, no dbt, no Great
Expectations, no warehouse file, nothing written but the result. It reuses the platform's
pure functions, never copies of them, so the baseline does the same work by the same rules:

1. the deliveries of the inbox (`landing.discovery.discover_deliveries`);
2. each in-force delivery read (`landing.readers.read_delivery`), checked against the row
   rules of the contract in force (`landing.rules.check_delivery`) and pseudonymised with
   one keyed mapping over its five tables (`landing.pseudonym.pseudonym_expr`), as
   `landing.land` does — in memory with Polars, no Parquet, manifest or quarantine file;
3. the analysis windows of the primary plan (`quality.windows.analysis_windows`, §7) over
   every site's cycles and assessments, and dim_patient's inputs of the efficacy table
   (`n_cycles`, the subgroup columns and the `<field>_<code>` flags of list fields);
4. the efficacy table (`stats.efficacy.efficacy_table` under the primary plan's spec, the
   function dbt's mart_efficacy model calls).

A script without a quality gate cannot hold a delivery back, so it does not choose the
in-force delivery of each site itself: IN_FORCE_JSON (site → delivery id) is the cold
refresh's list of accepted deliveries (its summary, as in `quality.site_delivery`), and the
script reads only those. That is the fair baseline: the same data, the decision that only
the gate can make taken from the platform, the platform's extra work (landing superseded
deliveries, the gate itself, the warehouse, dbt's tests, Data Docs, the report) not done.

`quality.windows` is loaded as a file of its own: its package's `__init__` imports Great
Expectations (about 8 s of imports) and the windows need nothing of it.

The summary (SUMMARY_JSON and the `BENCH_SUMMARY ` line) holds the efficacy rows, so the
harness can check them against `marts.mart_efficacy` of the cold warehouse, the landed
row counts and the seconds of each step.
"""

from __future__ import annotations

import sys
import time

from benchmarks._summary import write_summary

T0 = time.perf_counter()


def _since() -> float:
    return round(time.perf_counter() - T0, 4)


def windows_module():
    """`ivig_platform/quality/windows.py` without `ivig_platform/quality/__init__.py`."""
    import importlib.util
    from pathlib import Path

    import ivig_platform

    path = Path(ivig_platform.__file__).parent / "quality" / "windows.py"
    spec = importlib.util.spec_from_file_location("_baseline_windows", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_force_deliveries(inbox, in_force: dict[str, str]) -> list:
    """The inbox's deliveries that are in force; every one of them must be there."""
    from ivig_platform.landing.discovery import discover_deliveries

    found = [d for d in discover_deliveries(inbox) if in_force.get(d.site_id) == d.delivery_id]
    missing = set(in_force.items()) - {(d.site_id, d.delivery_id) for d in found}
    if missing:
        raise SystemExit(f"in-force deliveries not in the inbox: {sorted(missing)}")
    return found


def land_in_memory(delivery, key: bytes, contract, today) -> dict:
    """One delivery's landed tables (data columns, `patient_key` and `site_id`), as landing
    makes them but kept in memory: read, row rules, one pseudonym mapping per delivery."""
    import polars as pl

    from ivig_platform.landing.contract import TABLES
    from ivig_platform.landing.manifest import delivery_date
    from ivig_platform.landing.pseudonym import pseudonym_expr
    from ivig_platform.landing.readers import read_delivery
    from ivig_platform.landing.rules import check_delivery
    from ivig_platform.landing.schema import LANDED

    raw = read_delivery(delivery.path, contract)
    checked = check_delivery(raw, delivery_date(delivery.delivery_id, today), contract)
    ids = pl.concat([checked[name].landed.get_column("patient_id") for name in TABLES])
    patient_key = pseudonym_expr(ids, key, delivery.site_id)
    derived = {"patient_key": patient_key}
    return {
        name: checked[name].landed.select(
            *(derived.get(c, pl.col(c)).cast(t).alias(c) for c, t in LANDED[name].items()),
            pl.lit(delivery.site_id).alias("site_id"))
        for name in TABLES
    }


def patients_for_efficacy(patients, cycles, spec):
    """dim_patient's columns that the efficacy table reads: `n_cycles` (0 without a cycle),
    the subgroups' columns, and one flag per code of a list field (`indication_<code>`)."""
    import polars as pl

    n_cycles = cycles.group_by("patient_key").agg(pl.len().cast(pl.Int64).alias("n_cycles"))
    flags = [pl.col(column).list.contains(code).fill_null(False).alias(f"{column}_{code}")
             for column, codes in spec.list_columns.items() for code in codes]
    plain = list(dict.fromkeys(g.column for g in spec.subgroups if g.column and g.kind != "list"))
    return (patients.join(n_cycles, on="patient_key", how="left")
            .select("patient_key", pl.col("n_cycles").fill_null(0), *plain, *flags))


def main(argv: list[str]) -> int:
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    inbox, in_force_path, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    marks: dict[str, float] = {}
    import polars as pl

    from ivig_platform.landing.contract import TABLES, landing_contract
    from ivig_platform.landing.pseudonym import load_key
    from ivig_platform.protocol.load import load_protocol
    from ivig_platform.stats.dbt_models import labelled_assessments
    from ivig_platform.stats.efficacy import efficacy_table
    from ivig_platform.stats.spec import efficacy_specs

    windows = windows_module()
    marks["imported"] = _since()

    protocol = load_protocol()
    contract = landing_contract(protocol)
    spec = efficacy_specs(protocol)[0]  # the primary plan
    key = load_key()
    deliveries = in_force_deliveries(inbox, json.loads(in_force_path.read_text()))
    marks["discovered"] = _since()

    today = datetime.now(UTC).date()
    landed = [land_in_memory(d, key, contract, today) for d in deliveries]
    tables = {name: pl.concat([t[name] for t in landed], how="vertical") for name in TABLES}
    marks["landed"] = _since()

    window_rows = windows.analysis_windows(tables["ivig_cycles"], tables["assessments"],
                                           protocol.primary_plan.windows)
    # fct_assessment's rows as mart_efficacy reads them: one per selected baseline and post
    labelled = labelled_assessments(
        window_rows.with_columns(pl.lit(spec.plan).alias("analysis_plan"))
    ).drop("analysis_plan")
    patients = patients_for_efficacy(tables["patients"], tables["ivig_cycles"], spec)
    marks["windowed"] = _since()

    efficacy = efficacy_table(labelled, patients, spec)
    marks["efficacy"] = _since()

    write_summary(out, {
        "deliveries": len(deliveries),
        "rows_landed": {name: frame.height for name, frame in tables.items()},
        "rows_landed_total": sum(frame.height for frame in tables.values()),
        "analysis_plan": spec.plan,
        "efficacy": efficacy.to_dicts(),
        "marks": marks,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
