"""Run configuration: a TOML file validated against ``schemas/config/run-config-1.x.y.yaml``.

Configurations are validated against run-config-1.3.0 (1.1.0 added ``pointings`` and
``mosaic``; 1.2.0 the Milky Way foreground reddening, galaxies outside the survey table and the
HLSP identity; 1.3.0 bands written with their instrument, and ``output`` made the run's folder:
``delivery/`` for the products that go to MAST, ``work/`` for the resumable state and
``docs/`` for the HTML documentation).  Every run states its Milky Way foreground E(B-V)
(``ebv_mw``; write 0 to apply none) and its HLSP identity (``[run.hlsp]``:
``preset = "phangs-hst"`` for the survey's name, lead, DOIs and citation, or the values one by
one); there are no silent defaults for either.

Example::

    [run]
    target = "ngc628"
    field = "ngc628c"
    input = "flc"
    reference_catalog = "gaia_dr2.txt"
    output = "ngc628c-run"
    version = "v1"
    ebv_mw = 0.06
    ebv_mw_source = "Schlafly & Finkbeiner (2011), IRSA DUST"

    [run.hlsp]
    preset = "phangs-hst"

    [stages.photometry.photometry]
    fwhm = 2.5

Bands are filters (``"F275W"``) or instrument and filter (``"ACS/WFC F555W"``).  A plain filter
takes the one instrument whose input exposures hold it; where the inputs hold a filter from both
WFC3/UVIS and ACS/WFC, the configuration must name the instrument (the run stops otherwise)::

    [run]
    bands = ["F275W", "F336W", "ACS/WFC F435W", "ACS/WFC F555W", "ACS/WFC F814W"]

Without ``bands`` the run processes every survey science band (NUV, U, B, V, I; ACS/WFC F435W
included) its inputs hold.

A galaxy outside the survey table runs when the configuration gives its centre and distance::

    [run]
    target = "ngc1234"
    ra = 12.5
    dec = -30.25
    distance_mpc = 12.0
    distance_err_mpc = 1.2
    galaxy_source = "Smith et al. (2020)"

    [stages.photometry.photometry]
    fwhm = 2.5

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

from phangs_products.bands import (
    SURVEY_TABLE_SOURCE,
    Galaxy,
    galaxy,
    parse_band,
    science_filters,
)
from phangs_products.delivery import RunLayout
from phangs_products.errors import PhangsProductsError
from phangs_products.hlsp import COLLECTIONS, PRESETS, SURVEY, HlspIdentity
from phangs_products.naming import image_target, sanitize_target
from phangs_products.registry import config_schema_id as current_config_schema
from phangs_products.registry import get_schema
from phangs_products.safeio import regular_file

__all__ = ["DEFAULT_BANDS", "Pointing", "RunConfig", "load_config", "stage_config"]

#: The survey's science filters (Lee et al. 2022 Sect. 3.1: the five WFC3/UVIS prime bands and
#: the archival ACS/WFC F435W); each resolves to the instrument of the inputs that hold it.
DEFAULT_BANDS = science_filters()
#: The schema every configuration is validated against (1.1.0 added ``pointings`` and
#: ``mosaic``, 1.2.0 ``ebv_mw``, galaxy coordinates and ``[run.hlsp]``, 1.3.0 bands with their
#: instrument and ``output`` as the run's folder).
CONFIG_SCHEMA = current_config_schema("run-config")
CONFIG_SCHEMA_POINTINGS = CONFIG_SCHEMA
#: The settings that place a galaxy outside the survey table (all four together).
GALAXY_KEYS = ("ra", "dec", "distance_mpc", "distance_err_mpc")
#: Source recorded for values given in the run configuration.
FROM_CONFIG = "run configuration"


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
        Delivery root: one folder per field, holding only the products that go to MAST
        (``<run folder>/delivery``).
    work : Path
        Scratch folder (resumable state, logs and reports; ``<run folder>/work/<field>``).
    version : str
        Delivery version.
    bands : tuple of str
        Bands to process: filters (``F555W``) or instrument and filter (``ACS/WFC F555W``),
        matched to the input exposures by :func:`phangs_products.bands.resolve_bands`.
    stages : dict
        Per-stage option overrides.
    pointings : tuple of Pointing
        Several pointings of one galaxy (empty: one field).  Then ``field`` is the mosaic's field
        name and ``input`` the first pointing's folder; :meth:`pointing_runs` and
        :meth:`mosaic_run` give the runs that make the products.
    ebv_mw : float or None
        Milky Way foreground E(B-V) in mag; None = not given (stages that need it fail, see
        :meth:`foreground`).
    ebv_mw_source : str
        Where ``ebv_mw`` comes from.
    hlsp : HlspIdentity or None
        HLSP name, lead, DOIs, citation and programs; None = not given (see :meth:`identity`).
    galaxy_facts : Galaxy or None
        The galaxy as the configuration gives it (outside the survey table, or overriding it);
        None = the survey table's row of ``target``.
    """

    target: str
    field: str
    input: Path
    reference_catalog: Path
    output: Path
    work: Path
    version: str = "v1"
    bands: tuple[str, ...] = DEFAULT_BANDS
    simulated: bool = False
    overwrite: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    pointings: tuple[Pointing, ...] = ()
    ebv_mw: float | None = None
    ebv_mw_source: str = FROM_CONFIG
    hlsp: HlspIdentity | None = None
    galaxy_facts: Galaxy | None = None

    @property
    def docs(self) -> Path:
        """Folder of the HTML documentation: ``docs/`` beside the delivery root."""
        return RunLayout.of_delivery(self.output).docs

    @property
    def galaxy(self) -> Galaxy:
        """The galaxy: the configuration's facts, else the survey table's row of ``target``."""
        return self.galaxy_facts if self.galaxy_facts is not None else galaxy(self.target)

    def foreground(self) -> tuple[float, str]:
        """The Milky Way foreground E(B-V) (mag) and where it comes from.

        Raises
        ------
        ConfigError
            If the run configuration gives none.
        """
        if self.ebv_mw is None:
            raise ConfigError(EBV_MISSING)
        return float(self.ebv_mw), self.ebv_mw_source

    def identity(self) -> HlspIdentity:
        """The HLSP identity of the products.

        Raises
        ------
        ConfigError
            If the run configuration gives none.
        """
        if self.hlsp is None:
            raise ConfigError(HLSP_MISSING)
        return self.hlsp

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


EBV_MISSING = (
    "run.ebv_mw: not given; set the Milky Way foreground E(B-V) in mag "
    "(ebv_mw = 0 to apply no correction)"
)
HLSP_MISSING = (
    'run.hlsp: not given; set preset = "phangs-hst" for the survey\'s HLSP name, lead, DOIs '
    "and citation, or name and lead (and doi, citation, proposal_ids) of your own"
)


def config_schema_id(doc: dict[str, Any]) -> str:
    """Schema of a configuration: the newest, which holds every setting."""
    return CONFIG_SCHEMA


def _identity(spec: dict[str, Any] | None, simulated: bool, source: str) -> HlspIdentity:
    """The HLSP identity of ``[run.hlsp]``: a preset, given values overriding it, or values."""
    if spec is None:
        raise ConfigError(f"{source}: {HLSP_MISSING}")
    base = PRESETS.get(spec.get("preset", ""))
    if base is None and not ("name" in spec and "lead" in spec):
        raise ConfigError(
            f'{source}: run.hlsp: needs name and lead (or preset = "phangs-hst"); '
            f"has {sorted(spec) or 'nothing'}"
        )
    names = {c: spec["name"] for c in COLLECTIONS} if "name" in spec else dict(base.names)
    dois = dict(base.dois) if base is not None else {}
    if "doi" in spec:
        dois = {c: spec["doi"] for c in COLLECTIONS}
    dois.update(spec.get("dois", {}))
    survey = sorted(set(dois.values()) & set(SURVEY.dois.values()))
    if simulated and survey:
        raise ConfigError(
            f"{source}: run.hlsp: a simulated run cannot carry the survey's DOI(s) {survey}; "
            "give name and lead of your own instead of the phangs-hst preset"
        )
    return HlspIdentity(
        names=names,
        lead=spec.get("lead", base.lead if base is not None else ""),
        dois=dois,
        citation=spec.get("citation", base.citation if base is not None else ""),
        proposal_ids=tuple(spec.get("proposal_ids", base.proposal_ids if base else ())),
        preset=base.preset if base is not None else "",
    )


def _galaxy(run: dict[str, Any], has_pointings: bool, source: str) -> Galaxy:
    """The survey table's galaxy, or the one ``ra``/``dec``/``distance_mpc``/... describe."""
    given = [k for k in GALAXY_KEYS if k in run]
    try:
        known: Galaxy | None = galaxy(run["target"])
    except PhangsProductsError:
        known = None
    if not given:
        if known is None:
            raise ConfigError(
                f"{source}: run.target: galaxy {run['target']!r} is not in the PHANGS-HST table; "
                f"give {', '.join('run.' + k for k in GALAXY_KEYS)}"
            )
        return known
    missing = [k for k in GALAXY_KEYS if k not in run]
    if missing:
        raise ConfigError(
            f"{source}: run.{missing[0]}: needed with {', '.join('run.' + k for k in given)} "
            f"(a galaxy given by the configuration needs {', '.join(GALAXY_KEYS)})"
        )
    return Galaxy(
        name=known.name if known else str(run["target"]),
        target=known.target if known else str(run["target"]).lower().replace(" ", ""),
        ra=float(run["ra"]),
        dec=float(run["dec"]),
        distance_mpc=float(run["distance_mpc"]),
        mosaic=has_pointings,
        distance_err_mpc=float(run["distance_err_mpc"]),
        source=str(run.get("galaxy_source", FROM_CONFIG)),
    )


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
    filters = [parse_band(b)[1] for b in run.get("bands", ())]
    twice = sorted({f for f in filters if filters.count(f) > 1})
    if twice:
        raise ConfigError(
            f"{source}: {schema_id}: run.bands: {', '.join(twice)} listed more than once; a run "
            "uses each filter from one instrument (write e.g. 'ACS/WFC F555W' once)"
        )


def config_from_dict(doc: dict[str, Any], base: Path, source: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from a parsed TOML document.

    Relative paths are taken relative to ``base`` (the folder of the TOML file).
    """
    _validate(doc, source)
    run = doc["run"]
    gal = _galaxy(run, "pointings" in run, source)
    if "ebv_mw" not in run:
        raise ConfigError(f"{source}: {EBV_MISSING}")
    simulated = bool(run.get("simulated", False))
    identity = _identity(run.get("hlsp"), simulated, source)
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
    layout = RunLayout((base / run["output"]).resolve())
    output = layout.delivery
    if "work" in run:
        work = (base / run["work"]).resolve()
    else:  # several pointings: <run folder>/work/<field> per pointing and for the mosaic
        work = layout.work if pointings else layout.work / field_name
    config = RunConfig(
        target=gal.target,
        field=image_target(field_name),
        input=input_dir,
        reference_catalog=(base / run["reference_catalog"]).resolve(),
        output=output,
        work=work,
        version=run.get("version", "v1"),
        bands=tuple(run.get("bands", DEFAULT_BANDS)),
        simulated=simulated,
        overwrite=bool(run.get("overwrite", False)),
        stages=dict(doc.get("stages", {})),
        pointings=pointings,
        ebv_mw=float(run["ebv_mw"]),
        ebv_mw_source=str(run.get("ebv_mw_source", FROM_CONFIG)),
        hlsp=identity,
        galaxy_facts=gal if gal.source != SURVEY_TABLE_SOURCE else None,
    )
    for i, pointing in enumerate(pointings):
        if not pointing.input.is_dir():
            raise ConfigError(
                f"{source}: run.pointings.{i}.input: folder {pointing.input} does not exist"
            )
    if not config.input.is_dir():
        raise ConfigError(f"{source}: run.input: folder {config.input} does not exist")
    for setting, folder in (("output", layout.root), ("work", config.work)):
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
#: Metadata key of an option that names an input file (``metadata={"input_file": True}``): a
#: non-empty value must be an existing regular file when the run starts (a FIFO would block).
INPUT_FILE_KEY = "input_file"


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
        if f.metadata.get(INPUT_FILE_KEY) and converted:
            try:
                regular_file(converted)
            except PhangsProductsError as exc:
                raise ConfigError(
                    f"{where}: expected a readable regular file, got {value!r} ({exc})"
                ) from None
        overrides[f.name] = converted
    return cls(**overrides)
