"""The sliding-window arithmetic shared by convolution and pooling, stated once.

    out = floor((N + P_before + P_after - D*(F-1) - 1) / S) + 1          (ceil with ceil_mode)

The effective (dilated) kernel spans D*(F-1)+1 input elements. With ceil_mode PyTorch rounds up and then
drops the last window when it would start inside the end padding, i.e. when (out-1)*S >= N + P_before.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple, Sequence

from cnncalc.errors import ShapeError

Padding = int | Literal["same", "valid"] | list[int | list[int]]
PadPairs = tuple[tuple[int, int], ...]


class Window(NamedTuple):
    """A sliding window along each spatial axis, padding resolved for one input size."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: PadPairs
    dilation: tuple[int, ...]

SPATIAL_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def per_axis(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """An int or a list of `rank` ints, as a tuple of `rank` ints (ValueError otherwise, for validators)."""
    if isinstance(value, int):
        return (value,) * rank
    values = tuple(value)
    if len(values) != rank:
        raise ValueError(f"needs 1 or {rank} values (one per spatial axis); got {list(values)}")
    return values


def normalize_padding(value: Padding, rank: int) -> str | PadPairs:
    """'same', 'valid', or (before, after) per spatial axis, from any accepted spelling."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return ((value, value),) * rank
    if len(value) != rank:
        raise ValueError(f"needs 1 or {rank} entries (one per spatial axis); got {list(value)}")
    pairs = []
    for entry in value:
        if isinstance(entry, int):
            pairs.append((entry, entry))
        elif len(entry) == 2:
            pairs.append((entry[0], entry[1]))
        else:
            raise ValueError(f"a per-axis padding is a number or a [before, after] pair; got {list(entry)}")
    return tuple(pairs)


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow/Keras 'same': output = ceil(N/S); any odd padding goes at the end (as PyTorch at stride 1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: str | PadPairs, sizes: Sequence[int], kernel: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int]) -> PadPairs:
    """Normalized padding as concrete (before, after) pairs for these input sizes."""
    if padding == "valid":
        return ((0, 0),) * len(sizes)
    if padding == "same":
        return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))
    return padding  # type: ignore[return-value]


def pad_text(pads: PadPairs) -> str:
    """Compact padding for tables: 'p=1', 'p=0,1' (per axis) or 'p=(0,1)x(0,1)'."""
    if all(b == a for b, a in pads):
        values = {b for b, _ in pads}
        return f"p={pads[0][0]}" if len(values) == 1 else "p=" + ",".join(str(b) for b, _ in pads)
    return "p=" + "x".join(f"({b},{a})" for b, a in pads)


def axes_text(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)


def window_count(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1,
                 ceil_mode: bool = False) -> int:
    """How many windows fit; may be < 1 (the caller reports that)."""
    before, after = pad
    # may be negative: with ceil_mode PyTorch still allows one window that runs past the input's end
    reach = size + before + after - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return reach // stride + 1
    out = -(-reach // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def unread_pixels(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1) -> int:
    """How many of the `size` input pixels no tap of any window reads (floor mode): pixels past the last
    window, and pixels that fall between taps when the stride outruns the (dilated) kernel."""
    before, after = pad
    out = window_count(size, kernel, stride, pad, dilation)
    if out < 1:
        return size
    last_read = (out - 1) * stride + effective_kernel(kernel, dilation) - 1  # padded position
    if dilation == 1 and (kernel >= stride or out == 1):  # windows overlap or touch: one contiguous run
        return max(0, before + size - 1 - last_read)
    read = bytearray(size + before + after)
    for tap in range(kernel):
        start = tap * dilation
        read[start:start + (out - 1) * stride + 1:stride] = b"\x01" * out
    return read[before:before + size].count(0)


def formula(axis: str, size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int,
            ceil_mode: bool, result: int) -> str:
    """The output-size rule with the numbers filled in, as shown in errors and `cnncalc explain`."""
    before, after = pad
    pad_text = f"2*{before}" if before == after else f"{before} + {after}"
    rounding = "ceil" if ceil_mode else "floor"
    text = f"{axis}_out = {rounding}(({size} + {pad_text} - {dilation}*({kernel}-1) - 1) / {stride}) + 1"
    if ceil_mode and (result - 1) * stride >= size + before and result >= 1:
        text += " (last window would start in the padding: dropped)"
    return f"{text} = {result}"


def explain_window(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: PadPairs,
                   dilation: Sequence[int], ceil_mode: bool = False, padding: object = None) -> list[str]:
    """The output-size rule per axis with numbers, after how 'same' padding was resolved."""
    lines = []
    axes = SPATIAL_AXES[len(sizes)]
    if padding == "same":
        for axis, n, k, s, d, (before, after) in zip(axes, sizes, kernel, stride, dilation, pads):
            lines.append(f"padding 'same' on {axis}: total = max((ceil({n}/{s}) - 1)*{s} + {effective_kernel(k, d)} "
                         f"- {n}, 0) = {before + after} -> {before} before, {after} after")
    for axis, n, k, s, p, d in zip(axes, sizes, kernel, stride, pads, dilation):
        lines.append(formula(axis, n, k, s, p, d, ceil_mode, window_count(n, k, s, p, d, ceil_mode)))
    return lines


def explain_receptive_field(before: "ReceptiveField | None", kernel: Sequence[int], stride: Sequence[int],
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


def sliding_output(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: PadPairs,
                   dilation: Sequence[int], ceil_mode: bool = False) -> tuple[int, ...]:
    """Output spatial sizes; a ShapeError quoting the formula when an axis would be smaller than 1."""
    axes = SPATIAL_AXES[len(sizes)]
    out = []
    for axis, n, k, s, p, d in zip(axes, sizes, kernel, stride, pads, dilation):
        count = window_count(n, k, s, p, d, ceil_mode)
        if count < 1:
            span = effective_kernel(k, d)
            numerator = n + p[0] + p[1] - span
            value = (-(-numerator // s) if ceil_mode else numerator // s) + 1
            raise ShapeError(
                f"output would be smaller than 1: {formula(axis, n, k, s, p, d, ceil_mode, value)}; "
                f"the (dilated) kernel spans {span} but the padded input is only {n + p[0] + p[1]}",
                fix="Use a smaller kernel or dilation, add padding, or feed a larger input.")
        out.append(count)
    return tuple(out)


def transposed_output(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                      padding: Sequence[int], dilation: Sequence[int],
                      output_padding: Sequence[int]) -> tuple[int, ...]:
    """out = (N-1)*S - 2P + D*(F-1) + output_padding + 1 per axis."""
    axes = SPATIAL_AXES[len(sizes)]
    out = []
    for axis, n, k, s, p, d, op in zip(axes, sizes, kernel, stride, padding, dilation, output_padding):
        size = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if size < 1:
            raise ShapeError(
                f"output would be smaller than 1: {axis}_out = ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 "
                f"= {size}", fix="Reduce the padding.")
        out.append(size)
    return tuple(out)


# ---- receptive field ---------------------------------------------------------------------------------------

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
    if any(f is None for f in fields) or len({len(f.size) for f in fields}) != 1:  # type: ignore[union-attr]
        return None
    return max(fields, key=lambda f: f.size)  # type: ignore[arg-type,return-value]


# ---- design advice -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Advice:
    """Something legal but probably not intended, with the numbers and a fix."""

    code: str
    message: str
    fix: str
    field: str | None = None


def window_advice(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: PadPairs,
                  dilation: Sequence[int], ceil_mode: bool = False, same: bool = False) -> list[Advice]:
    """Lost pixels, asymmetric 'same' padding, kernels larger than their input, dropped ceil_mode windows.
    Axes with the same finding are reported together ('on H and W')."""
    found: dict[tuple[str, str, str, str | None], list[str]] = {}

    def note(axis: str, code: str, message: str, fix: str, field: str) -> None:
        found.setdefault((code, message, fix, field), []).append(axis)

    for axis, n, k, s, (before, after), d in zip(SPATIAL_AXES[len(sizes)], sizes, kernel, stride, pads, dilation):
        span = effective_kernel(k, d)
        reach = n + before + after - span
        if span > n:
            note(axis, "kernel-larger-than-input",
                 f"the {'dilated ' if d > 1 else ''}kernel spans {span} but its input is only {n} on {{axes}} "
                 "(the rest of every window is padding)",
                 "Use a smaller kernel or dilation here, or downsample less before it.", "kernel_size")
        if ceil_mode:
            last_start = -(-reach // s) * s
            if reach >= 0 and reach % s and last_start >= n + before:
                note(axis, "ceil-mode-dropped-window",
                     f"with ceil_mode the last window would start in the padding on {{axes}} ({last_start} >= "
                     f"{n} + {before}), so PyTorch drops it",
                     "Expect one output fewer than ceil() suggests, or lower the padding.", "ceil_mode")
            continue
        lost = (reach % s if reach >= 0 else 0) - after
        between = unread_pixels(n, k, s, (before, after), d) - max(lost, 0)  # not counting the end
        if span < s:
            note(axis, "strided-gaps",
                 f"stride {s} is larger than the kernel span {span} on {{axes}}: {s - span} of every {s} input "
                 "pixels fall between windows and are never read",
                 "Use a kernel at least as large as the stride, or average-pool before a stride-1 conv "
                 "(as ResNet-D does for its downsampling shortcut).", "stride")
        elif between > 0:
            note(axis, "strided-gaps",
                 f"with dilation {d} and stride {s}, the taps skip {between} of the {n} input pixels on {{axes}}",
                 f"Use a stride that shares no factor with the dilation (e.g. stride 1 or {s + 1}), or dilation 1.",
                 "dilation")
        if lost > 0:
            note(axis, "lost-pixels",
                 f"drops the last {lost} input pixel{'s' if lost > 1 else ''} on {{axes}}: ({n} + {before} + "
                 f"{after} - {span}) mod {s} = {reach % s}, so no window covers {'them' if lost > 1 else 'it'}",
                 _coverage_fix(n, span, s, before, after), "stride")
        if same and before != after:
            if span % 2 == 0:
                why, fix = "an even kernel", f"For symmetric padding use an odd kernel, e.g. kernel_size: " \
                    f"{k + 1} with padding: {effective_kernel(k + 1, d) // 2}."
            else:
                why, fix = f"stride {s}", f"For PyTorch-style symmetric padding use padding: {(span - 1) // 2} " \
                    f"(output {(n + span - 1 - span) // s + 1})."
            note(axis, "asymmetric-padding",
                 f"'same' pads {before} at the start and {after} at the end of {{axes}} (TensorFlow's rule for "
                 f"{why})", "Fine for a TensorFlow port. " + fix, "padding")
    return [Advice(code, message.format(axes=" and ".join(axes)), fix, field)
            for (code, message, fix, field), axes in found.items()]


def _coverage_fix(n: int, span: int, stride: int, before: int, after: int) -> str:
    options = []
    for extra in range(1, stride):
        if (n + before + after + extra - span) % stride == 0:
            options.append(f"{extra} more padding at the end ([{before}, {after + extra}] on each such axis)")
            break
    for p in range(0, span):
        if (n + 2 * p - span) % stride == 0 and n + 2 * p >= span:
            options.append(f"padding: {p} (output {(n + 2 * p - span) // stride + 1})")
            break
    for s in range(stride - 1, 0, -1):
        if (n + before + after - span) % s == 0:
            options.append(f"stride: {s} (output {(n + before + after - span) // s + 1})")
            break
    return "To cover them use " + ", or ".join(options) + "." if options else "Change the input size."
