"""The document stage: the HTML site of the delivery root."""

from __future__ import annotations

import json

from phangs_products.docs import build_site
from phangs_products.pipeline.products import ProductKey, StageName
from phangs_products.pipeline.runner import Outputs, StageContext


def document_stage(ctx: StageContext) -> Outputs:
    """Write the HTML site of the delivery root, with the validation report page."""
    (json_path, _) = ctx.inputs[StageName.VALIDATE][ProductKey.REPORT]
    doc = json.loads(json_path.read_text())
    problems = doc.get("problems", [])
    index = build_site(ctx.run.output, problems, doc.get("summary", ""), site=ctx.run.docs)
    marker = ctx.folder / "index.txt"
    marker.write_text(str(index))
    return {ProductKey.SITE: [marker]}
