"""Golden `summarize` tables for every bundled spec: a change to any rule, count or the table layout shows up
as a diff here. Regenerate deliberately with CNNCALC_REGENERATE_GOLDEN=1; a missing golden file fails."""
import os

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.spec import bundled_names
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", bundled_names())
def test_summary_table_matches_its_golden_file(name):
    result = CliRunner().invoke(app, ["summarize", name, "--columns", "flops,rf"], env={"COLUMNS": "1000"})  # wide: no line wraps
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "/" not in text.split("\n", 1)[1], "a bundled spec is shown by its name, not by where it lies"
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("CNNCALC_REGENERATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with CNNCALC_REGENERATE_GOLDEN=1 once and review it"
    assert text == golden.read_text()

