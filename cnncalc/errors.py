"""The one family of user errors, and where in the spec they point.

The CLI catches only `CnnCalcError`; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Iterable


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # verify mismatch, --strict warnings
    USER_ERROR = 2


@dataclass(frozen=True)
class Where:
    """A place in a spec: file, 1-based line and column, and the layer it belongs to."""

    file: str | None = None
    line: int | None = None
    col: int | None = None
    layer: str | None = None
    kind: str | None = None
    via: str | None = None  # "block 'bottleneck' used at line 40" for layers expanded from blocks

    def prefix(self) -> str:
        parts = []
        if self.file is not None:
            loc = self.file
            if self.line is not None:
                loc += f":{self.line}"
                if self.col is not None:
                    loc += f":{self.col}"
            parts.append(loc)
        if self.layer is not None:
            parts.append(f"layer '{self.layer}'" + (f" ({self.kind})" if self.kind else ""))
        text = ": ".join(parts)
        if self.via:
            text += f" [{self.via}]"
        return text + ": " if text else ""


class CnnCalcError(Exception):
    """A mistake in what the user gave us: a spec, an option, a weights or input file."""

    def __init__(self, message: str, *, fix: str | None = None, where: Where | None = None,
                 field: str | None = None):
        self.message = message
        self.fix = fix
        self.where = where or Where()
        self.field = field
        super().__init__(str(self))

    def at(self, where: Where) -> "CnnCalcError":
        """The same error, located (keeps any line the raiser already knew better)."""
        merged = replace(where, line=self.where.line or where.line, col=self.where.col or where.col) \
            if self.where.line else where
        return type(self)(self.message, fix=self.fix, where=merged, field=self.field)

    def __str__(self) -> str:
        field = f"field '{self.field}': " if self.field else ""
        text = f"{self.where.prefix()}{field}{self.message}"
        if self.fix:
            text = text.rstrip(".") + ". " + self.fix
        return text


class SpecError(CnnCalcError):
    """The spec file is malformed: YAML, fields, names, wiring."""


class ShapeError(CnnCalcError):
    """The spec is well-formed but its shapes do not work out."""


class WeightsError(CnnCalcError):
    """A weights or input array does not fit the network."""


class ManyErrors(CnnCalcError):
    """Several independent errors in one spec, reported together."""

    def __init__(self, errors: list[CnnCalcError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def raise_all(errors: list[CnnCalcError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManyErrors(errors)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """'Did you mean 'x'? ' for the closest option, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"Did you mean '{close[0]}'? " if close else ""
