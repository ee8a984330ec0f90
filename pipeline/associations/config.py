"""Settings of the association method, and the schema facts it uses (scales, sentinel)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from phangs_products.bands import band, survey_filters
from phangs_products.registry import get_schema

#: Missing-value marker of the catalog columns (from the schema).
SENTINEL = float(get_schema("assoc-catalog").sentinel)
#: Smoothing scales in pc, the schema's file-name variants.
SCALES = tuple(int(s) for s in get_schema("assoc-catalog").variants("scale"))


#: Filter of each point-source selection: the survey band whose label the selection names
#: (``nuv`` -> F275W, ``v`` -> F555W), for every selection the schema allows.
SELECTION_FILTER = {
    sel: next(f for f in survey_filters() if band(f).label == sel.upper())
    for sel in get_schema("assoc-catalog").variants("selection")
}


FWHM_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # Gaussian FWHM / sigma


@dataclass(frozen=True)
class AssociationConfig:
    """Association settings (the paper gives no quality-cut numbers: documented choices).

    Attributes
    ----------
    scales : tuple of int
        Kernel FWHMs in pc.
    selections : tuple of str
        ``nuv`` (F275W) and ``v`` (F555W).
    min_snr : float
        Minimum S/N in the selection band.
    max_sharp : float
        Maximum |SHARP| in the selection band (DOLPHOT's sharpness).
    object_types : tuple of int
        DOLPHOT object types kept: 1 (star), 2 (faint star) and 3 (elongated); 4 (too sharp)
        and 5 (extended) are the sharpness cut of the paper.  Type 3 is kept because the paper
        cuts on S/N, sharpness and data quality only, and in the groups we look for a
        neighbour's light makes stars look elongated: on the simulated demo field 21 of the 72
        detected association members were type 3, against 26 of 254 field stars.
    max_crowd : float or None
        Optional cut on CROWD (mag); None (the default, as the paper) keeps every crowding (a
        1 mag cut removed 13 of those 72 members).  Without the type-3 and crowding cuts the
        demo field recovers 3/6 (V) and 4/6 (NUV) associations instead of 2/6, and the 2 kpc
        medium field 24/45 and 29/45 instead of 17/45 and 22/45 (same photometry; measured
        before the simulator capped associations at their resolvable members).
    highpass_factor, peak_factor : float
        High-pass kernel size (4x) and marker threshold (1.5 single-object peaks), the
        paper's values.
    count_radius : float
        Radius of the chance-grouping count around a peak, in kernel FWHMs (our choice).
    false_alarm_kpc2 : float
        Expected chance groupings per kpc^2 of the map and per scale (:func:`chance_threshold`;
        our choice; the search over all positions makes the measured rate a few times higher).
        A rate per area keeps a peak's threshold the same whatever the field's size: the
        earlier number per map (0.3) raised it with the area, and a full-size field recovered
        69% / 80% of its 32 / 64 pc associations (NUV) against 78% / 89% with this rate.  0.04
        per kpc^2 is that old per-map number on the method tests' 7.5 kpc^2 scene.  Measured
        (test_associations_method.py): 36/44 injected associations recovered (V and NUV);
        spurious regions per scale on a smooth disk of the simulated density (0.9 kpc^2) at most
        2; on a uniform field of 10x that density (15.3 kpc^2) 5, 3, 4, 2 at 8/16/32/64 pc.
    """

    scales: tuple[int, ...] = field(default=SCALES, metadata={"gt": 0})
    selections: tuple[str, ...] = ("nuv", "v")
    min_snr: float = field(default=5.0, metadata={"ge": 0})
    max_sharp: float = field(default=0.3, metadata={"ge": 0})
    object_types: tuple[int, ...] = (1, 2, 3)
    max_crowd: float | None = None
    highpass_factor: float = field(default=4.0, metadata={"gt": 0})
    peak_factor: float = field(default=1.5, metadata={"gt": 0})
    count_radius: float = field(default=1.0, metadata={"gt": 0})
    false_alarm_kpc2: float = field(default=0.04, metadata={"gt": 0})
