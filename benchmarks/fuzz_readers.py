"""Fuzz the readers: N seeded byte mutations of every product kind, every reader call.

Usage::

    python benchmarks/fuzz_readers.py [N] [--seed S] [--timeout SECONDS] [--kinds a,b]
                                      [--first I] [--keep DIR]

Writes one valid product of every kind with the project's writers (DRC, mask, FLC, FITS
catalogs, Parquet and ECSV exports, DS9 regions, README, ASDF manifest), then mutates the
bytes of one of them per case (case ``i`` is seeded with ``"<seed>-<i>"``, so any case can be
replayed alone with ``--first i 1``) and runs ``read_meta``, ``open``, the lazy
``.data``/``.table``, ``problems()``, ``open(strict=True)``, ``info`` and the validator's
``check_file`` on it in a worker process with a memory limit.  Each call has a time limit; a
worker that dies or stops answering is replaced by a fresh, warmed-up one.

Prints, per call, how many cases returned, raised a clean ``PhangsProductsError``, raised a
foreign exception (or made the validator report ``internal.error``) or hung (time limit,
memory limit, or the worker died); then the foreign exceptions and hangs by type and place;
then the cases where the validator found structural damage that ``open(strict=True)``
accepted.  ``--keep DIR`` saves the mutated files of those cases.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzkit

CALLS = ("read_meta", "open", "load", "problems", "strict", "info", "validate")
STATUSES = ("ok", "clean", "foreign", "hang")


def _worker(conn, mem_limit: int) -> None:
    """Run :func:`fuzzkit.exercise` on the paths the parent sends, under a memory limit."""
    if mem_limit:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        path, timeout = msg
        try:
            outcomes = fuzzkit.exercise(Path(path), timeout)
        except MemoryError:
            outcomes = [fuzzkit.Outcome("?", "hang", "MemoryError", "", "memory limit")]
        except Exception:  # a bug of the harness itself: stop the run
            conn.send(traceback.format_exc())
            return
        conn.send([dataclasses.asdict(o) for o in outcomes])


class Worker:
    """A worker process that is replaced when it dies or stops answering.

    Parameters
    ----------
    mem_limit : int
        Address-space limit of the worker, bytes.
    warm : list of Path
        Valid files run through every call when a worker starts (imports and caches are
        then not counted against the time limit of the first case).
    timeout : float
        Seconds per call.
    """

    def __init__(self, mem_limit: int, warm: list[Path], timeout: float):
        self.mem_limit = mem_limit
        self.warm = warm
        self.timeout = timeout
        self.hard = timeout * (len(CALLS) + 1) + 60
        self.ctx = multiprocessing.get_context("spawn")
        self.baseline = self._start()

    def _start(self) -> list[dict]:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.mem_limit), daemon=True)
        self.proc.start()
        outcomes = []
        for path in self.warm:
            for _ in range(2):  # the second pass is the baseline: imports are done
                answer = self._ask(path, self.timeout * 10)
            outcomes += answer or []
        return outcomes

    def _ask(self, path: Path, hard: float) -> list[dict] | None:
        self.conn.send((str(path), self.timeout))
        if not self.conn.poll(hard):
            return None
        try:
            answer = self.conn.recv()
        except EOFError:
            return None
        if isinstance(answer, str):
            raise RuntimeError(f"fuzz harness failed:\n{answer}")
        return answer

    def run(self, path: Path) -> list[dict] | None:
        """Outcomes of one file, or ``None`` when the worker died or stopped answering."""
        answer = self._ask(path, self.hard)
        if answer is None:
            self.proc.kill()
            self.proc.join()
            self._start()
        return answer

    def close(self) -> None:
        """Stop the worker."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz and print the counts; exit 1 when anything foreign or a hang came out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=4000, help="mutated files (4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first case (0)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per call (5)")
    parser.add_argument("--kinds", default=",".join(fuzzkit.KINDS), help="product kinds")
    parser.add_argument("--mem-limit-gb", type=float, default=4.0, help="worker memory (4)")
    parser.add_argument("--show", type=int, default=40, help="places listed (40)")
    parser.add_argument("--keep", type=Path, help="save the files of bad cases here")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")

    start = time.perf_counter()
    counts = {call: collections.Counter() for call in (*CALLS, "?")}
    foreign: collections.Counter = collections.Counter()
    examples: dict[tuple[str, str, str], str] = {}
    disagree: collections.Counter = collections.Counter()
    files_bad = collections.Counter()
    per_kind = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory(prefix="fuzz-readers-") as tmp:
        corpus = fuzzkit.write_corpus(Path(tmp) / "corpus")
        originals = {k: (corpus[k].read_bytes(), corpus[k].suffix, corpus[k].name) for k in kinds}
        work = Path(tmp) / "work" / fuzzkit.FIELD
        work.mkdir(parents=True)
        worker = Worker(int(args.mem_limit_gb * 2**30), [corpus[k] for k in kinds], args.timeout)
        try:
            bad = [o for o in worker.baseline if o["status"] != "ok"]
            print(f"valid corpus: {len(kinds)} files, {len(bad)} call(s) not ok", flush=True)
            for o in bad:
                print(f"   {o}")
            for i in range(args.first, args.first + args.n):
                kind = kinds[i % len(kinds)]
                raw, suffix, name = originals[kind]
                rng = random.Random(f"{args.seed}-{i}")
                data = fuzzkit.mutate(raw, suffix, fuzzkit.random_ops(rng))
                target = work / name
                tmp_target = work / f".{name}.part"
                tmp_target.write_bytes(data)
                os.replace(tmp_target, target)
                outcomes = worker.run(target)
                if outcomes is None:
                    outcomes = [{"call": "?", "status": "hang", "error": "killed", "place": ""}]
                statuses = set()
                for o in outcomes:
                    if o["call"] == "agree":
                        disagree[(kind, o["place"])] += 1
                        examples.setdefault(("agree", kind, o["place"]), f"case {i}")
                        statuses.add("disagree")
                        continue
                    counts[o["call"]][o["status"]] += 1
                    statuses.add(o["status"])
                    if o["status"] in ("foreign", "hang"):
                        key = (o["error"], o["place"], o["call"])
                        foreign[key] += 1
                        examples.setdefault(key, f"case {i} ({kind}): {o.get('message', '')}")
                for status in statuses:
                    files_bad[status] += 1
                    per_kind[kind][status] += 1
                if args.keep and statuses & {"foreign", "hang", "disagree"}:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(target, args.keep / f"case{i}_{name}")
                target.unlink(missing_ok=True)
                if (i + 1 - args.first) % 500 == 0:
                    elapsed = time.perf_counter() - start
                    print(f"  {i + 1 - args.first} cases, {elapsed:.0f} s", flush=True)
        finally:
            worker.close()

    print(f"\n{args.n} mutated files (seed {args.seed}), {time.perf_counter() - start:.0f} s")
    print(f"\n{'call':<10}" + "".join(f"{s:>9}" for s in STATUSES))
    for call in (*CALLS, "?"):
        if counts[call]:
            print(f"{call:<10}" + "".join(f"{counts[call][s]:>9}" for s in STATUSES))
    print(
        f"\nfiles with a foreign exception: {files_bad['foreign']}, with a hang: "
        f"{files_bad['hang']}, accepted by open(strict=True) but structurally damaged for "
        f"the validator: {files_bad['disagree']}"
    )
    print("by kind: " + ", ".join(f"{k} {dict(per_kind[k])}" for k in kinds if per_kind[k]))
    hangs = ("Hang", "killed", "MemoryError")
    n_foreign = sum(v for (e, _, _), v in foreign.items() if e not in hangs)
    grouped: dict[tuple[str, str], collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    for (error, place, call), n in foreign.items():
        grouped[(error, place)][call] += n
    n_places = len({p for e, p in grouped if e not in hangs})
    print(f"\nforeign exceptions: {n_foreign} from {n_places} places; with the hangs, by place:")
    ranked = sorted(grouped.items(), key=lambda kv: -sum(kv[1].values()))
    for (error, place), calls in ranked[: args.show]:
        example = next(examples[(error, place, c)] for c in calls)
        names = ",".join(c for c in (*CALLS, "?") if c in calls)
        print(f"  {sum(calls.values()):>5}  {error:<24} {place}  [{names}]")
        print(f"         e.g. {example[:140]}")
    if len(ranked) > args.show:
        print(f"  ... and {len(ranked) - args.show} more places")
    if disagree:
        print("\nstructural damage accepted by open(strict=True) (kind, validator rule):")
        for (kind, rule), n in disagree.most_common():
            print(f"  {n:>5}  {kind:<16} {rule:<16} e.g. {examples[('agree', kind, rule)]}")
    return 1 if foreign or disagree else 0


if __name__ == "__main__":
    sys.exit(main())
