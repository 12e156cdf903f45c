"""The contract every layer kind follows, and the counting conventions, stated once.

Shapes passed to and returned by the rules are *per sample* (no batch axis): the analyser adds the batch.

Counting conventions
- Parameters: what PyTorch's `parameters()` holds is trainable, unless the layer says `trainable: false`;
  buffers (BatchNorm running mean/var, never `num_batches_tracked`) are non-trainable.
- MACs: multiply-accumulates of convolution, transposed convolution and linear layers only, bias excluded.
- FLOPs: 2 x MACs, plus each kind's own `extra_flops` (bias adds, pooling, normalisation, activations,
  merges), documented per kind in `flops_rule`. In the totals they are told apart by kind: each layer's
  FLOPs count under its `category`, except its bias adds (`bias_flops`), which count under "bias".
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo

from cnncalc.errors import ShapeError
from cnncalc.limits import MAX_INT, MAX_REAL
from cnncalc.units import shape_text
from cnncalc.layers.advice import Advice
from cnncalc.layers.receptive_field import ReceptiveField, widest

Shape = tuple[int, ...]
Fields = tuple[ReceptiveField | None, ...]  # the receptive fields of a layer's inputs, in `inputs` order
Category = Literal["conv", "linear", "norm", "activation", "pool", "merge", "other"]
CATEGORIES: tuple[str, ...] = get_args(Category)
FLOP_CATEGORIES = ("conv", "linear", "bias", *CATEGORIES[2:])  # the totals' breakdown: bias adds counted apart
# strict: YAML `true`, `3.0` or '3' is not silently a size, and 'yes' is not a flag; a real number may be
# written as an integer (1 for 1.0). Every number is bounded (cnncalc.limits).
Int = Annotated[int, Strict(), Field(ge=-MAX_INT, le=MAX_INT)]
Pos = Annotated[int, Strict(), Field(gt=0, le=MAX_INT)]
NonNeg = Annotated[int, Strict(), Field(ge=0, le=MAX_INT)]
Flag = Annotated[bool, Strict()]
Real = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-MAX_REAL, le=MAX_REAL)]
PosReal = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False, le=MAX_REAL)]
Probability = Annotated[float, Strict(), Field(ge=0, le=1)]
# one value per spatial axis: a spec may give a single number for all, which a `before` validator repeats
# (`window.per_axis`), so after validation these are always tuples of the kind's rank. A default is written
# as a spec would write it (`Field(1, validate_default=True)`), and goes through the same validator.
PerAxis = tuple[Pos, ...]
PerAxisPad = tuple[NonNeg, ...]
PadPairs = tuple[tuple[NonNeg, NonNeg], ...]  # (before, after) per spatial axis


def rank_of(info: ValidationInfo) -> int:
    """Spatial rank from a kind's type name: conv2d -> 2 (for field validators; `type` validates first)."""
    return int(info.data["type"][-2])


Init = Literal["zeros", "ones", "uniform", "constant"]


@dataclass(frozen=True)
class Weight:
    """One named tensor a layer holds, in PyTorch's name and layout, and how PyTorch initialises it:
    zeros, ones, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5), and the bias rule), or
    every element `value` (nn.init.constant_, e.g. PReLU's slopes)."""

    shape: Shape
    trainable: bool  # False for buffers and for layers marked `trainable: false`
    buffer: bool = False  # running statistics: not a parameter in PyTorch, but in its state_dict
    init: Init = "zeros"
    fan_in: int = 0  # for "uniform"
    value: float = 0.0  # for "constant"


# The key `weight_shapes` gives a layer's weight that PyTorch keeps under the layer's own name: a bare
# nn.Parameter of the enclosing module (ConvNeXt's `layer_scale`), not a tensor of a submodule.
OWN_NAME = ""


def state_dict_key(layer_name: str, key: str) -> str:
    """A layer's weight's PyTorch state_dict key: '<layer>.<key>', or the layer's own name for OWN_NAME."""
    return layer_name if key == OWN_NAME else f"{layer_name}.{key}"


class ParamCount(NamedTuple):
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable


class LayerBase(BaseModel):
    """A validated, immutable layer. Subclasses add a `type` literal and PyTorch-named fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)

    type: str  # each kind narrows this to its literal(s); declared first so validators can read the rank
    name: str
    inputs: tuple[str, ...] = ()
    trainable: Flag = True

    # how many inputs the kind takes: (at least, at most or None for any number)
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # where its FLOPs count in the totals' breakdown (checked when the class is made)
    category: ClassVar[Category] = "other"
    # other spellings (Keras, PyTorch class names) accepted for `type` -> the type each one means; compared
    # lower-case without '_' or '-', so PyTorch class names (BatchNorm2d, LeakyReLU) need no entry
    type_aliases: ClassVar[dict[str, str]] = {}
    # one line each, shown by `cnncalc layers` and in the README; every kind states its own
    shape_rule: ClassVar[str]
    flops_rule: ClassVar[str]
    # input-sized arrays the kernel holds at once besides its output (for verify's memory estimate)
    temporaries: ClassVar[float] = 0

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.category not in CATEGORIES:
            raise TypeError(f"{cls.__name__}.category is {cls.category!r}; it must be one of {CATEGORIES}")

    @property
    def kind(self) -> str:
        return self.type

    # ---- the rules ------------------------------------------------------------------------------------
    # Each takes the layer's one input shape, positionally; kinds that take several (`MultiInput`) widen them
    # to `*xs`. Callers pass whatever inputs a layer has: `layer.output_shape(*in_shapes)`.
    def output_shape(self, x: Shape, /) -> Shape:
        raise NotImplementedError

    def weight_shapes(self, x: Shape, /) -> dict[str, Weight]:
        return {}

    def check_batch(self, batch: int, x: Shape, /) -> None:
        """Refuse a batch size the kind cannot run at (the per-sample rules cannot see it); any by default."""

    def macs(self, x: Shape, /) -> int:
        return 0

    def extra_flops(self, x: Shape, /) -> int:
        return 0

    def bias_flops(self, x: Shape, /) -> int:
        """The part of `extra_flops` that is bias adds (counted apart in the totals)."""
        return 0

    def explain(self, x: Shape, /) -> list[str]:
        """The shape (and, where counted, MACs) rule with this layer's numbers filled in, per sample."""
        return [f"{self.shape_rule}: {shape_text((1, *self.output_shape(x)))}"]

    def advice(self, x: Shape, /) -> list[Advice]:
        """Legal but probably unintended choices (lost pixels, asymmetric padding, ...); none by default."""
        return []

    def receptive_field_steps(self, before: ReceptiveField, x: Shape, /) -> list[str] | None:
        """The receptive-field step with its numbers, for `cnncalc explain`; None: explain shows before and
        after (what kinds without a sliding window do)."""
        return None

    def receptive_field(self, fields: Fields, x: Shape, /) -> ReceptiveField | None:
        """The receptive field of this layer's output, from its input's field. Default: each output value
        sees one position of its input (element-wise kinds; normalisation statistics are not counted, as
        in every receptive-field tool)."""
        return fields[0]

    # ---- derived from the rules, for any number of inputs ---------------------------------------------
    def params(self, *in_shapes: Shape) -> ParamCount:
        trainable = non_trainable = 0
        for weight in self.weight_shapes(*in_shapes).values():
            if weight.trainable:
                trainable += prod(weight.shape)
            else:
                non_trainable += prod(weight.shape)
        return ParamCount(trainable, non_trainable)

    def flops(self, *in_shapes: Shape) -> int:
        return 2 * self.macs(*in_shapes) + self.extra_flops(*in_shapes)

    def flops_by_category(self, *in_shapes: Shape) -> dict[str, int]:
        """This layer's FLOPs per sample by breakdown category: its own, and its bias adds under 'bias'."""
        bias = self.bias_flops(*in_shapes)
        return {self.category: self.flops(*in_shapes) - bias, "bias": bias}

    def hyper(self) -> str:
        """Key hyper-parameters in compact form for tables (e.g. 'k=3 s=2 p=1')."""
        return ""

    # ---- the witness ----------------------------------------------------------------------------------
    def forward(self, weights: dict[str, Any], x: Any, /) -> Any:
        raise NotImplementedError(f"no kernel for {self.kind}")

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape, /) -> int:
        """The most bytes the kernel allocates at once besides its output, for these *batched* shapes."""
        return int(self.temporaries * prod(x) * itemsize)

    # ---- helpers for subclasses -------------------------------------------------------------------------
    def param(self, shape: Shape, init: Init = "zeros", fan_in: int = 0, value: float = 0.0) -> Weight:
        return Weight(tuple(shape), trainable=self.trainable, init=init, fan_in=fan_in, value=value)

    @staticmethod
    def buffer(shape: Shape, init: Init = "zeros") -> Weight:
        return Weight(tuple(shape), trainable=False, buffer=True, init=init)

    def expect_rank(self, shape: Shape, ranks: tuple[int, ...], layout: str) -> None:
        """Check a per-sample input rank; `layout` names the expected batched layout, e.g. '[N, C, H, W]'."""
        if len(shape) not in ranks:
            raise ShapeError(f"expects an input {layout}; got {shape_text((1, *shape))}",
                             fix=_rank_fix(len(shape), ranks))

    def check_given(self, field: str, given: int | None, actual: int) -> None:
        if given is not None and given != actual:
            raise ShapeError(f"says {field}={given} but its input has {actual}", field=field,
                             fix=f"Set {field}: {actual}, or remove it: cnncalc infers it.")


class MultiInput(LayerBase):
    """A kind that may take more than one input: every rule of `LayerBase`, widened to `*xs` (in `inputs`
    order)."""

    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def output_shape(self, *xs: Shape) -> Shape:
        raise NotImplementedError

    def weight_shapes(self, *xs: Shape) -> dict[str, Weight]:
        return {}

    def check_batch(self, batch: int, *xs: Shape) -> None:
        """Any batch size by default."""

    def macs(self, *xs: Shape) -> int:
        return 0

    def extra_flops(self, *xs: Shape) -> int:
        return 0

    def bias_flops(self, *xs: Shape) -> int:
        return 0

    def explain(self, *xs: Shape) -> list[str]:
        return [f"{self.shape_rule}: {shape_text((1, *self.output_shape(*xs)))}"]

    def advice(self, *xs: Shape) -> list[Advice]:
        return []

    def receptive_field_steps(self, before: ReceptiveField, *xs: Shape) -> list[str] | None:
        return None

    def receptive_field(self, fields: Fields, *xs: Shape) -> ReceptiveField | None:
        """Where branches meet, the widest path."""
        return fields[0] if len(fields) == 1 else widest(fields)

    def forward(self, weights: dict[str, Any], *xs: Any) -> Any:
        raise NotImplementedError(f"no kernel for {self.kind}")

    def workspace_bytes(self, itemsize: int, output: Shape, *inputs: Shape) -> int:
        return int(self.temporaries * prod(inputs[0]) * itemsize)


def _rank_fix(got: int, ranks: tuple[int, ...]) -> str:
    if got > max(ranks):
        return "Add a flatten (or a global pooling) layer before it."
    return "Check the spec's input shape, or the layer's 1d/2d/3d variant."


def sample_axis(dim: int, shape: Shape, field: str = "dim") -> int:
    """A PyTorch dim (counting the batch axis as 0, negatives from the end) as an index into `shape`."""
    ndim = len(shape) + 1
    if not -ndim <= dim < ndim:
        raise ShapeError(f"{field}={dim} is out of range for an input with {ndim} dims "
                         f"{shape_text((1, *shape))}", field=field, fix=f"Use a dim from 1 to {ndim - 1}.")
    index = dim % ndim
    if index == 0:
        raise ShapeError(f"{field}={dim} is the batch axis", field=field,
                         fix="cnncalc layers never mix samples; use a dim of 1 or more.")
    return index - 1
