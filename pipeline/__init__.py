"""Pipeline stages of phangs-products (imported as ``phangs_products.pipeline``).

Stages are functions on models with a frozen config dataclass whose defaults are the paper's
values; :mod:`phangs_products.pipeline.runner` runs them as a graph for one galaxy field and
:mod:`phangs_products.pipeline.scaleout` runs many fields on Dask.
"""
