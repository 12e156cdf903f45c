"""The engine around the kernels: weights in and out, memory estimate and limit, freeing, verify's CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import weakref

import numpy as np
import pytest
from typer.testing import CliRunner

from cnncalc.analyze import analyze
from cnncalc.cli import app
from cnncalc.engine import (estimate_memory, execute, expected_weights, init_weights, last_uses, load_weights,
                            parse_bytes, random_input, save_weights)
from cnncalc import verification
from cnncalc.engine import STATISTICS_BLOCK, STATISTICS_BYTES, statistics
from cnncalc.errors import WeightsError
from cnncalc.kernels.layout import CHUNK_BYTES
from cnncalc.spec import load, parse

SKIP = """\
name: Skip
input: [4, 8, 8]
layers:
  - {type: conv2d, name: a, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: batchnorm2d, name: bn}
  - {type: relu, name: r}
  - {type: add, name: s, inputs: [r, input]}
  - {type: flatten, name: f}
  - {type: linear, name: fc, out_features: 3}
"""


@pytest.fixture
def net():
    return parse(SKIP, "skip.yaml")


def test_weight_names_and_layouts_follow_pytorch(net):
    expected = expected_weights(analyze(net))
    assert {k: w.shape for k, w in expected.items()} == {
        "a.weight": (4, 4, 3, 3), "a.bias": (4,), "bn.weight": (4,), "bn.bias": (4,),
        "bn.running_mean": (4,), "bn.running_var": (4,), "fc.weight": (3, 256), "fc.bias": (3,)}


def test_default_init_follows_pytorch_bounds(net):
    weights = init_weights(net, seed=3)
    bound = 1 / np.sqrt(4 * 9)  # kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(weights["a.weight"]).max() <= bound and np.abs(weights["a.weight"]).max() > 0.9 * bound
    assert np.all(weights["bn.weight"] == 1) and np.all(weights["bn.running_var"] == 1)
    assert np.all(weights["bn.bias"] == 0) and weights["fc.weight"].dtype == np.float32
    again = init_weights(net, seed=3)
    assert all(np.array_equal(weights[k], again[k]) for k in weights)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_constant_init_fills_every_element_in_the_dtype(dtype):
    # nn.PReLU(num_parameters, init): nn.init.constant_(weight, init), rounded to the dtype as torch.full does
    net = parse("name: p\ninput: [3, 4]\nlayers:\n  - {type: prelu, name: a}\n"
                "  - {type: prelu, name: b, num_parameters: 3, init: 0.1}\n", "prelu.yaml")
    weights = init_weights(net, dtype=dtype)
    assert weights["a.weight"].tolist() == [0.25] and weights["a.weight"].dtype == dtype
    assert weights["b.weight"].dtype == dtype and np.array_equal(weights["b.weight"], np.full(3, 0.1, dtype))


def test_weights_round_trip_and_problems_are_reported_together(net, tmp_path):
    summary = analyze(net)
    weights = init_weights(net, seed=1)
    path = save_weights(tmp_path / "w.npz", weights)
    loaded = load_weights(path, summary)
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)
    bad = dict(weights)
    del bad["a.bias"]
    bad["fc.weight"] = np.zeros((3, 10), np.float32)
    bad["extra.weight"] = np.zeros(2, np.float32)
    bad["bn.num_batches_tracked"] = np.array(0)  # PyTorch's counter is ignored
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(WeightsError) as err:
        load_weights(tmp_path / "bad.npz", summary)
    message = str(err.value)
    assert "missing: a.bias [4]" in message
    assert "unexpected: extra.weight" in message and "num_batches_tracked" not in message
    assert "fc.weight expected [3, 256] found [3, 10]" in message


def test_unreadable_weights_file_is_a_user_error(net, tmp_path):
    (tmp_path / "junk.npz").write_text("not an archive")
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_weights(tmp_path / "junk.npz", analyze(net))


def test_activations_are_freed_after_their_last_use(net):
    last = last_uses(net)
    assert last["input"] == 3 and last["a"] == 1 and last["fc"] == 6  # the skip keeps `input` alive to `s`
    seen: list[str] = []
    outputs = execute(net, init_weights(net), random_input(net, 2, 0), lambda layer, y, s: seen.append(layer.name))
    assert list(outputs) == ["fc"] and outputs["fc"].shape == (2, 3)
    assert seen == ["a", "bn", "r", "s", "f", "fc"]


def test_execute_drops_each_activation_after_its_last_reader(net):
    x = random_input(net, 2, 0)
    outputs: dict[str, weakref.ref] = {"input": weakref.ref(x)}
    alive_at: dict[str, set[str]] = {}

    def observe(layer, y, seconds):
        outputs[layer.name] = weakref.ref(y)
        alive_at[layer.name] = {name for name, ref in outputs.items() if ref() is not None}

    execute(net, init_weights(net), x, observe)
    # `a` is read only by `bn`, so it is gone by the time `r` runs; `bn` and `r` are gone once `s` has run
    assert "a" not in alive_at["r"] and "bn" in alive_at["r"]
    assert alive_at["f"] >= {"f"} and "r" not in alive_at["f"] and "bn" not in alive_at["f"]


def test_memory_estimate_counts_live_activations(net):
    summary = analyze(net, batch=2)
    memory = estimate_memory(net, summary)
    one = 2 * 4 * 8 * 8 * 4  # bytes of one [2, 4, 8, 8] float32 activation
    # first reached at `bn`: the input (kept alive for the skip), a, and bn itself
    assert (memory.peak_activations, memory.peak_layer) == (3 * one, "bn")
    assert memory.weights == summary.totals.params * 4
    # the conv `a`: input and output alive, plus its padded input [2, 4, 10, 10], a copy of its weight and
    # bias (4*4*3*3 + 4), two im2col chunks, and the statistics of its output
    workspace = (2 * 4 * 10 * 10 + 4 * 4 * 3 * 3 + 4) * 4 + 2 * CHUNK_BYTES + STATISTICS_BYTES
    assert memory.workspace == workspace
    assert memory.total == memory.weights + 2 * one + workspace


@pytest.mark.parametrize("name", ["lenet5", "audio1d", "resnet18", "mobilenet_v2", "alexnet"])
def test_memory_estimate_bounds_what_verify_really_allocates(name):
    """tracemalloc sees every NumPy buffer: the estimate must never be below the traced peak."""
    network = load(name)
    summary = analyze(network, batch=2)
    memory = estimate_memory(network, summary)
    tracemalloc.start()
    try:
        assert verification.verify(network, batch=2, summary=summary).passed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= memory.total


@pytest.mark.parametrize("text, value", [("4GiB", 4 * 2**30), ("512M", 512 * 2**20), ("1.5 G", int(1.5 * 2**30)),
                                         ("100", 100)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


# ---- verify through the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def skip_file(spec_file):
    return str(spec_file(SKIP, "skip.yaml"))


def test_verify_passes_and_reports_each_layer(runner, skip_file):
    result = runner.invoke(app, ["verify", skip_file, "--batch", "3", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["input_shape"] == [3, 4, 8, 8]
    assert [l["executed_shape"] for l in data["layers"]][-1] == [3, 3]
    assert all(l["match"] for l in data["layers"])
    assert data["layers"][2]["min"] >= 0  # after relu


def test_verify_table(runner, skip_file):
    result = runner.invoke(app, ["verify", skip_file])
    assert result.exit_code == 0
    assert "All 6 layers executed with the calculated shapes" in result.stdout


def test_verify_with_input_array_weights_and_saved_output(runner, skip_file, tmp_path, net):
    x = np.random.default_rng(0).standard_normal((5, 4, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    weights = init_weights(net, seed=9)
    save_weights(tmp_path / "w.npz", weights)
    out = tmp_path / "y.npy"
    result = runner.invoke(app, ["verify", skip_file, "--input-file", str(tmp_path / "x.npy"), "--weights",
                                 str(tmp_path / "w.npz"), "--save-output", str(out)])
    assert result.exit_code == 0, result.output
    expected = execute(net, weights, x)["fc"]
    np.testing.assert_array_equal(np.load(out), expected)


def test_verify_save_weights_writes_what_it_used(runner, skip_file, tmp_path, net):
    result = runner.invoke(app, ["verify", skip_file, "--seed", "4", "--save-weights", str(tmp_path / "w.npz")])
    assert result.exit_code == 0
    saved = np.load(tmp_path / "w.npz")
    assert np.array_equal(saved["a.weight"], init_weights(net, seed=4)["a.weight"])


@pytest.mark.parametrize("args, words", [
    (["--input-file", "X_BAD"], "has shape [2, 3, 8, 8], but the spec takes [N, 4, 8, 8]"),
    (["--weights", "W_BAD"], "missing: a.weight"),
    (["--weights", "nowhere.npz"], "no such weights file"),
    (["--max-memory", "1KiB"], "more than the limit of"),
    (["--dtype", "float16"], "the engine runs float32 or float64"),
    (["--save-output", "SPEC"], "never writes over a spec"),
])
def test_verify_user_errors_exit_2(runner, skip_file, tmp_path, args, words):
    np.save(tmp_path / "x_bad.npy", np.zeros((2, 3, 8, 8), np.float32))
    np.savez(tmp_path / "w_bad.npz", other=np.zeros(1, np.float32))
    args = [str(tmp_path / "x_bad.npy") if a == "X_BAD" else str(tmp_path / "w_bad.npz") if a == "W_BAD"
            else skip_file if a == "SPEC" else a for a in args]
    result = runner.invoke(app, ["verify", skip_file, *args])
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "Traceback" not in result.stderr


def test_a_mismatch_exits_1_and_names_the_layer(runner, skip_file, monkeypatch):
    from cnncalc.layers.reshape import Flatten
    monkeypatch.setattr(Flatten, "forward", lambda self, weights, x: x.reshape(x.shape[0], 2, -1)[:, 0])
    result = runner.invoke(app, ["verify", skip_file])
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout
    assert "Layer f (flatten) executed with shape [1, 128], but the calculation says [1, 256]" in result.stdout
    assert "the 1 layer(s) after it were not run" in result.stdout


@pytest.mark.oracle
def test_saved_weights_load_into_pytorch(tmp_path, net):
    torch = pytest.importorskip("torch")
    from torch_oracle import twin
    weights = init_weights(net, seed=2)
    save_weights(tmp_path / "w.npz", weights)
    model = twin(net, analyze(net))
    state = {k: torch.from_numpy(v) for k, v in np.load(tmp_path / "w.npz").items()}
    state["bn.num_batches_tracked"] = torch.tensor(0)
    model.load_state_dict(state, strict=True)


def test_a_spec_whose_weights_need_40_gib_is_refused_at_once_in_little_memory(tmp_path):
    """The memory guard runs before any weight is made: a 100,000 x 100,000 linear layer (10^10 weights,
    40 GB as float32) is refused within a second, the process never above 200 MB."""
    spec = tmp_path / "huge.yaml"
    spec.write_text("input: [100000]\nlayers:\n  - {type: linear, out_features: 100000}\n")
    probe = (
        "import time\n"
        "from cnncalc.cli import app\n"
        "start = time.perf_counter()\n"
        "try:\n"
        f"    app(['verify', {str(spec)!r}, '--max-memory', '16GiB'])\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "seconds = time.perf_counter() - start\n"
        "# the peak resident size of this process alone (ru_maxrss would include the parent's, inherited on fork)\n"
        "peak = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "print(code, seconds, peak * 1024)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    code, seconds, peak = result.stdout.split()
    assert code == "2" and "needs about 37.3 GiB" in result.stderr and "(--max-memory)" in result.stderr
    assert float(seconds) < 1.0
    assert int(peak) < 200 * 2**20


def test_the_default_memory_limit_is_the_smallest_of_ram_address_space_and_cgroup(monkeypatch):
    from cnncalc import engine
    files = {"/proc/meminfo": "MemTotal: 100 kB\nMemAvailable:   8388608 kB\n",  # 8 GiB
             "/proc/self/status": "VmSize:  1048576 kB\n",  # 1 GiB mapped
             "/proc/self/cgroup": "0::/box\n",
             "/sys/fs/cgroup/box/memory.max": f"{6 * 2**30}\n", "/sys/fs/cgroup/box/memory.current": f"{2**30}\n"}
    monkeypatch.setattr(engine, "_read", lambda path: files.get(path, ""))
    monkeypatch.setattr(engine.resource, "getrlimit", lambda which: (engine.resource.RLIM_INFINITY,) * 2)
    assert engine.available_memory() == (5 * 2**30, "the cgroup's memory limit")  # 6 GiB less 1 GiB used
    monkeypatch.setattr(engine.resource, "getrlimit", lambda which: (4 * 2**30, 4 * 2**30))
    assert engine.available_memory() == (3 * 2**30, "the address-space limit (ulimit -v)")  # 4 GiB less 1 mapped
    del files["/sys/fs/cgroup/box/memory.max"]
    monkeypatch.setattr(engine.resource, "getrlimit", lambda which: (engine.resource.RLIM_INFINITY,) * 2)
    assert engine.available_memory() == (8 * 2**30, "available RAM")
    limit, source = engine.default_memory_limit()
    assert limit == int(0.8 * 8 * 2**30) and source == "80% of available RAM"


def _reference_statistics(y: np.ndarray) -> tuple[float, float, float, float, int, int]:
    """The textbook way: every finite value at once, in float64."""
    values = y.astype(np.float64).ravel()
    finite = values[np.isfinite(values)]
    return (finite.mean(), finite.std(), finite.min(), finite.max(), int(np.isnan(values).sum()),
            int(np.isinf(values).sum()))


def _case(name: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if name == "several blocks":
        return rng.standard_normal(3 * STATISTICS_BLOCK + 1234).astype(np.float32) * 3 + 0.5
    if name == "channels last":
        return rng.standard_normal((2, 40, 40, 70)).astype(np.float32).transpose(0, 3, 1, 2)
    if name == "strided":
        return rng.standard_normal((600, 900))[::2, 1::3]
    if name == "far from its mean":  # var/mean^2 ~ 1e-12: the uncentred sum of squares would be all rounding
        return (1e4 + 1e-2 * rng.standard_normal(STATISTICS_BLOCK + 99)).astype(np.float64)
    if name == "nan and inf in some blocks":
        y = rng.standard_normal(2 * STATISTICS_BLOCK + 5).astype(np.float32)
        y[[3, 10, STATISTICS_BLOCK + 8]] = np.nan
        y[[4, 2 * STATISTICS_BLOCK + 1]] = [np.inf, -np.inf]
        return y
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["several blocks", "channels last", "strided", "far from its mean",
                                  "nan and inf in some blocks"])
def test_statistics_equal_the_textbook_computation(name):
    y = _case(name)
    mean, std, low, high, nan, inf = _reference_statistics(y)
    got = statistics(y)
    assert (got.nan, got.inf) == (nan, inf)
    assert (got.min, got.max) == (low, high)
    assert got.mean == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert got.std == pytest.approx(std, rel=1e-7)


def test_statistics_of_nothing_finite_are_nan_with_the_counts():
    got = statistics(np.array([np.nan, np.inf, -np.inf, np.nan], dtype=np.float32))
    assert (got.nan, got.inf) == (2, 2) and all(np.isnan([got.mean, got.std, got.min, got.max]))
    empty = statistics(np.zeros((2, 0, 3), dtype=np.float32))
    assert (empty.nan, empty.inf) == (0, 0) and np.isnan(empty.mean)
