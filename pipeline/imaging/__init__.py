"""Imaging stage: align FLC exposures to the reference catalog and drizzle DRC/ERR/EXP products.

Paper Sect. 4.1 (Lee et al. 2022): every FLC is aligned with drizzlepac TweakReg against the
reference astrometric catalog (Gaia DR2 for real data); the FLC headers carry the solution
(``updatehdr``), and AstroDrizzle combines each band onto one north-up 0.04"/px grid defined by
F555W, with ``skymethod='globalmin+match'``, cosmic-ray rejection and output in e-/s.

The EXP map is AstroDrizzle's exposure-time weight map (``final_wht_type='EXP'``).  The ERR map
follows from that weight and the detector noise model (per output pixel, e-/s)::

    sigma^2 = (max(S, 0) + B) / W  +  RN^2 / (t_exp * W)

with S the drizzled count rate, B the background rate of the inputs (sky measured on the FLCs plus
the dark and post-flash electrons the calibration subtracted, MEANDARK and MEANFLSH),
W the EXP weight (s), RN the read noise (e-) and t_exp the single-exposure time (W / t_exp is the
number of overlapping exposures).  It is the uncertainty of one output pixel before drizzle's
pixel-to-pixel correlation; sums over apertures of several pixels have that variance.

drizzlepac writes logs and intermediate files in the current folder: every call runs inside the
stage's scratch folder with its log captured to a file, never the console.
"""
