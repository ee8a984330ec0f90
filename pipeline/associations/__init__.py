"""Stellar associations: multi-scale watershed on point-source maps (paper Sect. 4.7).

The method of Lee et al. (2022) Sect. 4.7 / Larson et al. (2023), for each selection (NUV:
F275W, V: F555W point sources of the DOLPHOT catalog passing the quality cuts) and scale
(Gaussian FWHM 8, 16, 32, 64 pc on the DRC grid, pixel size from the galaxy distance):

1. tracer map: the number of selected point sources in each DRC pixel;
2. smoothed with the Gaussian kernel and high-pass filtered by subtracting the map smoothed
   with a kernel 4x wider (:meth:`MapSmoother.highpass`; both by FFT).  Where the kernels run
   off the data (image border, chip gap) the subtracted background is the local density times
   the covered part of the kernel, so the edges do not become a ridge of false peaks; inside
   the data this is exactly the paper's difference of the two smoothed maps;
3. the same filters applied to ONE isolated star give the single-object maximum P1 at that
   scale and the map level at FWHM/2 from it (the region edge level, :func:`single_object`);
4. markers: local maxima of the high-passed map above 1.5 P1 (the paper: more than one star)
   that are also more than chance groupings of the local field: the number of tracer stars
   within one kernel FWHM of the peak must reach the Poisson count that the local background
   density (the 4x map without the candidate's own stars) exceeds in fewer than
   ``false_alarm_kpc2`` (0.04) circles per kpc^2 (:func:`chance_threshold`).  This test is ours,
   not the paper's: with the 1.5 P1 cut alone any random pair of field stars is an association
   at 8-16 pc, and at 32-64 pc 1.5 P1 is only about one standard deviation of the field-star
   fluctuations (the kernel holds several field stars), so the number of regions rose with scale
   and a smooth disk gave tens of "associations" per scale (2-6, 7-15, 19-29, 23-30 on a uniform
   field of the simulated density at 8/16/32/64 pc; now 0-2 per scale);
5. ``skimage.segmentation.watershed`` of the negative high-passed map from those markers,
   inside the mask map >= edge level (and the data footprint).

Catalogs: centre = mean position of member stars; area of the region; r_eff = sqrt(area/pi);
members; photometry summed over the region in every DRC minus the local background (median of a
ring as wide as the kernel FWHM around the region, excluding other regions); SED fit with the
cluster fitter; edge flag (the region touches the image border or missing data); overlap flag
(it borders another region); ids of catalog clusters inside.

Tested behaviour (tests/pipeline/test_associations_method.py, on point-source catalogs of the
simulator's scene and of a hierarchical young population): >= 80% of injected associations are
recovered at the nearest scale with their centre within one kernel FWHM; larger scales give
fewer, larger regions; nesting rule: >= 80% of the pixels of the regions at a scale lie inside
regions of the next larger scale and >= 90% of the region centres do; fewer than 5 regions per
scale on a field of random stars only.  End to end (tests/pipeline/test_associations_products.py:
simulation, drizzling, PSF photometry, this module) the demo field's associations nearest the 32
and 64 pc kernels are all recovered; the compact 10-20 pc ones, which hold 3-15 resolved members
in the simulator, mostly are not: in the spiral arms a handful of stars rarely passes the
chance-grouping test (module note in that test).
"""
