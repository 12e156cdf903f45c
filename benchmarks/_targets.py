"""Shared by the benchmarks: one target line each (name, measured values, ratio, target, PASS/MISS), as an
aligned text table or as Markdown, and the plain text tables themselves."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field

PASS, MISS, ERROR, SKIP = "PASS", "MISS", "ERROR", "SKIP"


@dataclass
class Target:
    name: str            # what is measured, e.g. "summarize resnet50 -f json"
    measured: str        # the measured values, e.g. "0.342 s; floor 0.118 s"
    ratio: str           # the figure the target is about, e.g. "2.90x floor"
    target: str          # e.g. "<= 1.5x floor"
    result: str          # PASS, MISS, ERROR or SKIP
    data: dict = field(default_factory=dict)  # the numbers behind it, for --json

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else (PASS if ok else MISS)


def render(headers: list[str], rows: list[list[str]], markdown: bool, right: set[int] | None = None) -> str:
    """A table: Markdown, or plain text with aligned columns (`right` = the right-aligned column indexes)."""
    right = right if right is not None else set(range(1, len(headers)))
    if markdown:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def target_table(targets: list[Target], markdown: bool) -> str:
    rows = [[t.name, t.measured, t.ratio, t.target, t.result] for t in targets]
    return render(["target", "measured", "ratio", "target", "result"], rows, markdown, right={2})


def tally(targets: list[Target]) -> str:
    counts = {kind: sum(t.result == kind for t in targets) for kind in (PASS, MISS, ERROR, SKIP)}
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no targets"


def shape_arg(text: str) -> tuple[int, ...]:
    """argparse type for a shape option: '1,256,256' or '1x256x256'."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 1,256,256") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 1,256,256")
    return shape
