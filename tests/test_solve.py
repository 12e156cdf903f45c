"""`solve`: every answer is fed back through the real layer classes and an independent coverage count.

The oracle here is deliberately separate from cnncalc.solve: output sizes come from the layer classes
(`Conv`, `ConvTranspose`, `MaxPool`, `AvgPool` via conftest's `make`), and "no lost pixels" from listing
every padded position some tap reads, i*S + j*D, and checking that it contains every input position.
Completeness is checked against a brute force over small ranges written out in this file.
"""
from __future__ import annotations

import io
import json
import re
from itertools import product

import pytest
from rich.console import Console

from cnncalc.errors import CnnCalcError
from cnncalc.layers import KINDS
from cnncalc.layers import window as W
from cnncalc.layers.advice import window_advice
from cnncalc.solve import Chain, Solution, lost_pixels, parse_values, solve_chain, solve_layer
from cnncalc.solve_report import (chains_json, chains_markdown, chains_table, solutions_json, solutions_markdown,
                                  solutions_table)
from conftest import make

# ---- the independent oracle ------------------------------------------------------------------------------


def real_output(s: Solution, n: int) -> int:
    """The output size the layer catalogue computes for an n x n input (both axes must agree)."""
    if s.kind == "pool":
        outs = {make(kind, **s.fields()).output_shape((1, n, n)) for kind in ("maxpool2d", "avgpool2d")}
        assert len(outs) == 1, outs
        (shape,) = outs
    else:
        shape = make("conv2d" if s.kind == "conv" else "conv_transpose2d", out_channels=1,
                     **s.fields()).output_shape((1, n, n))
    assert shape[0] == 1 and shape[1] == shape[2]
    return shape[1]


def taps_read(n: int, k: int, s: int, p: int, d: int) -> set[int]:
    """Input positions (0-based, padding excluded) some tap of some window reads, from the formula."""
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return {i * s + j * d - p for i in range(out) for j in range(k)} & set(range(n))


def lossless(n: int, k: int, s: int, p: int, d: int) -> bool:
    return taps_read(n, k, s, p, d) == set(range(n))


def check_solution(s: Solution, n: int, m: int) -> None:
    """The real calculator gives exactly m; conv/pool read every pixel, the skipped tail is padding."""
    assert real_output(s, n) == m, (s, n, m)
    assert s.output_size(n) == m
    if s.kind == "conv_transpose":
        assert s.output_padding < max(s.stride, s.dilation)  # PyTorch's rule
        return
    assert s.output_padding == 0
    assert lossless(n, s.kernel_size, s.stride, s.padding, s.dilation), (s, n)
    remainder = (n + 2 * s.padding - s.dilation * (s.kernel_size - 1) - 1) % s.stride
    assert remainder <= s.padding, (s, n)  # the unread tail positions are all padding
    assert lost_pixels(n, s.kernel_size, s.stride, s.padding, s.dilation) == 0
    # consistent with summarize's design warnings for the same layer
    advice = window_advice((n,), (s.kernel_size,), (s.stride,), ((s.padding, s.padding),), (s.dilation,))
    assert not {a.code for a in advice} & {"lost-pixels", "strided-gaps"}, advice
    if s.kind == "pool":
        assert s.dilation == 1 and s.padding <= s.kernel_size // 2


def k_s_p_d(s: Solution) -> tuple[int, int, int, int]:
    return s.kernel_size, s.stride, s.padding, s.dilation


# ---- hand-worked answers -----------------------------------------------------------------------------------

def test_224_to_112_kernel_3_is_stride_2_padding_1_first():
    # floor((224 + 2 - 2 - 1) / 2) + 1 = 112; (224 + 2 - 3) mod 2 = 1 <= padding 1: only padding is skipped
    solutions = solve_layer(224, 112, "conv", kernels=[3])
    assert k_s_p_d(solutions[0]) == (3, 2, 1, 1)
    # k3 d2 s2 p2 also gives floor((224 + 4 - 4 - 1)/2) + 1 = 112, but its taps land on even positions only
    assert real_output(Solution("conv", 3, 2, 2, 2), 224) == 112
    assert not lossless(224, 3, 2, 2, 2)
    assert (3, 2, 2, 2) not in {k_s_p_d(s) for s in solutions}
    for s in solutions:
        check_solution(s, 224, 112)


def test_224_to_224_kernel_3_is_stride_1_padding_1_first():
    solutions = solve_layer(224, 224, "conv", kernels=[3])
    assert k_s_p_d(solutions[0]) == (3, 1, 1, 1)
    # the rest are the dilated 'same' convolutions: padding = dilation
    assert [k_s_p_d(s) for s in solutions] == [(3, 1, d, d) for d in (1, 2, 3, 4)]


def test_alexnet_conv1_227_to_55_kernel_11_is_stride_4_padding_0():
    # (227 - 11) / 4 + 1 = 55 exactly
    solutions = solve_layer(227, 55, "conv", kernels=[11])
    assert k_s_p_d(solutions[0]) == (11, 4, 0, 1)
    for s in solutions:
        check_solution(s, 227, 55)


def test_resnet_stem_and_maxpool():
    assert k_s_p_d(solve_layer(224, 112, "conv", kernels=[7])[0]) == (7, 2, 3, 1)
    pools = solve_layer(112, 56, "pool", kernels=[3])
    assert (pools[0].kernel_size, pools[0].stride, pools[0].padding) == (3, 2, 1)
    assert k_s_p_d(solve_layer(112, 56, "pool")[0]) == (2, 2, 0, 1)  # plain 2x2 pooling first


def test_transposed_16_to_32_kernel_4_is_stride_2_padding_1():
    # (16-1)*2 - 2*1 + (4-1) + 0 + 1 = 32
    solutions = solve_layer(16, 32, "conv_transpose", kernels=[4])
    first = solutions[0]
    assert (*k_s_p_d(first), first.output_padding) == (4, 2, 1, 1, 0)
    for s in solutions:
        check_solution(s, 16, 32)
    unconstrained = solve_layer(16, 32, "conv_transpose")
    assert (*k_s_p_d(unconstrained[0]), unconstrained[0].output_padding) == (2, 2, 0, 1, 0)
    assert Solution("conv_transpose", 4, 2, 1) in unconstrained


def test_unconstrained_224_to_112_order():
    solutions = solve_layer(224, 112)
    # fewer non-default values first (k2 s2 p0 changes only the stride), then the smaller kernel
    assert [k_s_p_d(s) for s in solutions[:4]] == [(2, 2, 0, 1), (3, 2, 1, 1), (4, 2, 1, 1), (5, 2, 2, 1)]
    assert all(s.dilation == 1 for s in solutions[:10]) and solutions[-1].dilation > 1
    assert [s.sort_key() for s in solutions] == sorted(s.sort_key() for s in solutions)
    assert len(set(solutions)) == len(solutions)
    for s in solutions:
        check_solution(s, 224, 112)


def test_strides_that_skip_pixels_are_refused():
    # k1 s2 maps 225 to 113 with remainder 0, but reads every other pixel only
    assert real_output(Solution("conv", 1, 2, 0), 225) == 113
    assert len(taps_read(225, 1, 2, 0, 1)) == 113
    with pytest.raises(CnnCalcError):
        solve_layer(225, 113, "conv", kernels=[1])


def test_output_1_keeps_one_stride():
    # a 7x7 map pooled to 1: any stride works, only the default (= kernel) is listed
    solutions = solve_layer(7, 1, "pool", kernels=[7])
    assert [(s.kernel_size, s.stride, s.padding) for s in solutions] == [(7, 7, 0)]
    for s in solve_layer(7, 1, "conv"):
        check_solution(s, 7, 1)


@pytest.mark.parametrize("n, m, kind, constraints", [
    (224, 112, "conv", {}), (224, 56, "conv", {}), (224, 113, "conv", {}), (56, 28, "pool", {}),
    (227, 55, "conv", {}), (300, 150, "conv", {"dilations": [1, 2, 3]}), (33, 17, "conv", {"max_padding": 1}),
    (7, 14, "conv_transpose", {}), (5, 11, "conv_transpose", {"strides": [2, 3]}), (1, 4, "conv_transpose", {}),
    (10, 12, "conv", {}), (13, 7, "pool", {"kernels": [2, 3, 4]}),
])
def test_every_solution_checks_out(n, m, kind, constraints):
    solutions = solve_layer(n, m, kind, **constraints)
    assert solutions
    for s in solutions:
        assert s.kind == kind
        check_solution(s, n, m)
        if "max_padding" in constraints:
            assert s.padding <= constraints["max_padding"]
        if "dilations" in constraints:
            assert s.dilation in constraints["dilations"]
        if "strides" in constraints:
            assert s.stride in constraints["strides"]


# ---- completeness: brute force over small ranges -----------------------------------------------------------

KERNELS, STRIDES, DILATIONS = range(1, 6), range(1, 6), range(1, 4)


def brute_window(n: int, kind: str) -> dict[int, set[tuple[int, int, int, int]]]:
    """Every (k, s, p, d) of the small ranges, by exact output, that reads every pixel. Padding up to the
    effective kernel - 1 (pools: k // 2); dilation only for conv and only with k > 1 (d means nothing at k=1)."""
    found: dict[int, set[tuple[int, int, int, int]]] = {}
    for k, s, d in product(KERNELS, STRIDES, DILATIONS if kind == "conv" else (1,)):
        if k == 1 and d > 1:
            continue
        for p in range(k // 2 + 1 if kind == "pool" else d * (k - 1) + 1):
            out = (n + 2 * p - d * (k - 1) - 1) // s + 1
            if out >= 1 and lossless(n, k, s, p, d):
                found.setdefault(out, set()).add((k, s, p, d))
    return found


@pytest.mark.parametrize("kind", ["conv", "pool"])
def test_window_layers_complete_on_small_ranges(kind):
    for n in range(1, 19):
        expected = brute_window(n, kind)
        for m in range(1, n + 10):
            if m not in expected:
                with pytest.raises(CnnCalcError):
                    solve_layer(n, m, kind, kernels=KERNELS, strides=STRIDES, dilations=DILATIONS if kind == "conv"
                                else None)
                continue
            got = solve_layer(n, m, kind, kernels=KERNELS, strides=STRIDES,
                              dilations=DILATIONS if kind == "conv" else None)
            if m == 1:  # the stride changes nothing: one stride per (k, p, d), the listed one among the valid
                assert {(k, p, d) for k, _, p, d in map(k_s_p_d, got)} == {(k, p, d) for k, _, p, d in expected[m]}
                assert {k_s_p_d(s) for s in got} <= expected[m]
            else:
                assert {k_s_p_d(s) for s in got} == expected[m], (n, m)
            assert len(got) == len(set(got))


def test_transposed_complete_on_small_ranges():
    for n in range(1, 9):
        expected: dict[int, set[tuple[int, int, int, int, int]]] = {}
        for k, s, d in product(KERNELS, STRIDES, DILATIONS):
            if k == 1 and d > 1:
                continue
            for p, op in product(range(d * (k - 1) + 1), range(max(s, d))):
                out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
                if out >= 1:
                    expected.setdefault(out, set()).add((k, s, p, d, op))
        for m in range(1, 30):
            if m not in expected:
                with pytest.raises(CnnCalcError):
                    solve_layer(n, m, "conv_transpose", kernels=KERNELS, strides=STRIDES, dilations=DILATIONS)
                continue
            got = {(*k_s_p_d(s), s.output_padding)
                   for s in solve_layer(n, m, "conv_transpose", kernels=KERNELS, strides=STRIDES,
                                        dilations=DILATIONS)}
            if n == 1:  # (n-1)*S vanishes: the stride only bounds output_padding; one stride is kept
                assert {(k, p, d, op) for k, _, p, d, op in got} == {(k, p, d, op) for k, _, p, d, op in expected[m]}
                assert got <= expected[m]
            else:
                assert got == expected[m], (n, m)


def test_lost_pixels_counts_like_the_oracle():
    for n, k, s, d in product(range(1, 30), range(1, 7), range(1, 7), range(1, 4)):
        for p in range(d * (k - 1) + 1):
            if W.window_count(n, k, s, (p, p), d) >= 1:
                assert lost_pixels(n, k, s, p, d) == n - len(taps_read(n, k, s, p, d)), (n, k, s, p, d)


# ---- chains ------------------------------------------------------------------------------------------------

def check_chain(chain: Chain, n: int, m: int, layers: int) -> None:
    assert len(chain) == layers and len(chain.sizes) == layers + 1
    assert chain.sizes[0] == n and chain.sizes[-1] == m
    for s, size_in, size_out in zip(chain, chain.sizes, chain.sizes[1:]):
        check_solution(s, size_in, size_out)
        assert size_out < size_in if m < n else size_out > size_in if m > n else size_out == size_in


def test_224_to_7_in_5_layers_kernel_3_is_five_stride_2_layers():
    chains = solve_chain(224, 7, 5, "conv", kernels=[3])
    assert chains[0].sizes == (224, 112, 56, 28, 14, 7)
    assert [k_s_p_d(s) for s in chains[0]] == [(3, 2, 1, 1)] * 5
    assert 1 < len(chains) <= 10 and len(set(chains)) == len(chains)
    for chain in chains:
        check_chain(chain, 224, 7, 5)


def test_224_to_7_in_5_layers_unconstrained():
    chains = solve_chain(224, 7, 5)
    assert len(chains) == 10
    assert all(c.sizes == (224, 112, 56, 28, 14, 7) and c.distinct == 1 for c in chains)
    assert [k_s_p_d(c[0]) for c in chains[:2]] == [(2, 2, 0, 1), (3, 2, 1, 1)]
    for chain in chains:
        check_chain(chain, 224, 7, 5)


def test_pool_and_transposed_chains():
    pools = solve_chain(224, 7, 5, "pool", limit=3)
    assert len(pools) == 3 and pools[0].sizes == (224, 112, 56, 28, 14, 7)
    ups = solve_chain(7, 224, 5, "conv_transpose", kernels=[4], limit=5)
    assert [(*k_s_p_d(s), s.output_padding) for s in ups[0]] == [(4, 2, 1, 1, 0)] * 5
    for chain in pools:
        check_chain(chain, 224, 7, 5)
    for chain in ups:
        check_chain(chain, 7, 224, 5)


def test_chain_keeping_the_size():
    chains = solve_chain(32, 32, 3, "conv", kernels=[3, 5])
    assert [k_s_p_d(c[0]) for c in chains[:2]] == [(3, 1, 1, 1), (5, 1, 2, 1)]
    for chain in chains:
        check_chain(chain, 32, 32, 3)


def brute_chains(n: int, m: int, layers: int, kernels, strides, dilations) -> set[tuple]:
    """Every chain of conv layers, each exact, lossless and shrinking the size, ending at m."""
    def step(size: int) -> dict[int, set[tuple[int, int, int, int]]]:
        found: dict[int, set[tuple[int, int, int, int]]] = {}
        for k, s, d in product(kernels, strides, dilations):
            if k == 1 and d > 1:
                continue
            for p in range(d * (k - 1) + 1):
                out = (size + 2 * p - d * (k - 1) - 1) // s + 1
                if m <= out < size and lossless(size, k, s, p, d):
                    found.setdefault(out, set()).add((k, s, p, d))
        return found

    chains = {((), (n,))}
    for _ in range(layers):
        chains = {(layers_so_far + (layer,), sizes + (out,)) for layers_so_far, sizes in chains
                  for out, options in step(sizes[-1]).items() for layer in options}
    return {c for c in chains if c[1][-1] == m}


def test_chains_complete_on_a_small_case():
    kernels, strides, dilations = range(1, 4), range(1, 4), range(1, 3)
    expected = brute_chains(20, 4, 2, kernels, strides, dilations)
    got = solve_chain(20, 4, 2, "conv", kernels=kernels, strides=strides, dilations=dilations, limit=10_000)
    assert 10 < len(expected) < 10_000
    assert {(tuple(k_s_p_d(s) for s in c), c.sizes) for c in got} == expected
    assert [c.sort_key() for c in got] == sorted(c.sort_key() for c in got)


def test_chains_of_one_layer_are_the_single_layer_solutions():
    chains = solve_chain(224, 112, 1, "conv", kernels=[3, 5, 7], limit=100)
    assert [c[0] for c in chains] == solve_layer(224, 112, "conv", kernels=[3, 5, 7])


# ---- errors ------------------------------------------------------------------------------------------------

def test_no_solution_names_real_nearest_outputs():
    with pytest.raises(CnnCalcError) as err:
        solve_layer(224, 7, "conv", kernels=[3])
    text = str(err.value)
    assert "224 into 7" in text and "kernel_size 3" in text
    nearest = re.search(r"reach: (\d+) \(k=(\d+) s=(\d+) p=(\d+)\)", text)
    assert nearest, text
    out, k, s, p = map(int, nearest.groups())
    assert real_output(Solution("conv", k, s, p), 224) == out and lossless(224, k, s, p, 1)


def test_upsampling_with_a_conv_points_to_conv_transpose():
    with pytest.raises(CnnCalcError, match="conv_transpose"):
        solve_layer(10, 300, "conv")
    with pytest.raises(CnnCalcError, match="To downsample"):
        solve_layer(100, 20, "conv_transpose")


@pytest.mark.parametrize("call, match", [
    (lambda: solve_layer(0, 5), "input size must be a positive integer"),
    (lambda: solve_layer(5, -1), "output size must be a positive integer"),
    (lambda: solve_layer(True, 1), "positive integer"),
    (lambda: solve_layer(5, 3, "deconv"), "unknown layer kind"),
    (lambda: solve_layer(5, 3, "pool", dilations=[2]), "no dilation"),
    (lambda: solve_layer(5, 3, kernels=[0]), "kernel_size must be a positive integer"),
    (lambda: solve_layer(5, 3, kernels=[]), "no kernel_size to try"),
    (lambda: solve_layer(5, 3, max_padding=-1), "max_padding"),
    (lambda: solve_chain(224, 7, 0), "number of layers"),
    (lambda: solve_chain(224, 7, 5, limit=0), "limit"),
    (lambda: solve_chain(8, 8, 10_000), "at most|more than"),
    (lambda: solve_layer(5, 3, "conv_transpose", kernels=range(1, 200), strides=range(1, 200)), "too many"),
])
def test_user_errors(call, match):
    with pytest.raises(CnnCalcError, match=match) as err:
        call()
    assert err.value.fix


def test_impossible_chain_suggests_layer_counts_that_work():
    with pytest.raises(CnnCalcError) as err:
        solve_chain(224, 3, 2, "conv", kernels=[3])
    counts = re.search(r"--layers ([\d, or]+)\.", str(err.value))
    assert counts, str(err.value)
    for layers in map(int, re.findall(r"\d+", counts.group(1))):
        check_chain(solve_chain(224, 3, layers, "conv", kernels=[3], limit=1)[0], 224, 3, layers)


# ---- solutions as data, and rendered -------------------------------------------------------------------------

def test_fields_and_spec_layers():
    conv, up, pool = Solution("conv", 3, 2, 1), Solution("conv_transpose", 4, 2, 1), Solution("pool", 3, 2, 1)
    assert conv.fields() == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1}
    assert up.fields() == {"kernel_size": 4, "stride": 2, "padding": 1, "dilation": 1, "output_padding": 0}
    assert pool.fields() == {"kernel_size": 3, "stride": 2, "padding": 1}
    for s, n, m in ((conv, 224, 112), (up, 16, 32), (pool, 112, 56)):
        layer = s.to_layer(out_channels=8)
        cls = KINDS[layer["type"]]
        built = cls.model_validate({**layer, "name": "x", "inputs": ("input",)})
        assert built.output_shape((3, n, n))[1:] == (m, m)
    assert pool.to_layer(out_channels=8) == {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1}
    assert "out_channels" not in conv.to_layer()


def rendered(table) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_solutions_renderers():
    solutions = solve_layer(224, 112, "conv", kernels=[3])
    data = json.loads(solutions_json(224, 112, "conv", solutions))
    assert data == {"schema_version": 1, "input": 224, "output": 112, "kind": "conv",
                    "solutions": [s.fields() for s in solutions]}
    assert data["solutions"][0] == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1}
    text = rendered(solutions_table(224, 112, "conv", solutions))
    assert "floor((224 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 112" in text
    assert "kernel_size" in text and "output_padding" not in text
    markdown = solutions_markdown(224, 112, "conv", solutions)
    assert "| 1 | 3 | 2 | 1 | 1 | `floor((224 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 112` |" in markdown

    ups = solve_layer(16, 32, "conv_transpose", kernels=[4])
    text = rendered(solutions_table(16, 32, "conv_transpose", ups))
    assert "output_padding" in text and "(16-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 32" in text
    assert json.loads(solutions_json(16, 32, "conv_transpose", ups))["solutions"][0]["output_padding"] == 0
    pools = json.loads(solutions_json(112, 56, "pool", solve_layer(112, 56, "pool")))["solutions"]
    assert all(set(p) == {"kernel_size", "stride", "padding"} for p in pools)


def test_chain_renderers():
    chains = solve_chain(224, 7, 5, "conv", kernels=[3], limit=3)
    data = json.loads(chains_json(224, 7, "conv", chains))
    assert data["schema_version"] == 1 and data["kind"] == "conv" and data["layers"] == 5
    assert data["chains"][0] == {"layers": [{"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1}] * 5,
                                 "sizes": [224, 112, 56, 28, 14, 7]}
    assert len(data["chains"]) == 3
    text = rendered(chains_table(224, 7, "conv", chains))
    assert "224 -> 112 -> 56 -> 28 -> 14 -> 7" in text and "k=3 s=2 p=1 x5" in text
    assert "3 chains of 5 layers" in text
    assert "| 1 | 224 -> 112 -> 56 -> 28 -> 14 -> 7 | k=3 s=2 p=1 x5 |" in chains_markdown(224, 7, "conv", chains)


def test_parse_values():
    assert parse_values(["3,5", "7"], "--kernel") == (3, 5, 7)
    assert parse_values(["1..4"], "--dilation") == (1, 2, 3, 4)
    assert parse_values(None, "--kernel") is None
    for bad in (["0"], ["3,x"], ["4..1"], ["-1"]):
        with pytest.raises(CnnCalcError, match="--kernel"):
            parse_values(bad, "--kernel")
