"""The static GX Data Docs site of a refresh, readable offline.

GX renders the site from an ephemeral context built here (nothing of a GX project on disk
but the site itself): the suites of `expectations/` and the validation results of this
refresh's gate runs. Its HTML then gets two fixes, because the warehouse machines and the
analysts' browsers may have no internet (and the platform must not call out):

1. GX's templates pull Bootstrap, jQuery, Font Awesome, Vega and a logo from CDNs; those
   tags are removed and a small inline stylesheet takes their place, so every page renders
   the same offline. That stylesheet is why the pages have a layout at all: GX's own
   `data_docs_default_styles.css` is inlined by its templates but only adjusts Bootstrap,
   so without the CDN a validation page was a bare column of text. It covers the classes
   GX's templates use (grid row and columns, cards, navigation, tables, alerts, badges).
   The widgets that need GX's JavaScript are removed, since offline they are dead: the
   index's tabs with their empty tables and "Clear Filters" buttons (the static summary
   lists every validation and suite instead), the "Validation Filter" card, and the
   "Show more info..." / notes toggles, whose content is shown instead. GX computes the
   favicon's relative path from the suite name's dots, one level short on validation
   pages; every `static/` path is re-rooted from the page's own depth. GX writes a
   suite's notes in red, as if each were a failure; they get the text's colour.
2. The index gets a static summary at the top: the verdicts in one line, the failed checks,
   one row per gate run (site and delivery, or the marts) with its verdict, counts by
   severity and links to each suite's validation page, then the suites.

The site is built in a sibling folder and swapped in, so a reader never sees half a site.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import polars as pl
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from ivig_platform.quality import _gx
from ivig_platform.quality.gate import GateResult
from ivig_platform.quality.registry import suite_specs
from ivig_platform.quality.suites import protocol_suites

SITE_NAME = "ivig_quality"
_EXTERNAL = re.compile(
    r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>\s*"
    r"|<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>\s*",
    re.IGNORECASE,
)
_LOGO = re.compile(r"src=\"https?://[^\"]*logo[^\"]*\"", re.IGNORECASE)

STYLE = """<style id="ivig-offline-style">
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 1.5rem 2rem;
color:#1f2933;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #d9dee3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f4f7}
a{color:#0b5cad}
.ivig-summary h1{font-size:1.5rem;margin:1rem 0 .25rem}
.ivig-summary h2{font-size:1.15rem;margin:1.25rem 0 .25rem}
.ivig-ok{color:#1a7f37;font-weight:600}.ivig-warn{color:#9a6700;font-weight:600}
.ivig-bad{color:#cf222e;font-weight:600}
.ivig-summary .ivig-note{color:#57606a;font-size:.9rem}
nav.navbar img,.navbar-brand img{height:28px}
.fas.fa-check-circle::before,.fa-check-circle::before{content:"\\2714";color:#1a7f37}
.fas.fa-times::before,.fa-times::before{content:"\\2716";color:#cf222e}
.fas.fa-exclamation-triangle::before{content:"\\26A0";color:#9a6700}
.collapse:not(.show){display:none}
body>footer{display:none}
.ivig-summary table{font-size:.92rem}
.ivig-summary td:nth-child(1){white-space:nowrap}
.ivig-failures td:last-child{min-width:14rem}
ol.breadcrumb{list-style:none;display:flex;gap:.5rem;padding:0;margin:.5rem 0}
ol.breadcrumb li+li::before{content:"/ ";color:#57606a}
.bootstrap-table,.fixed-table-toolbar{display:none}
nav.navbar{display:flex;align-items:center;height:auto!important;padding:.25rem 0;
border-bottom:1px solid #d9dee3;background:#fff}
nav.navbar img{height:36px!important}
.container-fluid{padding:1rem 0}
.row{display:flex;flex-wrap:wrap;gap:0 1.5rem}
.col-lg-2{flex:0 0 14rem;max-width:14rem}
.col-lg-10,.col-md-10{flex:1 1 0;min-width:0}
.col-12{flex:0 0 100%}.col-6{flex:1 1 20rem;min-width:0}
.sticky{position:sticky;top:.5rem}
.card{border:1px solid #d9dee3;border-radius:4px;margin:0 0 1rem}
.card-header{background:#f1f4f7;padding:.35rem .6rem;border-bottom:1px solid #d9dee3}
.card-body{padding:.5rem .75rem}
.nav{list-style:none;margin:0;padding:0}
.nav-link{display:block;padding:.1rem .3rem;text-decoration:none}
.ge-navigation-sidebar-container{max-height:65vh;overflow:auto}
.alert-secondary{background:#f1f4f7;border:1px solid #d9dee3;border-radius:4px;
padding:.5rem .75rem;margin:1rem 0 .5rem}
.badge{display:inline-block;background:#eef1f4;border-radius:3px;padding:0 .3rem;
font-family:ui-monospace,monospace;font-size:.85em}
.table{width:100%}.table-responsive{overflow-x:auto}
.lead{color:#57606a}
h4,h5,h6{margin:.75rem 0 .35rem}
.ge-navigation-sidebar-link{word-break:normal!important;overflow-wrap:anywhere!important}
.card-body div[style="color:red;"]{color:inherit!important}
</style>
"""
# Offline, these only need GX's JavaScript: removed with everything up to their </div>.
_DEAD_WIDGETS = (
    re.compile(r'<div[^>]*\bge-index-page-tabs-container\b[^>]*>'),
    re.compile(r'<div class="card mb-3">(?=\s*<div class="card-header p-2">\s*'
               r'<strong>Actions</strong>)'),
    re.compile(r'<div id="[^"]*-toolbar"[^>]*>(?=\s*<button)'),
)
_COLLAPSE_TOGGLE = re.compile(r'<a data-toggle="collapse"[^>]*>.*?</a>', re.DOTALL)
_COLLAPSED = re.compile(r'(<div id=[^ >]*collapse-body[^ >]* class="[^"]*?)\s*\bcollapse\b')
_STATIC = re.compile(r'((?:href|src)=")(?:\./|(?:\.\./)*)static/')
_DIV = re.compile(r"<div\b|</div>")


def _drop_divs(text: str, opening: re.Pattern[str]) -> str:
    """`text` without each <div> whose opening tag `opening` matches, nested ones and all."""
    while (found := opening.search(text)) is not None:
        depth, end = 0, len(text)
        for tag in _DIV.finditer(text, found.start()):
            depth += 1 if tag.group() == "<div" else -1
            if depth == 0:
                end = tag.end()
                break
        text = text[:found.start()] + text[end:]
    return text


def offline_page(text: str, root: str) -> str:
    """A GX page that works offline from `root` (its relative path to the site's folder,
    "" or "../../"): no CDN, no dead widget, collapsed content shown, static paths right."""
    text = _EXTERNAL.sub("", text)
    text = _LOGO.sub(f'src="{root}static/images/logo-long.png"', text)
    text = _STATIC.sub(rf"\g<1>{root}static/", text)
    for widget in _DEAD_WIDGETS:
        text = _drop_divs(text, widget)
    text = _COLLAPSED.sub(r"\1", _COLLAPSE_TOGGLE.sub("", text))
    return text.replace("</head>", STYLE + "</head>", 1)


def _rewrite(page: Path, root: str) -> None:
    page.write_text(offline_page(page.read_text(encoding="utf-8"), root), encoding="utf-8")


def _status(gate: GateResult) -> str:
    css = "ivig-ok" if gate.passed_errors and not gate.failures else (
        "ivig-warn" if gate.passed_errors else "ivig-bad"
    )
    return f'<span class="{css}">{html.escape(gate.verdict)}</span>'


def _gate_line(results: list[GateResult]) -> str:
    landing = [g for g in results if g.gate == "landing"]
    held = sum(not g.passed_errors for g in landing)
    warned = sum(g.passed_errors and bool(g.failures) for g in landing)
    parts = [f"{len(landing)} site deliveries checked: {held} held back, "
             f"{warned} passed with warnings, {len(landing) - held - warned} passed"]
    parts += [f"marts {g.verdict}" for g in results if g.gate == "marts"]
    return "; ".join(parts) + "."


def _summary(results: list[GateResult], links: dict[tuple[int, str], str],
             suite_links: dict[str, str]) -> str:
    e = html.escape
    run_ids = sorted({g.run_id for g in results})
    out = [
        '<section class="ivig-summary" id="ivig-summary">',
        "<h1>IVIG study: data-quality gates</h1>",
        f"<p><b>{e(_gate_line(results))}</b></p>",
        f'<p class="ivig-note">Refresh run {e(", ".join(run_ids)) or "-"}. A landing gate '
        "failing an <b>error</b> check holds the site's delivery back (its previous accepted "
        "delivery stays in force); the mart gate failing one blocks the publish. "
        "<b>warn</b> checks are reported only. Rate checks fail when the unexpected percent "
        "exceeds the threshold.</p>",
    ]
    failures = [(g, o) for g in results for o in g.failures]
    out.append(f"<h2>Failed checks ({len(failures)})</h2>")
    if failures:
        out.append(
            '<table class="ivig-failures"><tr><th>site / delivery</th><th>suite</th>'
            "<th>check (category)</th><th>column</th><th>severity</th>"
            "<th>unexpected % (threshold)</th><th>observed</th></tr>"
        )
        for gate, o in failures:
            pct = "" if o.unexpected_percent is None else f"{o.unexpected_percent:.1f}"
            if o.threshold is not None and pct:
                pct += f" (&le; {o.threshold:g})"
            css = "ivig-bad" if o.severity == "error" else "ivig-warn"
            out.append(
                f"<tr><td>{e(gate.label)}</td><td>{e(o.suite)}</td>"
                f'<td>{e(o.check_type)}<br><span class="ivig-note">{e(o.category)}</span></td>'
                f'<td>{e(o.column or "")}</td><td class="{css}">{e(o.severity)}</td>'
                f"<td>{pct}</td><td>{e(o.observed_value or '')}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    out += [
        "<h2>Gate runs</h2>",
        "<table><tr><th>gate</th><th>site / delivery</th><th>verdict</th>"
        "<th>error checks (failed)</th><th>warn checks (failed)</th>"
        "<th>validation results by suite</th></tr>",
    ]
    for i, gate in enumerate(results):
        c = gate.counts
        pages = []
        for run in gate.runs:
            failed = [o for o in gate.failures if o.suite == run.suite]
            mark = "\u2716" if any(o.severity == "error" for o in failed) else (
                "\u26a0" if failed else "\u2714")
            href = links.get((i, run.suite))
            name = f"{mark}&nbsp;{e(run.suite.split('.', 1)[-1])}"
            pages.append(f'<a href="{e(href)}" title="{e(run.suite)}">{name}</a>'
                         if href else name)
        out.append(
            f"<tr><td>{e(gate.gate)}</td><td>{e(gate.label)}</td><td>{_status(gate)}</td>"
            f"<td>{c['error']['checks']} ({c['error']['failed']})</td>"
            f"<td>{c['warn']['checks']} ({c['warn']['failed']})</td>"
            f"<td>{' &middot; '.join(pages)}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>Expectation suites</h2><ul>")
    for name, href in suite_links.items():
        out.append(f'<li><a href="{e(href)}">{e(name)}</a></li>')
    out.append("</ul></section>")
    return "\n".join(out)


def _relative(url: str, root: Path) -> str | None:
    path = Path(unquote(urlparse(url).path))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _delta_section(deltas: pl.DataFrame | None) -> str:
    """The checks whose verdict changed since the previous published run (issue 15)."""
    if deltas is None:
        return ""
    from ivig_platform.provenance.check_delta import site_summary

    e = html.escape
    previous = deltas.get_column("previous_run_id").drop_nulls().unique().to_list()
    out = ["<h2>Change since the previous published run</h2>",
           f'<p class="ivig-note">Compared with run {e(", ".join(previous) or "-")} '
           "(quality.check_delta): a failing check is <b>new</b>, <b>persisting</b> or "
           "<b>resolved</b>; each site by its newest delivery gated.</p>"]
    summary = site_summary(deltas)
    if summary.is_empty():
        return "\n".join([*out, "<p>No failing check in either run.</p>"])
    out.append('<table class="ivig-deltas"><tr><th>site</th><th>new</th><th>persisting</th>'
               "<th>resolved</th></tr>")
    for r in summary.iter_rows(named=True):
        site = "marts" if r["gate"] == "marts" else r["site_id"]
        cells = "".join(f"<td>{'<br>'.join(e(c) for c in r[k]) or '-'}</td>"
                        for k in ("new", "persisting", "resolved"))
        out.append(f"<tr><td>{e(site)}</td>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def build_data_docs(results: list[GateResult], docs_dir: Path,
                    deltas: pl.DataFrame | None = None) -> Path:
    """Build the static Data Docs site of `results` in `docs_dir`; return its index.html.

    `deltas` (`quality.check_delta` rows) adds the change since the previous published
    run to the summary."""
    docs_dir = Path(docs_dir).resolve()
    docs_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{docs_dir.name}.", dir=docs_dir.parent))
    try:
        context = _gx.new_context()
        context.add_data_docs_site(SITE_NAME, {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(staging),
            },
        })
        used = {run.suite for gate in results for run in gate.runs}
        suites = protocol_suites()
        for name in sorted(used | set(suites)):
            if name in suites:
                context.suites.add(suites[name])
        # A pooled validation (quality/pooled.py) is shared by the runs of many gates:
        # stored and rendered once, linked from each of them.
        keys: dict[tuple[int, str], ValidationResultIdentifier] = {}
        stored: set[tuple] = set()
        for i, gate in enumerate(results):
            for run in gate.runs:
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(name=run.suite),
                    run_id=run.result.meta["run_id"],
                    batch_identifier=run.batch_identifier,
                )
                if key.to_tuple() not in stored:
                    context.validation_results_store.set(key, run.result)
                    stored.add(key.to_tuple())
                keys[(i, run.suite)] = key
        unique_keys = {key.to_tuple(): key for key in keys.values()}
        context.build_data_docs(site_names=[SITE_NAME])
        pages = {}
        for name, key in unique_keys.items():
            urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME)
            relative = _relative(urls[0]["site_url"], staging) if urls else None
            if relative:
                pages[name] = relative
        links = {index: pages[key.to_tuple()] for index, key in keys.items()
                 if key.to_tuple() in pages}
        order = list(suite_specs())
        suite_links = {}
        for name in sorted(suites, key=lambda n: order.index(n) if n in order else len(order)):
            urls = context.get_docs_sites_urls(
                resource_identifier=ExpectationSuiteIdentifier(name=name), site_name=SITE_NAME)
            relative = _relative(urls[0]["site_url"], staging) if urls else None
            if relative and (staging / relative).exists():
                suite_links[name] = relative
        for page in staging.rglob("*.html"):
            _rewrite(page, "../" * (len(page.relative_to(staging).parts) - 1))
        index = staging / "index.html"
        text = index.read_text(encoding="utf-8")
        body = re.search(r"<body[^>]*>", text)
        cut = body.end() if body else 0
        index.write_text(
            text[:cut] + _summary(results, links, suite_links).replace(
                "<h2>Gate runs</h2>", _delta_section(deltas) + "\n<h2>Gate runs</h2>", 1)
            + text[cut:], encoding="utf-8"
        )
        old = docs_dir.with_name(f".{docs_dir.name}.old-{os.getpid()}")
        if docs_dir.exists():
            docs_dir.rename(old)
        staging.rename(docs_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return docs_dir / "index.html"
