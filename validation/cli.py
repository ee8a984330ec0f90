"""``phangs-products validate DIR`` and ``phangs-products docs DIR``: the validator's command lines.

``docs`` renders the HTML site of a delivery with the validator's report page (the core's
:mod:`phangs_products.docs` renders; the validation runs here, so core never imports the
validator).  Exit codes: 0 clean, 1 errors (warnings too with ``--strict``), 2 usage (bad
arguments, no such folder).  ``add_parser(subparsers)`` registers the subcommand; the main CLI
may instead call ``add_arguments(parser)`` on a parser it made.  ``run(args)`` returns the exit
code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from phangs_products.atomic import atomic_write_text
from phangs_products.docs import build_site

from .api import validate_delivery

__all__ = ["add_arguments", "add_docs_arguments", "add_parser", "main", "run", "run_docs"]

FORMATS = ("text", "json", "junit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` arguments to a parser."""
    parser.add_argument("path", metavar="DIR", help="delivery root or one field folder")
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="report format (default text)"
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE")
    parser.add_argument(
        "--headers-only",
        action="store_true",
        help="read headers only (no checksums, SHA-256, NaN/range or position checks)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        "--workers",
        dest="workers",
        type=int,
        default=None,
        metavar="N",
        help="files checked in parallel by N workers (default: the CPU cores); "
        "the report is the same for any N",
    )
    parser.add_argument("--no-warnings", action="store_true", help="text format: show errors only")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``validate`` on the main CLI's subparsers; return its parser."""
    parser = subparsers.add_parser(
        "validate",
        help="validate a delivery against MAST HLSP rules and the schemas",
        description="Check a delivery folder: MAST file names, required keywords, FITS "
        "health, schema conformance and cross-file consistency.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate and write the report; return the exit code (0 clean, 1 errors, 2 usage)."""
    path = Path(args.path)
    if not path.is_dir():
        print(f"error: {path}: no such delivery folder", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    report = validate_delivery(
        path, strict=args.strict, data=not args.headers_only, workers=args.workers
    )
    fmt = args.format
    if fmt == "json":
        text = report.to_json()
    elif fmt == "junit":
        text = report.to_junit()
    else:
        text = None
    if args.output:
        if text is None:
            text = report.to_text(warnings=not args.no_warnings)
        atomic_write_text(args.output, text + "\n", overwrite=True)
        print(report.summary(), file=sys.stderr)
    elif text is not None:
        sys.stdout.write(text + "\n")
    elif args.no_warnings:
        sys.stdout.write(report.to_text(warnings=False) + "\n")
    else:
        report.print()
    return report.exit_code


def add_docs_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products docs``."""
    parser.add_argument("delivery", help="delivery root folder (one folder per field)")
    parser.add_argument(
        "--out",
        default=None,
        help="folder of the HTML site (default: docs/ beside the delivery root)",
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="do not run the validator for the report page"
    )


def run_docs(args: argparse.Namespace) -> int:
    """``phangs-products docs DIR``: write the HTML site; print where the index is."""
    root = Path(args.delivery)
    problems: list[dict] = []
    summary = ""
    if not args.no_validate:
        report = validate_delivery(root)
        problems = report.to_dict()["problems"]
        summary = report.summary()
    index = build_site(root, problems, summary, site=args.out)
    print(f"HTML index: {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m phangs_products.validation.cli``)."""
    parser = argparse.ArgumentParser(prog="phangs-products validate")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
