"""The witness stands alone: break a shape rule the way a real bug would, and `cnncalc verify` must catch it.

Each test patches one family's rule to a plausible wrong answer and runs `verify` on a spec where the wrong
answer shows: the NumPy kernels read their output sizes off the arrays, so the executed shape stays right and
verify reports the mismatch (exit 1, the layer, both shapes). If a kernel ever reused the rules' arithmetic
again, the two would agree on the wrong shape and these tests would fail.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.layers import merge, reshape, window
from cnncalc.units import shape_text

KERNELS = Path(__file__).resolve().parent.parent / "cnncalc" / "kernels"
LAYERS = KERNELS.parent / "layers"


def verify(spec_file, layers: str, input_shape: str) -> str:
    spec = spec_file(f"input: {input_shape}\nlayers:\n{layers}", "mutant.yaml")
    result = CliRunner().invoke(app, ["verify", str(spec)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    return result.stdout


def assert_caught(output: str, layer: str, kind: str, executed: tuple[int, ...], calculated: tuple[int, ...]):
    assert "MISMATCH" in output
    assert (f"Layer {layer} ({kind}) executed with shape {shape_text(executed)}, but the calculation says "
            f"{shape_text(calculated)}") in output, output


# ---- window arithmetic: convolution and pooling ---------------------------------------------------------------

def test_floor_instead_of_ceil_is_caught(spec_file, monkeypatch):
    original = window.window_count
    monkeypatch.setattr(window, "window_count",
                        lambda size, kernel, stride, pad, dilation=1, ceil_mode=False:
                        original(size, kernel, stride, pad, dilation, False))
    out = verify(spec_file, "  - {type: maxpool2d, name: pool, kernel_size: 3, stride: 2, ceil_mode: true}\n",
                 "[1, 8, 8]")
    # PyTorch: ceil((8 - 3) / 2) + 1 = 4; the mutant floors to 3
    assert_caught(out, "pool", "maxpool2d", (1, 1, 4, 4), (1, 1, 3, 3))


def test_the_ceil_mode_last_window_rule_removed_is_caught(spec_file, monkeypatch):
    monkeypatch.setattr(window, "_drops_last", lambda *args: False)
    out = verify(spec_file, "  - {type: maxpool2d, name: pool, kernel_size: 2, stride: 2, padding: 1, "
                            "ceil_mode: true}\n", "[1, 5, 5]")
    # ceil((5 + 2 - 2) / 2) + 1 = 4, but window 3 would start at 6 >= 5 + 1, in the padding: PyTorch drops it
    assert_caught(out, "pool", "maxpool2d", (1, 1, 3, 3), (1, 1, 4, 4))


def test_padding_counted_once_instead_of_twice_is_caught(spec_file, monkeypatch):
    original = window.window_count
    monkeypatch.setattr(window, "window_count",
                        lambda size, kernel, stride, pad, dilation=1, ceil_mode=False:
                        original(size, kernel, stride, (pad[0], 0), dilation, ceil_mode))
    out = verify(spec_file, "  - {type: conv2d, name: conv, out_channels: 2, kernel_size: 3, padding: 1}\n",
                 "[1, 8, 8]")
    assert_caught(out, "conv", "conv2d", (1, 2, 8, 8), (1, 2, 7, 7))


def test_output_padding_ignored_is_caught(spec_file, monkeypatch):
    original = window.transposed_output
    monkeypatch.setattr(window, "transposed_output",
                        lambda sizes, kernel, stride, padding, dilation, output_padding:
                        original(sizes, kernel, stride, padding, dilation, (0,) * len(sizes)))
    out = verify(spec_file, "  - {type: conv_transpose2d, name: up, out_channels: 2, kernel_size: 3, stride: 2, "
                            "padding: 1, output_padding: 1}\n", "[3, 4, 4]")
    # (4 - 1) * 2 - 2 + 2 + 1 + 1 = 8; without output_padding 7
    assert_caught(out, "up", "conv_transpose2d", (1, 2, 8, 8), (1, 2, 7, 7))


def test_same_padding_total_off_by_one_is_caught(spec_file, monkeypatch):
    original = window.same_padding
    monkeypatch.setattr(window, "same_padding", lambda size, kernel, stride, dilation:
                        tuple(p + 1 for p in original(size, kernel, stride, dilation)))
    out = verify(spec_file, "  - {type: conv2d, name: conv, out_channels: 2, kernel_size: 3, stride: 2, "
                            "padding: same}\n", "[1, 9, 9]")
    # TensorFlow's 'same': ceil(9 / 2) = 5; one more padding on each side gives 6
    assert_caught(out, "conv", "conv2d", (1, 2, 5, 5), (1, 2, 6, 6))


def test_same_padding_split_the_other_way_does_not_reach_the_witness(spec_file, monkeypatch, tmp_path):
    """A split changes no shape, so verify cannot see it; what proves the witness independent is that its
    values do not move when the rule's split does (and tests/test_kernels_vs_torch.py holds those values to
    PyTorch's)."""
    spec = spec_file("input: [2, 6, 6]\nlayers:\n  - {type: conv2d, name: conv, out_channels: 2, kernel_size: 2, "
                     "stride: 2, padding: same}\n", "same.yaml")

    def output() -> np.ndarray:
        result = CliRunner().invoke(app, ["verify", str(spec), "--save-output", str(tmp_path / "y.npy")])
        assert result.exit_code == 0, result.output
        return np.load(tmp_path / "y.npy")

    right = output()
    original = window.same_padding
    monkeypatch.setattr(window, "same_padding", lambda *args: original(*args)[::-1])
    assert window.resolve_padding("same", (5,), (2,), (2,), (1,)) == ((1, 0),)  # the rule is broken...
    np.testing.assert_array_equal(output(), right)  # ...and the witness is not


# ---- resizing, reshaping and joining --------------------------------------------------------------------------

def test_upsample_rounding_up_is_caught(spec_file, monkeypatch):
    monkeypatch.setattr(reshape, "floor", math.ceil)
    out = verify(spec_file, "  - {type: upsample, name: up, scale_factor: 1.5}\n", "[1, 5, 5]")
    assert_caught(out, "up", "upsample", (1, 1, 7, 7), (1, 1, 8, 8))  # floor(5 * 1.5) = 7


def test_flatten_with_an_exclusive_end_is_caught(spec_file, monkeypatch):
    def wrong(self, x):
        return (math.prod(x[:-1]),)  # forgets the last axis
    monkeypatch.setattr(reshape.Flatten, "output_shape", wrong)
    out = verify(spec_file, "  - {type: flatten, name: flat}\n", "[2, 3, 4]")
    assert_caught(out, "flat", "flatten", (1, 24), (1, 6))


def test_reshape_inferring_from_the_wrong_total_is_caught(spec_file, monkeypatch):
    def wrong(self, x):
        known = math.prod(d for d in self.shape if d != -1)
        return tuple(math.prod(x[1:]) // known if d == -1 else d for d in self.shape)  # forgets axis 0
    monkeypatch.setattr(reshape.Reshape, "output_shape", wrong)
    out = verify(spec_file, "  - {type: reshape, name: r, shape: [4, -1]}\n", "[2, 3, 4]")
    assert_caught(out, "r", "reshape", (1, 4, 6), (1, 4, 3))


def test_pad_counting_each_side_once_is_caught(spec_file, monkeypatch):
    def wrong(self, x):
        return (x[0], *(n + max(b, a) for n, (b, a) in zip(x[1:], self.pairs(x))))  # one side only
    monkeypatch.setattr(reshape.Pad, "output_shape", wrong)
    out = verify(spec_file, "  - {type: pad, name: p, padding: [[1, 2], 3], mode: reflect}\n", "[2, 4, 5]")
    assert_caught(out, "p", "pad", (1, 2, 7, 11), (1, 2, 6, 8))  # 4 + 1 + 2, 5 + 3 + 3


def test_conv_padding_mode_dropped_is_caught_by_its_values(monkeypatch):
    """padding_mode changes no shape: what shows the engine pads in that mode is its values, PyTorch's
    (tests/test_engine_vs_torch.py 'padding_modes'); here, that they differ from zero padding's."""
    from cnncalc.kernels.conv import conv
    x = np.arange(1, 2 * 3 * 4 * 5 + 1, dtype=np.float32).reshape(2, 3, 4, 5)
    w = np.ones((2, 3, 3, 3), np.float32)
    ys = {mode: conv(x, w, None, (1, 1), [(1, 1), (2, 0)], (1, 1), 1, mode)
          for mode in ("zeros", "reflect", "replicate", "circular")}
    assert {y.shape for y in ys.values()} == {(2, 2, 4, 5)}
    assert all(not np.allclose(ys["zeros"], ys[m]) for m in ("reflect", "replicate", "circular"))
    # interior windows see no padding: the same in every mode
    assert all(np.allclose(ys["zeros"][..., 1:-1, 2:], ys[m][..., 1:-1, 2:]) for m in ys)


def test_concat_along_the_wrong_axis_is_caught(spec_file, monkeypatch):
    def wrong(self, *xs):
        return (xs[0][0], sum(x[1] for x in xs), *xs[0][2:])  # the axis after `dim`
    monkeypatch.setattr(merge.Concat, "output_shape", wrong)
    out = verify(spec_file, "  - {type: relu, name: a}\n  - {type: concat, name: cat, inputs: [a, input]}\n",
                 "[2, 4, 4]")
    assert_caught(out, "cat", "concat", (1, 4, 4, 4), (1, 2, 8, 4))


def test_broadcast_taking_the_first_inputs_shape_is_caught(spec_file, monkeypatch):
    monkeypatch.setattr(merge.ElementwiseMerge, "output_shape", lambda self, *xs: xs[0])  # no broadcasting
    out = verify(spec_file, "  - {type: global_avgpool, name: gate, keepdims: true}\n"
                            "  - {type: multiply, name: excite, inputs: [gate, input]}\n", "[3, 4, 5]")
    assert_caught(out, "excite", "multiply", (1, 3, 4, 5), (1, 3, 1, 1))


# ---- the witness's independence, structurally -----------------------------------------------------------------

def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("path", sorted(KERNELS.glob("*.py")), ids=lambda p: p.name)
def test_kernels_depend_on_numpy_alone(path):
    allowed = {"__future__", "numpy", "numpy.lib.stride_tricks", "math", "typing", "importlib", "types"}
    foreign = {name for name in imports(path) if name not in allowed and not name.startswith("cnncalc.kernels")}
    assert not foreign, f"{path.name} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", sorted(LAYERS.glob("*.py")), ids=lambda p: p.name)
def test_layers_import_only_at_the_top_of_their_files(path):
    hidden = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    assert not hidden, f"{path.name} imports inside functions at lines {hidden}"
