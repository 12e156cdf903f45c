"""The sliding-window arithmetic shared by convolution and pooling, stated once, with its explanation.

    out = floor((N + P_before + P_after - D*(F-1) - 1) / S) + 1          (ceil with ceil_mode)

The effective (dilated) kernel spans D*(F-1)+1 input elements. With ceil_mode PyTorch rounds up and then
drops the last window when it would start inside the end padding, i.e. when (out-1)*S >= N + P_before.
The same holds for padding PyTorch's pooling cannot express ('same', or different before and after), which
is otherwise applied first, as F.pad does: no window that starts in the end padding is ever kept.
"""
from __future__ import annotations

from math import gcd
from typing import Any, Literal, NamedTuple, Sequence

from cnncalc.errors import ShapeError

MAX_CHAINS = 1 << 16  # work bound of `unread_pixels`

Padding = int | Literal["same", "valid"] | list[int | list[int]]
PadPairs = tuple[tuple[int, int], ...]


class Window(NamedTuple):
    """A sliding window along each spatial axis, padding resolved for one input size."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: PadPairs
    dilation: tuple[int, ...]


SPATIAL_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def per_axis(value: Any, rank: int) -> tuple[Any, ...]:
    """A number or a list of `rank` values, as a tuple of `rank` values (ValueError otherwise, for the
    `before` validators: the field's own type then checks each value)."""
    if not isinstance(value, (list, tuple)):
        return (value,) * rank
    values = tuple(value)
    if len(values) != rank:
        raise ValueError(f"needs 1 or {rank} values (one per spatial axis); got {list(values)}")
    return values


def normalize_padding(value: Any, rank: int) -> Any:
    """'same', 'valid', or (before, after) per spatial axis, from any accepted spelling. For the `before`
    validators: what is not a padding at all (null, a mapping, a word) is passed on as it is, for the field's
    type to refuse; a list of the wrong length is a ValueError."""
    if isinstance(value, str) or not isinstance(value, (int, list, tuple)):
        return value
    if isinstance(value, int):
        return ((value, value),) * rank
    if len(value) != rank:
        raise ValueError(f"needs 1 or {rank} entries (one per spatial axis); got {list(value)}")
    pairs: list[Any] = []
    for entry in value:
        if not isinstance(entry, (list, tuple)):
            pairs.append((entry, entry))
        elif len(entry) == 2:
            pairs.append((entry[0], entry[1]))
        else:
            raise ValueError(f"a per-axis padding is a number or a [before, after] pair; got {list(entry)}")
    return tuple(pairs)


def pad_pairs(value: int | Sequence[int | Sequence[int]], rank: int) -> PadPairs:
    """`normalize_padding` of a value its field has validated as a padding: always pairs (or a ValueError)."""
    pairs: PadPairs = normalize_padding(value, rank)
    return pairs


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
    if _drops_last(out, stride, size, pad):
        out -= 1
    return out


def _drops_last(out: int, stride: int, size: int, pad: tuple[int, int]) -> bool:
    """Whether ceil_mode's last window would start in the end padding."""
    return (out - 1) * stride >= size + pad[0]


def unread_pixels(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1) -> int | None:
    """How many of the `size` input pixels no tap of any window reads (floor mode): pixels past the last
    window, and pixels that fall between taps when the stride outruns the (dilated) kernel. None when the
    count would take more than MAX_CHAINS steps (only for kernels, strides and dilations in the thousands).

    Window i's tap j reads padded position i*S + j*D. With g = gcd(S, D), S = g*S', D = g*D', the taps
    split into chains that never meet: tap j0 + m*S' (m = 0, 1, ...) of every window reads j0*D + S*u for
    u in the union of [m*D', m*D' + out), so each chain's reads inside the input are counted in closed
    form; the same holds with the roles of windows and taps swapped (i0 + m*D' reads i0*S + D*v for v in
    the union of [m*S', m*S' + kernel)). The cheaper of the two is used: the work never grows with the
    sizes themselves."""
    before, after = pad
    out = window_count(size, kernel, stride, pad, dilation)
    if out < 1:
        return size
    common = gcd(stride, dilation)
    stride_, dilation_ = stride // common, dilation // common
    lo, hi = before, before + size  # the input's padded positions
    if min(kernel, stride_) <= min(out, dilation_):
        chains, step, offset, runs, run, period = min(kernel, stride_), stride_, dilation, kernel, out, dilation_
        scale = stride
    else:
        chains, step, offset, runs, run, period = min(out, dilation_), dilation_, stride, out, kernel, stride_
        scale = dilation
    if chains > MAX_CHAINS:
        return None
    read = 0
    for first in range(chains):
        count = -(-(runs - first) // step)  # members of this chain
        start = first * offset
        read += _covered(-(-(hi - start) // scale), count, run, period) - \
            _covered(-(-(lo - start) // scale), count, run, period)
    return size - read


def _covered(x: int, count: int, run: int, period: int) -> int:
    """How many of 0 .. x-1 lie in the union of [m*period, m*period + run) for m < count."""
    if x <= 0:
        return 0
    if run >= period:  # the runs touch or overlap: one stretch
        return min(x, (count - 1) * period + run)
    whole = x // period
    if whole >= count:
        return count * run
    return whole * run + min(x - whole * period, run)


def formula(axis: str, size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int,
            ceil_mode: bool, result: int) -> str:
    """The output-size rule with the numbers filled in, as shown in errors and `cnncalc explain`."""
    before, after = pad
    pad_text = f"2*{before}" if before == after else f"{before} + {after}"
    rounding = "ceil" if ceil_mode else "floor"
    text = f"{axis}_out = {rounding}(({size} + {pad_text} - {dilation}*({kernel}-1) - 1) / {stride}) + 1"
    if ceil_mode and result >= 1 and _drops_last(result, stride, size, pad):
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
