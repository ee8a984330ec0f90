"""Image products: DRC science/ERR/EXP maps, association masks, FLC exposures."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from phangs_products.errors import ProductError
from phangs_products.models.base import FitsModel, _clean_header
from phangs_products.spec import ProductSchema

log = logging.getLogger(__name__)


class ImageModel(FitsModel):
    """A single-array image product: DRC science, ERR and EXP maps, association masks.

    Attributes
    ----------
    data : ndarray
        The image (loaded on first access, memory-mapped).
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    """

    kinds = ("image", "mask")

    def __init__(self, schema, headers=None, path=None):
        super().__init__(schema, headers, path)
        self._data: np.ndarray | None = None

    @classmethod
    def create(
        cls,
        schema: str | ProductSchema,
        data: np.ndarray,
        wcs: WCS | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> ImageModel:
        """A new image product.

        Parameters
        ----------
        schema : str or ProductSchema
            ``drc-sci``, ``drc-err``, ``drc-exp`` or ``assoc-mask`` (optionally with version).
        data : ndarray
            The image; cast to the schema's dtype.
        wcs : WCS, optional
            Celestial WCS, written as CD-matrix keywords.
        meta : mapping, optional
            Keyword values by attribute name or FITS keyword.
        """
        model = cls._new(schema, None)
        assert isinstance(model, ImageModel)
        spec = model.schema.arrays["data"]
        model._data = np.asarray(data, dtype=spec.numpy_dtype)
        if wcs is not None:
            model.set_wcs(wcs)
        if meta:
            model.meta.update(meta)
        return model

    @property
    def data(self) -> np.ndarray:
        """The image array."""
        if self._data is None:
            spec = self.schema.arrays["data"]
            hdul = self.hdulist()
            with self._reading(f"HDU {spec.fits_hdu}", "cannot read the image"):
                data = hdul[spec.fits_hdu].data
            if data is None:
                raise ProductError(f"{self.file_name}: HDU {spec.fits_hdu}: has no image array")
            self._data = data
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._data = np.asarray(value, dtype=self.schema.arrays["data"].numpy_dtype)

    @property
    def wcs(self) -> WCS:
        """Celestial WCS of the image."""
        hdu = self.schema.arrays["data"].fits_hdu
        with self._reading(f"HDU {hdu}", "no usable WCS"):
            return read_wcs(self.meta.header(hdu))

    def set_wcs(self, wcs: WCS) -> None:
        """Write a celestial WCS (CD matrix, ICRS, no EQUINOX) into the image header."""
        hdr = self.meta.header(self.schema.arrays["data"].fits_hdu)
        write_wcs(hdr, wcs)

    def to_hdulist(self) -> fits.HDUList:
        """HDU list with the image in the primary HDU."""
        return fits.HDUList([fits.PrimaryHDU(self.data, _clean_header(self.meta.header()))])


#: Largest SIP polynomial order accepted: astropy loops over (order + 1)^2 coefficients.
MAX_SIP_ORDER = 20
#: Most WCS axes (``WCSAXESa``) accepted: wcslib crashes on very large values.
MAX_WCS_AXES = 99
_WCS_SIZES = re.compile(r"(?:(?P<axes>WCSAXES[A-Z]?)|(?P<sip>A|B|AP|BP)_ORDER)")


def read_wcs(header: fits.Header, hdul: fits.HDUList | None = None) -> WCS:
    """The WCS of a header, once the keywords that size astropy's loops and arrays are sane.

    ``WCSAXESa`` above :data:`MAX_WCS_AXES` crashes wcslib and a SIP order in the thousands
    keeps astropy busy for minutes, so both are refused first.

    Parameters
    ----------
    header : Header
        Header with the WCS keywords.
    hdul : HDUList, optional
        The file of the header, for lookup-table distortions (FLC ``WCSDVARR``/``D2IMARR``).

    Raises
    ------
    ValueError
        If a sizing keyword is out of range, or astropy refuses the WCS.
    """
    for card in header.cards:
        match = _WCS_SIZES.fullmatch(card.keyword)
        if match is None:
            continue
        value = card.value
        limit = MAX_WCS_AXES if match["axes"] else MAX_SIP_ORDER
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise ValueError(f"{card.keyword} = {value!r} (expected an integer 0 to {limit})")
    return WCS(header, hdul)


def write_wcs(header: fits.Header, wcs: WCS) -> None:
    """Write a celestial WCS into ``header`` as a CD matrix in ICRS, without EQUINOX."""
    wcs_hdr = wcs.to_header(relax=False)
    for key in (
        "PC1_1",
        "PC1_2",
        "PC2_1",
        "PC2_2",
        "CDELT1",
        "CDELT2",
        "EQUINOX",
        "MJDREF",
        "DATEREF",
        "LONPOLE",
        "LATPOLE",
        "MJD-OBS",
        "DATE-OBS",
    ):
        wcs_hdr.remove(key, ignore_missing=True)
    cd = wcs.pixel_scale_matrix
    header["WCSAXES"] = (2, "number of WCS axes")
    for key in ("CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CUNIT1", "CUNIT2"):
        header[key] = wcs_hdr[key]
    header["CD1_1"], header["CD1_2"] = float(cd[0, 0]), float(cd[0, 1])
    header["CD2_1"], header["CD2_2"] = float(cd[1, 0]), float(cd[1, 1])
    header["RADESYS"] = ("ICRS", "celestial reference frame")
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2", "EQUINOX"):
        header.remove(key, ignore_missing=True)


class FlcModel(FitsModel):
    """An FLC exposure: primary header plus SCI/ERR/DQ per chip and any distortion HDUs.

    The HDUs are kept as read (extra HDUs such as ``WCSDVARR``/``D2IMARR`` too) so that the
    full distortion model survives; non-standard ``HDRLET`` extensions are dropped on save
    because they are not FITS-standard.
    """

    kinds = ("flc",)

    def __init__(self, schema, headers=None, path=None):
        super().__init__(schema, headers, path)
        self._hdus: fits.HDUList | None = None

    @classmethod
    def from_hdulist(cls, hdul: fits.HDUList, meta: Mapping[str, Any] | None = None) -> FlcModel:
        """Wrap an in-memory FLC HDU list (from the simulator or a real file)."""
        model = cls._new("flc", None)
        assert isinstance(model, FlcModel)
        model._hdus = hdul
        model._sync_headers()
        if meta:
            model.meta.update(meta)
        return model

    def _sync_headers(self) -> None:
        hdus = self.hdus
        headers = {"PRIMARY": hdus[0].header}
        for hdu in hdus[1:]:
            if hdu.ver == 1 and hdu.name not in headers:
                headers[hdu.name] = hdu.header
        object.__setattr__(self.meta, "_headers", headers)

    @property
    def hdus(self) -> fits.HDUList:
        """All HDUs of the exposure (the headers are the ones ``meta`` holds)."""
        if self._hdus is None:
            hdus = self.hdulist()
            with self._reading("", "cannot read the HDUs"):
                for index, hdu in enumerate(hdus):
                    key = "PRIMARY" if index == 0 else hdu.name
                    if hdu.ver == 1 and key in self.meta.headers:
                        hdu.header = self.meta.headers[key]
            self._hdus = hdus
        return self._hdus

    @property
    def chips(self) -> list[int]:
        """EXTVERs of the SCI extensions."""
        chips = [h.ver for h in self.hdus if h.name == "SCI"]
        if not chips and self.path is not None:
            raise ProductError(f"{self.file_name}: has no SCI extension")
        return chips

    @property
    def data(self) -> np.ndarray:
        """SCI array of the first chip."""
        return self.sci(self.chips[0])

    def sci(self, chip: int) -> np.ndarray:
        """SCI array of one chip."""
        hdus = self.hdus
        with self._reading(f"HDU SCI,{chip}", "cannot read the image"):
            data = hdus["SCI", chip].data
        if data is None and self.path is not None:
            raise ProductError(f"{self.file_name}: HDU SCI,{chip}: has no image array")
        return data

    @property
    def wcs(self) -> WCS:
        """WCS of the first chip (with its distortion)."""
        return self.chip_wcs(self.chips[0])

    def chip_wcs(self, chip: int) -> WCS:
        """WCS of one chip, including SIP and lookup-table distortion when present."""
        hdus = self.hdus
        with self._reading(f"HDU SCI,{chip}", "no usable WCS"):
            return read_wcs(hdus["SCI", chip].header, hdus)

    def to_hdulist(self) -> fits.HDUList:
        """HDU list to write: everything but non-standard HDRLET extensions."""
        keep = [h for h in self.hdus if h.name not in ("HDRLET", "ASDF")]
        return fits.HDUList(keep)
