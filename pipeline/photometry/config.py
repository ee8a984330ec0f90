"""Settings of detection and aperture photometry (paper defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    sharplo, sharphi, roundlo, roundhi : float
        DAOStarFinder's sharpness and roundness bounds of a detection.
    edge : int
        Detections closer than this to the image border (px) are dropped.
    detect_passes : int
        1: one DAOStarFinder pass; n: n - 1 more passes, each on the image with the PSF fits
        of all sources found so far subtracted (:func:`detect_sources`).
    background_box : int
        Mesh size (px) of the local background and rms maps of the detection threshold.
    workers : int
        Processes measuring the bands in parallel, for the aperture photometry and the PSF
        fits alike: 0 = one per available core (at most one per band), 1 = in this process.
        Parallel runs need images that are files and, with 0, at least
        ``parallel_min_sources`` sources (the PSF fits: ``PSFPhotConfig.parallel_min_sources``;
        below that, starting the processes costs more than it saves), and never start inside
        a daemon process (a Dask worker).
    parallel_min_sources : int
        Fewest sources for which ``workers = 0`` measures the bands in parallel.  Neither
        option changes the catalogs, so neither is part of the stage key.
    """

    reference_filter: str = "F555W"
    fwhm: float = field(default=2.5, metadata={"gt": 0})
    threshold: float = field(default=3.5, metadata={"gt": 0})
    radii: tuple[float, ...] = field(
        default=(1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0), metadata={"gt": 0}
    )
    phot_radius: float = field(default=4.0, metadata={"gt": 0})
    annulus: tuple[float, float] = field(default=(7.0, 9.0), metadata={"gt": 0})
    sharplo: float = 0.2
    sharphi: float = 1.0
    roundlo: float = -1.0
    roundhi: float = 1.0
    apcorr_max_sources: int = field(default=40, metadata={"ge": 1})
    apcorr_radius: float = field(default=10.0, metadata={"gt": 0})
    apcorr_annulus: tuple[float, float] = field(default=(12.0, 15.0), metadata={"gt": 0})
    apcorr_min_isolated: int = field(default=10, metadata={"ge": 0})
    apcorr_neighbour_ratio: float = field(default=0.01, metadata={"ge": 0})
    edge: int = field(default=10, metadata={"ge": 0})
    workers: int = field(default=0, metadata={"ge": 0, "in_key": False})
    parallel_min_sources: int = field(default=20000, metadata={"ge": 0, "in_key": False})
    detect_passes: int = field(default=2, metadata={"ge": 1})
    background_box: int = field(default=64, metadata={"ge": 1})
