"""Byte-mutation fuzz of every reader call, over every product kind (bounded, derandomized).

Each example mutates the bytes of a valid product written by the project's writers (bit
flips, byte writes, hostile header values and keywords, insertions, deletions, truncation,
dropped or repeated blocks) and runs ``read_meta``, ``open``, the lazy ``.data``, ``.table``,
``.regions`` and ``.wcs``, ``problems()``, ``open(strict=True)``, ``info`` and the validator
on it.  Only :class:`~phangs_products.errors.PhangsProductsError` (or nothing) may come out,
each call must answer within :data:`LIMIT` seconds, and ``open(strict=True)`` must refuse
whatever the validator calls structurally broken.  ``benchmarks/fuzz_readers.py`` runs many
more cases.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fuzzkit import FIELD, KINDS, OPS, exercise, mutate, write_corpus
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

#: Examples per product kind (13 kinds, two of them historical); the module runs in under a
#: minute.
EXAMPLES_PER_KIND = 25
#: Seconds any call may take on these tiny files (they answer in milliseconds).
LIMIT = 5.0

operations = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=4,
)


class Originals(dict[str, tuple[bytes, str, str]]):
    """Bytes, suffix and name of one valid product of every kind (printed short)."""

    def __repr__(self) -> str:
        return f"<{len(self)} valid products>"


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Originals:
    """One valid product of every kind, written by the project's writers."""
    corpus = write_corpus(tmp_path_factory.mktemp("fuzz-corpus"))
    return Originals({kind: (p.read_bytes(), p.suffix, p.name) for kind, p in corpus.items()})


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The field folder the mutated files are written to."""
    folder = tmp_path_factory.mktemp("fuzz") / FIELD
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(
    max_examples=EXAMPLES_PER_KIND,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure reports its example
)
@given(ops=operations)
def test_mutated_product_gives_clean_errors_in_bounded_time(
    originals: Originals,
    work: Path,
    kind: str,
    ops: list[tuple[str, int, int]],
) -> None:
    raw, suffix, name = originals[kind]
    path = work / name
    part = work / f".{name}.part"
    part.write_bytes(mutate(raw, suffix, ops))
    os.replace(part, path)
    outcomes = exercise(path, timeout=LIMIT)
    bad = [o for o in outcomes if o.status in ("foreign", "hang")]
    assert not bad, bad
    clean = [o for o in outcomes if o.status == "clean"]
    assert all(o.message.startswith(f"{name}: ") for o in clean), clean
