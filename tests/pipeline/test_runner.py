"""The orchestrator: stage graph, skipping unchanged stages, resuming after a failure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import phangs_products as pp
from phangs_products.pipeline.code import code_digest, code_files, module_closure, tree_digest
from phangs_products.pipeline.config import ConfigError, RunConfig, load_config, stage_config
from phangs_products.pipeline.runner import (
    Stage,
    StageError,
    run_stages,
    stage_key,
)


@dataclass(frozen=True)
class ToyConfig:
    factor: int = 2


CALLS: list[str] = []


def first(ctx):
    CALLS.append("first")
    values = [int(x) for x in (ctx.run.input / "numbers.txt").read_text().split()]
    out = ctx.folder / "doubled.txt"
    out.write_text(" ".join(str(v * ctx.config.factor) for v in values))
    return {"doubled": [out]}


def second(ctx):
    CALLS.append("second")
    (src,) = ctx.inputs["first"]["doubled"]
    if (ctx.run.input / "fail").exists():
        (ctx.folder / "partial.txt").write_text("half")
        raise RuntimeError("simulated crash")
    out = ctx.folder / "sum.txt"
    out.write_text(str(sum(int(x) for x in src.read_text().split())))
    return {"sum": [out]}


def make_run(tmp_path: Path) -> RunConfig:
    inp = tmp_path / "in"
    inp.mkdir(exist_ok=True)
    (inp / "numbers.txt").write_text("1 2 3")
    ref = tmp_path / "ref.txt"
    ref.write_text("# ra dec\n")
    return RunConfig(
        target="ngc628",
        field="ngc628c",
        input=inp,
        reference_catalog=ref,
        output=tmp_path / "out",
        work=tmp_path / "work",
    )


def stages(factor: int = 2) -> list[Stage]:
    return [
        Stage(
            "first",
            first,
            config=ToyConfig(factor),
            external_inputs=lambda run: [run.input / "numbers.txt"],
        ),
        Stage("second", second, depends=("first",), config=ToyConfig()),
    ]


def test_runs_then_skips_unchanged_stages(tmp_path):
    run = make_run(tmp_path)
    CALLS.clear()
    results = run_stages(run, stages())
    assert [r.status for r in results] == ["done", "done"]
    assert (run.work / "second" / "sum.txt").read_text() == "12"
    CALLS.clear()
    results = run_stages(run, stages())
    assert [r.status for r in results] == ["skipped", "skipped"] and CALLS == []
    manifest = pp.open(run.work / "run-manifest.asdf", strict=True)
    assert manifest.tree["stages"]["first"]["status"] == "done"


def test_config_or_input_change_reruns_downstream(tmp_path):
    run = make_run(tmp_path)
    run_stages(run, stages())
    CALLS.clear()
    run_stages(run, stages(factor=3))
    assert CALLS == ["first", "second"]
    assert (run.work / "second" / "sum.txt").read_text() == "18"
    (run.input / "numbers.txt").write_text("1 2 3 4")
    CALLS.clear()
    run_stages(run, stages(factor=3))
    assert CALLS == ["first", "second"]


def test_stage_keys_follow_the_code(tmp_path):
    """The code digest (the stage's code, schemas, templates, data, tool versions) is in the key."""
    run = make_run(tmp_path)
    stage = stages()[0]
    assert stage_key(stage, run, {}) == stage_key(stage, run, {}, code=code_digest(stage.func))
    assert stage_key(stage, run, {}, code="a") != stage_key(stage, run, {}, code="b")
    # the digest reads file contents: an edited source gives another digest
    src = tmp_path / "module.py"
    src.write_text("x = 1\n")
    before = tree_digest([src, run.input / "numbers.txt"])
    src.write_text("x = 2\n")
    assert tree_digest([src, run.input / "numbers.txt"]) != before
    assert len(code_digest(stage.func)) == 64


def test_stage_code_covers_schemas_templates_and_imports_not_the_simulator(tmp_path):
    """Each stage's key covers what its products depend on, and nothing that makes none.

    Editing a schema changes every stage's key, a template the publish and docs stages', a
    stage's own algorithm module its key; editing the simulator or the CLI changes none.
    """
    from importlib import resources

    from phangs_products.pipeline.graph import build_stages

    schemas = {p for p in Path(str(resources.files("phangs_products.schemas"))).rglob("*.yaml")}
    templates = set(Path(str(resources.files("phangs_products.templates"))).glob("*.j2"))
    run = make_run(tmp_path)
    by_name = {str(s.name): set(code_files(s.func)) for s in build_stages(run)}
    for name, files in by_name.items():
        assert schemas <= files, name
        assert not any("/sim/" in str(f) or f.name == "cli.py" for f in files), name
        assert (templates <= files) == (name in ("publish", "docs")), name
    clusters = {f.as_posix() for f in by_name["clusters"]}
    for module in ("clusters/selection.py", "clusters/classify.py", "stellarpops/sed.py"):
        assert any(f.endswith(f"pipeline/{module}") for f in clusters), module
    assert "phangs_products.naming" in module_closure("phangs_products.pipeline.imaging.stage")
    assert "phangs_products.pipeline.photometry.stage" not in module_closure(
        "phangs_products.pipeline.clusters.stage"
    )


def test_failed_stage_keeps_earlier_products_and_resumes(tmp_path):
    run = make_run(tmp_path)
    (run.input / "fail").write_text("")
    CALLS.clear()
    with pytest.raises(StageError, match="stage second failed: RuntimeError: simulated crash"):
        run_stages(run, stages())
    manifest = pp.open(run.work / "run-manifest.asdf", strict=True)
    assert manifest.tree["stages"]["second"]["status"] == "failed"
    assert (run.work / "first" / "doubled.txt").exists()
    (run.input / "fail").unlink()
    CALLS.clear()
    results = run_stages(run, stages())
    assert [r.status for r in results] == ["skipped", "done"] and CALLS == ["second"]
    assert not (run.work / "second" / "partial.txt").exists()  # half-written output cleared


def test_stage_log_file_is_written(tmp_path):
    run = make_run(tmp_path)
    run_stages(run, stages())
    assert "stage first finished" in (run.work / "logs" / "first.log").read_text()


def test_toml_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "run.toml"
    bad.write_text('[run]\ntarget = "ngc628"\ninput = "x"\n')
    with pytest.raises(
        ConfigError,
        match=r"run.toml: run-config-1.3.0: run: "
        r"'reference_catalog' is a required property",
    ):
        load_config(bad)
    bad.write_text(
        '[run]\ntarget = "ngc9999"\ninput = "."\nreference_catalog = "run.toml"\noutput = "o"\n'
    )
    with pytest.raises(ConfigError, match="run.target: galaxy 'ngc9999' is not in the PHANGS"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"stages.toy: unknown option\(s\) \['fctor'\]"):
        stage_config(ToyConfig, {"fctor": 3}, "toy")


def test_toml_config_loads(tmp_path):
    (tmp_path / "flc").mkdir()
    (tmp_path / "ref.txt").write_text("#\n")
    path = tmp_path / "run.toml"
    path.write_text(
        '[run]\ntarget = "NGC 628"\nfield = "ngc628c"\ninput = "flc"\n'
        'reference_catalog = "ref.txt"\noutput = "delivery"\nbands = ["F555W"]\n'
        'ebv_mw = 0\n[run.hlsp]\npreset = "phangs-hst"\n'
        "[stages.photometry]\nfwhm_px = 2.5\n"
    )
    config = load_config(path)
    assert config.target == "ngc628" and config.bands == ("F555W",)
    assert config.work == (tmp_path / "delivery" / "work" / "ngc628c").resolve()
    assert config.stages["photometry"] == {"fwhm_px": 2.5}


def test_stage_progress_reaches_a_terminal_and_stays_out_of_logs(tmp_path):
    """ctx.progress() feeds a bar on a terminal; a non-terminal console prints only results."""
    import io

    from rich.console import Console

    from phangs_products.pipeline.cli import StageReporter
    from phangs_products.pipeline.runner import StageResult

    events = [
        StageResult("imaging", "running", 0.0),
        StageResult("imaging", "progress", 1.0, step="F275W aligned and drizzled", done=1, total=5),
        StageResult("imaging", "progress", 2.0, step="F336W aligned and drizzled", done=2, total=5),
        StageResult("imaging", "done", 3.0),
    ]
    piped = io.StringIO()
    reporter = StageReporter(Console(file=piped, force_terminal=False, width=120), "ngc628c")
    for event in events:
        reporter(event)
    assert piped.getvalue().split() == ["done", "imaging", "3.0", "s"]
    tty = io.StringIO()
    reporter = StageReporter(Console(file=tty, force_terminal=True, width=120), "ngc628c")
    for event in events[:3]:
        reporter(event)
    assert reporter.bar is not None
    task = reporter.bar.tasks[0]
    assert (task.completed, task.total) == (2, 5) and "F336W" in task.description
    reporter(events[3])
    assert reporter.bar is None and "imaging" in tty.getvalue()


def test_stages_of_pointings_side_by_side_get_a_bar_each_and_a_grouped_summary():
    """Two fields' stages run at once: one bar per running stage; the summary by field."""
    import io

    from rich.console import Console

    from phangs_products.pipeline.cli import StageReporter
    from phangs_products.pipeline.runner import StageResult

    tty = io.StringIO()
    console = Console(file=tty, force_terminal=True, width=120)
    reporter = StageReporter(console, "ngc628mosaic", fields=("ngc628c", "ngc628e", "ngc628mosaic"))
    reporter(StageResult("ngc628c/imaging", "running", 0.0))
    reporter(StageResult("ngc628e/imaging", "running", 0.0))
    reporter(StageResult("ngc628e/imaging", "progress", 1.0, step="F555W", done=1, total=2))
    assert reporter.bar is not None and len(reporter.bar.tasks) == 2
    reporter(StageResult("ngc628e/imaging", "done", 2.0))
    assert reporter.bar is not None and len(reporter.bar.tasks) == 1  # ngc628c still runs
    for name in ("ngc628c/imaging", "ngc628e/photometry", "ngc628c/photometry"):
        reporter(StageResult(name, "done", 3.0))
    assert reporter.bar is None
    piped = io.StringIO()
    Console(file=piped, width=120).print(reporter.summary())
    rows = [line.split()[1] for line in piped.getvalue().splitlines() if "/" in line]
    assert rows == [  # in the run's order of fields, each field's stages in the order run
        "ngc628c/imaging",
        "ngc628c/photometry",
        "ngc628e/imaging",
        "ngc628e/photometry",
    ]


def _hold_memory(n_bytes: int, seconds: float) -> None:
    """Touch ``n_bytes`` of memory and keep them for ``seconds`` (a worker process's job)."""
    import time

    block = b"x" * n_bytes
    time.sleep(seconds)
    assert len(block) == n_bytes


def greedy(ctx):
    """A stage whose worker process holds 400 MB for a second."""
    import multiprocessing

    worker = multiprocessing.get_context("spawn").Process(
        target=_hold_memory, args=(400_000_000, 1.0)
    )
    worker.start()
    worker.join()
    out = ctx.folder / "done.txt"
    out.write_text(str(worker.exitcode))
    return {"done": [out]}


def test_peak_memory_of_a_stage_counts_its_worker_processes(tmp_path):
    """The stage's peak resident memory includes its children and lands in the manifest."""
    run = make_run(tmp_path)
    (result,) = run_stages(run, [Stage("greedy", greedy, config=ToyConfig())])
    assert result.status == "done" and result.peak_mb >= 400
    manifest = pp.open(run.work / "run-manifest.asdf", strict=True)
    assert manifest.schema.id == "run-manifest-1.1.0"
    recorded = manifest.tree["stages"]["greedy"]["peak_rss_mb"]
    assert recorded == pytest.approx(result.peak_mb, abs=0.1)


def _burn_cpu(seconds: float) -> None:
    """Spin until this process has used ``seconds`` of CPU time (a worker process's job)."""
    import time

    while time.process_time() < seconds:
        sum(range(10_000))


def busy(ctx):
    """A stage whose two worker processes each use 1.5 CPU seconds side by side."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_burn_cpu, args=(1.5,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out = ctx.folder / "done.txt"
    out.write_text(" ".join(str(w.exitcode) for w in workers))
    return {"done": [out]}


def test_cpu_time_of_a_stage_counts_its_worker_processes(tmp_path):
    """CPU seconds of the stage's children are counted (getrusage would miss a live parent's)."""
    run = make_run(tmp_path)
    (result,) = run_stages(run, [Stage("busy", busy, config=ToyConfig())])
    # 3 s of worker CPU time, less at most one 0.2 s sampling interval per worker
    assert result.status == "done" and 2.5 <= result.cpu_seconds
    assert result.cores == pytest.approx(result.cpu_seconds / result.seconds)


def test_worker_counts_are_not_part_of_the_stage_key(tmp_path):
    """Options marked in_key=False (how a stage runs) leave the key alone; the others change it."""
    from phangs_products.pipeline.imaging.exposures import ImagingConfig
    from phangs_products.pipeline.photometry.config import PhotometryConfig

    run = make_run(tmp_path)

    def key(config) -> str:
        return stage_key(Stage("s", first, config=config), run, {}, code="c")

    assert key(ImagingConfig(workers=1)) == key(ImagingConfig(workers=2))
    assert key(PhotometryConfig(workers=1, parallel_min_sources=5)) == key(PhotometryConfig())
    assert key(ImagingConfig(max_sources=10)) != key(ImagingConfig())
    assert key({"imaging": ImagingConfig(workers=3)}) == key({"imaging": ImagingConfig()})
