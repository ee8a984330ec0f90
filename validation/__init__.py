"""Validator of a MAST HLSP delivery: file names, metadata, FITS health, cross-file consistency.

Use :func:`validate_delivery` from Python, or ``phangs-products validate DIR`` from the shell::

    from phangs_products.validation import validate_delivery
    report = validate_delivery("delivery/ngc628c")
    report.ok, report.summary(), report.to_json(), report.to_junit()

Rule ids and their meaning are listed in :data:`~phangs_products.validation.rules.RULES`.
"""

from .api import validate_delivery
from .report import Report, report_schema
from .rules import RULES, Rule

__all__ = ["RULES", "Report", "Rule", "report_schema", "validate_delivery"]
