"""cnncalc.diff: alignment, per-layer and total differences, headline and renderers, against hand-worked
numbers.

The pair under test, input [3, 32, 32], batch 1, float32:

    A: conv1 (8, k3, s1, p1) -> relu -> maxpool2d k2 -> conv2 (16, k3, p1) -> relu -> global_avgpool -> fc (10)
    B: conv1 (8, k3, s2, p1) -> relu ->                 conv2 (16, k3, p1) -> relu -> global_avgpool -> fc (10)

MACs (conv: output elements x C_in x k*k; linear: out x in):
    A conv1  8*32*32 x 3*3*3 = 221,184      B conv1  8*16*16 x 27 = 55,296
    conv2   16*16*16 x 8*3*3 = 294,912 (both: the pool and the stride leave 16x16)
    fc      10 x 16          =     160 (both)
    A total 516,256;  B total 350,368;  delta -165,888 (-32.13 %)
Params: conv1 8*27 + 8 = 224, conv2 16*72 + 16 = 1,168, fc 16*10 + 10 = 170: 1,562 in both.
Receptive field (size, jump): A conv1 3/1, pool 3+1 = 4/2, conv2 4+2*2 = 8/2;
                              B conv1 3/2, conv2 3+2*2 = 7/2.
Peak activations (bytes alive at once, inference): A at relu_1: conv1 + relu_1 outputs = 2 x 8*32*32*4 = 65,536;
    B at relu_2: conv2 + relu_2 outputs = 2 x 16*16*16*4 = 32,768. Param bytes 1,562*4 = 6,248 in both.
"""
from __future__ import annotations

import io
import json
from fractions import Fraction

from rich.console import Console

from cnncalc.analyze import analyze
from cnncalc.diff import Comparison, FieldChange, TotalChange, align, compare
from cnncalc.diff_report import diff_json, diff_markdown, diff_renderable, headline, percent_text, summary_text
from cnncalc.spec import parse

HEAD = """input: [3, 32, 32]
layers:
"""
CONV1 = "  - {type: conv2d, name: conv1, out_channels: 8, kernel_size: 3, padding: 1%s}\n"
POOL = "  - {type: maxpool2d, kernel_size: 2}\n"
TAIL = """  - {type: conv2d, name: conv2, out_channels: 16, kernel_size: 3, padding: 1}
  - relu
  - global_avgpool
  - {type: linear, name: fc, out_features: 10}
"""
A_TEXT = HEAD + CONV1 % "" + "  - relu\n" + POOL + TAIL
B_TEXT = HEAD + CONV1 % ", stride: 2" + "  - relu\n" + TAIL


def summary(text: str, file: str = "a.yaml"):
    return analyze(parse(text, file))


def comparison(a_text: str = A_TEXT, b_text: str = B_TEXT) -> Comparison:
    return compare(summary(a_text, "a.yaml"), summary(b_text, "b.yaml"))


def names(pairs) -> list[tuple]:
    return [(p.a.name if p.a else None, p.b.name if p.b else None) for p in pairs]


def render(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(renderable)
    return out.getvalue()


# ---- alignment ---------------------------------------------------------------------------------------------

def test_align_pairs_by_name_and_shows_the_removed_pool_in_order():
    a, b = summary(A_TEXT), summary(B_TEXT, "b.yaml")
    assert names(align(a, b)) == [("conv1", "conv1"), ("relu_1", "relu_1"), ("maxpool2d_1", None),
                                  ("conv2", "conv2"), ("relu_2", "relu_2"),
                                  ("global_avgpool_1", "global_avgpool_1"), ("fc", "fc")]


def test_align_added_layer_keeps_order():
    extra = "  - {type: conv2d, name: conv1b, out_channels: 8, kernel_size: 3, padding: 1}\n"
    b_text = HEAD + CONV1 % "" + "  - relu\n" + extra + POOL + TAIL
    c = comparison(A_TEXT, b_text)
    assert names(c.pairs) == [("conv1", "conv1"), ("relu_1", "relu_1"), (None, "conv1b"),
                              ("maxpool2d_1", "maxpool2d_1"), ("conv2", "conv2"), ("relu_2", "relu_2"),
                              ("global_avgpool_1", "global_avgpool_1"), ("fc", "fc")]
    added = c.added
    assert len(added) == 1 and added[0].status == "added" and not c.removed
    # conv1b: 8*32*32 outputs x 8*3*3 = 589,824 MACs; 8*72 + 8 = 584 params, all added
    assert added[0].macs.before is None and added[0].macs.delta == 589_824
    assert added[0].params.delta == 584
    assert c.totals["macs"].delta == 589_824 and c.totals["params"].delta == 584
    assert "conv1b (conv2d) added" in headline(c)


def test_renamed_layer_is_paired_by_kind_and_reported():
    c = comparison(A_TEXT, A_TEXT.replace("name: conv2", "name: middle"))
    assert ("conv2", "middle") in names(c.pairs)
    d = next(d for d in c.differences if d.a is not None and d.a.name == "conv2")
    assert d.status == "changed" and d.changed == ("name",)
    assert d.macs.delta == 0 and not d.config
    assert "conv2 renamed to middle" in headline(c)
    assert all(t.delta == 0 for t in c.totals.values())


def test_a_different_kind_in_the_same_place_is_removed_then_added():
    avg = "  - {type: avgpool2d, kernel_size: 2}\n"
    c = comparison(A_TEXT, HEAD + CONV1 % "" + "  - relu\n" + avg + TAIL)
    assert names(c.pairs)[2:5] == [("maxpool2d_1", None), (None, "avgpool2d_1"), ("conv2", "conv2")]
    # same window, same output: nothing downstream moves, MACs unchanged (pooling has no MACs)
    assert c.totals["macs"].delta == 0
    assert [(d.status, d.changed) for d in c.changed[2:]] == [("changed", ("inputs",))]  # conv2 reads the new pool
    assert [d.status for d in c.changed[:2]] == ["removed", "added"]
    assert "inputs" not in headline(c)  # rewiring onto an added layer is part of the addition


# ---- per-layer differences ---------------------------------------------------------------------------------

def test_per_layer_differences_against_hand_worked_numbers():
    c = comparison()
    by_a = {d.a.name: d for d in c.differences if d.a is not None}
    conv1 = by_a["conv1"]
    assert conv1.status == "changed"
    assert conv1.config == (FieldChange("stride", [1, 1], [2, 2]),)
    assert conv1.output_shape.before == (1, 8, 32, 32) and conv1.output_shape.after == (1, 8, 16, 16)
    assert (conv1.macs.before, conv1.macs.after, conv1.macs.delta) == (221_184, 55_296, -165_888)
    assert conv1.params.before == conv1.params.after == 224 and not conv1.params.changed
    assert conv1.output_bytes.delta == (8 * 16 * 16 - 8 * 32 * 32) * 4
    assert conv1.receptive_field.before.jump == (1, 1) and conv1.receptive_field.after.jump == (2, 2)

    pool = by_a["maxpool2d_1"]
    assert pool.status == "removed" and pool.b is None
    assert pool.output_shape.before == (1, 8, 16, 16) and pool.output_shape.after is None
    assert pool.output_bytes.delta == -8 * 16 * 16 * 4

    relu = by_a["relu_1"]  # its own config is the same: it only follows conv1's new shape
    assert relu.status == "changed" and not relu.config and "config" not in relu.changed
    assert "output_shape" in relu.changed and relu.macs.delta == 0
    assert summary_text(relu).startswith("follows upstream")

    conv2 = by_a["conv2"]  # same shape and MACs; it reads relu_1 now (the pool is gone), its field is 8 -> 7
    assert conv2.changed == ("inputs", "receptive_field") and not conv2.config
    assert conv2.inputs.before == ("maxpool2d_1",) and conv2.inputs.after == ("relu_1",)
    assert conv2.macs.before == conv2.macs.after == 294_912
    assert conv2.receptive_field.before.size == (8, 8) and conv2.receptive_field.after.size == (7, 7)

    assert by_a["fc"].status == "same" and by_a["global_avgpool_1"].status == "same"


def test_totals_exact_percentages():
    c = comparison()
    macs = c.totals["macs"]
    assert (macs.a, macs.b, macs.delta) == (516_256, 350_368, -165_888)
    assert macs.percent == Fraction(-165_888 * 100, 516_256) == Fraction(-518400, 16133)
    assert -32.14 < float(macs.percent) < -32.13
    params = c.totals["params"]
    assert (params.a, params.b, params.delta, params.percent) == (1562, 1562, 0, 0)
    peak = c.totals["peak_inference_bytes"]
    assert (peak.a, peak.b) == (6248 + 65_536, 6248 + 32_768)
    assert peak.percent == Fraction(-32_768 * 100, 71_784)
    # activations: every layer output; A has the pool's 8*16*16*4 and a 4x larger conv1/relu_1
    act = c.totals["activation_bytes"]
    assert act.delta == -(2 * (8 * 32 * 32 - 8 * 16 * 16) * 4 + 8 * 16 * 16 * 4)
    name, rf = c.receptive_field
    assert (name.before, name.after) == ("relu_2", "relu_2")
    assert rf.before.size == (8, 8) and rf.after.size == (7, 7)
    assert not c.output_shapes.changed and c.output_shapes.before == ((1, 10),)


def test_percent_of_zero_and_formatting():
    assert TotalChange(0, 0).percent == 0
    assert TotalChange(0, 5).percent is None
    assert TotalChange(200, 150).percent == -25
    assert percent_text(Fraction(-518400, 16133)) == "-32 %"
    assert percent_text(Fraction(3, 2)) == "+1.5 %"
    assert percent_text(Fraction(7, 10**6)) == "+0.0000070 %"  # never rounds a change to 0
    assert percent_text(Fraction(0)) == "+0 %"


def test_headline_names_the_changes_and_the_computed_deltas():
    text = headline(comparison())
    assert text.startswith("b vs a: ")  # unnamed specs: their file stems
    assert "conv1 stride 1 -> 2" in text
    assert "inputs" not in text  # conv2 reading relu_1 instead of the removed pool is part of the removal
    assert "maxpool2d_1 (maxpool2d) removed" in text
    assert "-32 % MACs" in text and "+0 params" in text and "-46 % peak inference memory" in text
    assert "no differences" not in text


def test_input_change_is_in_the_headline():
    a = summary(A_TEXT)
    b = analyze(parse(A_TEXT, "a.yaml").with_input((3, 64, 64)))
    c = compare(a, b)
    text = headline(c)
    assert "input [1, 3, 32, 32] -> [1, 3, 64, 64]" in text
    # every conv output area x4, fc unchanged: (221,184 + 294,912) * 3 more MACs = +299.7 %
    assert c.totals["macs"].delta == 3 * (221_184 + 294_912)
    assert "+300 % MACs" in text


# ---- identical specs ---------------------------------------------------------------------------------------

def test_identical_specs_have_no_differences():
    c = compare(summary(A_TEXT), summary(A_TEXT))
    assert c.identical and c.changed == [] and not c.removed and not c.added
    assert all(d.status == "same" and d.changed == () for d in c.differences)
    assert all(t.delta == 0 and t.percent == 0 for t in c.totals.values())
    assert "no differences" in headline(c)
    data = json.loads(diff_json(c))
    assert data["identical"] is True
    assert all(v["delta"] == 0 for k, v in data["totals"].items() if "delta" in v)
    assert all(layer["status"] == "same" for layer in data["layers"])
    assert "no differences" in render(diff_renderable(c))
    assert "No layer differs." in diff_markdown(c)


# ---- renderers ---------------------------------------------------------------------------------------------

def test_json_schema_and_exact_values():
    data = json.loads(diff_json(comparison()))
    assert data["schema_version"] == 1 and (data["a"], data["b"]) == ("a", "b")
    assert data["headline"] == headline(comparison())
    assert data["totals"]["macs"] == {"a": 516_256, "b": 350_368, "delta": -165_888,
                                      "percent": float(Fraction(-518400, 16133))}
    assert data["totals"]["params"] == {"a": 1562, "b": 1562, "delta": 0, "percent": 0}
    assert data["totals"]["receptive_field"]["a"]["size"] == [8, 8]
    assert data["counts"] == {"aligned": 7, "changed": 4, "removed": 1, "added": 0}  # conv1, relu_1, conv2, relu_2
    conv1 = data["layers"][0]
    assert conv1["config"] == [{"field": "stride", "a": [1, 1], "b": [2, 2]}]
    assert conv1["macs"] == {"a": 221_184, "b": 55_296, "delta": -165_888}
    pool = data["layers"][2]
    assert pool["status"] == "removed" and pool["b"] is None and pool["output_shape"]["b"] is None


def test_table_shows_changed_rows_unless_all_rows():
    c = comparison()
    text = render(diff_renderable(c))
    assert "conv1 (conv2d)" in text and "maxpool2d_1 (maxpool2d)" in text and "stride 1 -> 2" in text
    assert "fc (linear)" not in text  # unchanged rows are hidden by default
    assert "-166 k" in text  # conv1's MACs delta, human units
    assert "fc (linear)" in render(diff_renderable(c, all_rows=True))
    md = diff_markdown(c)
    assert headline(c) in md and "| conv1 (conv2d) | conv1 (conv2d) |" in md and "fc (linear)" not in md
    assert "| MACs | 0.52 M | 350 k | -166 k | -32 % |" in md


def test_rewired_skip_connection_is_a_change_but_renamed_inputs_are_not():
    base = """input: [8, 8, 8]
layers:
  - {type: conv2d, name: conv1, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: conv2d, name: conv2, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: add, name: skip, inputs: [conv2, %s]}
"""
    c = comparison(base % "conv1", base % "input")
    skip = next(d for d in c.differences if d.a is not None and d.a.name == "skip")
    assert skip.rewired and skip.changed[0] == "inputs" and not skip.config
    # the widest path decides the add's receptive field: conv2's 5x5 in both
    assert skip.receptive_field.before.size == skip.receptive_field.after.size == (5, 5)
    assert "skip inputs [conv2, conv1] -> [conv2, input]" in headline(c)
    assert c.totals["macs"].delta == 0

    renamed = comparison(base % "conv1", (base % "first").replace("name: conv1", "name: first"))
    skip = next(d for d in renamed.differences if d.a is not None and d.a.name == "skip")
    assert not skip.rewired and skip.status == "same"  # reads the same (renamed) layer
