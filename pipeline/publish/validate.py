"""The validate stage: the validator on the delivery; JSON and JUnit reports kept."""

from __future__ import annotations

import logging

from phangs_products.pipeline.products import ProductKey
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.validation import validate_delivery

log = logging.getLogger(__name__)


def validate_stage(ctx: StageContext) -> Outputs:
    """Validate the delivery; keep the JSON and JUnit reports; fail on errors."""
    field_dir = ctx.run.output / ctx.run.field
    report = validate_delivery(field_dir, data=True)
    json_path = ctx.folder / "validation.json"
    json_path.write_text(report.to_json())
    junit_path = ctx.folder / "validation.xml"
    junit_path.write_text(report.to_junit())
    log.info("validation: %s", report.summary())
    if not report.ok:
        raise RuntimeError(f"delivery {field_dir} does not validate: {report.summary()}")
    return {ProductKey.REPORT: [json_path, junit_path]}
