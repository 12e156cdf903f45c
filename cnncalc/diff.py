"""Two summaries -> what differs, layer by layer and in total. Builds output; never prints.

Alignment (`align`) keeps both networks' order:

1. Layers with the same name are paired, via `difflib.SequenceMatcher` over the two name sequences (names are
   unique within a network, so this finds the longest runs of shared names; a layer that moved relative to
   its neighbours is shown as removed in A and added in B rather than paired out of order).
2. In each gap between name-paired layers, the remaining layers are paired by kind (a `SequenceMatcher`
   over the kind sequences): a renamed layer of the same kind is one pair; layers left over are one-sided,
   removed (only in A) or added (only in B). Within a gap, removed layers are listed before added ones. A gap
   longer than KIND_WINDOW layers on either side is cut into that many proportional windows, each aligned on
   its own: SequenceMatcher's work grows with the product of the two lengths (kinds repeat a lot), so this
   keeps a diff of two large, differently named networks to seconds.

Every number here is computed from the two `Summary` objects; percentages are exact `Fraction`s of A's
value (None when A's value is 0 and B's is not).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from difflib import SequenceMatcher
from fractions import Fraction
from typing import Any, Callable, Generic, TypeVar


from cnncalc.analyze import Row, Summary
from cnncalc.errors import shown_text
from cnncalc.layers import Shape
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.network import NETWORK_INPUT

MAX_LABEL = 300  # characters of a side's label in headlines and titles
KIND_WINDOW = 1_000  # layers per side that one by-kind alignment takes at once (quadratic within a window)
T = TypeVar("T")

# a layer's configuration for comparison: every field but where it sits in the network
_NOT_CONFIG = {"name", "inputs"}


# ---- alignment ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    """One aligned position: a row of A and/or a row of B (None on the side where the layer is absent)."""

    a: Row | None
    b: Row | None

    @property
    def status(self) -> str:
        return "removed" if self.b is None else "added" if self.a is None else "paired"


def align(a: Summary, b: Summary) -> list[Pair]:
    """Pair the rows of A and B: by name first, then by kind inside the gaps; see the module docstring."""
    rows_a, rows_b = list(a.rows), list(b.rows)
    pairs: list[Pair] = []
    i = j = 0
    matcher = SequenceMatcher(None, [r.name for r in rows_a], [r.name for r in rows_b], autojunk=False)
    for block in matcher.get_matching_blocks():  # the last block is the (len_a, len_b, 0) sentinel
        pairs += _align_by_kind(rows_a[i:block.a], rows_b[j:block.b])
        pairs += [Pair(rows_a[block.a + k], rows_b[block.b + k]) for k in range(block.size)]
        i, j = block.a + block.size, block.b + block.size
    return pairs


def _align_by_kind(rows_a: list[Row], rows_b: list[Row]) -> list[Pair]:
    if not rows_a or not rows_b:
        return [Pair(r, None) for r in rows_a] + [Pair(None, r) for r in rows_b]
    # same kinds at both ends pair up directly (a renamed stretch of layers is then linear, not quadratic)
    head = 0
    while head < min(len(rows_a), len(rows_b)) and rows_a[head].kind == rows_b[head].kind:
        head += 1
    tail = 0
    while tail < min(len(rows_a), len(rows_b)) - head and rows_a[-1 - tail].kind == rows_b[-1 - tail].kind:
        tail += 1
    if head or tail:
        end_a, end_b = len(rows_a) - tail, len(rows_b) - tail
        return ([Pair(ra, rb) for ra, rb in zip(rows_a[:head], rows_b[:head])]
                + _align_by_kind(rows_a[head:end_a], rows_b[head:end_b])
                + [Pair(ra, rb) for ra, rb in zip(rows_a[end_a:], rows_b[end_b:])])
    longest = max(len(rows_a), len(rows_b))
    if longest > KIND_WINDOW:
        windows = -(-longest // KIND_WINDOW)
        return [pair for k in range(windows)
                for pair in _align_by_kind(rows_a[len(rows_a) * k // windows:len(rows_a) * (k + 1) // windows],
                                           rows_b[len(rows_b) * k // windows:len(rows_b) * (k + 1) // windows])]
    matcher = SequenceMatcher(None, [r.kind for r in rows_a], [r.kind for r in rows_b], autojunk=False)
    pairs: list[Pair] = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += [Pair(ra, rb) for ra, rb in zip(rows_a[a1:a2], rows_b[b1:b2])]
        else:  # replace, delete, insert: different kinds are different layers
            pairs += [Pair(r, None) for r in rows_a[a1:a2]] + [Pair(None, r) for r in rows_b[b1:b2]]
    return pairs


# ---- per-layer differences ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change(Generic[T]):
    """A value before (A) and after (B); None on the side where the layer does not exist."""

    before: T | None
    after: T | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def delta(self) -> int:
        """B - A for counts (an absent side counts as 0)."""
        return (self.after or 0) - (self.before or 0)  # type: ignore[operator]


@dataclass(frozen=True)
class Both(Generic[T]):
    """A value of network A (before) and of network B (after), which both always have."""

    before: T
    after: T

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class FieldChange:
    """One configuration field (PyTorch name) that differs, in JSON form (tuples as lists)."""

    field: str
    before: Any
    after: Any


# aspects in the order they are reported
ASPECTS = ("name", "type", "config", "inputs", "output_shape", "params", "macs", "flops", "receptive_field",
           "output_bytes")


@dataclass(frozen=True)
class Difference:
    """What differs between the two rows of one pair. For a one-sided pair every aspect has one side None."""

    pair: Pair
    name: Change[str]
    type: Change[str]
    config: tuple[FieldChange, ...]  # same-kind pairs only (a kind change is `type`)
    inputs: Change[tuple[str, ...]]  # the layers it reads, by name in each network
    rewired: bool                    # reads other layers than in A (B's inputs mapped through the alignment)
    output_shape: Change[Shape]
    params: Change[int]              # total (trainable + non-trainable)
    trainable_params: Change[int]
    macs: Change[int]
    flops: Change[int]
    receptive_field: Change[ReceptiveField]
    output_bytes: Change[int]

    @property
    def a(self) -> Row | None:
        return self.pair.a

    @property
    def b(self) -> Row | None:
        return self.pair.b

    @property
    def status(self) -> str:
        """'removed', 'added', 'changed' or 'same'."""
        if self.pair.status != "paired":
            return self.pair.status
        return "changed" if self.changed else "same"

    @cached_property
    def changed(self) -> tuple[str, ...]:
        """The aspects that differ (all that exist on one side, for a one-sided pair)."""
        out = []
        for aspect in ASPECTS:
            value = getattr(self, aspect)
            if (bool(value) if aspect == "config" else self.rewired if aspect == "inputs" else value.changed):
                out.append(aspect)
        return tuple(out)


def config_of(row: Row) -> dict[str, Any]:
    return row.layer.model_dump(mode="json", exclude=_NOT_CONFIG | {"type"})


def difference(pair: Pair, b_to_a: dict[str, str] | None = None) -> Difference:
    """The differences within one pair; `b_to_a` maps B's layer names to their A partners (from the
    alignment) to tell a rewired layer from one whose inputs were only renamed."""
    a, b = pair.a, pair.b
    b_to_a = b_to_a if b_to_a is not None else {}

    def change(get: Callable[[Row], T | None]) -> Change[T]:
        return Change(get(a) if a is not None else None, get(b) if b is not None else None)

    config: tuple[FieldChange, ...] = ()
    if a is not None and b is not None and a.kind == b.kind:
        ca, cb = config_of(a), config_of(b)
        config = tuple(FieldChange(k, ca.get(k), cb.get(k)) for k in [*ca, *(k for k in cb if k not in ca)]
                       if ca.get(k) != cb.get(k))
    return Difference(
        pair=pair, name=change(lambda r: r.name), type=change(lambda r: r.kind), config=config,
        inputs=change(lambda r: r.layer.inputs),
        rewired=a is not None and b is not None and
        tuple(b_to_a.get(n) for n in b.layer.inputs) != a.layer.inputs,
        output_shape=change(lambda r: r.output_shape), params=change(lambda r: r.params.total),
        trainable_params=change(lambda r: r.params.trainable), macs=change(lambda r: r.macs),
        flops=change(lambda r: r.flops), receptive_field=change(lambda r: r.receptive_field),
        output_bytes=change(lambda r: r.output_bytes))


# ---- totals ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TotalChange:
    """A network total in A and B; `percent` = 100 * (B - A) / A exactly, None when A is 0 and B is not."""

    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def percent(self) -> Fraction | None:
        if self.a == 0:
            return Fraction(0) if self.b == 0 else None
        return Fraction(100 * (self.b - self.a), self.a)


# total key -> (label, is bytes, value from a Summary)
TOTALS: dict[str, tuple[str, bool, Callable[[Summary], int]]] = {
    "params": ("Params", False, lambda s: s.totals.params),
    "trainable_params": ("Trainable params", False, lambda s: s.totals.trainable_params),
    "macs": ("MACs", False, lambda s: s.totals.macs),
    "flops": ("FLOPs", False, lambda s: s.totals.flops),
    "param_bytes": ("Param memory", True, lambda s: s.totals.param_bytes),
    "activation_bytes": ("Activations", True, lambda s: s.totals.activation_bytes),
    "peak_inference_bytes": ("Peak inference", True,
                             lambda s: s.totals.peak_inference_bytes),
    "training_bytes": ("Training", True, lambda s: s.totals.training.total),
}


def final_receptive_field(summary: Summary) -> tuple[str | None, ReceptiveField | None]:
    """The receptive field of the last layer (in list order) where it is defined, and that layer's name.

    It stops being defined after flatten, linear and the like, so for a classifier this is the field
    reached just before the head."""
    for row in reversed(summary.rows):
        if row.receptive_field is not None:
            return row.name, row.receptive_field
    return None, None


@dataclass(frozen=True)
class Comparison:
    a: Summary
    b: Summary
    label_a: str
    label_b: str
    differences: tuple[Difference, ...]
    totals: dict[str, TotalChange]

    @property
    def pairs(self) -> list[Pair]:
        return [d.pair for d in self.differences]

    @cached_property
    def changed(self) -> list[Difference]:
        return [d for d in self.differences if d.status != "same"]

    @cached_property
    def removed(self) -> list[Difference]:
        return [d for d in self.differences if d.status == "removed"]

    @cached_property
    def added(self) -> list[Difference]:
        return [d for d in self.differences if d.status == "added"]

    @property
    def input_shape(self) -> Both[Shape]:
        return Both(self.a.input_shape, self.b.input_shape)

    @property
    def output_shapes(self) -> Both[tuple[Shape, ...]]:
        return Both(tuple(self.a.output_shapes()), tuple(self.b.output_shapes()))

    @property
    def receptive_field(self) -> tuple[Change[str], Change[ReceptiveField]]:
        """(layer names, fields): see `final_receptive_field`."""
        (na, ra), (nb, rb) = final_receptive_field(self.a), final_receptive_field(self.b)
        return Change(na, nb), Change(ra, rb)

    @property
    def settings(self) -> dict[str, Both[int | str]]:
        """Analysis settings that differ between A and B (batch, dtype, optimizer)."""
        out: dict[str, Both[int | str]] = {
            "batch": Both(self.a.batch, self.b.batch), "dtype": Both(self.a.dtype, self.b.dtype),
            "optimizer": Both(self.a.totals.training.optimizer, self.b.totals.training.optimizer)}
        return {k: v for k, v in out.items() if v.changed}

    @property
    def identical(self) -> bool:
        return (not self.changed and not self.input_shape.changed and not self.output_shapes.changed
                and not self.settings and all(t.delta == 0 for t in self.totals.values()))


def _labels(a: Summary, b: Summary) -> tuple[str, str]:
    if a.name != b.name:
        return a.name, b.name
    if a.file != b.file:
        return a.file, b.file
    return "A", "B"


def compare(a: Summary, b: Summary, label_a: str | None = None, label_b: str | None = None) -> Comparison:
    """Align A and B and compute every per-layer and total difference. Labels default to the networks'
    names, or their files when the names are equal, or 'A' and 'B'; they are kept printable and short (a
    label given by the CLI holds every --set text)."""
    default_a, default_b = _labels(a, b)
    pairs = align(a, b)
    b_to_a = {NETWORK_INPUT: NETWORK_INPUT, **{p.b.name: p.a.name for p in pairs if p.a and p.b}}
    return Comparison(a=a, b=b, label_a=shown_text(label_a or default_a, MAX_LABEL),
                      label_b=shown_text(label_b or default_b, MAX_LABEL),
                      differences=tuple(difference(p, b_to_a) for p in pairs),
                      totals={key: TotalChange(get(a), get(b)) for key, (_, _, get) in TOTALS.items()})
