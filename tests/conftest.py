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
