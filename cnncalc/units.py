"""Numbers and shapes as people read them, used by every renderer: SI counts, binary byte sizes, shape text."""
from __future__ import annotations

import math
from fractions import Fraction

_SI = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))
_BINARY = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_LARGEST_PLAIN = 10**15  # from 1,000 T on, counts are written in scientific notation (1.23e+18)


def _scaled(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _scientific(sign: str, n: int) -> str:
    """n >= 10^15 as '1.23e+18', for any size of integer (float() alone overflows past 10^308)."""
    if n.bit_length() < 1000:
        return f"{sign}{float(n):.3g}"
    exponent = int((n.bit_length() - 1) * math.log10(2))  # within one of the true exponent
    return f"~{sign}1e+{exponent}"


def human(n: int) -> str:
    """SI prefixes (M = 10^6): 61.1 M, 138 M, 0.71 G, -5.00 M; a unit is used from half of it (k from 1,000)."""
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n >= _LARGEST_PLAIN:
        return _scientific(sign, n)
    for unit, scale in _SI:
        if 2 * n >= scale and n >= 1000:
            return f"{sign}{_scaled(n / scale)} {unit}"
    return f"{sign}{n}"


def human_bytes(n: int) -> str:
    """Binary prefixes, labelled: 232.6 MiB."""
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n >= 1024 * 2**40:  # beyond 1,024 TiB
        return f"{_scientific(sign, n)} B"
    if n >= 2**39:
        return f"{sign}{_scaled(n / 2**40)} TiB"
    for unit, scale in _BINARY:
        if 2 * n >= scale:
            return f"{sign}{_scaled(n / scale)} {unit}"
    return f"{sign}{n} B"


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def number(value: Fraction | int) -> int | float:
    """Exact integers stay integers; fractions (after upsampling) become floats."""
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)
