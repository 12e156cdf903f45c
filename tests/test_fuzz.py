"""Fuzz: mutated bundled specs, hostile option values and damaged array files, run through the CLI in-process.

Whatever goes in, cnncalc must answer with exit 0, 1 or 2 (never a traceback), print a clear message on exit 2,
keep control characters off the terminal, finish quickly and stay within bounded memory (`run` holds every case
to that). What is fuzzed:

- `test_mutated_specs`: the bundled specs with keys replaced, deleted or added at every level, values swapped
  for hostile ones (huge, negative, non-finite, text with escapes, containers where scalars belong, deep
  nesting), types changed, references (`inputs`, `outputs`, `block`, `name`) broken, `repeat` pushed, YAML
  aliases and tags, and raw text damage; through summarize (every format), explain, verify, diff and sweep.
  Half the cases stay mostly legal so that the shape rules, warnings and the engine get to work.
- `test_hostile_options`: --batch, --input, --set, --columns, --dtype, --optimizer, --seed, --max-memory, layer
  patterns, a second spec and odd file names on every spec command.
- `test_hostile_solve`: every option of `solve`.
- `test_one_layer_at_its_edges`: one layer of every kind (maybe repeated) with its fields at their edges.
- `test_hostile_array_files`: LeNet-5's weights (.npz) and input (.npy) rebuilt wrong or damaged, for verify.

The default run is small and reproducible (derandomized, no example database); deep runs:

    CNNCALC_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py                        # more examples
    CNNCALC_FUZZ_EXAMPLES=5000 CNNCALC_FUZZ_SEED=7 python -m pytest tests/test_fuzz.py   # another seed

A failure prints the command line and the spec text that broke it: save the text as spec.yaml and run the
command to reproduce it. The plain tests at the end are the minimal reproductions of what the fuzz (or reading
the code it pointed at) found, each fixed.
"""
from __future__ import annotations

import atexit
import copy
import datetime
import math
import os
import re
import resource
import shutil
import signal
import tempfile
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.errors import CnnCalcError
from cnncalc.layers import FIELD_ALIASES, KINDS, TYPE_SPELLINGS
from cnncalc.spec import bundled_dir, bundled_names, load

# ---- budget and reproducibility --------------------------------------------------------------------------

EXAMPLES = int(os.environ.get("CNNCALC_FUZZ_EXAMPLES", "0")) or None  # None: each test's small default
SEED = os.environ.get("CNNCALC_FUZZ_SEED")
CASE_SECONDS = 10.0          # a hang guard, not a speed test
ALARM_SECONDS = 20           # an in-process interrupt for a real hang (the case then fails, naming itself)
PEAK_BYTES = 300 * 2**20     # resident memory one case may add (Linux); verify runs within --max-memory 256MiB
VERIFY_PEAK_BYTES = 768 * 2**20
MEMORY_HEADROOM = 3 * 2**30  # address space a case may add before an allocation fails (Linux; a runaway guard)


def fuzz_settings(default: int):
    def decorate(test):
        test = settings(max_examples=EXAMPLES or default, deadline=None, database=None,
                        derandomize=SEED is None, print_blob=True,
                        suppress_health_check=list(HealthCheck))(test)
        return seed(int(SEED))(test) if SEED is not None else test
    return decorate


# ---- the bundled specs, parsed once --------------------------------------------------------------------

NAMES = bundled_names()
TEXTS = {name: (bundled_dir() / f"{name}.yaml").read_text() for name in NAMES}
TREES = {name: yaml.safe_load(text) for name, text in TEXTS.items()}
LAYER_FIELDS = {name: {layer.name: [f for f in type(layer).model_fields if f not in ("type", "name", "inputs")]
                       for layer in load(bundled_dir() / f"{name}.yaml").layers} for name in NAMES}
LAYER_NAMES = {name: list(fields) for name, fields in LAYER_FIELDS.items()}
# specs whose forward pass is cheap enough to run many times (with the extra options it needs to stay cheap)
VERIFIABLE = {"lenet5": [], "audio1d": [], "resnet18": ["--input", "3,32,32"], "mobilenet_v2": ["--input", "3,32,32"],
              "alexnet_original": ["--input", "3,67,67"]}

FIELDS = sorted({f for cls in KINDS.values() for f in cls.model_fields} | set(FIELD_ALIASES)
                | {"block", "repeat", "activation", "args", "layers", "blocks", "outputs", "input"})
TYPES = sorted(KINDS) + sorted(TYPE_SPELLINGS) + ["Conv2D", "MaxPooling2D", "Dense", "conv9d", "maxpool", "", "lstm"]

BIG = 10**400
DEEP: Any = 1
for _ in range(80):  # deeper than a spec may nest
    DEEP = [DEEP]
SHALLOW: Any = 1
for _ in range(20):
    SHALLOW = [SHALLOW]

HOSTILE_SCALARS: list[Any] = [
    BIG, -BIG, 2**63, 2**63 - 1, 2**64, -2**63, 10**12, 10**12 + 1, 10**13, 10**9, 65536, 4097, 1000, 100,
    17, 7, 3, 2, 1, 0, -1, -2,
    math.inf, -math.inf, math.nan, 1e300, -1e300, 1e-300, 5e-324, -0.0, 0.0, 0.5, 1.0, 2.0, 1.5, 3.0, 1e12, 1e13,
    True, False, None,
    "", " ", "\x1b[31mred\x1b[0m", "a\nb", "tab\there", "nul\x00", "\u202eevil", "zero\u200bwidth", "²", "1²",
    "٣", "1_000", "0x10", "1e3", "inf", "nan", "-1", "3", "same", "valid", "SAME", "full", "none", "tanh",
    "nearest", "bilinear", "linear", "input", "conv1", "fc", "layer1", "layer1.0", "..", ".", "a.", ".a",
    "$mid", "$nope", "${mid * 4}", "${1 +}", "${10**400}", "${" + "+".join(["1"] * 5000) + "}",
    "${" + "-" * 3000 + "1}", "${min()}", "${1 / 0}", "${9999999 * 9999999}", "$", "${}", "x" * 10_000,
    datetime.date(2001, 12, 14), b"\x00\xffbytes",
]
HOSTILE_CONTAINERS: list[Any] = [
    [], {}, [1], [0], [-1], [1, 2], [1, 2, 3], [3, 3], [1, 1, 1, 1, 1], [[1, 2], [3, 4]], [[1]], [BIG, BIG],
    [True, "2"], [None], [None, 3], [math.nan], [1.0, 2.0], [-1, 4], ["a", "b"], ["input"], [["input"]],
    [{"a": 1}], {"a": 1}, {"type": "relu"}, {1: 2}, {None: None}, SHALLOW, DEEP, list(range(10_000)),
    [2] * 5, ["same"], [[0, 0]] * 3,
]
HOSTILE_KEYS: list[Any] = FIELDS + ["", " type", "TYPE", "\x1b[2J", "<<", "name\n", 1, 0, None, True, 1.5, "$x"]

# YAML text that safe_dump would never write: tags, timestamps, aliases, merge keys, odd number syntax.
# It is put in as a placeholder scalar and replaced in the dumped text.
RAW_VALUES = [
    "!!set {a: null}", "!!binary aGVsbG8=", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "!!omap [{a: 1}]",
    "!!pairs [{a: 1}]", "*nope", "!!python/object/apply:os.system ['true']", "!!float 1", "!!str 3", "!!int '3'",
    "0x1F", "0o17", "0b101", "1:30", "190:20:30", "1_000", ".NaN", "-.inf", "!custom 1", "'\\x1b'", '"\\x1b[31m"',
    '"\\e[2J"', '"\\u202e"', "~", "yes", "on", "[*nope]", "&a [1, *a]", "{<<: 5}", "{<<: [1]}", "{<<: {a: 1}}",
    "{? [a]: 1}", "{[1]: 2}", "!!null ''", "=", "!!timestamp 2001-12-14", "1" + "0" * 5000, "-" + "9" * 4400,
]
RAW_KEYS = ["<<", "? [a, b]", "? {a: 1}", "!!binary aGk=", "&k type", "*nope", "2001-01-01", "1:30", "~"]


class Raw:
    """A piece of YAML text to put in the dumped spec as it is."""

    def __init__(self, text: str):
        self.text = text


def hostile_values() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(HOSTILE_SCALARS),
        st.sampled_from(HOSTILE_CONTAINERS).map(copy.deepcopy),
        st.sampled_from(RAW_VALUES).map(Raw),
        st.integers(min_value=-10**20, max_value=10**20),
        st.integers(min_value=-3, max_value=70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.lists(st.integers(min_value=-2, max_value=40), max_size=5),
    )


# ---- running one case -------------------------------------------------------------------------------------

# what must never reach a terminal: C0/C1 controls except newline and tab, and the invisible format characters
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"still running after {ALARM_SECONDS} s")


@contextmanager
def _guards():
    """An alarm against hangs, and an address-space cap against runaway allocations (where the OS allows it)."""
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM_SECONDS)
    old_limit = None
    try:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = pages * resource.getpagesize() + MEMORY_HEADROOM
            if soft == resource.RLIM_INFINITY or soft > cap:
                capped = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
                resource.setrlimit(resource.RLIMIT_AS, (capped, hard))
                old_limit = (soft, hard)
        except (OSError, ValueError):
            pass
        yield
    finally:
        if old_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, old_limit)
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)


def _resident_peak_reset() -> bool:
    """Reset the process's resident-memory high-water mark (Linux), so one case's peak can be read after it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _resident(key: str) -> int:
    match = re.search(key + r":\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


def run(args: list[str], spec_text: str | None = None):
    """Run the CLI in-process and hold it to the rules; returns the result for further checks."""
    shown_spec = "" if spec_text is None else "\n--- spec ---\n" + (spec_text if len(spec_text) < 6000 else
                                                                     spec_text[:6000] + "\n[... cut ...]")
    command = "cnncalc " + " ".join(repr(a) if re.search(r"[^\w.,=/:-]", a) else a for a in args)
    measured = _resident_peak_reset()
    before = _resident("VmRSS") if measured else 0
    start = time.perf_counter()
    with _guards():
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    elapsed = time.perf_counter() - start
    growth = _resident("VmHWM") - before if measured else 0
    context = f"{command}\nexit {result.exit_code} in {elapsed:.2f} s\n--- stderr ---\n{result.stderr[-3000:]}" \
              f"{shown_spec}"
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), \
        f"{type(exc).__name__}: {str(exc)[:500]} escaped\n{context}\n" + "".join(
            traceback.format_exception(exc)[-12:])
    assert result.exit_code in (0, 1, 2), context
    assert "Traceback (most recent call last)" not in result.stdout + result.stderr, context
    if result.exit_code == 2:
        assert result.stderr.strip(), f"exit 2 with nothing on stderr\n{context}"
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        bad = _RAW_CONTROL.search(text)
        assert bad is None, f"raw control character {bad.group()!r} on {stream}\n{context}"
    assert elapsed < CASE_SECONDS, f"took {elapsed:.1f} s\n{context}"
    most = VERIFY_PEAK_BYTES if args[0] == "verify" else PEAK_BYTES
    assert growth < most, f"resident memory grew by {growth / 2**20:.0f} MiB\n{context}"
    return result


# ---- spec mutation ----------------------------------------------------------------------------------------

def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in the tree, parents before children."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                out.append((node, key))
                stack.append(value)
        elif isinstance(node, list) and len(node) < 1000:
            for index, value in enumerate(node):
                out.append((node, index))
                stack.append(value)
    return out


def _containers(tree: Any, kind: type) -> list[Any]:
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            found.append(node)
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list) and len(node) < 1000:
            stack.extend(node)
    return found


def _layer_dicts(tree: Any) -> list[dict]:
    """Layer entries and block uses (mappings in a `layers` list)."""
    return [d for d in _containers(tree, dict) if "type" in d or "block" in d]


def _edge_values(current: Any, gentle: bool) -> st.SearchStrategy:
    """Values near the edge of what a field accepts: the current number moved, sizes around the input's, and
    the shapes fields take (one per axis, [before, after] pairs), so that shape rules, explain and the
    warnings get to work on legal but extreme configurations. Gentle values are mostly small and legal."""
    numbers = [0, 1, 2, 3, 4, 5, 7, 8, 13, 31, 64] if gentle else \
        [0, 1, 2, 3, 4, 7, 8, 13, 31, 64, 224, 225, 1000, 4096, 10**6, 10**9, 10**12]
    if type(current) is int and not gentle:
        numbers += [current + 1, current - 1, current * 2, current * 1000, -current, current // 2]
    elif type(current) is int:
        numbers += [max(current - 1, 1), current + 1, current * 2]
    one = st.sampled_from(numbers)
    same_length = st.lists(one, min_size=len(current), max_size=len(current)) if isinstance(current, list) \
        and 0 < len(current) <= 4 else one
    return st.one_of(
        one, one, same_length, st.lists(one, min_size=1, max_size=4),
        st.lists(st.lists(one, min_size=2, max_size=2), min_size=1, max_size=3),
        st.sampled_from(["same", "valid", True, False, None, 0.5, 2.0, 1e-6, 1e12, [None, 3], [3, None], "tanh",
                         "nearest", "bilinear", -1]))


def _like(current: Any) -> st.SearchStrategy:
    """A small, mostly legal value of the same kind as `current` (the gentle mutations)."""
    if isinstance(current, bool):
        return st.booleans()
    if isinstance(current, int):
        return st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 13, 31, 64, max(current - 1, 1), current + 1, current * 2])
    if isinstance(current, float):
        return st.sampled_from([0.0, 1e-5, 0.1, 0.5, 0.99, 1.0, 2.0, 3.5])
    if isinstance(current, list) and current and len(current) <= 4:
        return st.tuples(*(_like(v) for v in current)).map(list)
    if isinstance(current, str) and not current.startswith("$"):
        return st.sampled_from(["same", "valid", current])
    return _edge_values(current, gentle=True)


MUTATIONS = ["field"] * 8 + ["input"] * 2 + ["type"] * 2 + ["reference"] * 2 + ["replace"] * 2 + [
    "delete", "add", "repeat", "share", "swap"]
GENTLE_MUTATIONS = ["field"] * 8 + ["input", "type", "reference", "repeat", "swap"]


@st.composite
def mutated_specs(draw) -> tuple[str, str, bytes]:
    """(base spec name, spec text for the report, file bytes) of one mutated bundled spec."""
    base = draw(st.sampled_from(NAMES), label="base")
    tree = copy.deepcopy(TREES[base])
    raws: dict[str, Raw] = {}

    def value() -> Any:
        v = draw(hostile_values())
        if isinstance(v, Raw):
            key = f"__raw{len(raws)}__"
            raws[key] = v
            return key
        return v

    def key() -> Any:
        if draw(st.integers(0, 9)) == 0:
            k = f"__raw{len(raws)}__"
            raws[k] = Raw(draw(st.sampled_from(RAW_KEYS)))
            return k
        return draw(st.sampled_from(HOSTILE_KEYS))

    gentle = draw(st.booleans(), label="gentle")  # half the cases stay mostly legal, to reach the rules
    for _ in range(draw(st.integers(1, 2 if gentle else 4), label="mutations")):
        op = draw(st.sampled_from(GENTLE_MUTATIONS if gentle else MUTATIONS), label="op")
        slots = _slots(tree)
        layers = _layer_dicts(tree)
        if op == "field" and layers:
            layer = draw(st.sampled_from(layers))
            kind = KINDS.get(str(layer.get("type")).lower())
            fields = [k for k in layer if k not in ("type", "name", "inputs", "block")]
            fields += [f for f in (kind.model_fields if kind else ()) if f not in ("type", "name", "inputs")]
            present = [f for f in fields if f in layer]
            if gentle and present and draw(st.integers(0, 3)):
                field = draw(st.sampled_from(present))
                layer[field] = draw(_like(layer[field]))
            elif fields:
                field = draw(st.sampled_from(fields))
                default = kind.model_fields[field].default if kind and field in kind.model_fields else None
                if gentle and default is not None and type(default) in (bool, int, float, str, tuple):
                    layer[field] = draw(_like(list(default) if isinstance(default, tuple) else default))
                else:
                    layer[field] = draw(_edge_values(layer.get(field), gentle)) if gentle or draw(st.integers(0, 3)) \
                        else value()
        elif op == "input" and isinstance(tree, dict):
            if gentle and isinstance(tree.get("input"), list):
                sizes = st.sampled_from([1, 2, 3, 5, 7, 16, 32, 64, 100, 224])
                tree["input"] = draw(st.lists(sizes, min_size=len(tree["input"]), max_size=len(tree["input"])))
            else:
                sizes = st.sampled_from([1, 2, 3, 7, 16, 32, 224, 10**4, 10**6, 10**12, 10**12 + 1, 0, -1])
                tree["input"] = draw(st.lists(sizes, min_size=1, max_size=5)) if draw(st.integers(0, 3)) else value()
        elif op in ("replace", "delete", "share") and slots:
            container, k = draw(st.sampled_from(slots))
            if op == "delete":
                del container[k]
            elif op == "share":  # one object in two places: safe_dump writes an anchor and an alias
                other, other_key = draw(st.sampled_from(slots))
                shared = copy.deepcopy(other[other_key])  # a copy: sharing an ancestor would make a cycle
                other[other_key] = container[k] = shared
            else:
                container[k] = value()
        elif op == "add":
            dicts, lists = _containers(tree, dict), _containers(tree, list)
            if lists and draw(st.booleans()):
                target = draw(st.sampled_from(lists))
                item = copy.deepcopy(draw(st.sampled_from(target))) if target and draw(st.booleans()) else value()
                target.insert(draw(st.integers(0, len(target))), item)
            elif dicts:
                draw(st.sampled_from(dicts))[key()] = value()
        elif op == "type" and layers:
            layer = draw(st.sampled_from(layers))
            layer["type"] = draw(st.sampled_from(TYPES)) if gentle or draw(st.integers(0, 3)) else value()
        elif op == "reference" and layers:
            layer = draw(st.sampled_from(layers))
            names = [d.get("name") for d in layers if isinstance(d.get("name"), str)] or ["x"]
            field = draw(st.sampled_from(["inputs", "inputs", "name", "block", "outputs"]))
            ref = draw(st.sampled_from(names + ["input", "nope", "", "input.x", "layer1.0", "features.0"]))
            choice = draw(st.sampled_from(["plain", "list", "two"] if gentle else
                                          ["plain", "list", "list", "nested", "dict", "two", "hostile"]))
            new = {"plain": ref, "list": [ref], "nested": [[ref]], "dict": [{ref: 1}], "two": [ref, ref],
                   "hostile": None}[choice]
            if choice == "hostile":
                new = value()
            (tree if field == "outputs" and isinstance(tree, dict) else layer)[field] = new
        elif op == "repeat" and layers:
            layer = draw(st.sampled_from(layers))
            layer["repeat"] = draw(st.sampled_from([2, 3] if gentle else [2, 3, 0, -1, 10**4, 10**5, 10**9, BIG, 2.0,
                                                                          True, "2", None, [2]]))
        elif op == "swap" and len(layers) > 1:
            a, b = draw(st.sampled_from(layers)), draw(st.sampled_from(layers))
            a_copy = dict(a)
            a.clear(), a.update(b)
            b.clear(), b.update(a_copy)
    try:
        text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=draw(st.booleans()), width=100)
    except (yaml.YAMLError, RecursionError):
        text = TEXTS[base]
    for placeholder, raw in raws.items():
        text = text.replace(placeholder, raw.text)
    # raw text mutations, now and then
    data = text.encode("utf-8")
    for _ in range(0 if gentle else draw(st.sampled_from([0, 0, 1, 2]))):
        op = draw(st.sampled_from(["truncate", "flip", "duplicate", "drop", "indent", "insert"]))
        lines = data.split(b"\n")
        if op == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.sampled_from(b":[]{}-&*!%#|>'\"\t\\ \x00\x1b\xff\xc3,?@`0"))]) \
                + data[at + 1:]
        elif op == "duplicate":
            at = draw(st.integers(0, len(lines) - 1))
            lines.insert(at, lines[at])
            data = b"\n".join(lines)
        elif op == "drop":
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif op == "indent":
            at = draw(st.integers(0, len(lines) - 1))
            lines[at] = b"  " + lines[at]
            data = b"\n".join(lines)
        elif op == "insert":
            at = draw(st.integers(0, len(lines)))
            lines.insert(at, draw(st.sampled_from(RAW_VALUES + RAW_KEYS)).encode() + b": 1")
            data = b"\n".join(lines)
    return base, data.decode("utf-8", "backslashreplace"), data


_WORK = Path(tempfile.mkdtemp(prefix="cnncalc-fuzz-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)


def _write(data: bytes, name: str = "spec.yaml") -> str:
    path = _WORK / name
    path.write_bytes(data)
    return str(path)


def _bundled(name: str) -> str:
    return str(bundled_dir() / f"{name}.yaml")


@fuzz_settings(default=60)
@given(case=mutated_specs(), data=st.data())
def test_mutated_specs(case, data):
    base, text, raw = case
    path = _write(raw)
    fmt = data.draw(st.sampled_from(["table", "json", "markdown", "csv"]), label="format")
    extra = data.draw(st.sampled_from([[], [], ["--columns", "all"], ["--strict"], ["--batch", "3"]]), label="extra")
    first = run(["summarize", path, "-f", fmt, *extra], text)
    second = data.draw(st.sampled_from(["explain", "verify", "diff", "diff-reversed", "sweep"]), label="second")
    if first.exit_code != 2 and base in VERIFIABLE:  # a spec that loads: always also run it
        second = "verify"
    if second == "explain":
        fmt = data.draw(st.sampled_from(["table", "json", "markdown"]), label="explain format")
        names = data.draw(st.sampled_from([[], [], ["*"], ["nope"], LAYER_NAMES[base][:1]]), label="layers")
        run(["explain", path, *names, "-f", fmt], text)
    elif second == "verify" and base in VERIFIABLE:
        run(["verify", path, "--max-memory", "256MiB", *VERIFIABLE[base]], text)
    elif second.startswith("diff"):
        pair = [path, _bundled(base)]
        run(["diff", *(pair if second == "diff" else pair[::-1]), "-f",
             data.draw(st.sampled_from(["table", "json", "markdown"]), label="diff format")], text)
    elif second == "sweep":
        run(["sweep", path, "--batches", "1,4", *data.draw(st.sampled_from([[], ["-i", "3,64,64"]]), label="sweep")],
            text)


# ---- option fuzzing -------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", " ", "0", "1", "2", "-1", "-0", "+5", "3", "64", "1" + "0" * 400, "1" + "0" * 20, "9" * 13, "9" * 12,
    str(2**63), str(2**64), "1²", "²", "٣", "١٢", "1_0", "0x10", "1e3", "1.5", "nan", "inf", "-inf", "None",
    "true", "abc", "\x1b[31m", "a\nb", "\u202e", "x" * 20_000, ",", ",,", "3,,3", "3,224,224", "3x224x224",
    "1,2,3,4,5", "0,0,0", "3,0,224", "3,-1,5", "3, 224, 224", "3,1e12,1e12", "3,1000000000000,1000000000000",
    "1,1,1", "10000", "1..7", "7..1", "1..1000000000", "1..", "..", "a..b", "1...3", "3,5,7", "0..0",
    "-3..3", "1..1" + "0" * 400, "0", "1GiB", "256MiB", "1KiB", "0B", "-1MiB", "1" + "0" * 400 + "GiB", "1.5GiB",
    "1e400", "10TiB", "1 GiB", "GiB", "1gb", "1e3MiB", "nanGiB", "infGiB",
]
SET_VALUES = [
    "2", "0", "-1", "1" + "0" * 400, "1e300", ".inf", ".nan", "-0.0", "true", "null", "", "[1, 2]", "[[1]]",
    "{a: 1}", "same", "valid", "'\\x1b[31m'", '"\\x1b[2J"', "²", "[", "{", "*a", "&a [*a]", "!!binary AAAA",
    "!!python/object/apply:os.system ['true']", "2001-12-14", "1:30", "0x10", "- 1\n- 2",
    "{a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], "
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]}",
    "[" * 200 + "]" * 200, "x" * 20_000, "3", "7", "100000", "[3, 1]", "[[0, 1], [1, 0]]", "nearest", "tanh",
    "1e12", "1000000000000", "1000000000001", "2.5", "'2'", "2 # \u202e\u200b", "2 #\x1b[31m", "'\u202e'",
]


# Fan-in was once a blow-up: a Rich table pads every row to its widest cell, and a layer's input-shapes cell was
# as wide as all its inputs, so a 15 KB spec, a concat of 5,000 inputs followed by 4,990 more layers,
#     input: [3, 8, 8]
#     layers: [{type: relu, name: r}, {type: concat, inputs: [r, r, ... 5,000 times]}, {type: relu, repeat: 4990}]
# made `summarize SPEC --columns input` print 150 MB. A cell now lists formats.MAX_LISTED items and counts the
# rest (1 MB for that spec). The fuzz never builds such fan-in (mutations add one list entry at a time).
def option_values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.integers(-10**15, 10**15).map(str),
                     st.text(alphabet="0123456789,.x-e+ ", max_size=12), st.text(max_size=8))


@st.composite
def set_options(draw, base: str) -> list[str]:
    names = LAYER_NAMES[base]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)):  # mostly a real layer's real field
            layer = draw(st.sampled_from(names))
            field = draw(st.sampled_from(LAYER_FIELDS[base][layer]))
        else:
            layer = draw(st.sampled_from(names + ["nope", "", "input", "\x1b[31m", "a.b.c"]))
            field = draw(st.sampled_from(FIELDS + ["type", "name", "inputs", "", "nope", "\x1b"]))
        value = draw(st.one_of(st.sampled_from(SET_VALUES), st.sampled_from(HOSTILE_TEXT)))
        form = draw(st.sampled_from([f"{layer}.{field}={value}"] * 6 + [
            f"{layer}{field}={value}", f"{layer}.{field}", f"={value}", f"{layer}.{field}=={value}"]))
        out.append(f"--set={form}")
    return out


@fuzz_settings(default=50)
@given(data=st.data())
def test_hostile_options(data):
    base = data.draw(st.sampled_from(NAMES), label="spec")
    command = data.draw(st.sampled_from(["summarize", "explain", "verify", "diff", "sweep"]), label="command")
    path = _bundled(base)
    if data.draw(st.integers(0, 4), label="odd file name") == 0:  # a file name is echoed in messages and labels
        odd = _WORK / data.draw(st.sampled_from(["x\x1b[31m.yaml", "\u202eevil.yaml", "a b\n.yaml", "é²٣.yaml"]))
        odd.write_text(TEXTS[base])
        path = str(odd)
    args = [command, path]
    if command == "verify":  # small and fast: a cheap spec, and a bigger --max-memory only for the smallest
        usual = data.draw(st.sampled_from([True, True, True, False]), label="usual max-memory")
        base = data.draw(st.sampled_from(sorted(VERIFIABLE)), label="verify spec") if usual else "lenet5"
        args = [command, _bundled(base), *VERIFIABLE[base],
                "--max-memory=" + ("256MiB" if usual else data.draw(option_values(), label="max-memory"))]
    options = {
        "summarize": ["--batch", "--input", "--set", "--columns", "--dtype", "--optimizer", "--format", "--strict"],
        "explain": ["--batch", "--input", "--set", "--dtype", "--format", "LAYER"],
        "verify": ["--batch", "--input", "--set", "--seed", "--dtype", "--format", "--strict"],
        "diff": ["--batch", "--input", "--set", "--set-a", "--dtype", "--format", "--all", "B"],
        "sweep": ["--batches", "--input", "--set", "--dtype", "--optimizer", "--format"],
    }[command]
    chosen = data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=4, unique=True), label="options")
    if command == "diff" and "--set" not in chosen and "B" not in chosen:
        chosen.append("--set")
    for option in chosen:
        if option in ("--set", "--set-a"):
            sets = data.draw(set_options(base), label=option)
            args += [s.replace("--set", option, 1) for s in sets]
        elif option in ("--strict", "--all"):
            args.append(option)
        elif option == "LAYER":
            layer_args = data.draw(st.lists(st.one_of(st.sampled_from(LAYER_NAMES[base]), option_values()),
                                            max_size=3), label="layers")
        elif option == "B":
            args.insert(2, data.draw(st.sampled_from([*(_bundled(n) for n in NAMES), "nope", "", "\x1b[31m",
                                                      str(_WORK), "/dev/null"]), label="B"))
        else:
            plausible = {"--format": ["table", "json", "markdown", "csv"], "--dtype": ["float32", "float64",
                         "float16", "bfloat16", "int8", "complex128", "object"], "--optimizer": ["sgd", "momentum",
                         "adam", "lbfgs"], "--columns": ["all", "rf", "inputs,input,trainable,flops,memory,rf",
                         "rf,rf", ",", "all,nope"], "--input": ["3,64,64", "1,28,28", "3,32,32", "64", "3,16,16,16"],
                         "--batch": ["1", "2", "8", "1,8"], "--seed": ["0", "1", str(2**64 - 1), str(2**64)]}
            usual = data.draw(st.sampled_from([True, True, True, False]), label=f"usual {option}")
            value = data.draw(st.sampled_from(plausible.get(option, ["1"])) if usual else option_values(), label=option)
            if command == "verify" and option == "--batch" and re.fullmatch("[0-9]+", value) and int(value) > 8:
                value = "8"  # a bigger batch may pass the memory guard and still run for seconds
            args.append(f"{option}={value}")  # one argument, so that a value like '-1' is not read as an option
    if "LAYER" in chosen:
        args += ["--", *layer_args]
    run(args)


@fuzz_settings(default=40)
@given(data=st.data())
def test_hostile_solve(data):
    args = ["solve"]
    for option, plausible in (("--in", ["224", "32", "7", "1", "1000", "4096", "1000000", "999999999999"]),
                              ("--out", ["112", "7", "1", "224", "448", "2", "1000000"]),
                              ("--kind", ["conv", "conv_transpose", "pool", "deconv"]),
                              ("--kernel", ["3", "1..7", "3,5,7", "1..1024", "1000", "2,4"]),
                              ("--stride", ["1", "2", "1..4", "1..1024", "64"]),
                              ("--dilation", ["1", "1..3", "1..100", "7"]),
                              ("--layers", ["1", "2", "3", "5", "10", "100", "101"]),
                              ("--limit", ["10", "1", "3", "1000", "100000", "999999999999"]),
                              ("--max-padding", ["3", "0", "10", "1000000"]),
                              ("--format", ["table", "json", "markdown", "csv"])):
        required = option in ("--in", "--out")
        if required or data.draw(st.booleans(), label=f"use {option}"):
            for _ in range(data.draw(st.integers(1, 2), label=f"times {option}") if option in
                           ("--kernel", "--stride", "--dilation") else 1):
                usual = data.draw(st.sampled_from([True, True, False]), label=f"usual {option}")
                value = data.draw(st.sampled_from(plausible) if usual else option_values(), label=option)
                args.append(f"{option}={value}")
    run(args)


# ---- one layer at the edge of its fields --------------------------------------------------------------------

EDGE_INTS = [1, 1, 2, 3, 4, 5, 7, 8, 16, 33, 100, 1000, 10**6, 10**9, 10**12, 0, -1, 10**12 + 1]
EDGE_REALS = [0.0, 1e-300, 1e-12, 1e-5, 0.1, 0.5, 0.999, 1.0, 1.5, 2.0, 3.0, 100.0, 1e6, 1e12, 1e13, -0.0, -1.0,
              math.inf, math.nan]


def _rank_of(kind: str) -> int | None:
    """Sample rank a kind wants (channels + spatial axes), None when any will do."""
    found = re.search(r"([123])d$", kind)
    return int(found.group(1)) + 1 if found else None


@st.composite
def one_layer_specs(draw) -> tuple[str, bytes]:
    """A spec of one layer of any kind (sometimes repeated, sometimes with a second after it), its fields pushed
    to their edges: sizes, strides and paddings from 1 to 10^12, one per axis or pairs, reals from 1e-300 to inf."""
    kind = draw(st.sampled_from(sorted(KINDS)), label="kind")
    cls = KINDS[kind]
    rank = _rank_of(kind) or draw(st.integers(1, 4), label="rank")
    sizes = st.sampled_from([1, 2, 3, 5, 8, 16, 33, 64, 10**3, 10**6, 10**12])
    shape = [draw(st.sampled_from([1, 2, 3, 4, 8, 64, 10**3, 10**6]))] + [draw(sizes) for _ in range(rank - 1)]
    ints = st.sampled_from(EDGE_INTS)
    fields: dict[str, Any] = {"type": kind}
    for name, info in cls.model_fields.items():
        if name in ("type", "name", "inputs", "trainable"):
            continue
        if not info.is_required() and not draw(st.booleans(), label=f"set {name}"):
            continue
        default = info.default
        if isinstance(default, bool) or "bool" in str(info.annotation) and not isinstance(default, (int, float)):
            value: Any = draw(st.booleans())
        elif isinstance(default, float) or name in ("eps", "momentum", "p", "scale_factor", "negative_slope",
                                                     "alpha", "beta", "k"):
            value = draw(st.one_of(st.sampled_from(EDGE_REALS), st.lists(st.sampled_from(EDGE_REALS), min_size=1,
                                                                          max_size=3)))
        elif name in ("mode", "approximate"):
            value = draw(st.sampled_from(["nearest", "linear", "bilinear", "trilinear", "none", "tanh"]))
        else:
            per_axis = st.lists(ints, min_size=max(rank - 1, 1), max_size=max(rank - 1, 1))
            pairs = st.lists(st.lists(ints, min_size=2, max_size=2), min_size=max(rank - 1, 1),
                             max_size=max(rank - 1, 1))
            value = draw(st.one_of(ints, ints, per_axis, pairs, st.sampled_from(["same", "valid", None, -1, [-1, 3]]),
                                   st.lists(ints, min_size=1, max_size=4)))
        fields[name] = value
    if cls.arity[0] > 1 or draw(st.integers(0, 5)) == 0:
        fields["inputs"] = ["input"] * draw(st.integers(1, 3))
    fields["repeat"] = draw(st.sampled_from([1, 1, 1, 2, 3, 40]), label="repeat")  # extremes compound
    layers = [fields]
    if draw(st.booleans(), label="second layer"):
        layers.append(draw(st.sampled_from([{"type": "flatten"}, {"type": "linear", "out_features": 3},
                                            {"type": "conv2d", "out_channels": 2, "kernel_size": 3},
                                            {"type": "global_avgpool"}, {"type": "relu"},
                                            {"type": "maxpool2d", "kernel_size": 2, "ceil_mode": True}])))
    text = yaml.safe_dump({"input": shape, "layers": layers}, sort_keys=False)
    return text, text.encode()


@fuzz_settings(default=40)
@given(case=one_layer_specs())
def test_one_layer_at_its_edges(case):
    import json
    text, data = case
    path = _write(data, "layer.yaml")
    result = run(["summarize", path, "-f", "json"], text)
    run(["explain", path], text)
    if result.exit_code == 0 and json.loads(result.stdout)["totals"]["flops"] < 10**8:  # cheap enough to run
        run(["verify", path, "--max-memory", "256MiB", "--batch", "2"], text)


# ---- weights and input files ----------------------------------------------------------------------------

def _npy_bytes(array: Any) -> bytes:
    import io

    import numpy as np
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _lenet_weights() -> dict[str, Any]:
    from cnncalc import engine
    network = load(_bundled("lenet5"))
    return dict(engine.init_weights(network, seed=0, dtype="float32"))


@st.composite
def array_files(draw) -> tuple[str, bytes]:
    """('--weights' or '--input', file bytes): LeNet-5's weights or input, rebuilt wrong or damaged."""
    import io
    import zipfile

    import numpy as np
    option = draw(st.sampled_from(["--weights", "--input"]), label="option")
    odd_arrays = [np.zeros((1, 1, 32, 32), np.complex64), np.array([None, 1], dtype=object), np.zeros(0),
                  np.float32(1.0), np.zeros((1, 1, 32, 32), ">f4"), np.zeros((1, 1, 32, 32), np.float16),
                  np.zeros((1, 1, 32, 32), np.int64), np.zeros((1, 1, 32, 32), bool), np.asfortranarray(
                      np.zeros((1, 1, 32, 32), np.float32)), np.zeros((1, 1, 32, 32), "V4"),
                  np.zeros((2, 1, 32, 32), [("a", "f4")]), np.array(["a"]), np.zeros((1, 1, 32, 32), "M8[s]"),
                  np.full((1, 1, 32, 32), np.nan, np.float32), np.full((1, 1, 32, 32), np.inf, np.float64),
                  np.zeros((1,) * 33), np.zeros((3, 1, 32, 32), np.float32), np.zeros((1, 32, 32), np.float32)]
    if option == "--input":
        data = _npy_bytes(draw(st.sampled_from(odd_arrays)) if draw(st.integers(0, 2)) == 0 else
                          np.zeros((draw(st.sampled_from([1, 2])), 1, 32, 32), np.float32))
    else:
        weights = _lenet_weights()
        names = sorted(weights)
        for _ in range(draw(st.integers(0, 2), label="array changes")):
            change = draw(st.sampled_from(["drop", "add", "odd", "reshape", "rename"]))
            name = draw(st.sampled_from(names))
            if change == "drop":
                weights.pop(name, None)
            elif change == "add":
                weights[draw(st.sampled_from(["extra", name + ".x", "c1.num_batches_tracked", "", "a/b", "\x1b"]))] \
                    = np.zeros(3, np.float32)
            elif change == "odd":
                weights[name] = draw(st.sampled_from(odd_arrays))
            elif change == "reshape" and name in weights:
                weights[name] = weights[name].reshape(-1)
            elif change == "rename" and name in weights:
                weights[name.upper()] = weights.pop(name)
        buffer = io.BytesIO()
        compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, array in weights.items():
                archive.writestr(name + ".npy", _npy_bytes(array))
            extra = draw(st.sampled_from([None, None, ("notes.txt", b"hello"), ("x.npy", b"\x93NUMPY"),
                                          ("dir/", b""), ("c1.weight.npy", b"dup")]))
            if extra:
                with warnings.catch_warnings():  # zipfile warns about the duplicate member, which is the point
                    warnings.simplefilter("ignore")
                    archive.writestr(*extra)
        data = buffer.getvalue()
    for _ in range(draw(st.sampled_from([0, 1, 1, 2]), label="byte changes")):
        change = draw(st.sampled_from(["truncate", "flip", "flip header", "insert", "header shape"]))
        if change == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif change in ("flip", "flip header") and data:
            at = draw(st.integers(0, min(len(data), 160) - 1 if change == "flip header" else len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif change == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(max_size=16)) + data[at:]
        elif change == "header shape":  # a header promising far more than the file holds
            data = re.sub(rb"'shape': \([^)]*\)", draw(st.sampled_from([
                b"'shape': (1000000, 1, 32, 32)", b"'shape': (10000000000000, 1, 32, 32)", b"'shape': (-1, 1, 32, 32)",
                b"'shape': (1, 1, 32, 32, 1)", b"'shape': ()", b"'shape': (1e3,)", b"'shape': [1, 1, 32, 32]",
                b"'shape': (2**62, 1)", b"'shape': (" + b"9" * 400 + b",)"])), data, count=1)
    return option, data


@fuzz_settings(default=30)
@given(case=array_files())
def test_hostile_array_files(case):
    option, data = case
    path = _write(data, "weights.npz" if option == "--weights" else "input.npy")
    run(["verify", _bundled("lenet5"), "--max-memory", "256MiB", option, path],
        f"(the {option} file: {len(data)} bytes, starting {data[:200]!r})")


# ---- regression tests: minimal reproductions of what the fuzz found ----------------------------------------

def test_solve_with_a_huge_limit_is_refused_instead_of_printing_every_answer():
    # `solve --in 1 --out 1 --stride 1 --dilation 1..7 --layers 3 --limit 912732633945`: 46,656 chains took half
    # a minute to lay out as a table; two layers make 1,296
    result = run(["solve", "--in", "1", "--out", "1", "--stride", "1", "--dilation", "1..7", "--layers", "2",
                  "--limit", "912732633945"])
    assert result.exit_code == 2 and "1,296 chains" in result.stderr and "--limit 1,000 or less" in result.stderr


def test_solve_renderers_refuse_more_answers_than_they_show():
    from cnncalc import solve, solve_report as out
    many = [solve.Solution("conv", 3, 1, 1)] * (out.MAX_SHOWN + 1)
    chains = [solve.Chain((s,), (7, 7)) for s in many]
    for render, answers in ((out.solutions_table, many), (out.solutions_json, many),
                            (out.solutions_markdown, many), (out.chains_table, chains),
                            (out.chains_json, chains), (out.chains_markdown, chains)):
        with pytest.raises(CnnCalcError, match="more than cnncalc shows"):
            render(7, 7, "conv", answers)
        render(7, 7, "conv", answers[:out.MAX_SHOWN])  # the most it shows is still fine


def test_solve_describes_a_wide_value_range_without_listing_it():
    # the refusal's text compared the values with list(range(1, 9817312)): 10 s and 370 MB before answering
    start = time.perf_counter()
    result = run(["solve", "--in", "1000", "--out", "2", "--kind", "conv_transpose", "--stride", "9817311",
                  "--stride", "1..4", "--dilation", "1", "--dilation", "7"])
    assert result.exit_code == 2 and "stride 1, 2, 3, 4, 9817311" in result.stderr
    assert time.perf_counter() - start < 2


def test_chain_search_counts_the_lost_pixel_checks_it_does_in_python():
    # `solve --in 32 --out 224 --kernel 1..7 --stride 1..4 --dilation 1..100 --layers 5`: dilations leave most
    # candidates to the Python lost-pixel count, which the work budget did not see: 20 s before "too large to
    # finish in a few seconds"
    from cnncalc import solve
    candidates = solve._Candidates(solve._space("conv", range(1, 8), range(1, 5), range(1, 101), None))
    spent = []
    calls = []
    real = solve.lost_pixels
    solve.lost_pixels = lambda *args: calls.append(args) or real(*args)
    try:
        candidates.moves(32, spend=spent.append)
    finally:
        solve.lost_pixels = real
    assert len(calls) > 1000 and sum(spent) >= solve.FALLBACK_STEPS * len(calls)


def test_lrn_padded_copy_is_in_the_memory_estimate():
    # the kernel pads the squares by size - 1 channels; the estimate left that out, so a huge `size` got past
    # --max-memory and failed in NumPy with a MemoryError traceback
    path = _write(b"input: [3, 8, 8]\nlayers:\n  - {type: lrn, size: 1000000000000}\n", "lrn.yaml")
    result = run(["verify", path, "--max-memory", "256MiB"])
    assert result.exit_code == 2 and "needs about" in result.stderr


def test_lrn_estimate_covers_what_the_kernel_allocates():
    import tracemalloc

    from cnncalc import engine, verification
    from cnncalc.analyze import analyze
    from cnncalc.spec import parse
    network = parse("input: [64, 32, 32]\nlayers:\n  - {type: lrn, size: 1001}\n")
    summary = analyze(network, batch=4)
    estimate = engine.estimate_memory(network, summary, "float32")
    weights = engine.init_weights(network, seed=0, dtype="float32", summary=summary)
    tracemalloc.start()
    try:
        result = verification.verify(network, batch=4, seed=0, weights=weights, dtype="float32", summary=summary,
                                     max_memory=2**40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.passed and peak <= estimate.total


def test_sweep_work_is_bounded_by_points_times_layers():
    # 1,000 points (the most a sweep takes) of a 10,000-layer spec analysed for about ten minutes
    path = _write(b"input: [3, 8, 8]\nlayers:\n  - {type: relu, name: r, repeat: 2000}\n", "long.yaml")
    start = time.perf_counter()
    result = run(["sweep", path, "--batches", ",".join(str(b) for b in range(1, 101))])
    assert result.exit_code == 2 and "Sweep at most 50 points" in result.stderr
    assert time.perf_counter() - start < 2  # refused before any analysis
    assert run(["sweep", path, "--batches", "1,2,3", "-f", "json"]).exit_code == 0


def test_layer_names_are_bounded_because_every_table_row_is_as_wide_as_the_longest():
    # a 20,000-character name and 500 more layers printed a 15 MB table (rows x the longest name)
    long = "a" * 201
    path = _write(f"input: [3, 8, 8]\nlayers:\n  - {{type: relu, name: {long}}}\n  - {{type: relu, repeat: 500}}\n"
                  .encode(), "longname.yaml")
    result = run(["summarize", path])
    assert result.exit_code == 2 and "longer than 200 characters" in result.stderr and len(result.stdout) == 0
    block = _write(b"input: [3, 8, 8]\nblocks:\n  b:\n    layers:\n      - {type: relu, name: " + b"x" * 150 +
                   b"}\nlayers:\n  - {block: b, name: " + b"y" * 60 + b"}\n", "blockname.yaml")
    assert "longer than 200 characters" in run(["summarize", block]).stderr  # the dotted name counts
    assert run(["summarize", _write(f"input: [3]\nlayers:\n  - {{type: relu, name: {'a' * 200}}}\n".encode(),
                                    "ok.yaml")]).exit_code == 0


def test_explain_looks_names_up_instead_of_matching_each_against_every_layer():
    # 5,000 layer names on a 10,000-layer spec: 20 s of pattern matching (names x layers)
    from cnncalc import explain
    path = _write(b"input: [3, 8, 8]\nlayers:\n  - {type: relu, name: r, repeat: 2000}\n", "many.yaml")
    matched = []
    real = explain.fnmatch.fnmatchcase
    explain.fnmatch.fnmatchcase = lambda name, pattern: matched.append(name) or real(name, pattern)
    try:
        result = run(["explain", path, "-f", "json", *(f"r.{i}" for i in range(0, 2000, 2))])
    finally:
        explain.fnmatch.fnmatchcase = real
    assert result.exit_code == 0 and result.stdout.count('"name": "r.') == 1000
    assert not [name for name in matched if name.startswith("r.")]  # (others use fnmatch too)
    result = run(["explain", path, *(f"r.{i}*" for i in range(101))])
    assert result.exit_code == 2 and "101 patterns" in result.stderr
    assert run(["explain", path, "r.1?", "r.1999"]).stdout.count("(relu)") == 11


def test_diff_aligns_long_renamed_stretches_window_by_window(monkeypatch):
    # two 10,000-layer specs with different names and mixed kinds: 12 s in one quadratic by-kind alignment
    import random

    from cnncalc import diff
    from cnncalc.analyze import analyze
    from cnncalc.spec import parse
    kinds = ["relu", "sigmoid", "tanh"]
    pick = random.Random(1)
    a = analyze(parse("input: [3, 4]\nlayers:\n" + "".join(f"  - {{type: {kinds[i % 3]}, name: a{i}}}\n"
                                                        for i in range(3000))))
    b = analyze(parse("input: [3, 4]\nlayers:\n" + "".join(f"  - {{type: {pick.choice(kinds)}, name: b{i}}}\n"
                                                        for i in range(3000))))
    sizes = []

    class Recording(diff.SequenceMatcher):
        def __init__(self, junk, first, second, **kwargs):
            sizes.append(max(len(first), len(second)))
            super().__init__(junk, first, second, **kwargs)

    monkeypatch.setattr(diff, "SequenceMatcher", Recording)
    pairs = diff.align(a, b)
    assert max(sizes[1:]) <= diff.KIND_WINDOW  # the first is the (linear) match by name
    assert [p.a.name for p in pairs if p.a] == [r.name for r in a.rows]
    assert [p.b.name for p in pairs if p.b] == [r.name for r in b.rows]
    assert all(p.a.kind == p.b.kind for p in pairs if p.a and p.b)


def test_yaml_with_too_many_values_is_refused_before_a_tree_is_built(monkeypatch):
    # 4 MB of tiny values took 15 s and 1.7 GB to be refused (every node composed first); the 32 MB a spec may
    # be would take four times that
    from cnncalc.yamlmarks import load_marked

    def compose(*args, **kwargs):
        raise AssertionError("composed before counting")

    monkeypatch.setattr(yaml, "compose", compose)
    with pytest.raises(CnnCalcError, match="more than 1,000 values") as refused:
        load_marked("input: [3]\nlayers: [relu]\nx: [" + "1," * 1_000 + "1]\n", "flat.yaml", max_nodes=1_000)
    assert "flat.yaml:3:" in str(refused.value)


def test_nesting_is_refused_from_the_event_stream_and_by_alias_expansion():
    deep = _write(b"input: [3]\nlayers: [relu]\nx: " + b"[" * 65 + b"]" * 65 + b"\n", "deep.yaml")
    assert "nests deeper than 64 levels" in run(["summarize", deep]).stderr
    ok = _write(b"input: [3]\nlayers: [relu]\n" + b"x: " + b"[" * 62 + b"]" * 62 + b"\n", "ok.yaml")
    assert "nests deeper" not in run(["summarize", ok]).stderr  # (refused later: x is not a top-level key)
    via_alias = _write(b"input: [3]\nlayers: [relu]\na: &a " + b"[" * 40 + b"]" * 40 + b"\nb: " + b"[" * 40 +
                       b"*a" + b"]" * 40 + b"\n", "alias.yaml")
    assert "nests deeper than 64 levels" in run(["summarize", via_alias]).stderr


@pytest.mark.parametrize("kind", ["conv1d", "conv_transpose1d"])
def test_receptive_field_stops_where_its_numbers_leave_any_input(kind):
    # 30 stride-10^12 layers on a 1-pixel input (their output stays 1 pixel) made the jump 10^360: an
    # OverflowError in the table and the Markdown, and integers past Python's 4,300-digit limit after more layers
    path = _write(f"input: [1, 1]\nlayers:\n  - {{type: {kind}, name: c, out_channels: 1, kernel_size: 1, "
                  f"stride: 1000000000000, repeat: 30}}\n".encode(), f"{kind}.yaml")
    for args in (["--columns", "rf"], ["-f", "markdown", "--columns", "rf"], ["-f", "json"], ["-f", "csv"]):
        assert run(["summarize", path, *args]).exit_code == 0
    assert run(["explain", path]).exit_code == 0
    from cnncalc.analyze import analyze
    rows = analyze(load(path)).rows
    assert rows[1].receptive_field is not None and all(r.receptive_field is None for r in rows[2:])


def test_a_spec_reports_at_most_a_hundred_errors():
    # 200,000 bad entries (a 400 KB spec) took 13 s to report 23 MB of errors
    from cnncalc.limits import MAX_ERRORS
    path = _write(b"input: [3]\nlayers: [" + b"1," * 200_000 + b"1]\n", "errors.yaml")
    start = time.perf_counter()
    result = run(["summarize", path])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == MAX_ERRORS + 1 and f"stopped after {MAX_ERRORS} errors" in lines[-1]
    assert time.perf_counter() - start < 6
    keys = _write(b"input: [3]\nlayers: [relu]\n" + b"".join(b"k%d: 1\n" % i for i in range(300)), "keys.yaml")
    assert f"stopped after {MAX_ERRORS} errors" in run(["summarize", keys]).stderr  # any kind of error counts


def test_diff_labels_are_printable():
    # the label of B holds the --set text, and a YAML comment may carry a bidi override or a zero-width space
    for fmt in ("table", "markdown", "json"):
        result = run(["diff", _bundled("lenet5"), "--set", "c1.padding=1 #\u202e\u200b", "-f", fmt])
        assert result.exit_code == 0 and "\\u202e" in result.stdout


def test_chain_search_memory_is_bounded():
    # the search remembered every move from every intermediate size: 7 -> 1,000,000 in three transposed
    # convolutions grew the process by 450 MB (and took 6 s) before "too large"; `run` holds it to PEAK_BYTES
    result = run(["solve", "--in", "7", "--out", "1000000", "--kind", "conv_transpose", "--layers", "3"])
    assert result.exit_code == 2 and "layers to remember" in result.stderr


def test_a_spec_that_is_not_a_regular_file_is_named_as_such():
    # a FIFO or a device was "no such file", though it is there
    fifo = _WORK / "pipe.yaml"
    if not fifo.exists():
        os.mkfifo(fifo)
    for path in (str(fifo), "/dev/null"):
        result = run(["summarize", path])
        assert result.exit_code == 2 and "is not a regular file" in result.stderr


def test_block_and_argument_names_must_be_text():
    # `args: {&h: null}` (an anchored empty key) made a None argument name, and a did-you-mean over it crashed
    path = _write(b"input: [3, 8, 8]\nblocks:\n  b:\n    args: {? null: null, k: 3}\n    layers: [relu]\n"
                  b"  null: {layers: [relu]}\n  c: {layers: [relu], 1: 2, x: 3}\n"
                  b"layers:\n  - {block: b, name: u, k: 3, ch: 4}\n  - {block: nope}\n", "blocks.yaml")
    result = run(["summarize", path])
    assert result.exit_code == 2
    for text in ("blocks.yaml:4:14: block 'b': argument names must be text; got None",
                 "blocks.yaml:6:3: a block's name must be text; got None", "unknown key(s) [1, 'x']"):
        assert text in result.stderr
