"""Spec data -> validated layers: blocks with arguments, `repeat`, Keras spellings, names and wiring.

All independent mistakes are collected and reported together, each at the line of its YAML node.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from pydantic import ValidationError

from cnncalc.arith import UnknownArgument, evaluate
from cnncalc.errors import (BlockUse, CnnCalcError, SpecError, Via, Where, combined, did_you_mean, raise_all, shown,
                            shown_text)
from cnncalc.layers import FIELD_ALIASES, KINDS, TYPE_SPELLINGS, LayerBase, Shape, canonical_type
from cnncalc.network import NETWORK_INPUT, Network, Origin, is_sample_shape

if TYPE_CHECKING:  # the type of ValidationError.errors()' items; pydantic_core is pydantic's, not ours to import
    from pydantic_core import ErrorDetails
from cnncalc.limits import MAX_BLOCK_DEPTH, MAX_ERRORS, MAX_LAYERS, MAX_NAME, MAX_TITLE
from cnncalc.yamlmarks import Key, Mark, MarkedDict, MarkedList

# dot-separated parts of letters, digits, '_' and '-': a PyTorch module path ('layer1.0.conv1')
NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
TOP_LEVEL_KEYS = ("name", "input", "layers", "blocks", "outputs")
USE_KEYS = ("block", "name", "repeat", "inputs")  # the rest of a block use are its arguments


# ---- expansion --------------------------------------------------------------------------------------------

@dataclass
class _Scope:
    """Name resolution inside the top level or one block instance."""

    prefix: str                      # "layer1.0." inside a block instance, "" at the top level
    input: str                       # global name of what `input` means here
    previous: str                    # global name of the latest layer (what a layer reads by default)
    args: dict[str, Any] | None      # block arguments, None at the top level
    via: BlockUse | None = None
    depth: int = 0
    names: dict[str, str] = field(default_factory=dict)   # local name -> global name
    counters: dict[str, int] = field(default_factory=dict)


class Expander:
    """Turns the YAML data of one spec into validated layers, expanding blocks and `repeat`."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[CnnCalcError] = []
        self.layers: list[LayerBase] = []
        self.origins: dict[str, Origin] = {}
        self.global_names: set[str] = {NETWORK_INPUT}
        self.blocks: dict[str, MarkedDict] = {}
        self.block_sizes: dict[str, int] = {}

    def error(self, message: str, mark: Mark | None = None, fix: str | None = None, layer: str | None = None,
              kind: str | None = None, via: Via | None = None, field_name: str | None = None) -> SpecError:
        line, col = mark if mark else (None, None)
        return SpecError(message, fix=fix, field=field_name,
                         where=Where(self.file, line, col, layer, kind, via))

    def add(self, *errors: CnnCalcError) -> None:
        """Collect errors to report together; past MAX_ERRORS stop there (a spec of a million bad entries
        took minutes to report, and nobody reads that far)."""
        self.errors.extend(errors)
        if len(self.errors) > MAX_ERRORS:
            stop = SpecError(f"stopped after {MAX_ERRORS} errors", where=Where(self.file),
                             fix="Fix these first; any others are shown then.")
            raise combined(self.errors[:MAX_ERRORS] + [stop])

    # ---- top level ----
    def network(self, data: Any) -> Network:
        if not isinstance(data, MarkedDict):
            raise self.error("a spec must be a YAML mapping with `input` and `layers`",
                             getattr(data, "mark", (1, 1)),
                             "Start from a bundled spec: `cnncalc zoo` lists them.")
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.add(self.error(f"unknown top-level key '{shown_text(str(key))}'", data.key_mark(key),
                                    did_you_mean(key, TOP_LEVEL_KEYS) +
                                    f"A spec has: {', '.join(TOP_LEVEL_KEYS)}."))
        input_shape = self.input_shape(data)
        name = data.get("name", Path(self.file).stem)
        if not isinstance(name, str):
            self.add(self.error("`name` must be text", data.mark_of("name")))
        name = shown_text(str(name), MAX_TITLE)  # shown in titles: one short line, control characters escaped
        self.blocks = self.read_blocks(data.get("blocks"), data.mark_of("blocks"))
        layers = data.get("layers")
        if not isinstance(layers, MarkedList) or not layers:
            raise combined(self.errors + [self.error("`layers` must be a non-empty list of layers",
                                                     data.mark_of("layers") if "layers" in data else data.mark,
                                                     "Add e.g. `layers: [{type: conv2d, out_channels: 16, "
                                                     "kernel_size: 3}]`.")])
        top = _Scope(prefix="", input=NETWORK_INPUT, previous=NETWORK_INPUT, args=None)
        self.expand(layers, top)
        outputs = self.outputs(data, top)
        raise_all(self.errors)
        return Network(str(name), input_shape, tuple(self.layers), outputs, self.file, self.origins)

    def input_shape(self, data: MarkedDict) -> Shape:
        shape: Any = data.get("input")  # YAML data, checked next
        if not is_sample_shape(shape):
            self.add(self.error(
                f"`input` must be one sample's shape, channels first: 1 to 4 positive integers; got {shown(shape)}",
                data.mark_of("input") if "input" in data else data.mark,
                "Write e.g. `input: [3, 224, 224]` (no batch axis: use --batch)."))
            return (1,)
        return tuple(shape)

    def outputs(self, data: MarkedDict, top: _Scope) -> tuple[str, ...]:
        if "outputs" not in data:
            return (self.layers[-1].name,) if self.layers else ()
        names = data["outputs"]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            self.add(self.error("`outputs` must be a list of layer names", data.mark_of("outputs")))
            return ()
        return tuple(self.resolve(n, top, data["outputs"].mark_of(i) if isinstance(data["outputs"], MarkedList)
                                  else data.mark_of("outputs"), None, set(), "outputs") or ""
                     for i, n in enumerate(names))

    def read_blocks(self, blocks: Any, mark: Mark) -> dict[str, MarkedDict]:
        if blocks is None:
            return {}
        if not isinstance(blocks, MarkedDict):
            self.add(self.error("`blocks` must map block names to {args, layers}", mark))
            return {}
        good = {}
        for name, block in blocks.items():
            where = blocks.mark_of(name)
            if not isinstance(name, str):
                self.add(self.error(f"a block's name must be text; got {shown(name)}", blocks.key_mark(name),
                                    "Write e.g. `blocks: {bottleneck: {args: {...}, layers: [...]}}`."))
                continue
            if not isinstance(block, MarkedDict) or not isinstance(block.get("layers"), MarkedList):
                self.add(self.error(f"block '{shown_text(str(name))}' needs a `layers` list", where,
                                    "Write `name: {args: {...}, layers: [...]}`."))
                continue
            extra = set(block) - {"args", "layers"}
            if extra:
                self.add(self.error(f"block '{shown_text(str(name))}' has unknown key(s) "
                                    f"{shown(sorted(extra, key=str))}", where,
                                    "A block has only `args` and `layers`."))
            if not isinstance(block.get("args", {}), dict):
                self.add(self.error(f"block '{shown_text(str(name))}': `args` must map names to defaults "
                                    "(null for a required argument)", block.mark_of("args")))
                continue
            odd = [k for k in block.get("args") or {} if not isinstance(k, str)]
            if odd:
                self.add(self.error(f"block '{shown_text(name)}': argument names must be text; got {shown(odd[0])}",
                                    block["args"].key_mark(odd[0]), "Write e.g. `args: {mid: null, stride: 1}`."))
                continue
            good[name] = block
        return good

    # ---- expansion ----
    def layer_count(self, entry: Any, stack: tuple[str, ...] = ()) -> int:
        """How many layers an entry becomes, without expanding it (to refuse huge specs quickly)."""
        if not isinstance(entry, dict):
            return 1
        repeat = entry.get("repeat", 1)
        repeat = repeat if type(repeat) is int and repeat > 0 else 1
        if "block" not in entry:
            return repeat * (2 if entry.get("activation") not in (None, "linear") else 1)
        block = entry["block"]
        if not isinstance(block, str) or block not in self.blocks or block in stack:
            return repeat
        if block not in self.block_sizes:
            self.block_sizes[block] = sum(self.layer_count(e, stack + (block,)) for e in self.blocks[block]["layers"])
        return repeat * self.block_sizes[block]

    def expand(self, entries: MarkedList, scope: _Scope) -> None:
        later_names = {e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
        for index, entry in enumerate(entries):
            mark = entries.mark_of(index)
            if len(self.layers) + self.layer_count(entry) > MAX_LAYERS:
                raise combined(self.errors + [self.error(
                    f"the spec expands to more than {MAX_LAYERS:,} layers", mark,
                    "Lower the `repeat` counts; cnncalc is for networks, not for stress tests.")])
            if isinstance(entry, str):
                entry = MarkedDict(type=entry)
                entry.mark, entry.value_marks = mark, {"type": mark}
            if not isinstance(entry, MarkedDict):
                self.add(self.error(f"a layer must be a mapping or a type name; got {shown(entry)}", mark,
                                    "Write e.g. `{type: relu}` or `relu`.", via=scope.via))
                continue
            if "name" in entry and not isinstance(entry["name"], str):
                self.add(self.error(f"`name` must be text; got {shown(entry['name'])}",
                                    entry.mark_of("name"), "Write e.g. `name: conv1`.", via=scope.via))
                continue
            if isinstance(entry.get("name"), str):
                later_names.discard(entry["name"])
            if scope.args is not None:
                try:
                    entry = substitute(entry, scope.args)
                except _SubstitutionError as err:
                    self.add(self.error(str(err), err.mark, err.fix,
                                        via=scope.via))
                    continue
            elif "block" not in entry and _has_reference(entry):
                self.add(self.error("`$` arguments can only be used inside a block's layers",
                                    entry.mark, "Move this layer into a block, or write the value.",
                                    via=scope.via))
                continue
            repeat = entry.get("repeat", 1)
            if type(repeat) is not int or repeat < 1:
                self.add(self.error(f"`repeat` must be a positive integer; got {shown(repeat)}",
                                    entry.mark_of("repeat"), via=scope.via))
                continue
            if "block" in entry:
                self.expand_block_use(entry, scope, repeat, later_names)
            else:
                self.expand_layer(entry, scope, repeat, later_names)

    def instance_names(self, entry: MarkedDict, scope: _Scope, repeat: int, default_stem: str) -> Iterator[str]:
        name = entry.get("name")
        if name is None:
            for _ in range(repeat):
                scope.counters[default_stem] = scope.counters.get(default_stem, 0) + 1
                yield f"{default_stem}_{scope.counters[default_stem]}"
            return
        if repeat == 1:
            yield str(name)
        else:
            for i in range(repeat):
                yield f"{name}.{i}"

    def check_name(self, local: str, scope: _Scope, mark: Mark, kind: str | None) -> str | None:
        if not NAME_PATTERN.fullmatch(local):
            self.add(self.error(f"invalid name '{shown_text(str(local))}'", mark,
                                "Use letters, digits, '_', '-' and '.' only.", via=scope.via))
            return None
        full = scope.prefix + local
        if len(full) > MAX_NAME:
            self.add(self.error(f"the name '{shown_text(full)}' is longer than {MAX_NAME} characters", mark,
                                "Use a shorter name (PyTorch module paths are a few dozen characters).",
                                via=scope.via))
            return None
        if full in self.global_names:
            reason = "is reserved for the network input" if full == NETWORK_INPUT else "is used twice"
            self.add(self.error(f"the name '{shown_text(str(full))}' {reason}", mark, "Give each layer its own name.",
                                layer=full, kind=kind, via=scope.via))
            return None
        self.global_names.add(full)
        return full

    def resolve(self, name: Any, scope: _Scope, mark: Mark, layer: str | None, later: set[str],
                field: str = "inputs") -> str | None:
        """The global name a layer's `inputs` entry (or a top-level `outputs` entry) refers to."""
        if name == NETWORK_INPUT:
            return scope.input
        if not isinstance(name, str):
            self.add(self.error(f"`{field}` lists layer names; got {shown(name)}", mark,
                                f"Write e.g. `{field}: [conv1, input]`.", layer=layer, via=scope.via,
                                field_name=None if field == "outputs" else field))
            return None
        if name in scope.names:
            return scope.names[name]
        if name in later:
            why = (f"'{shown_text(str(name))}' is defined later; `inputs` may only name earlier layers "
                   "(so no cycles can form)")
            fix = "Move this layer after it."
        else:
            why = f"unknown input '{shown_text(str(name))}'"
            fix = did_you_mean(name, [*scope.names, NETWORK_INPUT]) + \
                "`inputs` names earlier layers" + (" of this block" if scope.args is not None else "") + \
                f", or `{NETWORK_INPUT}`" + (" (the block's input)." if scope.args is not None else ".")
        self.add(self.error(why, mark, fix, layer=layer, via=scope.via,
                            field_name=None if field == "outputs" else field))
        return None

    def resolve_inputs(self, entry: MarkedDict, scope: _Scope, layer: str | None, later: set[str]) -> list[str] | None:
        if "inputs" not in entry:
            return [scope.previous]
        names = entry["inputs"]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            self.add(self.error(f"`inputs` must be a list of layer names; got {shown(names)}",
                                entry.mark_of("inputs"), layer=layer, via=scope.via))
            return None
        marks = entry["inputs"] if isinstance(entry["inputs"], MarkedList) else None
        resolved = [self.resolve(n, scope, marks.mark_of(i) if marks else entry.mark_of("inputs"), layer, later)
                    for i, n in enumerate(names)]
        found = [n for n in resolved if n is not None]
        return found if len(found) == len(resolved) else None

    def expand_layer(self, entry: MarkedDict, scope: _Scope, repeat: int, later: set[str]) -> None:
        spelled = entry.get("type")
        if not isinstance(spelled, str):
            self.add(self.error("a layer needs a `type`" if spelled is None else
                                f"`type` must be a layer type name; got {shown(spelled)}",
                                entry.mark_of("type"), "`cnncalc layers` lists the types.",
                                layer=entry.get("name"), via=scope.via))
            return
        kind = canonical_type(spelled)
        if kind is None:
            rankless = canonical_type(spelled + "2d")  # 'maxpool' most likely means the 2-D kind
            hint = f"Did you mean '{rankless}'? " if rankless else \
                did_you_mean(spelled.lower(), list(KINDS) + list(TYPE_SPELLINGS))
            self.add(self.error(f"unknown layer type '{shown_text(str(spelled))}'", entry.mark_of("type"), hint +
                                "`cnncalc layers` lists every type.",
                                layer=entry.get("name"), via=scope.via))
            return
        cls = KINDS[kind]
        fields = {k: v for k, v in entry.items() if k not in ("type", "name", "repeat", "inputs")}
        field_marks = {k: entry.mark_of(k) for k in entry}
        for alias, canonical in FIELD_ALIASES.items():
            if alias in fields and canonical in cls.model_fields and alias not in cls.model_fields:
                if canonical in fields:
                    self.add(self.error(f"both '{shown_text(str(alias))}' and '{canonical}' are given",
                                        entry.mark_of(alias),
                                        f"'{shown_text(str(alias))}' is another name for '{canonical}': keep one.",
                                        layer=entry.get("name"), kind=kind, via=scope.via))
                    return
                fields[canonical] = fields.pop(alias)
                field_marks[canonical] = field_marks[alias]
        activation = None  # the canonical type of an `activation:` written on the layer
        if "activation" in fields and "activation" not in cls.model_fields:
            given = fields.pop("activation")
            activation = canonical_type(given) if isinstance(given, str) and given != "linear" else None
            if given not in (None, "linear") and (activation is None or activation not in KINDS
                                                  or KINDS[activation].category != "activation"):
                activations = [k for k, c in KINDS.items() if c.category == "activation"]
                self.add(self.error(f"unknown activation {shown(given)}", entry.mark_of("activation"),
                                    did_you_mean(str(given), activations) +
                                    f"Activations: {', '.join(activations)}.",
                                    layer=entry.get("name") if isinstance(entry.get("name"), str) else None,
                                    kind=kind, via=scope.via, field_name="activation"))
                return
        for i, local in enumerate(self.instance_names(entry, scope, repeat, kind)):
            full = self.check_name(local, scope, entry.mark_of("name"), kind)
            inputs = self.resolve_inputs(entry, scope, full, later) if i == 0 else [scope.previous]
            if full is None or inputs is None:
                return
            origin = Origin(entry.mark, field_marks, scope.via)
            if not self.add_layer(cls, kind, full, inputs, fields, origin):
                return
            scope.names[local] = full
            if repeat > 1 and i == repeat - 1 and "name" in entry:
                scope.names[entry["name"]] = full  # the repeated name means its last instance
            scope.previous = full
            if activation is not None:
                act_local = f"{local}_{activation}"
                act_full = self.check_name(act_local, scope, entry.mark_of("activation"), activation)
                if act_full is None:
                    return
                self.add_layer(KINDS[activation], activation, act_full, [full], {},
                               Origin(entry.mark_of("activation"), {}, scope.via))
                scope.names[act_local] = act_full
                scope.previous = act_full

    def add_layer(self, cls: type[LayerBase], kind: str, name: str, inputs: list[str], fields: dict[Key, Any],
                  origin: Origin) -> bool:
        lo, hi = cls.arity
        if not lo <= len(inputs) <= (hi or len(inputs)):
            wanted = f"at least {lo}" if hi is None else (str(lo) if lo == hi else f"{lo} or {hi}")
            self.add(self.error(f"takes {wanted} input(s); got {len(inputs)}: {inputs}",
                                origin.field_marks.get("inputs", origin.mark),
                                "Set `inputs:` to the layers it joins." if lo > 1 else
                                "Give it one input.", layer=name, kind=kind, via=origin.via,
                                field_name="inputs"))
            return False
        try:
            layer = cls.model_validate({"type": kind, "name": name, "inputs": tuple(inputs), **fields})
        except ValidationError as err:
            self.add(*validation_errors(err, cls, kind, name, fields, origin, self.file))
            return False
        self.layers.append(layer)
        self.origins[name] = origin
        return True

    def expand_block_use(self, entry: MarkedDict, scope: _Scope, repeat: int, later: set[str]) -> None:
        block_name = entry["block"]
        if not isinstance(block_name, str):
            self.add(self.error(f"`block` must be a block's name; got {shown(block_name)}",
                                entry.mark_of("block"), f"Blocks defined: {', '.join(self.blocks) or 'none'}.",
                                via=scope.via))
            return
        if block_name not in self.blocks:
            self.add(self.error(f"unknown block '{shown_text(str(block_name))}'", entry.mark_of("block"),
                                did_you_mean(block_name, self.blocks) +
                                f"Blocks defined: {', '.join(self.blocks) or 'none'}.", via=scope.via))
            return
        if scope.depth >= MAX_BLOCK_DEPTH:
            self.add(self.error(f"blocks nest deeper than {MAX_BLOCK_DEPTH} (a block using itself?)",
                                entry.mark, "A block must not use itself.", via=scope.via))
            return
        block = self.blocks[block_name]
        declared = block.get("args") or {}
        args = {k: v for k, v in entry.items() if k not in USE_KEYS}
        unknown = [k for k in args if k not in declared]
        missing = [k for k, v in declared.items() if v is None and k not in args]
        for k in unknown:
            self.add(self.error(f"block '{shown_text(str(block_name))}' has no argument '{shown_text(str(k))}'",
                                entry.mark_of(k),
                                did_you_mean(k, declared) +
                                f"Its arguments: {', '.join(declared) or 'none'}.", via=scope.via))
        for k in missing:
            self.add(self.error(f"block '{shown_text(str(block_name))}' needs argument '{shown_text(str(k))}'",
                                entry.mark,
                                f"Add `{k}: ...` to this use.", via=scope.via))
        if unknown or missing:
            return
        values = {**declared, **args}
        first_input = self.resolve_inputs(entry, scope, entry.get("name"), later)
        if first_input is None:
            return
        if len(first_input) != 1:
            self.add(self.error("a block takes one input", entry.mark_of("inputs"), via=scope.via))
            return
        use_line = entry.mark[0]
        for i, local in enumerate(self.instance_names(entry, scope, repeat, block_name)):
            if not NAME_PATTERN.fullmatch(local) or scope.prefix + local in self.global_names or \
                    len(scope.prefix + local) > MAX_NAME:
                self.check_name(local, scope, entry.mark_of("name"), None)
                return
            inner = _Scope(prefix=f"{scope.prefix}{local}.", input=first_input[0] if i == 0 else scope.previous,
                           previous=first_input[0] if i == 0 else scope.previous, args=values,
                           via=BlockUse(str(block_name), use_line),
                           depth=scope.depth + 1)
            count = len(self.layers)
            self.expand(block["layers"], inner)
            if len(self.layers) == count:
                return
            scope.names[local] = inner.previous
            if repeat > 1 and i == repeat - 1 and "name" in entry:
                scope.names[entry["name"]] = inner.previous
            scope.previous = inner.previous


def validation_errors(err: ValidationError, cls: type[LayerBase], kind: str, name: str, fields: Mapping[Any, Any],
                      origin: Origin, file: str) -> list[SpecError]:
    """Rewrite pydantic's errors for users: one per field, at that field's line."""
    by_field: dict[str, list[ErrorDetails]] = {}
    for e in err.errors(include_url=False):
        by_field.setdefault(str(e["loc"][0]) if e["loc"] else "", []).append(e)
    allowed = [f for f in cls.model_fields if f not in ("type", "name", "inputs", "trainable")]
    # a misspelt required field is one mistake, not two: drop its "missing" twin
    for field_name, errs in list(by_field.items()):
        if errs[0]["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field_name, allowed, n=1, cutoff=0.6)
            twin = by_field.get(close[0]) if close else None
            if twin and twin[0]["type"] == "missing":
                del by_field[close[0]]
    out = []
    for field_name, errs in by_field.items():
        mark = origin.field_marks.get(field_name, origin.mark)
        first = min(errs, key=_error_rank)  # a bound broken says more than "not the literal 'same'"
        if first["type"] == "extra_forbidden":
            message = f"unknown field '{shown_text(str(field_name))}'"
            fix = did_you_mean(field_name, allowed + list(FIELD_ALIASES)) + \
                (f"{kind} takes: {', '.join(allowed)}." if allowed else f"{kind} takes no fields.")
        elif first["type"] == "missing":
            message = f"missing required field '{shown_text(str(field_name))}'"
            fix = f"Add `{field_name}:` to the layer."
        else:
            text = first["msg"].removeprefix("Value error, ")
            text = text[0].lower() + text[1:]
            given = fields.get(field_name, first["input"])
            message = f"{text}; got {shown(given)}" if "got" not in text and field_name else text
            fix = f"See `cnncalc layers {kind}`."
            if first["type"] in ("float_type", "int_type") and isinstance(given, str) and _reads_as_number(given):
                fix = (f"YAML reads {shown_text(given)} as text: write it with a dot, e.g. 1.0e+3. "
                       if _YAML_TEXT_NUMBER.fullmatch(given) else "It is in quotes, so it is text: remove them. ") + fix
        out.append(SpecError(message, fix=fix, field=field_name or None,
                             where=Where(file, mark[0], mark[1], name, kind, origin.via)))
    return out


_YAML_TEXT_NUMBER = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")  # 1e300: a number to Python, text to YAML 1.1


def _error_rank(error: ErrorDetails) -> int:
    """Which of pydantic's errors for a field (one per member of a union) to show: a broken bound or a
    custom check first, then 'not one of the words', then 'not the right type'."""
    kind = error["type"]
    return 2 if kind.endswith("_type") else 1 if kind == "literal_error" else 0


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- block arguments ---------------------------------------------------------------------------------------

DECLARE_IT = "Declare it under the block's `args`."
CHECK_EXPRESSION = "An expression uses + - * / // % ( ) min() max() over integers and the block's arguments."


class _SubstitutionError(ValueError):
    def __init__(self, message: str, mark: Mark, fix: str):
        super().__init__(message)
        self.mark, self.fix = mark, fix


_REFERENCE = re.compile(r"^\$([A-Za-z_]\w*)$")
_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.S)


def _has_reference(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("$")
    if isinstance(value, dict):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def substitute(value: Any, args: dict[str, Any], mark: Mark = (0, 0)) -> Any:
    """Replace `$name` by the argument's value and `${expr}` by the integer it evaluates to."""
    if isinstance(value, MarkedDict):
        return value.derived({k: substitute(v, args, value.mark_of(k)) for k, v in value.items()})
    if isinstance(value, MarkedList):
        out = MarkedList(substitute(v, args, value.mark_of(i)) for i, v in enumerate(value))
        out.mark, out.item_marks = value.mark, getattr(value, "item_marks", [])
        return out
    if isinstance(value, str) and value.startswith("$"):
        reference = _REFERENCE.match(value)
        if reference:
            if reference.group(1) not in args:
                raise _SubstitutionError(f"'{shown_text(str(value))}' is not an argument of this block "
                                         f"(arguments: {', '.join(args) or 'none'})", mark, DECLARE_IT)
            return args[reference.group(1)]
        expression = _EXPRESSION.match(value)
        if expression:
            try:
                return evaluate(expression.group(1), args)
            except UnknownArgument as err:
                raise _SubstitutionError(str(err), mark, DECLARE_IT) from None
            except ValueError as err:
                raise _SubstitutionError(str(err), mark, CHECK_EXPRESSION) from None
        raise _SubstitutionError(f"cannot read '{shown_text(str(value))}': write `$name` or `${{expression}}`", mark,
                                 CHECK_EXPRESSION)
    return value


