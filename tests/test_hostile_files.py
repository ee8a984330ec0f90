"""Hostile files: every reader call answers in bounded time with one clean line.

Each case is a real product written by the project's writers, then damaged the way a hostile
or broken file is (a header announcing 10^12 axes, a FIFO, a folder with a product name,
latin-1 text, bad Parquet metadata, bad ECSV YAML, impossible BITPIX/TFIELDS/NAXIS1, a
truncated DRC, non-ASCII header bytes).  ``read_meta``, ``open``, ``open(strict=True)``,
``info`` and the validator must each give a :class:`PhangsProductsError` (or a validator
problem) naming the file and the place, never a foreign exception, never a hang; and
``info``/``open(strict=True)`` must call a file broken when the validator does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from fuzzkit import FIELD, HISTORICAL, deadline, exercise, set_card, write_corpus

import phangs_products as pp
from phangs_products.cli import main
from phangs_products.delivery import checksums_name
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.validation import validate_delivery
from phangs_products.validation.filecheck import check_file

#: Seconds any reader call may take on these tiny files (they answer in milliseconds).
LIMIT = 5.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid product of every kind."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def field(tmp_path: Path) -> Path:
    """An empty field folder for the damaged file."""
    folder = tmp_path / FIELD
    folder.mkdir()
    return folder


def copy(corpus: dict[str, Path], kind: str, field: Path) -> Path:
    return Path(shutil.copy(corpus[kind], field / corpus[kind].name))


# ------------------------------------------------------------------------------- the cases
def naxis_1e12(c: dict[str, Path], d: Path) -> Path:
    return set_card(copy(c, "drc-sci", d), "NAXIS", "1000000000000")


def naxis_999(c: dict[str, Path], d: Path) -> Path:
    return set_card(copy(c, "drc-sci", d), "NAXIS", "999")


def bitpix_17(c: dict[str, Path], d: Path) -> Path:
    return set_card(copy(c, "drc-sci", d), "BITPIX", "17")


def tfields_999(c: dict[str, Path], d: Path) -> Path:
    return set_card(copy(c, "cluster-catalog", d), "TFIELDS", "999", hdu=1)


def naxis1_zero(c: dict[str, Path], d: Path) -> Path:
    return set_card(copy(c, "cluster-catalog", d), "NAXIS1", "0", hdu=1)


def truncated_drc(c: dict[str, Path], d: Path) -> Path:
    path = copy(c, "drc-sci", d)
    path.write_bytes(path.read_bytes()[:-2880])
    return path


def non_ascii_header(c: dict[str, Path], d: Path) -> Path:
    path = copy(c, "drc-sci", d)
    raw = path.read_bytes()
    last = raw.index(b"HLSPNAME= ") + 79  # the last column of the card
    path.write_bytes(raw[:last] + b"\xe9" + raw[last + 1 :])
    return path


def _fifo(kind: str) -> Callable[[dict[str, Path], Path], Path]:
    def make(c: dict[str, Path], d: Path) -> Path:
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        path = d / c[kind].name
        os.mkfifo(path)
        return path

    make.__name__ = f"fifo_{c_suffix(kind)}"
    return make


def c_suffix(kind: str) -> str:
    return {"drc-sci": "fits", "regions": "reg", "ecsv": "ecsv", "manifest": "asdf"}[kind]


def folder_named_reg(c: dict[str, Path], d: Path) -> Path:
    path = d / c["regions"].name
    path.mkdir()
    return path


def _latin1(kind: str, old: str) -> Callable[[dict[str, Path], Path], Path]:
    def make(c: dict[str, Path], d: Path) -> Path:
        path = copy(c, kind, d)
        text = path.read_text()
        assert old in text
        path.write_bytes(text.replace(old, old + " caf\xe9", 1).encode("latin-1"))
        return path

    make.__name__ = f"latin1_{kind}"
    return make


def _parquet_meta(name: str, value: bytes) -> Callable[[dict[str, Path], Path], Path]:
    def make(c: dict[str, Path], d: Path) -> Path:
        path = d / c["parquet"].name
        table = pq.read_table(c["parquet"])
        metadata = dict(table.schema.metadata)
        metadata[b"phangs_products"] = value
        pq.write_table(table.replace_schema_metadata(metadata), path)
        return path

    make.__name__ = f"parquet_{name}"
    return make


def _ecsv_header(name: str, yaml_lines: list[str]) -> Callable[[dict[str, Path], Path], Path]:
    def make(c: dict[str, Path], d: Path) -> Path:
        path = d / c["ecsv"].name
        body = [ln for ln in c["ecsv"].read_text().splitlines() if not ln.startswith("#")]
        head = ["# %ECSV 1.0", "# ---", *(f"# {ln}" for ln in yaml_lines)]
        path.write_text("\n".join(head + body) + "\n")
        return path

    make.__name__ = f"ecsv_{name}"
    return make


def repeated_distortion_records(c: dict[str, Path], d: Path) -> Path:
    """The FLC with the header block holding its D2IM/DP records written twice.

    wcslib corrupts the heap (the process aborts) on repeated distortion records.
    """
    path = copy(c, "flc", d)
    raw = path.read_bytes()
    with fits.open(path) as hdul:
        info = hdul["SCI", 1].fileinfo()
    at = raw.index(b"D2IM1   = 'EXTVER", info["hdrLoc"])
    block = info["hdrLoc"] + (at - info["hdrLoc"]) // 2880 * 2880
    assert b"END     " not in raw[block : block + 2880]
    path.write_bytes(raw[: block + 2880] + raw[block:])
    return path


def continue_after_number(c: dict[str, Path], d: Path) -> Path:
    path = copy(c, "drc-sci", d)
    raw = path.read_bytes()
    at = raw.index(b"TELAPSE = ")
    path.write_bytes(raw[:at] + b"CONTINUE" + raw[at + 8 :])
    return path


def compressed_without_sizes(c: dict[str, Path], d: Path) -> Path:
    """A binary table that says ``ZIMAGE = T`` (a tile-compressed image) without ZBITPIX."""
    path = copy(c, "drc-sci", d)
    raw = path.read_bytes()
    at = raw.index(b"COMMENT Provenance tree")
    path.write_bytes(raw[:at] + b"ZIMAGE  =                    T".ljust(80) + raw[at + 80 :])
    return path


BOMB = [
    'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
    *(
        f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [{', '.join(['*' + chr(ord('a') + i)] * 9)}]"
        for i in range(8)
    ),
    "meta: *i",
]

#: Every hostile case: (builder, words the one-line error must hold).
CASES: list[tuple[Callable[[dict[str, Path], Path], Path], tuple[str, ...]]] = [
    (naxis_1e12, ("HDU 0", "NAXIS = 1000000000000")),
    (naxis_999, ("HDU 0", "NAXIS3")),
    (bitpix_17, ("HDU 0", "BITPIX = 17")),
    (tfields_999, ("HDU 1", "TFIELDS = 999")),
    (naxis1_zero, ("HDU 1", "NAXIS1 = 0")),
    (truncated_drc, ("HDU 1", "truncated")),
    (non_ascii_header, ("HDU 0", "HLSPNAME", "0xe9")),
    (_fifo("drc-sci"), ("not a regular file",)),
    (_fifo("regions"), ("not a regular file",)),
    (_fifo("ecsv"), ("not a regular file",)),
    (folder_named_reg, ("not a regular file",)),
    (_latin1("ecsv", "# ---"), ("line 2", "UTF-8")),
    (_latin1("regions", "icrs"), ("line 7", "UTF-8")),
    (_latin1("readme", "## Summary"), ("line 5", "UTF-8")),
    (_parquet_meta("not_json", b"{not json"), ("phangs_products", "JSON")),
    (_parquet_meta("json_list", b"[1, 2]"), ("phangs_products", "'meta'")),
    (_parquet_meta("no_meta", b'{"schema": "cluster-catalog-1.0.0"}'), ("'meta'",)),
    (_parquet_meta("meta_list", b'{"meta": [1, 2]}'), ("'meta'",)),
    (_ecsv_header("yaml_list", ["- a", "- b"]), ("ECSV header", "mapping")),
    (_ecsv_header("yaml_bomb", BOMB), ("ECSV header", "alias")),
    (repeated_distortion_records, ("HDU 1 card", "D2IM1.EXTVER appears twice")),
    (continue_after_number, ("HDU 0 card", "(CONTINUE)", "rest of a string")),
    (compressed_without_sizes, ("HDU 1", "ZBITPIX is missing")),
]
IDS = [case.__name__ for case, _ in CASES]


@pytest.mark.parametrize(("case", "words"), CASES, ids=IDS)
def test_every_call_gives_one_clean_line(
    corpus: dict[str, Path],
    field: Path,
    case: Callable[[dict[str, Path], Path], Path],
    words: tuple[str, ...],
) -> None:
    path = case(corpus, field)
    outcomes = exercise(path, timeout=LIMIT)
    by_call = {o.call: o for o in outcomes}
    assert "agree" not in by_call, by_call["agree"]
    for call in ("read_meta", "open", "strict"):
        out = by_call[call]
        assert out.status == "clean", out
        assert out.message.startswith(path.name + ": "), out
        for word in words:
            assert word in out.message, out
    assert by_call["info"].status == "ok" and by_call["validate"].status == "ok", outcomes
    assert all(o.seconds < LIMIT for o in outcomes), outcomes


@pytest.mark.parametrize(("case", "words"), CASES, ids=IDS)
def test_info_fails_with_one_line(
    corpus: dict[str, Path],
    field: Path,
    case: Callable[[dict[str, Path], Path], Path],
    words: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = case(corpus, field)
    assert main(["info", str(path)]) == 1
    captured = capsys.readouterr()
    assert "valid    yes" not in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path.name}: "), lines


@pytest.mark.parametrize(("case", "words"), CASES, ids=IDS)
def test_validator_reports_the_damage(
    corpus: dict[str, Path],
    field: Path,
    case: Callable[[dict[str, Path], Path], Path],
    words: tuple[str, ...],
) -> None:
    path = case(corpus, field)
    result = check_file(str(path), FIELD, data=True)
    errors = [p for p in result.problems if p.severity == "error"]
    assert errors, result.problems
    assert "internal.error" not in {p.rule for p in errors}, errors
    assert all("\n" not in str(p) for p in errors)


# ------------------------------------------------------------------------ specific answers
def test_header_with_1e12_axes_is_refused_before_astropy(corpus, field):
    path = naxis_1e12(corpus, field)
    with pytest.raises(ProductError) as info:
        pp.read_meta(path)
    assert str(info.value) == (
        f"{path.name}: HDU 0: NAXIS = 1000000000000 is not a number of axes (expected 0 to 999)"
    )
    rules = {p.rule for p in check_file(str(path), FIELD).problems}
    assert rules == {"fits.structure"}


def test_historical_catalog_with_an_empty_column_name_is_one_line(corpus, field):
    """A DR4 catalog whose TTYPE31 is '' opens; its table is one line (not astropy's error)."""
    path = set_card(copy(corpus, "dr4-catalog", field), "TTYPE31", "''", hdu=1)
    model = pp.open(path)
    with pytest.raises(ProductError) as info:
        _ = model.table
    assert str(info.value).startswith(f"{path.name}: HDU 1: cannot read the table (")
    assert "\n" not in str(info.value)
    assert all(o.status in ("ok", "clean") for o in exercise(path, timeout=LIMIT))


def test_bitpix_17_names_the_allowed_values(corpus, field):
    path = bitpix_17(corpus, field)
    with pytest.raises(ProductError, match=r"HDU 0: BITPIX = 17 \(expected one of 8, 16, 32, 64"):
        pp.open(path)


def test_tfields_beyond_the_columns(corpus, field):
    path = tfields_999(corpus, field)
    with pytest.raises(ProductError, match=r"HDU 1: TFORM\d+ is missing \(TFIELDS = 999\)"):
        pp.open(path, strict=True)


def test_naxis1_zero_disagrees_with_the_columns(corpus, field):
    path = naxis1_zero(corpus, field)
    with pytest.raises(ProductError, match=r"HDU 1: NAXIS1 = 0, but the \d+ columns need"):
        pp.open(path, strict=True)


def test_truncated_drc_is_refused_by_open_and_reported_by_the_validator(corpus, field):
    path = truncated_drc(corpus, field)
    with pytest.raises(ProductError, match=r"HDU 1: truncated"):
        pp.open(path, strict=True)
    rules = {p.rule for p in check_file(str(path), FIELD).problems}
    assert rules == {"fits.truncated"}


def test_non_ascii_header_byte_is_located(corpus, field):
    path = non_ascii_header(corpus, field)
    with pytest.raises(ProductError) as info:
        pp.open(path)
    assert "HDU 0 card" in str(info.value) and "(HLSPNAME)" in str(info.value)
    assert "byte 0xe9" in str(info.value)


def test_fifos_in_a_delivery_never_block_the_validator(corpus, field):
    for kind in ("drc-sci", "regions", "ecsv", "manifest"):
        _fifo(kind)(corpus, field)
    os.mkfifo(field / checksums_name(FIELD, "v1"))
    copy(corpus, "readme", field)
    with deadline(LIMIT):
        report = validate_delivery(field, workers=1)
    rules = report.rules("error")
    assert len([p for p in report.problems if p.rule == "file.not-regular"]) == 4
    assert {"manifest.unreadable", "checksums.format"} <= rules, report.to_text()
    assert "internal.error" not in rules


def test_folder_named_like_a_region_file(corpus, field):
    path = folder_named_reg(corpus, field)
    with pytest.raises(ProductError, match=r"not a regular file \(a folder\)"):
        pp.open(path)


def test_missing_file_is_one_line(field):
    with pytest.raises(ProductError, match=r"no such file"):
        pp.read_meta(field / "nothing.reg")


def test_clean_corpus_still_reads(corpus):
    for kind, path in corpus.items():
        outcomes = exercise(path, timeout=LIMIT)
        bad = [o for o in outcomes if o.status != "ok"]
        assert not bad, (kind, bad)


def test_errors_are_phangs_products_errors(corpus, field):
    path = naxis1_zero(corpus, field)
    with pytest.raises(PhangsProductsError):
        pp.read_meta(path)


def test_clean_corpus_has_no_validator_errors(corpus):
    # the FLC keeps its lookup-table distortion (WCSDVARR/D2IMARR): its WCS needs the HDU list;
    # the historical files are no delivery products (the validator says so)
    for kind, path in corpus.items():
        if kind in HISTORICAL:
            continue
        errors = [p for p in check_file(str(path), FIELD).problems if p.severity == "error"]
        assert not errors, (kind, errors)


#: Runs in a child process: wcslib crashed (segmentation fault, heap corruption) or looped
#: for minutes on these headers before they were checked, and a crash would end pytest.
WCS_PROBE = """
import sys, warnings
import phangs_products as pp
from phangs_products.validation.filecheck import check_file
warnings.simplefilter("ignore")
path = sys.argv[1]
rules = sorted({p.rule for p in check_file(path, "ngc628c").problems if p.severity == "error"})
try:
    pp.open(path).wcs
    print(rules, "wcs read")
except pp.PhangsProductsError as exc:
    print(rules, "wcs refused:", exc)
"""


@pytest.mark.parametrize(
    ("cards", "words"),
    [
        ({"WCSAXES": 100000}, "WCSAXES = 100000 (expected an integer 0 to 99)"),
        ({"A_ORDER": 100000, "B_ORDER": 2}, "A_ORDER = 100000 (expected an integer 0 to 20)"),
    ],
    ids=["wcsaxes_1e5", "sip_order_1e5"],
)
def test_wcs_sizes_are_checked_before_wcslib(corpus, field, cards, words):
    path = copy(corpus, "drc-sci", field)
    with fits.open(path, mode="update", checksum=True) as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value
    probe = subprocess.run(
        [sys.executable, "-c", WCS_PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr[-500:]
    rules, _, answer = probe.stdout.partition("] ")
    assert "'wcs.invalid'" in rules and "internal.error" not in rules, probe.stdout
    assert answer.startswith("wcs refused:") and words in answer, probe.stdout
