"""Historical products: files released before phangs-products, read as today's models.

Downstream users hold the PHANGS-HST v1 images and the PHANGS-CAT DR4 catalogs from MAST, and the
LEGUS catalogs before them; none records PPSCHEMA/PPSCHVER.  Each historical layout is a
versioned legacy schema (``schemas/legacy/``, listed under ``legacy:`` in
``schemas/manifest.yaml``) that gives its file-name pattern, its header or column signature and
the mapping onto a current schema.  :func:`open_historical` is the hook
:func:`phangs_products.open` calls first::

    name = "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_obs-human-cluster-class12.fits"
    model = phangs_products.open(name)
    model.meta.legacy      # phangs-cat-dr4-1.0.0 layout 'obs' (...), read as cluster-catalog-1.0.0
    model.table["PHANGS_CLUSTER_CLASS_ML"]      # today's name
    model.table["PHANGS_CLUSTER_CLASS_ML_VGG"]  # the DR4 name still answers
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from phangs_products.errors import Problem, ProductError, ValidationError
from phangs_products.legacy.layouts import LegacyFamily, checked, families, match
from phangs_products.legacy.readers import (
    LegacyCatalogModel,
    LegacyImageModel,
    LegacyInfo,
    read_fits_image,
    read_fits_table,
    read_text_table,
)
from phangs_products.models.base import Model, ProductValidationWarning

__all__ = [
    "LegacyCatalogModel",
    "LegacyFamily",
    "LegacyImageModel",
    "LegacyInfo",
    "expected_names",
    "families",
    "open_historical",
]

log = logging.getLogger(__name__)

_READERS = {
    "fits-image": read_fits_image,
    "fits-table": read_fits_table,
    "whitespace-table": read_text_table,
}


def expected_names(suffix: str | None = None) -> str:
    """The historical file names the reader knows, for error messages (one line)."""
    fams = families()
    if suffix == ".tab":
        fams = tuple(f for f in fams if f.format == "whitespace-table")
    return "; ".join(f.expected() for f in fams)


def open_historical(
    path: Path, *, strict: bool = False, masked: bool | None = None
) -> Model | None:
    """Open a historical product, or return None when its name is no historical layout's.

    Parameters
    ----------
    path : Path
        The file.
    strict : bool
        Raise :class:`ValidationError` when the file differs from its documented layout
        (otherwise one :class:`ProductValidationWarning`).
    masked : bool, optional
        Mask sentinel entries (default True for historical products).

    Returns
    -------
    Model or None
        Today's model with ``model.meta.legacy`` set; None when the name matches no historical
        layout or the file records PPSCHEMA (a phangs-products file under a historical name).

    Raises
    ------
    ProductError
        One line naming the file and what was expected, when the name is historical but the
        content does not fit (or a ``.tab`` file has no historical name).
    """
    found = match(path)
    if found is None:
        if path.suffix.lower() == ".tab":
            expected = expected_names(".tab")
            raise ProductError(
                f"{path.name}: not a known historical text catalog (expected {expected})"
            )
        return None
    family, fields = found
    if not path.exists():
        raise ProductError(f"{path}: no such file")
    checked(family.schema_id)
    reader = _READERS[family.format]
    model, problems = reader(path, family, fields, True if masked is None else masked)
    if model is None:
        return None
    _report(path, problems, strict)
    return model


def _report(path: Path, problems: list[Problem], strict: bool) -> None:
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity != "error":
            log.info("%s", p)
    if not errors:
        return
    if strict:
        raise ValidationError(errors)
    warnings.warn(
        f"{path.name}: {len(errors)} layout problem(s), first: {errors[0]} "
        "(open with strict=True to raise)",
        ProductValidationWarning,
        stacklevel=4,
    )
