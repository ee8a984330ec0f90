"""`run --scheduler ADDRESS` on real `dask scheduler` and `dask worker` processes.

The test starts a scheduler and two workers (nanny + one single-threaded worker process each)
with the venv's `dask` command, as a cluster runs them, and sends the small simulated field to
them: the products equal those of the run in this process; a worker killed (SIGKILL) in the
middle of the field makes the scheduler give the field to another worker, which takes over the
work folder and resumes from the stages the dead one finished.  Two bands keep each run short.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from factories import assert_same_deliveries, manifest_stages

from phangs_products.cli import main
from phangs_products.pipeline.cli import write_sim_config
from phangs_products.pipeline.config import load_config
from phangs_products.pipeline.graph import run_galaxy
from phangs_products.pipeline.runner import RunLock, RunLockedError
from phangs_products.pipeline.scaleout import dask_lock_owner
from phangs_products.validation import validate_delivery

#: one xdist worker runs them all: they share the module's Dask processes and sequential run
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask-cluster")]

#: Two bands: the reference band and one more, drizzled onto its grid.
BANDS = ("F438W", "F555W")
FIELD = "ngc628c"


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a process of the `dask` command."""

    address: str
    nannies: list[subprocess.Popen]
    logs: Path

    def log_text(self) -> str:
        """What the scheduler and workers logged."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def worker_pids(self) -> set[int]:
        """Pids of the worker processes (children of the nannies)."""
        return {c.pid for n in self.nannies for c in psutil.Process(n.pid).children(recursive=True)}


#: The test modules, importable by the scheduler and workers (they run ``_take_lock``).
TESTS_PATH = os.pathsep.join(str(p) for p in (Path(__file__).parent, Path(__file__).parents[1]))


def _start(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": TESTS_PATH, **env}
    with log.open("w") as fh:
        return subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env)


@contextlib.contextmanager
def _dask_processes(
    folder: Path, workers: dict[str, list[str]], **scheduler_env: str
) -> Iterator[DaskCluster]:
    """A `dask scheduler` and one `dask worker` (one thread) per name of ``workers``.

    ``workers`` maps each worker's name to the command that wraps it ([] for none);
    ``scheduler_env`` are environment variables of the scheduler (Dask settings).
    """
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    file = folder / "scheduler.json"
    options = ["--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
    scheduler = _start(
        [dask, "scheduler", "--scheduler-file", str(file), *options],
        folder / "scheduler.log",
        **scheduler_env,
    )
    processes = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert scheduler.poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        nannies = []
        for name, wrapper in workers.items():
            command = [dask, "worker", "--scheduler-file", str(file), "--nthreads", "1"]
            command += ["--name", name, "--no-dashboard", "--local-directory", str(folder / name)]
            nannies.append(_start([*wrapper, *command], folder / f"{name}.log"))
        processes += nannies
        with Client(scheduler_file=str(file)) as client:
            client.wait_for_workers(len(workers), timeout=120)
            address = client.scheduler.address
        yield DaskCluster(address, nannies, folder)
    finally:
        for process in reversed(processes):  # only the processes started here
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory) -> Iterator[DaskCluster]:
    """A scheduler and two workers."""
    with _dask_processes(tmp_path_factory.mktemp("dask"), {"w1": [], "w2": []}) as cluster:
        yield cluster


def _config(sim, folder: Path) -> Path:
    """The two-band run of the simulated field in its own run folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_sim_config(folder, sim, target="ngc628", field=FIELD, ebv_mw=0.0, bands=BANDS)


@pytest.fixture(scope="module")
def sequential(sim_small, tmp_path_factory) -> Path:
    """The field's delivery from a run in this process."""
    folder = tmp_path_factory.mktemp("sequential")
    run_galaxy(load_config(_config(sim_small, folder)))
    return folder / "delivery" / FIELD


def test_run_on_a_dask_scheduler_matches_the_run_in_this_process(
    dask_cluster, sequential, sim_small, tmp_path, capsys
):
    config = _config(sim_small, tmp_path)
    t0 = time.perf_counter()
    assert main(["run", str(config), "--scheduler", dask_cluster.address]) == 0
    print(f"one two-band field on the Dask workers: {time.perf_counter() - t0:.1f} s")
    out = capsys.readouterr().out
    assert f"{FIELD}  ok (Dask worker tcp://127.0.0.1:" in out, out  # not run in this process
    assert "valid: 0 error(s)" in out
    assert assert_same_deliveries(tmp_path / "delivery" / FIELD, sequential) >= 20


def _wait_for_a_stage_after_imaging(work: Path, run: subprocess.Popen) -> dict:
    """The manifest's stages once imaging is done and a later stage is running."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        stages = manifest_stages(work)
        running = [n for n, s in stages.items() if s.get("status") == "running"]
        if stages.get("imaging", {}).get("status") == "done" and running:
            return stages
        time.sleep(0.1)
    raise AssertionError("no stage after imaging started")


def test_a_worker_killed_in_the_middle_of_a_field_is_retried_and_the_run_completes(
    dask_cluster, sequential, sim_small, tmp_path
):
    config = _config(sim_small, tmp_path)
    work = tmp_path / "work" / FIELD
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phangs_products.cli",
            "run",
            str(config),
            "--scheduler",
            dask_cluster.address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        before = _wait_for_a_stage_after_imaging(work, run)
        holder = json.loads((work / "run.lock").read_text())
        # the field runs in one of the worker processes the fixture started
        assert holder["pid"] in dask_cluster.worker_pids()
        assert holder["dask_worker"].startswith("tcp://127.0.0.1:")
        os.kill(holder["pid"], signal.SIGKILL)
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, out[-2000:] + err[-2000:]
    # another worker (or the restarted one) ran the field again ...
    assert f"{FIELD}  ok (Dask worker tcp://" in out, out
    assert f"ok (Dask worker {holder['dask_worker']})" not in out
    assert "taking over a stale lock" in dask_cluster.log_text()  # the worker says so
    # ... taking over the dead worker's lock (else it would have stopped at once) and resuming:
    # imaging, finished before the kill, was not redone; the rest was
    after = manifest_stages(work)
    assert after["imaging"]["finished"] == before["imaging"]["finished"]
    assert all(s["status"] == "done" for s in after.values()), after
    assert not (work / "run.lock").exists()
    assert validate_delivery(tmp_path / "delivery" / FIELD).ok
    assert assert_same_deliveries(tmp_path / "delivery" / FIELD, sequential) >= 20


def _take_lock(folder: str) -> dict:
    """On a worker: take and release the lock of ``folder`` as a field's run does."""
    lock = RunLock(Path(folder), dask_lock_owner())
    try:
        lock.acquire()
    except RunLockedError as exc:
        return {"error": str(exc)}
    holder = json.loads(lock.path.read_text())
    lock.release()
    return holder


def test_the_lock_of_a_worker_lost_with_its_node_is_taken_over(dask_cluster, tmp_path):
    from distributed import Client

    lock = tmp_path / "run.lock"
    scheduler = dask_cluster.address
    with Client(scheduler) as client:
        live = sorted(client.scheduler_info(n_workers=-1)["workers"])

        def holder(host: str, worker: str, scheduler: str = scheduler) -> dict:
            return {"pid": 1, "host": host, "dask_worker": worker, "dask_scheduler": scheduler}

        # a worker the scheduler no longer lists, on a node that cannot be asked
        lock.write_text(json.dumps(holder("node-gone.example", "tcp://192.0.2.1:1")))
        taken = client.submit(_take_lock, str(tmp_path), pure=False).result()
        assert taken.get("dask_worker") in live and taken["host"] == socket.gethostname(), taken
        assert taken["dask_scheduler"] == scheduler
        assert not lock.exists()
        # a live worker's lock on another node is never taken over, nor one of a worker of
        # another scheduler (a second run of the field elsewhere), listed here or not
        for busy in (
            holder("node-busy.example", live[0]),
            holder("node-busy.example", "tcp://192.0.2.1:1", "tcp://192.0.2.2:8786"),
        ):
            lock.write_text(json.dumps(busy))
            for worker in live:
                refused = client.submit(_take_lock, str(tmp_path), workers=[worker], pure=False)
                assert "pid 1 on node-busy.example" in refused.result()["error"]
            assert json.loads(lock.read_text()) == busy


def _can_mount_privately() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "none", "/mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_mount_privately(), reason="needs root and unshare -m")
def test_a_worker_that_does_not_see_the_run_folder_stops_the_run(sim_small, tmp_path, capsys):
    # a worker on "another node": in its own mount namespace the run folder is an empty tmpfs
    run_folder = tmp_path / "run"
    config = _config(sim_small, run_folder)
    mask = 'mount -t tmpfs none "$0" && exec "$@"'
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", mask, str(run_folder)]
    (tmp_path / "dask").mkdir()
    with _dask_processes(tmp_path / "dask", {"elsewhere": wrapper}) as cluster:
        assert main(["run", str(config), "--scheduler", cluster.address]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Dask worker tcp://127.0.0.1:") and err.count("\n") == 1, err
    assert f"does not see {run_folder}" in err
    assert "must be on storage every worker sees" in err
    assert not (run_folder / "work" / FIELD / "run-manifest.asdf").exists()  # nothing ran
    assert not [p for p in run_folder.rglob("*") if p.is_file() and p.name != "run.toml"]


def test_a_field_whose_worker_dies_more_often_than_allowed_is_reported_failed(sim_small, tmp_path):
    config = _config(sim_small, tmp_path / "run")
    lock = tmp_path / "run" / "work" / FIELD / "run.lock"
    (tmp_path / "dask").mkdir()
    no_retry = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with _dask_processes(tmp_path / "dask", {"w": []}, **no_retry) as cluster:
        command = [sys.executable, "-m", "phangs_products.cli", "run", str(config)]
        run = subprocess.Popen(
            [*command, "--scheduler", cluster.address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not lock.exists():
                assert run.poll() is None and time.monotonic() < deadline, run.communicate()
                time.sleep(0.1)
            os.kill(json.loads(lock.read_text())["pid"], signal.SIGKILL)
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 1, out + err
    line = next(x for x in out.splitlines() if x.strip().startswith(FIELD))
    assert "failed KilledWorker" in line and "rerun to resume from its work folder" in line, out


def test_the_pointings_of_a_galaxy_run_on_different_workers(dask_cluster, tmp_path, capsys):
    """A galaxy of two pointings: one task per pointing (both workers busy), then the mosaic."""
    from phangs_products.pipeline.sim.config import SimConfig
    from phangs_products.pipeline.sim.simulate import simulate

    sim = simulate(SimConfig(bands=BANDS, pointings=2), tmp_path / "sim")
    config = write_sim_config(
        tmp_path / "run", sim, target="ngc628", field="ngc628mosaic", ebv_mw=0.0, bands=BANDS
    )
    t0 = time.perf_counter()
    assert main(["run", str(config), "--scheduler", dask_cluster.address]) == 0
    print(f"a two-pointing galaxy on the Dask workers: {time.perf_counter() - t0:.1f} s")
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("ngc628mosaic"))
    # the pointings ran on both workers, the mosaic after them
    assert "ok (Dask workers tcp://127.0.0.1:" in line and line.count("tcp://") >= 2, out
    loaded = load_config(config)
    for field in [*(p.field for p in loaded.pointings), "ngc628mosaic"]:
        assert manifest_stages(tmp_path / "run" / "work" / field)  # each field's own work folder
        assert f"{field}" in out and "valid: 0 error(s)" in out
    report = validate_delivery(tmp_path / "run" / "delivery")
    assert report.ok, [str(p) for p in report.problems][:5]
