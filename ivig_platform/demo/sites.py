"""The demo hospitals and the file format each one writes (protocol §2 and §4).

Eighteen formats, one per site of the published cohort, chosen so that between them they use
every variant protocol §4 allows.  Larger demos reuse them round-robin, so every variant keeps
the same share of sites at any scale.  Landing must read all of them with no per-site settings;
``SiteFormat`` exists only on the writing side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from ivig_platform.demo.wording import Wording

Container = Literal["csv", "xlsx"]


@dataclass(frozen=True)
class SiteFormat:
    """How one hospital writes its extract.

    ``identifier_columns`` are (header, field) pairs of direct identifiers the hospital leaves
    in its patients table (field one of first_name, surnames, national_id, phone); landing must
    drop them.  ``id_style`` shapes the medical record numbers.
    """

    label: str
    container: Container = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"  # utf-8, utf-8-sig (with BOM) or cp1252
    newline: str = "\n"
    headers: str = "en"  # a key of vocab.HEADER_STYLES
    dates: str = "iso"  # iso, dmy_slash, dmy_dash (xlsx: real date cells)
    language: str = "en"  # language of category values, drug names and AE terms
    odd_values: bool = False  # mixed case / accents / spaces / abbreviations in categories
    ck_unit: str = "u0 upper"  # a unit recipe (wording.py): u<i> = the contract's i-th CK unit
    identifier_columns: tuple[tuple[str, str], ...] = ()
    id_style: str = "digits8"  # digits7, digits8 or a prefix ending in "-" or a letter
    group_thousands: bool = True  # only meaningful with ";" (Spanish number format)

    @property
    def decimal_comma(self) -> bool:
        """Protocol §4: numbers are written the Spanish way exactly when the delimiter is ";"."""
        return self.container == "csv" and self.delimiter == ";"

    @property
    def date_format(self) -> str:
        return {"iso": "%Y-%m-%d", "dmy_slash": "%d/%m/%Y", "dmy_dash": "%d-%m-%Y"}[self.dates]

    def describe(self) -> str:
        """One line naming the variants this site uses (for reports and the final summary)."""
        if self.container == "xlsx":
            parts = ["xlsx (real date and number cells)"]
        else:
            delim = {",": "','", ";": "';'", "\t": "tab"}[self.delimiter]
            enc = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8+BOM", "cp1252": "Windows-1252"}
            eol = "CRLF" if self.newline == "\r\n" else "LF"
            parts = [f"csv {delim} {enc[self.encoding]} {eol}", f"dates {self.dates}"]
            if self.decimal_comma:
                parts.append("decimal comma" + (" + '.' thousands" if self.group_thousands else ""))
        parts.append(f"headers {self.headers}")
        parts.append(f"values {self.language}{' odd' if self.odd_values else ''}")
        parts.append(f"CK {self.ck_unit}")
        if self.identifier_columns:
            parts.append("extra ids " + "/".join(h for h, _ in self.identifier_columns))
        return ", ".join(parts)


_ES_IDS = (("nombre", "first_name"), ("apellidos", "surnames"), ("dni", "national_id"))

# The 18 published hospitals, each with its format.  Order matters: site k of a larger demo
# uses FORMATS[k % 18].
SITES: tuple[tuple[str, SiteFormat], ...] = (
    ("hu-vall-hebron", SiteFormat("plain")),
    (
        "hu-12-octubre",
        SiteFormat(
            "semicolon-cp1252",
            delimiter=";",
            encoding="cp1252",
            newline="\r\n",
            headers="es_title",
            dates="dmy_slash",
            language="es",
            odd_values=True,
            ck_unit="u1 upper",
            identifier_columns=(*_ES_IDS, ("telefono", "phone")),
            id_style="digits7",
        ),
    ),
    (
        "h-clinic-barcelona",
        SiteFormat(
            "xlsx-english",
            container="xlsx",
            headers="en_title",
            odd_values=True,
            ck_unit="u3 micro m:.....U",
            identifier_columns=(
                ("first_name", "first_name"),
                ("last_name", "surnames"),
                ("national_id", "national_id"),
                ("phone", "phone"),
            ),
            id_style="HCB",
        ),
    ),
    (
        "hu-la-paz",
        SiteFormat(
            "tab-bom-crlf",
            delimiter="\t",
            encoding="utf-8-sig",
            newline="\r\n",
            headers="es",
            dates="dmy_dash",
            language="es",
            ck_unit="u2 upper",
        ),
    ),
    (
        "hgu-gregorio-maranon",
        SiteFormat(
            "spanish-upper-headers",
            headers="es_upper",
            dates="dmy_slash",
            language="es",
            odd_values=True,
            identifier_columns=(("Nombre", "first_name"), ("Apellidos", "surnames")),
            id_style="HGM-",
        ),
    ),
    (
        "hu-bellvitge",
        SiteFormat(
            "semicolon-cp1252-ukat",
            delimiter=";",
            encoding="cp1252",
            headers="es_upper",
            dates="dmy_slash",
            language="es",
            ck_unit="u3 m:.....U",
            identifier_columns=(("DNI", "national_id"), ("Teléfono", "phone")),
            id_style="digits7",
        ),
    ),
    (
        "hu-la-fe",
        SiteFormat(
            "xlsx-spanish",
            container="xlsx",
            headers="es_title",
            language="es",
            odd_values=True,
            identifier_columns=_ES_IDS,
        ),
    ),
    ("hu-virgen-del-rocio", SiteFormat("comma-bom", encoding="utf-8-sig", ck_unit="u2 upper")),
    (
        "hu-marques-valdecilla",
        SiteFormat("tab-utf8", delimiter="\t", headers="en_title", id_style="HUMV"),
    ),
    (
        "hu-cruces",
        SiteFormat(
            "semicolon-cp1252-crlf",
            delimiter=";",
            encoding="cp1252",
            newline="\r\n",
            headers="es_title",
            dates="dmy_dash",
            language="es",
            odd_values=True,
            ck_unit="u3 micro m:.....U",
            identifier_columns=(
                ("nombre", "first_name"),
                ("apellidos", "surnames"),
                ("telefono", "phone"),
            ),
        ),
    ),
    (
        "hu-reina-sofia",
        SiteFormat(
            "comma-crlf-spanish",
            newline="\r\n",
            headers="es_nhc",
            language="es",
            ck_unit="u1 upper",
            id_style="digits7",
        ),
    ),
    (
        "hu-ramon-y-cajal",
        SiteFormat(
            "semicolon-utf8",
            delimiter=";",
            headers="es_upper",
            dates="dmy_slash",
            language="es",
            odd_values=True,
            identifier_columns=(("dni", "national_id"),),
            group_thousands=False,
        ),
    ),
    (
        "h-sant-pau",
        SiteFormat(
            "comma-dayfirst-english",
            dates="dmy_slash",
            odd_values=True,
            identifier_columns=(("national_id", "national_id"), ("phone", "phone")),
            id_style="HSP-",
        ),
    ),
    (
        "hu-germans-trias",
        SiteFormat(
            "tab-bom-crlf-spanish",
            delimiter="\t",
            encoding="utf-8-sig",
            newline="\r\n",
            headers="es_title",
            dates="dmy_slash",
            language="es",
            ck_unit="u3 m:.....U",
        ),
    ),
    (
        "hcu-lozano-blesa",
        SiteFormat(
            "semicolon-cp1252-ids",
            delimiter=";",
            encoding="cp1252",
            newline="\r\n",
            headers="es_upper",
            language="es",
            identifier_columns=(*_ES_IDS, ("telefono", "phone")),
            id_style="digits7",
        ),
    ),
    (
        "hu-central-asturias",
        SiteFormat("comma-dmy-dash", headers="en_title", dates="dmy_dash", ck_unit="u2 upper"),
    ),
    (
        "hu-virgen-arrixaca",
        SiteFormat(
            "xlsx-spanish-snake",
            container="xlsx",
            headers="es",
            language="es",
            ck_unit="u1 upper",
            identifier_columns=(("telefono", "phone"),),
            id_style="digits7",
        ),
    ),
    ("hu-donostia", SiteFormat("comma-ukat", ck_unit="u3 micro m:.....U", id_style="HUD")),
)

# Delivery-level scenarios (by site position; larger demos keep the same positions).
TWO_DELIVERY_SITE = 3  # hu-la-paz: an older delivery superseded by the newer one
BROKEN_NEWEST_SITE = 9  # hu-cruces: newest delivery lacks assessments.csv -> rejected
# hu-donostia: a newer delivery whose CK says U/L but is in µkat/L -> the quality gate holds it
# back (site drift, severity error) and the older one stays in force.
HELD_BACK_SITE = 17
# hu-reina-sofia: most of its myositis patients lack a post MRC (strength not re-tested)
# -> a `warn` of the quality gate (measure completeness).  MRC because the cohort draws it
# last: the sparse site leaves every CK, mRSS and UCLA value of the demo as it was.
WARN_SITE = 10
WARN_MEASURE = "mrc"
WARN_TIMEPOINT = "post"
WARN_MIN_PATIENTS = 3  # the gate judges completeness only among >= 3 followed patients
OLDER_DELIVERY = dt.date(2026, 6, 30)
OLDER_DELIVERY_OF_BROKEN = dt.date(2026, 7, 15)
FIRST_DELIVERY = dt.date(2026, 9, 1)
DELIVERY_SPAN_DAYS = 80  # main deliveries fall on 2026-09-01 .. 2026-11-19
HELD_BACK_DELAY_DAYS = 3  # the held-back delivery comes this many days after the main one
MISSING_TABLE_OF_BROKEN = "assessments"  # -> rejected with reason missing_table
MISLABELLED_CK_UNIT = "u0 upper"  # the unit recipe the held-back delivery labels its µkat/L CK with


@dataclass(frozen=True)
class Site:
    """One demo site: its id, format, and the ids and dates of its deliveries (oldest first).

    ``rejected_newest``: the newest delivery lacks a table (landing rejects it).
    ``held_back_newest``: the newest delivery lands cleanly but the quality gate holds it back.
    Either way the delivery before it is the one in force.
    """

    index: int
    site_id: str
    fmt: SiteFormat
    deliveries: tuple[dt.date, ...]
    rejected_newest: bool = False
    held_back_newest: bool = False

    def tables_written(self, delivery: dt.date, tables: tuple[str, ...]) -> list[str]:
        """Tables present in a delivery: all `tables`, except the one the broken newest
        lacks."""
        broken = self.rejected_newest and delivery == self.deliveries[-1]
        return [t for t in tables if not (broken and t == MISSING_TABLE_OF_BROKEN)]

    @property
    def accepted_delivery(self) -> dt.date:
        """The delivery in force: the newest, unless the newest is broken or held back."""
        newest_unusable = self.rejected_newest or self.held_back_newest
        return self.deliveries[-2] if newest_unusable else self.deliveries[-1]


class Specials(NamedTuple):
    """Positions of the sites with a delivery-level or quality-gate scenario (all distinct).

    ``held_back`` is None when no CSV site writing CK in µkat/L with room for a later delivery
    is free (demos of fewer than 6 sites).  ``warn_candidates``: the free positions from
    WARN_SITE on, in order; the cohort makes the first with enough patients followed for
    WARN_MEASURE sparse (empty below 4 sites)."""

    two: int
    broken: int
    held_back: int | None
    warn_candidates: tuple[int, ...]


def _main_delivery(k: int) -> dt.date:
    return FIRST_DELIVERY + dt.timedelta(days=(k * 23) % DELIVERY_SPAN_DAYS)


def _first_free(start: int, n_sites: int, taken: set[int], fits=lambda k: True) -> int | None:
    """The first position from ``start`` on (wrapping) that is not taken and fits."""
    for step in range(n_sites):
        k = (start + step) % n_sites
        if k not in taken and fits(k):
            return k
    return None


def site_format(k: int, words: Wording) -> SiteFormat:
    """Position k's format with its CK unit written as the contract spells it."""
    fmt = SITES[k % len(SITES)][1]
    return replace(fmt, ck_unit=words.unit_form("ck", fmt.ck_unit))


def _held_back_fits(k: int, words: Wording) -> bool:
    """A CSV site writing CK in a converted unit (µkat/L) whose later delivery still falls
    before the cutoff."""
    fmt = site_format(k, words)
    last = FIRST_DELIVERY + dt.timedelta(days=DELIVERY_SPAN_DAYS - 1)
    room = _main_delivery(k) + dt.timedelta(days=HELD_BACK_DELAY_DAYS) <= last
    return fmt.container == "csv" and words.factor("ck", fmt.ck_unit) != 1 and room


def special_positions(n_sites: int, words: Wording) -> Specials:
    """Positions of the two-delivery site, the broken-newest site (CSV), the site whose newer
    delivery the quality gate holds back (CSV, CK in µkat/L) and the sparse `warn` site."""
    two = TWO_DELIVERY_SITE % n_sites
    broken = _first_free(
        BROKEN_NEWEST_SITE % n_sites,
        n_sites,
        {two},
        lambda k: SITES[k % len(SITES)][1].container == "csv",
    )
    assert broken is not None  # position 0 is CSV and 3 sites leave one free besides `two`
    held = _first_free(
        HELD_BACK_SITE % n_sites, n_sites, {two, broken}, lambda k: _held_back_fits(k, words)
    )
    taken = {two, broken} | ({held} if held is not None else set())
    start = WARN_SITE % n_sites
    order = ((start + step) % n_sites for step in range(n_sites))
    warn = tuple(k for k in order if k not in taken) if n_sites >= 4 else ()
    return Specials(two, broken, held, warn)


def make_sites(n_sites: int, words: Wording, *, held_back: bool = True) -> list[Site]:
    """The demo's sites: the 18 published ones, then the same formats again with suffixed ids.

    ``held_back=False`` leaves out the held-back site's newer delivery (the generator does so
    when the gate could not judge it, e.g. too few CK values in a tiny demo)."""
    if n_sites < 3:
        raise ValueError("the demo needs at least 3 sites")
    spec = special_positions(n_sites, words)
    out = []
    for k in range(n_sites):
        base_id, fmt = SITES[k % len(SITES)][0], site_format(k, words)
        site_id = base_id if k < len(SITES) else f"{base_id}-{k // len(SITES) + 1}"
        main = _main_delivery(k)
        held = held_back and k == spec.held_back
        if k == spec.two:
            deliveries: tuple[dt.date, ...] = (OLDER_DELIVERY, main)
        elif k == spec.broken:
            deliveries = (OLDER_DELIVERY_OF_BROKEN, main)
        elif held:
            deliveries = (main, main + dt.timedelta(days=HELD_BACK_DELAY_DAYS))
        else:
            deliveries = (main,)
        out.append(
            Site(
                k, site_id, fmt, deliveries, rejected_newest=k == spec.broken, held_back_newest=held
            )
        )
    return out
