from __future__ import annotations

from pathlib import Path

import pytest

from cnncalc.layers import KINDS, LayerBase

ROOT = Path(__file__).resolve().parent.parent


def make(kind: str, name: str = "layer", inputs: tuple[str, ...] = ("input",), **fields) -> LayerBase:
    """A validated layer of `kind`, as the spec loader would build it."""
    return KINDS[kind].model_validate({"type": kind, "name": name, "inputs": inputs, **fields})


@pytest.fixture
def spec_file(tmp_path):
    """Write spec text to a file and return its path."""
    def write(text: str, name: str = "net.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


# ---- CI: every test must run; none may skip ------------------------------------------------------------------
# Tests that need PyTorch are marked `oracle` and skip without it (the README's test command on a machine
# without torch). CI (CNNCALC_REQUIRE_ORACLE=1) installs everything, so there a skip of any test, oracle or
# not, marked or not, fails the run.
import os  # noqa: E402

_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_collectreport(report):
    if report.skipped:  # a whole module skipped at import (the torch-oracle modules without torch)
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CNNCALC_REQUIRE_ORACLE") == "1" and _skipped:
        print(f"\nCNNCALC_REQUIRE_ORACLE=1 but {len(_skipped)} test(s) were skipped (is torch==2.13.0 installed? "
              f"are the tests run as root, as CI does?), e.g. {_skipped[0]}")
        session.exitstatus = 1
