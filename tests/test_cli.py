"""The command line through Typer's runner: formats, exit codes, stdout vs stderr, no tracebacks."""
import csv
import io
import json
import os
import stat
import threading
import time

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

SPEC = """\
name: Small
input: [3, 32, 32]
layers:
  - {type: conv2d, name: conv1, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: batchnorm2d, name: bn1}
  - relu
  - {type: maxpool2d, kernel_size: 2}
  - flatten
  - {type: linear, name: fc, out_features: 10}
"""
# conv1: 8*(3*9)+8 = 224 params, 8*32*32*27 = 221,184 MACs; bn1: 16 + 16 running stats;
# fc: 10*(8*16*16)+10 = 20,490 params, 20,480 MACs
PARAMS, TRAINABLE, MACS = 224 + 32 + 20_490, 224 + 16 + 20_490, 221_184 + 20_480


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def small(spec_file):
    return str(spec_file(SPEC))


def test_table_has_every_layer_and_the_totals(runner, small):
    result = runner.invoke(app, ["summarize", small])
    assert result.exit_code == 0, result.output
    for text in ("conv1", "bn1", "relu_1", "maxpool2d_1", "flatten_1", "fc", "[1, 8, 32, 32]", "[1, 10]",
                 f"{PARAMS:,}", f"{MACS:,}", "k=3 s=1 p=1", "Totals"):
        assert text in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no colour codes


def test_json_is_the_stable_contract(runner, small):
    result = runner.invoke(app, ["summarize", small, "--format", "json", "--batch", "4"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["input_shape"] == [4, 3, 32, 32]
    first = data["layers"][0]
    for key in ("name", "type", "inputs", "input_shapes", "output_shape", "params", "trainable_params",
                "non_trainable_params", "macs", "flops", "output_bytes"):
        assert key in first
    assert first["output_shape"] == [4, 8, 32, 32] and first["macs"] == 4 * 221_184
    totals = data["totals"]
    assert totals["params"] == PARAMS and totals["trainable_params"] == TRAINABLE
    assert totals["non_trainable_params"] == 16 and totals["macs"] == 4 * MACS
    assert totals["param_bytes"] == 4 * PARAMS
    assert sum(l["flops"] for l in data["layers"]) == totals["flops"]
    assert sum(totals["flops_by_category"].values()) == totals["flops"]


def test_csv_has_exact_integers(runner, small):
    result = runner.invoke(app, ["summarize", small, "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows][0] == "conv1"
    assert sum(int(r["params"]) for r in rows) == PARAMS
    assert json.loads(rows[0]["output_shape"]) == [1, 8, 32, 32]


def test_markdown_table_and_totals(runner, small):
    result = runner.invoke(app, ["summarize", small, "-f", "markdown", "--columns", "flops,memory"])
    assert result.exit_code == 0
    assert "| # | Name | Type | Output shape | Config | Params | MACs | FLOPs | Output memory |" in result.stdout
    assert f"**Params**: {TRAINABLE:,} trainable" in result.stdout and f"= {PARAMS:,} total" in result.stdout


def test_dtype_and_input_override(runner, small):
    result = runner.invoke(app, ["summarize", small, "-f", "json", "--dtype", "float64", "--input", "3,64,64"])
    data = json.loads(result.stdout)
    assert data["input_shape"] == [1, 3, 64, 64]
    assert data["totals"]["param_bytes"] == 8 * (224 + 32 + 10 * 8 * 32 * 32 + 10)


def test_output_file_is_written_and_never_over_the_spec(runner, small, tmp_path):
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", str(target)])
    assert result.exit_code == 0 and json.loads(target.read_text())["name"] == "Small"
    before = open(small).read()
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", small])
    assert result.exit_code == 2 and "never writes over a spec" in result.stderr
    assert open(small).read() == before


@pytest.mark.parametrize("args, words", [
    (["summarize", "no_such_file.yaml"], "no such file 'no_such_file.yaml'"),
    (["summarize", "SMALL", "--batch", "0"], "--batch must be a whole number from 1 to"),
    (["summarize", "SMALL", "--dtype", "int3"], "unknown --dtype 'int3'"),
    (["summarize", "SMALL", "--input", "3,x"], "--input '3,x' is not a shape"),
    (["summarize", "SMALL", "--input", "3,1,1"], "output would be smaller than 1"),
    (["summarize", "SMALL", "--columns", "flopz"], "unknown column 'flopz'"),
    (["summarize", "SMALL", "--depth", "0"], "--depth must be a whole number from 1 to 1,000,000,000,000; got 0"),
    (["summarize", "SMALL", "--depth", "-2"], "--depth must be a whole number from 1"),
    (["summarize", "BAD"], "unknown layer type 'reluu'"),
    (["layers", "convv2d"], "unknown layer type 'convv2d'"),
])
def test_user_errors_exit_2_with_one_message_and_no_traceback(runner, small, spec_file, args, words):
    bad = str(spec_file("input: [3, 8, 8]\nlayers: [reluu]\n", "bad.yaml"))
    args = [small if a == "SMALL" else bad if a == "BAD" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_depth_of_a_flat_spec_keeps_every_layer(runner, small):
    plain = json.loads(runner.invoke(app, ["summarize", small, "-f", "json"]).stdout)
    result = runner.invoke(app, ["summarize", small, "-f", "json", "--depth", "1"])
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"] == plain["layers"]
    assert json.loads(result.stdout)["totals"]["params"] == PARAMS


def test_debug_shows_the_traceback(runner, spec_file):
    bad = str(spec_file("input: [3, 8, 8]\nlayers: [reluu]\n", "bad.yaml"))
    result = runner.invoke(app, ["--debug", "summarize", bad])
    assert result.exit_code != 0 and result.exception is not None


def test_layers_lists_the_catalogue_and_the_conventions(runner):
    result = runner.invoke(app, ["layers"])
    assert result.exit_code == 0
    for text in ("conv_transpose2d", "global_avgpool", "INPUT elements", "units -> out_features"):
        assert text in result.stdout
    detail = runner.invoke(app, ["layers", "Conv2DTranspose"])
    assert "conv_transpose2d" in detail.stdout and "output_padding" in detail.stdout


def test_layers_shows_every_rule_as_written(runner):
    """Rules are text, never Rich markup: `[groups, C/groups]` or `:end:` would otherwise vanish or turn into
    an emoji."""
    from cnncalc.layers import KIND_CLASSES, type_names
    for cls in KIND_CLASSES:
        kind = type_names(cls)[0]
        shown = runner.invoke(app, ["layers", kind], env={"COLUMNS": "1000"}).stdout
        assert cls.shape_rule in shown and cls.flops_rule in shown, kind


def test_receptive_field_and_memory_in_table_and_json(runner, small):
    table = runner.invoke(app, ["summarize", small, "--columns", "rf"])
    assert "Receptive field" in table.stdout and "3x3 j1 @0.5" in table.stdout  # conv1, padding 1
    assert "Peak inference" in table.stdout and "Training (adam)" in table.stdout
    data = json.loads(runner.invoke(app, ["summarize", small, "-f", "json", "--optimizer", "momentum"]).stdout)
    assert data["layers"][0]["receptive_field"] == {"size": [3, 3], "jump": [1, 1], "start": [0.5, 0.5]}
    assert data["layers"][-1]["receptive_field"] is None  # after flatten and linear
    training = data["totals"]["training"]
    assert training["optimizer"] == "momentum"
    assert training["gradients"] == 4 * TRAINABLE and training["optimizer_state"] == 4 * TRAINABLE
    assert training["params"] == 4 * PARAMS
    assert training["activations"] == data["totals"]["activation_bytes"] + data["totals"]["input_bytes"]
    # the input is freed once conv1 ran; the peak is conv1's and bn1's outputs together: 2 * 8*32*32 floats
    assert data["totals"]["peak_activation_bytes"] == 4 * 2 * 8 * 32 * 32
    assert data["totals"]["peak_layer"] == "bn1"


# ---- diff and sweep ------------------------------------------------------------------------------------------
def test_diff_with_set_is_a_what_if(runner, small):
    result = runner.invoke(app, ["diff", small, "--set", "conv1.stride=2", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # conv1 at stride 2: 8*16*16*27 = 55,296 MACs; fc then sees 8*8*8 = 512 features: 5,120 MACs
    assert data["totals"]["macs"]["b"] == 55_296 + 5_120 and data["totals"]["macs"]["a"] == MACS
    assert "conv1 stride 1 -> 2" in data["headline"]
    table = runner.invoke(app, ["diff", small, small])
    assert table.exit_code == 0 and "no differences" in table.stdout


def test_diff_needs_a_second_spec_or_overrides(runner, small):
    result = runner.invoke(app, ["diff", small])
    assert result.exit_code == 2 and "needs a second spec or some --set" in result.stderr


def test_sweep_over_inputs_and_batches(runner, small):
    result = runner.invoke(app, ["sweep", small, "-i", "3,32,32", "-i", "3,64,64", "--batches", "1,4", "-f", "json"])
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    assert len(points) == 4
    # conv1 MACs scale with the output area (x4 at 64x64); fc grows with the flattened features
    macs = {(tuple(p["input_shape"])): p["macs"] for p in points}
    assert macs[(1, 3, 32, 32)] == MACS and macs[(4, 3, 32, 32)] == 4 * MACS
    assert macs[(1, 3, 64, 64)] == 4 * 221_184 + 10 * 8 * 32 * 32
    table = runner.invoke(app, ["sweep", small, "--batches", "1,2"])
    assert table.exit_code == 0 and "MACs bar" in table.stdout
    bad = runner.invoke(app, ["sweep", small, "-i", "3,1,1"])
    assert bad.exit_code == 2 and "input [3, 1, 1] does not fit" in bad.stderr


def test_solve_command(runner):
    result = runner.invoke(app, ["solve", "--in", "224", "--out", "112", "--kernel", "3", "-f", "json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["solutions"][0]
    assert first == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1}
    limited = runner.invoke(app, ["solve", "--in", "224", "--out", "113", "--limit", "2"])
    assert limited.exit_code == 0 and "showing the 2 simplest of" in limited.stderr
    chain = runner.invoke(app, ["solve", "--in", "224", "--out", "7", "--layers", "5", "-f", "json"])
    assert [224, 112, 56, 28, 14, 7] in [c["sizes"] for c in json.loads(chain.stdout)["chains"]]
    # a pool cannot grow 7 to 9: its padding is at most half its kernel, so 7 + 2*(k//2) - k + 1 <= 8
    bad = runner.invoke(app, ["solve", "--in", "7", "--out", "9", "--kind", "pool"])
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


# ---- outputs never destroy a file ------------------------------------------------------------------------------
# (tests/test_fileio.py covers the writer itself; these go through the commands, as root in CI)

def test_output_dash_is_stdout_and_a_table_can_go_to_a_file(runner, small, tmp_path):
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", "-"])
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == "Small"
    table = tmp_path / "table.txt"
    result = runner.invoke(app, ["summarize", small, "-o", str(table)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "conv1" in table.read_text() and "\x1b" not in table.read_text()  # plain text, no colours


def test_a_device_node_is_written_in_place_never_replaced(runner, small, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (CI runs as root)")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the numbers of /dev/null
    for args in (["summarize", small, "-f", "json", "-o", str(node)],
                 ["verify", small, "--save-weights", str(node), "--save-output", "/dev/null"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert stat.S_ISCHR(node.stat().st_mode) and node.stat().st_rdev == os.makedev(1, 3)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_in_place_or_refused_quickly(runner, small, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", str(fifo)])  # nobody reads it
    assert result.exit_code == 2 and "no process is reading the FIFO" in result.stderr
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    time.sleep(0.1)  # let the reader open its end
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", str(fifo)])
    reader.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert json.loads(received[0])["name"] == "Small" and stat.S_ISFIFO(fifo.stat().st_mode)


def test_new_files_follow_the_umask_and_old_ones_keep_their_mode(runner, small, tmp_path):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    old.write_text("{}")
    old.chmod(0o640)
    previous = os.umask(0o022)
    try:
        for target in (new, old):
            assert runner.invoke(app, ["summarize", small, "-f", "json", "-o", str(target)]).exit_code == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644 and stat.S_IMODE(old.stat().st_mode) == 0o640
    assert json.loads(old.read_text())["name"] == "Small"


def test_two_outputs_of_one_command_may_not_name_one_file(runner, small, tmp_path):
    target = tmp_path / "x.npz"
    result = runner.invoke(app, ["verify", small, "--save-weights", str(target),
                                 "--save-output", str(tmp_path / "." / "x.npz")])
    assert result.exit_code == 2 and "are the same file" in result.stderr and not target.exists()


def test_an_unwritable_place_is_a_clear_error(runner, small, tmp_path):
    result = runner.invoke(app, ["summarize", small, "-f", "json", "-o", str(tmp_path / "no" / "such" / "x.json")])
    assert result.exit_code == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("cnncalc ")


def test_a_cell_lists_at_most_eight_inputs_and_says_how_many_more(runner, spec_file):
    layers = "".join(f"  - {{type: identity, name: i{k}, inputs: [input]}}\n" for k in range(12))
    spec = spec_file("input: [2, 4]\nlayers:\n" + layers +
                     f"  - {{type: concat, name: cat, inputs: [{', '.join(f'i{k}' for k in range(12))}]}}\n")
    result = runner.invoke(app, ["summarize", str(spec), "--columns", "inputs,input"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " cat " in line)
    assert "i0, i1, i2, i3, i4, i5, i6, i7, ... (+4 more)" in row and "i8" not in row
    assert "[1, 2, 4] " * 7 + "[1, 2, 4] ... (+4 more)" in row
    data = json.loads(runner.invoke(app, ["summarize", str(spec), "-f", "json"]).stdout)
    assert len(data["layers"][-1]["inputs"]) == 12  # machine formats list them all


@pytest.mark.parametrize("args", [["explain", "SMALL"], ["diff", "SMALL", "--set", "conv1.stride=2"],
                                  ["sweep", "SMALL", "--batches", "1,2"], ["solve", "--in", "224", "--out", "112"],
                                  ["zoo"], ["layers"], ["verify", "SMALL"]])
def test_every_command_that_prints_can_write_to_a_file(runner, small, tmp_path, args):
    args = [small if a == "SMALL" else a for a in args]
    shown = runner.invoke(app, [*args, "-f", "json"] if args[0] != "layers" else args)
    assert shown.exit_code == 0, shown.output
    target = tmp_path / "out.txt"
    written = runner.invoke(app, [*args, "-o", str(target)])
    assert written.exit_code == 0 and written.stdout == "" and f"wrote {target}" in written.stderr
    assert target.read_text().strip() and "\x1b" not in target.read_text()


def test_an_input_array_has_its_own_option(runner, small, tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 32, 32), np.float32))
    result = runner.invoke(app, ["verify", small, "--input", str(tmp_path / "x.npy")])
    assert result.exit_code == 2 and "--input takes a shape" in result.stderr and "--input-file" in result.stderr
    result = runner.invoke(app, ["verify", small, "--input-file", str(tmp_path / "x.npy"), "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["input_shape"] == [2, 3, 32, 32]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "3,16,16").write_text("a file named like a shape")  # no longer taken for an array
    with_shape = runner.invoke(app, ["verify", small, "--input", "3,16,16", "-f", "json"])
    assert with_shape.exit_code == 0 and json.loads(with_shape.stdout)["input_shape"] == [1, 3, 16, 16]
