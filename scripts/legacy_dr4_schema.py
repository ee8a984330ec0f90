"""Write the PHANGS-CAT DR4 legacy schema from the release's column table and layouts.

The schema ``schemas/legacy/phangs-cat-dr4-<version>.yaml`` describes the cluster catalogs of
PHANGS-CAT DR4 as the release code wrote them (see ``shared/reference/real/SOURCES.md``):

* ``phangs_cluster_columns.csv``: column names, units, meanings and which table holds them;
* ``phangs_cluster_table_layout.json``: the obs column order per target, the sed column order
  and the bands (with their instrument) per target.

The candidate tables (``obs-sed-candidates``) are not in the layout file; the release code builds
them as ``INDEX, ID_PHANGS_CLUSTER`` + the candidate identifier columns + the three class columns
+ ``PHANGS_CLUSTER_CLASS_ML_VGG_CORR`` + photometry + detection flags + the sed columns, with the
same incremental ``hstack`` (so the distance columns come out as ``_1``/``_2`` as in the sed table).

Run once per schema version (released schema files never change)::

    python scripts/legacy_dr4_schema.py [--reference DIR] [--version 1.0.0]

The script checks that the schema's obs layout reproduces the documented column order of every
target before it writes anything.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("legacy_dr4_schema")

BAND_RE_TEMPLATE = "PHANGS_{FILTER}_"
DTYPES = {"int": "int64", "str": "string", "float": "float64"}
RENAMED = {
    "PHANGS_CLUSTER_CLASS_ML_VGG": "PHANGS_CLUSTER_CLASS_ML",
    "PHANGS_CLUSTER_CLASS_ML_VGG_QUAL": "PHANGS_CLUSTER_CLASS_ML_QUAL",
}
#: Columns renamed by astropy's hstack (the release adds the distance columns twice).
DUPLICATED = ("PHANGS_DM", "PHANGS_DMPC", "PHANGS_DERR")
#: Units of columns the DR4 column table leaves without one (today's schema gives them).
UNITS_FROM_CURRENT = {"PHANGS_DM": "mag", "PHANGS_DMPC": "Mpc"}
PHOTOMETRY = ("VEGA", "VEGA_ERR", "mJy", "mJy_ERR")
#: Meanings of released columns the DR4 column table has no text for.
UNDOCUMENTED = {
    "PHANGS_GALAXY": "Target (galaxy) name. No text in the DR4 column documentation.",
    "PHANGS_DM": (
        "Distance modulus of the adopted distance. No text or unit in the DR4 column "
        "documentation; unit from today's cluster-catalog schema."
    ),
    "PHANGS_DMPC": (
        "Adopted distance of the galaxy. No text or unit in the DR4 column documentation; "
        "unit from today's cluster-catalog schema."
    ),
    "PHANGS_DERR": (
        "Uncertainty of the adopted distance (by its name; no text or unit in the DR4 column "
        "documentation)."
    ),
}
SENTINELS = {
    "not_covered": {
        "value": -9999,
        "meaning": "not covered by the band's image (DR4 column documentation: set to -9999)",
    },
    "not_a_cluster": {
        "value": -999,
        "meaning": "not a class 1, 2 or 3 object (the release code writes -999 as its cluster id)",
    },
    "no_sed_fix": {
        "value": -999,
        "meaning": (
            "no valid fixed-age SED fit: two or more bands undetected or not covered "
            "(the release code writes -999)"
        ),
    },
}
SUBSETS = {
    "human-cluster-class12": "hum-c12",
    "human-compact-association-class3": "hum-c3",
    "machine-cluster-class12": "ml-c12",
    "machine-compact-association-class3": "ml-c3",
}
SUBSET_RE = "(?P<subset>(human|machine)-(cluster-class12|compact-association-class3))"
INSTRUMENTS = {
    "uvis": {"instrume": "WFC3", "band_instrument": "WFC3/UVIS"},
    "acs": {"instrume": "ACS", "band_instrument": "ACS/WFC"},
    "acs-uvis": {"instrume": "MULTI"},
}
OBS_LAYOUT: list[Any] = [
    "INDEX",
    "ID_PHANGS_CLUSTER",
    "ID_PHANGS_CANDIDATE",
    "ID_PHANGS_ALLSOURCES",
    "PHANGS_X",
    "PHANGS_Y",
    "PHANGS_RA",
    "PHANGS_DEC",
    "PHANGS_GALAXY",
    "PHANGS_DM",
    "PHANGS_DMPC",
    "PHANGS_DERR",
    "PHANGS_CLUSTER_CLASS_HUMAN",
    "PHANGS_CLUSTER_CLASS_ML_VGG",
    "PHANGS_CLUSTER_CLASS_ML_VGG_QUAL",
    {"per_band": ["PHANGS_{FILTER}_VEGA", "PHANGS_{FILTER}_VEGA_ERR"]},
    {"per_band": ["PHANGS_{FILTER}_mJy", "PHANGS_{FILTER}_mJy_ERR"]},
    "PHANGS_NON_DETECTION_FLAG",
    "PHANGS_NO_COVERAGE_FLAG",
    "PHANGS_CI",
    "PHANGS_COLORCOLOR_CLASS_UBVI",
]


def expand(layout: list[Any], bands: list[str]) -> list[str]:
    """Column names of a layout for bands (filter names, in table order)."""
    out: list[str] = []
    for item in layout:
        if isinstance(item, str):
            out.append(item)
        else:
            for band in bands:
                out.extend(t.replace("{FILTER}", band) for t in item["per_band"])
    return out


def wavelength(band: str) -> int:
    """Nominal wavelength of an HST filter name (F555W -> 555)."""
    return int(band[1:-1])


def target_bands(bands_by_target: dict[str, Any], target: str) -> list[str]:
    """``'<instrument> <filter>'`` of a target, by wavelength; WFC3/UVIS when listed twice.

    ``phangs_info.py`` lists F555W of NGC 1672 for both ACS/WFC and WFC3/UVIS; the PHANGS
    header_info zero-point tables (``phangs_products/data/hst_bands.ecsv``) use WFC3/UVIS.
    """
    entry = bands_by_target[target]
    found: dict[str, str] = {}
    for band in entry["acs_wfc1"]:
        found[band] = "ACS/WFC"
    for band in entry["wfc3_uvis"]:
        found[band] = "WFC3/UVIS"
    return [f"{found[b]} {b}" for b in sorted(found, key=wavelength)]


def cand_layout(sed_columns: list[str]) -> list[Any]:
    """Candidate-table layout as the release code builds it (module docstring)."""
    ids = OBS_LAYOUT[:12]
    ids = [*ids[:9], *(f"{c}_1" for c in DUPLICATED)]
    sed = sed_columns[12 : -len(DUPLICATED)]
    return [
        *ids,
        "PHANGS_CLUSTER_CLASS_HUMAN",
        "PHANGS_CLUSTER_CLASS_ML_VGG",
        "PHANGS_CLUSTER_CLASS_ML_VGG_QUAL",
        "PHANGS_CLUSTER_CLASS_ML_VGG_CORR",
        *OBS_LAYOUT[15:17],
        "PHANGS_NON_DETECTION_FLAG",
        "PHANGS_NO_COVERAGE_FLAG",
        "PHANGS_CI",
        *sed,
        *(f"{c}_2" for c in DUPLICATED),
    ]


def clean(text: str) -> str:
    """One-line text without doubled blanks."""
    return " ".join(text.split())


def column_entry(name: str, rows: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Schema entry of one released column (``name`` may hold ``{FILTER}``)."""
    base = name
    for dup in DUPLICATED:
        if name in (f"{dup}_1", f"{dup}_2"):
            base = dup
    key = base.replace("{FILTER}", "[BAND]")
    row = rows.get(key)
    entry: dict[str, Any] = {"name": name}
    if row is None:
        raise SystemExit(f"{name}: not in the DR4 column table")
    text = clean(row["doc_comment"]) or clean(row["tab_comment"]) or UNDOCUMENTED.get(base, "")
    if "{FILTER}" in name:
        text = text.replace("`[BAND]", "`PHANGS_{FILTER}")
    if base != name and name.endswith("_2"):
        text = f"Second copy of {base} (the release adds the distance columns twice). {text}"
    entry["description"] = text or "Released in the DR4 tables; the DR4 documentation has no text."
    unit_str = row["unit_str"].strip()
    if unit_str in DTYPES:
        entry["dtype"] = DTYPES[unit_str]
    elif unit_str:
        entry["dtype"] = "float64"
    unit = row["astropy_unit"].strip() or (unit_str if unit_str not in DTYPES else "")
    unit = {"M_sun": "solMass"}.get(unit, unit) or UNITS_FROM_CURRENT.get(base, "")
    if unit:
        entry["unit"] = unit
    if name in RENAMED:
        entry["current"] = RENAMED[name]
    if name.endswith("_1") and base in DUPLICATED:
        entry["current"] = base
    if name.endswith("_2") and base in DUPLICATED:
        entry["duplicate_of"] = f"{base}_1"
    suffix = name.removeprefix("PHANGS_{FILTER}_")
    if "{FILTER}" in name and suffix in PHOTOMETRY:
        entry["sentinels"] = ["not_covered"]
    if name == "ID_PHANGS_CLUSTER":
        entry["sentinels"] = ["not_a_cluster"]
    if name.startswith("SEDfix_") and name != "SEDfix_likelihood_norm":
        entry["sentinels"] = ["no_sed_fix"]
    return entry


def build(reference: Path, version: str) -> dict[str, Any]:
    """The schema document."""
    with (reference / "phangs_cluster_columns.csv").open(newline="") as fh:
        rows = {r["col_name"]: r for r in csv.DictReader(fh)}
    layout = json.loads((reference / "phangs_cluster_table_layout.json").read_text())
    obs_by_target = layout["obs_columns_by_target"]
    targets = {t: target_bands(layout["bands_by_target"], t) for t in obs_by_target}
    for target, columns in obs_by_target.items():
        bands = [b.split()[1] for b in targets[target]]
        if expand(OBS_LAYOUT, bands) != columns:
            raise SystemExit(f"obs layout does not reproduce the documented columns of {target}")
    sed = list(layout["sed_columns"])
    cand = cand_layout(sed)
    names: list[str] = []
    for item in [*OBS_LAYOUT, *sed, *cand]:
        for name in [item] if isinstance(item, str) else item["per_band"]:
            if name not in names:
                names.append(name)
    columns = [column_entry(n, rows) for n in names]
    band_sig = ["PHANGS_{FILTER}_VEGA"]
    ident = ["INDEX", "ID_PHANGS_CANDIDATE", "PHANGS_X", "PHANGS_Y", "PHANGS_RA", "PHANGS_DEC"]
    sed_sig = ["PHANGS_AGE_MINCHISQ", "PHANGS_MASS_MINCHISQ", "PHANGS_EBV_MINCHISQ"]
    classes = ["PHANGS_CLUSTER_CLASS_HUMAN", "PHANGS_CLUSTER_CLASS_ML_VGG"]
    schema_id = f"phangs-cat-dr4-{version}"
    notes = {
        "ngc1672": "F555W is listed for both instruments by the release code; "
        "the PHANGS header_info zero points use WFC3/UVIS."
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://phangs-products.org/schemas/{schema_id}",
        "id": schema_id,
        "title": "PHANGS-CAT DR4 cluster catalogs (historical)",
        "description": (
            "Star-cluster catalogs of PHANGS-CAT data release 4 (collection phangs-cat, DOI "
            "10.17909/jray-9798) as the release code of July 2024 wrote them: per target an "
            "observation (obs) and an SED (sed) table for each of human/machine classification "
            "and class 1+2 / class 3, plus one candidate table; FITS binary tables written by "
            "astropy (HDU 1, units as TUNIT), no PPSCHEMA/PPSCHVER. Read as today's "
            "cluster-catalog: PHANGS_CLUSTER_CLASS_ML_VGG(_QUAL) answer as "
            "PHANGS_CLUSTER_CLASS_ML(_QUAL), the twice-added distance columns as one."
        ),
        "legacy": {
            "collection": "phangs-cat",
            "title_short": "PHANGS-CAT DR4 catalog",
            "format": "fits-table",
            "documented_by": (
                "shared/reference/real/phangs_cluster_columns.csv, phangs_cluster_table_layout."
                "json and phangs_cluster_filenames.txt (from DanielMaschmann/"
                "PHANGS_HST_cluster_cat_release b042b17, see SOURCES.md); built by "
                "scripts/legacy_dr4_schema.py"
            ),
            "file_name": (
                r"^hlsp_phangs-cat_hst_(?P<instrument>acs-uvis|acs|uvis)_(?P<target>[a-z0-9]+)"
                r"_multi_(?P<version>v[0-9]+(p[0-9]+)*)_(?P<product_type>[a-z0-9-]+)\.fits$"
            ),
            "file_name_help": (
                "hlsp_phangs-cat_hst_<acs-uvis|acs|uvis>_<target>_multi_v<n>_"
                "<obs|sed>-<human|machine>-<cluster-class12|compact-association-class3>.fits "
                "or ..._obs-sed-candidates.fits"
            ),
            "instruments": INSTRUMENTS,
            "targets": {
                t: ({"bands": b, "note": notes[t]} if t in notes else {"bands": b})
                for t, b in sorted(targets.items())
            },
            "keywords_from_name": {
                "HLSPTARG": "target",
                "HLSPVER": "version",
                "INSTRUME": "instrume",
            },
            "keywords": {"HLSPID": "phangs-cat", "TELESCOP": "HST", "OBSERVAT": "HST"},
            "sentinels": SENTINELS,
            "layouts": [
                {
                    "name": "obs",
                    "title": "observation table",
                    "description": (
                        "Positions, human and machine classes, Vega magnitudes and mJy fluxes "
                        "per band, detection flags, CI and colour-colour region of the clusters "
                        "of one classification and class group."
                    ),
                    "reads_as": "cluster-catalog-1.0.0",
                    "product_type": f"^obs-{SUBSET_RE}$",
                    "subsets": SUBSETS,
                    "signature": {
                        "columns": [*ident, *classes, "PHANGS_CI"],
                        "band_columns": band_sig,
                    },
                    "columns": OBS_LAYOUT,
                },
                {
                    "name": "sed",
                    "title": "SED table",
                    "description": (
                        "Positions, SED-fit ages, masses and E(B-V), fit flags and fixed-age fits "
                        "of the clusters of one classification and class group."
                    ),
                    "reads_as": "cluster-catalog-1.0.0",
                    "product_type": f"^sed-{SUBSET_RE}$",
                    "subsets": SUBSETS,
                    "signature": {"columns": [*ident, *sed_sig]},
                    "columns": sed,
                },
                {
                    "name": "candidates",
                    "title": "candidate table",
                    "description": (
                        "Every cluster candidate of a target with classes, photometry, flags "
                        "and SED columns (observation and SED columns in one table)."
                    ),
                    "reads_as": "cluster-catalog-1.0.0",
                    "product_type": "^obs-sed-candidates$",
                    "subset": "cand",
                    "signature": {
                        "columns": [*ident, *classes, *sed_sig],
                        "band_columns": band_sig,
                    },
                    "columns": cand,
                },
            ],
            "columns": columns,
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Safe dumper that writes repeated values out instead of YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    """Build the schema and write it (refuses to overwrite)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared/reference/real")
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)
    doc = build(args.reference, args.version)
    out = ROOT / "schemas" / "legacy" / f"phangs-cat-dr4-{args.version}.yaml"
    if out.exists():
        log.error("%s exists; a schema file never changes (make a new version)", out)
        return 1
    text = yaml.dump(
        doc,
        Dumper=_NoAliasDumper,
        sort_keys=False,
        width=100,
        allow_unicode=True,
        default_flow_style=None,
    )
    out.write_text(text)
    log.info("wrote %s (%d columns)", out.relative_to(ROOT), len(doc["legacy"]["columns"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
