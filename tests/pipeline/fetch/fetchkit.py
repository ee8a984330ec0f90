"""Shared pieces of the offline fetch tests: the recorded exposures, real tiny FLC files, matching.

The cassettes in ``cassettes/`` are written by ``make_cassettes.py`` in the services' documented
formats (MAST ``/api/v0/invoke`` JSON, the Portal columns configuration, Gaia TAP async jobs
with a VOTable result).  They replay with record mode ``none``: a request that is not recorded
fails the test.  Requests are matched on method, URL and the decoded form body (the MAST
request JSON without its random ``cacheBreaker``; the TAP parameters without ``tapclient``), so
a change in what the code asks MAST or Gaia fails too.  Downloads go to a local HTTP server
(``flc_server``) serving real tiny FLC files, reached through ``--download-url``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote

from astropy.io import fits
from factories import tiny_flc

HERE = Path(__file__).resolve().parent
CASSETTES = HERE / "cassettes"

#: The recorded galaxy: NGC 1087, one pointing, the five WFC3/UVIS bands.
TARGET = "ngc1087"
#: The FLC exposures of the recorded MAST answer (rootname, filter).
EXPOSURES = (
    ("ie1a05t4q", "F275W"),
    ("ie1a05t8q", "F336W"),
    ("ie1a05tcq", "F438W"),
    ("ie1a05tgq", "F555W"),
    ("ie1a05tiq", "F555W"),
    ("ie1a05tkq", "F814W"),
)


def served_flc(folder: Path, rootname: str, filt: str) -> Path:
    """A real tiny WFC3/UVIS FLC file with CHECKSUM/DATASUM, as the archive serves it."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = tiny_flc(folder / f"plain_{rootname}.fits", filt=filt, rootname=rootname)
    path = folder / f"{rootname}_flc.fits"
    with fits.open(plain) as hdul:
        hdul.writeto(path, checksum=True)
    plain.unlink()
    return path


# ------------------------------------------------------------------------ request matching
def _body_text(body) -> str:
    if body is None:
        return ""
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


def _form(body) -> object:
    """A request body in comparable form: MAST request JSON, TAP form fields, or the text."""
    text = _body_text(body)
    if text.startswith("request="):
        doc = json.loads(unquote(text[len("request=") :]))
        doc.pop("cacheBreaker", None)
        params = doc.get("params", {})
        if "position" in params:  # "ra, dec, radius" in degrees: compared as numbers
            params["position"] = [round(float(x), 9) for x in params["position"].split(",")]
        return doc
    if "=" in text and "QUERY=" in text:
        fields = {k: v for k, v in parse_qs(text, keep_blank_values=True).items()}
        fields.pop("tapclient", None)
        fields["QUERY"] = [" ".join(q.split()) for q in fields.get("QUERY", [])]
        return fields
    return text


def form_matcher(r1, r2) -> None:
    """VCR matcher: the decoded bodies agree."""
    a, b = _form(r1.body), _form(r2.body)
    assert a == b, f"request bodies differ:\n  sent     {a}\n  recorded {b}"


def flc_size() -> int:
    """Size in bytes of every served FLC file (they differ only in header values)."""
    with tempfile.TemporaryDirectory() as tmp:
        return served_flc(Path(tmp), *EXPOSURES[0]).stat().st_size
