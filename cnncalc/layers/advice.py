"""Design advice: legal but probably unintended choices, found by a layer's own rules (lost pixels, strided
gaps, asymmetric 'same' padding, kernels larger than their input, dropped ceil_mode windows)."""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import Sequence

from cnncalc.layers.window import SPATIAL_AXES, PadPairs, effective_kernel, unread_pixels


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
        unread = unread_pixels(n, k, s, (before, after), d)
        between = None if unread is None else unread - max(lost, 0)  # not counting the end
        if span < s:
            note(axis, "strided-gaps",
                 f"stride {s} is larger than the kernel span {span} on {{axes}}: {s - span} of every {s} input "
                 "pixels fall between windows and are never read",
                 "Use a kernel at least as large as the stride, or average-pool before a stride-1 conv "
                 "(as ResNet-D does for its downsampling shortcut).", "stride")
        elif between is None and gcd(s, d) > 1:  # too costly to count, but every pixel off the common grid
            note(axis, "strided-gaps",
                 f"with dilation {d} and stride {s}, the taps read only every {gcd(s, d)}th input pixel on {{axes}}",
                 f"Use a stride that shares no factor with the dilation (e.g. stride 1 or {s + 1}), or dilation 1.",
                 "dilation")
        elif between:
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
    """Ways to make the windows reach the input's end: more end padding, a symmetric padding, or a smaller
    stride. Each is found in closed form (or a bounded search), never by counting up to the sizes."""
    reach = n + before + after - span  # >= 0 here, and not a multiple of the stride
    extra = -reach % stride
    options = [f"{extra} more padding at the end ([{before}, {after + extra}] on each such axis)"]
    padding = _symmetric_padding(n, span, stride)
    if padding is not None:
        options.append(f"padding: {padding} (output {(n + 2 * padding - span) // stride + 1})")
    smaller = _largest_divisor_below(reach, stride)
    if smaller is not None:
        options.append(f"stride: {smaller} (output {reach // smaller + 1})")
    return "To cover them use " + ", or ".join(options) + "."


def _symmetric_padding(n: int, span: int, stride: int) -> int | None:
    """The smallest p < span with n + 2p >= span and (n + 2p - span) divisible by the stride, if any."""
    # 2p = span - n (mod stride): one residue of p modulo stride (odd stride) or stride/2 (even stride)
    target = (span - n) % stride
    if stride % 2:
        period, first = stride, target * pow(2, -1, stride) % stride if stride > 1 else 0
    elif target % 2:
        return None
    else:
        period, first = stride // 2, target // 2
    lowest = max(0, -(-(span - n) // 2))
    p = first + max(0, -(-(lowest - first) // period)) * period
    return p if p < span else None


def _largest_divisor_below(value: int, limit: int, tries: int = 64) -> int | None:
    """The largest s < limit dividing `value` (0 counts as divisible by anything), from a bounded search."""
    if limit <= 1:
        return None
    if value == 0:
        return limit - 1
    if value < limit:
        return value
    found = [s for s in range(limit - 1, max(limit - 1 - tries, 0), -1) if value % s == 0]
    found += [value // d for d in range(1, tries + 1) if value % d == 0 and value // d < limit]
    return max(found, default=1)
