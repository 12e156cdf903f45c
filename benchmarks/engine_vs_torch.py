#!/usr/bin/env python
"""Speed and memory of cnncalc's NumPy engine against PyTorch (CPU), same networks, weights and inputs.

    python benchmarks/engine_vs_torch.py --threads 1          # the figures to trust (see README.md)
    python benchmarks/engine_vs_torch.py --threads 1 --quick --compact   # a fast check: the PASS/MISS list
    python benchmarks/engine_vs_torch.py --networks resnet50,vgg16 --batches 1 --repeats 3 --markdown

For every network and batch: the engine's `execute` and the PyTorch twin's forward (torch.no_grad) are timed
alternately after a warm-up (median of --repeats), each layer timed too; the float32 GEMM peak is measured in
the same run; peak memory of one forward pass is measured in a fresh subprocess per engine (this script again,
with a hidden flag). Targets (issue 8, at one thread): engine <= 1.2x PyTorch eager for every network at batch
1 and 8; MobileNetV2's 1x1 convolutions at >= 50 % of the measured np.matmul peak; a 3-channel stem convolution
with a large kernel (AlexNet 11x11/4, ResNet 7x7/2) no slower relative to PyTorch than the rest of its network.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _targets import Target, render, shape_arg, tally, target_table, verdict

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests"):  # cnncalc from this checkout; torch_oracle from tests/
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

DEFAULT_NETWORKS = "all"  # every bundled spec
ENGINE_RATIO = 1.2        # engine <= 1.2x PyTorch eager, every network, at batch 1 and 8
THIN_NETWORKS = ("mobilenet_v2",)  # whose 1x1 convolutions must reach THIN_TARGET of the np.matmul peak
THIN_TARGET = 0.50
STEM_TOLERANCE = 1.05     # stem eng/torch <= body eng/torch x this (a 3-channel first conv with a kernel > 3)
GEMM_N = 2048
UNET_MIN = 188  # valid 3x3 convolutions: smaller tiles vanish before the bottom of the U
MiB = 2**20
SYS_KEY = " sys"  # not a layer name: kernel CPU time of one forward (page faults zero-filling fresh memory)

np = torch = None  # imported by setup_libs() once the thread variables are set


# ---- options and libraries -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default=DEFAULT_NETWORKS,
                   help="comma-separated bundled spec names or spec paths, or 'all' (default: all, every bundled "
                        "spec)")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--repeats", type=int, default=5, help="timed forwards per engine; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed forwards per engine first (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="set OpenBLAS/OpenMP/MKL threads and torch.set_num_threads (1 = the stable figure); "
                        "default: the libraries' own defaults")
    p.add_argument("--unet-input", type=shape_arg, default=(1, 256, 256),
                   help=f"U-Net input shape C,H,W (default 1,256,256; the paper's 1,572,572 is ~150 GMACs; "
                        f"at least {UNET_MIN}x{UNET_MIN})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-layer-kind time breakdown")
    p.add_argument("--top", type=int, default=7, help="layer kinds shown per breakdown (default 7)")
    p.add_argument("--json", metavar="PATH", help="also write every measurement to PATH as JSON")
    p.add_argument("--compact", action="store_true",
                   help="print only the facts and the PASS/MISS target list (no tables)")
    p.add_argument("--quick", action="store_true",
                   help="a fast check: 3 repeats, the first batch only, no peak-memory subprocesses, no breakdown")
    # the peak-memory child: one forward pass of one engine, results as JSON on stdout
    p.add_argument("--_rss-child", dest="rss_child", choices=("engine", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--_network", dest="child_network", help=argparse.SUPPRESS)
    p.add_argument("--_batch", dest="child_batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.batches = args.batches.split(",")[0]
        args.no_rss = args.no_breakdown = True
    if args.repeats < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        p.error("--repeats and --threads must be at least 1, --warmup at least 0")
    try:
        args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches '{args.batches}' is not a comma-separated list of integers")
    if not args.batch_list or min(args.batch_list) < 1:
        p.error("--batches needs positive batch sizes")
    args.network_list = [n.strip() for n in args.networks.split(",") if n.strip()]
    if args.network_list == ["all"]:
        from cnncalc.spec import bundled_names
        args.network_list = bundled_names()
    if len(args.unet_input) != 3 or min(args.unet_input[1:]) < UNET_MIN:
        p.error(f"--unet-input must be C,H,W with H and W at least {UNET_MIN} (valid convolutions); "
                f"got {','.join(map(str, args.unet_input))}")
    return args


def setup_libs(threads: int | None, need_torch: bool = True) -> None:
    """Thread variables first, then the imports (BLAS and OpenMP read them once, when loaded)."""
    global np, torch
    if threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    import numpy
    np = numpy
    if need_torch:
        import torch as torch_module
        torch = torch_module
        if threads is not None:
            torch.set_num_threads(threads)


def openblas_info() -> tuple[str, int | None]:
    """NumPy's BLAS (from show_config) and its thread count (asked of the loaded OpenBLAS, if it is one)."""
    name, threads = "unknown", None
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        pass
    try:
        import ctypes
        libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()
                       and line.split()[-1].startswith("/")})
        for lib in libs:
            handle = ctypes.CDLL(lib)
            for symbol in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
                           "openblas_get_num_threads64_", "scipy_openblas_get_num_threads"):
                if hasattr(handle, symbol):
                    threads = int(getattr(handle, symbol)())
                    for config in ("openblas_get_config", "scipy_openblas_get_config64_", "openblas_get_config64_"):
                        if hasattr(handle, config):
                            fn = getattr(handle, config)
                            fn.restype = ctypes.c_char_p
                            core = fn().decode().split()
                            name += f" (core {core[-2]})" if len(core) >= 2 else ""
                            break
                    return name, threads
    except Exception:
        pass
    return name, threads


# ---- networks ------------------------------------------------------------------------------------------

def load_network(name: str, unet_input: tuple[int, ...]):
    from cnncalc.spec import load
    network = load(name)
    if Path(name).stem == "unet":
        network = network.with_input(tuple(unet_input))
    return network


def network_label(name: str) -> str:
    return Path(name).stem


def conv_label(row) -> str:
    """A layer kind for the breakdown; convolutions split by kernel and depthwise/grouped."""
    layer = row.layer
    if layer.category != "conv":
        return layer.type
    label = f"{layer.type} {'x'.join(map(str, layer.kernel_size))}"
    channels = row.input_shapes[0][1]
    if layer.groups > 1:
        label += " dw" if layer.groups == channels else f" g{layer.groups}"
    return label


def dense_conv_fraction(result: dict, which: str, peak: float) -> float | None:
    """The issue's 'conv layers at >= 50% of the GEMM rate': dense (groups=1) conv and transposed-conv layers.
    Depthwise convs are not matrix products and batch-1 linear layers are matrix-vector products bound by
    memory bandwidth; both are reported in the per-kind breakdown instead."""
    flops = result["group_flops"].get("conv", 0)
    ms = result[which]["groups_ms"].get("conv", 0)
    return flops / (ms / 1e3) / 1e9 / peak if flops and ms else None


def thin_conv_rate(result: dict, which: str) -> float | None:
    """GFLOP/s of the dense 1x1 convolutions (2 x MACs over the seconds the observer gave them)."""
    ms = sum(result[which]["kinds_ms"].get(label, 0.0) for label in result["thin_labels"])
    return result["thin_flops"] / (ms / 1e3) / 1e9 if result["thin_flops"] and ms else None


def stem_ratios(result: dict) -> dict | None:
    """Stem conv eng/torch and body (the forward minus the stem) eng/torch: medians of per-repeat ratios."""
    if not result["stem"]:
        return None
    name = result["stem"]["name"]
    e, t = result["engine"], result["torch"]
    es, ts = e["tracked_ms_all"].get(name), t["tracked_ms_all"].get(name)
    if not es or not ts:
        return None
    stem = [a / b for a, b in zip(es, ts) if b > 0]
    body = [(ea - a) / (ta - b) for ea, a, ta, b in zip(e["ms_all"], es, t["ms_all"], ts) if ta > b]
    if not stem or not body:
        return None
    return {"stem": statistics.median(stem), "body": statistics.median(body), "engine_ms": statistics.median(es),
            "torch_ms": statistics.median(ts)}


def gemm_group(row) -> str | None:
    """Which part of the GEMM-layer total a row belongs to: dense conv, grouped/depthwise conv, or linear."""
    if row.layer.category == "linear":
        return "linear"
    if row.layer.category == "conv":
        return "conv" if row.layer.groups == 1 else "grouped conv"
    return None


def is_pointwise(row) -> bool:
    """A dense (groups=1) convolution with a 1x1 (1, 1x1x1) kernel: a matrix product with no im2col."""
    layer = row.layer
    return layer.category == "conv" and layer.groups == 1 and set(layer.kernel_size) == {1}


def stem_row(summary):
    """The network's first convolution, if its input has 3 channels (an RGB stem)."""
    row = next((r for r in summary.rows if r.layer.category == "conv"), None)
    return row if row is not None and row.input_shapes[0][1] == 3 else None


def stem_text(row) -> str:
    layer = row.layer
    return f"{'x'.join(map(str, layer.kernel_size))}/{'x'.join(map(str, sorted(set(layer.stride))))}"


def stem_has_target(row) -> bool:
    """The issue's stems (11x11/4, 7x7/2 with 3 input channels): a 3-channel first conv with a kernel > 3.
    Small 3x3 stems (VGG-16, MobileNetV2, C3D) are shown, without a target."""
    return row is not None and max(row.layer.kernel_size) > 3


class TorchRunner:
    """The oracle's twin, run layer by layer in spec order with each activation freed after its last reader
    (as `execute` does; the twin's own forward keeps every activation alive, which would inflate its memory)."""

    def __init__(self, network, summary, weights):
        from torch_oracle import load_numpy_weights, twin
        from cnncalc.analyze import last_uses
        from cnncalc.network import NETWORK_INPUT
        model = twin(network, summary)
        load_numpy_weights(model, weights)
        self.model = model
        self.input_name = NETWORK_INPUT
        last = last_uses(network)
        self.plan = []
        for index, layer in enumerate(network.layers):
            frees = tuple(n for n in set(layer.inputs) | {layer.name} if last.get(n, -1) <= index)
            self.plan.append((layer, model.get_submodule(layer.name), layer.inputs, frees))
        self.outputs = network.outputs

    def __call__(self, x, observe=None):
        live = {self.input_name: x}
        with torch.no_grad():
            for layer, module, inputs, frees in self.plan:
                start = time.perf_counter()
                y = module(*(live[n] for n in inputs))
                seconds = time.perf_counter() - start
                live[layer.name] = y
                if observe is not None:
                    observe(layer, y, seconds)
                for name in frees:
                    del live[name]
        return [live[n] for n in self.outputs]


# ---- measurements ----------------------------------------------------------------------------------------

def gemm_peak(n: int = GEMM_N, repeats: int = 5) -> dict[str, float]:
    """float32 GFLOP/s of one n x n x n product (2 n^3 / t), best of `repeats`, NumPy and torch.mm."""
    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    result = {}
    np.matmul(a, b, out=out)
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    result["numpy"] = 2 * n**3 / best / 1e9
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tout = torch.empty((n, n))
        torch.mm(ta, tb, out=tout)
        best = min(_timed(lambda: torch.mm(ta, tb, out=tout)) for _ in range(repeats))
        result["torch"] = 2 * n**3 / best / 1e9
    return result


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_pair(network, summary, weights, runner, batch: int, seed: int, repeats: int, warmup: int,
              track: tuple[str, ...] = ()) -> dict:
    """Engine and torch forwards alternating (ABBA order), per-layer seconds recorded on every timed run
    (and kept run by run for the layers named in `track`)."""
    from cnncalc.engine import execute, random_input
    x = random_input(network, batch, seed)
    tx = torch.from_numpy(x)
    labels = {row.name: conv_label(row) for row in summary.rows}
    groups = {row.name: gemm_group(row) for row in summary.rows if gemm_group(row)}

    def run_engine(record):
        layers: dict[str, float] = {}
        sys_start = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        start = time.perf_counter()
        execute(network, weights, x, (lambda layer, y, s: layers.__setitem__(layer.name, s)) if record else None)
        total = time.perf_counter() - start
        layers[SYS_KEY] = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys_start
        return total, layers

    def run_torch(record):
        layers: dict[str, float] = {}
        sys_start = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        start = time.perf_counter()
        runner(tx, (lambda layer, y, s: layers.__setitem__(layer.name, s)) if record else None)
        total = time.perf_counter() - start
        layers[SYS_KEY] = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys_start
        return total, layers

    for _ in range(warmup):
        run_engine(False)
        run_torch(False)
    runs = {"engine": [], "torch": []}
    for r in range(repeats):
        order = (("engine", run_engine), ("torch", run_torch))
        for which, fn in (order if r % 2 == 0 else order[::-1]):
            runs[which].append(fn(True))

    out = {}
    for which, samples in runs.items():
        totals = [t for t, _ in samples]
        by_kind: dict[str, list[float]] = {}
        between = []
        by_group: dict[str, list[float]] = {}
        system = [layers.pop(SYS_KEY) for _, layers in samples]
        tracked = {name: [layers.get(name, 0.0) for _, layers in samples] for name in track}
        for total, layers in samples:
            group_sums: dict[str, float] = {}
            for name, seconds in layers.items():
                if name in groups:
                    group_sums[groups[name]] = group_sums.get(groups[name], 0.0) + seconds
            for group, seconds in group_sums.items():
                by_group.setdefault(group, []).append(seconds)
            sums: dict[str, float] = {}
            for name, seconds in layers.items():
                sums[labels[name]] = sums.get(labels[name], 0.0) + seconds
            for label, seconds in sums.items():
                by_kind.setdefault(label, []).append(seconds)
            between.append(total - sum(layers.values()))
        out[which] = {
            "ms": 1e3 * statistics.median(totals),
            "ms_all": [1e3 * t for t in totals],
            "tracked_ms_all": {name: [1e3 * v for v in values] for name, values in tracked.items()},
            "between_ms": 1e3 * statistics.median(between),
            "sys_ms": 1e3 * statistics.median(system),
            "kinds_ms": {k: 1e3 * statistics.median(v) for k, v in by_kind.items()},
            "groups_ms": {k: 1e3 * statistics.median(v) for k, v in by_group.items()},
        }
    # each repeat's engine and torch runs are adjacent, so a slow spell of the shared machine hits both:
    # the median of the per-repeat ratios is steadier than the ratio of the medians
    out["pair_ratios"] = [e / t for (e, _), (t, _) in zip(runs["engine"], runs["torch"])]
    counts: dict[str, int] = {}
    for row in summary.rows:
        counts[labels[row.name]] = counts.get(labels[row.name], 0) + 1
    out["kind_counts"] = counts
    return out


def rss_child(args: argparse.Namespace) -> None:
    """One forward pass of one engine in this fresh process; prints its peak memory as JSON."""
    setup_libs(args.threads, need_torch=args.rss_child == "torch")
    from cnncalc.analyze import analyze
    from cnncalc.engine import execute, init_weights, random_input
    network = load_network(args.child_network, args.unet_input)
    summary = analyze(network, batch=args.child_batch)
    weights = init_weights(network, seed=args.seed, summary=summary)
    x = random_input(network, args.child_batch, args.seed)
    if args.rss_child == "torch":
        runner = TorchRunner(network, summary, weights)
        del weights  # the model holds its own copies
        tx = torch.from_numpy(x)
        forward = lambda: runner(tx)  # noqa: E731
    else:
        forward = lambda: execute(network, weights, x)  # noqa: E731
    gc.collect()
    release_free_heap()
    reset = reset_peak_rss()
    before_kib = proc_status("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outputs = forward()
    seconds = time.perf_counter() - start
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_kib = proc_status("VmHWM")
    del outputs
    if reset and hwm_kib is not None and before_kib is not None:
        peak, source = (hwm_kib - before_kib) * 1024, "VmHWM"
    else:  # no resettable high-water mark: ru_maxrss (floored by what this process inherited at exec)
        peak, source = (maxrss_after - (before_kib or maxrss_before)) * 1024, "ru_maxrss"
    print(json.dumps({"peak_bytes": max(peak, 0), "source": source, "before_bytes": (before_kib or 0) * 1024,
                      "ru_maxrss_before_kib": maxrss_before, "ru_maxrss_after_kib": maxrss_after,
                      "seconds": seconds}))


def release_free_heap() -> None:
    """Give freed heap memory back to the kernel (glibc malloc_trim), so memory that weight creation freed
    but malloc kept is not silently reused by the forward pass and missed by the RSS difference."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def proc_status(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def measure_rss(args: argparse.Namespace, name: str, batch: int, which: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_rss-child", which, "--_network", name,
           "--_batch", str(batch), "--seed", str(args.seed), "--unet-input", ",".join(map(str, args.unet_input))]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return {"error": f"{which} child failed: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- output ----------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def heading(text: str, markdown: bool) -> str:
    return f"\n### {text}\n" if markdown else f"\n== {text} =="


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.rss_child:
        rss_child(args)
        return
    setup_libs(args.threads)
    from cnncalc.analyze import analyze
    from cnncalc.engine import estimate_memory, init_weights
    from cnncalc.spec import bundled_names

    md = args.markdown
    for name in args.network_list:
        if name not in bundled_names() and not Path(name).is_file():
            sys.exit(f"error: '{name}' is neither a bundled spec ({', '.join(bundled_names())}) nor a file")
    blas, blas_threads = openblas_info()
    started = time.perf_counter()
    peak_start = gemm_peak()

    facts = [
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        f"threads: {'--threads %d' % args.threads if args.threads else 'library defaults'}; "
        f"NumPy BLAS threads {blas_threads if blas_threads is not None else '?'}, "
        f"torch.get_num_threads() {torch.get_num_threads()}",
        f"numpy {np.__version__} ({blas}); torch {torch.__version__} "
        f"(MKL {'yes' if torch.backends.mkl.is_available() else 'no'}, "
        f"oneDNN {'yes' if torch.backends.mkldnn.is_available() else 'no'})",
        f"float32 GEMM peak ({GEMM_N}^3 matmul, best of 5, 2n^3/t) at start: np.matmul {peak_start['numpy']:.1f} GFLOP/s, "
        f"torch.mm {peak_start['torch']:.1f} GFLOP/s",
        f"repeats {args.repeats} (median), warm-up {args.warmup}, engines alternating ABBA; seed {args.seed}; float32",
        f"U-Net input: {'x'.join(map(str, args.unet_input))} (--unet-input; the spec's own is 1x572x572)",
    ]
    print(heading("cnncalc NumPy engine vs PyTorch (CPU)", md))
    print("\n".join(("- " if md else "  ") + f for f in facts))
    sys.stdout.flush()

    results = []
    peaks = [peak_start]
    for position, name in enumerate(args.network_list):
        if position:
            peaks.append(gemm_peak())  # again before each network: noise only ever lowers it, so keep the best
        network = load_network(name, args.unet_input)
        base = analyze(network, batch=1)
        weights = init_weights(network, seed=args.seed, summary=base)
        weight_bytes = sum(w.nbytes for w in weights.values())
        runner = TorchRunner(network, base, weights)
        for batch in args.batch_list:
            summary = analyze(network, batch=batch)
            gc.collect()
            stem = stem_row(summary)
            timing = time_pair(network, summary, weights, runner, batch, args.seed, args.repeats, args.warmup,
                               track=(stem.name,) if stem else ())
            thin_labels = {conv_label(r) for r in summary.rows if is_pointwise(r)}
            result = {
                "network": network_label(name), "spec": name, "title": network.name, "batch": batch,
                "input": "x".join(map(str, network.input_shape)),
                "flops": summary.totals.flops, "macs": summary.totals.macs,
                "group_flops": {g: sum(2 * r.macs for r in summary.rows if gemm_group(r) == g)
                                for g in {gemm_group(r) for r in summary.rows} - {None}},
                "thin_labels": sorted(thin_labels),
                "thin_flops": sum(2 * r.macs for r in summary.rows if conv_label(r) in thin_labels),
                "stem": None if stem is None else {"name": stem.name, "shape": stem_text(stem),
                                                   "target": stem_has_target(stem)},
                "weight_bytes": weight_bytes,
                "estimate": estimate_memory(network, summary).__dict__,
                **timing,
            }
            results.append(result)
            print(f"  .. {result['network']} batch {batch}: engine {timing['engine']['ms']:.1f} ms, "
                  f"torch {timing['torch']['ms']:.1f} ms", file=sys.stderr, flush=True)
        del runner, weights
        gc.collect()

    if not args.no_rss:  # after the timing, one fresh process per engine and configuration
        for result in results:
            for which in ("engine", "torch"):
                result[which]["rss"] = measure_rss(args, result["spec"], result["batch"], which)
            print(f"  .. rss {result['network']} batch {result['batch']} done", file=sys.stderr, flush=True)

    peak_end = gemm_peak()
    peaks.append(peak_end)
    peak = max(p["numpy"] for p in peaks)
    print(("- " if md else "  ") + f"float32 GEMM peak at end: np.matmul {peak_end['numpy']:.1f} GFLOP/s, "
          f"torch.mm {peak_end['torch']:.1f} GFLOP/s; measured {len(peaks)} times (start, before each network, "
          f"end): np.matmul {min(p['numpy'] for p in peaks):.1f}-{peak:.1f}, torch.mm "
          f"{min(p['torch'] for p in peaks):.1f}-{max(p['torch'] for p in peaks):.1f} GFLOP/s; "
          f"the %peak columns use the best np.matmul figure, {peak:.1f} GFLOP/s")

    # ---- the main table
    headers = ["network", "batch", "input", "engine ms", "torch ms", "eng/torch", "range", "eng GFLOP/s",
               "conv %peak", "torch conv %peak", "1x1 %peak", "torch 1x1 %peak", "stem", "stem eng/torch",
               "body eng/torch", "eng fwd MiB", "torch fwd MiB", "RSS eng/torch", "eng w+fwd MiB", "estimate MiB",
               f"<={ENGINE_RATIO}x", f"1x1>={100 * THIN_TARGET:.0f}%", "stem<=body"]
    rows, targets = [], []
    for r in results:
        e, t = r["engine"], r["torch"]
        where = f"{r['network']} b{r['batch']}"
        ratio = statistics.median(r["pair_ratios"])
        gemm_frac = dense_conv_fraction(r, "engine", peak)
        torch_frac = dense_conv_fraction(r, "torch", peak)
        thin = {which: thin_conv_rate(r, which) for which in ("engine", "torch")}  # GFLOP/s
        thin_frac = {which: None if rate is None else rate / peak for which, rate in thin.items()}
        stem = stem_ratios(r)
        er, tr = e.get("rss", {}), t.get("rss", {})
        e_mib = er["peak_bytes"] / MiB if "peak_bytes" in er else None
        t_mib = tr["peak_bytes"] / MiB if "peak_bytes" in tr else None
        rss_ratio = e_mib / t_mib if e_mib is not None and t_mib else None

        checks = {"engine": ratio <= ENGINE_RATIO, "thin": None, "stem": None}
        lo, hi = min(r["pair_ratios"]), max(r["pair_ratios"])
        targets.append(Target(f"{where}: engine / PyTorch forward",
                              f"engine {e['ms']:.1f} ms, torch {t['ms']:.1f} ms (per repeat {lo:.2f}-{hi:.2f})",
                              f"{ratio:.2f}x", f"<= {ENGINE_RATIO}x", verdict(checks["engine"]),
                              {"engine_ms": e["ms"], "torch_ms": t["ms"], "ratio": ratio, "limit": ENGINE_RATIO}))
        if r["network"] in THIN_NETWORKS:
            frac = thin_frac["engine"]
            checks["thin"] = None if frac is None else frac >= THIN_TARGET
            targets.append(Target(
                f"{where}: 1x1 convolutions, share of GEMM peak",
                "n/a" if frac is None else f"engine {thin['engine']:.1f} GFLOP/s, torch {fmt(thin['torch'])} GFLOP/s; "
                f"np.matmul peak {peak:.1f}", "n/a" if frac is None else f"{100 * frac:.0f}% of peak",
                f">= {100 * THIN_TARGET:.0f}% of peak", verdict(checks["thin"]) if frac is not None else "ERROR",
                {"engine_gflops": thin["engine"], "torch_gflops": thin["torch"], "peak": peak, "fraction": frac,
                 "limit": THIN_TARGET}))
        if r["stem"] and r["stem"]["target"]:
            ok = None if stem is None else stem["stem"] <= stem["body"] * STEM_TOLERANCE
            checks["stem"] = ok
            targets.append(Target(
                f"{where}: stem {r['stem']['name']} {r['stem']['shape']} vs body",
                "n/a" if stem is None else f"stem engine {stem['engine_ms']:.2f} ms, torch {stem['torch_ms']:.2f} ms",
                "n/a" if stem is None else f"stem {stem['stem']:.2f}x, body {stem['body']:.2f}x",
                f"stem <= body x {STEM_TOLERANCE}" + ("" if stem is None else f" = {stem['body'] * STEM_TOLERANCE:.2f}x"),
                verdict(ok) if stem is not None else "ERROR",
                {**(stem or {}), "tolerance": STEM_TOLERANCE}))
        r.update(ratio=ratio, gemm_fraction=gemm_frac, torch_gemm_fraction=torch_frac, thin_fraction=thin_frac,
                 stem_ratios=stem, rss_ratio=rss_ratio, checks=checks)
        rows.append([r["network"], str(r["batch"]), r["input"], fmt(e["ms"]), fmt(t["ms"]), fmt(ratio, 2),
                     f"{lo:.2f}-{hi:.2f}",
                     fmt(r["flops"] / (e["ms"] / 1e3) / 1e9), fmt(None if gemm_frac is None else 100 * gemm_frac, 0),
                     fmt(None if torch_frac is None else 100 * torch_frac, 0),
                     *(fmt(None if thin_frac[w] is None else 100 * thin_frac[w], 0) for w in ("engine", "torch")),
                     r["stem"]["shape"] if r["stem"] else "-",
                     fmt(stem and stem["stem"], 2), fmt(stem and stem["body"], 2),
                     fmt(e_mib), fmt(t_mib),
                     fmt(rss_ratio, 2), fmt(None if e_mib is None else r["weight_bytes"] / MiB + e_mib),
                     fmt(r["estimate"]["total"] / MiB), *map(verdict, checks.values())])
    notes = [
        "eng/torch = median over the repeats of (engine time / torch time) of each adjacent pair; range = the "
        "smallest and largest of those per-repeat ratios (a wide range means the machine was noisy).",
        "eng GFLOP/s = summary.totals.flops / engine time, FLOPs as cnncalc counts them "
        "(2 x MACs + bias, norm, activation, pooling and merge operations).",
        "conv %peak = 2 x MACs of the dense (groups=1) conv and transposed-conv layers / the seconds the "
        "engine's observer gave those layers, over the measured np.matmul peak; 'torch conv %peak' is the same "
        "for PyTorch's layers against the same peak (depthwise and linear layers: see the breakdown).",
        "1x1 %peak = the same for the dense 1x1 convolutions alone (MobileNetV2's thin layers; the target "
        f"applies to {', '.join(THIN_NETWORKS)}).",
        "stem = the first convolution when it reads 3 channels (kernel/stride); stem eng/torch = median per-repeat "
        "ratio of that layer's time; body eng/torch = the same for the whole forward minus that layer. The target "
        f"(stem eng/torch <= body eng/torch x {STEM_TOLERANCE}) applies to stems with a kernel larger than 3 "
        "(AlexNet 11x11/4, ResNet 7x7/2).",
        "fwd MiB = peak RSS during one forward pass in a fresh process minus the RSS just before it (weights "
        "and input already made, so not counted); read from VmHWM after resetting it via /proc/self/clear_refs "
        "(ru_maxrss inherits the parent's high-water mark across exec, so it is only the fallback). Memory is "
        "information, not a target.",
        "eng w+fwd MiB = engine weights + its forward peak, to set beside estimate_memory(...).total.",
    ]
    if args.threads != 1:
        notes.append("the targets are stated for --threads 1; this run used "
                     + (f"--threads {args.threads}" if args.threads else "the libraries' default threads"))
    if not args.compact:
        print(heading("forward pass: time (median), throughput, peak memory, targets", md))
        print(render(headers, rows, md, right=set(range(1, len(headers))) - {2, 12}) + ("\n" if md else ""))
        print("\n".join(("- " if md else "  ") + n for n in notes))

    # ---- where the time goes
    if not args.no_breakdown and not args.compact:
        print(heading(f"where the time goes: the {args.top} biggest layer kinds, median ms, by engine-minus-torch", md))
        for r in results:
            e, t = r["engine"]["kinds_ms"], r["torch"]["kinds_ms"]
            biggest = sorted(set(e) | set(t), key=lambda k: -max(e.get(k, 0), t.get(k, 0)))
            shown = sorted(biggest[:args.top], key=lambda k: -(e.get(k, 0) - t.get(k, 0)))
            excess_total = r["engine"]["ms"] - r["torch"]["ms"]
            brows = []
            for kind in shown:
                ek, tk = e.get(kind, 0.0), t.get(kind, 0.0)
                brows.append([kind, str(r["kind_counts"].get(kind, 0)), fmt(ek), fmt(tk),
                              fmt(ek / tk if tk else None, 2), fmt(ek - tk),
                              fmt(100 * ek / r["engine"]["ms"], 0)])
            rest = biggest[args.top:]
            if rest:
                ek, tk = sum(e.get(k, 0.0) for k in rest), sum(t.get(k, 0.0) for k in rest)
                brows.append([f"({len(rest)} other kinds)", str(sum(r["kind_counts"].get(k, 0) for k in rest)),
                              fmt(ek), fmt(tk), fmt(ek / tk if tk else None, 2), fmt(ek - tk),
                              fmt(100 * ek / r["engine"]["ms"], 0)])
            eb, tb = r["engine"]["between_ms"], r["torch"]["between_ms"]
            brows.append(["(between layers)", "", fmt(eb), fmt(tb), "", fmt(eb - tb), fmt(100 * eb / r["engine"]["ms"], 0)])
            title = f"{r['network']} batch {r['batch']}: engine {r['engine']['ms']:.1f} ms, torch " \
                    f"{r['torch']['ms']:.1f} ms, gap {excess_total:+.1f} ms"
            parts = []
            for group in ("conv", "grouped conv", "linear"):
                flops = r["group_flops"].get(group, 0)
                ems, tms = r["engine"]["groups_ms"].get(group, 0), r["torch"]["groups_ms"].get(group, 0)
                if flops and ems and tms:
                    parts.append(f"{group} {100 * flops / (ems / 1e3) / 1e9 / peak:.0f}% (torch "
                                 f"{100 * flops / (tms / 1e3) / 1e9 / peak:.0f}%)")
            if parts:
                title += "; of GEMM peak: " + ", ".join(parts)
            title += f"; kernel (sys) time per forward: engine {r['engine']['sys_ms']:.0f} ms, torch " \
                     f"{r['torch']['sys_ms']:.0f} ms"
            print(("**" + title + "**\n") if md else "\n" + title)
            print(render(["layer kind", "n", "engine ms", "torch ms", "eng/torch", "eng-torch ms", "% of engine"],
                         brows, md) + ("\n" if md else ""))

    print(heading("targets", md))
    print(target_table(targets, md) + ("\n" if md else ""))
    print(("- " if md else "  ") + f"{tally(targets)}; wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "notes": notes, "gemm_peaks": peaks,
                                               "gemm_peak_used": peak, "results": results,
                                               "targets": [t.as_dict() for t in targets]}, indent=1, default=str))


if __name__ == "__main__":
    main()
