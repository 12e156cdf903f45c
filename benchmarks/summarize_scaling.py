"""How `summarize` scales with network size: time per layer should stay flat (linear total time).

    python benchmarks/summarize_scaling.py [--sizes 1000,2000,5000,9999] [--repeats 3]

For each size it writes a plain spec of that many layers (conv/bn/relu triples) and a block spec that
expands to the same count, then times load + analyze, and the JSON report, as separate columns.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cnncalc.analyze import analyze
from cnncalc.formats import to_json
from cnncalc.spec import load

TRIPLE = ("  - {{type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: c{i}}}\n"
          "  - {{type: batchnorm2d, name: b{i}}}\n"
          "  - {{type: relu, name: r{i}}}\n")


def plain_spec(layers: int) -> str:
    return "input: [8, 16, 16]\nlayers:\n" + "".join(TRIPLE.format(i=i) for i in range(layers // 3))


def block_spec(layers: int) -> str:
    return ("input: [8, 16, 16]\nblocks:\n  unit:\n    args: {ch: 8}\n    layers:\n"
            "      - {type: conv2d, name: conv, out_channels: $ch, kernel_size: 3, padding: 1}\n"
            "      - {type: batchnorm2d, name: bn}\n      - relu\n"
            f"layers:\n  - {{block: unit, name: stage, repeat: {layers // 3}}}\n")


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,5000,9999")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'layers':>7} {'kind':>6} {'load+analyze s':>15} {'us/layer':>9} {'json s':>8} {'us/layer':>9}")
    per_layer: dict[str, list[float]] = {"plain": [], "blocks": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for kind, make in (("plain", plain_spec), ("blocks", block_spec)):
                path = Path(tmp) / f"{kind}{size}.yaml"
                path.write_text(make(size))
                seconds = best_of(args.repeats, lambda: analyze(load(path)))
                summary = analyze(load(path))
                json_seconds = best_of(args.repeats, lambda: to_json(summary))
                layers = len(summary.rows)
                per_layer[kind].append(seconds / layers)
                print(f"{layers:>7} {kind:>6} {seconds:>15.3f} {1e6 * seconds / layers:>9.1f} "
                      f"{json_seconds:>8.3f} {1e6 * json_seconds / layers:>9.1f}")
    for kind, values in per_layer.items():
        print(f"{kind}: time per layer at the largest size / at the smallest = {values[-1] / values[0]:.2f} "
              "(1.0 = perfectly linear)")


if __name__ == "__main__":
    main()
