"""Run configuration: a TOML file validated against ``schemas/config/run-config-1.x.y.yaml``.

Configurations that use only the 1.0.0 settings are validated against run-config-1.0.0; those
with ``pointings`` or ``mosaic`` (galaxies observed with several pointings) against
run-config-1.1.0, which adds them.

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

A galaxy observed with several overlapping pointings lists them instead of ``field`` and
``input``; each pointing is run as a field of its own (``<output>/<field>``), then a mosaic per
band is drizzled from the aligned FLCs of all pointings (``<output>/<mosaic>``)::

    [run]
    target = "ngc628"
    reference_catalog = "sim/reference_catalog.txt"
    output = "delivery"
    mosaic = "ngc628mosaic"          # default <target>mosaic

    [[run.pointings]]
    field = "ngc628c"
    input = "sim/flc/ngc628c"

    [[run.pointings]]
    field = "ngc628e"
    input = "sim/flc/ngc628e"
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from phangs_products.bands import Galaxy, galaxy, survey_filters
from phangs_products.errors import PhangsProductsError
from phangs_products.naming import image_target, sanitize_target
from phangs_products.registry import get_schema

__all__ = ["DEFAULT_BANDS", "Pointing", "RunConfig", "load_config", "stage_config"]

#: The five PHANGS-HST prime bands (Lee et al. 2022 Sect. 3.1).
DEFAULT_BANDS = survey_filters()
CONFIG_SCHEMA = "run-config-1.0.0"
#: The version that adds ``pointings`` and ``mosaic``.
CONFIG_SCHEMA_POINTINGS = "run-config-1.1.0"


class ConfigError(PhangsProductsError):
    """The run configuration is invalid."""


@dataclass(frozen=True)
class Pointing:
    """One pointing of a galaxy observed several times.

    Attributes
    ----------
    field : str
        Field name of the pointing's products (``ngc628e``).
    input : Path
        Folder of the pointing's FLC files.  In the mosaic run (:meth:`RunConfig.mosaic_run`)
        it is the folder holding the pointing's aligned FLC products.
    """

    field: str
    input: Path


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
    pointings : tuple of Pointing
        Several pointings of one galaxy (empty: one field).  Then ``field`` is the mosaic's field
        name and ``input`` the first pointing's folder; :meth:`pointing_runs` and
        :meth:`mosaic_run` give the runs that make the products.
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
    pointings: tuple[Pointing, ...] = ()

    @property
    def galaxy(self) -> Galaxy:
        """The survey galaxy."""
        return galaxy(self.target)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), for provenance and hashing.

        ``pointings`` appears only when there are some (one-field runs hash as before).
        """
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        out["bands"] = list(self.bands)
        if self.pointings:
            out["pointings"] = [{"field": p.field, "input": str(p.input)} for p in self.pointings]
        else:
            del out["pointings"]
        return out

    def pointing_runs(self) -> list[RunConfig]:
        """One single-field run per pointing (work folder ``<work>/<field>``).

        Each pointing is aligned and drizzled on its own grid and gets every product of a
        single-field run, published to ``<output>/<field>``.
        """
        return [
            dataclasses.replace(
                self, field=p.field, input=p.input, work=self.work / p.field, pointings=()
            )
            for p in self.pointings
        ]

    def mosaic_run(self) -> RunConfig:
        """The run that drizzles the mosaics (work folder ``<work>/<mosaic field>``).

        Its pointings' ``input`` are the pointings' delivery folders, where the pointing runs
        publish their aligned FLC products.
        """
        return dataclasses.replace(
            self,
            work=self.work / self.field,
            pointings=tuple(Pointing(p.field, self.output / p.field) for p in self.pointings),
        )


def config_schema_id(doc: dict[str, Any]) -> str:
    """Schema of a configuration: 1.1.0 when it uses ``pointings`` or ``mosaic``, else 1.0.0."""
    run = doc.get("run")
    if isinstance(run, dict) and ("pointings" in run or "mosaic" in run):
        return CONFIG_SCHEMA_POINTINGS
    return CONFIG_SCHEMA


def _validate(doc: dict[str, Any], source: str) -> None:
    schema_id = config_schema_id(doc)
    schema = get_schema(schema_id).document
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {schema_id}: {where}: {err.message}{more}")
    run = doc["run"]
    if "pointings" in run:
        both = [k for k in ("field", "input") if k in run]
        if both:
            raise ConfigError(
                f"{source}: {schema_id}: run: {' and '.join(both)} cannot be given with "
                "pointings (each pointing names its field and input)"
            )
        names = [p["field"] for p in run["pointings"]]
        if len(set(names)) != len(names) or run.get("mosaic") in names:
            raise ConfigError(
                f"{source}: {schema_id}: run.pointings: field names {names} and the mosaic "
                f"{run.get('mosaic')!r} must all differ"
            )
    elif "mosaic" in run:
        raise ConfigError(f"{source}: {schema_id}: run: mosaic needs pointings")


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
    pointings = tuple(
        Pointing(image_target(sanitize_target(p["field"])), (base / p["input"]).resolve())
        for p in run.get("pointings", ())
    )
    if pointings:
        field_name = sanitize_target(run.get("mosaic", f"{gal.target}mosaic"))
        input_dir = pointings[0].input
    else:
        field_name = sanitize_target(run.get("field", gal.target))
        input_dir = (base / run["input"]).resolve()
    output = (base / run["output"]).resolve()
    if "work" in run:
        work = (base / run["work"]).resolve()
    else:  # several pointings: <output>/.work/<field> per pointing and for the mosaic
        work = output / ".work" if pointings else output / ".work" / field_name
    config = RunConfig(
        target=gal.target,
        field=image_target(field_name),
        input=input_dir,
        reference_catalog=(base / run["reference_catalog"]).resolve(),
        output=output,
        work=work,
        version=run.get("version", "v1"),
        bands=tuple(run.get("bands", DEFAULT_BANDS)),
        doi=run.get("doi"),
        simulated=bool(run.get("simulated", False)),
        overwrite=bool(run.get("overwrite", False)),
        stages=dict(doc.get("stages", {})),
        pointings=pointings,
    )
    for i, pointing in enumerate(pointings):
        if not pointing.input.is_dir():
            raise ConfigError(
                f"{source}: run.pointings.{i}.input: folder {pointing.input} does not exist"
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
