"""What to simulate: :class:`SimConfig`, detector sizes, dithers and bands."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from phangs_products.bands import (
    Band,
    band,
    field_band,
    field_bands,
    galaxy,
    instruments_with,
    parse_band,
    survey_filters,
)
from phangs_products.errors import PhangsProductsError
from phangs_products.naming import sanitize_target

#: Detector layouts: (number of chips, rows, columns) per size preset (WFC3/UVIS).
SIZES: dict[str, tuple[int, int, int]] = {
    "small": (1, 512, 512),
    "medium": (2, 1024, 1024),
    "full": (2, 2051, 4096),
}

#: ACS/WFC layouts: two 4096x2048 chips at full size (the real FLC format); the small and
#: medium presets are cut like the WFC3/UVIS ones, to the same sky width (0.05" pixels).
ACS_SIZES: dict[str, tuple[int, int, int]] = {
    "small": (1, 410, 410),
    "medium": (2, 820, 820),
    "full": (2, 2048, 4096),
}

#: Detector layouts per instrument.
DETECTOR_SIZES = {"WFC3/UVIS": SIZES, "ACS/WFC": ACS_SIZES}


#: Dither offsets (x, y) of the 3 exposures of a visit, FLC pixels.
DITHERS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (2.5, 1.5), (5.0, 3.0))


BANDS: tuple[str, ...] = survey_filters()


MARGIN_PX = 20  # objects are placed this far beyond the detector edges too


GAP_S = 120.0  # s between exposures (overheads)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    Attributes
    ----------
    target, field : str
        Galaxy (survey table, e.g. ``ngc628``) and field name (``ngc628c``).
    seed : int
        Random seed: same seed, same scene and noise; another seed, another scene.
    size : str
        ``small`` (1 chip 512x512), ``medium`` (2 chips 1024x1024) or ``full`` (2 chips
        4096x2051, the real UVIS format); ACS/WFC bands get the same sky width at 0.05"/px
        (``ACS_SIZES``; full: two 4096x2048 chips).
    bands : tuple of str
        Bands: filters (``F555W``: WFC3/UVIS, or the instrument the ``layout`` gives it, or
        ACS/WFC for F435W, which only ACS has) or instrument and filter (``ACS/WFC F555W``).
        Default: the five WFC3/UVIS PHANGS bands, or the ``layout`` field's bands.  Stored as
        filters; ``instruments`` holds each band's instrument.
    instruments : tuple of str
        Instrument of each band (filled from ``bands``; not set by hand).
    layout : str
        A survey pointing (``ngc628c``) whose real bands, instruments, exposure times and
        PHOTFLAM/PHOTPLAM (``zeropoints.csv``) are simulated; empty: the WFC3/UVIS default.
    n_stars, n_clusters, n_associations : int
        Objects per 512x512 FLC pixels (scaled with the detector area).
    noiseless : bool
        Expected counts only: no noise, cosmic rays, detector defects, saturation or pointing
        errors (for flux tests).
    psf_scale : float
        Factor on the instrument PSF's core FWHM (1: the instrument model; 1.5 a field whose
        PSF is broader than the model, to test that the science follows the data's PSF).
    spiral_arms : bool
        Add spiral arms to the disk and put young objects on them.
    diffuse : bool
        Render the diffuse disk light (off: sources on sky only, e.g. for flux tests).
    pointing_error_arcsec, pointing_error_deg : float
        1-sigma pointing error per visit: shift per axis (arcsec) and rotation (deg).
    mjd_start : float
        Start of the first exposure, MJD (UTC).
    exptime_scale : float
        Factor on the paper's exposure times.
    pointings : int
        Number of overlapping pointings (1-5) laid out from west to east (module doc).
    overlap : float
        Fraction of the detector width shared by neighbouring pointings (0.05-0.95).
    fields : tuple of str
        Field names of the pointings (default: ``field``, then ``<target>e``, ``<target>e2``...).
    ebv_mw : float
        Milky Way foreground E(B-V) in mag: every object's count rate in a band is dimmed by
        that band's A_band (``stellarpops.extinction.foreground_extinction``); the truth
        magnitudes stay unreddened by it.  The diffuse disk light is not dimmed.
    proposid : int
        PROPOSID written into the FLC headers (default the PHANGS-HST program).
    """

    target: str = "ngc628"
    field: str = "ngc628c"
    seed: int = 1
    size: str = "small"
    bands: tuple[str, ...] = ()
    n_stars: int = 700
    n_clusters: int = 60
    n_associations: int = 6
    noiseless: bool = False
    psf_scale: float = 1.0
    spiral_arms: bool = True
    diffuse: bool = True
    pointing_error_arcsec: float = 0.25
    pointing_error_deg: float = 0.01
    mjd_start: float = 58800.2
    exptime_scale: float = 1.0
    pointings: int = 1
    overlap: float = 0.3
    fields: tuple[str, ...] = ()
    ebv_mw: float = 0.0
    proposid: int = 15654
    instruments: tuple[str, ...] = ()
    layout: str = ""

    def __post_init__(self) -> None:
        self._set_bands()
        if not 0.5 <= self.psf_scale <= 3.0:
            raise PhangsProductsError(f"SimConfig: psf_scale {self.psf_scale} is not in [0.5, 3]")
        if self.size not in SIZES:
            raise PhangsProductsError(
                f"SimConfig: size {self.size!r} is not one of {', '.join(SIZES)}"
            )
        if len(set(self.bands)) != len(self.bands):
            raise PhangsProductsError(f"SimConfig: repeated band in {self.bands}")
        if len(self.bands) > 10:
            raise PhangsProductsError("SimConfig: at most 10 bands (one rootname digit)")
        galaxy(self.target)  # raises for an unknown galaxy
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise PhangsProductsError(f"SimConfig: seed must be an integer >= 0, got {self.seed!r}")
        for name in ("n_stars", "n_clusters", "n_associations"):
            if getattr(self, name) < 0:
                raise PhangsProductsError(f"SimConfig: {name} must be >= 0")
        if not self.exptime_scale > 0:
            raise PhangsProductsError("SimConfig: exptime_scale must be > 0")
        if self.pointing_error_arcsec < 0 or self.pointing_error_deg < 0:
            raise PhangsProductsError("SimConfig: pointing errors must be >= 0")
        if not 40000.0 < self.mjd_start < 80000.0:
            raise PhangsProductsError(f"SimConfig: mjd_start {self.mjd_start} is not an HST date")
        if not isinstance(self.pointings, int | np.integer) or not 1 <= self.pointings <= 5:
            raise PhangsProductsError(
                f"SimConfig: pointings must be an integer 1-5, got {self.pointings!r}"
            )
        if not 0.05 <= self.overlap <= 0.95:
            raise PhangsProductsError(
                f"SimConfig: overlap must be a fraction 0.05-0.95, got {self.overlap!r}"
            )
        if isinstance(self.fields, str):
            raise PhangsProductsError("SimConfig: fields must be a tuple of field names")
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.fields and len(self.fields) != self.pointings:
            raise PhangsProductsError(
                f"SimConfig: {len(self.fields)} field name(s) for {self.pointings} pointing(s)"
            )
        if not 0.0 <= self.ebv_mw <= 1.5:
            raise PhangsProductsError(f"SimConfig: ebv_mw must be 0-1.5 mag, got {self.ebv_mw!r}")
        if not isinstance(self.proposid, int | np.integer) or self.proposid < 1:
            raise PhangsProductsError("SimConfig: proposid must be an integer >= 1")
        names = self.pointing_fields
        if len(set(names)) != len(names):
            raise PhangsProductsError(f"SimConfig: repeated field name in {names}")
        for name in names:
            sanitize_target(name)  # raises for a name MAST does not allow

    def _set_bands(self) -> None:
        """Fill ``bands`` (filters) and ``instruments`` from the given bands and ``layout``."""
        if isinstance(self.bands, str):
            raise PhangsProductsError("SimConfig: bands must be a tuple of filters")
        layout = {b.filter: b for b in field_bands(self.layout)} if self.layout else {}
        specs = self.bands or (tuple(b.spec for b in layout.values()) if layout else BANDS)
        if self.instruments and len(self.instruments) == len(specs):
            specs = tuple(f"{i} {f}" for i, f in zip(self.instruments, specs, strict=True))
        facts = []
        for spec in specs:
            instrument, filt = parse_band(str(spec))
            if instrument is None:
                have = instruments_with(filt)
                default = have[0] if len(have) == 1 else "WFC3/UVIS"
                instrument = layout[filt].instrument if filt in layout else default
            facts.append(band(filt, instrument))  # raises for a band outside the survey's
        object.__setattr__(self, "bands", tuple(b.filter for b in facts))
        object.__setattr__(self, "instruments", tuple(b.instrument for b in facts))
        if self.layout:
            for b in facts:
                field_band(self.layout, b)  # raises for a band the pointing does not have

    def facts(self, filt: str) -> Band:
        """Calibration facts (instrument and filter) of one of the simulated bands."""
        return band(filt, self.instruments[self.bands.index(filt)])

    def instrument(self, filt: str) -> str:
        """Instrument/detector of one of the simulated bands."""
        return self.instruments[self.bands.index(filt)]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(chips, rows, columns) of the WFC3/UVIS detector."""
        return SIZES[self.size]

    def detector_shape(self, instrument: str) -> tuple[int, int, int]:
        """(chips, rows, columns) of an instrument's detector at this size."""
        return DETECTOR_SIZES[instrument][self.size]

    def photometry(self, filt: str) -> tuple[float, float]:
        """PHOTFLAM and PHOTPLAM written for a band (the layout field's, else the median)."""
        facts = self.facts(filt)
        if self.layout:
            row = field_band(self.layout, facts)
            return row.photflam, row.photplam
        return facts.photflam_typical, facts.photplam_typical

    @property
    def pointing_fields(self) -> tuple[str, ...]:
        """Field name of each pointing (module doc)."""
        if self.fields:
            return self.fields
        extra = [f"{self.target}e" + (str(k) if k > 1 else "") for k in range(1, self.pointings)]
        return (self.field, *extra)

    @property
    def pointing_step_px(self) -> float:
        """East-west distance between neighbouring pointings, FLC pixels."""
        return SIZES[self.size][2] * (1.0 - self.overlap)

    @property
    def area_factor(self) -> float:
        """Detector area relative to 512x512."""
        chips, ny, nx = SIZES[self.size]
        return chips * ny * nx / 512.0**2

    def exptime(self, filt: str) -> float:
        """Exposure time of one of the three dithers in a band, s.

        The paper's standard-visit total (``hst_bands.ecsv``), or the ``layout`` pointing's
        total (``zeropoints.csv``), split over the dithers.
        """
        facts = self.facts(filt)
        total = field_band(self.layout, facts).exptime if self.layout else facts.exptime
        return round(total / len(DITHERS) * self.exptime_scale, 1)

    def rootname(self, band_index: int, dither: int, pointing: int = 0) -> str:
        """9-character rootname (``<i|j>sim<seed%10><band><dither><pointing letter>q``).

        The first letter is the instrument's (``i`` WFC3, ``j`` ACS) as in real rootnames.
        """
        first = "j" if self.instruments[band_index].startswith("ACS") else "i"
        return f"{first}sim{self.seed % 10}{band_index}{dither}{chr(ord('a') + pointing)}q"

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary of the configuration (for provenance).

        The pointing settings appear only for several pointings (a one-pointing simulation
        records what it recorded before they existed).
        """
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if self.pointings == 1:
            for key in ("pointings", "overlap", "fields"):
                out.pop(key)
        for key in ("ebv_mw", "proposid", "layout"):  # recorded when not the default
            if out[key] == getattr(SimConfig, key):
                out.pop(key)
        if all(i == "WFC3/UVIS" for i in self.instruments):
            out.pop("instruments")
        return out

    def __repr__(self) -> str:
        """Constructor-like text; the pointing settings only for several pointings."""
        names = [f.name for f in fields(self)]
        if self.pointings == 1:
            names = [n for n in names if n not in ("pointings", "overlap", "fields")]
        names = [
            n
            for n in names
            if n not in ("ebv_mw", "proposid", "layout")
            or getattr(self, n) != getattr(SimConfig, n)
        ]
        if all(i == "WFC3/UVIS" for i in self.instruments):
            names.remove("instruments")
        items = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"SimConfig({items})"
