"""Model base classes: schema, meta, validation; FITS products with atomic, checksummed writes."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
from collections.abc import Mapping, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from astropy.io import fits

from phangs_products import conformance, fitsscan
from phangs_products.atomic import atomic_path, refuse_overwrite
from phangs_products.errors import Problem, ProductError, SchemaError, ValidationError, reading
from phangs_products.models.meta import meta_class
from phangs_products.provenance import asdf_hdu, read_provenance
from phangs_products.registry import get_schema
from phangs_products.spec import ProductSchema

log = logging.getLogger(__name__)


class ProductValidationWarning(UserWarning):
    """A product read with ``strict=False`` does not conform to its schema."""


def software_version() -> str:
    """Installed version of phangs-products."""
    try:
        return metadata.version("phangs-products")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


# -------------------------------------------------------------------------------------- models
class Model:
    """Base class of product models.

    Parameters
    ----------
    schema : ProductSchema
        Schema the product follows.
    headers : dict, optional
        Headers by HDU name.
    path : path-like, optional
        File the model was read from (arrays and tables load from it lazily).
    """

    kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        schema: ProductSchema,
        headers: MutableMapping[str, fits.Header] | None = None,
        path: str | Path | None = None,
    ):
        self.schema = schema
        self.path = Path(path) if path is not None else None
        self.meta = meta_class(schema)(headers if headers is not None else {})
        self._provenance: dict[str, Any] | None = None

    @property
    def provenance(self) -> dict[str, Any] | None:
        """The provenance tree: the one embedded in the file read (ASDF extension), or set."""
        if self._provenance is None and self.path is not None:
            self._provenance = self._read_provenance()
        return self._provenance

    @provenance.setter
    def provenance(self, tree: dict[str, Any] | None) -> None:
        self._provenance = tree

    def _read_provenance(self) -> dict[str, Any] | None:
        """The provenance embedded in the source file (None: the format holds none)."""
        return None

    # --------------------------------------------------------------- construction helpers
    @classmethod
    def _new(cls, schema: str | ProductSchema, meta: Mapping[str, Any] | None) -> Model:
        sch = schema if isinstance(schema, ProductSchema) else get_schema(schema)
        if cls.kinds and sch.kind not in cls.kinds:
            raise SchemaError(f"{sch.id} is a {sch.kind} product, not one of {cls.kinds}")
        model = cls(sch)
        hdr = model.meta.header("PRIMARY")
        hdr["PPSCHEMA"] = (sch.name, "phangs-products schema name")
        hdr["PPSCHVER"] = (sch.version, "phangs-products schema version")
        if meta:
            model.meta.update(meta)
        return model

    def stamp(self) -> None:
        """Record schema id, software version and write date in the primary header."""
        hdr = self.meta.header("PRIMARY")
        hdr["PPSCHEMA"] = (self.schema.name, "phangs-products schema name")
        hdr["PPSCHVER"] = (self.schema.version, "phangs-products schema version")
        hdr["PPSOFTV"] = (software_version(), "phangs-products version")
        hdr["LONGSTRN"] = ("OGIP 1.0", "long strings continue over CONTINUE cards")
        hdr["DATE"] = (
            _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "file written (UTC)",
        )

    # ------------------------------------------------------------------------ validation
    def problems(self, data: bool = True) -> list[Problem]:
        """Every schema problem of the model (errors and warnings)."""
        raise NotImplementedError

    def validate(self, data: bool = True) -> list[Problem]:
        """Validate against the schema.

        Returns
        -------
        list of Problem
            Warnings (recommended keywords missing, extra columns).

        Raises
        ------
        ValidationError
            If there is any error.
        """
        problems = self.problems(data=data)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ValidationError(errors)
        return [p for p in problems if p.severity != "error"]

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Validate strictly and write the product atomically; return the path."""
        raise NotImplementedError

    @property
    def file_name(self) -> str:
        """Name of the file the model was read from (``''`` for a new model)."""
        return self.path.name if self.path else ""

    def _reading(self, where: str, expected: str) -> contextlib.AbstractContextManager[None]:
        """Errors of other libraries become one :class:`ProductError` line for a file's model.

        New models (not read from a file) let them through: there they are programming errors.
        """
        if self.path is None:
            return contextlib.nullcontext()
        return reading(self.file_name, where, expected)

    def __repr__(self) -> str:
        where = f" {self.path.name}" if self.path else ""
        return f"<{type(self).__name__} {self.schema.id}{where}>"


def _clean_header(header: fits.Header) -> fits.Header:
    """Copy of a header without structural cards (astropy rewrites them)."""
    out = header.copy(strip=True)
    for key in ("EXTNAME", "EXTVER", "CHECKSUM", "DATASUM", "PCOUNT", "GCOUNT", "TFIELDS"):
        out.remove(key, ignore_missing=True, remove_all=True)
    return out


class FitsModel(Model):
    """A product stored as FITS: lazy HDU access, strict validation, atomic write."""

    def __init__(self, schema, headers=None, path=None):
        super().__init__(schema, headers, path)
        self._hdul: fits.HDUList | None = None

    def hdulist(self) -> fits.HDUList:
        """The open HDU list of the source file (memory-mapped, loaded on demand)."""
        if self._hdul is None:
            if self.path is None:
                raise ProductError(f"{self.schema.id}: model has no file")
            fitsscan.scan_file(self.path)  # the file may have changed since it was opened
            with self._reading("", "not a readable FITS file"):
                self._hdul = fits.open(self.path, memmap=True, lazy_load_hdus=True)
        return self._hdul

    #: Provenance stored as an 8-bit image extension (catalogs) instead of a binary table.
    provenance_as_image: ClassVar[bool] = False

    def _read_provenance(self) -> dict[str, Any] | None:
        with self._reading("HDU ASDF", "an embedded ASDF provenance tree"):
            return read_provenance(self.hdulist())

    def close(self) -> None:
        """Close the source file."""
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None

    def __enter__(self) -> FitsModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def to_hdulist(self) -> fits.HDUList:
        """Build the HDU list to write (schema HDUs in order, then provenance)."""
        raise NotImplementedError

    def problems(self, data: bool = True) -> list[Problem]:
        """Schema problems of the product as it would be written."""
        with self._reading("", "cannot check the product"):
            hdul = self.to_hdulist()
            return conformance.check_hdul(self.schema, hdul, file=self.file_name, data=False)

    def save(
        self, path: str | Path, overwrite: bool = False, provenance: dict | None = None
    ) -> Path:
        """Validate strictly and write the product as FITS, atomically, with checksums.

        Parameters
        ----------
        path : path-like
            Output file.
        overwrite : bool
            Replace an existing file (otherwise :class:`ProductError`).
        provenance : dict, optional
            Provenance tree embedded as the ``ASDF`` extension (defaults to
            ``model.provenance`` or a minimal tree).
        """
        path = Path(path)
        refuse_overwrite(path, overwrite)
        self.stamp()
        hdul = self.to_hdulist()
        problems = conformance.check_hdul(self.schema, hdul, file=path.name, data=False)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ValidationError(errors)
        tree = provenance or self.provenance or {"schema": self.schema.id}
        tree = {**tree, "schema": self.schema.id}
        hdul.append(asdf_hdu(tree, image=self.provenance_as_image))
        with atomic_path(path, overwrite) as tmp:
            hdul.writeto(tmp, checksum=True, output_verify="exception")
        log.debug("wrote %s", path)
        self.provenance = tree
        return path
