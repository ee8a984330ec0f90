"""Fields side by side (the pointings of a galaxy): worker processes, reports, logs, failures.

Toy stages in spawned workers (the imaging products of two real pointings run side by side are
compared with the pointings in turn in ``imaging/test_mosaic.py``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.cores import available_cores
from phangs_products.pipeline.fields import fields_at_once, run_fields
from phangs_products.pipeline.runner import Stage, StageError, run_stages

log = logging.getLogger("phangs_products.pipeline.test_fields")


@dataclass(frozen=True)
class Factor:
    factor: int = 2


def double(ctx):
    """Double the field's numbers; write the cores its band workers may use."""
    values = [int(x) for x in (ctx.run.input / "numbers.txt").read_text().split()]
    out = ctx.folder / "doubled.txt"
    out.write_text(" ".join(str(v * ctx.config.factor) for v in values))
    (ctx.folder / "cores.txt").write_text(str(available_cores()))
    log.warning("doubled the numbers of %s", ctx.run.field)
    return {"doubled": [out]}


def add(ctx):
    """Sum the doubled numbers; fail when the input says so (or kill the worker)."""
    (src,) = ctx.inputs["double"]["doubled"]
    if (ctx.run.input / "fail").exists():
        raise RuntimeError("simulated crash")
    if (ctx.run.input / "die").exists():
        os._exit(3)  # the worker process vanishes, as when killed or out of memory
    out = ctx.folder / "sum.txt"
    out.write_text(str(sum(int(x) for x in src.read_text().split())))
    return {"sum": [out]}


STAGES = [
    Stage("double", double, config=Factor()),
    Stage("add", add, depends=("double",), config=Factor()),
]


def field(root: Path, name: str, numbers: str) -> RunConfig:
    inp = root / name / "in"
    inp.mkdir(parents=True)
    (inp / "numbers.txt").write_text(numbers)
    ref = root / "ref.txt"
    ref.write_text("# ra dec\n")
    return RunConfig(
        target="ngc628",
        field=name,
        input=inp,
        reference_catalog=ref,
        output=root / "out",
        work=root / "work" / name,
    )


def test_how_many_fields_at_once():
    assert fields_at_once(0, 1) == 1
    assert fields_at_once(0, 5) == min(available_cores(), 5)
    assert fields_at_once(1, 3) == 1
    assert fields_at_once(3, 2) == 2


def test_fields_side_by_side_match_the_fields_in_turn(tmp_path, caplog):
    runs = [field(tmp_path, "ngc628c", "1 2 3"), field(tmp_path, "ngc628e", "10 20")]
    seen = []
    caplog.set_level("WARNING", logger="phangs_products")
    done = run_fields([(r, STAGES) for r in runs], 2, report=lambda f, r: seen.append((f, r)))
    sums = [results[1].outputs["sum"][0].read_text() for results in done]
    assert sums == ["12", "60"]
    shares = [(r.work / "double" / "cores.txt").read_text() for r in runs]
    assert shares == [str(max(1, available_cores() // 2))] * 2  # each field half the cores
    # results reported as they happened, with their field; the workers' warnings replayed here
    assert {(f, r.name, r.status) for f, r in seen} >= {
        ("ngc628c", "double", "running"),
        ("ngc628c", "add", "done"),
        ("ngc628e", "add", "done"),
    }
    messages = {r.getMessage() for r in caplog.records}
    assert {
        "ngc628c: doubled the numbers of ngc628c",
        "ngc628e: doubled the numbers of ngc628e",
    } <= messages  # each record says which field it came from
    # the same stages in turn, here, skip everything: same keys, same products
    for run in runs:
        assert [r.status for r in run_stages(run, STAGES)] == ["skipped", "skipped"]


def test_a_failed_field_leaves_the_other_done_and_resumes(tmp_path):
    good, bad = field(tmp_path, "ngc628c", "1 2 3"), field(tmp_path, "ngc628e", "10 20")
    (bad.input / "fail").write_text("")
    with pytest.raises(StageError, match="stage add failed: RuntimeError: simulated crash"):
        run_fields([(good, STAGES), (bad, STAGES)], 2)
    assert (good.work / "add" / "sum.txt").read_text() == "12"
    (bad.input / "fail").unlink()
    good_results, bad_results = run_fields([(good, STAGES), (bad, STAGES)], 2)
    assert [r.status for r in good_results] == ["skipped", "skipped"]
    assert [r.status for r in bad_results] == ["skipped", "done"]


def test_a_dead_worker_is_one_line_and_the_field_resumes(tmp_path):
    run = field(tmp_path, "ngc628e", "10 20")
    (run.input / "die").write_text("")
    with pytest.raises(StageError, match="field ngc628e: its worker process failed"):
        run_fields([(run, STAGES), (field(tmp_path, "ngc628c", "1"), STAGES)], 2)
    (run.input / "die").unlink()
    (results,) = run_fields([(run, STAGES)], 1)
    assert [r.status for r in results] == ["skipped", "done"]


@pytest.mark.parametrize("value", ["-1", "two"])
def test_pointings_at_once_must_be_a_count(value, capsys):
    from phangs_products.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "any.toml", "--pointings-at-once", value])
    assert exc.value.code == 2
    assert "--pointings-at-once: expected a whole number >= 0" in capsys.readouterr().err
