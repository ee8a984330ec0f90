"""Registry of the validator's rule ids: what each checks, its check group and its severity.

Rule ids are stable: CI reports, tests and documentation refer to them.  Ids from the
foundation (``name.*`` from :func:`phangs_products.naming.check_name`; ``keyword.*``,
``hdu.*``, ``array.*``, ``column.*``, ``fits.checksum`` from :mod:`phangs_products.conformance`;
``content.*`` and ``manifest.value`` from the models) are registered here too, so every problem
the validator reports has an entry.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKS", "RULES", "Rule", "check_of", "rule"]


@dataclass(frozen=True)
class Rule:
    """One validator rule.

    Attributes
    ----------
    id : str
        Stable rule id, ``<group>.<name>``.
    check : str
        Check group the rule belongs to (one JUnit test case per file and check).
    severity : str
        Default severity: ``error`` or ``warning`` (``--strict`` makes warnings errors).
    description : str
        What the rule requires, in one sentence.
    """

    id: str
    check: str
    severity: str
    description: str


#: Check groups, in report order.
CHECKS: tuple[str, ...] = ("names", "metadata", "fits", "wcs", "table", "consistency", "delivery")

_RULES: list[tuple[str, str, str, str]] = [
    # ---------------------------------------------------------------------------------- files
    (
        "file.not-regular",
        "names",
        "error",
        "Every entry of a field folder is a readable regular file (no FIFO, device or folder).",
    ),
    # ----------------------------------------------------------------- names (naming.check_name)
    ("name.path", "names", "error", "A file name holds no path separator or '..'."),
    ("name.case", "names", "error", "File names are all lower case (MAST FNC; mct)."),
    ("name.prefix", "names", "error", "File names start with 'hlsp_'."),
    ("name.fields", "names", "error", "File names have the 9 fields of the MAST template."),
    ("name.chars", "names", "error", "Fields hold only the characters MAST allows."),
    ("name.field-length", "names", "error", "Each field is within its mct length limit."),
    ("name.product-type-length", "names", "error", "The product type is at most 16 characters."),
    ("name.version", "names", "error", "The version field is like v1, v1.2 or v1p0p1."),
    ("name.proj-id", "names", "error", "The proj-id is phangs-hst or phangs-cat."),
    ("name.extension", "names", "warning", "The extension is one MAST knows."),
    ("name.length", "names", "error", "The whole name is at most 90 characters."),
    (
        "name.readme",
        "names",
        "error",
        "The field's README is named hlsp_..._<field>_..._readme.md.",
    ),
    # ----------------------------------------------------------- metadata (schema conformance)
    ("schema.missing", "metadata", "error", "The file records its schema (PPSCHEMA/PPSCHVER)."),
    ("schema.unknown", "metadata", "error", "The recorded schema id and version are known."),
    (
        "keyword.missing",
        "metadata",
        "error",
        "Every required (MAST or project) keyword is present.",
    ),
    ("keyword.value", "metadata", "error", "Keyword values follow the schema rules."),
    ("keyword.recommended", "metadata", "warning", "MAST recommended keywords are present."),
    ("hdu.missing", "metadata", "error", "Every HDU the schema names is present."),
    ("array.dtype", "metadata", "error", "Image arrays have the schema dtype."),
    ("array.ndim", "metadata", "error", "Image arrays have the schema dimensionality."),
    ("column.missing", "table", "error", "Every required column is present."),
    ("column.dtype", "table", "error", "Columns have the schema dtype."),
    ("column.unit", "table", "error", "TUNITn are FITS-standard and equal the schema unit."),
    ("column.unknown", "table", "warning", "Columns not in the schema are flagged."),
    ("column.nan", "table", "error", "No NaN in a column that declares a sentinel."),
    (
        "column.range",
        "table",
        "error",
        "Column values (coordinates included; sentinel aside) lie in the schema range.",
    ),
    (
        "content.codes",
        "table",
        "error",
        "Coded columns (classes, object types) hold only their schema code list (or sentinel).",
    ),
    ("content.unique", "table", "error", "Id columns declared unique hold no repeated value."),
    ("content.rows", "table", "error", "A catalog holds at least the schema's min_rows rows."),
    (
        "content.range",
        "metadata",
        "error",
        "Image pixels lie in the schema range (ERR > 0, EXP >= 0, labels >= 0; sentinel aside).",
    ),
    (
        "content.finite-fraction",
        "metadata",
        "error",
        "At least the schema's fraction of pixels (or column values) is finite.",
    ),
    ("content.parse", "metadata", "error", "Text products (regions, README) parse."),
    ("content.value", "metadata", "error", "Text-product content follows the schema (sections)."),
    ("manifest.value", "delivery", "error", "The manifest validates against its schema."),
    # ------------------------------------------------------------------------------ FITS health
    ("fits.not-fits", "fits", "error", "A .fits file is a FITS file (starts with SIMPLE = T)."),
    ("fits.truncated", "fits", "error", "The file holds every byte its headers announce."),
    ("fits.unreadable", "fits", "error", "The file can be opened and parsed."),
    (
        "fits.structure",
        "fits",
        "error",
        "Headers are ASCII cards ending in END; BITPIX, NAXISn, PCOUNT, GCOUNT, TFIELDS and "
        "TFORMn are valid and consistent; nothing but extensions follows the last HDU.",
    ),
    ("fits.data", "fits", "error", "The data of every HDU can be read (tables, images)."),
    ("fits.verify", "fits", "error", "astropy HDUList.verify finds no violation of the standard."),
    ("fits.checksum", "fits", "error", "CHECKSUM/DATASUM are present and match the content."),
    ("wcs.invalid", "wcs", "error", "Images have a valid two-axis celestial WCS."),
    ("wcs.target", "wcs", "error", "The image footprint contains RA_TARG/DEC_TARG."),
    # ----------------------------------------------------------------------------- consistency
    ("consistency.version", "consistency", "error", "HLSPVER equals the file-name version."),
    ("consistency.target", "consistency", "error", "HLSPTARG equals the file-name target."),
    ("consistency.collection", "consistency", "error", "HLSPID equals the file-name proj-id."),
    ("consistency.field", "consistency", "error", "The file-name target is the folder's field."),
    ("consistency.filter", "consistency", "error", "FILTER equals the file-name filter."),
    ("consistency.product-type", "consistency", "error", "The product type fits the schema."),
    ("position.footprint", "consistency", "error", "Catalog positions fall on the DRC footprint."),
    ("position.pixel", "consistency", "warning", "Catalog X/Y agree with RA/DEC on the DRC grid."),
    ("mask.grid", "consistency", "error", "Masks share the DRC grid (shape, CRVAL, CD)."),
    (
        "content.mask-labels",
        "consistency",
        "error",
        "Every mask label is an id of the catalog with the same scale and selection.",
    ),
    ("regions.footprint", "consistency", "error", "Region shapes fall on the DRC footprint."),
    # -------------------------------------------------------------------------------- delivery
    ("delivery.empty", "delivery", "error", "The path holds at least one field folder."),
    (
        "delivery.missing-product",
        "delivery",
        "error",
        "Every product the manifest requires exists.",
    ),
    ("delivery.reference-grid", "delivery", "warning", "A DRC science image gives the grid."),
    ("manifest.missing", "delivery", "error", "The field folder has a delivery manifest."),
    ("manifest.unreadable", "delivery", "error", "The manifest can be read."),
    ("manifest.missing-file", "delivery", "error", "Every file the manifest lists exists."),
    ("manifest.unlisted", "delivery", "error", "Every product file is listed in the manifest."),
    ("manifest.sha256", "delivery", "error", "Manifest SHA-256 values match the files."),
    ("manifest.size", "delivery", "error", "Manifest sizes match the files."),
    ("manifest.record", "delivery", "error", "Manifest records agree with the file headers."),
    (
        "checksums.missing",
        "delivery",
        "error",
        "The field folder has a checksum list (hlsp_..._sha256sums.txt).",
    ),
    (
        "checksums.name",
        "delivery",
        "warning",
        "The checksum list has an HLSP name (not the SHA256SUMS of older deliveries).",
    ),
    ("checksums.format", "delivery", "error", "The checksum list is in sha256sum format."),
    ("checksums.sha256", "delivery", "error", "Checksum list values match the files."),
    ("checksums.unlisted", "delivery", "error", "The checksum list names every file."),
    (
        "delivery.stray-file",
        "delivery",
        "error",
        "A delivery holds only products, at every level: no file beside the field folders, "
        "no hidden or temporary file, folder or FIFO.",
    ),
    ("internal.error", "delivery", "error", "A check failed unexpectedly (a validator bug)."),
]

RULES: dict[str, Rule] = {r[0]: Rule(*r) for r in _RULES}


def rule(rule_id: str) -> Rule:
    """The registered rule of an id.

    Raises
    ------
    KeyError
        If the id is not registered.
    """
    return RULES[rule_id]


def check_of(rule_id: str) -> str:
    """Check group of a rule id (``delivery`` for an unregistered id)."""
    found = RULES.get(rule_id)
    return found.check if found else "delivery"
