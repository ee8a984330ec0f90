"""The simulator: a galaxy field observed like PHANGS-HST, with its truth.

Production code never imports this package; it feeds the pipeline files on disk.

A simulated galaxy field observed like PHANGS-HST, with its truth.

``simulate(SimConfig(), out_dir)`` writes, for the default NGC 628 field (``ngc628c``):

* ``flc/<rootname>_flc.fits``: WFC3/UVIS FLC exposures, 3 dithers per band with the paper's
  total exposure times (F275W 2200, F336W 1100, F438W 1100, F555W 670, F814W 830 s; Lee et al.
  2022 Sect. 3.1), SCI/ERR/DQ per chip in electrons, headers modelled on a real FLC
  (:mod:`phangs_products.pipeline.sim.exposure`), written through the FLC schema (HLSP keywords,
  ``SIMULATD = T``);
* ``reference_catalog.txt``: true RA/Dec of bright isolated stars, the stand-in for Gaia DR2
  (whitespace text with ``#`` comment lines, the form TweakReg reads; columns RA, Dec, V);
* ``truth.ecsv`` (every object: kind, RA/Dec, per-band rate and Vega magnitude, r_eff, EFF
  slope, age, mass, E(B-V), association id), ``truth_associations.ecsv`` (centre, FWHM in pc,
  members) and ``truth_exposures.ecsv`` (per exposure and chip: the true WCS, the header WCS and
  the pointing error);
* ``simulation.txt``: the configuration; a later call with the same configuration reuses the
  files.

The scene is described in :mod:`phangs_products.pipeline.sim.scene`, the detector in
:mod:`phangs_products.pipeline.sim.exposure`, the PSF in :mod:`phangs_products.pipeline.instrument`.

Pointing errors: each band's visit gets one random error, Gaussian with ``pointing_error_arcsec``
(default 0.25") per axis and ``pointing_error_deg`` (0.01 deg) in rotation, shared by its three
dithers; the headers carry the erroneous pointing, ``truth_exposures.ecsv`` the real one.
Dithers: a 3-point line of 0, (2.5, 1.5) and (5, 3) px (about 0.1" steps; a choice).

Several pointings (``pointings=2`` or more): one scene covers all of them; pointing ``k`` is
centred ``k * (1 - overlap)`` detector widths east of the default field centre, so neighbouring
pointings share ``overlap`` of the detector width (default 0.3).  Each pointing is a visit of its
own per band (own pointing error, noise and exposure times after the previous pointing's) and its
FLCs go to ``flc/<field>/`` with the pointing as RA_TARG/DEC_TARG and rootnames whose 8th
character is the pointing's letter (``a``, ``b``, ...).  Field names: ``field`` for the first,
then ``<target>e``, ``<target>e2``, ... (pointings east of it, as PHANGS named ``ngc628c`` and
``ngc628e``) unless ``fields`` names them.  ``truth_exposures.ecsv`` then has a ``field`` column.
With one pointing (the default) every file is what it was before pointings existed.

Everything is a deterministic function of the configuration: the scene, each exposure's noise
and each chip's defects draw from their own ``numpy.random.default_rng([seed, ...])`` streams.
Only the file-write dates (``DATE``, checksum comments) and hence CHECKSUM differ between runs.
"""
