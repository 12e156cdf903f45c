"""The table people read (issue 8): at any width down to 80 no name, shape or number is split over two lines;
--depth rows are the modules' sums; repeated warnings are grouped. Expected cells come from an independent
rendering (the wide one, which the golden files pin) or from the JSON, never from the narrow layout itself."""
import json
import re

import pytest
from conftest import ROOT
from rich.cells import cell_len
from typer.testing import CliRunner

from cnncalc.analyze import ModuleRow, analyze, collapse
from cnncalc.cli import app
from cnncalc.errors import Where
from cnncalc.fit import shorten_middle, wrap_atoms
from cnncalc.layers.advice import Advice
from cnncalc.lint import Warning_, group_warnings
from cnncalc.spec import bundled_names, load

SPECS = bundled_names()
WIDTHS = (80, 100, 120)
# whole tokens that must never be split: shapes, numbers with their units, numbers
ATOM = re.compile(r"\[[\d, ]+\]|\d[\d,.]*(?: (?:[KMGT]iB|[kMGT]|B)\b)?")


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def summarize(runner, *args, columns=None, env=None):
    environment = {"COLUMNS": str(columns)} if columns else {"COLUMNS": None}
    result = runner.invoke(app, ["summarize", *args], env={**environment, **(env or {})})
    assert result.exit_code == 0, result.output
    return result.stdout


def table_rows(text):
    """The body rows of the first table: lists of stripped cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines[start:end]]


def header(text):
    """The header cells of the first table (a header may wrap over several lines)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┏")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    cells = [line.strip("┃").split("┃") for line in lines[start:end]]
    return [" ".join(part.strip() for part in column if part.strip()) for column in zip(*cells)]


def block(text, first, last):
    """The lines from the first one starting with `first` to the next starting with `last`, inclusive."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(last))
    return lines[start:end + 1]


@pytest.fixture(scope="module")
def wide(runner):
    """Each spec's table at a width where nothing needs fitting (the golden layout), and its JSON."""
    return {name: (summarize(runner, name, columns=1000),
                   json.loads(summarize(runner, name, "-f", "json")))
            for name in SPECS}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", SPECS)
def test_no_name_shape_or_number_is_split_at_any_width(runner, wide, name, width):
    text = summarize(runner, name, columns=width)
    wide_text, data = wide[name]
    assert max(cell_len(line) for line in text.splitlines()) <= width
    rows, full_rows = table_rows(text), table_rows(wide_text)
    assert len(rows) == len(full_rows) == len(data["layers"]), "one line per layer: no cell wrapped"
    shown, every = header(text), header(wide_text)
    assert {"Name", "Output shape", "Params", "MACs"} <= set(shown)
    dropped = [h for h in every if h not in shown]
    if dropped:
        assert f"Not shown at this width: {', '.join(dropped)}" in " ".join(text.split())
    for row, full, layer in zip(rows, full_rows, data["layers"]):
        cells = dict(zip(shown, row))
        assert cells == {h: c for h, c in zip(every, full) if h in shown and h != "Name"} | {"Name": cells["Name"]}
        assert cells["Output shape"] == "[" + ", ".join(map(str, layer["output_shape"])) + "]"
        name_cell = cells["Name"]
        if name_cell != layer["name"]:  # shortened from the middle: its two ends are the name's
            head, tail = name_cell.split("…")
            assert layer["name"].startswith(head) and layer["name"].endswith(tail) and len(name_cell) < len(layer["name"])
    table_width = cell_len(text.splitlines()[1])
    panel = block(text, "╭", "╰")
    assert cell_len(panel[0]) <= max(table_width, cell_len(block(wide_text, "╭", "╰")[0]) if width >= 1000 else 0)
    # every shape and number of the totals and the warnings is whole on some line
    after_table = "\n".join(text.splitlines()[len(rows):])
    wide_after = wide_text.split("└", 1)[1]
    for atom in set(ATOM.findall(wide_after)):
        assert any(atom in line for line in after_table.splitlines()), f"{atom!r} split at width {width}"


def test_the_totals_panel_is_not_wider_than_the_table_when_it_must_fit(runner):
    text = summarize(runner, "resnet18", columns=80)
    table_width, panel = cell_len(text.splitlines()[1]), block(text, "╭", "╰")
    assert all(cell_len(line) <= table_width for line in panel)
    assert "│                  parameters()) + 9,600 non-trainable" in text  # values wrap under their column


@pytest.mark.parametrize("name", SPECS)
def test_wide_terminals_keep_todays_layout_exactly(runner, name):
    """At 1000 columns nothing is fitted: the output is the golden file, byte for byte."""
    text = summarize(runner, name, "--columns", "flops,rf", columns=1000)
    assert text == (ROOT / "tests" / "golden" / f"{name}.txt").read_text()


@pytest.mark.parametrize("name", ["resnet18", "unet"])
def test_a_pipe_gets_the_whole_table_unfitted(runner, wide, name):
    text = summarize(runner, name)  # no COLUMNS, not a terminal: as wide as it needs
    assert "Not shown" not in text and "…" not in text
    assert table_rows(text) == table_rows(wide[name][0])


def test_footnote_says_what_was_dropped_and_how_to_bring_it_back(runner):
    text = " ".join(summarize(runner, "resnet18", columns=80).split())
    assert "Not shown at this width: Type, Config (--columns type,config shows them)." in text


def test_a_column_named_in_columns_is_never_dropped(runner):
    text = summarize(runner, "resnet18", "--columns", "type", columns=80)
    assert "Type" in header(text)
    assert "Not shown at this width: Config, # (--columns config,index" in " ".join(text.split())
    rows = {row[0]: row for row in table_rows(text)}
    # 'layer2.0.downsample.0' (21) is shortened from the middle to fit the room left
    assert rows["layer2.0…sample.0"][1] == "conv2d"


def test_too_many_named_columns_for_the_width_say_so(runner):
    text = summarize(runner, "resnet18", "--columns", "all", columns=80)
    assert "more than the 80 here, so some cells wrap" in " ".join(text.split())


@pytest.mark.parametrize("text, width, lines", [
    # whole shapes and number+unit pairs; greedy filling
    ("Peak 50.8 MiB = [1, 64, 56, 56] x", 16, ["Peak 50.8 MiB =", "[1, 64, 56, 56]", "x"]),
    ("a bb ccc", 4, ["a bb", "ccc"]),
    ("abcdefghij", 4, ["abcd", "efgh", "ij"]),  # a single word longer than the width is cut (nothing else can be)
    ("(11.7 M, PyTorch's", 8, ["(11.7 M,", "PyTorch's"[:8], "s"]),
])
def test_wrap_atoms(text, width, lines):
    assert wrap_atoms(text, width) == lines


@pytest.mark.parametrize("name, width, short", [
    ("layer4.1.downsample.0", 15, "layer4.…ample.0"),  # 7 + '…' + 7
    ("layer4.1.downsample.0", 8, "lay…le.0"),          # 3 + '…' + 4: the end keeps the odd character
    ("conv1", 8, "conv1"),
])
def test_shorten_middle(name, width, short):
    assert shorten_middle(name, width) == short


# ---- --depth --------------------------------------------------------------------------------------------

# ResNet-18 by hand (torchvision's BasicBlock; convs without bias; BN: weight+bias trainable, running mean+var not):
#   layer1 = 2 blocks x (2 convs 64*64*9 = 36,864 + 2 BN x 2*64)          = 2 x 73,984             = 147,968
#   layer2 = (128*64*9 + 128*128*9 + 1x1 128*64 + 3 BN x 256 = 230,144)
#            + (2 x 128*128*9 + 2 x 256 = 295,424)                                                   = 525,568
#   layer3 = (256*128*9 + 256*256*9 + 256*128 + 3 x 512 = 919,040) + (2 x 589,824 + 2 x 512)       = 2,099,712
#   layer4 = (512*256*9 + 512*512*9 + 512*256 + 3 x 1,024 = 3,673,088) + (2 x 2,359,296 + 2 x 1,024) = 8,393,728
#   conv1 = 64*3*49 = 9,408; bn1 = 128; fc = 512*1000 + 1000 = 513,000; all = 11,689,512 (torchvision's figure)
# running statistics: 2 per BN channel: layer1 4 BN x 128 = 512, layer2 5 x 256, layer3 5 x 512, layer4 5 x 1,024
# MACs of layer1: 4 convs x 64*64*9 * 56*56 = 4 x 115,605,504 = 462,422,016
RESNET18_DEPTH1 = [  # name, trainable, non-trainable, layers, output shape
    ("conv1", 9_408, 0, 1, [1, 64, 112, 112]), ("bn1", 128, 128, 1, [1, 64, 112, 112]),
    ("relu", 0, 0, 1, [1, 64, 112, 112]), ("maxpool", 0, 0, 1, [1, 64, 56, 56]),
    ("layer1", 147_968, 512, 14, [1, 64, 56, 56]), ("layer2", 525_568, 1_280, 16, [1, 128, 28, 28]),
    ("layer3", 2_099_712, 2_560, 16, [1, 256, 14, 14]), ("layer4", 8_393_728, 5_120, 16, [1, 512, 7, 7]),
    ("avgpool", 0, 0, 1, [1, 512, 1, 1]), ("flatten", 0, 0, 1, [1, 512]), ("fc", 513_000, 0, 1, [1, 1000]),
]


def test_depth_1_rows_are_the_modules_sums(runner):
    data = json.loads(summarize(runner, "resnet18", "--depth", "1", "-f", "json"))
    rows = data["layers"]
    assert data["depth"] == 1
    assert [(r["name"], r["trainable_params"], r["non_trainable_params"], r["output_shape"]) for r in rows] == \
        [(n, t, nt, shape) for n, t, nt, _, shape in RESNET18_DEPTH1]
    modules = {r["name"]: r for r in rows if r["type"] == "module"}
    assert [m["config"]["layers"] for m in modules.values()] == [14, 16, 16, 16]
    layer1 = modules["layer1"]
    assert layer1["macs"] == 462_422_016 and layer1["input_shapes"] == [[1, 64, 56, 56]]
    assert layer1["index"] == 4 and layer1["config"] == {"layers": 14, "first": "layer1.0.conv1",
                                                          "last": "layer1.1.relu2", "last_index": 17}
    assert modules["layer2"]["inputs"] == ["layer1.1.relu2"] and modules["layer2"]["input_shapes"] == [[1, 64, 56, 56]]
    assert sum(r["trainable_params"] for r in rows) == 11_689_512


def test_depth_leaves_the_totals_alone(runner):
    plain = json.loads(summarize(runner, "resnet18", "-f", "json"))
    for depth in ("1", "2", "3", "1000000000000"):
        data = json.loads(summarize(runner, "resnet18", "--depth", depth, "-f", "json"))
        assert data["totals"] == plain["totals"] and data["totals"]["trainable_params"] == 11_689_512
        assert sum(r["flops"] for r in data["layers"]) == plain["totals"]["flops"]
    deep = json.loads(summarize(runner, "resnet18", "--depth", "1000000000000", "-f", "json"))
    assert deep["layers"] == plain["layers"]  # deeper than every name: every layer as it is
    assert "depth" not in plain


def test_depth_2_shows_blocks(runner):
    rows = json.loads(summarize(runner, "resnet18", "--depth", "2", "-f", "json"))["layers"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["layer2.0"]["trainable_params"] == 230_144  # worked above
    assert by_name["layer2.1"]["trainable_params"] == 295_424
    assert len(rows) == 4 + 8 + 3


def test_depth_in_every_format(runner):
    table = summarize(runner, "resnet18", "--depth", "1", columns=1000)
    rows = {row[1]: row for row in table_rows(table)}
    assert rows["layer1"][0] == "4-17" and rows["layer1"][2] == "module" and rows["layer1"][4] == "14 layers"
    assert "Layers           69" in table  # the totals still count every layer
    markdown = summarize(runner, "resnet18", "--depth", "1", "-f", "markdown")
    assert "| 4-17 | layer1 | module | [1, 64, 56, 56] | 14 layers |" in markdown
    csv_text = summarize(runner, "resnet18", "--depth", "1", "-f", "csv")
    lines = csv_text.splitlines()
    assert len(lines) == 1 + len(RESNET18_DEPTH1)
    # its input is maxpool's output; 147,968 trainable + 512 running statistics; the MACs worked above
    assert lines[5].startswith('4,layer1,module,maxpool,"[[1, 64, 56, 56]]","[1, 64, 56, 56]",148480,147968,512,'
                               '462422016,')


def test_resnet50_depth_1_fits_on_one_screen(runner):
    text = summarize(runner, "resnet50", "--depth", "1", columns=80)
    lines = text.splitlines()
    end_of_totals = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    assert end_of_totals + 1 <= 40 and max(map(cell_len, lines)) <= 80
    assert len(table_rows(text)) == 11  # conv1 bn1 relu maxpool layer1..4 avgpool flatten fc
    assert len(summarize(runner, "resnet50", "--depth", "1", "--warnings", "none", columns=80).splitlines()) <= 40


@pytest.mark.parametrize("depth", ["0", "-1", "1000000000001"])
def test_a_bad_depth_is_one_clear_error(runner, depth):
    result = runner.invoke(app, ["summarize", "resnet18", "--depth", depth])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--depth must be a whole number from 1 to 1,000,000,000,000" in result.stderr
    assert "Use e.g. --depth 1" in result.stderr


def test_collapse_is_a_pure_function_of_the_rows():
    summary = analyze(load(ROOT / "specs" / "resnet18.yaml"))
    view = collapse(summary.rows, 1)
    assert [r.name for r in view if isinstance(r, ModuleRow)] == ["layer1", "layer2", "layer3", "layer4"]
    assert collapse(summary.rows, 4) == summary.rows  # no name is deeper than 4 (layer2.0.downsample.0)
    shortcut = {r.name: r for r in collapse(summary.rows, 3)}["layer2.0.downsample"]
    assert shortcut.params == (128 * 64 + 2 * 128, 2 * 128) and shortcut.layers == 2  # 1x1 conv + BN
    assert summary.at_depth(1).rows == summary.rows and summary.at_depth(1).shown_rows == view
    with pytest.raises(ValueError):
        collapse(summary.rows, 0)


# ---- warnings -------------------------------------------------------------------------------------------

def warning_lines(text):
    lines = text.splitlines()
    return [line for line in lines[next(i for i, line in enumerate(lines) if line.startswith("╰")) + 1:] if line]


def test_repeated_warnings_are_grouped_by_default(runner):
    lines = warning_lines(summarize(runner, "resnet18", columns=1000))
    # resnet18's 1x1 stride-2 shortcut (basic_down's line 29) in layer2, layer3 and layer4: 2 codes x 3 layers
    assert len(lines) == 2
    for line, code in zip(lines, ("strided-gaps", "lost-pixels")):
        assert line.startswith("resnet18 (bundled):29:18: 3 layers (conv2d) [in block 'basic_down']: "
                               f"layer2.0.downsample.0, layer3.0.downsample.0, layer4.0.downsample.0: warning [{code}]")
    assert "(Numbers as on layer2.0.downsample.0; --warnings all shows each.)" in lines[1]  # 56, 28, 14 differ
    assert "Numbers as on" not in lines[0]  # the same words on every layer


def test_warnings_all_and_none(runner):
    assert len(warning_lines(summarize(runner, "resnet18", "--warnings", "all", columns=1000))) == 6
    assert warning_lines(summarize(runner, "resnet18", "--warnings", "none", columns=1000)) == []
    data = json.loads(summarize(runner, "resnet18", "-f", "json"))
    assert len(data["warnings"]) == 6  # JSON lists each one, grouped or not
    assert json.loads(summarize(runner, "resnet18", "-f", "json", "--warnings", "none"))["warnings"] == []


def test_strict_still_fails_on_any_warning(runner):
    for mode in ("grouped", "none"):
        result = runner.invoke(app, ["summarize", "resnet18", "--strict", "--warnings", mode])
        assert result.exit_code == 1 and "--strict: 6 warning(s)" in result.stderr


def test_csv_and_markdown_group_too(runner):
    result = runner.invoke(app, ["summarize", "resnet18", "-f", "csv"])
    assert sum("warning [" in line for line in result.stderr.splitlines()) == 2
    markdown = summarize(runner, "resnet18", "-f", "markdown")
    assert "- `layer2.0.downsample.0`, `layer3.0.downsample.0`, `layer4.0.downsample.0` (strided-gaps, 3 layers " \
           "of block 'basic_down'): stride 2" in markdown


def test_a_bad_warnings_value_is_a_usage_error(runner):
    result = runner.invoke(app, ["summarize", "resnet18", "--warnings", "some"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_many_repeats_name_the_first_few(runner, spec_file):
    spec = spec_file("""\
input: [4, 64, 64]
blocks:
  down:
    layers:
      - {type: conv2d, name: conv, out_channels: 4, kernel_size: 1, stride: 2}
layers:
  - {block: down, name: stage, repeat: 5}
""")
    lines = warning_lines(summarize(runner, str(spec), columns=1000))
    gaps = [line for line in lines if "strided-gaps" in line]
    assert len(gaps) == 1 and "5 layers (conv2d) [in block 'down']: stage.0.conv, stage.1.conv, stage.2.conv +2 more" \
        in gaps[0]


def test_without_a_place_in_a_spec_warnings_group_by_their_generalised_names():
    def warning(layer, code="strided-gaps"):
        return Warning_(Advice(code, "m", "f"), Where(layer=layer, kind="conv2d"))
    found = [warning("layer2.0.downsample.0"), warning("layer3.0.downsample.0"), warning("layer3.0.conv1"),
             warning("layer2.0.downsample.0", "lost-pixels"), warning("layer3.1.downsample.0")]
    groups = group_warnings(found)
    # layer2.*.downsample.* and layer3.*.downsample.* are different paths: 'layer2' is a name, not a number
    assert [g.layers for g in groups] == [["layer2.0.downsample.0"], ["layer3.0.downsample.0", "layer3.1.downsample.0"],
                                          ["layer3.0.conv1"], ["layer2.0.downsample.0"]]


def test_a_wide_fan_in_lists_eight_inputs_and_counts_the_rest(runner, tmp_path):
    """A table is as wide as its widest cell in every row, so a concat of 20 inputs lists 8 and counts 12
    (JSON keeps all 20)."""
    names = [f"b{i}" for i in range(20)]
    branches = "".join(f"  - {{type: relu, name: {n}, inputs: [input]}}\n" for n in names)
    spec = tmp_path / "fan.yaml"
    concat = f"  - {{type: concat, inputs: [{', '.join(names)}]}}\n"
    spec.write_text(f"name: fan\ninput: [3, 4, 4]\nlayers:\n{branches}{concat}")
    text = summarize(runner, str(spec), "--columns", "inputs,input")
    row = next(line for line in text.splitlines() if "concat" in line)
    assert "b0, b1, b2, b3, b4, b5, b6, b7, ... (+12 more)" in row
    assert " ".join(["[1, 3, 4, 4]"] * 8) + " ... (+12 more)" in row
    assert "b8" not in row
    layers = json.loads(summarize(runner, str(spec), "-f", "json"))["layers"]
    assert layers[-1]["inputs"] == names and len(layers[-1]["input_shapes"]) == 20
