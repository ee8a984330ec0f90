"""What code a stage's products depend on: the stage key's code part.

A stage's output depends on its own module, everything that module imports from
``phangs_products`` (transitively, function-local imports included), and the files those modules
read: the schemas (read by :mod:`phangs_products.registry`), the templates (read by
:mod:`phangs_products.docs`) and the shipped data (read through :mod:`phangs_products.bands`).
The simulator and the command lines make no product, so they are left out: editing them reruns
nothing.  The import graph is read from the sources with :mod:`ast` (nothing is executed).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import stat
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from phangs_products.provenance import file_digest, software_versions

__all__ = ["code_digest", "code_files", "module_closure", "tree_digest"]

ROOT = "phangs_products"
#: Modules (and their submodules) that make no product: not part of any stage's code.
EXCLUDED = ("phangs_products.pipeline.sim", "phangs_products.pipeline.cli", "phangs_products.cli")


def _resource_files(package: str, patterns: Iterable[str]) -> list[Path]:
    folder = Path(str(resources.files(package)))
    return sorted(p for pattern in patterns for p in folder.rglob(pattern) if p.is_file())


#: Files read by a module, beside its source: module -> (package, glob patterns).
RESOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "phangs_products.registry": ("phangs_products.schemas", ("*.yaml", "*.lock")),
    "phangs_products.docs": ("phangs_products.templates", ("*.j2", "*.css")),
    "phangs_products.bands": ("phangs_products", ("data/*",)),
}


def tree_digest(files: Iterable[Path]) -> str:
    """SHA-256 over the names and contents (:func:`file_digest`) of ``files``, sorted.

    Only regular files are read: a missing file, a folder or a FIFO (whose read would block)
    counts by its kind, and the stage that reads it reports it.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(path.name.encode())
        try:
            regular = stat.S_ISREG(path.stat().st_mode)
        except OSError:
            digest.update(b"<missing>")
            continue
        digest.update(file_digest(path).encode() if regular else b"<not a regular file>")
    return digest.hexdigest()


def _excluded(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EXCLUDED)


@functools.cache
def _source(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _is_module(name: str) -> bool:
    try:
        return _source(name) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def _imports(name: str) -> frozenset[str]:
    """``phangs_products`` modules that module ``name`` imports (parents included)."""
    path = _source(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}"))
    out: set[str] = set()
    for module in found:
        if module != ROOT and not module.startswith(ROOT + "."):
            continue
        parts = module.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))  # parents run too
    return frozenset(m for m in out if _is_module(m))


@functools.cache
def module_closure(name: str) -> frozenset[str]:
    """Every ``phangs_products`` module ``name`` depends on, itself included, minus EXCLUDED."""
    seen = {name}
    todo = [name]
    while todo:
        for module in _imports(todo.pop()):
            if module not in seen and not _excluded(module):
                seen.add(module)
                todo.append(module)
    return frozenset(seen)


def code_files(func: Callable) -> list[Path]:
    """Source and resource files whose content a stage function's products depend on."""
    modules = module_closure(func.__module__)
    files = {p for m in modules if (p := _source(m)) is not None}
    for module, (package, patterns) in RESOURCES.items():
        if module in modules:
            files.update(_resource_files(package, patterns))
    return sorted(files)


@functools.cache
def code_digest(func: Callable) -> str:
    """Digest of :func:`code_files` of a stage function plus the versions of the tools.

    Part of the stage's key: changed code, schemas, templates or data, or a new drizzlepac or
    photutils, redo the stage instead of reusing its old products.
    """
    versions = json.dumps(software_versions(), sort_keys=True)
    return hashlib.sha256((tree_digest(code_files(func)) + versions).encode()).hexdigest()
