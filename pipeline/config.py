"""Run configuration: a TOML file validated against ``schemas/config/run-config-1.0.0.yaml``.

Example::

    [run]
    target = "ngc628"
    field = "ngc628c"
    input = "sim/flc"
    reference_catalog = "sim/reference_catalog.txt"
    output = "delivery"
    version = "v1"

    [stages.photometry]
    fwhm_px = 2.5
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from phangs_products.bands import Galaxy, galaxy
from phangs_products.errors import PhangsProductsError
from phangs_products.naming import image_target, sanitize_target
from phangs_products.registry import get_schema

__all__ = ["DEFAULT_BANDS", "RunConfig", "load_config", "stage_config"]

#: The five PHANGS-HST prime bands (Lee et al. 2022 Sect. 3.1).
DEFAULT_BANDS = ("F275W", "F336W", "F438W", "F555W", "F814W")
CONFIG_SCHEMA = "run-config-1.0.0"


class ConfigError(PhangsProductsError):
    """The run configuration is invalid."""


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration.

    Attributes
    ----------
    target : str
        Galaxy (survey table name or target).
    field : str
        Field name used as the HLSP target of image products.
    input : Path
        Folder of FLC files.
    reference_catalog : Path
        Reference astrometric catalog (RA, Dec in degrees).
    output : Path
        Delivery root.
    work : Path
        Scratch folder (resumable state lives here).
    version : str
        Delivery version.
    bands : tuple of str
        Filters to process.
    stages : dict
        Per-stage option overrides.
    """

    target: str
    field: str
    input: Path
    reference_catalog: Path
    output: Path
    work: Path
    version: str = "v1"
    bands: tuple[str, ...] = DEFAULT_BANDS
    doi: str | None = None
    simulated: bool = False
    overwrite: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def galaxy(self) -> Galaxy:
        """The survey galaxy."""
        return galaxy(self.target)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), for provenance and hashing."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        out["bands"] = list(self.bands)
        return out


def _validate(doc: dict[str, Any], source: str) -> None:
    schema = get_schema(CONFIG_SCHEMA).document
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {CONFIG_SCHEMA}: {where}: {err.message}{more}")


def config_from_dict(doc: dict[str, Any], base: Path, source: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from a parsed TOML document.

    Relative paths are taken relative to ``base`` (the folder of the TOML file).
    """
    _validate(doc, source)
    run = doc["run"]
    try:
        gal = galaxy(run["target"])
    except PhangsProductsError as exc:
        raise ConfigError(f"{source}: run.target: {exc}") from None
    field_name = sanitize_target(run.get("field", gal.target))
    output = (base / run["output"]).resolve()
    work = (base / run["work"]).resolve() if "work" in run else output / ".work" / field_name
    config = RunConfig(
        target=gal.target,
        field=image_target(field_name),
        input=(base / run["input"]).resolve(),
        reference_catalog=(base / run["reference_catalog"]).resolve(),
        output=output,
        work=work,
        version=run.get("version", "v1"),
        bands=tuple(run.get("bands", DEFAULT_BANDS)),
        doi=run.get("doi"),
        simulated=bool(run.get("simulated", False)),
        overwrite=bool(run.get("overwrite", False)),
        stages=dict(doc.get("stages", {})),
    )
    if not config.input.is_dir():
        raise ConfigError(f"{source}: run.input: folder {config.input} does not exist")
    if not config.reference_catalog.is_file():
        raise ConfigError(
            f"{source}: run.reference_catalog: file {config.reference_catalog} does not exist"
        )
    return config


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration.

    Raises
    ------
    ConfigError
        One line naming the file, the setting and what was expected.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc})") from None
    return config_from_dict(doc, path.parent.resolve(), path.name)


def stage_config(cls: type, overrides: dict[str, Any] | None, stage: str) -> Any:
    """Instantiate a stage's frozen config dataclass with the user's overrides.

    Raises
    ------
    ConfigError
        If an override names an option the stage does not have.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"stages.{stage}: unknown option(s) {unknown} (known: {sorted(names)})")
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name not in overrides:
            continue
        value = overrides[f.name]
        current = getattr(defaults, f.name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            overrides[f.name] = stage_config(type(current), value, f"{stage}.{f.name}")
        elif isinstance(value, list):
            overrides[f.name] = tuple(value)
    return cls(**overrides)
