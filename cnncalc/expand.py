"""Spec data -> validated layers: blocks with arguments, `repeat`, Keras spellings, names and wiring.

All independent mistakes are collected and reported together, each at the line of its YAML node.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from pydantic import ValidationError

from cnncalc.arith import UnknownArgument, evaluate
from cnncalc.errors import (BlockUse, CnnCalcError, SpecError, Via, Where, combined, did_you_mean, raise_all, shown,
                            shown_text)
from cnncalc.layers import FIELD_ALIASES, KINDS, TYPE_SPELLINGS, LayerBase, Shape, canonical_type
from cnncalc.network import NETWORK_INPUT, Network, Origin, is_sample_shape

if TYPE_CHECKING:  # the type of ValidationError.errors()' items; pydantic_core is pydantic's, not ours to import
    from pydantic_core import ErrorDetails
from cnncalc.limits import MAX_BLOCK_DEPTH, MAX_ERRORS, MAX_INT, MAX_LAYERS, MAX_NAME, MAX_TITLE
from cnncalc.yamlmarks import Key, Mark, MarkedDict, MarkedList

# dot-separated parts of letters, digits, '_' and '-': a PyTorch module path ('layer1.0.conv1')
NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
TOP_LEVEL_KEYS = ("name", "input", "layers", "blocks", "outputs")
USE_KEYS = ("block", "name", "repeat", "start", "inputs")  # the rest of a block use are its arguments
INDEX = "index"  # `$index`: the instance number inside a `repeat` (start, start + 1, ...)
FAILED = "?"     # what a refused layer's name (or a wrong `inputs` entry) refers to: not a valid layer name


@dataclass(frozen=True)
class _Count:
    """How an entry repeats: `repeat` instances numbered from `start`; `$index` is defined if `repeated`."""

    repeat: int = 1
    start: int = 0
    repeated: bool = False
    numbered: bool = False  # names get `.<index>`: more than one instance, or a `start` that counts

    def names(self, names: dict[str, Any], i: int) -> dict[str, Any]:
        """What `$...` may name in instance i."""
        return {**names, INDEX: self.start + i} if self.repeated else names


def _has_field(spelled: Any, field_name: str) -> bool:
    kind = canonical_type(spelled) if isinstance(spelled, str) else None
    return kind is not None and kind in KINDS and field_name in KINDS[kind].model_fields


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
        self.failed: set[str] = {FAILED}  # global names of refused layers (see `fail`)

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
            if INDEX in (block.get("args") or {}):
                self.add(self.error(f"block '{shown_text(name)}': `{INDEX}` is not an argument name: `${INDEX}` is "
                                    "the instance number inside a `repeat`", block["args"].key_mark(INDEX),
                                    "Rename the argument."))
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
            names = dict(scope.args) if scope.args is not None else {}  # what `$...` may name here
            # `repeat`, `start` and `type` first: they decide how many instances there are and what they are
            head = self.substituted(entry, names, scope, ("repeat", "start", "type"))
            if head is None:
                self.fail(entry, scope)
                continue
            start_is_count = "block" in head or not _has_field(head.get("type"), "start")  # slice has a `start`
            repeat, start = head.get("repeat", 1), head.get("start", 0) if start_is_count else 0
            if type(repeat) is not int or not 1 <= repeat <= MAX_INT:
                self.add(self.error(f"`repeat` must be a positive integer; got {shown(repeat)}",
                                    entry.mark_of("repeat"), via=scope.via, field_name="repeat"))
                self.fail(entry, scope)
                continue
            if type(start) is not int or not 0 <= start <= MAX_INT:
                self.add(self.error(f"`start` (the first instance's number) must be a whole number from 0 to "
                                    f"{MAX_INT:,}; got {shown(start)}", entry.mark_of("start"),
                                    "Write e.g. `{block: ..., name: features.6, repeat: 3, start: 1}`.",
                                    via=scope.via, field_name="start"))
                self.fail(entry, scope)
                continue
            counting_start = "start" in entry and start_is_count
            count = _Count(repeat, start, "repeat" in entry or counting_start, repeat != 1 or counting_start)
            if "block" in head:
                self.expand_block_use(head, scope, count, later_names, names)
            else:
                self.expand_layer(head, scope, count, later_names, names, start_is_count)

    def substituted(self, entry: MarkedDict, names: dict[str, Any], scope: _Scope,
                    keys: tuple[str, ...] | None = None) -> MarkedDict | None:
        """The entry with `$name` and `${...}` replaced (only `keys`, if given); None after reporting why not."""
        try:
            return substitute_entry(entry, names, scope.args is not None, keys)
        except _SubstitutionError as err:
            self.add(self.error(str(err), err.mark, err.fix, via=scope.via, field_name=err.field,
                                layer=scope.prefix + entry["name"] if isinstance(entry.get("name"), str) else None))
            return None

    def instance_names(self, entry: MarkedDict, scope: _Scope, count: _Count, default_stem: str) -> Iterator[str]:
        name = entry.get("name")
        if name is None:
            for _ in range(count.repeat):
                scope.counters[default_stem] = scope.counters.get(default_stem, 0) + 1
                yield f"{default_stem}_{scope.counters[default_stem]}"
            return
        if not count.numbered:  # a slice's own `start` field numbers nothing
            yield str(name)
        else:
            for i in range(count.repeat):
                yield f"{name}.{count.start + i}"

    def fail(self, entry: Any, scope: _Scope, local: str | None = None, rest: Iterable[str] = ()) -> None:
        """An entry (or one instance of it, and the `rest` after it) was refused, and said why. A layer that
        names it in `inputs`, or reads it by default, is refused silently (one mistake, one error), while still
        being checked for mistakes of its own."""
        locals_ = ([local] if local is not None else []) + list(rest)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            locals_.append(entry["name"])
        marker = FAILED
        for name in locals_:
            full = scope.prefix + name
            if full in self.origins or name in scope.names and scope.names[name] not in self.failed:
                continue  # a layer of that name was made (this one's name is "used twice")
            self.global_names.add(full)
            self.failed.add(full)
            scope.names.setdefault(name, full)
            marker = scope.names[name] if scope.names[name] in self.failed else marker
        scope.previous = marker

    def is_failed(self, inputs: list[str]) -> bool:
        return any(n in self.failed for n in inputs)

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
        """The global name a layer's `inputs` entry (or a top-level `outputs` entry) refers to (it may be a
        refused layer's: see `fail`)."""
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
            fix = did_you_mean(name, [n for n in scope.names if scope.names[n] not in self.failed] +
                               [NETWORK_INPUT]) + \
                "`inputs` names earlier layers" + (" of this block" if scope.args is not None else "") + \
                f", or `{NETWORK_INPUT}`" + (" (the block's input)." if scope.args is not None else ".")
        self.add(self.error(why, mark, fix, layer=layer, via=scope.via,
                            field_name=None if field == "outputs" else field))
        return None

    def resolve_inputs(self, entry: MarkedDict, scope: _Scope, layer: str | None, later: set[str]) -> list[str] | None:
        """The global names of an entry's inputs; an unresolved one (reported) is FAILED, so that the layer's
        own fields are still checked; None if `inputs` itself is malformed."""
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
        return [FAILED if n is None else n for n in resolved]

    def expand_layer(self, raw: MarkedDict, scope: _Scope, count: _Count, later: set[str], names: dict[str, Any],
                     start_is_count: bool) -> None:
        spelled = raw.get("type")
        if not isinstance(spelled, str):
            self.add(self.error("a layer needs a `type`" if spelled is None else
                                f"`type` must be a layer type name; got {shown(spelled)}",
                                raw.mark_of("type"), "`cnncalc layers` lists the types.",
                                layer=raw.get("name"), via=scope.via))
            return self.fail(raw, scope)
        kind = canonical_type(spelled)
        if kind is None:
            rankless = canonical_type(spelled + "2d")  # 'maxpool' most likely means the 2-D kind
            hint = f"Did you mean '{rankless}'? " if rankless else \
                did_you_mean(spelled.lower(), list(KINDS) + list(TYPE_SPELLINGS))
            self.add(self.error(f"unknown layer type '{shown_text(str(spelled))}'", raw.mark_of("type"), hint +
                                "`cnncalc layers` lists every type.",
                                layer=raw.get("name"), via=scope.via))
            return self.fail(raw, scope)
        cls = KINDS[kind]
        own_keys = ("type", "name", "repeat", "inputs") + (("start",) if start_is_count else ())
        field_marks = {k: raw.mark_of(k) for k in raw}
        for alias, canonical in FIELD_ALIASES.items():
            if alias in raw and alias not in own_keys and canonical in cls.model_fields and \
                    alias not in cls.model_fields:
                if canonical in raw:
                    self.add(self.error(f"both '{shown_text(str(alias))}' and '{canonical}' are given",
                                        raw.mark_of(alias),
                                        f"'{shown_text(str(alias))}' is another name for '{canonical}': keep one.",
                                        layer=raw.get("name"), kind=kind, via=scope.via))
                    return self.fail(raw, scope)
                field_marks[canonical] = field_marks[alias]
        instances = self.instance_names(raw, scope, count, kind)
        for i, local in enumerate(instances):
            entry = self.substituted(raw, count.names(names, i), scope)
            if entry is None:
                return self.fail(raw, scope, local, instances)
            fields = {k: v for k, v in entry.items() if k not in own_keys}
            for alias, canonical in FIELD_ALIASES.items():
                if alias in fields and canonical in cls.model_fields and alias not in cls.model_fields:
                    fields[canonical] = fields.pop(alias)
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
                    return self.fail(raw, scope, local, instances)
            full = self.check_name(local, scope, entry.mark_of("name"), kind)
            inputs = self.resolve_inputs(entry, scope, full, later) if i == 0 else [scope.previous]
            origin = Origin(entry.mark, field_marks, scope.via)
            if inputs is None or full is None or not self.add_layer(cls, kind, full, inputs, fields, origin):
                if inputs is not None and full is None:  # still check its fields
                    self.add_layer(cls, kind, scope.prefix + local, inputs, fields, origin, keep=False)
                return self.fail(raw, scope, local if full is not None else None, instances)
            scope.names[local] = full
            if local != entry.get("name") and i == count.repeat - 1 and "name" in entry:
                scope.names[entry["name"]] = full  # the repeated name means its last instance
            scope.previous = full
            if activation is not None:
                act_local = f"{local}_{activation}"
                act_full = self.check_name(act_local, scope, entry.mark_of("activation"), activation)
                if act_full is None or not self.add_layer(KINDS[activation], activation, act_full, [full], {},
                                                          Origin(entry.mark_of("activation"), {}, scope.via)):
                    return self.fail(raw, scope, act_local if act_full is not None else None, instances)
                scope.names[act_local] = act_full
                scope.previous = act_full
        return None

    def add_layer(self, cls: type[LayerBase], kind: str, name: str, inputs: list[str], fields: dict[Key, Any],
                  origin: Origin, keep: bool = True) -> bool:
        """Validate and add one layer; False if refused. A layer reading a refused one is checked (its own
        mistakes are reported) but not added, silently."""
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
        if self.is_failed(inputs) or not keep:
            return False
        self.layers.append(layer)
        self.origins[name] = origin
        return True

    def expand_block_use(self, raw: MarkedDict, scope: _Scope, count: _Count, later: set[str],
                         names: dict[str, Any]) -> None:
        first_input: list[str] | None = None
        use_line = raw.mark[0]
        instances = self.instance_names(raw, scope, count, str(raw["block"]))
        for i, local in enumerate(instances):
            entry = self.substituted(raw, count.names(names, i), scope)
            if entry is None:
                return self.fail(raw, scope, local, instances)
            block_name = entry["block"]
            if not isinstance(block_name, str):
                self.add(self.error(f"`block` must be a block's name; got {shown(block_name)}",
                                    entry.mark_of("block"), f"Blocks defined: {', '.join(self.blocks) or 'none'}.",
                                    via=scope.via))
                return self.fail(raw, scope)
            if block_name not in self.blocks:
                self.add(self.error(f"unknown block '{shown_text(str(block_name))}'", entry.mark_of("block"),
                                    did_you_mean(block_name, self.blocks) +
                                    f"Blocks defined: {', '.join(self.blocks) or 'none'}.", via=scope.via))
                return self.fail(raw, scope)
            if scope.depth >= MAX_BLOCK_DEPTH:
                self.add(self.error(f"blocks nest deeper than {MAX_BLOCK_DEPTH} (a block using itself?)",
                                    entry.mark, "A block must not use itself.", via=scope.via))
                return self.fail(raw, scope)
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
                return self.fail(raw, scope)
            if first_input is None:
                first_input = self.resolve_inputs(entry, scope, entry.get("name"), later)
                if first_input is None:
                    return self.fail(raw, scope)
                if len(first_input) != 1:
                    self.add(self.error("a block takes one input", entry.mark_of("inputs"), via=scope.via))
                    return self.fail(raw, scope)
            if not NAME_PATTERN.fullmatch(local) or scope.prefix + local in self.global_names or \
                    len(scope.prefix + local) > MAX_NAME:
                self.check_name(local, scope, entry.mark_of("name"), None)
                return self.fail(raw, scope, None, instances)
            source = first_input[0] if i == 0 else scope.previous
            inner = _Scope(prefix=f"{scope.prefix}{local}.", input=source, previous=source,
                           args=count.names({str(k): v for k, v in {**declared, **args}.items()}, i),
                           via=BlockUse(str(block_name), use_line), depth=scope.depth + 1)
            errors = len(self.errors)
            self.expand(block["layers"], inner)
            if len(self.errors) > errors:  # the other instances would repeat these errors: refuse them silently
                return self.fail(raw, scope, local, instances)
            scope.names[local] = inner.previous
            if local != entry.get("name") and i == count.repeat - 1 and "name" in entry:
                scope.names[entry["name"]] = inner.previous
            scope.previous = inner.previous
        return None


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
CHECK_EXPRESSION = ("An expression uses + - * / // % ( ) min() max() over numbers (a real number such as 0.1 "
                    "makes the result real) and the block's arguments (and `index` inside a `repeat`).")
INDEX_FIX = ("Add `repeat:` (and `start:`) to this layer or block use, or pass the number to the block as an "
             "argument.")


class _SubstitutionError(ValueError):
    def __init__(self, message: str, mark: Mark, fix: str, field: str | None = None):
        super().__init__(message)
        self.mark, self.fix, self.field = mark, fix, field


_REFERENCE = re.compile(r"^\$([A-Za-z_]\w*)$")
_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.S)


def substitute_entry(entry: MarkedDict, args: dict[str, Any], in_block: bool = True,
                     keys: tuple[str, ...] | None = None) -> MarkedDict:
    """`substitute` on a layer or block use (only on `keys`, if given); an error names the field."""
    out = {}
    for key, value in entry.items():
        try:
            out[key] = substitute(value, args, entry.mark_of(key), in_block) if keys is None or key in keys \
                else value
        except _SubstitutionError as err:
            err.field = err.field or (key if isinstance(key, str) else None)
            raise
    return entry.derived(out)


def _not_defined(name: str, args: Mapping[str, Any], in_block: bool) -> tuple[str, str]:
    """The message and fix for a `$name` that means nothing here."""
    if name == INDEX:
        return f"`${INDEX}` is only defined inside a repeat", INDEX_FIX
    if not in_block:
        return ("`$` arguments can only be used inside a block's layers",
                "Move this layer into a block, or write the value.")
    return (f"'${shown_text(name)}' is not an argument of this block (arguments: {', '.join(args) or 'none'})",
            DECLARE_IT)


def substitute(value: Any, args: dict[str, Any], mark: Mark = (0, 0), in_block: bool = True) -> Any:
    """Replace `$name` by the argument's value and `${expr}` by the number it evaluates to (`args` holds the
    block's arguments, and `index` inside a repeat)."""
    if isinstance(value, MarkedDict):
        return value.derived({k: substitute(v, args, value.mark_of(k), in_block) for k, v in value.items()})
    if isinstance(value, MarkedList):
        out = MarkedList(substitute(v, args, value.mark_of(i), in_block) for i, v in enumerate(value))
        out.mark, out.item_marks = value.mark, getattr(value, "item_marks", [])
        return out
    if isinstance(value, str) and value.startswith("$"):
        reference = _REFERENCE.match(value)
        if reference:
            if reference.group(1) not in args:
                message, fix = _not_defined(reference.group(1), args, in_block)
                raise _SubstitutionError(message, mark, fix)
            return args[reference.group(1)]
        expression = _EXPRESSION.match(value)
        if expression:
            try:
                return evaluate(expression.group(1), args)
            except UnknownArgument as err:
                message, fix = _not_defined(err.name, args, in_block)
                raise _SubstitutionError(message if err.name == INDEX or not in_block else str(err), mark,
                                         fix) from None
            except ValueError as err:
                raise _SubstitutionError(str(err), mark, CHECK_EXPRESSION) from None
        raise _SubstitutionError(f"cannot read '{shown_text(str(value))}': write `$name` or `${{expression}}`", mark,
                                 CHECK_EXPRESSION)
    return value
