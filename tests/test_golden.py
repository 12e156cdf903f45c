"""Golden `summarize` tables for every bundled spec: a change to any rule, count or the table layout shows up
as a diff here. Regenerate deliberately with CNNCALC_REGENERATE_GOLDEN=1; a missing golden file fails."""
import json
import os

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.spec import bundled_dir, bundled_names
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", bundled_names())
def test_summary_table_matches_its_golden_file(name):
    result = CliRunner().invoke(app, ["summarize", name, "--columns", "flops,rf"], env={"COLUMNS": "1000"})  # wide: no line wraps
    assert result.exit_code == 0, result.output
    # warnings name the spec file by its path, which depends on where the checkout or install lives
    text = result.stdout.replace(str(bundled_dir()), "<specs>")
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("CNNCALC_REGENERATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with CNNCALC_REGENERATE_GOLDEN=1 once and review it"
    assert text == golden.read_text()


@pytest.mark.parametrize("name", bundled_names())
def test_rows_add_up_to_the_totals(name):
    data = json.loads(CliRunner().invoke(app, ["summarize", name, "-f", "json", "--batch", "2"]).stdout)
    totals = data["totals"]
    for key in ("params", "trainable_params", "non_trainable_params", "macs", "flops"):
        assert sum(layer[key] for layer in data["layers"]) == totals[key], key
    assert sum(layer["output_bytes"] for layer in data["layers"]) == totals["activation_bytes"]
    assert sum(totals["flops_by_category"].values()) == totals["flops"]
