"""Detection, aperture and PSF photometry: the photometry stage's package.

Detection and aperture photometry with concentration indices (paper Sect. 4.2-4.4).

* Detection: photutils DAOStarFinder on the F555W DRC (kernel FWHM 2.5 px), threshold in units
  of the local background rms (sigma-clipped, 64 px meshes); ``min_separation`` set to the
  kernel FWHM (photutils 3 would default to 2.5 FWHM and drop close pairs that DOLPHOT keeps).
* Photometry in every band at the same positions: one photutils ``aperture_photometry`` call
  with the seven CI/MCI radii (1, 1.5, 2, 2.5, 3, 4, 5 px; the compiled batch path of
  photutils >= 3.1), local sky from the 7-9 px annulus (sigma-clipped median), errors from the ERR
  map plus the sky uncertainty, Vega magnitudes from the zero points, mJy from the Vega flux
  density of the band.
* Aperture corrections: V from bright isolated sources of the field, the more compact half by
  CI (mean of m(4 px) - m(total), the 4 px flux as in the catalog, the total from a 10 px
  aperture plus the fiducial profile's tail), falling back to the per-target table; other
  bands = V - offset (Lee et al. 2022 Sect. 4.3).  Without the CI cut the share of clusters
  among the bright isolated sources set the correction, and it moved by 0.03 mag when the
  detection went deeper; now it moves by 0.002 mag (demo field).  The per-source values are
  combined by an inverse-variance weighted, clipped mean (the 10 px flux of a faint star is
  noisy).  Isolated stars come out 0.017 mag faint: the simulator's PSF stamps miss 0.9% of
  the light and the 10 px tail is the cluster fiducial's.
* CI = m(1) - m(3); NCI_ij = 1 - CI_ij / CI_ij(fiducial); MCI_in over (1, 1.5, 2, 2.5) and
  MCI_out over (2.5, 3, 4, 5) px, normalised by the fiducial Moffat (FWHM 2 px, slope 3)
  convolved with the band's PSF, measured with the same code on a rendered profile.
"""
