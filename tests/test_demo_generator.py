"""The demo inbox generator: published figures, determinism, format variants, bad rows, scale.

The checks read the written files themselves (bytes, encodings, delimiters, a small
independent reader of protocol §3/§4) rather than trusting the generator's own bookkeeping.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from ivig_platform.demo import DemoTruth, write_demo_inbox
from ivig_platform.demo.figures import drug_class

TABLES = ("patients", "ivig_cycles", "treatments", "assessments", "adverse_events")
RULES = {
    "malformed_row", "required", "invalid_date", "date_out_of_range", "invalid_number",
    "not_integer", "out_of_range", "invalid_category", "invalid_mrc_grade", "invalid_unit",
    "duplicate_key", "unknown_patient", "quarantined_patient", "end_before_start",
    "onset_before_first_cycle", "no_landed_cycle",
}  # fmt: skip

# Protocol §1, with the tolerance the brief allows: exact counts, means within 1%,
# percentages within 2 points.
EXACT = {
    "n_patients": 78, "n_sites": 18, "n_women": 64, "n_men": 14, "n_diffuse": 46,
    "n_limited": 32, "n_multi_indication": 7, "median_cycles": 5, "n_adverse_events": 12,
    "n_patients_with_ae": 10, "n_serious_ae": 1, "n_stopped": 4, "n_stopped_adverse_event": 1,
}  # fmt: skip
MEANS = {
    "mean_age": 58.5, "ck_baseline_mean": 1149, "ck_post_mean": 217, "mrss_baseline_mean": 15,
    "mrss_post_mean": 13, "ucla_git_baseline_mean": 1.06, "ucla_git_post_mean": 0.78,
}  # fmt: skip
PERCENTS = {
    "pct_diffuse": 59,
    "pct_limited": 41,
    "pct_overlap_iim": 41, "pct_overlap_sjogren": 6, "pct_overlap_any": 50,
    "pct_indication_myositis": 49, "pct_indication_gastrointestinal": 31,
    "pct_indication_skin": 22, "pct_multi_indication": 9, "pct_on_corticosteroid": 69,
    "pct_on_immunosuppressant": 67, "pct_on_biologic": 18, "pct_mrc_post_ge3": 92,
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoTruth]:
    inbox = tmp_path_factory.mktemp("inbox")
    return inbox, write_demo_inbox(inbox)


# --- a small independent reader of the written files -----------------------------------

ALIASES = {
    "patients": {
        "patient_id": ("id_paciente", "nhc"), "sex": ("sexo",),
        "birth_date": ("fecha_nacimiento",), "ssc_subtype": ("subtipo_ssc",),
        "overlap": ("solapamiento",), "indication": ("indicacion",),
        "ivig_stop_reason": ("motivo_suspension",),
    },
    "ivig_cycles": {
        "patient_id": ("id_paciente", "nhc"), "cycle_number": ("ciclo",),
        "start_date": ("fecha_inicio",), "dose_g": ("dosis_g",), "weight_kg": ("peso_kg",),
    },
    "treatments": {
        "patient_id": ("id_paciente", "nhc"), "drug": ("farmaco",),
        "start_date": ("fecha_inicio",), "end_date": ("fecha_fin",),
    },
    "assessments": {
        "patient_id": ("id_paciente", "nhc"), "assessment_date": ("fecha",),
        "measure": ("medida",), "value": ("valor",), "unit": ("unidad",),
    },
    "adverse_events": {
        "patient_id": ("id_paciente", "nhc"), "onset_date": ("fecha_inicio",),
        "term": ("termino",), "severity": ("gravedad",), "serious": ("evento_grave",),
        "related": ("relacionado",), "action": ("accion",),
    },
}  # fmt: skip
CATEGORIES = {
    "f": "F", "female": "F", "mujer": "F", "m": "M", "male": "M", "hombre": "M",
    "diffuse": "diffuse", "difusa": "diffuse", "dcssc": "diffuse",
    "limited": "limited", "limitada": "limited", "lcssc": "limited",
    "iim": "iim", "miopatia_inflamatoria": "iim", "sjogren": "sjogren", "sle": "sle",
    "les": "sle", "ra": "ra", "ar": "ra", "other": "other", "otra": "other", "otro": "other",
    "myositis": "myositis", "miositis": "myositis", "gastrointestinal": "gastrointestinal",
    "digestiva": "gastrointestinal", "skin": "skin", "cutanea": "skin",
    "adverse_event": "adverse_event", "efecto_adverso": "adverse_event",
    "inefficacy": "inefficacy", "ineficacia": "inefficacy",
    "mild": "mild", "leve": "mild", "moderate": "moderate", "moderado": "moderate",
    "moderada": "moderate", "severe": "severe", "grave": "severe",
    "yes": "yes", "si": "yes", "no": "no", "unknown": "unknown", "desconocido": "unknown",
    "none": "none", "ninguna": "none", "interrupted": "interrupted",
    "interrumpido": "interrupted", "discontinued": "discontinued",
    "suspendido": "discontinued", "mrc": "mrc", "fuerza_mrc": "mrc", "ck": "ck", "cpk": "ck",
    "mrss": "mrss", "rodnan": "mrss", "ucla_git": "ucla_git",
}  # fmt: skip
MRC = {
    f"{g}{m}": round(g + d, 2) for g in range(6) for m, d in (("-", -0.33), ("", 0), ("+", 0.33))
}


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.strip().lower())
    return "".join(c for c in s if not unicodedata.combining(c))


def _header_key(h: str) -> str:
    return re.sub(r"[\s_\-]", "", _fold(h))


def _category(s: str) -> str | None:
    return CATEGORIES[_fold(s)] if s.strip() else None


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def read_table(folder: Path, table: str) -> tuple[list[dict[str, str]], bool]:
    """Rows of one table as {canonical column: text}, and whether numbers are Spanish style."""
    names = {_header_key(a): c for c, al in ALIASES[table].items() for a in (c, *al)}
    if (folder / "extract.xlsx").exists():
        sheet = fastexcel.read_excel(folder / "extract.xlsx").load_sheet_by_name(
            table, dtypes="string"
        )
        df = sheet.to_polars()
        rows = [[v or "" for v in r] for r in df.rows()]
        header, spanish = df.columns, False
    else:
        text = _decode((folder / f"{table}.csv").read_bytes())
        first = text.splitlines()[0]
        delim = max((";", "\t", ","), key=first.count)
        header, *rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
        spanish = delim == ";"
    cols = [names.get(_header_key(h)) for h in header]
    return [{c: v for c, v in zip(cols, r, strict=False) if c} for r in rows], spanish


def _date(s: str) -> dt.date | None:
    s = s.strip()[:10]
    if not s:
        return None
    if re.fullmatch(r"\d{4}-\d\d-\d\d", s):
        return dt.date.fromisoformat(s)
    d, m, y = re.split(r"[/-]", s)
    return dt.date(int(y), int(m), int(d))


def _num(s: str, spanish: bool) -> float | None:
    s = s.strip()
    if not s:
        return None
    return float(s.replace(".", "").replace(",", ".") if spanish else s)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return (a is None) == (b is None or math.isnan(b))
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _parsed(table: str, r: dict[str, str], spanish: bool) -> dict:
    """The canonical values a correct landing gets from one written row."""
    out: dict = {"patient_id": r["patient_id"]}
    if table == "patients":
        out |= {
            "sex": _category(r["sex"]),
            "birth_date": _date(r["birth_date"]),
            "ssc_subtype": _category(r["ssc_subtype"]),
            "overlap": sorted(_category(x) for x in r["overlap"].split("|") if x.strip()),
            "indication": sorted(_category(x) for x in r["indication"].split("|") if x.strip()),
            "ivig_stop_reason": _category(r["ivig_stop_reason"]),
        }
    elif table == "ivig_cycles":
        out |= {
            "cycle_number": int(r["cycle_number"]),
            "start_date": _date(r["start_date"]),
            "dose_g": _num(r["dose_g"], spanish),
            "weight_kg": _num(r["weight_kg"], spanish),
        }
    elif table == "treatments":
        out |= {
            "drug": r["drug"].strip(),
            "start_date": _date(r["start_date"]),
            "end_date": _date(r["end_date"]),
        }
    elif table == "assessments":
        measure, unit = _category(r["measure"]), r["unit"].strip()
        if measure == "mrc":
            value = MRC[r["value"].strip()]
        else:
            value = _num(r["value"], spanish)
            if measure == "ck" and _fold(unit).endswith("kat/l"):
                value *= 60
        out |= {
            "assessment_date": _date(r["assessment_date"]),
            "measure": measure,
            "value": value,
            "value_as_reported": r["value"].strip(),
            "unit_as_reported": unit or None,
        }
    else:
        out |= {
            "onset_date": _date(r["onset_date"]),
            "term": r["term"].strip(),
            "severity": _category(r["severity"]),
            "serious": _category(r["serious"]) == "yes",
            "related": _category(r["related"]),
            "action": _category(r["action"]),
        }
    return out


def _inbox_files(inbox: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(inbox)): p.read_bytes() for p in sorted(inbox.rglob("*")) if p.is_file()
    }


# --- published figures -----------------------------------------------------------------


def test_figures_reproduce_published_counts(demo: tuple[Path, DemoTruth]) -> None:
    fig = demo[1].figures
    assert {k: fig[k] for k in EXACT} == EXACT


@pytest.mark.parametrize("name", sorted(MEANS))
def test_figures_reproduce_published_means_within_1pct(
    demo: tuple[Path, DemoTruth], name: str
) -> None:
    assert demo[1].figures[name] == pytest.approx(MEANS[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(PERCENTS))
def test_figures_reproduce_published_percentages_within_2_points(
    demo: tuple[Path, DemoTruth], name: str
) -> None:
    assert abs(demo[1].figures[name] - PERCENTS[name]) <= 2


def test_mycophenolate_is_the_most_common_immunosuppressant(demo: tuple[Path, DemoTruth]) -> None:
    assert demo[1].figures["most_common_immunosuppressant"] == "mycophenolate mofetil"


def test_safety_story_one_serious_event_stopped_ivig(demo: tuple[Path, DemoTruth]) -> None:
    clean = demo[1].clean
    serious = clean["adverse_events"].filter("serious")
    assert serious.height == 1
    assert serious.row(0, named=True)["severity"] == "severe"
    assert serious.row(0, named=True)["action"] == "discontinued"
    assert serious["term"][0] in ("trombosis venosa profunda", "deep vein thrombosis")
    stopped_ae = clean["patients"].filter(pl.col("ivig_stop_reason") == "adverse_event")
    assert (
        stopped_ae.select("site_id", "patient_id").rows()
        == serious.select("site_id", "patient_id").rows()
    )


def test_efficacy_is_realistic_not_uniform(demo: tuple[Path, DemoTruth]) -> None:
    """Windows and pairing matter: some patients drop out, not everyone improves, and there
    are assessments mid-treatment and more than 180 days after the last cycle."""
    fig = demo[1].figures
    assert 60 <= fig["n_paired_mrss"] < 78
    assert 20 <= fig["n_paired_ck"] < 45
    clean = demo[1].clean
    period = (
        clean["ivig_cycles"]
        .group_by("site_id", "patient_id")
        .agg(first=pl.col("start_date").min(), last=pl.col("start_date").max())
    )
    a = clean["assessments"].join(period, on=["site_id", "patient_id"])
    after_last = (a["assessment_date"] - a["last"]).dt.total_days()
    assert (after_last > 180).sum() > 10
    mid = (a["assessment_date"] > a["first"]) & (after_last < 30)
    assert mid.sum() > 10
    mrss = a.filter(pl.col("measure") == "mrss")
    assert mrss["value"].min() >= 0 and mrss["value"].max() <= 51
    assert (mrss["value"] == mrss["value"].round(0)).all()


def test_treatments_outside_the_ivig_period_exist(demo: tuple[Path, DemoTruth]) -> None:
    clean = demo[1].clean
    period = (
        clean["ivig_cycles"]
        .group_by("site_id", "patient_id")
        .agg(first=pl.col("start_date").min(), last=pl.col("start_date").max())
    )
    t = clean["treatments"].join(period, on=["site_id", "patient_id"])
    assert (t["end_date"] < t["first"]).sum() >= 10
    assert (t["start_date"] > t["last"]).sum() >= 3
    assert (t["start_date"].is_null() & t["end_date"].is_null()).sum() >= 3


def test_drug_names_vary_and_map_to_their_class(demo: tuple[Path, DemoTruth]) -> None:
    truth = demo[1]
    drugs = set(truth.clean["treatments"]["drug"])
    assert {"CellCept", "Urbason"} & drugs
    assert any(re.search(r"\d+ ?mg$", d) for d in drugs)
    assert any(_fold(d).startswith("micofenolato") for d in drugs)
    assert any(_fold(d).startswith("mycophenolate") for d in drugs)
    for drug, cls in truth.drug_classes.items():
        assert drug_class(drug)[0] == cls, drug
    assert "unmapped" in truth.drug_classes.values()


def test_adverse_event_terms_in_both_languages(demo: tuple[Path, DemoTruth]) -> None:
    terms = {_fold(t) for t in demo[1].clean["adverse_events"]["term"]}
    english = {"headache", "fever", "rash", "nausea", "chills", "hypertension", "fatigue",
               "infusion reaction", "myalgia", "deep vein thrombosis"}  # fmt: skip
    assert terms & english and terms - english


# --- determinism -----------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(demo: tuple[Path, DemoTruth], tmp_path: Path) -> None:
    again = write_demo_inbox(tmp_path / "again")
    assert _inbox_files(tmp_path / "again") == _inbox_files(demo[0])
    assert again.expected_quarantine == demo[1].expected_quarantine
    assert again.identifiers == demo[1].identifiers


def test_another_seed_writes_other_bytes(demo: tuple[Path, DemoTruth], tmp_path: Path) -> None:
    other = write_demo_inbox(tmp_path / "other", seed=7)
    assert _inbox_files(tmp_path / "other") != _inbox_files(demo[0])
    assert other.figures["n_patients"] == 78


# --- format variants, detected from the raw files --------------------------------------


def _csvs(inbox: Path, name: str = "*") -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(inbox.glob(f"*/*/{name}.csv"))]


def test_variant_plain_comma_utf8_english_iso(demo: tuple[Path, DemoTruth]) -> None:
    headers = [b.split(b"\n")[0] for _, b in _csvs(demo[0], "patients")]
    assert b"patient_id,sex,birth_date,ssc_subtype,overlap,indication,ivig_stop_reason" in headers
    assert any(
        re.search(rb"\n[^,\n]+,\d+,\d{4}-\d\d-\d\d,", b) for _, b in _csvs(demo[0], "ivig_cycles")
    )


def test_variant_utf8_bom_tab_and_crlf(demo: tuple[Path, DemoTruth]) -> None:
    files = _csvs(demo[0])
    assert any(b.startswith(b"\xef\xbb\xbf") and b"\t" in b.split(b"\n")[0] and b"\r\n" in b
               for _, b in files)  # fmt: skip
    assert any(not b.startswith(b"\xef\xbb\xbf") and b"\t" in b.split(b"\n")[0] for _, b in files)
    assert any(b.startswith(b"\xef\xbb\xbf") and b"," in b.split(b"\n")[0] for _, b in files)


def test_variant_semicolon_cp1252_with_spanish_numbers(demo: tuple[Path, DemoTruth]) -> None:
    """';' files in Windows-1252 (not valid UTF-8, accented text in them) with Spanish numbers."""
    cp1252_folders = set()
    for p, b in _csvs(demo[0]):
        if b";" in b.split(b"\n")[0]:
            try:
                b.decode("utf-8")
            except UnicodeDecodeError:
                assert re.search("[áéíóúñÁÉÍÓÚÑµ]", b.decode("cp1252"))
                cp1252_folders.add(p.parent)
    assert len(cp1252_folders) >= 3
    joined = "\n".join(p.read_bytes().decode("cp1252") for f in cp1252_folders for p in f.glob("*"))
    assert re.search(r";\d{1,3}\.\d{3};", joined)  # thousands grouped: 1.149
    assert re.search(r";\d+,\d+;", joined)  # decimal comma: 0,78
    assert re.search(r";\d+,\d{3};[µu]kat/L", joined)  # CK in µkat/L with a decimal comma


def test_variant_xlsx_with_real_date_cells(demo: tuple[Path, DemoTruth]) -> None:
    books = sorted(demo[0].glob("*/*/extract.xlsx"))
    assert len(books) >= 3
    for book in books:
        xl = fastexcel.read_excel(book)
        assert xl.sheet_names == list(TABLES)
        cycles = xl.load_sheet_by_name("ivig_cycles").to_polars()
        assert any(d in (pl.Datetime, pl.Date) for d in cycles.dtypes), book
        assert not list(book.parent.glob("*.csv"))


def test_variant_day_first_dates(demo: tuple[Path, DemoTruth]) -> None:
    text = "\n".join(_decode(b) for _, b in _csvs(demo[0], "ivig_cycles"))
    assert re.search(r"\b(1[3-9]|2\d|3[01])/\d\d/\d{4}\b", text)
    assert re.search(r"\b(1[3-9]|2\d|3[01])-\d\d-\d{4}\b", text)


def test_variant_every_ck_unit(demo: tuple[Path, DemoTruth]) -> None:
    units = set(demo[1].clean["assessments"]["unit_as_reported"].drop_nulls())
    assert {"U/L", "UI/L", "IU/L", "µkat/L", "ukat/L"} <= units
    text = "\n".join(_decode(b) for _, b in _csvs(demo[0], "assessments"))
    assert re.search(r"[,;\t]\d+[.,]\d{3}[,;\t]µkat/L", text)


def test_variant_extra_identifier_columns(demo: tuple[Path, DemoTruth]) -> None:
    keys = set()
    for _, b in _csvs(demo[0], "patients"):
        first = _decode(b).splitlines()[0]
        keys |= {_header_key(h) for h in re.split("[,;\t]", first)}
    assert {"nombre", "apellidos", "dni", "telefono", "nationalid", "phone"} <= keys
    dropped = {h for cols in demo[1].dropped_columns.values() for h in cols}
    assert {"nombre", "apellidos", "dni", "telefono"} <= dropped


def test_variant_spanish_headers_and_values(demo: tuple[Path, DemoTruth]) -> None:
    text = "\n".join(_decode(b) for _, b in _csvs(demo[0], "patients"))
    for header in ("id_paciente", "Fecha Nacimiento", "Subtipo-SSc", "INDICACIÓN", "NHC"):
        assert header in text
    for value in (";mujer;", "; Mujer ;", ";DIFUSA;", ";dcSSc;", "miositis|digestiva"):
        assert value.lower() in text.lower(), value
    ae = "\n".join(_decode(b) for _, b in _csvs(demo[0], "adverse_events"))
    assert re.search(r"[,;\t](Sí|sí|si|SI)[,;\t]", ae) and re.search("[Mm]oderad[ao]", ae)


def test_variant_mrc_grades_with_modifiers(demo: tuple[Path, DemoTruth]) -> None:
    reported = demo[1].clean["assessments"].filter(pl.col("measure") == "mrc")["value_as_reported"]
    grades = set(reported)
    assert any(g.endswith("-") for g in grades) and any(g.endswith("+") for g in grades)
    assert grades & {"3", "4", "5"}


def test_every_site_format_is_used_and_site_ids_are_valid(demo: tuple[Path, DemoTruth]) -> None:
    formats = demo[1].site_formats
    assert len({f.label for f in formats.values()}) == 18
    assert all(re.fullmatch(r"[a-z0-9_-]{2,32}", s) for s in formats)
    assert {p.name for p in demo[0].iterdir()} == set(formats)


# --- the written rows agree with the truth ---------------------------------------------


def test_clean_rows_sit_at_their_source_rows(demo: tuple[Path, DemoTruth]) -> None:
    """Reading every accepted file back (independently) gives exactly the clean rows."""
    inbox, truth = demo
    for t in TABLES:
        clean = truth.clean[t].drop("age_at_index", strict=False)
        for (site, delivery), rows in clean.group_by(["site_id", "delivery_id"]):
            written, spanish = read_table(inbox / site / delivery, t)
            for row in rows.iter_rows(named=True):
                got = _parsed(t, written[row["source_row"] - 1], spanish)
                for col, want in row.items():
                    if col in ("site_id", "delivery_id", "source_row"):
                        continue
                    if col in ("overlap", "indication"):
                        want = sorted(want)
                    if isinstance(want, float):
                        assert _close(got[col], want), (site, t, row, col, got[col])
                    else:
                        assert got[col] == want, (site, t, row, col, got[col])


def test_rows_add_up_landed_plus_quarantined(demo: tuple[Path, DemoTruth]) -> None:
    """§5: every source row of an accepted delivery is either clean or expected in quarantine."""
    inbox, truth = demo
    quarantined = Counter((s, d, t) for s, d, t, _, _ in truth.expected_quarantine)
    for site, delivery, status, _, source_rows in truth.expected_deliveries:
        if status != "accepted":
            continue
        total = 0
        for t in TABLES:
            written, _ = read_table(inbox / site / delivery, t)
            clean = truth.clean[t].filter(
                (pl.col("site_id") == site) & (pl.col("delivery_id") == delivery)
            )
            assert len(written) == clean.height + quarantined[(site, delivery, t)], (site, t)
            rows = set(clean["source_row"]) | {
                r
                for s, d, tt, r, _ in truth.expected_quarantine
                if (s, d, tt) == (site, delivery, t)
            }
            assert rows == set(range(1, len(written) + 1))
            total += len(written)
        assert total == source_rows


def test_clean_rows_obey_the_row_rules(demo: tuple[Path, DemoTruth]) -> None:
    truth = demo[1]
    c = truth.clean
    assert c["patients"].select("site_id", "patient_id").is_unique().all()
    assert c["ivig_cycles"].select("site_id", "patient_id", "cycle_number").is_unique().all()
    key = ["site_id", "patient_id", "measure", "assessment_date"]
    assert c["assessments"].select(key).is_unique().all()
    assert (c["patients"]["indication"].list.len() >= 1).all()
    for t in TABLES[1:]:
        orphans = c[t].join(c["patients"], on=["site_id", "patient_id"], how="anti")
        assert orphans.is_empty(), t
    first = c["ivig_cycles"].group_by("site_id", "patient_id").agg(first=pl.col("start_date").min())
    ae = c["adverse_events"].join(first, on=["site_id", "patient_id"], how="left")
    assert (ae["onset_date"] >= ae["first"]).all()
    cycles = c["ivig_cycles"]
    assert cycles["dose_g"].is_between(0.001, 400).all()
    assert cycles["weight_kg"].drop_nulls().is_between(25, 250).all()
    a = c["assessments"]
    bounds = {"ck": (1e-9, 100_000), "mrss": (0, 51), "ucla_git": (0, 2.83), "mrc": (0, 5)}
    for m, (lo, hi) in bounds.items():
        assert a.filter(pl.col("measure") == m)["value"].is_between(lo, hi).all(), m
    treatments = c["treatments"].drop_nulls(["start_date", "end_date"])
    assert (treatments["end_date"] >= treatments["start_date"]).all()
    dates = {
        "patients": ["birth_date"], "ivig_cycles": ["start_date"],
        "treatments": ["start_date", "end_date"], "assessments": ["assessment_date"],
        "adverse_events": ["onset_date"],
    }  # fmt: skip
    for t, cols in dates.items():
        for (site, delivery), rows in c[t].group_by(["site_id", "delivery_id"]):
            limit = truth.delivery_dates[(site, delivery)]
            for col in cols:
                d = rows[col].drop_nulls()
                assert (d >= dt.date(1900, 1, 1)).all() and (d < limit).all(), (t, site, col)


def test_patients_without_a_landed_cycle_are_landed_but_not_analysed(
    demo: tuple[Path, DemoTruth],
) -> None:
    truth = demo[1]
    no_cycle = truth.clean["patients"].join(
        truth.clean["ivig_cycles"], on=["site_id", "patient_id"], how="anti"
    )
    assert no_cycle.height >= 1
    assert no_cycle["age_at_index"].is_null().all()
    assert truth.figures["n_patients_landed"] == 78 + no_cycle.height


# --- bad rows and deliveries -----------------------------------------------------------


def test_every_quarantine_rule_is_injected(demo: tuple[Path, DemoTruth]) -> None:
    assert {q[4] for q in demo[1].expected_quarantine} == RULES


def test_bad_rows_spread_over_sites_and_formats(demo: tuple[Path, DemoTruth]) -> None:
    truth = demo[1]
    sites = {q[0] for q in truth.expected_quarantine}
    assert len(sites) >= 15
    assert any(truth.site_formats[s].container == "xlsx" for s in sites)
    assert any(truth.site_formats[s].encoding == "cp1252" for s in sites)
    assert {q[2] for q in truth.expected_quarantine} == set(TABLES)


def test_bad_rows_carry_what_they_claim(demo: tuple[Path, DemoTruth]) -> None:
    """Spot checks of the raw text behind a few rules (CSV sites)."""
    inbox, truth = demo
    seen: dict[str, list[str]] = {}
    for site, delivery, table, row, rule in truth.expected_quarantine:
        fmt = truth.site_formats[site]
        if fmt.container != "csv":
            continue
        lines = _decode((inbox / site / delivery / f"{table}.csv").read_bytes()).splitlines()
        if rule == "malformed_row":
            assert len(lines[row].split(fmt.delimiter)) != len(lines[0].split(fmt.delimiter))
        seen.setdefault(rule, []).append(lines[row])
    assert len(seen["malformed_row"]) >= 3
    assert any("12/25/2020" in s for s in seen["invalid_date"])  # month first
    assert any(re.search(r"[,;\t](5\+|0-|6)[,;\t]", s) for s in seen["invalid_mrc_grade"])
    assert any("1899" in s for s in seen["date_out_of_range"])
    assert any("2026" in s for s in seen["date_out_of_range"])
    assert any(re.search(r"[,;\t](2[.,]5|12[.,]5)[,;\t]", s) for s in seen["not_integer"])


def test_bad_rows_share_no_key_with_clean_rows_except_intended_duplicates(
    demo: tuple[Path, DemoTruth],
) -> None:
    """Only the duplicate_key rows repeat a clean row's key, and always after it in the file."""
    inbox, truth = demo
    keys = {
        "patients": lambda r: (r["patient_id"],),
        "ivig_cycles": lambda r: (r["patient_id"], r["cycle_number"].strip()),
        "assessments": lambda r: (
            r["patient_id"],
            CATEGORIES.get(_fold(r.get("measure", ""))),
            r.get("assessment_date", "").strip()[:10],
        ),
    }
    rules = {(s, d, t, r): rule for s, d, t, r, rule in truth.expected_quarantine}
    for site, delivery, status, _, _ in truth.expected_deliveries:
        if status != "accepted":
            continue
        for t, key in keys.items():
            rows, _ = read_table(inbox / site / delivery, t)
            first_seen: dict[tuple, int] = {}
            for i, r in enumerate(rows, start=1):
                rule = rules.get((site, delivery, t, i))
                if rule in ("malformed_row", "required") or "patient_id" not in r:
                    continue
                k = key(r)
                if k in first_seen and t != "patients":
                    assert rule == "duplicate_key", (site, t, i, k)
                    assert rules.get((site, delivery, t, first_seen[k])) is None
                elif rule == "duplicate_key" and t != "patients":
                    raise AssertionError(f"{site} {t} row {i}: duplicate of nothing")
                first_seen.setdefault(k, i)


def test_duplicated_patient_is_quarantined_with_all_its_rows(demo: tuple[Path, DemoTruth]) -> None:
    inbox, truth = demo
    dup = [q for q in truth.expected_quarantine if q[2] == "patients" and q[4] == "duplicate_key"]
    assert dup and len(dup) % 2 == 0
    site, delivery = dup[0][0], dup[0][1]
    rows, _ = read_table(inbox / site / delivery, "patients")
    ids = [rows[q[3] - 1]["patient_id"] for q in dup if q[:2] == (site, delivery)]
    assert len(set(ids)) == 1
    refs = [q for q in truth.expected_quarantine
            if q[:2] == (site, delivery) and q[4] == "quarantined_patient"]  # fmt: skip
    assert {q[2] for q in refs} >= {"ivig_cycles", "assessments", "adverse_events"}
    assert ids[0] not in set(truth.clean["patients"]["patient_id"])


def test_two_deliveries_newer_supersedes_older(demo: tuple[Path, DemoTruth]) -> None:
    inbox, truth = demo
    site = truth.two_delivery_site
    outcomes = [d for d in truth.expected_deliveries if d[0] == site]
    assert [(d[1] < "2026-07-01", d[2]) for d in outcomes] == [
        (True, "superseded"),
        (False, "accepted"),
    ]
    older, newer = (inbox / site / d[1] for d in outcomes)
    old_patients, _ = read_table(older, "patients")
    new_patients, _ = read_table(newer, "patients")
    assert len(old_patients) < len(new_patients)
    assert set(truth.clean["patients"].filter(pl.col("site_id") == site)["delivery_id"]) == {
        newer.name
    }


def test_broken_newest_delivery_keeps_older_in_force(demo: tuple[Path, DemoTruth]) -> None:
    inbox, truth = demo
    site = truth.broken_newest_site
    (_, old_id, old_status, _, _), (_, new_id, new_status, reason, _) = [
        d for d in truth.expected_deliveries if d[0] == site
    ]
    assert (old_status, new_status, reason) == ("accepted", "rejected", "missing_table")
    assert old_id < new_id
    assert not (inbox / site / new_id / "assessments.csv").exists()
    assert (inbox / site / new_id / "patients.csv").exists()
    clean = truth.clean["patients"].filter(pl.col("site_id") == site)
    assert clean.height >= 2 and set(clean["delivery_id"]) == {old_id}


def test_held_back_newer_delivery_mislabels_ck_and_keeps_older_in_force(
    demo: tuple[Path, DemoTruth],
) -> None:
    """The newer delivery is the site's clean snapshot again, CK written in µkat/L as before
    but labelled U/L: nothing for the row rules (not quarantined), rejected by the gate."""
    inbox, truth = demo
    site, newer = truth.held_back_site, truth.held_back_delivery
    assert site and newer
    assert site not in (truth.two_delivery_site, truth.broken_newest_site)
    fmt = truth.site_formats[site]
    assert fmt.container == "csv" and _fold(fmt.ck_unit).endswith("kat/l")
    (_, old_id, old_status, old_reason, _), (_, new_id, new_status, reason, rows) = [
        d for d in truth.expected_deliveries if d[0] == site
    ]
    statuses = (old_status, old_reason, new_status, reason)
    assert statuses == ("accepted", None, "rejected", "quality_gate")
    assert new_id == newer and old_id < newer < "2026-11-20"
    assert not [q for q in truth.expected_quarantine if q[:2] == (site, newer)]
    assert set(truth.clean["patients"].filter(pl.col("site_id") == site)["delivery_id"]) == {old_id}
    old_ck, new_ck, total = [], [], 0
    for t in TABLES:
        new_rows, spanish = read_table(inbox / site / newer, t)
        total += len(new_rows)
        clean = truth.clean[t].filter(pl.col("site_id") == site)
        assert len(new_rows) == clean.height, t  # the clean snapshot, without the bad rows
        if t == "assessments":
            old_rows, _ = read_table(inbox / site / old_id, t)
            old_ck = [r for r in old_rows if _category(r["measure"]) == "ck"]
            new_ck = [r for r in new_rows if _category(r["measure"]) == "ck"]
            assert {r["unit"] for r in new_ck} == {"U/L"}
            clean_ck = {r["value"].strip() for r in old_ck if _fold(r["unit"]).endswith("kat/l")}
            assert {r["value"].strip() for r in new_ck} <= clean_ck
            read_as_ul = sorted(_parsed(t, r, spanish)["value"] for r in new_ck)
            in_force = clean.filter(pl.col("measure") == "ck")["value"].sort().to_list()
            assert len(read_as_ul) == len(in_force) >= 3
            assert all(_close(a * 60, b) for a, b in zip(read_as_ul, in_force, strict=True))
    assert rows == total


def test_warn_site_lacks_most_post_values_of_its_measure(demo: tuple[Path, DemoTruth]) -> None:
    """More than half of the sparse site's patients followed for the measure lack a value in
    the §7 window (the gate's completeness warn); they leave the pairing, the site is used."""
    truth = demo[1]
    site, measure, timepoint = truth.warn_site, truth.warn_measure, truth.warn_timepoint
    assert site and measure and timepoint in ("baseline", "post")
    specials = {truth.two_delivery_site, truth.broken_newest_site, truth.held_back_site}
    assert site not in specials
    assert [d[2] for d in truth.expected_deliveries if d[0] == site] == ["accepted"]
    c = truth.clean
    period = (
        c["ivig_cycles"]
        .filter(pl.col("site_id") == site)
        .group_by("patient_id")
        .agg(first=pl.col("start_date").min(), last=pl.col("start_date").max())
    )
    a = c["assessments"].filter((pl.col("site_id") == site) & (pl.col("measure") == measure))
    a = a.join(period, on="patient_id")
    followed = a["patient_id"].n_unique()
    if timepoint == "post":
        days = (a["assessment_date"] - a["last"]).dt.total_days()
        in_window = a.filter(days.is_between(30, 180))
    else:
        days = (a["assessment_date"] - a["first"]).dt.total_days()
        in_window = a.filter(days.is_between(-90, 0))
    having = in_window["patient_id"].n_unique()
    assert followed >= 3
    assert (followed - having) / followed > 0.5, (followed, having)


def test_delivery_ids_are_iso_dates_before_the_cutoff(demo: tuple[Path, DemoTruth]) -> None:
    for site, delivery, *_ in demo[1].expected_deliveries:
        d = dt.date.fromisoformat(delivery)
        assert d.year == 2026 and d < dt.date(2026, 11, 20), (site, delivery)


# --- privacy ---------------------------------------------------------------------------


def test_identifiers_cover_everything_identifying(demo: tuple[Path, DemoTruth]) -> None:
    inbox, truth = demo
    ids = set(truth.identifiers)
    assert set(truth.clean["patients"]["patient_id"]) <= ids
    text = "\n".join(_decode(b) for _, b in _csvs(inbox))
    written_dni = set(re.findall(r"\b\d{8}[A-Z]\b", text))
    assert written_dni and written_dni <= ids
    assert any(re.fullmatch(r"\d\d/\d\d/(19|20)\d\d", i) for i in ids)  # birth dates as written
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", i) for i in ids)  # XLSX date cells, as ISO
    assert any(" " in i and not i[0].isdigit() and not i.startswith("+") for i in ids)  # names
    assert all(len(i) >= 5 for i in ids)
    for i in truth.identifiers:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", i):
            assert i in text or any(i in _xlsx_text(b) for b in inbox.glob("*/*/extract.xlsx")), i


def _xlsx_text(book: Path) -> str:
    xl = fastexcel.read_excel(book)
    return "\n".join(
        "\t".join(v or "" for v in row)
        for name in xl.sheet_names
        for row in xl.load_sheet_by_name(name, dtypes="string").to_polars().rows()
    )


def test_truth_is_not_written_into_the_inbox(demo: tuple[Path, DemoTruth]) -> None:
    names = {p.name for p in demo[0].rglob("*") if p.is_file()}
    assert names <= {f"{t}.csv" for t in TABLES} | {"extract.xlsx"}


# --- scale -----------------------------------------------------------------------------


def test_scale_mode_keeps_the_shape(tmp_path: Path) -> None:
    truth = write_demo_inbox(tmp_path, n_sites=40, n_patients=800)
    fig = truth.figures
    assert fig["n_patients"] == 800 and fig["n_sites"] == 40
    assert fig["median_cycles"] == 5
    for name, want in PERCENTS.items():
        assert abs(fig[name] - want) <= 2, name
    for name, want in MEANS.items():
        assert fig[name] == pytest.approx(want, rel=0.01), name
    assert len({f.label for f in truth.site_formats.values()}) == 18
    assert {q[4] for q in truth.expected_quarantine} == RULES
    per_site = Counter(q[0] for q in truth.expected_quarantine)
    assert len(per_site) >= 35 and max(per_site.values()) <= 20
    statuses = Counter(d[2:4] for d in truth.expected_deliveries)
    assert statuses == {
        ("accepted", None): 40,
        ("superseded", None): 1,
        ("rejected", "missing_table"): 1,
        ("rejected", "quality_gate"): 1,
    }
    specials = (truth.two_delivery_site, truth.broken_newest_site, truth.held_back_site,
                truth.warn_site)  # fmt: skip
    assert None not in specials and len(set(specials)) == 4
    assert len(list(tmp_path.iterdir())) == 40


def test_scale_mode_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    truth = write_demo_inbox(tmp_path, n_sites=200, n_patients=20_000)
    assert time.perf_counter() - start < 60
    assert truth.figures["n_patients"] == 20_000
    assert truth.held_back_site and truth.held_back_delivery and truth.warn_site
    rejected = {d[:2] for d in truth.expected_deliveries if d[3] == "quality_gate"}
    assert rejected == {(truth.held_back_site, truth.held_back_delivery)}
    assert (tmp_path / truth.held_back_site / truth.held_back_delivery / "assessments.csv").exists()
