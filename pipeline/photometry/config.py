"""Settings of detection and aperture photometry (paper defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhotometryConfig:
    """Detection and photometry settings (paper values; thresholds documented choices).

    Attributes
    ----------
    reference_filter : str
        Detection band (F555W).
    fwhm : float
        DAOStarFinder kernel FWHM in px (2.5).
    threshold : float
        Detection threshold in units of the background rms (about the S/N of DOLPHOT's 3.5
        sigma peak threshold for compact sources: a documented choice, Thilker+2022 give none).
    radii : tuple of float
        CI/MCI aperture radii in px.
    phot_radius : float
        Magnitude aperture radius (4 px).
    annulus : tuple of float
        Sky annulus radii in px (7-9 px as in PHANGS code; the paper says 7-8).
    apcorr_max_sources : int
        Bright isolated sources used for the V-band aperture correction.
    apcorr_radius, apcorr_annulus : float, tuple of float
        Large aperture and its sky annulus (px) of the aperture-correction growth curves.
    apcorr_min_isolated, apcorr_neighbour_ratio : int, float
        When fewer than ``apcorr_min_isolated`` bright sources have no neighbour at all within
        the annulus's outer radius (crowded fields), neighbours of at most
        ``apcorr_neighbour_ratio`` times a calibrator's 4 px flux are allowed
        (:func:`calibrator_isolation`).
    edge : int
        Detections closer than this to the image border (px) are dropped.
    detect_passes : int
        1: one DAOStarFinder pass; n: n - 1 more passes, each on the image with the PSF fits
        of all sources found so far subtracted (:func:`detect_sources`).
    background_box : int
        Mesh size (px) of the local background and rms maps of the detection threshold.
    workers : int
        Processes measuring the bands in parallel: 0 = one per available core (at most one
        per band), 1 = in this process.  Parallel runs need images that are files and at
        least ``parallel_min_sources`` sources (below that, starting the processes costs more
        than it saves), and never start inside a daemon process (a Dask worker).
    parallel_min_sources : int
        Fewest sources for which ``workers = 0`` measures the bands in parallel.
    """

    reference_filter: str = "F555W"
    fwhm: float = 2.5
    threshold: float = 3.5
    radii: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
    phot_radius: float = 4.0
    annulus: tuple[float, float] = (7.0, 9.0)
    sharplo: float = 0.2
    sharphi: float = 1.0
    roundlo: float = -1.0
    roundhi: float = 1.0
    apcorr_max_sources: int = 40
    apcorr_radius: float = 10.0
    apcorr_annulus: tuple[float, float] = (12.0, 15.0)
    apcorr_min_isolated: int = 10
    apcorr_neighbour_ratio: float = 0.01
    edge: int = 10
    workers: int = 0
    parallel_min_sources: int = 20000
    detect_passes: int = 2
    background_box: int = 64
