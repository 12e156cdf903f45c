#!/usr/bin/env python
"""What a user waits for: cnncalc commands end to end, each a fresh process, against floors measured in the
same run (issue 8, "Start-up and end-to-end speed").

    python benchmarks/end_to_end.py                 # every target; ~10 minutes on a 2-core VM
    python benchmarks/end_to_end.py --quick         # 3 repeats, batch 1 only; ~2 minutes
    python benchmarks/end_to_end.py --only startup,scaling --markdown --json e2e.json

Every timing is the wall time of one subprocess (time.perf_counter around subprocess.run, stdout and stderr
to pipes) run from the checkout's root with `sys.executable -m cnncalc` (or the installed entry point with
--cli entry), with OPENBLAS/OMP/MKL_NUM_THREADS = --threads and bytecode caching on (PYTHONDONTWRITEBYTECODE
removed) in its environment; a warm-up run writes the .pyc files first. The commands compared by a target
alternate within each repeat (order reversed every other repeat) and the median of --repeats is reported.
Targets:

  startup   `summarize resnet50 -f json` <= 1.5x, the Rich table (to a pipe) <= 2.0x and `--help` <= 1.3x the
            import floor `python -c "import typer, rich, pydantic, yaml"`
  verify    for every bundled spec at batch 1 and 8: wall(verify -f json) - wall(summarize -f json)
            <= 1.45 x PyTorch's forward pass + 0.25 s (the PyTorch twin of tests/torch_oracle.py, same weights,
            input shape and threads, timed in a persistent child process, interleaved with the commands)
  scaling   summarize -f json of a 10,000-layer spec <= 11x a 1,000-layer one (plain and blocks/repeat; the
            start-up of a 3-layer spec subtracted), and at the layer limit every format in under 10 s
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests"):  # cnncalc from this checkout; torch_oracle from tests/
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _targets import ERROR, SKIP, Target, shape_arg, tally, target_table, verdict  # noqa: E402

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
FLOOR_CODE = "import typer, rich, pydantic, yaml"
STARTUP_TARGETS = (  # label, cnncalc arguments, target (x floor)
    ("summarize resnet50 -f json", ["summarize", "resnet50", "--format", "json"], 1.5),
    ("summarize resnet50 (Rich table)", ["summarize", "resnet50"], 2.0),
    ("cnncalc --help", ["--help"], 1.3),
)
VERIFY_FACTOR, VERIFY_ALLOWANCE = 1.45, 0.25   # verify - summarize <= 1.45 x torch forward + 0.25 s
SCALING_SMALL, SCALING_LARGE, SCALING_TARGET = 1_000, 10_000, 11.0
LIMIT_SECONDS = 10.0
FORMATS = ("table", "json", "markdown", "csv")
PARTS = ("startup", "verify", "scaling")
STDERR_LINES = 15  # of a failed command's stderr, printed under the table


# ---- options -------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7, help="timed runs of every command; the median is reported "
                                                          "(default 7; 3 with --quick)")
    p.add_argument("--threads", type=int, default=1, help="OPENBLAS/OMP/MKL_NUM_THREADS in every child and "
                                                          "torch.set_num_threads (default 1, the stable figure)")
    p.add_argument("--quick", action="store_true", help="3 repeats, batch 1 only: a fast check")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run: {', '.join(PARTS)} "
                                                           "(default all)")
    p.add_argument("--specs", default="all", help="comma-separated bundled specs for the verify targets "
                                                  "(default all: cnncalc.spec.bundled_names())")
    p.add_argument("--batches", default="1,8", help="batch sizes for the verify targets (default 1,8; 1 with --quick)")
    p.add_argument("--unet-input", type=shape_arg, default=(1, 256, 256),
                   help="--input for the U-Net's verify/summarize/torch runs (default 1,256,256, as "
                        "engine_vs_torch.py; the spec's own 1x572x572 is ~150 GMACs)")
    p.add_argument("--long-seconds", type=float, default=4.0,
                   help="a verify configuration whose first verify run takes longer than this ...")
    p.add_argument("--long-repeats", type=int, default=3,
                   help="... is timed this many times instead of --repeats (default 3), to keep the run short")
    p.add_argument("--cli", choices=("module", "entry"), default="module",
                   help="run cnncalc as `sys.executable -m cnncalc` (default) or as the installed entry-point "
                        "script next to sys.executable, run by sys.executable")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a command counts as failed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the facts and the target table as Markdown")
    p.add_argument("--json", metavar="PATH", help="write every measurement (each repeat) to PATH")
    # the PyTorch child: builds one spec's twin, then times one forward per line read from stdin
    p.add_argument("--_torch-child", dest="torch_child", help=argparse.SUPPRESS)
    p.add_argument("--_input", dest="child_input", type=shape_arg, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.long_repeats < 1:
        p.error("--repeats, --threads and --long-repeats must be at least 1")
    try:
        args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches '{args.batches}' is not a comma-separated list of integers")
    if not args.batch_list or min(args.batch_list) < 1:
        p.error("--batches needs positive batch sizes")
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.batch_list = args.batch_list[:1]
    args.parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown or not args.parts:
        p.error(f"--only takes {', '.join(PARTS)}; got '{args.only}'")
    return args


# ---- running commands ------------------------------------------------------------------------------------

class CommandFailed(Exception):
    def __init__(self, label: str, detail: str, stderr: str = ""):
        super().__init__(f"{label}: {detail}")
        self.label, self.detail, self.stderr = label, detail, stderr


def child_env(threads: int) -> dict[str, str]:
    """Our environment with the thread count set, and bytecode caching on: a user's installed cnncalc has its
    .pyc files (pip compiles them at install time) as the floor's packages do, so a PYTHONDONTWRITEBYTECODE=1
    here would charge cnncalc alone ~75 ms of compiling its sources in every run."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for var in THREAD_VARS:
        env[var] = str(threads)
    return env


class Runner:
    """Runs the commands, records every timing under its label, and keeps the first failure of each."""

    def __init__(self, args: argparse.Namespace):
        self.env = child_env(args.threads)
        self.timeout = args.timeout
        if args.cli == "module":
            self.cnncalc = [sys.executable, "-m", "cnncalc"]
        else:
            script = Path(sys.executable).parent / "cnncalc"
            if not script.is_file():
                sys.exit(f"error: --cli entry: no entry-point script at {script} (pip install -e . first)")
            self.cnncalc = [sys.executable, str(script)]
        self.floor = [sys.executable, "-c", FLOOR_CODE]
        self.records: dict[str, dict] = {}

    def record(self, label: str, argv: list[str] | None = None) -> dict:
        return self.records.setdefault(label, {"argv": argv, "seconds": [], "error": None})

    def run(self, label: str, argv: list[str]) -> float:
        """One fresh process: its wall time, or CommandFailed (non-zero exit, timeout, cannot start)."""
        rec = self.record(label, argv)
        if rec["error"]:
            raise CommandFailed(label, rec["error"]["detail"])
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            return self.fail(rec, label, f"timed out after {self.timeout:.0f} s", _text(exc.stderr))
        except OSError as exc:
            return self.fail(rec, label, f"could not start: {exc}", "")
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            return self.fail(rec, label, f"exit code {proc.returncode}", _text(proc.stderr))
        rec["seconds"].append(seconds)
        rec.setdefault("stdout_bytes", len(proc.stdout))
        return seconds

    def fail(self, rec: dict, label: str, detail: str, stderr: str):
        rec["error"] = {"detail": detail, "stderr": stderr}
        print(f"  !! {label}: {detail}", file=sys.stderr, flush=True)
        raise CommandFailed(label, detail, stderr)

    def alternate(self, jobs: list[tuple[str, object]], repeats: int, adapt=None) -> int:
        """Run `jobs` (label, argv or a callable returning seconds) `repeats` times, in order on even repeats and
        reversed on odd ones. A job that fails is dropped from the rotation (its error is kept). `adapt(r)`,
        called after each repeat, may lower the number of repeats. Returns the repeats done."""
        active = list(jobs)
        done = 0
        while done < repeats and active:
            for label, job in (active if done % 2 == 0 else active[::-1]):
                try:
                    if callable(job):
                        rec = self.record(label)
                        if rec["error"]:
                            raise CommandFailed(label, rec["error"]["detail"])
                        try:
                            rec["seconds"].append(job())
                        except CommandFailed as exc:
                            rec["error"] = {"detail": exc.detail, "stderr": exc.stderr}
                            print(f"  !! {label}: {exc.detail}", file=sys.stderr, flush=True)
                            raise
                    else:
                        self.run(label, job)
                except CommandFailed:
                    active = [j for j in active if j[0] != label]
            done += 1
            if adapt is not None:
                repeats = adapt(done, repeats)
        return done

    def median(self, label: str) -> float | None:
        seconds = self.records.get(label, {}).get("seconds") or []
        return statistics.median(seconds) if seconds else None

    def paired(self, a: str, b: str, op) -> float | None:
        """Median over the repeats of op(a's time, b's time) of the same repeat (a slow spell hits both)."""
        sa, sb = self.records.get(a, {}).get("seconds") or [], self.records.get(b, {}).get("seconds") or []
        values = [op(x, y) for x, y in zip(sa, sb)]
        return statistics.median(values) if values else None

    def errors(self, *labels: str) -> list[str]:
        return [label for label in labels if self.records.get(label, {}).get("error")]


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def error_target(name: str, runner: Runner, failed: list[str], target: str) -> Target:
    details = "; ".join(f"{label}: {runner.records[label]['error']['detail']}" for label in failed)
    return Target(name, details, "-", target, ERROR, {"failed": failed})


def s(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{1e3 * value:.1f} ms" if abs(value) < 0.1 else f"{value:.{digits}f} s"


# ---- (a) start-up ------------------------------------------------------------------------------------------

def startup_targets(runner: Runner, args: argparse.Namespace) -> list[Target]:
    print("  .. start-up: floor, summarize -f json, summarize table, --help", file=sys.stderr, flush=True)
    jobs = [("floor", runner.floor)] + [(label, runner.cnncalc + argv) for label, argv, _ in STARTUP_TARGETS]
    runner.alternate(jobs, args.repeats)
    floor = runner.median("floor")
    targets = []
    for label, _, limit in STARTUP_TARGETS:
        want = f"<= {limit}x floor"
        failed = runner.errors("floor", label)
        if failed:
            targets.append(error_target(label, runner, failed, want))
            continue
        ratio = runner.paired(label, "floor", lambda x, y: x / y)
        median = runner.median(label)
        targets.append(Target(label, f"{s(median)}; floor {s(floor)}", f"{ratio:.2f}x floor", want,
                              verdict(ratio <= limit),
                              {"seconds": median, "floor": floor, "ratio": ratio, "limit": limit}))
    return targets


# ---- (b) verify against PyTorch ------------------------------------------------------------------------------

class TorchChild:
    """This script again (--_torch-child): builds one spec's PyTorch twin with the engine's weights, warms up at
    every batch, then times one forward for each batch size it reads on stdin."""

    def __init__(self, spec: str, input_shape: tuple[int, ...] | None, batches: list[int], args: argparse.Namespace):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_torch-child", spec, "--batches",
               ",".join(map(str, batches)), "--threads", str(args.threads), "--seed", str(args.seed)]
        if input_shape:
            cmd += ["--_input", ",".join(map(str, input_shape))]
        self.label = f"torch child {spec}"
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(args.threads), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.info = self._reply()

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.seek(0)
            raise CommandFailed(self.label, f"exit code {self.proc.returncode}", _text(self.stderr.read()))
        return json.loads(line)

    def forward(self, batch: int) -> float:
        try:
            self.proc.stdin.write(f"{batch}\n")
            self.proc.stdin.flush()
        except OSError:  # the child has died: _reply reports its exit code and stderr
            pass
        return self._reply()["seconds"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def torch_child(args: argparse.Namespace) -> None:
    for var in THREAD_VARS:  # before NumPy and torch load (the parent set them in our environment too)
        os.environ[var] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    from torch_oracle import load_numpy_weights, twin

    from cnncalc.analyze import analyze
    from cnncalc.engine import init_weights, random_input
    from cnncalc.spec import load
    network = load(args.torch_child)
    if args.child_input:
        network = network.with_input(tuple(args.child_input))
    summary = analyze(network, batch=1)
    weights = init_weights(network, seed=args.seed, summary=summary)
    model = twin(network, summary)
    load_numpy_weights(model, weights)
    del weights
    inputs = {b: torch.from_numpy(random_input(network, b, args.seed)) for b in args.batch_list}
    warmup = {}
    with torch.no_grad():
        for b, x in inputs.items():
            start = time.perf_counter()
            model(x)
            warmup[b] = time.perf_counter() - start
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "warmup_seconds": warmup}),
          flush=True)
    for line in sys.stdin:
        x = inputs[int(line)]
        with torch.no_grad():
            start = time.perf_counter()
            model(x)
            seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds}), flush=True)


def spec_names(args: argparse.Namespace) -> list[str]:
    bundled = bundled_specs()
    if args.specs == "all":
        return bundled
    names = [n.strip() for n in args.specs.split(",") if n.strip()]
    unknown = [n for n in names if n not in bundled]
    if unknown:
        sys.exit(f"error: --specs: {', '.join(unknown)} not bundled ({', '.join(bundled)})")
    return names


def bundled_specs() -> list[str]:
    try:
        from cnncalc.spec import bundled_names
        return bundled_names()
    except Exception as exc:  # the measured code is being edited: fall back to the spec files
        print(f"  !! cnncalc.spec.bundled_names() failed ({exc!r}); using {ROOT / 'specs'}/*.yaml",
              file=sys.stderr)
        return sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))


def verify_targets(runner: Runner, args: argparse.Namespace, torch_note: list[str]) -> list[Target]:
    have_torch = find_spec("torch") is not None
    want = f"<= {VERIFY_FACTOR}x torch + {VERIFY_ALLOWANCE} s"
    targets = []
    if not have_torch:
        torch_note.append("PyTorch is not installed: the verify targets are skipped")
        return [Target(f"verify {name} b{b}", "PyTorch not installed", "-", want, SKIP)
                for name in spec_names(args) for b in args.batch_list]
    for name in spec_names(args):
        input_shape = tuple(args.unet_input) if name == "unet" else None
        extra = ["--input", ",".join(map(str, input_shape))] if input_shape else []
        shown = name + (f" -i {','.join(map(str, input_shape))}" if input_shape else "")
        print(f"  .. verify {shown}: starting the PyTorch child", file=sys.stderr, flush=True)
        try:
            child = TorchChild(name, input_shape, args.batch_list, args)
        except CommandFailed as exc:
            runner.record(exc.label)["error"] = {"detail": exc.detail, "stderr": exc.stderr}
            print(f"  !! {exc.label}: {exc.detail}", file=sys.stderr, flush=True)
            child = None
        else:
            runner.record(child.label)["info"] = child.info
        try:
            for batch in args.batch_list:
                vlabel, slabel, tlabel = (f"verify {shown} b{batch}", f"summarize {shown} b{batch} -f json",
                                          f"torch forward {shown} b{batch}")
                common = [name, "--batch", str(batch), *extra, "--format", "json"]
                jobs = [(vlabel, runner.cnncalc + ["verify", *common]),
                        (slabel, runner.cnncalc + ["summarize", *common])]
                if child is not None:
                    jobs.append((tlabel, lambda b=batch: child.forward(b)))
                else:
                    runner.record(tlabel)["error"] = {"detail": f"the PyTorch child did not start (torch child {name})",
                                                      "stderr": ""}

                def adapt(done, repeats, vlabel=vlabel):
                    first = runner.records[vlabel]["seconds"][:1]
                    if done == 1 and first and first[0] > args.long_seconds:
                        return min(repeats, args.long_repeats)
                    return repeats
                started = time.perf_counter()
                done = runner.alternate(jobs, args.repeats, adapt)
                print(f"  .. verify {shown} b{batch}: {done} repeats, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr, flush=True)
                targets.append(verify_target(runner, vlabel, slabel, tlabel, want, done < args.repeats))
        finally:
            if child is not None:
                child.close()
    return targets


def verify_target(runner: Runner, vlabel: str, slabel: str, tlabel: str, want: str, shortened: bool) -> Target:
    failed = runner.errors(vlabel, slabel, tlabel)
    if failed:
        return error_target(vlabel, runner, failed, want)
    excess = runner.paired(vlabel, slabel, lambda v, su: v - su)
    fwd = runner.median(tlabel)
    limit = VERIFY_FACTOR * fwd + VERIFY_ALLOWANCE
    n = len(runner.records[vlabel]["seconds"])
    measured = (f"verify {s(runner.median(vlabel), 2)} - summarize {s(runner.median(slabel), 2)} = "
                f"{s(excess, 2)}; torch {s(fwd, 3)}" + (f" ({n} repeats)" if shortened else ""))
    return Target(vlabel, measured, f"{excess / fwd:.2f}x torch", f"{want} = {limit:.2f} s",
                  verdict(excess <= limit),
                  {"verify": runner.median(vlabel), "summarize": runner.median(slabel), "excess": excess,
                   "torch_forward": fwd, "limit": limit, "excess_over_torch": excess / fwd, "repeats": n})


# ---- (c) scaling and the layer limit -------------------------------------------------------------------------

def spec_text(layers: int, blocks: bool) -> str:
    """Exactly `layers` layers, conv2d/batchnorm2d/relu in turn (as summarize_scaling.py); with `blocks`, the
    triples come from one block used with `repeat`, and the remainder is written out."""
    kinds = ("  - {{type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: c{i}}}\n",
             "  - {{type: batchnorm2d, name: b{i}}}\n",
             "  - {{type: relu, name: r{i}}}\n")
    if not blocks:
        return "input: [8, 16, 16]\nlayers:\n" + "".join(kinds[i % 3].format(i=i) for i in range(layers))
    text = ("input: [8, 16, 16]\nblocks:\n  unit:\n    args: {ch: 8}\n    layers:\n"
            "      - {type: conv2d, name: conv, out_channels: $ch, kernel_size: 3, padding: 1}\n"
            "      - {type: batchnorm2d, name: bn}\n      - relu\nlayers:\n")
    if layers >= 3:
        text += f"  - {{block: unit, name: stage, repeat: {layers // 3}}}\n"
    return text + "".join(kinds[i % 3].format(i=i) for i in range(layers % 3))


def max_layers() -> int:
    try:
        from cnncalc.limits import MAX_LAYERS
        return MAX_LAYERS
    except Exception as exc:
        print(f"  !! cnncalc.limits.MAX_LAYERS unavailable ({exc!r}); using 10,000", file=sys.stderr)
        return 10_000


def layer_count(runner: Runner, label: str) -> int | None:
    """The number of rows in a JSON report (a check that the generated spec has the layers it should)."""
    argv = runner.records[label]["argv"]
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=runner.env, capture_output=True, timeout=runner.timeout)
        return len(json.loads(proc.stdout)["layers"])
    except Exception:
        return None


def scaling_targets(runner: Runner, args: argparse.Namespace, tmp: Path) -> list[Target]:
    limit_layers = max_layers()
    sizes = {"tiny": 3, "small": SCALING_SMALL, "large": SCALING_LARGE}
    targets = []
    for kind in ("plain", "blocks"):
        labels = {}
        for which, layers in sizes.items():
            path = tmp / f"{kind}{layers}.yaml"
            path.write_text(spec_text(layers, kind == "blocks"))
            labels[which] = (f"summarize {kind} {layers:,} layers -f json",
                             runner.cnncalc + ["summarize", str(path), "--format", "json"])
        print(f"  .. scaling {kind}: {', '.join(f'{n:,}' for n in sizes.values())} layers", file=sys.stderr,
              flush=True)
        runner.alternate(list(labels.values()), args.repeats)
        tiny, small, large = (labels[w][0] for w in ("tiny", "small", "large"))
        name = f"summarize -f json {kind} {SCALING_LARGE:,} / {SCALING_SMALL:,} layers"
        want = f"<= {SCALING_TARGET:g}x"
        failed = runner.errors(tiny, small, large)
        if failed:
            targets.append(error_target(name, runner, failed, want))
            continue
        counts = {w: layer_count(runner, labels[w][0]) for w in ("small", "large")}
        t0, t1, t2 = runner.median(tiny), runner.median(small), runner.median(large)
        raw = runner.paired(large, small, lambda a, b: a / b)
        net = (t2 - t0) / (t1 - t0) if t1 > t0 else None
        measured = f"{SCALING_SMALL:,}: {s(t1)}, {SCALING_LARGE:,}: {s(t2)}, 3 layers: {s(t0)}"
        if counts["small"] != SCALING_SMALL or counts["large"] != SCALING_LARGE:
            measured += f" (JSON rows {counts['small']}, {counts['large']}!)"
        targets.append(Target(name, measured, "n/a" if net is None else f"{net:.2f}x ({raw:.2f}x with start-up)",
                              want + " (start-up subtracted)",
                              verdict(None if net is None else net <= SCALING_TARGET),
                              {"tiny": t0, "small": t1, "large": t2, "ratio_net": net, "ratio_raw": raw,
                               "rows": counts}))

    path = tmp / f"limit{limit_layers}.yaml"
    path.write_text(spec_text(limit_layers, False))
    jobs = [(f"summarize plain {limit_layers:,} layers -f {fmt}",
             runner.cnncalc + ["summarize", str(path), "--format", fmt]) for fmt in FORMATS]
    print(f"  .. layer limit: {limit_layers:,} layers in {', '.join(FORMATS)}", file=sys.stderr, flush=True)
    runner.alternate(jobs, args.repeats)
    for (label, _), fmt in zip(jobs, FORMATS):
        name = f"summarize at the limit ({limit_layers:,} layers) -f {fmt}" + (" (to a pipe)" if fmt == "table" else "")
        want = f"< {LIMIT_SECONDS:g} s"
        if runner.errors(label):
            targets.append(error_target(name, runner, [label], want))
            continue
        median = runner.median(label)
        worst = max(runner.records[label]["seconds"])
        targets.append(Target(name, f"{s(median, 2)} (slowest {s(worst, 2)})", f"{median / LIMIT_SECONDS:.2f}x limit",
                              want, verdict(median < LIMIT_SECONDS),
                              {"seconds": median, "slowest": worst, "limit": LIMIT_SECONDS}))
    return targets


# ---- facts and output -------------------------------------------------------------------------------------

def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "cnncalc"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + (" + uncommitted changes in cnncalc/" if dirty else "") if head else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def main() -> None:
    args = parse_args()
    if args.torch_child:
        torch_child(args)
        return
    sys.stdout.reconfigure(line_buffering=True)
    runner = Runner(args)
    started = time.perf_counter()
    facts = [
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()} ({sys.executable})",
        f"cnncalc: {ROOT} at {git_state()}; run as `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(runner.cnncalc))}`"
        f" from {ROOT}; the floor as `{Path(sys.executable).name} -c \"{FLOOR_CODE}\"`",
        f"threads: {args.threads} ({'/'.join(THREAD_VARS)}={args.threads} in every child; "
        f"torch.set_num_threads({args.threads}))",
        f"timing: wall time of each fresh process (perf_counter around subprocess.run, stdout/stderr to pipes); "
        f"median of {args.repeats} repeats; the commands of a target alternate, order reversed every other repeat"
        + ("; --quick" if args.quick else ""),
    ]
    torch_note: list[str] = []
    if "verify" in args.parts:
        facts += [
            f"verify: batches {','.join(map(str, args.batch_list))}; U-Net at --input "
            f"{','.join(map(str, args.unet_input))} (the spec's own is 1,572,572); excess = median over the repeats "
            f"of (verify - summarize) of the same repeat; a configuration whose first verify takes over "
            f"{args.long_seconds:g} s gets {args.long_repeats} repeats",
            "torch: the twin of tests/torch_oracle.py with the engine's init_weights(seed), the same input shape, "
            "torch.no_grad(), timed in-process in one persistent child per spec (this script, hidden flag) after "
            "one warm-up forward per batch, one forward per repeat interleaved with the two commands",
        ]
    print(("### " if args.markdown else "== ") + "cnncalc end to end" + ("" if args.markdown else " =="))
    bullet = "- " if args.markdown else "  "
    print("\n".join(bullet + f for f in facts))

    # one untimed run of each kind of command first: byte-compiles changed modules, warms the page cache
    print("  .. warm-up", file=sys.stderr, flush=True)
    for argv in (runner.floor, runner.cnncalc + ["--help"], runner.cnncalc + ["summarize", "lenet5", "-f", "json"],
                 runner.cnncalc + ["verify", "lenet5", "-f", "json"]):
        subprocess.run(argv, cwd=ROOT, env=runner.env, capture_output=True, timeout=args.timeout)

    targets: list[Target] = []
    if "startup" in args.parts:
        targets += startup_targets(runner, args)
    if "verify" in args.parts:
        targets += verify_targets(runner, args, torch_note)
    if "scaling" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            targets += scaling_targets(runner, args, Path(tmp))

    print()
    print(("### " if args.markdown else "== ") + "targets" + ("" if args.markdown else " =="))
    print(target_table(targets, args.markdown))
    notes = torch_note + [f"{tally(targets)}; wall time {time.perf_counter() - started:.0f} s"]
    print("\n".join(bullet + n for n in notes))
    failures = [(label, rec["error"]) for label, rec in runner.records.items() if rec.get("error")]
    if failures:
        print()
        print(("### " if args.markdown else "== ") + "errors (stderr, last lines)" + ("" if args.markdown else " =="))
        for label, error in failures:
            print(f"{label}: {error['detail']}")
            argv = runner.records[label].get("argv")
            if argv:
                print(f"  command: {' '.join(argv)}")
            for line in error["stderr"].strip().splitlines()[-STDERR_LINES:]:
                print(f"  | {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "notes": notes, "commands": runner.records,
                                               "targets": [t.as_dict() for t in targets]}, indent=1, default=str))


if __name__ == "__main__":
    main()
