"""The configuration reference: every run setting and stage option as a commented TOML file.

``phangs-products config`` prints it.  Nothing is written twice: the ``[run]`` settings come
from the run-config schema (description, required or default), the stage options from the
stages' frozen config dataclasses (defaults, type hints, ranges in the field metadata) and the
``Attributes`` section of their numpy-style docstrings (meaning, unit).  A reference that parses,
validates and loads unchanged into a run is tested, so it cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from phangs_products.pipeline.config import CONFIG_SCHEMA, load_config
from phangs_products.pipeline.graph import STAGE_CONFIGS, build_stages
from phangs_products.pipeline.options import stage_options
from phangs_products.registry import load_document

__all__ = ["RUN_EXAMPLE", "check_config", "config_reference"]

#: Values of the ``[run]`` settings shown active in the reference (a survey galaxy, real data).
RUN_EXAMPLE: dict[str, Any] = {
    "target": "ngc628",
    "field": "ngc628c",
    "input": "ngc628c/flc",
    "reference_catalog": "ngc628c/gaia_dr3.txt",
    "output": "ngc628c-v1",
}
#: Settings shown commented out although a run needs them: no example value may be taken over
#: unread (a wrong E(B-V) would silently bias every magnitude).
_RUN_PLACEHOLDERS = {
    "ebv_mw": "# ebv_mw = ...            # e.g. from a dust map; 0 applies no correction",
    "ebv_mw_source": '# ebv_mw_source = "..."   # the map or paper the value comes from',
}


def _toml_value(value: Any) -> str | None:
    """A TOML literal for a default; None when TOML cannot hold it (a value not set)."""
    if value is None:
        return None
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def _comment(text: str, width: int = 96) -> list[str]:
    words, lines, line = text.split(), [], "#"
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = "#"
        line += f" {word}"
    return [*lines, line] if line != "#" else lines


def _run_section() -> list[str]:
    doc = load_document(CONFIG_SCHEMA)
    run = doc["properties"]["run"]
    required = set(run.get("required", []))
    out = ["[run]"]
    hlsp = []
    for key, spec in run["properties"].items():
        about = " ".join(str(spec.get("description", "")).split())
        flag = "required" if key in required or key in ("input", "ebv_mw") else "optional"
        if key == "hlsp":
            hlsp = [
                "",
                *_comment(f"{about} (required)"),
                "[run.hlsp]",
                'preset = "phangs-hst"',
                '# name = "..."    # or these one by one, for products that are not the survey\'s',
                '# lead = "..."',
                '# doi = "10.xxxx/..."',
                '# citation = "..."',
                "# proposal_ids = [15654]",
            ]
            continue
        out += _comment(f"{key} ({flag}): {about}")
        if key in RUN_EXAMPLE:
            out.append(f"{key} = {_toml_value(RUN_EXAMPLE[key])}")
        elif key in _RUN_PLACEHOLDERS:
            out.append(_RUN_PLACEHOLDERS[key])
        elif key == "pointings":
            out += ["# [[run.pointings]]", '# field = "ngc628e"', '# input = "ngc628e/flc"']
        elif "default" in spec:
            out.append(f"# {key} = {_toml_value(spec['default'])}")
        else:
            out.append(f"# {key} = ...")
    return out + hlsp


def config_reference() -> str:
    """The complete, commented TOML reference of a run configuration.

    Every ``[run]`` setting of the run-config schema (the required ones active, with example
    values), then every stage option with its default, unit, allowed range and meaning.
    """
    lines = [
        f"# phangs-products run configuration ({CONFIG_SCHEMA}): every setting and stage option.",
        "# Settings marked required must be given; stage options override the paper's defaults",
        "# shown here (keep only the ones you change). Check: phangs-products config --check FILE",
        "",
        *_run_section(),
    ]
    for stage, cls in STAGE_CONFIGS.items():
        table = None
        for opt in stage_options(cls, f"stages.{stage}"):
            if opt.table != table:
                table = opt.table
                lines += ["", f"[{table}]"]
            details = ", ".join(
                x for x in (opt.type, f"unit {opt.unit}" if opt.unit else "", opt.bounds) if x
            )
            lines += _comment(f"{opt.meaning} ({details})" if opt.meaning else f"({details})")
            value = _toml_value(opt.default)
            lines.append(f"{opt.name} = {value}" if value is not None else f"# {opt.name} = ...")
    return "\n".join(lines) + "\n"


def check_config(path: str | Path) -> str:
    """Load a run configuration and build its stages (every option checked); a summary line.

    Raises
    ------
    PhangsProductsError
        One line naming the file and the setting, as ``phangs-products run`` would.
    """
    config = load_config(path)
    build_stages(config)
    n_options = sum(_count(v) for v in config.stages.values())
    fields = [p.field for p in config.pointings] or [config.field]
    return (
        f"{path}: valid ({CONFIG_SCHEMA}): {config.target}, field(s) {', '.join(fields)}, "
        f"{len(config.bands)} band(s), {n_options} stage option(s) set; "
        f"delivery -> {config.output}"
    )


def _count(options: Any) -> int:
    if isinstance(options, dict):
        return sum(_count(v) for v in options.values())
    return 1
