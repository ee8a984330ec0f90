"""The pipeline's command lines: ``phangs-products simulate``, ``fetch``, ``run`` and ``demo``.

``simulate`` writes a simulated galaxy field as FLC files plus truth
(:mod:`phangs_products.pipeline.sim`); ``run`` runs the stage graph
(:mod:`phangs_products.pipeline.graph`) of one or several TOML configurations; ``demo`` does both
for the embedded default galaxy, then validates and documents the delivery.  The stage graph is
imported when a run starts, so ``phangs-products --help`` and ``info`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
import tomli_w
from astropy.coordinates import SkyCoord
from astropy.table import Table
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import field_target
from phangs_products.hlsp import SURVEY
from phangs_products.naming import sanitize_target
from phangs_products.pipeline.config import RunConfig, load_config
from phangs_products.pipeline.hpc import (
    KINDS,
    ClusterConfigError,
    ClusterSpec,
    load_cluster_config,
)
from phangs_products.pipeline.products import StageName
from phangs_products.pipeline.runner import StageError, StageResult
from phangs_products.pipeline.sim.config import BANDS, SIZES, SimConfig
from phangs_products.pipeline.sim.simulate import SimResult, simulate

__all__ = [
    "add_config_arguments",
    "add_demo_arguments",
    "add_fetch_arguments",
    "add_run_arguments",
    "add_simulate_arguments",
    "run_config",
    "run_demo",
    "run_fetch",
    "run_run",
    "run_simulate",
    "simulate_from_args",
]

log = logging.getLogger(__name__)


class StageReporter:
    """Console lines per stage and a summary table at the end.

    While a stage runs, a terminal shows a progress bar fed by the stage's
    :meth:`~phangs_products.pipeline.runner.StageContext.progress` calls (per band, pointing or
    scale), one per running stage (the pointings of a galaxy run side by side); when the
    console is not a terminal (a log file, CI) nothing but the finished-stage lines is printed.
    """

    def __init__(self, console: Console, field: str, width: int = 13, fields: Sequence[str] = ()):
        self.console = console
        self.field = field
        self.fields = tuple(fields)  # the run's fields in plan order (pointings, mosaic)
        self.width = width  # of the stage-name column (``ngc628mosaic/mosaic`` with pointings)
        self.results: list[StageResult] = []
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}  # running stages (several: pointings side by side)

    def _start(self, name: str) -> None:
        if not self.console.is_terminal:
            return
        if self.bar is None:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[field]}[/]: {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        self.tasks[name] = self.bar.add_task(f"{name} ...", total=None, field=self.field)

    def _stop(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if self.bar is not None and task is not None:
            self.bar.remove_task(task)
        if self.bar is not None and not self.tasks:
            self.bar.stop()
            self.bar = None

    def __call__(self, result: StageResult) -> None:
        if result.status == "running":
            self._start(result.name)
            return
        if result.status == "progress":
            task = self.tasks.get(result.name)
            if self.bar is not None and task is not None:
                self.bar.update(
                    task,
                    description=f"{result.name}: {escape(result.step)} done",
                    completed=result.done,
                    total=result.total,
                )
            return
        self._stop(result.name)
        self.results.append(result)
        style = {"done": "green", "skipped": "cyan", "failed": "red"}[result.status]
        files = sum(len(v) for v in result.outputs.values())
        self.console.print(
            f"  [{style}]{result.status:>7}[/] {result.name:<{self.width}} {result.seconds:7.1f} s"
            + (f"  peak {result.peak_mb / 1e3:5.1f} GB" if result.peak_mb else "")
            + (f"  {result.cores:3.1f} cores" if result.cpu_seconds else "")
            + (f"  {files} file(s)" if files else "")
            + (f"  [red]{escape(result.error)}[/]" if result.error else "")
            + (
                f"  [yellow]{len(result.skipped_inputs)} input(s) left out[/]"
                if result.skipped_inputs
                else ""
            )
        )

    def summary(self) -> RichTable:
        """Summary table of the run, the stages of each field together (in the order run).

        Pointings side by side end their stages in mixed order; the table groups them by
        field, in the order of the run's ``fields`` (then as they first ended a stage).
        """
        table = RichTable(title=f"{self.field}: stages")
        for col in ("stage", "status", "seconds", "cores busy", "peak memory", "outputs"):
            table.add_column(col)
        fields = {f: i for i, f in enumerate(self.fields)}
        for r in self.results:
            fields.setdefault(r.name.rpartition("/")[0], len(fields))
        for r in sorted(self.results, key=lambda r: fields[r.name.rpartition("/")[0]]):
            table.add_row(
                r.name,
                r.status,
                f"{r.seconds:.1f}",
                f"{r.cores:.1f}" if r.cpu_seconds else "-",
                f"{r.peak_mb / 1e3:.1f} GB" if r.peak_mb else "-",
                str(sum(len(v) for v in r.outputs.values())),
            )
        return table

    def left_out(self) -> str:
        """One line naming every input file the run left out and why ('' when none)."""
        lines = list(dict.fromkeys(x for r in self.results for x in r.skipped_inputs))
        if not lines:
            return ""
        return f"[yellow]{len(lines)} input file(s) left out[/] (allow_missing_inputs): " + escape(
            "; ".join(lines)
        )


def _run_one(config: RunConfig, console: Console, pointings_at_once: int = 0) -> bool:
    from phangs_products.pipeline.graph import run_galaxy

    fields = [p.field for p in config.pointings] + [config.field] if config.pointings else []
    width = max((len(f) for f in fields), default=-1) + 1 + len("associations")
    reporter = StageReporter(console, config.field, width=max(width, 13), fields=fields)
    console.print(f"[bold]{config.field}[/] ({config.galaxy.name}) -> {config.output}")
    t0 = time.perf_counter()
    try:
        run_galaxy(config, report=reporter, pointings_at_once=pointings_at_once)
    except StageError as exc:
        console.print(reporter.summary())
        if reporter.left_out():
            console.print(reporter.left_out())
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return False
    console.print(reporter.summary())
    if reporter.left_out():
        console.print(reporter.left_out())
    console.print(f"finished in {time.perf_counter() - t0:.1f} s")
    for line in where_lines(config):
        console.print(line, soft_wrap=True, highlight=False)
    return True


def where_lines(config: RunConfig) -> list[str]:
    """What a finished run made: each field's validation result, README and the HTML index.

    Read from the run's own records (the validate stage's JSON report in the work folder), so
    it shows what was checked, not a second validation.  Paths are printed whole (never
    wrapped), so they can be copied.
    """
    lines = []
    runs = [*config.pointing_runs(), config.mosaic_run()] if config.pointings else [config]
    width = max(len(r.field) for r in runs)
    for run in runs:
        field_dir = run.output / run.field
        report = run.work / StageName.VALIDATE / "validation.json"
        if report.is_file():
            doc = json.loads(report.read_text())
            counts = doc.get("counts", {})
            state = "[green]valid[/]" if doc.get("ok") else "[red]INVALID[/]"
            lines.append(
                f"[bold]{run.field:<{width}}[/]  {state}: {counts.get('errors', 0)} error(s), "
                f"{counts.get('warnings', 0)} warning(s), {counts.get('files', 0)} files in "
                + escape(str(field_dir))
            )
        readme = next(iter(sorted(field_dir.glob("hlsp_*_readme.md"))), None)
        if readme is not None:
            lines.append(f"{'':<{width}}  README: {escape(str(readme))}")
    index = config.docs / "index.html"
    if index.is_file():
        lines.append(f"HTML documentation: {escape(str(index))}")
    lines.append(f"work folder (logs, reports, resumable state): {escape(str(config.work))}")
    return lines


def _count(text: str) -> int:
    """A whole number >= 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products run``."""
    parser.add_argument("config", nargs="+", help="TOML run configuration(s), one per field")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="where the fields run: 'local' (a Dask LocalCluster, the default with several "
        "configs), 'sync' (here, one after the other), or a Dask scheduler address "
        "tcp://host:port (even for one config); one config without it runs here",
    )
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument(
        "--pointings-at-once",
        type=_count,
        default=0,
        metavar="N",
        help="a galaxy with several pointings runs N of them side by side, each with its share "
        "of the cores (default 0: one per core; 1: one after another, the least memory)",
    )
    parser.add_argument(
        "--cluster",
        choices=sorted(KINDS),
        default=None,
        help="run the fields on Dask workers started as batch jobs (dask-jobqueue), with the "
        "[cluster] settings of --cluster-config",
    )
    parser.add_argument(
        "--cluster-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file with a [cluster] table: cores, memory, walltime, jobs, queue, ...",
    )
    parser.add_argument(
        "--job-script",
        action="store_true",
        help="with --cluster: print the batch job script and stop (no job is submitted)",
    )


def _cluster_spec(args: argparse.Namespace) -> ClusterSpec | None:
    """The checked cluster preset of ``--cluster`` and ``--cluster-config`` (None without)."""
    kind, path = getattr(args, "cluster", None), getattr(args, "cluster_config", None)
    if kind is None:
        if path is not None or getattr(args, "job_script", False):
            raise ClusterConfigError("--cluster-config and --job-script need --cluster slurm|pbs")
        return None
    if path is None:
        raise ClusterConfigError(f"--cluster {kind}: needs --cluster-config FILE ([cluster] table)")
    if args.scheduler not in (None, "local"):
        raise ClusterConfigError("--cluster starts its own scheduler: leave out --scheduler")
    return load_cluster_config(path, kind)


def run_run(args: argparse.Namespace) -> int:
    """Run the pipeline for each configuration."""
    from phangs_products.pipeline.graph import build_stages

    console = Console()
    spec = _cluster_spec(args)
    if spec is not None and args.job_script:
        from phangs_products.pipeline.hpc import make_cluster

        cluster = make_cluster(spec)
        try:
            print(cluster.job_script(), end="")
        finally:
            cluster.close()
        return 0
    configs = [load_config(p) for p in args.config]
    for config in configs:  # every stage option checked before any stage runs
        build_stages(config)
    here = args.scheduler in (None, "local", "sync") and spec is None
    if len(configs) == 1 and here:
        return 0 if _run_one(configs[0], console, args.pointings_at_once) else 1
    from phangs_products.pipeline.scaleout import run_many

    width = max(len(c.field) for c in configs)

    def show(outcome):
        state = "[green]ok[/]" if outcome.ok else f"[red]failed[/] {escape(str(outcome.error))}"
        workers = "Dask workers" if "," in outcome.worker else "Dask worker"
        where = f" ({workers} {escape(outcome.worker)})" if outcome.worker else ""
        console.print(f"  {outcome.field:<{width}}  {state}{where}", soft_wrap=True)

    outcomes = run_many(
        configs,
        scheduler=args.scheduler or "local",
        n_workers=args.workers,
        progress=show,
        cluster=spec,
    )
    for config in configs:
        for line in where_lines(config):
            console.print(line, soft_wrap=True, highlight=False)
    return 0 if all(o.ok for o in outcomes) else 1


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products config``."""
    parser.add_argument(
        "--check",
        nargs="+",
        metavar="FILE",
        default=None,
        help="check run configuration(s): schema, paths, every stage option's type and range",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write the reference to this file (not stdout)"
    )


def run_config(args: argparse.Namespace) -> int:
    """``phangs-products config``: the commented reference, or ``--check`` files."""
    from phangs_products.errors import PhangsProductsError
    from phangs_products.pipeline.reference import check_config, config_reference

    if args.check:
        failed = 0
        for path in args.check:
            try:
                print(check_config(path))
            except PhangsProductsError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    text = config_reference()
    if args.out is None:
        print(text, end="")
    else:  # never replaces a file the user wrote
        atomic_write_text(args.out, text, overwrite=False)
        print(f"configuration reference: {args.out}")
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products demo``."""
    parser.add_argument("--out", default="demo-output", help="output folder (default %(default)s)")
    parser.add_argument(
        "--size",
        default="small",
        choices=("small", "medium", "full"),
        help="simulated detector size (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument(
        "--galaxy",
        default=None,
        metavar="FIELD",
        help="a survey pointing (e.g. ngc628c): simulate its real bands and instruments "
        "(WFC3/UVIS and ACS/WFC); default the all-WFC3/UVIS NGC 628 field",
    )


def sim_config_for(galaxy: str | None, **options) -> SimConfig:
    """The simulation of a survey pointing's real band layout, or the default field.

    Parameters
    ----------
    galaxy : str or None
        A pointing of ``zeropoints.csv`` (``ngc628c``): its galaxy, bands, instruments,
        exposure times and zero points; None: the default all-WFC3/UVIS NGC 628 field.
    **options
        Other :class:`SimConfig` settings.
    """
    if galaxy is None:
        return SimConfig(**options)
    field = sanitize_target(galaxy)
    return SimConfig(target=field_target(field), field=field, layout=field, **options)


def write_human_classes(truth_path: Path, out: Path) -> Path:
    """The demo's stand-in for visual classification, derived from the simulation truth.

    Clusters are class 1; association members with at least three other members within
    0.2" are class 3 (a compact group); other stars are class 4.  Written as ECSV with RA/Dec
    so the cluster stage cross-matches it like a user's table.
    """
    truth = Table.read(truth_path)
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    classes = np.where(truth["kind"] == "cluster", 1, 4)
    members = truth["kind"] == "assoc_star"
    if members.any():
        m = coords[members]
        idx1, _, _, _ = m.search_around_sky(m, 0.2 * u.arcsec)
        counts = np.bincount(idx1, minlength=len(m)) - 1
        classes[np.flatnonzero(members)[counts >= 3]] = 3
    table = Table({"RA": truth["ra"], "DEC": truth["dec"], "class": classes})
    table.meta["comment"] = "demo stand-in for visual classes, from the simulation truth"
    path = out / "human_classes.ecsv"
    table.write(path, format="ascii.ecsv", overwrite=True)
    return path


#: Milky Way foreground E(B-V) (mag) the demo simulates and states in its configuration.
DEMO_EBV_MW = 0.05


def write_sim_config(
    out: Path,
    sim,
    *,
    target: str,
    field: str,
    ebv_mw: float,
    bands: tuple[str, ...] | None = None,
    human: Path | None = None,
    name: str = "run.toml",
    title: str = "a simulated field",
) -> Path:
    """Write the run configuration of a simulation (``simulate`` and ``demo``).

    It runs the simulated exposures as they are: the injected Milky Way E(B-V), simulated data
    (no survey DOI), one field or the simulated pointings and their mosaic, and the run folder
    ``out`` (``delivery/``, ``docs/`` and ``work/`` beside ``input/``).
    """
    pointings = dict(getattr(sim, "pointings", {}) or {})
    run: dict = {"target": target}
    if len(pointings) > 1:
        run["pointings"] = [
            {"field": f, "input": str(Path(folder).resolve())} for f, folder in pointings.items()
        ]
    else:
        run["field"] = field
        run["input"] = str(Path(sim.flc_dir).resolve())
    run |= {
        "reference_catalog": str(Path(sim.reference_catalog).resolve()),
        "output": ".",  # the run folder: delivery/, work/ and docs/ beside input/
        "version": "v1",
        "simulated": True,
        # Milky Way foreground E(B-V): the value the simulation injected
        "ebv_mw": float(ebv_mw),
        "ebv_mw_source": "phangs-products simulation (injected)",
        # simulated data: its own HLSP identity, no collection DOI
        "hlsp": {
            "name": f"phangs-products simulation: {title}",
            "lead": "phangs-products (simulated data)",
            "citation": SURVEY.citation,
        },
    }
    if bands:
        run["bands"] = list(bands)
    doc: dict = {"run": run}
    if human is not None:
        doc["stages"] = {"clusters": {"human_table": str(Path(human).resolve())}}
    # a TOML writer quotes and escapes the paths (a '"' or '\\' in the folder name is fine)
    text = f"# phangs-products: the run of {title}\n" + tomli_w.dumps(doc)
    path = out / name
    atomic_write_text(path, text, overwrite=True)
    return path


def _config_bands(sim_config: SimConfig) -> tuple[str, ...]:
    """The bands of a simulation as a configuration names them.

    A survey pointing's real layout names each band's instrument (``"ACS/WFC F555W"``).
    """
    if sim_config.layout:
        return tuple(
            f"{i} {f}" for i, f in zip(sim_config.instruments, sim_config.bands, strict=True)
        )
    return tuple(sim_config.bands)


def write_demo_config(out: Path, sim, field: str, sim_config: SimConfig | None = None) -> Path:
    """Write the TOML configuration of the demo run (with its stand-in human classes)."""
    sim_config = sim_config or SimConfig(field=field)
    return write_sim_config(
        out,
        sim,
        target=sim_config.target,
        field=field,
        ebv_mw=DEMO_EBV_MW,
        bands=_config_bands(sim_config) if sim_config.layout else None,
        human=write_human_classes(Path(sim.truth), out),
        name="demo.toml",
        title=f"the simulated {field} field of the demo",
    )


def run_demo(args: argparse.Namespace) -> int:
    """Simulate the default galaxy, run every stage, validate, write the docs."""
    console = Console()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    galaxy = getattr(args, "galaxy", None)
    sim_config = sim_config_for(galaxy, size=args.size, seed=args.seed, ebv_mw=DEMO_EBV_MW)
    layout = ", ".join(sorted(set(sim_config.instruments)))
    with console.status(f"simulating {sim_config.field} as {layout} FLC exposures ..."):
        sim = simulate(sim_config, out / "input", overwrite=False)
    console.print(f"simulated input: {out / 'input'}")
    config = load_config(write_demo_config(out, sim, sim_config.field, sim_config))
    return 0 if _run_one(config, console) else 1


# ------------------------------------------------------------------------------- simulate
def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products simulate``: the options of :class:`SimConfig` users set."""
    parser.add_argument("--out", type=Path, default=Path("simulation"), help="output folder")
    parser.add_argument("--target", default="ngc628", help="galaxy of the survey table")
    parser.add_argument("--field", default=None, help="field name (default <target>c)")
    parser.add_argument("--size", default="small", choices=tuple(SIZES))
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--galaxy",
        default=None,
        metavar="FIELD",
        help="a survey pointing (e.g. ngc628c): its galaxy and its real bands, instruments "
        "(WFC3/UVIS, ACS/WFC), exposure times and zero points (sets --target and --field)",
    )
    parser.add_argument(
        "--bands",
        default=None,
        help="comma-separated bands: filters or 'ACS/WFC F555W' (default "
        f"{','.join(BANDS)}, or the --galaxy pointing's)",
    )
    parser.add_argument("--noiseless", action="store_true", help="expected counts only")
    parser.add_argument("--no-arms", action="store_true", help="smooth disk without arms")
    parser.add_argument(
        "--psf-scale",
        type=float,
        default=1.0,
        help="factor on the instrument PSF's FWHM (default 1; e.g. 1.5 for a broader PSF)",
    )
    parser.add_argument(
        "--pointings",
        type=int,
        default=1,
        help="overlapping pointings, west to east (1-5; e.g. 2 for ngc628c + ngc628e)",
    )
    parser.add_argument(
        "--overlap", type=float, default=0.3, help="detector-width fraction pointings share"
    )
    parser.add_argument(
        "--ebv-mw",
        type=float,
        default=0.0,
        help="Milky Way foreground E(B-V) to inject, in mag (default 0)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing simulation")


def sim_config_from_args(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` of ``phangs-products simulate``'s options."""
    bands = tuple(b.strip() for b in (args.bands or "").split(",") if b.strip())
    where = {}
    if not args.galaxy:
        where = {"target": args.target, "field": args.field or f"{args.target}c"}
    return sim_config_for(
        args.galaxy,
        **where,
        seed=args.seed,
        size=args.size,
        bands=bands,
        noiseless=args.noiseless,
        spiral_arms=not args.no_arms,
        psf_scale=args.psf_scale,
        pointings=args.pointings,
        overlap=args.overlap,
        ebv_mw=args.ebv_mw,
    )


def simulate_from_args(args: argparse.Namespace) -> SimResult:
    """Run :func:`~phangs_products.pipeline.sim.simulate.simulate` from parsed options."""
    return simulate(sim_config_from_args(args), Path(args.out), overwrite=args.overwrite)


def run_simulate(args: argparse.Namespace) -> int:
    """``phangs-products simulate``: simulate, write its run configuration, say where."""
    sim_config = sim_config_from_args(args)
    result = simulate(sim_config, Path(args.out), overwrite=args.overwrite)
    config = write_sim_config(
        Path(args.out),
        result,
        target=sim_config.target,
        field=sim_config.field,
        ebv_mw=sim_config.ebv_mw,
        bands=_config_bands(sim_config),
        title=f"a simulated {sim_config.field} field (seed {sim_config.seed})",
    )
    # paths printed plainly: never wrapped, easy to pipe
    print(f"FLC files:          {result.flc_dir} ({len(result.flc_files)} exposures)")
    if len(result.pointings) > 1:
        for name, folder in result.pointings.items():
            print(f"  pointing {name}: {folder}")
    print(f"reference catalog:  {result.reference_catalog}")
    print(f"truth:              {result.truth}")
    print(f"run configuration:  {config}  (phangs-products run {config})")
    return 0


# ------------------------------------------------------------------------------- fetch
#: Environment variable naming the MAST download endpoint (tests and mirrors).
DOWNLOAD_URL_ENV = "PHANGS_PRODUCTS_MAST_DOWNLOAD_URL"


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products fetch``."""
    parser.add_argument("target", help="survey galaxy, e.g. ngc1087 or 'NGC 1087'")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--bands", default="", help="comma-separated filters (default: all of the galaxy's)"
    )
    parser.add_argument(
        "--radius",
        type=float,
        default=None,
        help="search radius in arcmin (default: half the field-of-view diagonal; "
        "required for mosaic galaxies)",
    )
    parser.add_argument(
        "--proposal-id",
        type=int,
        action="append",
        default=[],
        help="only exposures of this HST program (repeatable; default: every program, "
        "listed per program in the summary)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be downloaded, write nothing"
    )
    parser.add_argument(
        "--gaia",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the Gaia DR3 reference catalog (default: yes)",
    )
    parser.add_argument(
        "--ebv-mw",
        type=float,
        default=None,
        help="Milky Way foreground E(B-V) in mag for the configuration (without it the "
        "configuration asks for it and run stops until it is set)",
    )
    parser.add_argument("--ebv-mw-source", default="", help="where --ebv-mw comes from")
    parser.add_argument(
        "--hlsp-preset", default="phangs-hst", help="[run.hlsp] preset (default %(default)s)"
    )
    parser.add_argument(
        "--download-url",
        default=None,
        help=f"MAST download endpoint (default astroquery's; env {DOWNLOAD_URL_ENV})",
    )


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def run_fetch(args: argparse.Namespace) -> int:
    """``phangs-products fetch``: download a galaxy's data and write its run configuration."""
    import os
    from collections import Counter

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from phangs_products.pipeline.fetch.fetch import FetchRequest, fetch, plan

    console = Console()
    request = FetchRequest(
        target=args.target,
        out=Path(args.out).resolve(),
        filters=tuple(b for b in args.bands.split(",") if b.strip()),
        radius_arcmin=args.radius,
        proposal_ids=tuple(args.proposal_id),
        gaia=args.gaia,
        ebv_mw=args.ebv_mw,
        ebv_mw_source=args.ebv_mw_source,
        hlsp_preset=args.hlsp_preset,
        base_url=args.download_url or os.environ.get(DOWNLOAD_URL_ENV) or None,
    )
    with console.status("asking MAST for the exposures ..."):
        fplan = plan(request)
    missing = fplan.missing
    sizes = [p.size or 0 for p in missing]
    print(  # plain print: never wrapped, easy to read in a log
        f"{len(fplan.products)} FLC exposure(s) in {', '.join(b.filter for b in fplan.bands)} "
        f"({len(fplan.present)} already complete, {len(missing)} to download, "
        f"{_size_text(sum(sizes))})"
    )
    programs = Counter(p.proposal_id or "?" for p in fplan.products)
    print("  by program: " + ", ".join(f"{k} ({n})" for k, n in sorted(programs.items())))
    if args.dry_run:
        for p in fplan.products:
            state = "present" if p.filename in fplan.present else "download"
            size = _size_text(p.size) if p.size is not None else "size unknown"
            print(f"  {state:<8} {p.filename}  {p.instrument} {p.filter}  {size}")
        if request.gaia:
            print(f"  {'present' if fplan.gaia_path.is_file() else 'write':<8} {fplan.gaia_path}")
        print(f"  {'present' if fplan.config_path.exists() else 'write':<8} {fplan.config_path}")
        return 0
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn(f"{{task.fields[files]}}/{len(fplan.products)} files"),
        console=console,
        disable=not console.is_terminal,  # quiet in logs and pipes
    )
    counted = [0]

    def advance(outcome) -> None:
        counted[0] += 1
        progress.update(task, advance=outcome.product.size or 0, files=counted[0])

    with progress:
        total = sum(p.size or 0 for p in fplan.products)
        task = progress.add_task("FLC exposures", total=total, files=0)
        result = fetch(request, fplan, advance=advance)
    done = sum(o.status == "downloaded" for o in result.outcomes)
    kept = len(result.outcomes) - done
    print(f"FLC files:          {fplan.flc_dir} ({done} downloaded, {kept} kept)")
    if result.gaia is not None:
        print(f"reference catalog:  {result.gaia} ({result.gaia_status})")
    print(f"run configuration:  {result.config} ({result.config_status})")
    if result.config_status == "kept" and request.ebv_mw is not None:
        print("  (an existing configuration is never replaced: --ebv-mw not written into it)")
    if request.ebv_mw is None and result.config_status == "written":
        print("next: set ebv_mw (Milky Way foreground E(B-V)) in the configuration, then")
        print(f"      phangs-products run {result.config}")
    else:
        print(f"next: phangs-products run {result.config}")
    return 0


def add_upgrade_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products upgrade SRC DEST``."""
    from phangs_products.hlsp import PRESETS

    parser.add_argument("src", type=Path, help="folder of historical products (never written)")
    parser.add_argument("dest", type=Path, help="delivery root to write (one folder per field)")
    parser.add_argument(
        "--identity",
        required=True,
        choices=sorted(PRESETS),
        help="HLSP identity (name, lead, DOIs, citation) of the delivery",
    )
    parser.add_argument(
        "--set",
        dest="facts",
        action="append",
        default=[],
        metavar="[TARGET:]KEYWORD=VALUE",
        help="a keyword the historical files do not record (EBVMW, MWCORR, APCORR_V, SEDMODEL, "
        "REFBAND, POINTING ...), for every target or one; repeatable",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace products of DEST made from other sources or facts",
    )


def run_upgrade(args: argparse.Namespace) -> int:
    """``phangs-products upgrade``: historical products into a current delivery."""
    from phangs_products.hlsp import PRESETS
    from phangs_products.pipeline.upgrade import parse_fact, upgrade

    facts: dict[str, dict[str, str]] = {}
    for text in args.facts:
        target, keyword, value = parse_fact(text)
        facts.setdefault(target, {})[keyword] = value
    result = upgrade(
        args.src, args.dest, identity=PRESETS[args.identity], facts=facts, overwrite=args.overwrite
    )
    console = Console()
    console.print(
        f"upgraded into {len(result.fields)} field folder(s) of {escape(str(args.dest))}: "
        f"{len(result.written)} file(s) written, {len(result.unchanged)} up to date"
    )
    if result.unmapped:
        console.print(f"[yellow]{len(result.unmapped)} file(s) not upgraded[/yellow]:")
        for name, why in sorted(result.unmapped.items()):
            console.print(f"  {escape(name)}: {escape(why)}")
    console.print(f"report: {escape(str(result.report))}")
    return 0
