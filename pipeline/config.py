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
import math
import tomllib
import types
import typing
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
    for setting, folder in (("output", config.output), ("work", config.work)):
        _writable_folder(folder, f"{source}: run.{setting}")
    if not config.reference_catalog.is_file():
        raise ConfigError(
            f"{source}: run.reference_catalog: file {config.reference_catalog} does not exist"
        )
    return config


def _writable_folder(folder: Path, where: str) -> None:
    """Refuse a folder the run cannot create: it, or a parent, is a file."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is" if candidate == folder else f"is inside {candidate}, which is"
                raise ConfigError(f"{where}: {folder} {what} a file, not a folder")
            return


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration.

    Raises
    ------
    ConfigError
        One line naming the file, the setting and what was expected.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a configuration file")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file (a FIFO or device?)")
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path.name}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc})") from None
    return config_from_dict(doc, path.parent.resolve(), path.name)


#: Range keys a config dataclass field may declare in its metadata
#: (``field(default=2.5, metadata={"gt": 0})``): value > gt, >= ge, < lt, <= le.
RANGE_KEYS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _range_text(meta: Any) -> str:
    return " and ".join(f"{RANGE_KEYS[k]} {meta[k]}" for k in RANGE_KEYS if k in meta)


def _in_range(value: float, meta: Any) -> bool:
    checks = {
        "gt": lambda b: value > b,
        "ge": lambda b: value >= b,
        "lt": lambda b: value < b,
        "le": lambda b: value <= b,
    }
    return all(check(meta[k]) for k, check in checks.items() if k in meta)


def _expected(tp: Any) -> str:
    """Plain words for a type hint (``a number``, ``a list of 2 numbers``, ...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_expected(args[0]).removeprefix('a ').removeprefix('an ')}s"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_expected(args[0]).split(' ', 1)[-1]}s"
        return f"a list of {len(args)} values ({', '.join(_expected(a) for a in args)})"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp is Path:
        return "a path (string)"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def _convert(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (TOML lists become tuples), or :class:`_Mismatch`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is typing.Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        item_types = [args[0]] * len(value) if args[1:] == (Ellipsis,) else list(args)
        if len(item_types) != len(value):
            raise _Mismatch
        return tuple(_convert(v, t) for v, t in zip(value, item_types, strict=True))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    else:
        return value  # a type this check does not know: the dataclass takes it as it is
    raise _Mismatch


def _numbers(value: Any) -> list[float]:
    if isinstance(value, tuple):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    return []


def stage_config(cls: type, overrides: dict[str, Any] | None, stage: str) -> Any:
    """Instantiate a stage's frozen config dataclass with the user's overrides, checked.

    Each override is checked against the field's type hint (bool, int, float, str, Path,
    ``Literal``, tuples, optional values, nested config dataclasses as TOML tables) and
    against the range the field declares in its metadata (``gt``, ``ge``, ``lt``, ``le``;
    for a tuple, every element).

    Raises
    ------
    ConfigError
        One line: ``[stages.<stage>] <option>: expected ..., got ...``, or the unknown options.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"stages.{stage}: unknown option(s) {unknown} (known: {sorted(names)})")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in overrides:
            continue
        value = overrides[f.name]
        where = f"[stages.{stage}] {f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table of options, got {value!r}")
            overrides[f.name] = stage_config(tp, value, f"{stage}.{f.name}")
            continue
        try:
            converted = _convert(value, tp)
        except _Mismatch:
            bounds = _range_text(f.metadata)
            raise ConfigError(
                f"{where}: expected {_expected(tp)}{' ' + bounds if bounds else ''}, got {value!r}"
            ) from None
        if any(not _in_range(x, f.metadata) for x in _numbers(converted)):
            what = "every value" if isinstance(converted, tuple) else _expected(tp)
            raise ConfigError(f"{where}: expected {what} {_range_text(f.metadata)}, got {value!r}")
        overrides[f.name] = converted
    return cls(**overrides)
