"""The pipeline's command lines: ``phangs-products simulate``, ``run`` and ``demo``.

``simulate`` writes a simulated galaxy field as FLC files plus truth
(:mod:`phangs_products.pipeline.sim`); ``run`` runs the stage graph
(:mod:`phangs_products.pipeline.graph`) of one or several TOML configurations; ``demo`` does both
for the embedded default galaxy, then validates and documents the delivery.  The stage graph is
imported when a run starts, so ``phangs-products --help`` and ``info`` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import tomli_w
from astropy.coordinates import SkyCoord
from astropy.table import Table
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import field_target
from phangs_products.naming import sanitize_target
from phangs_products.pipeline.config import RunConfig, load_config
from phangs_products.pipeline.runner import StageError, StageResult
from phangs_products.pipeline.sim.config import BANDS, SIZES, SimConfig
from phangs_products.pipeline.sim.simulate import SimResult, simulate

__all__ = [
    "add_demo_arguments",
    "add_run_arguments",
    "add_simulate_arguments",
    "run_demo",
    "run_run",
    "run_simulate",
    "simulate_from_args",
]

log = logging.getLogger(__name__)


class StageReporter:
    """Console lines per stage (a spinner while one runs) and a summary table at the end."""

    def __init__(self, console: Console, field: str):
        self.console = console
        self.field = field
        self.results: list[StageResult] = []
        self.status = None

    def __call__(self, result: StageResult) -> None:
        if result.status == "running":
            self.status = self.console.status(f"[bold]{self.field}[/]: {result.name} ...")
            self.status.start()
            return
        if self.status is not None:
            self.status.stop()
            self.status = None
        self.results.append(result)
        style = {"done": "green", "skipped": "cyan", "failed": "red"}[result.status]
        files = sum(len(v) for v in result.outputs.values())
        self.console.print(
            f"  [{style}]{result.status:>7}[/] {result.name:<13} {result.seconds:7.1f} s"
            + (f"  {files} file(s)" if files else "")
            + (f"  [red]{escape(result.error)}[/]" if result.error else "")
            + (
                f"  [yellow]{len(result.skipped_inputs)} input(s) left out[/]"
                if result.skipped_inputs
                else ""
            )
        )

    def summary(self) -> RichTable:
        """Summary table of the run."""
        table = RichTable(title=f"{self.field}: stages")
        for col in ("stage", "status", "seconds", "outputs"):
            table.add_column(col)
        for r in self.results:
            table.add_row(
                r.name, r.status, f"{r.seconds:.1f}", str(sum(len(v) for v in r.outputs.values()))
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


def _run_one(config: RunConfig, console: Console) -> bool:
    from phangs_products.pipeline.graph import run_galaxy

    reporter = StageReporter(console, config.field)
    console.print(f"[bold]{config.field}[/] ({config.galaxy.name}) -> {config.output}")
    t0 = time.perf_counter()
    try:
        run_galaxy(config, report=reporter)
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
    return True


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products run``."""
    parser.add_argument("config", nargs="+", help="TOML run configuration(s), one per field")
    parser.add_argument(
        "--scheduler",
        default="local",
        help="with several configs: 'local' (Dask LocalCluster), 'sync', or a "
        "scheduler address tcp://host:port",
    )
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")


def run_run(args: argparse.Namespace) -> int:
    """Run the pipeline for each configuration."""
    from phangs_products.pipeline.graph import build_stages

    console = Console()
    configs = [load_config(p) for p in args.config]
    for config in configs:  # every stage option checked before any stage runs
        build_stages(config)
    if len(configs) == 1:
        return 0 if _run_one(configs[0], console) else 1
    from phangs_products.pipeline.scaleout import run_many

    def show(outcome):
        state = "[green]ok[/]" if outcome.ok else f"[red]failed[/] {outcome.error}"
        console.print(f"  {outcome.field}: {state}")

    outcomes = run_many(configs, scheduler=args.scheduler, n_workers=args.workers, progress=show)
    return 0 if all(o.ok for o in outcomes) else 1


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


def write_demo_config(out: Path, sim, field: str, sim_config: SimConfig | None = None) -> Path:
    """Write the TOML configuration of the demo run.

    A simulation of a pointing's real layout lists its bands with their instruments
    (``"ACS/WFC F555W"``), as a configuration for such a field should.
    """
    human = write_human_classes(Path(sim.truth), out)
    sim_config = sim_config or SimConfig(field=field)
    doc = {
        "run": {
            "target": sim_config.target,
            "field": field,
            "input": str(Path(sim.flc_dir).resolve()),
            "reference_catalog": str(Path(sim.reference_catalog).resolve()),
            "output": "delivery",
            "version": "v1",
            "simulated": True,
            # Milky Way foreground E(B-V): the value the simulation injected
            "ebv_mw": DEMO_EBV_MW,
            "ebv_mw_source": "phangs-products demo simulation (injected)",
            # simulated data: its own HLSP identity, no collection DOI
            "hlsp": {
                "name": "phangs-products demo: a simulated PHANGS-HST-like field",
                "lead": "phangs-products demo (simulated data)",
                "citation": "10.3847/1538-4365/ac1fe5",
            },
        },
        "stages": {"clusters": {"human_table": str(human.resolve())}},
    }
    if sim_config.layout:
        doc["run"]["bands"] = [
            f"{i} {f}" for i, f in zip(sim_config.instruments, sim_config.bands, strict=True)
        ]
    # a TOML writer quotes and escapes the paths (a '"' or '\\' in the folder name is fine)
    text = f"# phangs-products demo: the simulated {sim_config.field} field\n" + tomli_w.dumps(doc)
    path = out / "demo.toml"
    atomic_write_text(path, text, overwrite=True)
    return path


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
    ok = _run_one(config, console)
    field_dir = config.output / config.field
    readme = next(iter(sorted(field_dir.glob("hlsp_*_readme.md"))), None)
    index = config.output / "html" / "index.html"
    if readme:
        console.print(f"README:     {readme}")
    if index.exists():
        console.print(f"HTML index: {index}")
    return 0 if ok else 1


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
    parser.add_argument("--overwrite", action="store_true", help="replace an existing simulation")


def simulate_from_args(args: argparse.Namespace) -> SimResult:
    """Run :func:`~phangs_products.pipeline.sim.simulate.simulate` from parsed options."""
    bands = tuple(b.strip() for b in (args.bands or "").split(",") if b.strip())
    where = {}
    if not args.galaxy:
        where = {"target": args.target, "field": args.field or f"{args.target}c"}
    config = sim_config_for(
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
    )
    return simulate(config, Path(args.out), overwrite=args.overwrite)


def run_simulate(args: argparse.Namespace) -> int:
    """``phangs-products simulate``: simulate and print where the files are."""
    result = simulate_from_args(args)  # paths printed plainly: never wrapped, easy to pipe
    print(f"FLC files:          {result.flc_dir} ({len(result.flc_files)} exposures)")
    if len(result.pointings) > 1:
        for name, folder in result.pointings.items():
            print(f"  pointing {name}: {folder}")
    print(f"reference catalog:  {result.reference_catalog}")
    print(f"truth:              {result.truth}")
    return 0
