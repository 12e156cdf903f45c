"""`cnncalc solve`: which (kernel_size, stride, padding, dilation) turn an input size into a wanted output size.

Pure functions over plain data (one spatial axis at a time; sizes are ints) plus renderers that build
Rich tables, JSON and Markdown and never print. Output sizes come from `_window` (`window_count`,
`transposed_output`, `formula`); the search evaluates them on NumPy arrays of candidates.

Kinds
- ``conv``: conv2d. ``out = floor((N + 2P - D(F-1) - 1) / S) + 1``.
- ``conv_transpose``: conv_transpose2d. ``out = (N-1)S - 2P + D(F-1) + output_padding + 1`` with
  ``output_padding < max(S, D)`` (PyTorch's rule).
- ``pool``: a window pool without dilation, valid as maxpool2d *and* avgpool2d (``to_layer`` writes
  maxpool2d). Pool solutions always have dilation 1 (avg pooling has none; asking for another raises).
  PyTorch's pooling rule ``padding <= kernel_size // 2`` applies.

No lost pixels (conv and pool)
  Every input pixel must be read by at least one window tap. Window i's tap j reads padded position
  ``i*S + j*D``; the input occupies positions ``P .. P+N-1``. Pixels are lost
  - at the end: with ``r = (N + 2P - D(F-1) - 1) mod S``, the last ``r`` padded positions are never read.
    That is harmless while they are padding, so the rule is ``r <= P`` (``r == 0`` when ``P == 0``), the
    same rule as summarize's 'lost-pixels' warning. ResNet's ``k3 s2 p1`` on 224 has ``r = 1``: only the
    right padding column is skipped, no pixel, which is why it is the answer for 224 -> 112.
  - in between: a stride larger than the kernel (a 1x1 stride-2 conv: summarize's 'strided-gaps'), or a
    dilation sharing a factor with the stride (``k3 d2 s2`` reads only even positions), or too few taps.
  Transposed convolutions have no such notion here.

Default search ranges (when a constraint is not given)
  kernel_size 1..11; stride 1..max(8, largest kernel) (a larger stride always skips pixels, unless the
  output is 1); dilation 1..4 (1 for pools, and for kernel_size 1 where it means nothing); padding
  0..D(F-1), the effective kernel - 1 (more would add windows that read only padding), for pools
  0..kernel_size//2; ``max_padding`` lowers that cap. When the output is 1 (or a transposed input is 1) the
  stride changes nothing, so only the simplest stride is kept.

"Simplest first": solutions are sorted by `Solution.sort_key`, lexicographically:
  1. dilation 1 before dilation > 1;
  2. output_padding 0 before > 0 (transposed);
  3. regular padding before irregular: 0 ('valid') or D(F-1)//2 (centred, 'same'-like) first;
  4. fewer non-default values (stride 1, or = kernel_size for pools; padding 0; dilation 1; output_padding 0);
  5. smaller kernel_size, stride, padding, dilation, output_padding.
  So 224 -> 112 with kernel 3 gives stride 2, padding 1 first; 224 -> 224 gives stride 1, padding 1;
  with no kernel given, 224 -> 112 starts k2 s2 p0, k3 s2 p1, k4 s2 p1, k5 s2 p2, ...

Chains (`solve_chain`): `layers` layers of one kind, every size on the way an integer and every layer
exact and lossless, each layer moving the size strictly toward the output (no detours, no size-keeping
filler; all sizes equal when input = output). Chains repeating one layer come first (fewer distinct
configurations), after fewer dilated layers; see `solve_chain` and `Chain.sort_key`.
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from math import gcd
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np


from cnncalc.errors import CnnCalcError, ShapeError, shown, shown_text
from cnncalc.limits import MAX_INT, MAX_OPTION
from cnncalc.layers import window as W

KINDS = ("conv", "conv_transpose", "pool")
LAYER_TYPES = {"conv": "conv2d", "conv_transpose": "conv_transpose2d", "pool": "maxpool2d"}
KIND_LABELS = {"conv": "convolution", "conv_transpose": "transposed convolution", "pool": "pooling window"}
DEFAULT_KERNELS = tuple(range(1, 12))
DEFAULT_DILATIONS = tuple(range(1, 5))
MIN_DEFAULT_MAX_STRIDE = 8
DEFAULT_LIMIT = 10
MAX_LAYERS = 100  # chain length (the search recurses once per layer)
MAX_VALUES = 1024  # values of one of --kernel, --stride, --dilation
MAX_CHAIN_WORK = 4_000_000  # steps of one chain search (a few seconds at most)
MAX_CHAIN_KEPT = 3_000_000  # moves a chain search remembers (its memory: about 50 bytes each)
VECTOR_STEPS = 8  # candidate layers tried as one NumPy pass cost about one Python step per this many
FALLBACK_STEPS = 8  # a candidate whose lost pixels are counted in Python (`_lossless`) costs about this many
MAX_COMBINATIONS = 100_000  # (kernel_size, stride, dilation) triples in one search space
_RANGE = re.compile(r"\s*([0-9]{1,13})\s*(?:\.\.\s*([0-9]{1,13})\s*)?")


# ---- solutions -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Solution:
    """One layer's hyper-parameters along one spatial axis, named as in the layer catalogue."""

    kind: str  # 'conv' | 'conv_transpose' | 'pool'
    kernel_size: int
    stride: int
    padding: int
    dilation: int = 1
    output_padding: int = 0  # transposed only

    @property
    def effective_kernel(self) -> int:
        return W.effective_kernel(self.kernel_size, self.dilation)

    def fields(self) -> dict[str, int]:
        """Catalogue field names: kernel_size, stride, padding, then dilation (not for pools) and
        output_padding (transposed only)."""
        out = {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}
        if self.kind != "pool":
            out["dilation"] = self.dilation
        if self.kind == "conv_transpose":
            out["output_padding"] = self.output_padding
        return out

    def to_layer(self, out_channels: int | None = None) -> dict[str, Any]:
        """A spec layer: {type: conv2d|conv_transpose2d|maxpool2d, ...fields}. Convolutions need
        `out_channels` in a spec: give it here (it is left out when None)."""
        layer: dict[str, Any] = {"type": LAYER_TYPES[self.kind]}
        if out_channels is not None and self.kind != "pool":
            layer["out_channels"] = out_channels
        layer.update(self.fields())
        return layer

    def output_size(self, size_in: int) -> int:
        """The output size for this input size (`layers.window`'s rules; < 1 possible for conv/pool)."""
        if self.kind == "conv_transpose":
            return W.transposed_output((size_in,), (self.kernel_size,), (self.stride,), (self.padding,),
                                       (self.dilation,), (self.output_padding,))[0]
        return W.window_count(size_in, self.kernel_size, self.stride, (self.padding, self.padding),
                              self.dilation)

    def lost_pixels(self, size_in: int) -> int | None:
        """How many input pixels no window reads (always 0 for transposed convolutions); None: too costly to
        count (`layers.window.unread_pixels`)."""
        if self.kind == "conv_transpose":
            return 0
        return lost_pixels(size_in, self.kernel_size, self.stride, self.padding, self.dilation)

    def formula(self, size_in: int) -> str:
        """The output-size rule with the numbers filled in: 'floor((224 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 112'."""
        result = self.output_size(size_in)
        if self.kind == "conv_transpose":  # as window.transposed_output writes it
            return (f"({size_in}-1)*{self.stride} - 2*{self.padding} + {self.dilation}*({self.kernel_size}-1) "
                    f"+ {self.output_padding} + 1 = {result}")
        text = W.formula("N", size_in, self.kernel_size, self.stride, (self.padding, self.padding),
                         self.dilation, False, result)
        return text.split(" = ", 1)[1]

    def short(self) -> str:
        """'k=3 s=2 p=1' (+ ' d=2', ' op=1' when not default), as `cnncalc summarize` shows a layer."""
        text = f"k={self.kernel_size} s={self.stride} p={self.padding}"
        if self.dilation != 1:
            text += f" d={self.dilation}"
        if self.output_padding:
            text += f" op={self.output_padding}"
        return text

    def sort_key(self) -> tuple[int, ...]:
        """Smaller is simpler; see the module docstring."""
        return _sort_key(self.kind, self.kernel_size, self.stride, self.padding, self.dilation,
                         self.output_padding)


@dataclass(frozen=True)
class Chain:
    """Layers applied in order, with every size on the way (sizes[0] = input, sizes[-1] = output).
    Iterating, len() and indexing act on the layers, as for a tuple of solutions."""

    layers: tuple[Solution, ...]
    sizes: tuple[int, ...]

    def __iter__(self) -> Iterator[Solution]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Solution:
        return self.layers[index]

    @property
    def distinct(self) -> int:
        """How many different layer configurations it uses (1: the same layer repeated)."""
        return len(set(self.layers))

    def sort_key(self) -> tuple[int, ...]:
        """Fewer dilated/output-padded layers, then fewer distinct configurations, then the summed layer keys."""
        total = _add_keys(s.sort_key() for s in self.layers)
        return (total[0], total[1], self.distinct, *total[2:])


def _add_keys(keys: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*keys))


def lost_pixels(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int | None:
    """How many of the `size` input pixels no tap reads, for symmetric padding (`layers.window`'s rule;
    None when too costly to count)."""
    return W.unread_pixels(size, kernel, stride, (padding, padding), dilation)


def _end_gap(kernel: int, stride: int, dilation: int) -> int | None:
    """The largest position no tap i*stride + j*dilation (i >= 0, 0 <= j < kernel) reaches, -1 if none;
    None when a whole residue class mod stride is missed (then pixels are lost in the middle too).

    With gcd(stride, dilation) = 1 and kernel >= stride, taps j = 0 .. stride-1 reach every residue class
    mod stride, class j*dilation first at j*dilation itself; so the last position missed is Frobenius's
    stride*dilation - stride - dilation (the largest number not a sum of multiples of the two)."""
    if gcd(stride, dilation) != 1 or kernel < stride:
        return None
    return max(stride * dilation - stride - dilation, -1)


# ---- the search space ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Space:
    kind: str
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    max_padding: int | None

    def describe(self) -> str:
        parts = [f"kernel_size {_values_text(self.kernels)}", f"stride {_values_text(self.strides)}"]
        if self.kind != "pool":
            parts.append(f"dilation {_values_text(self.dilations)}")
        if self.max_padding is not None:
            parts.append(f"padding <= {self.max_padding}")
        return ", ".join(parts)


def _values_text(values: Sequence[int]) -> str:
    if len(values) > 2 and values[-1] - values[0] + 1 == len(values):  # sorted and distinct: a whole range
        return f"{values[0]}..{values[-1]}"
    return ", ".join(str(v) for v in values)


def _positive(value: Any, what: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise CnnCalcError(f"{what} must be a positive integer up to {MAX_INT:,}; got {shown(value)}", fix=fix)
    return value


def _values(values: Iterable[int] | None, default: Sequence[int], what: str, option: str) -> tuple[int, ...]:
    if values is None:
        return tuple(default)
    if isinstance(values, int) and not isinstance(values, bool):
        values = (values,)
    chosen = tuple(sorted({_positive(v, what, f"Give {option} one or more positive integers.")
                           for v in values}))
    if not chosen:
        raise CnnCalcError(f"no {what} to try", fix=f"Give {option} one or more positive integers, or leave it out.")
    return chosen


def _space(kind: str, kernels: Iterable[int] | None, strides: Iterable[int] | None,
           dilations: Iterable[int] | None, max_padding: int | None) -> _Space:
    if kind not in KINDS:
        raise CnnCalcError(f"unknown layer kind {shown(kind)}", fix=f"Choose one of: {', '.join(KINDS)}.")
    kernel_values = _values(kernels, DEFAULT_KERNELS, "kernel_size", "--kernel")
    stride_values = _values(strides, range(1, min(max(MIN_DEFAULT_MAX_STRIDE, kernel_values[-1]), MAX_VALUES) + 1),
                            "stride", "--stride")
    if kind == "pool":
        dilation_values = _values(dilations, (1,), "dilation", "--dilation")
        if dilation_values != (1,):
            raise CnnCalcError("pool solutions have no dilation (avgpool2d has none)",
                               fix="Leave --dilation out for --kind pool, or use --kind conv.")
    else:
        dilation_values = _values(dilations, DEFAULT_DILATIONS, "dilation", "--dilation")
    if max_padding is not None and (isinstance(max_padding, bool) or not isinstance(max_padding, int)
                                    or not 0 <= max_padding <= MAX_INT):
        raise CnnCalcError(f"max_padding must be an integer from 0 to {MAX_INT:,}; got {shown(max_padding)}",
                           fix="Give --max-padding 0 or more, or leave it out.")
    combinations = len(kernel_values) * len(stride_values) * len(dilation_values)
    if combinations > MAX_COMBINATIONS:
        raise CnnCalcError(f"{combinations:,} combinations of kernel_size, stride and dilation are too many to try "
                           f"(at most {MAX_COMBINATIONS:,})",
                           fix="Narrow it: fewer --kernel, --stride or --dilation values.")
    return _Space(kind, kernel_values, stride_values, dilation_values, max_padding)


def _check_size(value: Any, what: str) -> int:
    return _positive(value, f"the {what} size", f"Give --{'in' if what == 'input' else 'out'} a size of 1 or more "
                                                 "(one spatial axis, e.g. 224).")


_KEY_BITS = 32  # per sort-key component in a packed key: sums over any sensible chain stay below 2**32
MAX_CANDIDATES = 500_000  # layers in one search space, before the search refuses
_NO_GAP = -2  # `_end_gap` None: a residue class is never read


def _sort_key(kind: str, kernel: int, stride: int, padding: int, dilation: int, output_padding: int
              ) -> tuple[int, ...]:
    default_stride = kernel if kind == "pool" else 1
    regular = padding in (0, (W.effective_kernel(kernel, dilation) - 1) // 2)
    non_default = (stride != default_stride) + (padding != 0) + (dilation != 1) + (output_padding != 0)
    return (int(dilation != 1), int(output_padding != 0), int(not regular), non_default,
            kernel, stride, padding, dilation, output_padding)


def _pack(key: Sequence[int]) -> int:
    """A sort key as one int with the same order; packed keys add like the keys, component-wise."""
    packed = 0
    for value in key:
        packed = (packed << _KEY_BITS) | value
    return packed


class _Candidates:
    """Every layer of a search space, simplest first (the sort key does not depend on the input size), as
    parallel NumPy arrays, so that all layers from one input size are checked in one vectorised pass."""

    def __init__(self, space: _Space):
        self.kind = space.kind
        transposed = space.kind == "conv_transpose"
        groups = []
        for kernel in space.kernels:
            for dilation in space.dilations if kernel > 1 else space.dilations[:1]:  # D means nothing for F=1
                cap = kernel // 2 if space.kind == "pool" else W.effective_kernel(kernel, dilation) - 1
                if space.max_padding is not None:
                    cap = min(cap, space.max_padding)
                groups.append((kernel, dilation, cap))
        count = sum((cap + 1) * sum(max(s, d) if transposed else 1 for s in space.strides)
                    for _, d, cap in groups)
        if count > MAX_CANDIDATES:
            raise CnnCalcError(f"the search space holds {count:,} layers ({space.describe()}), too many to try",
                               fix="Narrow it: fewer or smaller --kernel, --stride or --dilation values.")
        rows = sorted(_sort_key(space.kind, kernel, stride, padding, dilation, op)
                      for kernel, dilation, cap in groups for stride in space.strides for padding in range(cap + 1)
                      for op in (range(max(stride, dilation)) if transposed else (0,)))  # op < max(S, D)
        self.packed = [_pack(row) for row in rows]
        table = np.array([row[4:] for row in rows], dtype=np.int64).reshape(-1, 5)
        self.kernel, self.stride, self.padding, self.dilation, self.output_padding = table.T
        # `layers.window`'s rules are typed for ints, and their +, *, // work element-wise on these arrays too
        span = W.effective_kernel(self.kernel, self.dilation)  # type: ignore[arg-type]
        self.span: np.ndarray = np.asarray(span)
        if transposed:  # the rule is affine in N with slope S: evaluate it once, at an N where it is >= 1
            self.base_size = 2 * int(self.padding.max(initial=0)) + 2
            self.base = np.array([W.transposed_output((self.base_size,), (row[4],), (row[5],), (row[6],),
                                                      (row[7],), (row[8],))[0] for row in rows],
                                 dtype=np.int64)
        else:
            self.common = np.gcd(self.stride, self.dilation)
            keys = [(row[4], row[5], row[7]) for row in rows]
            gaps = {key: _end_gap(*key) for key in dict.fromkeys(keys)}
            self.gap = np.array([_NO_GAP if (gap := gaps[key]) is None else gap for key in keys], dtype=np.int64)

    def solution(self, index: int) -> Solution:
        return Solution(self.kind, int(self.kernel[index]), int(self.stride[index]), int(self.padding[index]),
                        int(self.dilation[index]), int(self.output_padding[index]))

    def moves(self, size_in: int, lo: int = 1, hi: int | None = None, keep: int | None = None,
              spend: Callable[[int], None] | None = None) -> dict[int, list[int]]:
        """Candidate indices of every exact (and, for conv/pool, lossless) layer from `size_in`, by output size
        within lo..hi, simplest first; at most `keep` per output size. `spend` is told the Python work ahead
        (and may refuse it) before any is done."""
        if self.kind == "conv_transpose":
            out = self.base + (size_in - self.base_size) * self.stride
            ok = out >= max(lo, 1)
        else:
            pads = (self.padding, self.padding)  # the window rule element-wise, as for `span`
            count = W.window_count(size_in, self.kernel, self.stride, pads, self.dilation)  # type: ignore[arg-type]
            out = np.asarray(count)
            ok = out >= max(lo, 1)
        if hi is not None:
            ok &= out <= hi
        if self.kind != "conv_transpose":
            ok &= self._lossless(size_in, out, ok, spend)
        indices = np.flatnonzero(ok)
        if spend is not None:
            spend(len(indices) // VECTOR_STEPS)  # each is listed below, a cheap Python step
        outs = out[indices]
        order = np.argsort(outs, kind="stable")  # by output size, simplest first within each
        indices, outs = indices[order].tolist(), outs[order].tolist()
        stride_free = size_in == 1 if self.kind == "conv_transpose" else None
        moves: dict[int, list[int]] = {}
        for index, size in zip(indices, outs):
            moves.setdefault(size, []).append(index)
        for size, found in moves.items():
            if stride_free or (stride_free is None and size == 1):  # the stride changes nothing: keep the first
                seen: set[tuple[int, ...]] = set()
                kept = []
                for index in found:
                    same = (self.kernel[index], self.padding[index], self.dilation[index],
                            self.output_padding[index])
                    if same not in seen:
                        seen.add(same)
                        kept.append(index)
                found = kept
            moves[size] = found[:keep]
        return moves

    def _lossless(self, size: int, out: np.ndarray, wanted: np.ndarray,
                  spend: Callable[[int], None] | None = None) -> np.ndarray:
        """Whether `lost_pixels(size, ...) == 0`, for every candidate at once (out >= 1 where `wanted`):
        the common cases are decided in closed form, the rest (short rows of windows) by `lost_pixels`."""
        kernel, stride, padding, dilation = self.kernel, self.stride, self.padding, self.dilation
        last_read = (out - 1) * stride + self.span - 1  # the last padded position any tap reads
        trailing = padding + size - 1 > last_read  # the input's last pixels lie beyond the last window
        contiguous = (dilation == 1) & ((kernel >= stride) | (out == 1))  # one run: positions 0..last_read
        common = (size > 1) & (np.where(out > 1, self.common, dilation) > 1)  # taps only hit multiples of it
        few = out * kernel < size  # fewer taps than pixels
        # Once the last window starts after the first one ends, taps i*S + j*D miss only positions <= gap
        # counted from the start and (mirrored) from last_read back, or a whole residue class mod S (no gap).
        # The input starts `padding` after the start and ends `last_read - padding - size + 1` before the end.
        long_enough = (out - 1) * stride >= (kernel - 1) * dilation
        incomplete = self.gap == _NO_GAP
        gap_lossy = np.where(incomplete, size >= stride, self.gap >= last_read - padding - size + 1)
        lossy = trailing | (~contiguous & (common | few | (long_enough & gap_lossy)))
        lossless: np.ndarray = ~lossy
        undecided = ~contiguous & (~long_enough | incomplete)
        fallback = np.flatnonzero(wanted & lossless & undecided)
        if spend is not None:
            spend(len(fallback) * FALLBACK_STEPS)
        for index in fallback.tolist():
            lossless[index] = lost_pixels(size, int(kernel[index]), int(stride[index]), int(padding[index]),
                                          int(dilation[index])) == 0
        return lossless


def _no_solution(size_in: int, size_out: int, space: _Space, candidates: _Candidates) -> CnnCalcError:
    label = KIND_LABELS[space.kind]
    reachable = candidates.moves(size_in, keep=1)
    what = "without losing input pixels" if space.kind != "conv_transpose" else "exactly"
    message = f"no {label} with {space.describe()} turns {size_in} into {size_out} {what}"
    below = max((o for o in reachable if o < size_out), default=None)
    above = min((o for o in reachable if o > size_out), default=None)
    nearest = [f"{o} ({candidates.solution(reachable[o][0]).short()})" for o in (below, above) if o is not None]
    fix = f"Nearest outputs it can reach: {' and '.join(nearest)}." if nearest else \
        f"No output at all is reachable from {size_in} that way."
    if space.kind != "conv_transpose" and size_out > size_in:
        fix += (" A convolution or pool grows its input only by its padding; to upsample, use "
                "--kind conv_transpose.")
    elif space.kind == "conv_transpose" and size_out < size_in:
        fix += " To downsample, use --kind conv or pool."
    fix += " Or widen the search: --kernel, --stride, --dilation."
    return CnnCalcError(message, fix=fix)


# ---- one layer -------------------------------------------------------------------------------------------

def solve_layer(size_in: int, size_out: int, kind: str = "conv", kernels: Iterable[int] | None = None,
                strides: Iterable[int] | None = None, dilations: Iterable[int] | None = None,
                max_padding: int | None = None) -> list[Solution]:
    """Every (kernel_size, stride, padding, dilation[, output_padding]) of one `kind` layer that turns
    `size_in` into exactly `size_out` without losing input pixels, simplest first (module docstring:
    default ranges, the lost-pixel rule and the ordering). Raises CnnCalcError when there is none, naming
    the nearest reachable outputs."""
    size_in, size_out = _check_size(size_in, "input"), _check_size(size_out, "output")
    space = _space(kind, kernels, strides, dilations, max_padding)
    candidates = _Candidates(space)
    found = candidates.moves(size_in, lo=size_out, hi=size_out).get(size_out, [])
    if not found:
        raise _no_solution(size_in, size_out, space, candidates)
    return [candidates.solution(i) for i in found]


# ---- several layers --------------------------------------------------------------------------------------

def solve_chain(size_in: int, size_out: int, layers: int, kind: str = "conv",
                kernels: Iterable[int] | None = None, strides: Iterable[int] | None = None,
                dilations: Iterable[int] | None = None, max_padding: int | None = None,
                limit: int = DEFAULT_LIMIT) -> list[Chain]:
    """Up to `limit` simplest distinct chains of `layers` layers of one `kind` taking `size_in` to `size_out`,
    each layer exact and lossless (as `solve_layer`), with every intermediate size (`Chain.sizes`).

    The search: every layer moves the size strictly toward `size_out` (each layer does part of the
    down- or upsampling: no detours, no size-keeping filler layers), or keeps it when size_in == size_out.
    Which (size, layers left) states can still reach `size_out` is worked out once per size. Every chain
    repeating one layer is found; to those are added the 4 x `limit` cheapest chains by summed
    `Solution.sort_key` (a k-best search). The result is ordered by `Chain.sort_key`: fewer dilated (and
    output-padded) layers, then fewer distinct layer configurations (the same layer repeated first), then
    simpler layers. 224 -> 7 in 5 conv layers: five stride-2 layers first (k2 s2 p0, k3 s2 p1, ...)."""
    size_in, size_out = _check_size(size_in, "input"), _check_size(size_out, "output")
    layers = _positive(layers, "the number of layers", "Give --layers 1 or more.")
    if layers > MAX_LAYERS:
        raise CnnCalcError(f"--layers {layers} is more than the search handles ({MAX_LAYERS})",
                           fix=f"Give --layers {MAX_LAYERS} or fewer.")
    limit = _positive(limit, "the limit", "Give --limit 1 or more.")
    space = _space(kind, kernels, strides, dilations, max_padding)
    search = _ChainSearch(size_in, size_out, space, keep=4 * limit)
    if not search.feasible(size_in, layers):
        raise search.failure(layers)
    chains = set(search.best(size_in, layers))
    for s in search.all_moves(size_in):
        sizes = [size_in]
        while len(sizes) <= layers and s.lost_pixels(sizes[-1]) == 0:
            out = _output_or_zero(s, sizes[-1])
            low, high = search.bounds(sizes[-1])
            if not low <= out <= high:
                break
            sizes.append(out)
        if len(sizes) == layers + 1 and sizes[-1] == size_out:
            chains.add(Chain((s,) * layers, tuple(sizes)))
    return sorted(chains, key=Chain.sort_key)[:limit]


def _output_or_zero(solution: Solution, size_in: int) -> int:
    try:
        return max(solution.output_size(size_in), 0)
    except ShapeError:  # a transposed output below 1
        return 0


class _ChainSearch:
    """Moves per size (memoised), feasibility per (size, layers left) and the k cheapest chains."""

    def __init__(self, size_in: int, size_out: int, space: _Space, keep: int):
        self.size_in, self.size_out, self.space, self.keep = size_in, size_out, space, keep
        self.candidates = _Candidates(space)
        self.work = 0  # candidate layers tried, feasibility steps and chain entries kept, so far
        self.kept = 0  # moves memoised in `_moves`
        self._moves: dict[int, dict[int, list[int]]] = {}
        self._feasible: dict[tuple[int, int], bool] = {}
        self._best: dict[tuple[int, int], list[tuple[int, tuple[int, ...]]]] = {}

    def moves(self, size: int) -> dict[int, list[int]]:
        """The `keep` simplest moves (candidate indices) per output size."""
        if size not in self._moves:
            self.spend(len(self.candidates.packed) // VECTOR_STEPS)
            self._moves[size] = self.candidates.moves(size, *self.bounds(size), keep=self.keep, spend=self.spend)
            self.kept += sum(map(len, self._moves[size].values()))
            self.spend(0)  # (checks the memory budget too)
        return self._moves[size]

    def spend(self, work: int) -> None:
        """Keep the search's time and memory bounded whatever the sizes (the number of intermediate sizes
        grows with them)."""
        self.work += work
        if self.work > MAX_CHAIN_WORK or self.kept > MAX_CHAIN_KEPT:
            what = f"more than {MAX_CHAIN_WORK:,} steps" if self.work > MAX_CHAIN_WORK else \
                f"more than {MAX_CHAIN_KEPT:,} layers to remember"
            raise CnnCalcError(f"the search for chains from {self.size_in} to {self.size_out} is too large to finish "
                               f"in a few seconds ({what})",
                               fix="Use fewer --layers, or narrow the search: --kernel, --stride, --dilation.")

    def all_moves(self, size: int) -> list[Solution]:
        found = self.candidates.moves(size, *self.bounds(size), spend=self.spend)
        return [self.candidates.solution(i) for i in sorted(i for moves in found.values() for i in moves)]

    def bounds(self, size: int) -> tuple[int, int]:
        """The next size must move strictly toward the output (or stay, when input = output)."""
        if self.size_out < self.size_in:
            return self.size_out, size - 1
        if self.size_out > self.size_in:
            return size + 1, self.size_out
        return size, size

    def feasible(self, size: int, left: int) -> bool:
        if left == 0:
            return size == self.size_out
        key = (size, left)
        if key not in self._feasible:
            moves = self.moves(size)
            self.spend(len(moves))
            self._feasible[key] = any(self.feasible(out, left - 1) for out in moves)
        return self._feasible[key]

    def _k_best(self, size: int, left: int) -> list[tuple[int, tuple[int, ...]]]:
        """The `keep` cheapest completions (packed cost, candidate indices) from `size` with `left` layers to go:
        a lazy merge of (move i, completion j) pairs, each row's pairs entering the heap in cost order."""
        if left == 0:
            return [(0, ())] if size == self.size_out else []
        key = (size, left)
        if key in self._best:
            return self._best[key]
        cost = self.candidates.packed
        rows = []
        heap: list[tuple[int, int, int, int]] = []
        for out, moves in self.moves(size).items():
            if self.feasible(out, left - 1):
                tails = self._k_best(out, left - 1)
                rows.append((moves, tails))
                heap.append((cost[moves[0]] + tails[0][0], len(rows) - 1, 0, 0))
        heapq.heapify(heap)
        result: list[tuple[int, tuple[int, ...]]] = []
        seen: set[tuple[int, int, int]] = set()
        while heap and len(result) < self.keep:
            total, row, i, j = heapq.heappop(heap)
            moves, tails = rows[row]
            result.append((total, (moves[i], *tails[j][1])))
            self.spend(left)
            for ni, nj in ((i + 1, j), (i, j + 1)):
                if ni < len(moves) and nj < len(tails) and (row, ni, nj) not in seen:
                    seen.add((row, ni, nj))
                    heapq.heappush(heap, (cost[moves[ni]] + tails[nj][0], row, ni, nj))
        self._best[key] = result
        return result

    def best(self, size: int, left: int) -> list[Chain]:
        chains = []
        for _, indices in self._k_best(size, left):
            layers = tuple(self.candidates.solution(i) for i in indices)
            sizes = [size]
            for s in layers:
                sizes.append(s.output_size(sizes[-1]))
            chains.append(Chain(layers, tuple(sizes)))
        return chains

    def failure(self, layers: int) -> CnnCalcError:
        start, label = self.size_in, self.space.kind
        message = (f"no chain of {layers} {label} layers with {self.space.describe()} turns {start} into "
                   f"{self.size_out} with every layer exact"
                   + (" and lossless" if self.space.kind != "conv_transpose" else "")
                   + (" (each layer moving the size toward the output)" if start != self.size_out else ""))
        reached = {start}
        for _ in range(layers):
            reached = {out for n in reached for out in self.moves(n)}
        below = max((o for o in reached if o < self.size_out), default=None)
        above = min((o for o in reached if o > self.size_out), default=None)
        nearest = [str(o) for o in (below, above) if o is not None]
        fix = (f"With {layers} layers the nearest reachable output{'s are' if len(nearest) > 1 else ' is'} "
               f"{' and '.join(nearest)}." if nearest else f"No size is reachable in {layers} layers that way.")
        counts = [str(n) for n in range(1, layers + 4) if n != layers and self.feasible(start, n)]
        if counts:
            counts_text = counts[0] if len(counts) == 1 else f"{', '.join(counts[:-1])} or {counts[-1]}"
            fix += f" {start} -> {self.size_out} works with --layers {counts_text}."
        if self.space.kind != "conv_transpose" and self.size_out > start:
            fix += " To upsample, use --kind conv_transpose."
        return CnnCalcError(message, fix=fix + " Or widen the search: --kernel, --stride, --dilation.")


def parse_values(texts: Sequence[str] | None, option: str) -> tuple[int, ...] | None:
    """CLI helper: repeated and/or comma-separated values, and ranges: ['3,5', '7'] or ['1..4'] -> ints."""
    if not texts:
        return None
    values: set[int] = set()
    for text in texts:
        for part in str(text)[:MAX_OPTION].split(","):
            found = _RANGE.fullmatch(part)
            low, high = (int(found.group(1)), int(found.group(2) or found.group(1))) if found else (0, 0)
            if not found or not 1 <= low <= high or high > MAX_INT:
                raise CnnCalcError(f"{option} '{shown_text(str(text))}' is not a list of positive integers",
                                   fix=f"Write e.g. {option} 3,5,7 or {option} 1..4 (or repeat {option}).")
            if high - low >= MAX_VALUES or len(values) + high - low >= MAX_VALUES:
                raise CnnCalcError(f"{option} '{shown_text(str(text))}' asks for more than {MAX_VALUES:,} values",
                                   fix=f"Try fewer values at a time, e.g. {option} 1..{MAX_VALUES}.")
            values.update(range(low, high + 1))
    return tuple(sorted(values))
