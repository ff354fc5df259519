"""The study report: one self-contained HTML file from a published warehouse (issue 5).

``render_report(database, output)`` reads the DuckDB file read-only and writes the HTML
(inline CSS, inline SVG plots from Vega-Lite/vl-convert, no script, nothing fetched).

* ``privacy`` — protocol §6's ``<5`` rule (``mask_count``), used for every count shown.
* ``formatting`` — numbers, n (%), mean (SD), p-values.
* ``reference`` — protocol §1's published figures and their mapping to the marts.
* ``plots`` — the per-measure paired plots (every patient's line up to 300 pairs, above
  that a stated sample of lines with the median and interquartile band).
* ``sections`` — pure functions from frames to the sections' table models.
* ``data`` — the only I/O: reading the warehouse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from ivig_platform.protocol.in_force import run_under
from ivig_platform.protocol.load import Protocol
from ivig_platform.report.data import ReportData, read_warehouse
from ivig_platform.report.privacy import is_small, mask, mask_count, small_range
from ivig_platform.report.recorded import recorded_protocol
from ivig_platform.report.sections import header_facts, run_line, sections
from ivig_platform.warehouse.publish import CONTRACT_PAGE, DOCS_NAME

TITLE = "IVIG in systemic sclerosis: multicentre study report"
SUBTITLE = (
    "Intravenous immunoglobulin as add-on therapy in adults with systemic sclerosis; "
    "retrospective multicentre study (protocol v1)."
)

REPORT_NAME = "report.html"

__all__ = [
    "MASK",
    "REPORT_NAME",
    "build_html",
    "is_small",
    "mask_count",
    "read_warehouse",
    "render_build_report",
    "render_report",
    "render_warehouse_report",
]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def build_html(
    data: ReportData, *, published_figures: bool = True, generated_at: datetime | None = None,
    protocol: Protocol | None = None,
) -> str:
    """The report's HTML from the warehouse tables (no I/O).

    ``protocol``: the protocol the warehouse was built under, with the plans in force for
    its run (the refresh passes the one dbt got; ``ivig report`` the one the run recorded);
    default the protocol in force now. Rendered under that protocol (`run_under`), so every
    label, decimal and §6 rule the report's modules read comes from it."""
    generated_at = generated_at or datetime.now(UTC)
    with run_under(protocol) if protocol is not None else contextlib.nullcontext():
        return _render(data, published_figures=published_figures, generated_at=generated_at,
                       protocol=protocol)


def _render(data: ReportData, *, published_figures: bool, generated_at: datetime,
            protocol: Protocol | None) -> str:
    frames = data.frames
    return (
        _environment()
        .get_template("template.html.j2")
        .render(
            title=TITLE,
            subtitle=SUBTITLE,
            facts=header_facts(
                frames.get("marts.dim_patient"),
                frames.get("quality.refresh_run"),
                frames.get("marts.mart_cohort"),
                generated_at,
            ),
            provenance=run_line(frames.get("quality.run_record")),
            sections=sections(frames, published_figures=published_figures,
                              protocol=protocol),
            database_name=data.database_name or "the warehouse",
            contract_href=f"{DOCS_NAME}/{CONTRACT_PAGE}",
            # the footer states the rule the masking applied: privacy's, the one place it lives
            small_range=small_range(),
            mask=mask(),
        )
    )


def _write_atomically(html: str, output: Path) -> Path:
    """Written next to ``output`` and renamed over it: a reader never sees half a report."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


def render_report(database: Path, output: Path, *, published_figures: bool = True,
                  protocol: Protocol | None = None) -> Path:
    """Write the study report of ``database`` (a published DuckDB file) to ``output``.

    The file is written next to ``output`` and renamed over it, so a reader never sees a
    half-written report. ``published_figures`` adds the comparison with protocol §1.
    ``protocol``: as for ``build_html``; default the one the file's run recorded
    (``recorded.recorded_protocol``). Returns ``output``.
    """
    database, output = Path(database), Path(output)
    data = read_warehouse(database)
    protocol = protocol or recorded_protocol(data.get("quality.run_record"))
    html = build_html(data, published_figures=published_figures, protocol=protocol)
    return _write_atomically(html, output)


def render_build_report(database: Path, output: Path, *, published_name: str, run_id: str,
                        protocol: Protocol, published_figures: bool = True) -> Path:
    """The report of a run's build file, written to ``output`` before the publish.

    The refresh renders the report from the file it is about to publish, so the report
    and the published file always come from the same run (they are swapped in together).
    The report names the file as analysts will open it (``published_name``), and carries
    the run's id in an HTML comment (``<!-- ivig run: … -->``) so anyone can check which
    run made it.
    """
    database, output = Path(database), Path(output)
    data = dataclasses.replace(read_warehouse(database), database_name=published_name)
    html = build_html(data, published_figures=published_figures, protocol=protocol)
    return _write_atomically(f"{html.rstrip()}\n<!-- ivig run: {run_id} -->\n", output)


def render_warehouse_report(warehouse: Path, *, published_figures: bool = True) -> Path:
    """``WAREHOUSE/report.html`` from the published ``WAREHOUSE/ivig.duckdb``; for
    ``ivig report --warehouse DIR`` (the refresh uses ``render_build_report``)."""
    from ivig_platform.warehouse.publish import published_path

    warehouse = Path(warehouse)
    return render_report(
        published_path(warehouse), warehouse / REPORT_NAME, published_figures=published_figures
    )
