"""phangs-products: schema-driven PHANGS-HST products and MAST HLSP deliveries.

Open any product with :func:`open`; it returns a typed, lazily loaded model::

    import phangs_products
    drc = phangs_products.open("hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_drc-sci.fits")
    drc.meta.filter, drc.data.shape, drc.wcs
"""

from __future__ import annotations

import logging

from phangs_products.errors import (
    PhangsProductsError,
    Problem,
    ProductError,
    SchemaError,
    ValidationError,
)
from phangs_products.models import (
    CatalogModel,
    FlcModel,
    ImageModel,
    ManifestModel,
    Model,
    ProductValidationWarning,
    ReadmeModel,
    RegionsModel,
    TextModel,
    open,
    read_meta,
    software_version,
)
from phangs_products.registry import get_schema, list_schemas
from phangs_products.spec import BandInfo

__version__ = software_version()

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "BandInfo",
    "CatalogModel",
    "FlcModel",
    "ImageModel",
    "ManifestModel",
    "Model",
    "PhangsProductsError",
    "Problem",
    "ProductError",
    "ProductValidationWarning",
    "ReadmeModel",
    "RegionsModel",
    "SchemaError",
    "TextModel",
    "ValidationError",
    "__version__",
    "get_schema",
    "list_schemas",
    "open",
    "read_meta",
]
