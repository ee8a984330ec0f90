"""Cluster presets: the Dask workers of a run as SLURM or PBS batch jobs (``dask-jobqueue``).

``phangs-products run *.toml --cluster slurm --cluster-config hpc.toml`` reads the ``[cluster]``
table of ``hpc.toml``, checks every setting, and starts a ``dask_jobqueue.SLURMCluster`` (or
``PBSCluster``): the scheduler runs in the ``run`` process (on the login node), each batch job
starts ``cores`` worker processes of one thread each (drizzlepac changes its process's working
folder, so a process runs one field at a time), with ``memory / cores`` for each.  Example::

    [cluster]
    queue = "normal"               # partition (SLURM) or queue (PBS)
    account = "abc123"             # project charged, optional
    cores = 8                      # cores of one job = worker processes (one field each)
    memory = "128 GiB"             # memory of one job, shared by its workers
    walltime = "24:00:00"
    jobs = 5                       # at most this many jobs at once
    python = "/home/me/venv/bin/python"   # default: the python running the command
    local_directory = "/tmp"       # node-local scratch of the workers (spilled data)
    log_directory = "/scratch/me/dask-logs"
    modules = ["python/3.12"]      # `module load` lines before the worker starts
    directives = ["--qos=long"]    # more #SBATCH / #PBS lines

Every value is checked before a job script is made: numbers within range, the memory and
walltime in the batch system's forms, names and paths from a safe set of characters (no spaces,
quotes, ``$``, ``;``, backquotes or newlines), so a configuration value can never add a shell
command to the job script.  Errors are one line naming the file and the key.
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from phangs_products.errors import PhangsProductsError

__all__ = ["KINDS", "ClusterConfigError", "ClusterSpec", "load_cluster_config", "make_cluster"]

#: The batch systems with a preset, and the ``dask_jobqueue`` class of each.
KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}

#: A name the batch system knows: a partition/queue (``a,b`` for SLURM, ``q@server`` for PBS), an
#: account, a job name, a network interface, an environment module (``python/3.12``).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,@+/-]*")
#: An absolute path without shell metacharacters or spaces.
PATH = re.compile(r"/[A-Za-z0-9_.+@/-]*")
#: ``HH:MM:SS``, ``MM:SS``, minutes, or SLURM's ``D-HH:MM:SS``.
WALLTIME = re.compile(r"(\d+-)?\d{1,4}(:[0-5]\d){0,2}")
#: ``128 GiB``, ``64GB``, ``512 MiB``.
MEMORY = re.compile(r"\d+(\.\d+)?\s*[KMGT]i?B")
#: One more batch directive: ``--qos=long``, ``-l place=scatter``.
DIRECTIVE = re.compile(r"-{1,2}[A-Za-z][A-Za-z0-9-]*([ =][A-Za-z0-9_.,:+@/=-]+)?")


class ClusterConfigError(PhangsProductsError):
    """A cluster preset setting is missing or invalid."""


@dataclass(frozen=True)
class ClusterSpec:
    """A checked cluster preset (see the module docstring for the settings).

    Attributes
    ----------
    kind : str
        ``slurm`` or ``pbs``.
    cores : int
        Cores of one job; as many worker processes of one thread each.
    memory : str
        Memory of one job (``128 GiB``).
    walltime : str
        Wall time of one job.
    jobs : int
        Most jobs at once.
    queue, account, job_name, interface : str
        Batch system names ('' = the batch system's default).
    python : str
        The python that runs the workers (default: the one running the command).
    local_directory, log_directory : str
        Worker scratch and batch log folders ('' = defaults).
    modules : tuple of str
        Environment modules loaded before the worker starts.
    directives : tuple of str
        More batch directives.
    """

    kind: str
    cores: int
    memory: str
    walltime: str
    jobs: int = 1
    queue: str = ""
    account: str = ""
    job_name: str = "phangs-products"
    interface: str = ""
    python: str = sys.executable
    local_directory: str = ""
    log_directory: str = ""
    modules: tuple[str, ...] = ()
    directives: tuple[str, ...] = ()

    @property
    def memory_per_worker(self) -> int:
        """Bytes of memory each worker process (one field at a time) may use."""
        from dask.utils import parse_bytes

        return parse_bytes(self.memory.replace(" ", "")) // self.cores

    def jobs_for(self, n_fields: int) -> int:
        """Jobs to start for ``n_fields`` fields: enough workers for all, at most ``jobs``."""
        return max(1, min(self.jobs, math.ceil(n_fields / self.cores)))

    def job_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the ``dask_jobqueue`` cluster class."""
        kwargs: dict[str, Any] = {
            "cores": self.cores,
            "processes": self.cores,
            "memory": self.memory.replace(" ", ""),
            "walltime": self.walltime,
            "job_name": self.job_name,
            "python": self.python,
            "job_script_prologue": [f"module load {m}" for m in self.modules],
            "job_extra_directives": list(self.directives),
        }
        optional = {
            "queue": self.queue,
            "account": self.account,
            "interface": self.interface,
            "local_directory": self.local_directory,
            "log_directory": self.log_directory,
        }
        kwargs.update({k: v for k, v in optional.items() if v})
        return kwargs


def _fail(source: str, key: str, expected: str, value: Any) -> ClusterConfigError:
    return ClusterConfigError(f"{source}: cluster.{key}: expected {expected}, got {value!r}")


def _text(value: Any, pattern: re.Pattern[str], source: str, key: str, expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(source, key, expected, value)
    return value


def _integer(value: Any, source: str, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(source, key, f"an integer from {low} to {high}", value)
    return value


def _texts(value: Any, pattern: re.Pattern[str], source: str, key: str, what: str) -> tuple:
    if not isinstance(value, list):
        raise _fail(source, key, f"a list of {what}", value)
    return tuple(_text(v, pattern, source, f"{key}.{i}", what) for i, v in enumerate(value))


def cluster_spec(table: dict[str, Any], kind: str, source: str = "cluster") -> ClusterSpec:
    """Check the settings of a ``[cluster]`` table and return the preset.

    Parameters
    ----------
    table : dict
        The ``[cluster]`` table.
    kind : str
        ``slurm`` or ``pbs`` (a ``kind`` in the table must agree).
    source : str
        Name of the file, for the messages.

    Raises
    ------
    ClusterConfigError
        One line: ``<file>: cluster.<key>: expected ..., got ...``.
    """
    if kind not in KINDS:
        raise _fail(source, "kind", f"one of {sorted(KINDS)}", kind)
    if table.get("kind", kind) != kind:
        raise _fail(source, "kind", f"{kind!r} (as --cluster says)", table["kind"])
    known = {f.name for f in fields(ClusterSpec)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ClusterConfigError(
            f"{source}: cluster.{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})"
        )
    for key in ("cores", "memory", "walltime"):
        if key not in table:
            raise ClusterConfigError(f"{source}: cluster.{key}: missing (needed by every job)")
    name = "a name of letters, digits and _ . , @ + / -"
    path = "an absolute path of letters, digits and _ . + @ / -"
    checked: dict[str, Any] = {
        "kind": kind,
        "cores": _integer(table["cores"], source, "cores", 1, 1024),
        "memory": _text(table["memory"], MEMORY, source, "memory", "a size like '128 GiB'"),
        "walltime": _text(
            table["walltime"], WALLTIME, source, "walltime", "a time like '24:00:00'"
        ),
    }
    if "jobs" in table:
        checked["jobs"] = _integer(table["jobs"], source, "jobs", 1, 10_000)
    for key in ("queue", "account", "job_name", "interface"):
        if key in table:
            checked[key] = _text(table[key], NAME, source, key, name)
    for key in ("python", "local_directory", "log_directory"):
        if key in table:
            checked[key] = _text(table[key], PATH, source, key, path)
    if "modules" in table:
        checked["modules"] = _texts(table["modules"], NAME, source, "modules", "module names")
    if "directives" in table:
        checked["directives"] = _texts(
            table["directives"], DIRECTIVE, source, "directives", "options like '--qos=long'"
        )
    spec = ClusterSpec(**checked)
    from dask.utils import format_bytes, parse_bytes  # dask only when a preset is used

    if "python" not in table and not PATH.fullmatch(spec.python):
        raise _fail(source, "python", f"{path} (give it: the default has others)", spec.python)
    if spec.memory_per_worker < parse_bytes("1GiB"):
        raise _fail(
            source,
            "memory",
            f"at least 1 GiB per worker ({spec.cores} workers share it; "
            f"{format_bytes(spec.memory_per_worker)} each)",
            table["memory"],
        )
    return spec


def load_cluster_config(path: str | Path, kind: str) -> ClusterSpec:
    """Read the ``[cluster]`` table of a TOML file and check it (:func:`cluster_spec`).

    Raises
    ------
    ClusterConfigError
        One line naming the file and the setting.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ClusterConfigError(f"{path}: no such cluster configuration file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClusterConfigError(f"{path.name}: not a readable TOML file ({exc})") from None
    table = doc.get("cluster")
    if not isinstance(table, dict):
        raise ClusterConfigError(f"{path.name}: cluster: missing (a [cluster] table)")
    return cluster_spec(table, kind, path.name)


def make_cluster(spec: ClusterSpec) -> Any:
    """The ``dask_jobqueue`` cluster of a preset (its scheduler runs here; no job started).

    ``cluster.job_script()`` shows what each job runs; ``cluster.scale(jobs=n)`` submits jobs.
    The scheduler's dashboard is on port 8787 of this host (or a free one), as Dask's default.
    """
    import dask_jobqueue

    cls = getattr(dask_jobqueue, KINDS[spec.kind])
    return cls(**spec.job_kwargs())
