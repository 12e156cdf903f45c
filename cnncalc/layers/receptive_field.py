"""Receptive fields: how much of the network input one output value sees, propagated layer by layer."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from cnncalc.layers.window import PadPairs, effective_kernel


@dataclass(frozen=True)
class ReceptiveField:
    """Per spatial axis, in input pixels: how many input pixels one output value sees (`size`), how far
    apart neighbouring outputs' fields are (`jump`, the effective stride), and where the centre of the
    first output's field lies (`start`; input pixel i spans [i, i+1), so the network input starts at 0.5).
    Jumps and starts can be fractions after upsampling or transposed convolution."""

    size: tuple[Fraction, ...]
    jump: tuple[Fraction, ...]
    start: tuple[Fraction, ...]

    @classmethod
    def of_input(cls, spatial_axes: int) -> "ReceptiveField | None":
        if spatial_axes < 1:
            return None
        one = (Fraction(1),) * spatial_axes
        return cls(one, one, (Fraction(1, 2),) * spatial_axes)

    def shifted(self, offsets: Sequence[int]) -> "ReceptiveField":
        """Cropping (positive) or padding (negative) moves where the first output looks."""
        return ReceptiveField(self.size, self.jump,
                              tuple(s + o * j for s, o, j in zip(self.start, offsets, self.jump)))


RF_LIMIT = 10**24  # MAX_DIM squared: a field's size, jump or start beyond it (or finer than 1/RF_LIMIT) is no pixel


def tracked(rf: ReceptiveField | None) -> ReceptiveField | None:
    """The field, or None once its numbers leave what any input could mean (strides of 10^12 stacked up): they
    would otherwise grow without bound, layer after layer, and overflow floats and digit limits when shown."""
    if rf is None:
        return None
    values = (*rf.size, *rf.jump, *rf.start)
    return rf if all(abs(v) <= RF_LIMIT and v.denominator <= RF_LIMIT for v in values) else None


def window_receptive_field(rf: ReceptiveField | None, kernel: Sequence[int], stride: Sequence[int],
                           pads: PadPairs, dilation: Sequence[int]) -> ReceptiveField | None:
    """A sliding window: size grows by (effective kernel - 1) jumps, jump multiplies by the stride, and
    the first window's centre sits (effective kernel - 1)/2 - P_before input steps from the start."""
    if rf is None:
        return None
    size, jump, start = [], [], []
    for r, j, s0, k, s, (before, _), d in zip(rf.size, rf.jump, rf.start, kernel, stride, pads, dilation):
        span = effective_kernel(k, d)
        size.append(r + (span - 1) * j)
        jump.append(j * s)
        start.append(s0 + (Fraction(span - 1, 2) - before) * j)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def transposed_receptive_field(rf: ReceptiveField | None, kernel: Sequence[int], stride: Sequence[int],
                               padding: Sequence[int], dilation: Sequence[int]) -> ReceptiveField | None:
    """A transposed convolution: each output sums at most ceil(span / S) inputs, neighbouring outputs are
    1/S input steps apart, and output 0 is centred (P - (span - 1)/2) / S input steps from the start."""
    if rf is None:
        return None
    size, jump, start = [], [], []
    for r, j, s0, k, s, p, d in zip(rf.size, rf.jump, rf.start, kernel, stride, padding, dilation):
        span = effective_kernel(k, d)
        size.append(r + (-(-span // s) - 1) * j)
        jump.append(j / s)
        start.append(s0 + (p - Fraction(span - 1, 2)) / s * j)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def widest(fields: Sequence[ReceptiveField | None]) -> ReceptiveField | None:
    """Where branches meet: the largest receptive field over the paths (None if any path lost it)."""
    known = [f for f in fields if f is not None]
    if len(known) != len(fields) or len({len(f.size) for f in known}) != 1:
        return None
    return max(known, key=lambda f: f.size)


def explain_receptive_field(before: ReceptiveField | None, kernel: Sequence[int], stride: Sequence[int],
                            pads: PadPairs, dilation: Sequence[int]) -> list[str]:
    """The receptive-field step of a sliding window, with numbers (first axis; others follow the same rule)."""
    if before is None:
        return []
    r, j, s0 = before.size[0], before.jump[0], before.start[0]
    k, s, (p, _), d = kernel[0], stride[0], pads[0], dilation[0]
    span = effective_kernel(k, d)
    return [f"receptive field = {_num(r)} + ({span} - 1) * {_num(j)} = {_num(r + (span - 1) * j)}, "
            f"jump = {_num(j)} * {s} = {_num(j * s)}, "
            f"start = {_num(s0)} + (({span} - 1)/2 - {p}) * {_num(j)} = {_num(s0 + (Fraction(span - 1, 2) - p) * j)}"]


def _num(value: Fraction | int) -> str:
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
