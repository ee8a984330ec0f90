"""Typed, lazy, schema-driven product models.

``phangs_products.open(path)`` reads the header only, finds the schema the file records
(``PPSCHEMA``/``PPSCHVER``) and returns a model whose ``meta`` attributes are generated from
that schema.  Arrays and tables load on first access.  ``Model.save`` validates strictly and
writes atomically with CHECKSUM/DATASUM.
"""

from phangs_products.models.base import (
    FitsModel,
    Model,
    ProductValidationWarning,
    software_version,
)
from phangs_products.models.catalog import CatalogModel
from phangs_products.models.image import FlcModel, ImageModel, read_wcs, write_wcs
from phangs_products.models.meta import Meta, meta_class
from phangs_products.models.reader import open, read_meta
from phangs_products.models.text import ManifestModel, ReadmeModel, RegionsModel, TextModel

__all__ = [
    "CatalogModel",
    "FitsModel",
    "FlcModel",
    "ImageModel",
    "ManifestModel",
    "Meta",
    "Model",
    "ProductValidationWarning",
    "ReadmeModel",
    "RegionsModel",
    "TextModel",
    "meta_class",
    "open",
    "read_meta",
    "read_wcs",
    "software_version",
    "write_wcs",
]
