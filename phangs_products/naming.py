"""MAST HLSP file names: build them from the schema's naming pattern, parse and check them.

Template (MAST File Naming Convention, checked the way ``mct`` checks it)::

    hlsp_<proj-id>_<observatory>_<instrument>_<target>_<opt-elem>_<version>_<product-type>.<ext>

Rules enforced here: lower case; ``a-z 0-9`` plus ``-`` between elements, ``.`` and ``+`` only
inside the target (``.`` also in the version and before the extension); field lengths of ``mct``
(product type at most 16 characters); whole name at most 90 characters; version like ``v1``,
``v1.2`` or ``v1p0p1``.  The historical PHANGS names broke the 16-character product-type limit;
:func:`historical_product_type` gives the old name of every product so users can find both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phangs_products.errors import Problem, ProductError
from phangs_products.spec import ProductSchema

__all__ = [
    "HlspName",
    "build_name",
    "catalog_target",
    "check_name",
    "instrument_field",
    "parse_name",
    "sanitize_target",
]

FIELD_LIMITS = {
    "hlsp": 4,
    "proj_id": 20,
    "observatory": 20,
    "instrument": 20,
    "target": 30,
    "opt_elem": 20,
    "version": 9,
    "product_type": 16,
    "extension": 16,
}
MAX_NAME_LENGTH = 90
VERSION_RE = re.compile(r"^v[0-9]{0,2}([.p][0-9]{0,2}){0,2}[0-9]$")
TARGET_RE = re.compile(r"^[a-z0-9][a-z0-9+\-.]*[a-z0-9]$")
ELEMENT_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")
PROJ_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
#: Extensions MAST's checker knows, plus the ones this project writes (``reg``, ``parquet``).
KNOWN_EXTENSIONS = frozenset(
    "asdf csv dat ecsv fits fits.gz html jpg md pdf png reg parquet txt yaml".split()
)
PROJECTS = ("phangs-hst", "phangs-cat")


@dataclass(frozen=True)
class HlspName:
    """The fields of an HLSP file name."""

    proj_id: str
    observatory: str
    instrument: str
    target: str
    opt_elem: str
    version: str
    product_type: str
    extension: str

    def __str__(self) -> str:
        return (
            f"hlsp_{self.proj_id}_{self.observatory}_{self.instrument}_{self.target}_"
            f"{self.opt_elem}_{self.version}_{self.product_type}.{self.extension}"
        )


def sanitize_target(target: str) -> str:
    """File-name form of a target: lower case, no blanks (``NGC 628c`` -> ``ngc628c``).

    Raises
    ------
    ProductError
        If the target holds a path separator, ``..`` or characters MAST does not allow.
    """
    if "/" in target or "\\" in target or ".." in target:
        raise ProductError(f"target {target!r}: path separators and '..' are not allowed")
    clean = target.strip().lower().replace(" ", "").replace("_", "-")
    if not TARGET_RE.match(clean):
        raise ProductError(
            f"target {target!r}: only a-z, 0-9 and '+-.' inside the name are allowed "
            "(start and end with a letter or digit)"
        )
    return clean


def catalog_target(target: str) -> str:
    """Zero-padded catalog-collection form of a target (``ngc628c`` -> ``ngc0628c``).

    PHANGS-CAT pads NGC/IC numbers to four digits; PHANGS-HST image names do not.
    """
    clean = sanitize_target(target)
    match = re.match(r"^(ngc|ic)(\d+)(.*)$", clean)
    if match is None:
        return clean
    prefix, number, rest = match.groups()
    return f"{prefix}{int(number):04d}{rest}"


def image_target(target: str) -> str:
    """Unpadded image-collection form of a target (``ngc0628c`` -> ``ngc628c``)."""
    clean = sanitize_target(target)
    match = re.match(r"^(ngc|ic)0*(\d+)(.*)$", clean)
    return clean if match is None else f"{match[1]}{match[2]}{match[3]}"


def instrument_field(instruments: list[str] | str) -> str:
    """File-name instrument field: ``WFC3/UVIS`` -> ``wfc3-uvis``; several are hyphen-joined."""
    if isinstance(instruments, str):
        instruments = [instruments]
    parts = []
    for inst in instruments:
        part = inst.lower().replace("/", "-")
        if part not in parts:
            parts.append(part)
    return "-".join(sorted(parts, key=lambda p: (not p.startswith("wfc3"), p)))


def _fill(template: str, variants: dict[str, str]) -> str:
    out = template
    for key, value in variants.items():
        out = out.replace("{" + key + "}", str(value))
    if "{" in out:
        missing = re.findall(r"\{(\w+)\}", out)
        raise ProductError(f"product type {template!r}: no value given for {missing}")
    return out


def build_name(
    schema: ProductSchema,
    *,
    target: str,
    version: str,
    instruments: list[str] | str = "WFC3/UVIS",
    filter: str | None = None,
    extension: str | None = None,
    **variants: str,
) -> str:
    """Build the HLSP file name of a product from its schema.

    Parameters
    ----------
    schema : ProductSchema
        Gives the collection, product-type pattern and extensions.
    target : str
        Target or field name (sanitised; zero-padded for the catalog collection).
    version : str
        Delivery version, e.g. ``v1``.
    instruments : str or list of str
        ``WFC3/UVIS`` and/or ``ACS/WFC``.
    filter : str, optional
        Filter for single-band products; multi-band products use ``multi``.
    extension : str, optional
        One of the schema's extensions (the first when omitted).
    **variants
        Values of the product-type placeholders (``subset='hum-c12'``, ``scale='16'`` ...).

    Raises
    ------
    ProductError
        If the resulting name breaks a MAST rule.
    """
    product = schema.product
    proj_id = product["collection"]
    tgt = catalog_target(target) if proj_id == "phangs-cat" else image_target(target)
    if product["filter_field"] == "band":
        if not filter:
            raise ProductError(f"{schema.id}: a filter is needed to name this product")
        opt = filter.lower()
    else:
        opt = "multi"
    ext = extension or product["extensions"][0]
    if ext not in product["extensions"]:
        raise ProductError(f"{schema.id}: extension {ext!r} not in {product['extensions']}")
    if product["kind"] in ("readme", "manifest"):
        inst, opt = "multi", "multi"
    else:
        inst = instrument_field(instruments)
    name = str(
        HlspName(
            proj_id=proj_id,
            observatory="hst",
            instrument=inst,
            target=tgt,
            opt_elem=opt,
            version=version,
            product_type=_fill(product["product_type"], variants),
            extension=ext,
        )
    )
    errors = [p for p in check_name(name) if p.severity == "error"]
    if errors:
        raise ProductError(f"{name}: {errors[0].message}")
    return name


def parse_name(name: str) -> HlspName:
    """Split an HLSP file name into its fields.

    Raises
    ------
    ProductError
        If the name does not have the nine fields of the template or breaks a rule.
    """
    errors = [p for p in check_name(name) if p.severity == "error"]
    if errors:
        raise ProductError(f"{name}: {errors[0].message}")
    stem, ext = _split_extension(name)
    parts = stem.split("_")
    return HlspName(*parts[1:8], extension=ext)


def _split_extension(name: str) -> tuple[str, str]:
    for ext in sorted(KNOWN_EXTENSIONS, key=len, reverse=True):
        if name.endswith("." + ext):
            return name[: -len(ext) - 1], ext
    stem, _, ext = name.rpartition(".")
    return stem, ext


def check_name(name: str) -> list[Problem]:
    """Every MAST naming rule ``name`` breaks, as problems with stable rule ids.

    Rule ids: ``name.path``, ``name.case``, ``name.prefix``, ``name.fields``,
    ``name.chars``, ``name.field-length``, ``name.product-type-length``, ``name.version``,
    ``name.proj-id``, ``name.extension`` (warning), ``name.length``.
    """
    problems: list[Problem] = []

    def add(rule: str, message: str, severity: str = "error") -> None:
        problems.append(Problem(rule=rule, message=message, file=name, severity=severity))

    if "/" in name or "\\" in name or ".." in name:
        add("name.path", "file name holds a path separator or '..'")
        return problems
    if name != name.lower():
        add("name.case", "file name must be all lower case")
    if len(name) > MAX_NAME_LENGTH:
        add("name.length", f"file name has {len(name)} characters (at most {MAX_NAME_LENGTH})")
    stem, ext = _split_extension(name.lower())
    if ext not in KNOWN_EXTENSIONS:
        add("name.extension", f"extension {ext!r} is not a known MAST extension", "warning")
    parts = stem.split("_")
    if parts[0] != "hlsp":
        add("name.prefix", "file name must start with 'hlsp_'")
        return problems
    is_readme = parts[-1] == "readme"
    if len(parts) != 8 and not (is_readme and 4 <= len(parts) <= 8):
        add("name.fields", f"file name has {len(parts) + 1} fields (expected 9)")
        return problems
    keys = ["hlsp", "proj_id", "observatory", "instrument", "target", "opt_elem", "version"]
    fields = dict(zip([*keys[: len(parts) - 1], "product_type"], parts, strict=True))
    fields["extension"] = ext
    for key, value in fields.items():
        limit = FIELD_LIMITS[key]
        if len(value) > limit:
            rule = "name.product-type-length" if key == "product_type" else "name.field-length"
            add(
                rule, f"{key.replace('_', '-')} {value!r} has {len(value)} characters (max {limit})"
            )
    if fields.get("proj_id") and not PROJ_RE.match(fields["proj_id"]):
        add("name.chars", f"proj-id {fields['proj_id']!r} has characters MAST does not allow")
    elif fields.get("proj_id") not in PROJECTS:
        add("name.proj-id", f"proj-id {fields['proj_id']!r} is not one of {PROJECTS}")
    for key in ("observatory", "instrument", "opt_elem", "product_type"):
        value = fields.get(key)
        if value is not None and not ELEMENT_RE.match(value):
            add("name.chars", f"{key.replace('_', '-')} {value!r}: only a-z, 0-9 and '-' allowed")
    target = fields.get("target")
    if target is not None and not TARGET_RE.match(target):
        add("name.chars", f"target {target!r}: only a-z, 0-9 and '+-.' inside allowed")
    version = fields.get("version")
    if version is not None and not VERSION_RE.match(version):
        add("name.version", f"version {version!r} is not like v1, v1.2 or v1p0p1")
    return problems


def historical_product_type(schema: ProductSchema) -> str | None:
    """The product-type pattern the historical PHANGS release used, if the schema records one."""
    return schema.product.get("historical_product_type")
