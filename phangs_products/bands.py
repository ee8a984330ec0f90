"""HST bands, zero points and galaxies: the reference tables shipped in ``phangs_products/data``.

The tables are copies of the project's reference files (Lee et al. 2022 Table 1 and Sects. 3-4,
PHANGS header_info zero points, SVO pivot wavelengths); see ``data/SOURCES.md``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from astropy.table import Table

from phangs_products.errors import PhangsProductsError

__all__ = [
    "INSTRUMENTS",
    "Band",
    "FieldBand",
    "Galaxy",
    "band",
    "band_label",
    "field_band",
    "field_bands",
    "field_of_view",
    "field_target",
    "galaxy",
    "galaxy_bands",
    "galaxy_table",
    "instrume_of",
    "instruments_with",
    "parse_band",
    "pc_per_pixel",
    "resolve_bands",
    "science_filters",
    "survey_filters",
    "zp_ab",
]

#: Instrument/detector names of the band table (``instrument`` column).
INSTRUMENTS = ("WFC3/UVIS", "ACS/WFC")

#: PHANGS band labels of the five science bands (Lee et al. 2022 Sect. 3.1).
SCIENCE_LABELS = ("NUV", "U", "B", "V", "I")


def data_path(name: str) -> Path:
    """Path of a shipped reference table."""
    return Path(str(resources.files("phangs_products") / "data" / name))


@dataclass(frozen=True)
class Band:
    """Calibration facts of one HST instrument + filter.

    Attributes
    ----------
    filter, instrument, label : str
        ``F555W``, ``WFC3/UVIS``, ``V``.
    pivot : float
        Pivot wavelength in Angstrom (SVO, UVIS2 for WFC3).
    zp_vega : float
        Vega magnitude of 1 e-/s (PHANGS value).
    vega_flux_jy : float
        Flux density of Vega in the band, Jy.
    apcorr_offset : float
        Aperture-correction offset relative to V in mag (Lee+2022 Sect. 4.3).
    psf_fwhm : float
        PSF FWHM in arcsec (NaN when the paper gives none).
    exptime : float
        Total exposure time of a standard 3-orbit visit, s (NaN when none).
    n_exp : int
        Dithered exposures per visit.
    """

    filter: str
    instrument: str
    label: str
    pivot: float
    zp_vega: float
    vega_flux_jy: float
    apcorr_offset: float
    psf_fwhm: float
    exptime: float
    n_exp: int

    @property
    def photflam_typical(self) -> float:
        """PHOTFLAM (erg/s/cm2/A per e-/s) of the median PHANGS header_info row."""
        rows = _zeropoints()
        sel = rows[(rows["filter"] == self.filter) & (rows["instrument"] == self.instrument)]
        if len(sel) == 0:
            raise PhangsProductsError(f"no zero point for {self.instrument} {self.filter}")
        values = sorted(float(v) for v in sel["photflam"])
        return values[len(values) // 2]

    @property
    def photplam_typical(self) -> float:
        """PHOTPLAM (Angstrom) of the median PHANGS header_info row."""
        rows = _zeropoints()
        sel = rows[(rows["filter"] == self.filter) & (rows["instrument"] == self.instrument)]
        values = sorted(float(v) for v in sel["photplam"])
        return values[len(values) // 2] if values else self.pivot

    @property
    def spec(self) -> str:
        """The band as a run configuration writes it: ``"ACS/WFC F435W"``."""
        return f"{self.instrument} {self.filter}"

    @property
    def zp_ab(self) -> float:
        """AB zero point of the typical PHOTFLAM/PHOTPLAM (:func:`zp_ab`)."""
        return zp_ab(self.photflam_typical, self.photplam_typical)


def zp_ab(photflam: float, photplam: float) -> float:
    """AB magnitude of 1 e-/s: -2.5 log PHOTFLAM - 5 log PHOTPLAM - 2.408 (STScI definition)."""
    return -2.5 * math.log10(photflam) - 5 * math.log10(photplam) - 2.408


def _float(value: object) -> float:
    if np.ma.is_masked(value):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@functools.cache
def _bands() -> dict[tuple[str, str], Band]:
    table = Table.read(data_path("hst_bands.ecsv"))
    out = {}
    for row in table:
        n_exp = row["n_exp"]
        out[(row["instrument"], row["filter"])] = Band(
            filter=str(row["filter"]),
            instrument=str(row["instrument"]),
            label=str(row["band"]),
            pivot=_float(row["pivot_wave_svo"]),
            zp_vega=_float(row["zp_vega_phangs"]),
            vega_flux_jy=_float(row["vega_flux_svo"]),
            apcorr_offset=_float(row["apcorr_offset_vs_v"]),
            psf_fwhm=_float(row["psf_fwhm"]),
            exptime=_float(row["exptime_3orbit"]),
            n_exp=int(n_exp) if str(n_exp).strip() not in ("", "--") else 3,
        )
    return out


@functools.cache
def _zeropoints() -> Table:
    return Table.read(data_path("zeropoints.csv"), format="ascii.csv", comment="#")


def band(filter_name: str, instrument: str = "WFC3/UVIS") -> Band:
    """Calibration facts of a band.

    Raises
    ------
    PhangsProductsError
        If the instrument/filter pair is not one of the survey's bands.
    """
    key = (instrument, filter_name.upper())
    try:
        return _bands()[key]
    except KeyError:
        known = ", ".join(f"{i} {f}" for i, f in sorted(_bands()))
        raise PhangsProductsError(
            f"band {instrument} {filter_name} is not a PHANGS-HST band (known: {known})"
        ) from None


@functools.cache
def survey_filters() -> tuple[str, ...]:
    """The survey's WFC3/UVIS prime filters in wavelength order (role ``prime`` in the table).

    The five PHANGS-HST bands: ``("F275W", "F336W", "F438W", "F555W", "F814W")``.
    """
    table = Table.read(data_path("hst_bands.ecsv"))
    rows = sorted(
        (float(r["pivot_wave_svo"]), str(r["filter"])) for r in table if r["role"] == "prime"
    )
    return tuple(f for _, f in rows)


def galaxy_bands(target: str) -> tuple[Band, ...]:
    """The bands PHANGS-HST imaged a survey galaxy in, over all its pointings, by wavelength.

    From the per-pointing calibration rows (``zeropoints.csv``, PHANGS header_info tables):
    the rows with a PHANGS band label (NUV, U, B, V, I), WFC3/UVIS or archival ACS/WFC.

    Raises
    ------
    PhangsProductsError
        If the galaxy is not in the survey table or has no calibration rows.
    """
    name = galaxy(target).name
    rows = _zeropoints()
    found = _science_bands(rows["galaxy"] == name)
    if not found:
        raise PhangsProductsError(f"{name}: no band rows in zeropoints.csv (column galaxy)")
    return found


def _science_bands(rows_of: np.ndarray) -> tuple[Band, ...]:
    """The science bands (PHANGS labels NUV-I) of the selected ``zeropoints.csv`` rows.

    In wavelength order, WFC3/UVIS before ACS/WFC at equal pivot.
    """
    rows = _zeropoints()
    sel = rows[rows_of & np.isin(rows["band"], SCIENCE_LABELS)]
    found = {band(str(r["filter"]), str(r["instrument"])) for r in sel}
    return tuple(sorted(found, key=lambda b: (b.pivot, b.instrument)))


@functools.cache
def field_of_view(instrument: str) -> float:
    """Side of an instrument's square field of view in arcsec (WFC3/UVIS 162, ACS/WFC 202).

    Read from the band table's ``paper_states`` (Lee et al. 2022 Sect. 3.1, Fig. 3 caption),
    where a sentence names the instrument before its ``FoV <side>x<side> arcsec``.

    Raises
    ------
    PhangsProductsError
        If the table states no field of view for the instrument.
    """
    family = instrument.split("/")[0]
    for text in Table.read(data_path("hst_bands.ecsv")).meta.get("paper_states", []):
        current = ""
        for part in str(text).split(";"):
            named = re.search(r"\b(WFC3|ACS)\b", part)
            current = named.group(1) if named else current
            fov = re.search(r"FoV (\d+(?:\.\d+)?)x\d+(?:\.\d+)? arcsec", part)
            if fov and current == family:
                return float(fov.group(1))
    raise PhangsProductsError(
        f"hst_bands.ecsv: meta paper_states: no field of view stated for {instrument}"
    )


def band_label(filter_name: str, instrument: str = "WFC3/UVIS") -> str:
    """PHANGS band label (NUV, U, B, V, I) of a filter."""
    return band(filter_name, instrument).label


@functools.cache
def science_filters() -> tuple[str, ...]:
    """Filters of the survey's science bands (NUV-U-B-V-I, prime or archival prime), by pivot.

    The WFC3/UVIS prime filters plus the archival ACS/WFC F435W that replaces F438W on five
    fields: ``("F275W", "F336W", "F438W", "F435W", "F555W", "F814W")``.
    """
    rows = sorted(
        (b.pivot, b.filter)
        for b in _bands().values()
        if b.label in SCIENCE_LABELS and _role(b) in ("prime", "archival prime")
    )
    return tuple(dict.fromkeys(f for _, f in rows))


@functools.cache
def _roles() -> dict[tuple[str, str], str]:
    table = Table.read(data_path("hst_bands.ecsv"))
    return {(str(r["instrument"]), str(r["filter"])): str(r["role"]) for r in table}


def _role(b: Band) -> str:
    role = _roles()[(b.instrument, b.filter)]
    return "archival prime" if role.startswith("archival prime") else role


def instruments_with(filter_name: str) -> tuple[str, ...]:
    """Instruments of the band table that have a filter (``F555W``: WFC3/UVIS and ACS/WFC)."""
    return tuple(i for i, f in _bands() if f == filter_name.upper())


def parse_band(spec: str) -> tuple[str | None, str]:
    """Instrument and filter of a band as a run configuration writes it.

    ``"ACS/WFC F435W"`` -> ``("ACS/WFC", "F435W")``; a plain ``"F435W"`` -> ``(None, "F435W")``
    (the instrument is then taken from the data, see :func:`resolve_bands`).

    Raises
    ------
    PhangsProductsError
        If the text is not ``[<instrument> ]<filter>`` of a known instrument.
    """
    parts = str(spec).split()
    if len(parts) == 1:
        return None, parts[0].upper()
    if len(parts) == 2 and parts[0].upper() in INSTRUMENTS:
        return parts[0].upper(), parts[1].upper()
    raise PhangsProductsError(
        f"band {spec!r}: expected a filter (F555W) or instrument and filter "
        f"({' or '.join(repr(i + ' F555W') for i in INSTRUMENTS)})"
    )


def resolve_bands(
    specs: Sequence[str], available: Iterable[tuple[str, str]], where: str = "run.bands"
) -> list[Band]:
    """The bands a run processes: each requested band matched to the (instrument, filter) data.

    A band written with its instrument (``"ACS/WFC F555W"``) takes that instrument's data.  A
    plain filter takes the one instrument whose data hold it; when the data hold the filter
    from both instruments, the configuration must say which (there is no default).  Requested
    bands without data are left out (the caller logs them).

    Parameters
    ----------
    specs : sequence of str
        The run's bands (:func:`parse_band` forms).
    available : iterable of (str, str)
        (instrument, filter) of the input data.
    where : str
        Setting named in errors.

    Returns
    -------
    list of Band
        In wavelength order; each filter at most once.

    Raises
    ------
    PhangsProductsError
        If a plain filter is ambiguous in the data, or a filter is requested from two
        instruments (catalog columns are named by filter).
    """
    have = set(available)
    chosen: dict[str, Band] = {}
    for spec in specs:
        instrument, filt = parse_band(spec)
        if instrument is None:
            options = sorted(i for i, f in have if f == filt)
            if len(options) > 1:
                raise PhangsProductsError(
                    f"{where}: {filt} is in the input data from {' and '.join(options)}; write "
                    f"which one the run uses ({' or '.join(repr(o + ' ' + filt) for o in options)})"
                )
            if not options:
                continue
            instrument = options[0]
        elif (instrument, filt) not in have:
            continue
        facts = band(filt, instrument)
        if filt in chosen and chosen[filt] != facts:
            raise PhangsProductsError(
                f"{where}: {filt} is requested from {chosen[filt].instrument} and {instrument}; "
                "a run uses each filter from one instrument"
            )
        chosen[filt] = facts
    return sorted(chosen.values(), key=lambda b: b.pivot)


def field_bands(field: str) -> tuple[Band, ...]:
    """The science bands a survey field really has (PHANGS header_info tables), by wavelength.

    ``field_bands("ngc628c")``: WFC3/UVIS F275W, F336W and ACS/WFC F435W, F555W, F814W.

    Raises
    ------
    PhangsProductsError
        If the field is not one of the survey's pointings (``zeropoints.csv``).
    """
    found = _science_bands(_zeropoints()["target"] == str(field).lower().replace(" ", ""))
    if not found:
        raise PhangsProductsError(
            f"field {field!r} is not a PHANGS-HST pointing of zeropoints.csv (e.g. ngc628c)"
        )
    return found


@dataclass(frozen=True)
class FieldBand:
    """Calibration and exposure of one band of a survey pointing (a ``zeropoints.csv`` row).

    Attributes
    ----------
    photflam : float
        erg/s/cm2/A per e-/s.
    photplam : float
        Pivot wavelength, Angstrom.
    exptime : float
        Total exposure time of the pointing in the band, s.
    n_exp : int
        Exposures combined.
    date_obs : str
        UT date of the observations (YYYY-MM-DD).
    """

    photflam: float
    photplam: float
    exptime: float
    n_exp: int
    date_obs: str


def field_band(field: str, facts: Band) -> FieldBand:
    """The PHANGS header_info calibration and exposure of a band of a survey pointing.

    Raises
    ------
    PhangsProductsError
        If the pointing has no such band in ``zeropoints.csv``.
    """
    rows = _zeropoints()
    key = str(field).lower().replace(" ", "")
    sel = rows[
        (rows["target"] == key)
        & (rows["instrument"] == facts.instrument)
        & (rows["filter"] == facts.filter)
    ]
    if len(sel) == 0:
        raise PhangsProductsError(f"zeropoints.csv: no {facts.spec} row for field {field!r}")
    row = sel[0]
    return FieldBand(
        float(row["photflam"]),
        float(row["photplam"]),
        float(row["exptime"]),
        int(row["n_exp"]),
        str(row["date_obs"]),
    )


def field_target(field: str) -> str:
    """The galaxy (survey-table target, ``ngc628``) of a survey pointing (``ngc628c``).

    Raises
    ------
    PhangsProductsError
        If the pointing is not in ``zeropoints.csv``.
    """
    rows = _zeropoints()
    sel = rows[rows["target"] == str(field).lower().replace(" ", "")]
    if len(sel) == 0:
        raise PhangsProductsError(
            f"field {field!r} is not a PHANGS-HST pointing of zeropoints.csv (e.g. ngc628c)"
        )
    return galaxy(str(sel[0]["galaxy"])).target


def instrume_of(instruments: Iterable[str]) -> str:
    """INSTRUME value of a product made from bands of these instruments (WFC3, ACS or MULTI)."""
    names = {str(i).split("/")[0] for i in instruments}
    return names.pop() if len(names) == 1 else "MULTI"


#: Where the survey galaxies' positions and distances come from.
SURVEY_TABLE_SOURCE = "Lee et al. 2022 Table 1"


@dataclass(frozen=True)
class Galaxy:
    """A galaxy: from the survey table (Lee et al. 2022 Table 1) or given by a run configuration.

    Attributes
    ----------
    name, target : str
        Name (``NGC 628``) and lower-case target (``ngc628``).
    ra, dec : float
        Centre, ICRS degrees.
    distance_mpc, distance_err_mpc : float
        Adopted distance and its one-sigma uncertainty, Mpc.
    mosaic : bool
        Observed with several pointings.
    source : str
        Where position and distance come from.
    """

    name: str
    target: str
    ra: float
    dec: float
    distance_mpc: float
    mosaic: bool
    distance_err_mpc: float = math.nan
    source: str = SURVEY_TABLE_SOURCE

    @property
    def distance_modulus(self) -> float:
        """5 log10(d / 10 pc)."""
        return 5.0 * math.log10(self.distance_mpc * 1e5)


@functools.cache
def galaxy_table() -> Table:
    """The 38-galaxy table."""
    return Table.read(data_path("galaxies.ecsv"))


def galaxy(target: str) -> Galaxy:
    """Look a galaxy up by target (``ngc628``) or name (``NGC 628``).

    Raises
    ------
    PhangsProductsError
        If the galaxy is not in the survey table.
    """
    key = target.lower().replace(" ", "")
    for row in galaxy_table():
        if key in (row["target"], str(row["galaxy"]).lower().replace(" ", "")):
            return Galaxy(
                name=str(row["galaxy"]),
                target=str(row["target"]),
                ra=float(row["ra_deg"]),
                dec=float(row["dec_deg"]),
                distance_mpc=float(row["dist"]),
                mosaic=bool(row["hst_mosaic"]),
                distance_err_mpc=float(row["dist_err"]),
            )
    raise PhangsProductsError(f"galaxy {target!r} is not in the PHANGS-HST table (galaxies.ecsv)")


def pc_per_pixel(distance_mpc: float, pixscale_arcsec: float = 0.04) -> float:
    """Physical size of one pixel in parsec at a distance."""
    return distance_mpc * 1e6 * math.radians(pixscale_arcsec / 3600.0)
