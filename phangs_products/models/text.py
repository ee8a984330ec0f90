"""Text products (DS9 regions, README) and ASDF manifests."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from phangs_products import conformance
from phangs_products.atomic import atomic_path, atomic_write_text
from phangs_products.errors import PhangsProductsError, Problem, ProductError, describe, reading
from phangs_products.models.base import Model
from phangs_products.registry import get_schema
from phangs_products.safeio import MAX_TEXT_BYTES, read_bytes

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ text products
class TextModel(Model):
    """A text product whose metadata sits in leading comment lines (``# KEY = value``).

    Subclasses say how the body is parsed into the instance that the schema's non-``meta``
    properties (``regions``, ``sections``) validate with jsonschema.
    """

    kinds: tuple[str, ...] = ()
    comment_open, comment_close = "# ", ""

    def __init__(self, schema, headers=None, path=None, text: str = ""):
        super().__init__(schema, headers, path)
        self.text = text

    def header_lines(self) -> list[str]:
        """Comment lines that record the schema and the primary keywords."""
        hdr = self.meta.header()
        close = f" {self.comment_close}" if self.comment_close else ""
        return [f"{self.comment_open}{k} = {hdr[k]}{close}" for k in hdr]

    def content(self) -> dict[str, Any]:
        """The parsed body, keyed like the schema's content properties."""
        return {}

    def problems(self, data: bool = True) -> list[Problem]:
        """Keyword problems plus content problems (jsonschema on :meth:`content`)."""
        out = conformance.check_keywords(
            self.schema, "PRIMARY", self.meta.header(), file=self.file_name
        )
        props = {k: v for k, v in self.schema.document.get("properties", {}).items() if k != "meta"}
        if not props:
            return out
        try:
            instance = self.content()
        except PhangsProductsError as exc:  # a body the parser rejects, said in one line
            text = str(exc).removeprefix(f"{self.file_name}: ")
            return [*out, Problem("content.parse", text, self.file_name, self.schema.id)]
        except Exception as exc:  # a body the parser rejects
            text = f"cannot parse: {describe(exc)}"
            return [*out, Problem("content.parse", text, self.file_name, self.schema.id)]
        validator = jsonschema.Draft202012Validator({"type": "object", "properties": props})
        for err in validator.iter_errors(instance):
            where = "/".join(str(p) for p in err.absolute_path)
            out.append(Problem("content.value", err.message, self.file_name, self.schema.id, where))
        return out

    def body(self) -> str:
        """Text written after the header lines."""
        return self.text

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Validate and write the text atomically."""
        hdr = self.meta.header()
        hdr["PPSCHEMA"] = self.schema.name
        hdr["PPSCHVER"] = self.schema.version
        self.validate()
        body = self.body()
        body = body if body.endswith("\n") else body + "\n"
        atomic_write_text(path, "\n".join(self.header_lines()) + "\n" + body, overwrite)
        self.path = Path(path)
        return self.path


class RegionsModel(TextModel):
    """A DS9 region file written and read with the ``regions`` package.

    Attributes
    ----------
    regions : regions.Regions
        The sky regions (parsed from the file on first access).
    """

    kinds = ("regions",)

    def __init__(self, schema, headers=None, path=None, text: str = ""):
        super().__init__(schema, headers, path, text)
        self._regions = None

    @classmethod
    def create(
        cls, regions: Any, meta: Mapping[str, Any] | None = None, schema: str = "ds9-regions"
    ) -> RegionsModel:
        """A new region file from a :class:`regions.Regions` of sky regions."""
        model = cls._new(schema, meta)
        assert isinstance(model, RegionsModel)
        model._regions = regions
        return model

    @property
    def regions(self) -> Any:
        """The regions of the file."""
        if self._regions is None:
            from regions import Regions

            with self._reading("", "cannot parse the DS9 regions"):
                self._regions = Regions.parse(self.text, format="ds9")
        return self._regions

    def body(self) -> str:
        """DS9 serialisation of the regions (ICRS)."""
        return self.regions.serialize(format="ds9", precision=8)

    def content(self) -> dict[str, Any]:
        """``{'regions': [{shape, frame, color, text}, ...]}`` as parsed from the body.

        A file read from disk is parsed once (its text is the body); regions made in memory
        are serialised and parsed back, so the content is what the file will hold.
        """
        from regions import Regions

        parsed = self.regions if self.text else Regions.parse(self.body(), format="ds9")
        items = []
        for reg in parsed:
            frame = getattr(getattr(reg, "center", getattr(reg, "vertices", None)), "frame", None)
            item: dict[str, Any] = {
                "shape": type(reg)
                .__name__.replace("SkyRegion", "")
                .replace("PixelRegion", "")
                .lower(),
                "frame": getattr(frame, "name", "image"),
            }
            color = reg.visual.get("color", reg.visual.get("edgecolor"))
            if color is not None:
                item["color"] = str(color)
            for key in ("text", "tag"):
                value = reg.meta.get(key)
                if value is not None:
                    item[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            items.append(item)
        return {"regions": items}


class ReadmeModel(TextModel):
    """The delivery README (markdown); metadata in HTML comments on the first lines."""

    kinds = ("readme",)
    comment_open, comment_close = "<!-- ", "-->"

    @classmethod
    def create(cls, text: str, meta: Mapping[str, Any] | None = None) -> ReadmeModel:
        """A new README from rendered markdown."""
        model = cls._new("readme", meta)
        assert isinstance(model, ReadmeModel)
        model.text = text
        return model

    def body(self) -> str:
        """The markdown without our header comments."""
        lines = self.text.splitlines()
        while lines and lines[0].startswith("<!-- ") and " = " in lines[0]:
            lines.pop(0)
        return "\n".join(lines)

    def content(self) -> dict[str, Any]:
        """``{'sections': [level-2 headings]}``."""
        return {
            "sections": [ln[3:].strip() for ln in self.body().splitlines() if ln.startswith("## ")]
        }


class ManifestModel(Model):
    """An ASDF manifest (delivery or run manifest) validated by its JSON schema."""

    kinds = ("manifest",)

    def __init__(self, schema, headers=None, path=None, tree: dict | None = None):
        super().__init__(schema, headers, path)
        self.tree: dict[str, Any] = tree or {}

    @classmethod
    def create(cls, schema: str, tree: Mapping[str, Any]) -> ManifestModel:
        """A new manifest; ``ppschema``/``ppschver`` are filled in."""
        sch = get_schema(schema)
        full = {"ppschema": sch.name, "ppschver": sch.version, **tree}
        return cls(sch, tree=full)

    def problems(self, data: bool = True) -> list[Problem]:
        """JSON-schema problems of the manifest tree."""
        import jsonschema

        from phangs_products.registry import referencing_registry

        validator = jsonschema.Draft202012Validator(
            self.schema.document, registry=referencing_registry()
        )
        with self._reading("", "cannot check the manifest"):
            return [
                Problem(
                    "manifest.value",
                    err.message,
                    self.file_name,
                    self.schema.id,
                    "/".join(str(p) for p in err.absolute_path),
                )
                for err in validator.iter_errors(self.tree)
            ]

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Validate and write as ASDF, atomically."""
        import asdf

        self.validate()
        with atomic_path(path, overwrite) as tmp:
            asdf.AsdfFile(dict(self.tree)).write_to(tmp)
        self.path = Path(path)
        return self.path


#: Most nodes an ASDF manifest tree may expand to (aliases count each time they are used).
MAX_TREE_NODES = 100_000
#: Deepest nesting of an ASDF manifest tree.
MAX_TREE_DEPTH = 64


def read_tree(path: str | Path) -> dict[str, Any]:
    """The tree of an ASDF manifest, read within bounds.

    The file must be a regular file of at most :data:`~phangs_products.safeio.MAX_TEXT_BYTES`;
    the tree (without the ``asdf_library``/``history`` entries) must be a mapping of at most
    :data:`MAX_TREE_NODES` nodes, counted with aliases expanded, nested at most
    :data:`MAX_TREE_DEPTH` deep (a tree that refers to itself is infinitely deep).

    Raises
    ------
    ProductError
        If the file cannot be read as such a tree.
    """
    import io

    import asdf

    path = Path(path)
    raw = read_bytes(path, MAX_TEXT_BYTES, "manifest")
    with reading(path.name, "", "not a readable ASDF file"):
        with asdf.open(io.BytesIO(raw), lazy_load=False, memmap=False) as af:
            tree = {k: v for k, v in af.tree.items() if not str(k).startswith("asdf")}
    _check_tree(tree, path.name)
    return tree


def _check_tree(tree: Any, file: str) -> None:
    """Refuse trees that expand past :data:`MAX_TREE_NODES` or nest past the depth limit."""
    budget = MAX_TREE_NODES
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ProductError(
                f"{file}: ASDF tree: more than {MAX_TREE_NODES} nodes once aliases are expanded"
            )
        if depth > MAX_TREE_DEPTH:
            raise ProductError(
                f"{file}: ASDF tree: nested deeper than {MAX_TREE_DEPTH} levels "
                "(or refers to itself)"
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)
