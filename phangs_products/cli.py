"""The ``phangs-products`` command line.

Subcommands: ``schemas list|show``, ``info FILE``, ``simulate``, ``fetch``, ``demo``,
``run CONFIG``, ``config [--check FILE]``, ``upgrade SRC DEST``, ``validate DIR`` and
``docs DIR``.  Every subcommand has ``--help``; exit codes are 0 for success, 1 for a failed
check or run, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from phangs_products import __version__
from phangs_products.errors import PhangsProductsError

__all__ = ["main"]

log = logging.getLogger("phangs_products")


def _cmd_schemas_list(args: argparse.Namespace) -> int:
    from phangs_products.registry import get_schema, is_config_schema, list_schemas

    rows = []
    for name, version, current in list_schemas():
        if args.all or current:
            if is_config_schema(name):
                kind = "config"
            else:
                kind = get_schema(name, version).kind if current else ""
            rows.append((name, version, "current" if current else "", kind))
    width = max(len(r[0]) for r in rows)
    for name, version, flag, kind in rows:
        print(f"{name:<{width}}  {version:<8} {kind:<9} {flag}")
    return 0


def _settings(props: dict[str, Any], required: Sequence[str], prefix: str) -> list[str]:
    """One line per setting of a configuration schema: name, type, default, meaning."""
    lines = []
    for key, spec in props.items():
        name = f"{prefix}{key}"
        kind = spec.get("type", "enum" if "enum" in spec else "object")
        flag = "required" if key in required else ""
        default = f"default {spec['default']!r}" if "default" in spec else ""
        about = " ".join(str(spec.get("description", "")).split())
        lines.append(f"  {name:<28} {kind:<8} {flag or default:<13} {about}".rstrip())
        if spec.get("properties") and key != "stages":
            lines += _settings(spec["properties"], spec.get("required", []), f"{name}.")
    return lines


def _show_config_schema(schema_id: str, raw: bool) -> int:
    from phangs_products.registry import load_document, schema_files

    if raw:
        print(schema_files()[schema_id].read_text())
        return 0
    doc = load_document(schema_id)
    print(f"{schema_id}: {doc['title']}\n\n{' '.join(doc['description'].split())}\n")
    print("settings:")
    print("\n".join(_settings(doc["properties"], doc.get("required", []), "")))
    print(
        "\nEvery stage option, with its default, unit and meaning: phangs-products config"
        "\nCheck a file: phangs-products config --check run.toml"
    )
    return 0


def _cmd_schemas_show(args: argparse.Namespace) -> int:
    from phangs_products.registry import (
        config_schema_id,
        get_schema,
        is_config_schema,
        load_document,
    )

    if is_config_schema(args.name):
        name = args.name.rsplit("-", 1)[0] if args.name[-1].isdigit() else args.name
        schema_id = f"{name}-{args.version}" if args.version else config_schema_id(name)
        if args.name[-1].isdigit():
            schema_id = args.name
        return _show_config_schema(schema_id, args.raw)
    schema = get_schema(args.name, args.version)
    if args.raw:
        print(Path(schema.path).read_text())
        return 0
    doc = load_document(schema.id)
    print(f"{schema.id}: {schema.title}\n\n{doc['description'].strip()}\n")
    product = schema.product
    if product:
        print(
            f"kind {product['kind']}, collection {product['collection']}, "
            f"product type {product['product_type']}, extensions {product['extensions']}"
        )
    if schema.keywords:
        print("\nkeywords:")
        for kw in schema.keywords:
            unit = f" [{kw.unit}]" if kw.unit else ""
            print(f"  {kw.fits_hdu:<8} {kw.fits_keyword:<9} {kw.mast:<11} {kw.title}{unit}")
    if schema.columns:
        print("\ncolumns:")
        for col in schema.columns:
            unit = f" [{col.unit}]" if col.unit else ""
            sentinel = f" sentinel {col.sentinel}" if col.sentinel is not None else ""
            print(f"  {col.name:<30} {col.dtype:<8} {col.mast:<11} {col.title}{unit}{sentinel}")
    for arr in schema.arrays.values():
        print(f"\narray {arr.name}: HDU {arr.fits_hdu}, {arr.dtype}, {arr.ndim}-D, {arr.unit}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import warnings

    import phangs_products
    from phangs_products.delivery import is_checksums_name, read_checksums
    from phangs_products.models import FitsModel

    if is_checksums_name(Path(args.file).name):
        sums = read_checksums(args.file)
        print(f"{Path(args.file).name}\n  checksum list (sha256sum format) of {len(sums)} files")
        for name in sums:
            print(f"    {name}")
        return 0

    with warnings.catch_warnings():  # the problems are printed below
        warnings.simplefilter("ignore", phangs_products.ProductValidationWarning)
        model = phangs_products.open(args.file)
    try:
        return _print_info(model, args)
    finally:
        if isinstance(model, FitsModel):
            model.close()


def _print_info(model: Any, args: argparse.Namespace) -> int:
    schema = model.schema
    print(f"{Path(args.file).name}\n  schema   {schema.id} ({schema.title})")
    if model.meta.legacy is not None:
        print(f"  legacy   {model.meta.legacy}")
    items = model.meta.schema_items()
    for name, value in items.items():
        spec = schema.keyword_by_name[name]
        print(f"  {spec.fits_keyword:<8} = {value!r}")
    if hasattr(model, "table"):
        table = model.table
        print(f"  table    {len(table)} rows x {len(table.colnames)} columns")
        _print_columns(table)
    elif schema.kind in ("image", "mask"):
        print(f"  image    {model.data.shape} {model.data.dtype}")
    for line in _content_lines(model):
        print(f"  {line}")
    problems = model.problems(data=True)
    errors = [p for p in problems if p.severity == "error"]
    print(f"  valid    {'yes' if not errors else f'no, {len(errors)} problem(s)'}")
    for problem in errors[:20]:
        print(f"    {problem}")
    if args.json:
        print(json.dumps(items, default=str, indent=1))
    return 0 if not errors else 1


def _content_lines(model: Any) -> list[str]:
    """What a file holds beyond its keywords: shapes, files or extensions, by product kind."""
    from collections import Counter

    kind = model.schema.kind
    if kind == "regions":
        shapes = Counter(r["shape"] for r in model.content()["regions"])
        counted = ", ".join(f"{n} {shape}" for shape, n in shapes.most_common())
        return [f"regions  {sum(shapes.values())} shape(s){': ' + counted if counted else ''}"]
    if kind == "manifest":
        files = model.tree.get("files", [])
        files = files if isinstance(files, list) else []
        lines = [f"files    {len(files)}"]
        for rec in (r for r in files if isinstance(r, dict)):  # a broken record: not listed
            variant = " ".join(
                str(rec[k]) for k in ("filter", "selection", "scale", "subset") if k in rec
            )
            size = rec.get("size")
            size_text = f"{size:>11,d}" if type(size) is int else f"{'?':>11}"
            lines.append(
                f"  {rec.get('product', '?')!s:<16} {size_text} B  "
                f"{rec.get('name', '?')}{'  (' + variant + ')' if variant else ''}"
            )
        return lines
    if kind == "flc":
        from phangs_products.fitsscan import scan_file

        lines = ["extensions"]
        for hdu in scan_file(model.path).hdus:
            head = hdu.header
            axes = "x".join(
                str(head.get(f"NAXIS{i}", 0)) for i in range(1, head.get("NAXIS", 0) + 1)
            )
            label = f"{hdu.name},{hdu.ver}" if hdu.index else hdu.name
            lines.append(f"  {hdu.index:>2} {label:<12} {hdu.xtension:<8} {axes or '-'}")
        return lines
    return []


def _print_columns(table: Any) -> None:
    """One line per catalog column: name, dtype, unit and the number of masked entries."""
    width = max((len(n) for n in table.colnames), default=0)
    for name in table.colnames:
        col = table[name]
        unit = f"[{col.unit}]" if col.unit is not None else ""
        mask = getattr(col, "mask", None)
        masked = int(mask.sum()) if mask is not None and mask is not False else 0
        note = f"  {masked} masked" if masked else ""
        print(f"    {name:<{width}}  {col.dtype.str.lstrip('<>|='):<5} {unit}{note}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[..., int]]]:
    """The argument parser and the handler of each subcommand."""
    parser = argparse.ArgumentParser(
        prog="phangs-products",
        description="Schema-driven PHANGS-HST pipeline and MAST HLSP delivery generator.",
    )
    parser.add_argument("--version", action="version", version=f"phangs-products {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, Callable[..., int]] = {}

    schemas = sub.add_parser("schemas", help="list and show product schemas")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", metavar="ACTION")
    p_list = schemas_sub.add_parser("list", help="list schemas (current versions)")
    p_list.add_argument("--all", action="store_true", help="also older versions and fragments")
    p_show = schemas_sub.add_parser("show", help="show one schema")
    p_show.add_argument("name", help="schema name, e.g. cluster-catalog")
    p_show.add_argument("--version", dest="version", default=None, help="X.Y.Z (default current)")
    p_show.add_argument("--raw", action="store_true", help="print the YAML file")
    handlers["schemas list"] = _cmd_schemas_list
    handlers["schemas show"] = _cmd_schemas_show

    p_info = sub.add_parser("info", help="schema-aware summary of a product file")
    p_info.add_argument("file", help="product file (.fits, .parquet, .ecsv, .reg, .md, .asdf)")
    p_info.add_argument("--json", action="store_true", help="also print the keywords as JSON")
    handlers["info"] = _cmd_info

    # the pipeline's and the validator's subcommands: this module is the CLI glue, the one
    # place of core allowed to import them (an import-linter contract says so)
    from phangs_products.pipeline import cli as pipeline_cli
    from phangs_products.validation import cli as validation_cli

    plugged = [
        (
            "simulate",
            "simulate a galaxy as HST FLC files",
            pipeline_cli.add_simulate_arguments,
            pipeline_cli.run_simulate,
        ),
        (
            "fetch",
            "download a galaxy's FLC exposures and Gaia catalog, write its run configuration",
            pipeline_cli.add_fetch_arguments,
            pipeline_cli.run_fetch,
        ),
        (
            "run",
            "run the pipeline from a TOML configuration",
            pipeline_cli.add_run_arguments,
            pipeline_cli.run_run,
        ),
        (
            "config",
            "print every run setting and stage option as TOML; --check a file",
            pipeline_cli.add_config_arguments,
            pipeline_cli.run_config,
        ),
        (
            "demo",
            "simulate the default galaxy, run everything",
            pipeline_cli.add_demo_arguments,
            pipeline_cli.run_demo,
        ),
        (
            "upgrade",
            "turn historical PHANGS-HST/PHANGS-CAT files into a current delivery",
            pipeline_cli.add_upgrade_arguments,
            pipeline_cli.run_upgrade,
        ),
        (
            "validate",
            "validate a delivery against MAST rules",
            validation_cli.add_arguments,
            validation_cli.run,
        ),
        (
            "docs",
            "render the README and HTML pages of a delivery",
            validation_cli.add_docs_arguments,
            validation_cli.run_docs,
        ),
    ]
    for name, help_text, add, run in plugged:
        add(sub.add_parser(name, help=help_text))
        handlers[name] = run
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    key = args.command
    if key == "schemas":
        if not args.schemas_command:
            parser.parse_args(["schemas", "--help"])
        key = f"schemas {args.schemas_command}"
    if key is None or key not in handlers:
        parser.print_help()
        return 2
    try:
        return int(handlers[key](args) or 0)
    except PhangsProductsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
