"""Run-configuration settings of item identity: E(B-V)_MW, HLSP identity, galaxies outside the
survey table, and the human-class table format; every error is one line naming the setting."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from phangs_products.bands import galaxy
from phangs_products.hlsp import SURVEY
from phangs_products.pipeline.clusters.human_classes import ClassifyError, import_human_classes
from phangs_products.pipeline.config import ConfigError, load_config

OWN = '[run.hlsp]\nname = "A test HLSP collection"\nlead = "A. Tester"\n'


def write(tmp_path, run: str, tail: str = OWN):
    (tmp_path / "flc").mkdir(exist_ok=True)
    (tmp_path / "ref.txt").write_text("#\n")
    path = tmp_path / "run.toml"
    path.write_text(
        '[run]\ninput = "flc"\nreference_catalog = "ref.txt"\noutput = "out"\n' + run + tail
    )
    return path


def one_line_error(path, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_ebv_mw_fails_naming_the_setting(tmp_path):
    message = one_line_error(write(tmp_path, 'target = "ngc628"\n'), "run.ebv_mw: not given")
    assert message.startswith("run.toml: ") and "ebv_mw = 0" in message


def test_explicit_zero_and_a_value_with_its_source(tmp_path):
    config = load_config(write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n'))
    assert config.foreground() == (0.0, "run configuration")
    config = load_config(
        write(tmp_path, 'target = "ngc628"\nebv_mw = 0.07\nebv_mw_source = "SF11 via IRSA"\n')
    )
    assert config.foreground() == (0.07, "SF11 via IRSA")
    one_line_error(write(tmp_path, 'target = "ngc628"\nebv_mw = -0.1\n'), "run.ebv_mw")


def test_hlsp_identity_is_never_a_silent_default(tmp_path):
    one_line_error(write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n', ""), "run.hlsp: not given")
    one_line_error(
        write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n', '[run.hlsp]\nlead = "A. Tester"\n'),
        "run.hlsp: needs name and lead",
    )
    own = load_config(write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n')).identity()
    assert own.lead == "A. Tester" and own.dois == {} and own.preset == ""
    survey = load_config(
        write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n', '[run.hlsp]\npreset = "phangs-hst"\n')
    ).identity()
    assert survey == SURVEY


def test_a_simulated_run_cannot_take_the_survey_dois(tmp_path):
    path = write(
        tmp_path,
        'target = "ngc628"\nebv_mw = 0\nsimulated = true\n',
        '[run.hlsp]\npreset = "phangs-hst"\n',
    )
    one_line_error(path, "run.hlsp: a simulated run cannot carry the survey's DOI")


def test_unknown_galaxy_needs_coordinates_distance(tmp_path):
    one_line_error(
        write(tmp_path, 'target = "ngc9999"\nebv_mw = 0\n'),
        r"run.target: galaxy 'ngc9999' is not in the PHANGS-HST table; give run.ra, run.dec",
    )
    one_line_error(
        write(tmp_path, 'target = "ngc9999"\nebv_mw = 0\nra = 10.0\ndec = -5.0\n'),
        "run.distance_mpc: needed with run.ra, run.dec",
    )
    config = load_config(
        write(
            tmp_path,
            'target = "NGC 9999"\nebv_mw = 0.02\nra = 10.0\ndec = -5.0\n'
            'distance_mpc = 12.5\ndistance_err_mpc = 1.5\ngalaxy_source = "Paper (2020)"\n',
        )
    )
    gal = config.galaxy
    assert (gal.name, gal.target, gal.ra, gal.dec) == ("NGC 9999", "ngc9999", 10.0, -5.0)
    assert (gal.distance_mpc, gal.distance_err_mpc, gal.source) == (12.5, 1.5, "Paper (2020)")
    assert config.field == "ngc9999"
    # a survey galaxy keeps the table's facts
    assert load_config(write(tmp_path, 'target = "ngc628"\nebv_mw = 0\n')).galaxy == galaxy(
        "ngc628"
    )


def test_human_class_table_codes_are_checked(tmp_path):
    candidates = Table({"ID_PHANGS_CANDIDATE": [1, 2, 3], "PHANGS_RA": [1.0, 1.1, 1.2]})
    candidates["PHANGS_DEC"] = [0.0, 0.0, 0.0]
    path = tmp_path / "classes.csv"
    Table({"id": [1, 2], "class": [1, 7]}).write(path, format="ascii.csv")
    with pytest.raises(ClassifyError) as info:
        import_human_classes(candidates, path)
    assert str(info.value) == (
        f"{path}: column class holds class 7 (expected 1, 2, 3, 4, or empty/0/negative for "
        "not classified)"
    )
    Table({"id": [1, 3], "class": [2, 0]}).write(path, format="ascii.csv", overwrite=True)
    np.testing.assert_array_equal(import_human_classes(candidates, path), [2, -9999, -9999])
    Table({"name": ["a"], "class": [1]}).write(path, format="ascii.csv", overwrite=True)
    with pytest.raises(ClassifyError, match="no id column .* and no RA/Dec columns") as info:
        import_human_classes(candidates, path)
    assert "\n" not in str(info.value)
