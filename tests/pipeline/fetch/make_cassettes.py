"""Write the fetch tests' VCR cassettes by hand, in the services' documented formats.

Run from the repository root: ``.venv/bin/python tests/pipeline/fetch/make_cassettes.py``.

MAST (https://mast.stsci.edu/api/v0/): the Portal's columns configuration
(``/portal/Mashup/Mashup.asmx/columnsconfig``, one JSON object per column) and ``/api/v0/invoke``
requests (form field ``request`` holding the MashupRequest JSON: service, params, format,
pagesize, page) answered with the Mashup JSON response (``status``, ``msg``, ``fields`` with
name and type, ``data`` rows, ``paging``).  Services: ``Mast.Caom.Filtered.Position`` (CAOM
observations in a cone, with column filters) and ``Mast.Caom.Products`` (the products of the
given obsids; fields of https://mast.stsci.edu/api/v0/_productsfields.html).

Gaia (https://gea.esac.esa.int/tap-server/tap, IVOA TAP 1.1 / UWS): the archive's notification
request astroquery makes on import, a POST to ``/async`` (REQUEST=doQuery, LANG=ADQL, FORMAT,
QUERY, PHASE=RUN) answered 303 with the job's URL, the job's ``/phase`` (COMPLETED) and its
``/results/result`` as a VOTable 1.4 (TABLEDATA).

The rows are illustrative (NGC 1087, PHANGS-HST program 15654-like rootnames), not a copy of
the archive's holdings; the FLC sizes are those of the tiny files the tests' server sends.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from fetchkit import CASSETTES, EXPOSURES, flc_size  # noqa: E402

MAST = "https://mast.stsci.edu"
GAIA = "https://gea.esac.esa.int/tap-server/tap"
FORM = {"Content-Type": ["application/x-www-form-urlencoded"]}
JSON = {"Content-Type": ["application/json; charset=utf-8"]}

# NGC 1087 (galaxies.ecsv: 41.604833, -0.498639); default radius: half the WFC3/UVIS
# field-of-view diagonal, 162" * sqrt(2) / 2 = 114.55" = 0.0318198 deg
RA, DEC = 41.604833, -0.498639
RADIUS_DEG = 162.0 * math.sqrt(2.0) / 2.0 / 3600.0
# observation centres (one pointing)
OBS_RA, OBS_DEC = 41.6045, -0.4990
FILTERS = ["F275W", "F336W", "F438W", "F555W", "F814W"]

COLUMNS_CAOM = {
    "_selected_": {"text": "selected", "add": True, "type": "boolean", "hidden": True},
    "intentType": {
        "text": "Observation Type",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Whether observation is for science or calibration.",
        "example": "Valid values: science, calibration",
    },
    "obs_collection": {
        "text": "Mission",
        "separator": ";",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Collection",
    },
    "instrument_name": {
        "text": "Instrument",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Instrument Name",
    },
    "project": {
        "text": "Project",
        "separator": ";",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Processing project",
    },
    "filters": {
        "text": "Filters",
        "separator": ";",
        "separatorType": "split",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Instrument filters",
    },
    "target_name": {"text": "Target Name", "vot.datatype": "char", "vot.arraysize": "*"},
    "obs_id": {"text": "Observation ID", "vot.datatype": "char", "vot.arraysize": "*"},
    "s_ra": {"text": "RA", "vot.datatype": "double", "vot.unit": "deg"},
    "s_dec": {"text": "Dec", "vot.datatype": "double", "vot.unit": "deg"},
    "dataproduct_type": {
        "text": "Product Type",
        "vot.datatype": "char",
        "vot.arraysize": "*",
        "vot.description": "Type of product",
    },
    "calib_level": {"text": "Calibration Level", "vot.datatype": "int"},
    "t_exptime": {"text": "Exposure Length", "vot.datatype": "double", "vot.unit": "s"},
    "obsid": {"text": "Product Group ID", "vot.datatype": "char", "vot.arraysize": "*"},
}
COLUMNS_PRODUCTS = {
    "_selected_": {"text": "selected", "add": True, "type": "boolean", "hidden": True},
    "obsID": {"text": "Product Group ID", "vot.datatype": "char", "vot.arraysize": "*"},
    "productFilename": {"text": "Filename", "vot.datatype": "char", "vot.arraysize": "*"},
    "size": {"text": "Size", "vot.datatype": "long", "vot.unit": "byte"},
}

OBS_FIELDS = [
    ("intentType", "string"),
    ("obs_collection", "string"),
    ("instrument_name", "string"),
    ("project", "string"),
    ("filters", "string"),
    ("target_name", "string"),
    ("obs_id", "string"),
    ("s_ra", "float"),
    ("s_dec", "float"),
    ("dataproduct_type", "string"),
    ("calib_level", "int"),
    ("t_exptime", "float"),
    ("obsid", "string"),
]
PRODUCT_FIELDS = [
    ("obsID", "string"),
    ("obs_collection", "string"),
    ("dataproduct_type", "string"),
    ("obs_id", "string"),
    ("description", "string"),
    ("type", "string"),
    ("dataURI", "string"),
    ("productType", "string"),
    ("productGroupDescription", "string"),
    ("productSubGroupDescription", "string"),
    ("productDocumentationURL", "string"),
    ("project", "string"),
    ("prvversion", "string"),
    ("proposal_id", "string"),
    ("productFilename", "string"),
    ("size", "int"),
    ("parent_obsid", "string"),
    ("dataRights", "string"),
    ("calib_level", "int"),
    ("_selected_", "boolean"),
]


def _obs(obsid: str, obs_id: str, filt: str, level: int, project: str = "HST") -> dict:
    return {
        "intentType": "science",
        "obs_collection": "HST",
        "instrument_name": "WFC3/UVIS",
        "project": project,
        "filters": filt,
        "target_name": "NGC1087",
        "obs_id": obs_id,
        "s_ra": OBS_RA,
        "s_dec": OBS_DEC,
        "dataproduct_type": "image",
        "calib_level": level,
        "t_exptime": 700.0,
        "obsid": obsid,
    }


def observations() -> list[dict]:
    """Exposure-level observations, the F555W association and a HAP single-visit product."""
    rows = [_obs(f"20{90000 + i:08d}", root, filt, 2) for i, (root, filt) in enumerate(EXPOSURES)]
    rows.append(_obs("2090000100", "ie1a05020", "F555W", 3))
    rows.append(_obs("2090000200", "hst_15654_05_wfc3_uvis_f555w_ie1a05", "F555W", 3, "HAP-SVM"))
    return rows


def _product(obs: dict, name: str, subgroup: str, size: int, ptype: str = "SCIENCE") -> dict:
    return {
        "obsID": obs["obsid"],
        "obs_collection": "HST",
        "dataproduct_type": "image",
        "obs_id": obs["obs_id"],
        "description": f"DADS {subgroup} file",
        "type": "S",
        "dataURI": f"mast:HST/product/{name}",
        "productType": ptype,
        "productGroupDescription": "Minimum Recommended Products" if subgroup == "FLC" else None,
        "productSubGroupDescription": subgroup,
        "productDocumentationURL": None,
        "project": obs["project"],
        "prvversion": "3.7.2",
        "proposal_id": "15654",
        "productFilename": name,
        "size": size,
        "parent_obsid": obs["obsid"],
        "dataRights": "PUBLIC",
        "calib_level": 2,
        "_selected_": None,
    }


def products(hostile: bool = False) -> list[dict]:
    """RAW, FLT and FLC of every exposure; DRC and member FLCs of the association; HAP files."""
    size = flc_size()
    rows = []
    obs = observations()
    for o in obs[: len(EXPOSURES)]:
        root = o["obs_id"]
        rows.append(_product(o, f"{root}_raw.fits", "RAW", 16_565_760, "AUXILIARY"))
        rows.append(_product(o, f"{root}_flt.fits", "FLT", 168_480_000))
        rows.append(_product(o, f"{root}_flc.fits", "FLC", size))
    asn, hap = obs[len(EXPOSURES)], obs[len(EXPOSURES) + 1]
    rows.append(_product(asn, "ie1a05020_drc.fits", "DRC", 214_848_000))
    rows += [_product(asn, f"{r}_flc.fits", "FLC", size) for r, f in EXPOSURES if f == "F555W"]
    rows.append(_product(hap, "hst_15654_05_wfc3_uvis_f555w_ie1a05tg_flc.fits", "FLC", size))
    if hostile:
        rows.append(_product(obs[0], "../x", "FLC", size))
    return rows


def mashup(rows: list[dict], fields: list[tuple[str, str]]) -> str:
    return json.dumps(
        {
            "status": "COMPLETE",
            "msg": "",
            "fields": [{"name": n, "type": t} for n, t in fields],
            "data": rows,
            "paging": {
                "page": 1,
                "pageSize": 50000,
                "pagesFiltered": 1,
                "rows": len(rows),
                "rowsFiltered": len(rows),
                "rowsTotal": len(rows),
            },
        }
    )


def interaction(method, uri, body, status, response, headers=None, req_headers=None) -> dict:
    return {
        "request": {"body": body, "headers": req_headers or {}, "method": method, "uri": uri},
        "response": {
            "body": {"string": response},
            "headers": headers or {},
            "status": {"code": status[0], "message": status[1]},
        },
    }


def invoke(request: dict) -> str:
    return "request=" + quote(json.dumps(request))


def mast_cassette(hostile: bool) -> dict:
    position = f"{RA}, {DEC}, {RADIUS_DEG}"
    search = {
        "service": "Mast.Caom.Filtered.Position",
        "params": {
            "columns": "*",
            "filters": [
                {"paramName": "obs_collection", "separator": ";", "values": ["HST"]},
                {"paramName": "dataproduct_type", "values": ["image"]},
                {"paramName": "intentType", "values": ["science"]},
                {"paramName": "instrument_name", "values": ["WFC3/UVIS"]},
                {"paramName": "filters", "separator": ";", "values": FILTERS},
            ],
            "position": position,
        },
        "format": "json",
        "pagesize": 50000,
        "page": 1,
    }
    obs = observations()
    listing = {
        "service": "Mast.Caom.Products",
        "params": {"obsid": ",".join(o["obsid"] for o in obs)},
        "format": "json",
        "pagesize": 50000,
        "page": 1,
    }
    ok = (200, "OK")
    return {
        "interactions": [
            interaction(
                "POST",
                f"{MAST}/portal/Mashup/Mashup.asmx/columnsconfig",
                "colConfigId=Mast.Caom.Cone",
                ok,
                json.dumps(COLUMNS_CAOM),
                JSON,
                FORM,
            ),
            interaction(
                "POST",
                f"{MAST}/api/v0/invoke",
                invoke(search),
                ok,
                mashup(obs, OBS_FIELDS),
                JSON,
                FORM,
            ),
            interaction(
                "POST",
                f"{MAST}/portal/Mashup/Mashup.asmx/columnsconfig",
                "colConfigId=Mast.Caom.Products",
                ok,
                json.dumps(COLUMNS_PRODUCTS),
                JSON,
                FORM,
            ),
            interaction(
                "POST",
                f"{MAST}/api/v0/invoke",
                invoke(listing),
                ok,
                mashup(products(hostile), PRODUCT_FIELDS),
                JSON,
                FORM,
            ),
        ],
        "version": 1,
    }


def mast_error_cassette() -> dict:
    """The search answered with HTTP 503 (service unavailable)."""
    doc = mast_cassette(hostile=False)
    config, search = doc["interactions"][:2]
    search["response"] = {
        "body": {"string": "Service Unavailable"},
        "headers": {"Content-Type": ["text/plain"]},
        "status": {"code": 503, "message": "Service Unavailable"},
    }
    return {"interactions": [config, search], "version": 1}


#: The ADQL the footprint asks for: centre of the observations, radius 0.0318198 deg
#: (all observations share one centre, plus half the WFC3/UVIS field-of-view diagonal).
GAIA_QUERY = (
    "SELECT ra, dec, phot_g_mean_mag, source_id FROM gaiadr3.gaia_source "
    "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
    f"CIRCLE('ICRS', {OBS_RA:.7f}, {OBS_DEC:.7f}, {RADIUS_DEG:.7f})) "
    "AND ra IS NOT NULL AND dec IS NOT NULL"
)
JOB = "1764806400000O"
N_STARS = 12


def votable() -> str:
    """The job's result: 12 stars, one without a G magnitude (an empty TD)."""
    rng = np.random.default_rng(1087)
    r = RADIUS_DEG * np.sqrt(rng.uniform(0, 1, N_STARS))
    phi = rng.uniform(0, 2 * np.pi, N_STARS)
    ra = OBS_RA + r * np.cos(phi) / np.cos(np.radians(OBS_DEC))
    dec = OBS_DEC + r * np.sin(phi)
    g = np.round(rng.uniform(17.0, 20.9, N_STARS), 4)
    rows = []
    for i in range(N_STARS):
        gtext = "" if i == 5 else f"{g[i]}"
        rows.append(
            f"<TR><TD>{ra[i]:.12f}</TD><TD>{dec[i]:.12f}</TD><TD>{gtext}</TD>"
            f"<TD>{2480000000000000000 + 1000 * i}</TD></TR>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        '<RESOURCE type="results">\n<INFO name="QUERY_STATUS" value="OK"/>\n<TABLE>\n'
        '<FIELD datatype="double" name="ra" ucd="pos.eq.ra;meta.main" unit="deg"/>\n'
        '<FIELD datatype="double" name="dec" ucd="pos.eq.dec;meta.main" unit="deg"/>\n'
        '<FIELD datatype="float" name="phot_g_mean_mag" ucd="phot.mag;em.opt" unit="mag"/>\n'
        '<FIELD datatype="long" name="source_id" ucd="meta.id"/>\n'
        "<DATA><TABLEDATA>\n" + "\n".join(rows) + "\n</TABLEDATA></DATA>\n"
        "</TABLE>\n</RESOURCE>\n</VOTABLE>\n"
    )


def gaia_cassette() -> dict:
    job = f"{GAIA}/async/{JOB}"
    body = urlencode(
        {
            "REQUEST": "doQuery",
            "LANG": "ADQL",
            "FORMAT": "votable_plain",
            "tapclient": "aqtappy-0.4.11",
            "QUERY": GAIA_QUERY,
            "PHASE": "RUN",
        }
    )
    return {
        "interactions": [
            interaction(
                "GET",
                f"{GAIA}/notification?action=GetNotifications",
                None,
                (200, "OK"),
                "",
                {"Content-Type": ["text/plain;charset=UTF-8"]},
            ),
            interaction(
                "POST",
                f"{GAIA}/async",
                body,
                (303, "See Other"),
                "",
                {"Location": [job], "Content-Type": ["text/plain"]},
                FORM,
            ),
            interaction(
                "GET",
                f"{job}/phase",
                None,
                (200, "OK"),
                "COMPLETED",
                {"Content-Type": ["text/plain"]},
            ),
            interaction(
                "GET",
                f"{job}/results/result",
                None,
                (200, "OK"),
                votable(),
                {"Content-Type": ["application/x-votable+xml"]},
            ),
        ],
        "version": 1,
    }


def main() -> None:
    """Write the cassettes."""
    CASSETTES.mkdir(exist_ok=True)
    cassettes = {
        "ngc1087_mast": mast_cassette(hostile=False),
        "ngc1087_mast_hostile": mast_cassette(hostile=True),
        "ngc1087_mast_error": mast_error_cassette(),
        "ngc1087_gaia": gaia_cassette(),
    }
    for name, doc in cassettes.items():
        text = f"# written by {Path(__file__).name} (hand-made answers in the documented formats)\n"
        text += yaml.safe_dump(doc, sort_keys=False, width=100)
        (CASSETTES / f"{name}.yaml").write_text(text)
        print(CASSETTES / f"{name}.yaml")


if __name__ == "__main__":
    main()
