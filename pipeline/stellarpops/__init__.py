"""Stellar populations: the BC03 SSP magnitude grid and the SED fitter (shared science)."""
