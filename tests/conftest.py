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


# ---- CI: the PyTorch oracle tests must run, not skip --------------------------------------------------------
import os  # noqa: E402

_skipped_oracle: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and "oracle" in report.keywords:
        _skipped_oracle.append(report.nodeid)


def pytest_collectreport(report):
    if report.skipped:  # a whole module skipped at import: only the torch-oracle modules do that
        _skipped_oracle.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CNNCALC_REQUIRE_ORACLE") == "1" and _skipped_oracle:
        print(f"\nCNNCALC_REQUIRE_ORACLE=1 but {len(_skipped_oracle)} PyTorch oracle test(s) were skipped "
              f"(is torch==2.13.0 installed?), e.g. {_skipped_oracle[0]}")
        session.exitstatus = 1
