"""The spec format: wiring, blocks, aliases, and one test per class of bad input (message and line)."""
import time

import pytest

from cnncalc.analyze import analyze
from cnncalc.errors import CnnCalcError
from cnncalc.expand import MAX_LAYERS
from cnncalc.spec import parse

HEAD = "input: [3, 32, 32]\nlayers:\n"


def error_of(text: str) -> str:
    with pytest.raises(CnnCalcError) as err:
        analyze(parse(text, "net.yaml"))
    return str(err.value)


# ---- what a valid spec means ---------------------------------------------------------------------------------
def test_unnamed_layers_get_readable_unique_names_and_default_inputs():
    net = parse(HEAD + "  - {type: conv2d, out_channels: 8, kernel_size: 3}\n  - relu\n"
                       "  - {type: conv2d, out_channels: 8, kernel_size: 3}\n")
    assert [l.name for l in net.layers] == ["conv2d_1", "relu_1", "conv2d_2"]
    assert [l.inputs for l in net.layers] == [("input",), ("conv2d_1",), ("relu_1",)]
    assert net.outputs == ("conv2d_2",)


def test_branches_and_explicit_outputs():
    net = parse(HEAD + """\
  - {type: conv2d, name: a, out_channels: 8, kernel_size: 1}
  - {type: conv2d, name: b, inputs: [input], out_channels: 4, kernel_size: 1}
  - {type: concat, name: c, inputs: [a, b]}
  - {type: add, name: d, inputs: [c, c]}
outputs: [a, d]
""")
    summary = analyze(net, batch=2)
    assert summary.row("c").output_shape == (2, 12, 32, 32)
    assert summary.output_shapes() == [(2, 8, 32, 32), (2, 12, 32, 32)]


BLOCKS = """\
input: [3, 32, 32]
blocks:
  basic:
    args: {ch: null, stride: 1}
    layers:
      - {type: conv2d, name: conv1, out_channels: $ch, kernel_size: 3, stride: $stride, padding: 1, bias: false}
      - {type: batchnorm2d, name: bn1}
      - relu
      - {type: conv2d, name: conv2, out_channels: "${ch * 2}", kernel_size: 3, padding: 1}
      - {type: add, name: add, inputs: [conv2, input]}
layers:
  - {type: conv2d, name: stem, out_channels: 8, kernel_size: 3, padding: 1}
  - {block: basic, name: layer1, repeat: 2, ch: 4}
  - {block: basic, name: solo, ch: 4, inputs: [stem]}
  - {type: add, inputs: [layer1, solo]}
"""


def test_blocks_expand_with_pytorch_style_names_and_arguments():
    net = parse(BLOCKS)
    names = [l.name for l in net.layers]
    assert names[:6] == ["stem", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu_1", "layer1.0.conv2",
                         "layer1.0.add"]
    assert "layer1.1.conv2" in names and "solo.conv1" in names
    by_name = {l.name: l for l in net.layers}
    assert by_name["layer1.0.conv2"].out_channels == 8            # ${ch * 2}
    assert by_name["layer1.0.add"].inputs == ("layer1.0.conv2", "stem")  # `input` = the block's input
    assert by_name["layer1.1.conv1"].inputs == ("layer1.0.add",)   # repeats chain
    assert by_name["solo.conv1"].inputs == ("stem",)
    assert net.layers[-1].inputs == ("layer1.1.add", "solo.add")   # a block's name means its last layer


def test_repeat_on_a_plain_layer():
    net = parse(HEAD + "  - {type: conv2d, name: c, out_channels: 3, kernel_size: 3, padding: 1, repeat: 3}\n"
                       "  - {type: add, inputs: [c, c.0]}\n")
    assert [l.name for l in net.layers][:3] == ["c.0", "c.1", "c.2"]
    assert net.layers[-1].inputs == ("c.2", "c.0")


def test_keras_spellings_are_accepted():
    net = parse(HEAD + """\
  - {type: Conv2D, filters: 16, kernel_size: 3, strides: 2, padding: same, activation: relu, name: c1}
  - {type: MaxPooling2D, pool_size: 2}
  - {type: Flatten}
  - {type: Dense, units: 10, use_bias: false}
""")
    kinds = [(l.name, l.kind) for l in net.layers]
    assert kinds[:2] == [("c1", "conv2d"), ("c1_relu", "relu")]
    summary = analyze(net)
    assert summary.row("c1").output_shape == (1, 16, 16, 16)
    assert summary.rows[-1].params.total == 16 * 8 * 8 * 10


def test_location_of_errors_inside_blocks_names_the_use():
    text = BLOCKS.replace("kernel_size: 3, stride: $stride", "kernel_size: 3, strid: $stride")
    message = error_of(text)
    assert "net.yaml:6:" in message and "unknown field 'strid'" in message
    assert "Did you mean 'stride'?" in message and "in block 'basic' used at line 13" in message


# ---- bad input: one class per case, with the line of the offending node --------------------------------------
@pytest.mark.parametrize("text, line, words", [
    (HEAD + "  - {type: conv2d, out_channels: 8\n", 4, "invalid YAML"),
    (HEAD + "  - {type: conv2d, out_channels: 8, kernal_size: 3}\n", 3,
     "unknown field 'kernal_size'. Did you mean 'kernel_size'?"),
    (HEAD + "  - {type: conv2d, out_channels: 8, kernel_size: three}\n", 3, "kernel_size"),
    (HEAD + "  - {type: conv2d, out_channels: -8, kernel_size: 3}\n", 3, "greater than 0; got -8"),
    (HEAD + "  - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 0}\n", 3, "greater than 0; got 0"),
    (HEAD + "  - {type: conv2d, kernel_size: 3}\n", 3, "missing required field 'out_channels'"),
    (HEAD + "  - {type: conv2dd, out_channels: 8, kernel_size: 3}\n", 3,
     "unknown layer type 'conv2dd'. Did you mean 'conv2d'?"),
    (HEAD + "  - {type: conv2d, out_channels: 8, kernel_size: 3, inputs: [stme]}\n", 3, "unknown input 'stme'"),
    (HEAD + "  - {type: relu, name: a, inputs: [b]}\n  - {type: relu, name: b, inputs: [a]}\n", 3,
     "'b' is defined later; `inputs` may only name earlier layers (so no cycles can form)"),
    (HEAD + "  - {type: relu, name: a, inputs: [a]}\n", 3, "unknown input 'a'"),
    (HEAD + "  - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}\n"
            "  - {type: add, name: s, inputs: [a, input]}\n", 4,
     "layer 's' (add): needs inputs that broadcast (on each axis equal sizes, or 1); got [1, 8, 30, 30], "
     "[1, 3, 32, 32] from a, input: dim 1 has sizes 8 and 3"),
    (HEAD + "  - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}\n"
            "  - {type: concat, inputs: [a, input]}\n", 4, "[1, 8, 30, 30], [1, 3, 32, 32]"),
    (HEAD + "  - {type: conv2d, name: c, out_channels: 8, kernel_size: 3, groups: 2}\n", 3,
     "field 'groups': in_channels=3 is not divisible by groups=2"),
    (HEAD + "  - {type: conv2d, name: c, out_channels: 8, kernel_size: 33}\n", 3,
     "H_out = floor((32 + 2*0 - 1*(33-1) - 1) / 1) + 1 = 0"),
    (HEAD + "  - !!python/object/apply:os.system [ls]\n", 3, "unsupported YAML tag"),
    (HEAD + "  - {type: relu, name: a}\n  - {type: relu, name: a}\n", 4, "the name 'a' is used twice"),
    (HEAD + "  - {type: relu, name: 'a b'}\n", 3, "invalid name 'a b'"),
    ("input: [3, 32, 32]\nlayer:\n  - relu\n", 2, "unknown top-level key 'layer'. Did you mean 'layers'?"),
    ("input: [3, 0, 32]\nlayers: [relu]\n", 1, "`input` must be one sample's shape"),
    (HEAD + "  - {type: relu, repeat: 0}\n", 3, "`repeat` must be a positive integer"),
    (HEAD + "  - {block: basci}\n", 3, "unknown block 'basci'"),
    (BLOCKS.replace("ch: 4}", "ch: 4, chh: 2}"), 13, "block 'basic' has no argument 'chh'"),
    (BLOCKS.replace("name: solo, ch: 4", "name: solo"), 14, "block 'basic' needs argument 'ch'"),
    (BLOCKS.replace("${ch * 2}", "${ch ** 2}"), 9, "uses something other than numbers"),
    (BLOCKS.replace("${ch * 2}", "${ch * two}"), 9, "'two' is not an argument of this block"),
    (HEAD + "  - {type: conv2d, out_channels: $ch, kernel_size: 3}\n", 3, "only be used inside a block"),
    (HEAD + "  - flatten\n  - {type: linear, out_features: 10}\n  - {type: conv2d, out_channels: 1, kernel_size: 1}\n",
     5, "expects an input [N, C, H, W]; got [1, 10]. Check the spec's input shape"),
    (HEAD + "  - {type: conv2d, out_channels: 8, kernel_size: 3, filters: 8}\n", 3,
     "both 'filters' and 'out_channels' are given"),
])
def test_bad_spec_is_reported_with_file_line_and_fix(text, line, words):
    message = error_of(text)
    assert f"net.yaml:{line}:" in message
    assert words in message
    assert "Traceback" not in message


def test_all_independent_errors_are_reported_at_once():
    message = error_of(HEAD + "  - {type: conv2d, out_channels: 8, kernal_size: 3}\n"
                              "  - {type: reluu}\n"
                              "  - {type: linear, out_features: 0}\n")
    assert message.count("net.yaml:") == 3
    assert "missing required field" not in message  # a misspelt field is reported once, as unknown
    assert "net.yaml:3:" in message and "net.yaml:4:" in message and "net.yaml:5:" in message


def test_alias_bomb_is_refused_quickly():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    message = error_of("\n".join(lines) + "\ninput: [1]\nlayers: [relu]\n")
    assert "alias bomb" in message
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", [
    HEAD + "  - {type: relu, repeat: 1000000000}\n",
    "input: [4]\nblocks:\n  b1: {layers: [{type: relu, repeat: 1000}]}\n"
    "  b2: {layers: [{block: b1, repeat: 1000}]}\nlayers:\n  - {block: b2, repeat: 1000}\n",
])
def test_huge_expansions_are_refused_before_expanding(text):
    start = time.perf_counter()
    message = error_of(text)
    assert f"more than {MAX_LAYERS:,} layers" in message
    assert time.perf_counter() - start < 1.0


def test_a_block_that_uses_itself_is_refused():
    message = error_of("input: [4]\nblocks:\n  loop: {layers: [relu, {block: loop}]}\nlayers:\n  - {block: loop}\n")
    assert "nest deeper" in message


# ---- --set overrides ---------------------------------------------------------------------------------------
from cnncalc.spec import apply_overrides  # noqa: E402


def test_set_overrides_a_field_and_is_validated_like_the_spec():
    net = apply_overrides(parse(BLOCKS), ["stem.stride=2", "layer1.0.conv1.padding=same", "stem.strides=2"])
    by_name = {l.name: l for l in net.layers}
    assert by_name["stem"].stride == (2, 2) and by_name["layer1.0.conv1"].padding == "same"
    assert analyze(net).row("stem").output_shape == (1, 8, 16, 16)


@pytest.mark.parametrize("assignment, words", [
    ("stem.strid=2", "conv2d has no field 'strid'. Did you mean 'stride'?"),
    ("stme.stride=2", "no layer named 'stme'. Did you mean 'stem'?"),
    ("stem=2", "is not LAYER.FIELD=VALUE"),
    ("stem.stride=0", "greater than 0; got 0"),
    ("stem.stride=0", "value from --set stem.stride=0"),
])
def test_bad_set_is_a_clear_error(assignment, words):
    with pytest.raises(CnnCalcError) as err:
        apply_overrides(parse(BLOCKS, "net.yaml"), [assignment])
    assert words in str(err.value)


# ---- `repeat` with `start`, `$index`, real arithmetic -------------------------------------------------------
STAGE = """\
input: [16, 8, 8]
blocks:
  ir:
    args: {ch: 16, p: 0.0}
    layers:
      - {type: conv2d, name: conv, out_channels: $ch, kernel_size: 1}
      - {type: stochastic_depth, name: sd, p: $p, mode: row}
      - {type: add, name: add, inputs: [sd, input]}
layers:
  - {block: ir, name: features.6.0, ch: 16}
  - {block: ir, name: features.6, repeat: 3, start: 1, p: "${0.1 * index / 17}"}
  - {type: dropout, name: d, repeat: 2, start: 4, p: "${index / 10.0}"}
  - {type: add, inputs: [features.6, features.6.1, d, d.4]}
"""


def test_repeat_start_names_instances_from_start_and_index_is_the_instance_number():
    net = parse(STAGE)
    by_name = {l.name: l for l in net.layers}
    assert [n for n in by_name if n.endswith(".conv")] == [f"features.6.{i}.conv" for i in range(4)]
    assert by_name["features.6.1.conv"].inputs == ("features.6.0.add",)   # the stage chains on
    assert [by_name[f"features.6.{i}.sd"].p for i in range(4)] == [0.0, 0.1 / 17, 0.2 / 17, 0.1 * 3 / 17]
    assert by_name["d.4"].p == 0.4 and by_name["d.5"].p == 0.5
    # a repeated name means its last instance; each instance is also named
    assert net.layers[-1].inputs == ("features.6.3.add", "features.6.1.add", "d.5", "d.4")
    assert analyze(net).rows[-1].output_shape == (1, 16, 8, 8)


def test_index_inside_a_repeated_block_and_nested_repeats():
    net = parse("""\
input: [3, 8, 8]
blocks:
  b:
    args: {base: 4}
    layers:
      - {type: conv2d, name: c, out_channels: "${base * (index + 1)}", kernel_size: 1}
      - {type: relu, name: r, repeat: 2, start: "${index * 10}"}
      - {type: conv2d, name: k, out_channels: $index, kernel_size: 1, repeat: 2, start: 1}
layers:
  - {block: b, name: s, repeat: 2}
  - {type: conv2d, name: solo, out_channels: 2, kernel_size: 1, repeat: 1, start: 7}
  - {type: conv2d, name: once, out_channels: 2, kernel_size: 1, repeat: 1}
""")
    by_name = {l.name: l for l in net.layers}
    assert by_name["s.0.c"].out_channels == 4 and by_name["s.1.c"].out_channels == 8  # the block's index
    assert "s.0.r.0" in by_name and "s.1.r.10" in by_name and "s.1.r.11" in by_name   # start from an expression
    assert by_name["s.0.k.2"].out_channels == 2   # the innermost repeat's index
    assert "solo.7" in by_name and "once" in by_name  # `start` numbers even one instance; `repeat: 1` alone does not


def test_real_arithmetic_and_a_real_where_an_integer_is_needed():
    block = ("input: [3, 8, 8]\nblocks:\n  b:\n    args: {m: 2, r: 0.5}\n    layers:\n"
             "      - {type: conv2d, out_channels: \"${EXPR}\", kernel_size: 1}\nlayers:\n  - {block: b, name: x}\n")
    assert parse(block.replace("EXPR", "m * 4 / 2")).layers[0].out_channels == 4   # integers stay integers
    assert parse(block.replace("EXPR", "min(m * 3, 1e2)")).layers[0].out_channels == 6
    message = error_of(block.replace("EXPR", "m * r * 3"))
    assert "net.yaml:6:" in message and "field 'out_channels'" in message and "got 3.0" in message
    message = error_of(block.replace("EXPR", "m * 3 / 4"))
    assert "6 / 4 is not a whole number" in message and "use // to round down, or a real number" in message
    for expression, words in [("1e400", "too large"), ("r * 1e12 * 10", "too large"), ("m / 0.0", "division by zero"),
                              ("r ** 2", "something other than numbers"), ("1j", "something other than numbers")]:
        message = error_of(block.replace("EXPR", expression))
        assert "net.yaml:6:" in message and words in message, message


@pytest.mark.parametrize("text, line, words", [
    (HEAD + "  - {type: dropout, p: \"${index / 10.0}\"}\n", 3,
     "field 'p': `$index` is only defined inside a repeat. Add `repeat:`"),
    (HEAD + "  - {type: dropout, p: $index}\n", 3, "`$index` is only defined inside a repeat"),
    (STAGE.replace("{block: ir, name: features.6.0, ch: 16}", "{block: ir, name: features.6.0, ch: $index}"), 10,
     "field 'ch': `$index` is only defined inside a repeat"),
    (STAGE.replace("p: $p, mode", "p: \"${index / 100.0}\", mode"), 7,
     "`$index` is only defined inside a repeat"),  # features.6.0 is not repeated, so its block has no index
    (HEAD + "  - {type: relu, repeat: 2, start: -1}\n", 3, "`start` (the first instance's number) must be a whole"),
    (HEAD + "  - {type: relu, repeat: 2, start: 1.5}\n", 3, "got 1.5"),
    (HEAD + "  - {type: relu, repeat: 2, start: $s}\n", 3, "only be used inside a block"),
    ("input: [3]\nblocks:\n  b: {args: {index: 1}, layers: [relu]}\nlayers: [relu]\n", 3,
     "`index` is not an argument name"),
])
def test_bad_repeat_start_and_index_are_reported_with_file_line_and_fix(text, line, words):
    message = error_of(text)
    assert f"net.yaml:{line}:" in message
    assert words in message
    assert "Traceback" not in message


def test_start_on_slice_is_the_slice_field():
    net = parse("input: [8]\nlayers:\n  - {type: slice, name: s, dim: 1, start: 2, end: 6, repeat: 2}\n")
    assert [(l.name, l.start) for l in net.layers] == [("s.0", 2), ("s.1", 2)]


# ---- one mistake, one error -----------------------------------------------------------------------------------
def test_an_unknown_type_is_one_error_not_a_cascade():
    message = error_of(HEAD + """\
  - {type: conv2dd, name: a, out_channels: 4, kernel_size: 1}
  - {type: relu, name: b, inputs: [a]}
  - {type: conv2d, out_channels: 4, kernel_size: 1, strid: 2}
  - {type: add, name: s, inputs: [a, b, input]}
  - {type: concat, inputs: [s]}
  - {type: relu, inputs: [zzz]}
outputs: [a, s]
""")
    assert message.count("net.yaml:") == 4, message
    assert "net.yaml:3:" in message and "unknown layer type 'conv2dd'. Did you mean 'conv2d'?" in message
    assert "unknown input 'a'" not in message and "unknown input 'b'" not in message
    # the followers' own mistakes are still reported
    assert "net.yaml:5:" in message and "unknown field 'strid'" in message
    assert "net.yaml:7:" in message and "takes at least 2 input(s); got 1: ['s']" in message
    assert "net.yaml:8:" in message and "unknown input 'zzz'" in message


def test_an_unknown_type_inside_a_repeated_block_is_reported_once():
    message = error_of("""\
input: [3, 8, 8]
blocks:
  b:
    layers:
      - {type: conv2d, name: c, out_channels: 3, kernel_size: 1}
      - {type: reluu, name: r}
      - {type: add, inputs: [r, input]}
layers:
  - {block: b, name: layer1, repeat: 3, start: 1}
  - {type: add, inputs: [layer1, layer1.2, input]}
  - {type: linear, out_features: 0}
""")
    assert message.count("net.yaml:") == 2, message
    assert "net.yaml:6:" in message and "unknown layer type 'reluu'" in message and "used at line 9" in message
    assert "net.yaml:11:" in message and "greater than 0" in message


def test_a_refused_layer_still_makes_a_reused_name_an_error():
    message = error_of(HEAD + "  - {type: conv2dd, name: a}\n  - {type: relu, name: a}\n")
    assert "unknown layer type 'conv2dd'" in message and "net.yaml:4:" in message and "used twice" in message
