"""Documentation of a delivery: the README product and the static HTML site.

Everything shown comes from the schemas, the delivery manifests and the products themselves:
column and keyword tables are generated from the schemas, file lists from the manifests, preview
images from the DRC images, catalogs and masks.  CLI: ``phangs-products docs DIR``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from phangs_products.atomic import atomic_write_bytes, atomic_write_text, inside
from phangs_products.bands import Galaxy, galaxy
from phangs_products.bands import band as band_facts
from phangs_products.delivery import RunLayout
from phangs_products.docsite import examples_by_product, extent, preview, snippets
from phangs_products.errors import PhangsProductsError
from phangs_products.hlsp import SURVEY, HlspIdentity
from phangs_products.models import ManifestModel, software_version
from phangs_products.models import open as open_product
from phangs_products.naming import catalog_target, image_target
from phangs_products.provenance import software_versions
from phangs_products.registry import get_schema, list_schemas, product_schemas

__all__ = ["FileEntry", "build_site", "render_readme"]

log = logging.getLogger(__name__)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_template_dir())),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def _md_env() -> jinja2.Environment:
    env = _env()
    env.autoescape = False
    return env


def human_size(n: int) -> str:
    """Bytes as a short human-readable string."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@dataclass(frozen=True)
class FileEntry:
    """One file of a delivery, as the README and the galaxy page list it."""

    name: str
    product: str
    title: str
    detail: str
    size: int

    @property
    def size_h(self) -> str:
        """Human-readable size."""
        return human_size(self.size)


def file_entries(files: Iterable[dict[str, Any]]) -> list[FileEntry]:
    """README/HTML file rows from manifest-style records (name, product, size, axes)."""
    out = []
    for rec in files:
        schema = get_schema(rec["product"])
        parts = [
            str(rec[k]) for k in ("filter", "subset", "selection") if rec.get(k) not in (None, "")
        ]
        if rec.get("scale"):
            parts.append(f"{rec['scale']} pc")
        out.append(
            FileEntry(rec["name"], schema.name, schema.title, " ".join(parts), int(rec["size"]))
        )
    return sorted(out, key=lambda e: (e.product, e.name))


def _catalog_sections() -> list[dict[str, Any]]:
    out = []
    for schema in product_schemas():
        if schema.kind != "catalog":
            continue
        out.append(
            {
                "title": schema.title,
                "schema_id": schema.id,
                "description": " ".join(schema.description.split()),
                "columns": list(schema.column_templates()),
            }
        )
    return out


def _name_map() -> list[tuple[str, str]]:
    rows = []
    for schema in product_schemas():
        hist = schema.product.get("historical_product_type")
        if hist:
            rows.append((schema.product["product_type"], hist))
    return rows


def _flat_rows(values: Mapping[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """``{'name', 'value', 'unit'}`` rows of nested settings (dotted names, plain values)."""
    rows = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            rows += _flat_rows(value, f"{prefix}{key}.")
            continue
        if isinstance(value, list | tuple):
            text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        rows.append({"name": f"{prefix}{key}", "value": text or "(none)", "unit": ""})
    return rows


def render_steps(
    settings: Mapping[str, Mapping[str, Any]],
    rows: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """README descriptions of the pipeline steps, rendered from the settings a run used.

    The method text of each stage lives in ``templates/readme-steps.md.j2`` (one macro per
    stage); every option follows as a table row of name, value and unit.

    Parameters
    ----------
    settings : mapping
        Stage name -> that stage's configuration as nested mappings.  Stages without an entry
        are left out.
    rows : mapping, optional
        Stage name -> the table rows (``name``, ``value``, ``unit``) of its options, as the
        pipeline describes them; by default the settings' own values without units.

    Returns
    -------
    list of dict
        ``{'title', 'text', 'settings'}`` per step, in pipeline order.

    Raises
    ------
    jinja2.UndefinedError
        If the text names a setting the configuration does not have.
    """
    module = _md_env().get_template("readme-steps.md.j2").module
    steps = []
    for stage in module.order:
        if stage not in settings:
            continue
        values = dict(settings[stage])
        body = str(getattr(module, stage)(values)).strip()
        table = list(rows[stage]) if rows and stage in rows else _flat_rows(values)
        steps.append({"title": module.titles[stage], "text": body, "settings": table})
    return steps


def render_readme(
    *,
    galaxy_: Galaxy,
    field: str,
    version: str,
    files: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, str]],
    run_id: str = "",
    simulated: bool = False,
    scales: Sequence[int] | None = None,
    selections: Sequence[str] | None = None,
    exports: bool = True,
    skipped_inputs: Sequence[str] = (),
    identity: HlspIdentity = SURVEY,
    proposal_ids: Sequence[int] = (),
    foreground: Mapping[str, Any] | None = None,
    human: Mapping[str, Any] | None = None,
    holds: str | None = None,
    changes: str | None = None,
    bands: Sequence[Mapping[str, str]] = (),
) -> str:
    """Render the delivery README (markdown) of one field.

    Parameters
    ----------
    galaxy_ : Galaxy
        The galaxy.
    field : str
        Field name (image-collection target).
    version : str
        Delivery version.
    files : sequence of dict
        Manifest-style records of the products (name, product, size, filter/scale/...).
    steps : sequence of dict
        ``{'title', 'text'}`` per pipeline step, built from the stage configurations.
    scales, selections : sequence, optional
        Association scales (pc) and selections delivered (default every variant of the
        association-catalog schema).
    skipped_inputs : sequence of str
        Input files the run left out (``<file>: <why>``; runs that allow missing inputs).
    identity : HlspIdentity
        HLSP lead, DOIs and citation (survey DOIs are never shown for simulated products).
    proposal_ids : sequence of int
        HST programs of the input exposures (PROPOSID of the products).
    foreground : mapping, optional
        Milky Way foreground: ``ebv`` (mag), ``source``, ``method`` and ``bands`` (records with
        ``filter``, ``instrument``, ``a_band``).
    human : mapping, optional
        Human classes: ``given`` (bool), ``table`` (file name), ``reason`` (why none) and
        ``format`` (the table format: columns, unit, matching radius, class codes).
    holds : str, optional
        What the delivery holds (replaces the pipeline delivery's list in the summary).
    changes : str, optional
        The changes line of "Version and changes" (default: first delivery made with
        phangs-products).
    bands : sequence of mapping
        The field's bands in wavelength order: ``filter`` and ``instrument`` (WFC3/UVIS or
        ACS/WFC), listed in the summary.
    """
    if simulated:
        identity = identity.without_survey_dois()
    assoc = get_schema("assoc-catalog")
    scales = list(scales) if scales is not None else [int(s) for s in assoc.variants("scale")]
    selections = list(selections) if selections is not None else list(assoc.variants("selection"))
    missing = get_schema("cluster-catalog").sentinel
    not_measured = get_schema("dolphot-catalog").sentinel
    template = _md_env().get_template("readme.md.j2")
    return template.render(
        collection_title="PHANGS-HST",
        galaxy=galaxy_,
        field=field,
        version=version,
        simulated=simulated,
        scales=scales,
        selections=selections,
        identity=identity,
        proposal_ids=sorted({int(p) for p in proposal_ids}),
        foreground=foreground,
        human=human,
        bands=[{**b, "label": band_facts(b["filter"], b["instrument"]).label} for b in bands],
        software=software_versions(),
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        run_id=run_id or "n/a",
        dois=dict(identity.dois),
        files=file_entries(files),
        exports=exports,
        sentinel_note=f"{missing} in the cluster and association catalogs (as in the PHANGS-CAT "
        f"release) and {not_measured} for DOLPHOT magnitudes; images use 0 where there is no data",
        catalogs=_catalog_sections(),
        steps=steps,
        skipped_inputs=list(skipped_inputs),
        image_target=image_target(field),
        catalog_target=catalog_target(field),
        name_map=_name_map(),
        holds=holds,
        changes=changes,
    )


# ------------------------------------------------------------------------------------ HTML site
def _field_dirs(root: Path) -> list[tuple[Path, ManifestModel]]:
    out = []
    for manifest_path in sorted(root.glob("*/hlsp_*_manifest.asdf")):
        model = open_product(manifest_path)
        assert isinstance(model, ManifestModel)
        out.append((manifest_path.parent, model))
    return out


def _write_page(path: Path, template: str, simulated: bool = False, **context: Any) -> None:
    html = (
        _env()
        .get_template(template)
        .render(
            date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=software_version(),
            simulated=simulated,
            **context,
        )
    )
    atomic_write_text(path, html, overwrite=True)


def build_site(
    root: str | Path,
    problems: Sequence[dict[str, Any]] | None = None,
    summary: str = "",
    site: str | Path | None = None,
) -> Path:
    """Write the HTML site of a delivery; return the index path.

    Parameters
    ----------
    root : path-like
        Delivery root (one folder per field, each with its manifest).
    problems : sequence of dict, optional
        Validator problems (severity, rule, file, where, message) for the validation page.
    summary : str
        One-line validator summary.
    site : path-like, optional
        Folder of the site (default: ``docs/`` beside the delivery root, as in a run folder:
        the site links into the delivery but never sits inside it).
    """
    root = Path(root).resolve()
    site = Path(site).resolve() if site is not None else RunLayout.of_delivery(root).docs
    (site / "products").mkdir(parents=True, exist_ok=True)
    (site / "galaxies").mkdir(parents=True, exist_ok=True)
    css = Path(str(_template_dir() / "style.css")).read_bytes()
    atomic_write_bytes(site / "style.css", css, overwrite=True)
    problems = list(problems or [])
    n_errors = sum(1 for p in problems if p.get("severity") == "error")
    summary = summary or (
        "no problems" if not problems else f"{n_errors} error(s), {len(problems)} problem(s)"
    )
    galaxies = []
    fields = _field_dirs(root)
    examples = examples_by_product((d, m.tree) for d, m in fields)
    identities = []
    # SIMULATD of the products: a banner on every page of a site that holds simulated data
    any_simulated = any(_is_simulated(d, m.tree) for d, m in fields)
    for field_dir, manifest in fields:
        tree = manifest.tree
        gal = _galaxy_of(field_dir, tree)
        readme = next(iter(sorted(field_dir.glob("hlsp_*_readme.md"))), None)
        entry = {
            "field": tree["target"],
            "name": gal.name,
            "ra": gal.ra,
            "dec": gal.dec,
            "distance": gal.distance_mpc,
            # each band with its instrument (a field may mix WFC3/UVIS and ACS/WFC)
            "bands": [f"{b['instrument']} {b['filter']}".strip() for b in tree["bands"]],
            "nfiles": len(tree["files"]),
            "readme": _link(readme, site) if readme else "",
            "simulated": _is_simulated(field_dir, tree),
        }
        galaxies.append(entry)
        # the target comes from the delivery's manifest: its page stays inside the site
        gdir = site / "galaxies"
        previews = make_previews(field_dir, tree, inside(gdir, str(tree["target"])))
        _write_page(
            inside(site / "galaxies", f"{tree['target']}.html"),
            "galaxy.html.j2",
            simulated=entry["simulated"],
            title=f"{gal.name} ({tree['target']})",
            root="../",
            g=entry,
            previews=[
                {"src": f"{tree['target']}/{p.name}", "caption": caption} for p, caption in previews
            ],
            files=[
                {**vars(entry), "size_h": entry.size_h, "href": _link(field_dir / entry.name, gdir)}
                for entry in file_entries(tree["files"])
            ],
        )
        identities.append(_citation_of(field_dir, tree))
    _write_page(
        site / "index.html",
        "index.html.j2",
        simulated=any_simulated,
        title="PHANGS-HST delivery",
        root="",
        galaxies=galaxies,
        report_ok=n_errors == 0,
        report_summary=summary,
    )
    products = []
    for schema in product_schemas():
        product = schema.product
        products.append(
            {
                "name": schema.name,
                "title": schema.title,
                "id": schema.id,
                "kind": schema.kind,
                "product_type": product.get("product_type", ""),
                "historical": product.get("historical_product_type"),
            }
        )
        example = examples.get(schema.name)
        pdir = site / "products"
        shown = None
        if example is not None:
            png = pdir / f"{schema.name}.png"
            shown = {
                "name": example.example.name,
                "href": _link(example.example, pdir),
                "count": len(example.files),
                "extent": extent(example.example, schema.kind),
                "preview": png.name if preview(schema, example.example, png) else "",
            }
        keywords = list(schema.keywords)
        _write_page(
            pdir / f"{schema.name}.html",
            "product.html.j2",
            simulated=any_simulated,
            title=schema.title,
            root="../",
            schema={"id": schema.id, "description": " ".join(schema.description.split())},
            product=product,
            example=shown,
            snippets=snippets(schema, example),
            keywords=[k for k in keywords if k.mast == "project"],
            hlsp_keywords=[k for k in keywords if k.mast != "project"],
            columns=list(schema.column_templates()),
            arrays=list(schema.arrays.values()),
        )
    _write_page(
        site / "products.html",
        "products.html.j2",
        simulated=any_simulated,
        title="Products",
        root="",
        products=products,
    )
    _write_page(
        site / "validation.html",
        "validation.html.j2",
        simulated=any_simulated,
        title="Validation report",
        root="",
        ok=n_errors == 0,
        summary=summary,
        problems=problems,
    )
    _write_page(
        site / "cite.html",
        "cite.html.j2",
        simulated=any_simulated,
        title="How to cite",
        root="",
        survey=SURVEY,
        identities=list({tuple(i.items()): i for i in identities if i}.values()),
        simulated_only=bool(fields) and all(_is_simulated(d, m.tree) for d, m in fields),
        software_version=software_version(),
    )
    _write_page(
        site / "versions.html",
        "versions.html.j2",
        simulated=any_simulated,
        title="Versions",
        root="",
        software=software_versions(),
        schemas=list_schemas(),
    )
    log.info("HTML site written to %s", site)
    return site / "index.html"


def _link(path: Path, page_dir: Path) -> str:
    """Relative URL of ``path`` from a page in ``page_dir`` (the site links into the delivery)."""
    return Path(os.path.relpath(path, page_dir)).as_posix()


def _template_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("phangs_products.templates")))


def _galaxy_of(field_dir: Path, tree: dict[str, Any]) -> Galaxy:
    """The galaxy of a field: its DRC header (TARGNAME, RA_TARG, DEC_TARG, DIST_MPC).

    A galaxy of the survey table is taken from the table; another (given by its run
    configuration) from the header.
    """
    for rec in tree["files"]:
        if rec["product"] == "drc-sci":
            meta = open_product(field_dir / rec["name"]).meta
            name = str(meta.get("TARGNAME", tree["target"]))
            try:
                return galaxy(name)
            except PhangsProductsError:
                return Galaxy(
                    name=name,
                    target=name.lower().replace(" ", ""),
                    ra=float(meta.get("RA_TARG")),
                    dec=float(meta.get("DEC_TARG")),
                    distance_mpc=float(meta.get("DIST_MPC")),
                    mosaic=False,
                    source="product header",
                )
    return galaxy(tree["target"].rstrip("abcdefghijklmnopqrstuvwxyz") or tree["target"])


def _citation_of(field_dir: Path, tree: dict[str, Any]) -> dict[str, str]:
    """HLSPNAME, HLSPLEAD, DOI and REFERENC as the field's products carry them.

    One set per collection: images and catalogs may have their own title and DOI.
    """
    out: dict[str, str] = {}
    for collection in ("phangs-hst", "phangs-cat"):
        rec = next(
            (
                r
                for r in tree["files"]
                if r["name"].startswith(f"hlsp_{collection}_") and r["name"].endswith(".fits")
            ),
            None,
        )
        if rec is None:
            continue
        meta = open_product(field_dir / rec["name"]).meta
        for key in ("HLSPNAME", "HLSPLEAD", "DOI", "REFERENC"):
            value = meta.get(key)
            if value:
                out[f"{collection} {key}"] = str(value)
    return out


def _is_simulated(field_dir: Path, tree: dict[str, Any]) -> bool:
    for rec in tree["files"]:
        if rec["name"].endswith(".fits"):
            return bool(open_product(field_dir / rec["name"]).meta.get("SIMULATD", False))
    return False


# ------------------------------------------------------------------------------------ previews
#: Largest side of the images the previews are drawn from, px (5-inch figures at 110 dpi).
COMPOSITE_PIXELS = 1024


def binned(data: np.ndarray, step: int, rows: int = 64) -> np.ndarray:
    """Mean of ``step`` x ``step`` blocks of ``data`` (NaN as 0), ``rows`` block rows at a time.

    Only ``step * rows`` image rows are in memory as float64 at once, so a memory-mapped image
    is never copied whole.  Rows and columns beyond the last whole block are left out.
    """
    ny, nx = (data.shape[0] // step) * step, (data.shape[1] // step) * step
    out = np.empty((ny // step, nx // step))
    for start in range(0, ny, step * rows):
        stop = min(start + step * rows, ny)
        block = np.nan_to_num(np.asarray(data[start:stop, :nx], float))
        out[start // step : stop // step] = block.reshape(-1, step, nx // step, step).mean(
            axis=(1, 3)
        )
    return out


def make_previews(field_dir: Path, tree: dict[str, Any], out_dir: Path) -> list[tuple[Path, str]]:
    """Preview PNGs of a field: RGB composite, clusters by class, association outlines.

    Returns ``(path, caption)`` pairs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import make_lupton_rgb

    out_dir.mkdir(parents=True, exist_ok=True)
    drcs = {
        rec["filter"]: field_dir / rec["name"]
        for rec in tree["files"]
        if rec["product"] == "drc-sci" and rec.get("filter")
    }
    if not drcs:
        return []
    order = [f for f in ("F814W", "F555W", "F438W", "F336W", "F275W") if f in drcs]
    red, green = order[0], order[min(1, len(order) - 1)]
    blue = order[min(2, len(order) - 1)]
    # binned to at most COMPOSITE_PIXELS a side, read block by block from the memory map: a
    # full-size field's three float64 copies and the composite took 5 GB
    full_shape = open_product(drcs[red]).data.shape
    step = max(1, int(np.ceil(max(full_shape) / COMPOSITE_PIXELS)))
    images = {f: binned(open_product(drcs[f]).data, step) for f in {red, green, blue}}
    # each band scaled to its own 99.5th percentile, so the composite is colour-balanced
    chans = [images[f] / (np.percentile(images[f], 99.5) or 1.0) for f in (red, green, blue)]
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = make_lupton_rgb(*chans, stretch=0.5, Q=8)
    # drawn in the pixel coordinates of the full grid (catalog positions, mask contours)
    ny, nx = rgb.shape[0] * step, rgb.shape[1] * step
    extent = (-0.5, nx - 0.5, -0.5, ny - 0.5)
    previews = []

    def save(fig: Any, name: str, caption: str) -> None:
        path = out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        previews.append((path, caption))

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(rgb, origin="lower", extent=extent)
    ax.set_title(f"{tree['target']}: {red}/{green}/{blue}")
    ax.set_axis_off()
    save(fig, "rgb.png", f"RGB composite ({red}, {green}, {blue})")

    cand = [
        rec
        for rec in tree["files"]
        if rec["product"] == "cluster-catalog"
        and rec.get("subset") == "cand"
        and rec["name"].endswith(".fits")
    ]
    if cand:
        cand_model = open_product(field_dir / cand[0]["name"], masked=False)
        table = cand_model.table
        # human classes when a table of them was given (HUMCLASS), else the ML classes
        human = bool(cand_model.meta.get("HUMCLASS", True))
        kind = "human" if human else "machine-learning"
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.imshow(rgb, origin="lower", extent=extent)
        classes = np.asarray(
            table["PHANGS_CLUSTER_CLASS_HUMAN" if human else "PHANGS_CLUSTER_CLASS_ML"]
        )
        for klass, color in ((1, "#4da3ff"), (2, "#59d37a"), (3, "#ffb347"), (4, "#ff5c5c")):
            sel = classes == klass if klass < 4 else classes >= 4
            ax.scatter(
                table["PHANGS_X"][sel],
                table["PHANGS_Y"][sel],
                s=18,
                facecolors="none",
                edgecolors=color,
                linewidths=0.8,
                label=f"class {klass}" + ("+" if klass == 4 else ""),
            )
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
        ax.set_axis_off()
        ax.set_title(f"cluster candidates by {kind} class")
        save(fig, "clusters.png", f"Cluster candidates by class ({kind} classification)")

    masks = sorted(
        (rec for rec in tree["files"] if rec["product"] == "assoc-mask"),
        key=lambda r: (r.get("selection", ""), int(r.get("scale", 0))),
    )
    for selection in sorted({m.get("selection") for m in masks}):
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.imshow(rgb, origin="lower", extent=extent)
        colors = {8: "#ff5c5c", 16: "#ffb347", 32: "#59d37a", 64: "#4da3ff"}
        for rec in masks:
            if rec.get("selection") != selection:
                continue
            labels = np.asarray(open_product(field_dir / rec["name"]).data[::step, ::step])
            if labels.max() > 0:
                ys, xs = np.arange(labels.shape[0]) * step, np.arange(labels.shape[1]) * step
                ax.contour(
                    xs,
                    ys,
                    labels > 0,
                    levels=[0.5],
                    colors=colors.get(int(rec["scale"]), "w"),
                    linewidths=0.7,
                )
            ax.plot([], [], color=colors.get(int(rec["scale"]), "w"), label=f"{rec['scale']} pc")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
        ax.set_axis_off()
        ax.set_title(f"{str(selection).upper()}-selected associations")
        save(
            fig,
            f"assoc-{selection}.png",
            f"{str(selection).upper()}-selected stellar associations at each scale",
        )
    return previews
