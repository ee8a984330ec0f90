"""Hostile inputs and runs: writes stay inside the run's folders, nothing hangs or is lost."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.table import Table
from factories import TEST_IDENTITY, tiny_flc
from rich.console import Console

import phangs_products as pp
from phangs_products.atomic import inside
from phangs_products.cli import main as cli_main
from phangs_products.errors import ProductError
from phangs_products.pipeline.associations.stage import AssociationStageConfig
from phangs_products.pipeline.cli import StageReporter, write_demo_config
from phangs_products.pipeline.clusters.stage import ClusterStageConfig
from phangs_products.pipeline.config import RunConfig, load_config, stage_config
from phangs_products.pipeline.graph import build_stages
from phangs_products.pipeline.imaging.exposures import (
    ImagingConfig,
    ImagingError,
    copy_inputs,
    group_exposures,
    read_exposure,
)
from phangs_products.pipeline.imaging.stage import imaging_stage
from phangs_products.pipeline.photometry.stage import PhotometryStageConfig
from phangs_products.pipeline.publish.publish import publish_stage
from phangs_products.pipeline.runner import RunLockedError, Stage, StageError, run_stages


def _run(tmp_path: Path, inp: Path) -> RunConfig:
    ref = tmp_path / "ref.txt"
    ref.write_text("# ra dec\n")
    return RunConfig(
        target="ngc628",
        field="ngc628c",
        input=inp,
        reference_catalog=ref,
        output=tmp_path / "out",
        work=tmp_path / "out" / ".work" / "ngc628c",
        ebv_mw=0.0,
        hlsp=TEST_IDENTITY,
    )


def _imaging(run: RunConfig):
    return [s for s in build_stages(run) if s.name == "imaging"]


# ------------------------------------------------------------------------------ path safety
@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/b", "..", ".", "", "a\\b", "a\0b"])
def test_inside_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(ProductError, match="refused file name"):
        inside(tmp_path, name)
    assert inside(tmp_path, "hlsp_x.fits") == tmp_path / "hlsp_x.fits"


def test_inside_refuses_a_symlink_that_leaves_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "link.fits").symlink_to(tmp_path / "elsewhere.fits")
    with pytest.raises(ProductError, match="link.fits"):
        inside(tmp_path / "sub", "link.fits")


@pytest.mark.parametrize("rootname", ["/elsewhere/x", "../../../elsewhere/x", "ib0000aaq/../x"])
def test_traversal_rootname_is_refused_with_one_line(tmp_path, rootname):
    inp = tmp_path / "in"
    inp.mkdir()
    bad = tiny_flc(inp / "ib0000aaq_flc.fits", rootname=rootname)
    with pytest.raises(ImagingError) as info:
        read_exposure(bad)
    message = str(info.value)
    assert message.startswith("ib0000aaq_flc.fits: HDU PRIMARY keyword ROOTNAME: ")
    assert "is not an HST rootname" in message and "\n" not in message
    # the imaging stage stops at once and writes nothing outside its folders
    run = _run(tmp_path, inp)
    with pytest.raises(StageError, match="ROOTNAME"):
        run_stages(run, _imaging(run))
    assert not (tmp_path / "elsewhere").exists() and not Path("/elsewhere").exists()
    assert not list(tmp_path.glob("**/x_flc.fits"))


def test_rootname_from_the_file_name_is_checked_too(tmp_path):
    bad = tiny_flc(tmp_path / "..x_flc.fits", rootname=None)
    with pytest.raises(ImagingError, match=r"no keyword ROOTNAME; file name: '..x'"):
        read_exposure(bad)
    good = tiny_flc(tmp_path / "ib0000abq_flc.fits", rootname=None)
    assert read_exposure(good).rootname == "ib0000abq"


def test_scratch_copies_stay_inside_the_scratch_folder(tmp_path):
    exp = read_exposure(tiny_flc(tmp_path / "ib0000aaq_flc.fits"))
    hostile = dataclasses.replace(exp, rootname="../../escaped")
    with pytest.raises(ProductError, match="refused file name"):
        copy_inputs([hostile], tmp_path / "scratch")
    assert not (tmp_path.parent / "escaped_flc.fits").exists()
    groups, errors = group_exposures([exp.path], ["F555W"])
    assert errors == [] and [e.rootname for e in groups["F555W"]] == ["ib0000aaq"]


# ------------------------------------------------------------------ hangs and silent losses
def _run_in_thread(func, fifo: Path, timeout: float = 60.0):
    """Run ``func``; a reader blocked on ``fifo`` is released (and the test fails) on timeout."""
    outcome: dict[str, object] = {}

    def target():
        try:
            outcome["value"] = func()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    started = time.perf_counter()
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # release the blocked open()
        os.close(fd)
        thread.join(10)
        pytest.fail(f"blocked on the FIFO {fifo.name} for {timeout} s")
    return outcome, time.perf_counter() - started


def test_fifo_in_the_input_folder_stops_the_run_at_once(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    tiny_flc(inp / "ib0000aaq_flc.fits")
    fifo = inp / "ib0000zzq_flc.fits"
    os.mkfifo(fifo)
    run = _run(tmp_path, inp)
    outcome, seconds = _run_in_thread(lambda: run_stages(run, _imaging(run)), fifo)
    error = outcome.get("error")
    assert isinstance(error, StageError), outcome
    assert "ib0000zzq_flc.fits: not a regular file (a FIFO, socket or device)" in str(error)
    assert "\n" not in str(error) and seconds < 30


def _damaged_inputs(folder: Path) -> list[str]:
    """An empty FLC and one with a bad NAXIS; returns their names."""
    (folder / "ib0000eeq_flc.fits").write_bytes(b"")
    raw = bytearray(tiny_flc(folder / "ib0000naq_flc.fits").read_bytes())
    at = raw.find(b"NAXIS1  =")
    raw[at : at + 30] = b"NAXIS1  =                   -4"
    (folder / "ib0000naq_flc.fits").write_bytes(bytes(raw))
    return ["ib0000eeq_flc.fits", "ib0000naq_flc.fits"]


def test_unreadable_inputs_stop_the_run_with_one_line(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    tiny_flc(inp / "ib0000aaq_flc.fits")
    names = _damaged_inputs(inp)
    run = _run(tmp_path, inp)
    with pytest.raises(StageError) as info:
        run_stages(run, _imaging(run))
    message = str(info.value)
    assert "2 input file(s) cannot be used: " in message and "\n" not in message
    assert f"{names[0]}: not a readable FITS file (Empty or corrupt FITS file)" in message
    assert f"{names[1]}: HDU 1: NAXISn -4 is not a length" in message
    assert "allow_missing_inputs = true in [stages.imaging]" in message
    # no drizzling happened: the stage stopped on reading the headers
    assert not (run.work / "imaging" / "scratch").exists()


def test_a_truncated_input_is_unreadable(tmp_path):
    path = tiny_flc(tmp_path / "ib0000aaq_flc.fits")
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(ImagingError, match=r"ib0000aaq_flc.fits: damaged FITS file \(File may"):
        read_exposure(path)


def test_files_of_bands_the_run_does_not_process_are_not_errors(tmp_path):
    f555w = tiny_flc(tmp_path / "ib0000aaq_flc.fits")
    f814w = tiny_flc(tmp_path / "ib0000abq_flc.fits", rootname="ib0000abq", filt="F814W")
    groups, errors = group_exposures([f555w, f814w], ["F555W"])
    assert errors == [] and list(groups) == ["F555W"]


def _toy_stages() -> list[Stage]:
    def reader(ctx):
        out = ctx.folder / "read.txt"
        kept = [p.name for p in sorted(ctx.run.input.iterdir()) if p.read_bytes()]
        for p in sorted(ctx.run.input.iterdir()):
            if not p.read_bytes():
                ctx.skip_input(f"{p.name}: empty file")
        out.write_text(" ".join(kept))
        return {"read": [out]}

    def reporter(ctx):
        out = ctx.folder / "note.txt"
        out.write_text("\n".join(ctx.upstream_skipped))
        return {"note": [out]}

    return [
        Stage("reader", reader, external_inputs=lambda run: sorted(run.input.iterdir())),
        Stage("reporter", reporter, depends=("reader",)),
    ]


def test_left_out_inputs_reach_the_manifest_results_and_later_stages(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text("1")
    (inp / "b.txt").write_text("")
    run = _run(tmp_path, inp)
    results = run_stages(run, _toy_stages())
    assert [r.skipped_inputs for r in results] == [["b.txt: empty file"], []]
    assert (run.work / "reporter" / "note.txt").read_text() == "b.txt: empty file"
    manifest = pp.open(run.work / "run-manifest.asdf", strict=True)
    assert manifest.tree["stages"]["reader"]["skipped_inputs"] == ["b.txt: empty file"]
    assert "skipped_inputs" not in manifest.tree["stages"]["reporter"]
    # an unchanged rerun still says what was left out
    again = run_stages(run, _toy_stages())
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert again[0].skipped_inputs == ["b.txt: empty file"]
    # the console: one line per stage, then one line naming what was left out and why
    console = Console(record=True, width=200)
    reporter = StageReporter(console, run.field)
    for result in again:
        reporter(result)
    console.print(reporter.left_out())
    text = console.export_text()
    assert "1 input(s) left out" in text
    assert "1 input file(s) left out (allow_missing_inputs): b.txt: empty file" in text


def test_readme_lists_left_out_inputs():
    from phangs_products.bands import galaxy
    from phangs_products.docs import render_readme

    common = dict(galaxy_=galaxy("ngc628"), field="ngc628c", version="v1", files=[], steps=[])
    plain = render_readme(**common)
    noted = render_readme(**common, skipped_inputs=["x_flc.fits: empty [file]"])
    assert "left out" not in plain
    assert "- `x_flc.fits`: empty [file]\n" in noted
    assert noted.replace(noted[noted.index("Input files left out") :], "") in plain


@pytest.mark.slow
def test_allowed_missing_inputs_are_reported_in_manifest_and_readme(sim_small, tmp_path):
    """With ``allow_missing_inputs`` the run finishes and names what it left out (drizzlepac)."""
    inp = tmp_path / "in"
    inp.mkdir()
    for path in sim_small.flc_files:
        if fits.getval(path, "FILTER") == "F555W":
            (inp / path.name).symlink_to(path)
    names = _damaged_inputs(inp)
    run = dataclasses.replace(
        _run(tmp_path, inp),
        reference_catalog=sim_small.reference_catalog,
        bands=("F555W",),
        simulated=True,
        stages={"imaging": {"allow_missing_inputs": True}},
    )
    imaging = stage_config(ImagingConfig, run.stages["imaging"], "imaging")
    stages = [
        Stage("imaging", imaging_stage, config=imaging),
        Stage(
            "publish",
            publish_stage,
            depends=("imaging",),
            config={"stage_configs": {"imaging": imaging}},
        ),
    ]
    results = run_stages(run, stages)
    left_out = results[0].skipped_inputs
    assert [line.split(":")[0] for line in left_out] == names
    manifest = pp.open(run.work / "run-manifest.asdf", strict=True)
    assert manifest.tree["stages"]["imaging"]["skipped_inputs"] == left_out
    (readme,) = (run.output / run.field).glob("hlsp_*_readme.md")
    text = readme.read_text()
    assert "Input files left out (the run allowed missing inputs)" in text
    assert all(f"- `{name}`: " in text for name in names)


# ------------------------------------------------------------------- concurrent runs, resume
SECOND_RUN = """
import sys, time
from pathlib import Path
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.runner import Stage, run_stages

tmp = Path(sys.argv[1])

def slow(ctx):
    (tmp / "started").write_text("")
    for _ in range(600):
        if (tmp / "release").exists():
            break
        time.sleep(0.1)
    out = ctx.folder / "slow.txt"
    out.write_text("done")
    return {"slow": [out]}

run = RunConfig(
    target="ngc628", field="ngc628c", input=tmp / "in", reference_catalog=tmp / "ref.txt",
    output=tmp / "out", work=tmp / "out" / ".work" / "ngc628c",
)
run_stages(run, [Stage("slow", slow)])
"""


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.05)


def test_a_second_run_into_the_same_folder_stops_at_once(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    run = _run(tmp_path, inp)
    (tmp_path / "second_run.py").write_text(SECOND_RUN)
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import second_run"
    first = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(tmp_path / "started", first)
        lock = run.work / "run.lock"
        holder = json.loads(lock.read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        started = time.perf_counter()
        with pytest.raises(RunLockedError) as info:
            run_stages(run, _toy_stages())
        assert time.perf_counter() - started < 2.0
        message = str(info.value)
        assert f"another run is using this folder (pid {first.pid} on " in message
        assert "\n" not in message
        assert not (run.work / "reader").exists()  # the second run touched nothing
    finally:
        (tmp_path / "release").write_text("")
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert not lock.exists()  # released at the end of the first run
    assert [r.status for r in run_stages(run, _toy_stages())] == ["done", "done"]
    assert not lock.exists()


def test_a_stale_lock_is_taken_over_and_a_failed_run_releases_its_lock(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text("1")
    run = _run(tmp_path, inp)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    run.work.mkdir(parents=True)
    lock = run.work / "run.lock"
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))
    assert [r.status for r in run_stages(run, _toy_stages())] == ["done", "done"]
    assert not lock.exists()

    def crash(ctx):
        raise RuntimeError("simulated crash")

    with pytest.raises(StageError, match="simulated crash"):
        run_stages(run, [Stage("crash", crash)])
    assert not lock.exists()
    # a lock of another host is never taken over
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(RunLockedError, match=r"pid 1 on elsewhere.example"):
        run_stages(run, _toy_stages())
    assert lock.exists()


def test_resume_removes_temporary_files_of_a_killed_write(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text("1")
    run = _run(tmp_path, inp)
    run_stages(run, _toy_stages())
    delivery = run.output / run.field
    delivery.mkdir(parents=True)
    strays = [
        delivery / ".hlsp_x_v1_drc-sci.fits.k2j4h.part",
        run.work / "reader" / ".read.txt.abc123.part",
    ]
    for stray in strays:
        stray.write_bytes(b"half")
    keep = delivery / ".notes"
    keep.write_text("not a temporary file of ours")
    results = run_stages(run, _toy_stages())
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert not any(p.exists() for p in strays) and keep.exists()


# ----------------------------------------------------------------------------------- config
GOOD_RUN = (
    '[run]\ntarget = "ngc628"\ninput = "flc"\nreference_catalog = "ref.txt"\nebv_mw = 0.0\n'
    'hlsp = { name = "test delivery", lead = "test lead" }\n'
)


def _config_folder(tmp_path: Path) -> Path:
    (tmp_path / "flc").mkdir()
    (tmp_path / "ref.txt").write_text("# ra dec\n")
    return tmp_path


def _one_line_error(path: Path, capsys) -> str:
    code = cli_main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_config_files_are_one_line_errors(tmp_path, capsys):
    folder = _config_folder(tmp_path)
    latin1 = folder / "latin1.toml"
    latin1.write_bytes((GOOD_RUN + 'output = "d\xe9livery"\n').encode("latin-1"))
    assert "latin1.toml: not UTF-8 text (byte " in _one_line_error(latin1, capsys)
    as_folder = folder / "config.toml"
    as_folder.mkdir()
    assert "config.toml: a folder, not a configuration file" in _one_line_error(as_folder, capsys)
    fifo = folder / "fifo.toml"
    os.mkfifo(fifo)
    assert "fifo.toml: not a regular file" in _one_line_error(fifo, capsys)
    (folder / "taken").write_text("a file")
    for output, message in (
        ("taken", "run.output: {} is a file, not a folder"),
        ("taken/delivery", "run.output: {} is inside"),
    ):
        cfg = folder / "output.toml"
        cfg.write_text(GOOD_RUN + f'output = "{output}"\n')
        expected = message.format(folder / output)
        assert expected in _one_line_error(cfg, capsys)


@pytest.mark.parametrize(
    ("table", "option", "expected"),
    [
        ("photometry.photometry", 'fwhm = "wide"', "fwhm: expected a number > 0, got 'wide'"),
        ("photometry.photometry", "fwhm = -3", "fwhm: expected a number > 0, got -3"),
        ("photometry.photometry", "fwhm = 0", "fwhm: expected a number > 0, got 0"),
        ("photometry.photometry", "radii = [1, -2]", "radii: expected every value > 0"),
        ("photometry.photometry", "annulus = [7.0]", "annulus: expected a list of 2 numbers"),
        ("imaging", "final_pixfrac = 1.5", "final_pixfrac: expected a number > 0 and <= 1"),
        ("imaging", 'allow_missing_inputs = "yes"', "allow_missing_inputs: expected true or"),
        ("imaging", "minobj = 2.5", "minobj: expected an integer >= 1, got 2.5"),
        ("imaging", "pixscale = nan", "pixscale: expected a number > 0, got nan"),
        ("clusters.sed", 'age_prior = "flat"', "age_prior: expected one of 'log_uniform'"),
        ("associations.associations", "scales = [8, 0]", "scales: expected every value > 0"),
        ("photometry", "photometry = 3", "photometry: expected a table of options, got 3"),
    ],
)
def test_stage_options_are_checked_before_any_stage_runs(tmp_path, capsys, table, option, expected):
    folder = _config_folder(tmp_path)
    cfg = folder / "run.toml"
    cfg.write_text(GOOD_RUN + f'output = "delivery"\n[stages.{table}]\n{option}\n')
    started = time.perf_counter()
    err = _one_line_error(cfg, capsys)
    assert f"[stages.{table}] {expected}" in err
    assert time.perf_counter() - started < 10 and not (folder / "delivery").exists()


def test_a_fifo_or_missing_human_table_is_one_line_before_any_stage_runs(tmp_path, capsys):
    folder = _config_folder(tmp_path)
    fifo = folder / "classes.csv"
    os.mkfifo(fifo)
    cfg = folder / "run.toml"
    for table, what in ((fifo, "not a regular file (a FIFO)"), (folder / "absent.csv", "no such")):
        cfg.write_text(
            GOOD_RUN + f'output = "delivery"\n[stages.clusters]\nhuman_table = "{table}"\n'
        )
        started = time.perf_counter()
        err = _one_line_error(cfg, capsys)
        assert "[stages.clusters] human_table: expected a readable regular file" in err, err
        assert what in err, err
        assert time.perf_counter() - started < 10 and not (folder / "delivery").exists()


def test_stage_options_keep_every_default_and_convert_toml_values():
    def plain(value):
        if dataclasses.is_dataclass(value):
            fields = dataclasses.fields(value)
            return {
                f.name: plain(getattr(value, f.name))
                for f in fields
                if getattr(value, f.name) is not None
            }
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    for cls in (ImagingConfig, PhotometryStageConfig, ClusterStageConfig, AssociationStageConfig):
        assert stage_config(cls, plain(cls()), "x") == cls()
    config = stage_config(PhotometryStageConfig, {"photometry": {"fwhm": 3, "radii": [1, 2]}}, "p")
    assert config.photometry.fwhm == 3.0 and isinstance(config.photometry.fwhm, float)
    assert config.photometry.radii == (1.0, 2.0)


def test_demo_config_quotes_paths(tmp_path):
    out = tmp_path / 'we"ird \\ name'
    out.mkdir()
    flc = out / "input" / "flc"
    flc.mkdir(parents=True)
    ref = out / "input" / "ref.txt"
    ref.write_text("# ra dec\n")
    truth = out / "input" / "truth.ecsv"
    Table({"ra": [24.17], "dec": [15.78], "kind": ["cluster"]}).write(truth)
    sim = types.SimpleNamespace(flc_dir=flc, reference_catalog=ref, truth=truth)
    config = load_config(write_demo_config(out, sim, "ngc628c"))
    assert config.input == flc.resolve() and config.reference_catalog == ref.resolve()
    assert config.output == (out / "delivery").resolve() and config.docs == out.resolve() / "docs"
    assert config.stages["clusters"]["human_table"] == str((out / "human_classes.ecsv").resolve())
