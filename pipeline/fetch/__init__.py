"""Fetching a galaxy's real data: FLC exposures from MAST, the Gaia DR3 reference catalog."""
